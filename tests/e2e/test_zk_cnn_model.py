"""A model owner's own ZK model end to end: the digits CNN (51,434 parameters, public weights)
with its generated circuit and committed artefacts. Its circuit accepts the reference forward
pass's label on every held-out digit; packaged as a joynet-zk model and served by an inference
node, its answer carries a Groth16 proof that DigitsCNNVerifier, registered by a DAO proposal,
accepts on chain; the proof claimed for another class, or tampered, is refused with nothing paid."""

import asyncio

import pytest
import yaml
from ape import project
from eth_utils import keccak
from helpers.chain_asserts import reverts_with
from helpers.zk_requests import PRICE, SALT

from joynet.chain.marketplace import registration_commitment
from joynet.edge.inference_node import InferenceNode
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
