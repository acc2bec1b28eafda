"""A model owner's own ZK model end to end: the digits CNN (51,434 parameters, public weights)
with its generated circuit and committed artefacts. Its circuit accepts the reference forward
pass's label on every held-out digit; packaged as a joynet-zk model and served by an inference
node, its answer carries a Groth16 proof that DigitsCNNVerifier, registered by a DAO proposal,
accepts on chain; the proof claimed for another class, or tampered, is refused with nothing paid.
Served feeless on its owner's channel, its answers' proofs are checked with the package's own key
by the requester (no transaction) and by two `ape run iota_bridger`, which pay the node for them
from the owner's budget; until the DAO registers the circuit the requester refuses to ask."""

import asyncio
import os

import pytest
import yaml
from ape import project
from eth_utils import keccak
from helpers.bridgers import run_bridgers
from helpers.chain_asserts import reverts_with
from helpers.zk_requests import PRICE, SALT

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import model_key, registration_commitment
from joynet.edge.inference_node import InferenceNode
from joynet.feeless.assignment import AssignmentBook
from joynet.feeless.claims import NODE_KEY, STREAM_LINK, Bindings, ChannelClaim
from joynet.feeless.errors import ProofRejectedError
from joynet.feeless.handler import IOTAInferenceHandler
from joynet.models.package import publish_model
from joynet.models.zk_package import write_zk_package
from joynet.storage import EmbeddedStore
from joynet.zk import ZK_VERIFIER_LAYOUT, ZKProver, to_bytes32
from joynet.zk.circuitgen import circuit_signals
from joynet.zk.digits import CNN_MODEL_DIR, load_split
from joynet.zk.quantized import QuantizedModel

CNN_CIRCUIT_DIR = CNN_MODEL_DIR.with_name("digits_cnn_circuit")
NODE = "0x00000000000000000000000000000000000000a1"


@pytest.fixture(scope="module")
def cnn():
    return QuantizedModel.load(CNN_MODEL_DIR / "model.json")


@pytest.fixture(scope="module")
def held_out():
    _, pixels, _, labels = load_split()
    return pixels.tolist(), labels.tolist()


def test_cnn_circuit__every_held_out_digit__accepts_the_reference_label(cnn, held_out):
    pixels, _ = held_out
    with ZKProver(CNN_CIRCUIT_DIR, backend="snarkjs") as prover:
        for request_id, image in enumerate(pixels, start=1):
            inference = cnn.forward(image)
            # The witness generator checks every constraint: the outputBinding names the
            # reference's label, and the argmax's constraints pin that label down.
            signals = circuit_signals(cnn, image, SALT, request_id, NODE, weights="public", inference=inference)
            prover.check_witness(signals)
    assert len(pixels) == 450


def test_cnn_request__served_by_the_joynet_zk_runtime__settles_with_a_verified_proof(
    cnn, held_out, tmp_path, marketplace, token, judge, zk_verifier, governance, alice, bob, deployer,
    model_owner, operators, register_node, request_inference,
):
    package = write_zk_package(tmp_path / "package", CNN_MODEL_DIR / "model.json", CNN_CIRCUIT_DIR)
    store = EmbeddedStore(tmp_path / "ipfs")
    cid = asyncio.run(publish_model(store, package))
    circuit = bytes.fromhex(yaml.safe_load((package / "model.yaml").read_text())["verification"]["circuitId"][2:])

    # The DAO registers the CNN's verifier; the owner registers the model with its circuit.
    verifier = project.DigitsCNNVerifier.deploy(sender=deployer)
    calls = [(zk_verifier, zk_verifier.registerCircuit.encode_input(circuit, verifier.address, ZK_VERIFIER_LAYOUT))]
    governance.enact(alice, calls, "Register the digits CNN's circuit", [(alice, 1), (bob, 1)])
    model_id, salt = keccak(text="digits-cnn"), keccak(text="salt:digits-cnn")
    marketplace.commitModelRegistration(registration_commitment(model_id, model_owner.address, salt), sender=model_owner)
    weights = to_bytes32(cnn.weights_commitment())
    marketplace.registerModel(model_id, f"ipfs://{cid}", weights, PRICE, (1, circuit, 0, False), b"\0" * 32, salt,
                              sender=model_owner)
    register_node(operators[0], [model_id])

    pixels, labels = held_out
    image = pixels[7]
    request, (node,), _ = request_inference(model_id, input_commitment=to_bytes32(cnn.input_commitment(image, SALT)))
    by_address = {operator.address: operator for operator in operators}

    async def serve():
        inference_node = InferenceNode(store=store, cache_dir=tmp_path / "cache")
        try:
            return await inference_node.execute_inference(
                cid, {"input": image, "salt": str(SALT)}, request_id=request.id, node=node
            )
        finally:
            await inference_node.close()

    result = asyncio.run(serve())
    assert result.output["class"] == cnn.forward(image).label == labels[7]
    assert result.proof is not None and result.proof_calldata

    # The proof claimed for another class, and a tampered proof: refused, nothing paid.
    balance = token.balanceOf(marketplace)
    other_class = to_bytes32((result.output["class"] + 1) % 10)
    tampered = bytearray(result.proof_calldata)
    tampered[40] ^= 1
    for output, proof in ((other_class, result.proof_calldata), (result.output_commitment, bytes(tampered))):
        with reverts_with("ProofOfInferenceInvalidProof", abi=judge):
            marketplace.submitResult(request, output, "ipfs://bafyout", proof, sender=by_address[node])
    assert token.balanceOf(marketplace) == balance and marketplace.requestStatus(request.id) == 1

    receipt = marketplace.submitResult(
        request, result.output_commitment, "ipfs://bafyout", result.proof_calldata, sender=by_address[node]
    )
    assert marketplace.requestStatus(request.id) == 2  # Settled
    assert marketplace.balances(node) == PRICE * 70 // 100
    assert receipt.gas_used > 0


NODE_SEED = "abandon " * 11 + "about"
OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
FEELESS_CNN = "feeless-digits-cnn"
BUDGET, RATE = 10 * JOY, JOY


@pytest.fixture
def feeless_env(tmp_path, monkeypatch, deployment, chain):
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))  # the bridgers read the package's key there
    monkeypatch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    deployment.save(tmp_path / "deployments" / "local.json")
    return {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri}


def test_cnn_feeless__served_on_its_channel__requester_and_bridgers_check_the_proofs_with_its_key(
    cnn, held_out, feeless_env, tmp_path, chain, deployment, marketplace, token, model_owner, operators, register_node,
    zk_verifier, governance, alice, bob, deployer,
):
    bridge = deployment.contract("IOTAValidator")
    node_operator = operators[0]
    store = EmbeddedStore(tmp_path / "ipfs")
    package = write_zk_package(tmp_path / "package", CNN_MODEL_DIR / "model.json", CNN_CIRCUIT_DIR)
    cid = asyncio.run(publish_model(store, package))
    verification = yaml.safe_load((package / "model.yaml").read_text())["verification"]
    circuit = bytes.fromhex(verification["circuitId"][2:])
    client = ModelMarketplace(contract_address=marketplace.address)
    serving = InferenceNode(store=store, cache_dir=tmp_path / "models", iota_wallet_seed=NODE_SEED, marketplace=client)
    requesting = InferenceNode(store=store, cache_dir=tmp_path / "req", iota_wallet_seed=REQUESTER_SEED,
                               marketplace=client)

    # The owner's open channel is the price-0 model's stream; the node stakes, binds its channel
    # key and vouches; the owner consents to the link and funds the budget.
    owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_SEED)
    channel_id = asyncio.run(owner_channel.create_model_channel(FEELESS_CNN, private=False, open=True))
    stream, key, salt = bytes.fromhex(channel_id[2:]), model_key(FEELESS_CNN), model_key(f"salt:{FEELESS_CNN}")
    marketplace.commitModelRegistration(registration_commitment(key, model_owner.address, salt), sender=model_owner)
    marketplace.registerModel(key, f"ipfs://{cid}", to_bytes32(cnn.weights_commitment()), 0, (1, circuit, 0, False),
                              stream, salt, sender=model_owner)
    asyncio.run(owner_channel.post_claim(
        channel_id, ChannelClaim(STREAM_LINK, key, model_owner.address, chain.chain_id, bridge.address)))
    bridge.requestStreamLink(stream, key, sender=model_owner)
    register_node(node_operator, [key])
    bridge.bindChannelKey(key, serving.iota_handler().identity.public_key, sender=node_operator)
    asyncio.run(serving.iota_handler().ensure_subscribed(channel_id))
    asyncio.run(serving.iota_handler().post_claim(
        channel_id, ChannelClaim(NODE_KEY, key, node_operator.address, chain.chain_id, bridge.address)))
    token.approve(bridge, BUDGET, sender=model_owner)
    bridge.fundBudget(key, BUDGET, sender=model_owner)
    bridge.setFeelessRate(key, RATE, sender=model_owner)

    pixels, labels = held_out
    inputs = [{"input": pixels[i], "salt": str(SALT + i)} for i in (2, 9)]

    # Until the DAO registers the circuit, its proofs prove nothing: the requester sends nothing.
    with pytest.raises(ProofRejectedError, match="is not one the DAO registered"):
        asyncio.run(requesting.execute_inference(FEELESS_CNN, inputs[0], use_iota=True))
    verifier = project.DigitsCNNVerifier.deploy(sender=deployer)
    calls = [(zk_verifier, zk_verifier.registerCircuit.encode_input(circuit, verifier.address, ZK_VERIFIER_LAYOUT))]
    governance.enact(alice, calls, "Register the digits CNN's circuit", [(alice, 1), (bob, 1)])

    async def scenario():
        book = AssignmentBook(Bindings.registered(client, FEELESS_CNN))
        served = asyncio.create_task(serving.serve_iota(channel_id, FEELESS_CNN, node_address=node_operator.address,
                                                        max_requests=len(inputs), book=book))
        results = [await requesting.execute_inference(FEELESS_CNN, data, use_iota=True) for data in inputs]
        assert await served == len(inputs)
        return results

    height = chain.blocks.height
    results = asyncio.run(scenario())
    assert chain.blocks.height == height  # the requester sent no transaction
    for result, index in zip(results, (2, 9), strict=True):
        assert result.proof_verified and result.output["class"] == cnn.forward(pixels[index]).label == labels[index]
    asyncio.run(serving.close())
    asyncio.run(requesting.close())
    owner_channel.close()

    # The bridgers check both answers' proofs with the package's key: the node is paid for both.
    output = run_bridgers(feeless_env, [7, 8])
    assert "submitted checkpoint" in output, output
    cut = RATE * marketplace.protocolShareBps() // 10_000
    assert bridge.earningsOf(key, node_operator) == 2 * (RATE - cut)
    assert bridge.budgetOf(key).balance == BUDGET - 2 * RATE
