"""Feeless inference end to end on Anvil: a price-0 digits model whose stream is its owner's open
channel, served by a staked node bound to it; requests and ZK-proven results travel over the
channel (the requester sends no transaction); two `ape run
iota_bridger` processes link the stream to the model its author consented to (not to a
squatter's), exchange signatures on the bridge board and checkpoint the stream, which pays the
node, whose channel key is bound to it on chain, from the owner's budget. ProofOfUse counts the
model's inferences, weighed by the protocol's part of what the budget paid, so the DAO-funded epoch
pool pays node and owner back at most 90 % of it; JOY is conserved. Restarted bridgers (another
pair) checkpoint only what is new."""

import asyncio
import os

import pytest

from helpers.bridgers import run_bridgers
from joynet import InferenceNode, ModelMarketplace
from joynet.channels import MessageType, SQLiteLedger
from joynet.channels.merkle import merkle_leaf, merkle_proof
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key, registration_commitment
from joynet.feeless.assignment import AssignmentBook
from joynet.feeless.claims import NODE_KEY, STREAM_LINK, Bindings, ChannelClaim
from joynet.feeless.handler import IOTAInferenceHandler
from joynet.models.package import load_model_package, publish_model
from joynet.models.builtin import write_digits_package
from joynet.storage import EmbeddedStore
from joynet.zk.digits import load_split

NODE_SEED = "abandon " * 11 + "about"
OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
MODEL = "feeless-digits"
POOL = 10_000 * JOY
BUDGET, RATE = 10 * JOY, JOY


@pytest.fixture
def feeless_env(tmp_path, monkeypatch, deployment, chain):
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))  # the bridgers check answers against the model's metadata
    monkeypatch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    deployment.save(tmp_path / "deployments" / "local.json")
    return {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri}


def feeless_requests(serving, requesting, channel_id, inputs, node_address):
    async def scenario():
        bindings = Bindings.registered(serving.marketplace, MODEL)
        served = asyncio.create_task(serving.serve_iota(channel_id, MODEL, node_address=node_address,
                                                        max_requests=len(inputs), book=AssignmentBook(bindings)))
        results = [await requesting.execute_inference(MODEL, data, use_iota=True) for data in inputs]
        assert await served == len(inputs)
        return results

    return asyncio.run(scenario())


def test_feeless__channel_inferences_two_bridgers__node_paid_from_the_owners_budget(
    feeless_env, tmp_path, chain, deployment, marketplace, proof_of_use, token, governance, model_owner, operators,
    alice, bob, outsider, register_node, timelock,
):
    bridge = deployment.contract("IOTAValidator")
    node_operator = operators[0]
    store = EmbeddedStore(tmp_path / "ipfs")
    cid = asyncio.run(publish_model(store, write_digits_package(tmp_path / "pkg")))
    package = asyncio.run(load_model_package(store, cid, tmp_path / "cache"))
    client = ModelMarketplace(contract_address=marketplace.address)
    serving = InferenceNode(store=store, cache_dir=tmp_path / "models", iota_wallet_seed=NODE_SEED, marketplace=client)
    requesting = InferenceNode(store=store, cache_dir=tmp_path / "req", iota_wallet_seed=REQUESTER_SEED, marketplace=client)

    # The owner announces the model's open channel and registers the price-0 model with it as stream
    # (committed first, registered from a later block); staked nodes bound to the model serve it.
    owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_SEED)
    channel_id = asyncio.run(owner_channel.create_model_channel(MODEL, private=False, open=True))
    stream = bytes.fromhex(channel_id[2:])
    circuit = bytes.fromhex(package.verification["circuitId"][2:])
    salt = model_key(f"salt:{MODEL}")
    marketplace.commitModelRegistration(registration_commitment(model_key(MODEL), model_owner.address, salt),
                                        sender=model_owner)
    marketplace.registerModel(model_key(MODEL), f"ipfs://{cid}", bytes.fromhex(package.weights_commitment[2:]), 0,
                              (1, circuit, 0, False), stream, salt, sender=model_owner)
    # A squatter registers a feeless model naming the same stream and asks for the link first.
    squat = model_key("squatted-digits")
    marketplace.commitModelRegistration(registration_commitment(squat, outsider.address, salt), sender=outsider)
    marketplace.registerModel(squat, f"ipfs://{cid}", bytes.fromhex(package.weights_commitment[2:]), 0,
                              (1, circuit, 0, False), stream, salt, sender=outsider)
    bridge.requestStreamLink(stream, squat, sender=outsider)
    # The stream's author (the owner) consents to carry the owner's model; the owner asks the bridgers.
    consent = ChannelClaim(STREAM_LINK, model_key(MODEL), model_owner.address, chain.chain_id, bridge.address)
    asyncio.run(owner_channel.post_claim(channel_id, consent))
    bridge.requestStreamLink(stream, model_key(MODEL), sender=model_owner)
    # Feeless means sponsored: the node stakes for the model and binds its channel key; the owner
    # funds the model's budget and sets what it pays per inference.
    register_node(node_operator, [model_key(MODEL)])
    bridge.bindChannelKey(model_key(MODEL), serving.iota_handler().identity.public_key, sender=node_operator)
    vouch = ChannelClaim(NODE_KEY, model_key(MODEL), node_operator.address, chain.chain_id, bridge.address)
    asyncio.run(serving.iota_handler().ensure_subscribed(channel_id))
    asyncio.run(serving.iota_handler().post_claim(channel_id, vouch))
    # Another staked node binds the same key to itself: it can neither take the node's answers nor block it.
    register_node(alice, [model_key(MODEL)])
    bridge.bindChannelKey(model_key(MODEL), serving.iota_handler().identity.public_key, sender=alice)
    token.approve(bridge, BUDGET, sender=model_owner)
    bridge.fundBudget(model_key(MODEL), BUDGET, sender=model_owner)
    bridge.setFeelessRate(model_key(MODEL), RATE, sender=model_owner)
    joy_held = token.balanceOf(bridge) + token.balanceOf(proof_of_use) + token.balanceOf(timelock)

    # The DAO funds the next epoch's usage pool from the treasury (through the timelock).
    epoch = proof_of_use.currentEpoch() + 1
    governance.enact(alice, [(token, token.approve.encode_input(proof_of_use, POOL)),
                             (proof_of_use, proof_of_use.fundEpoch.encode_input(epoch, POOL))],
                     "Fund the usage pool", [(alice, 1), (bob, 1)])
    chain.pending_timestamp = proof_of_use.genesisTime() + epoch * proof_of_use.epochLength() + 10
    chain.mine()

    # Feeless inferences: nothing reaches the chain.
    _, pixels, _, labels = load_split()
    inputs = [{"pixels": row, "salt": str(1000 + i)} for i, row in enumerate(pixels.tolist()[:3])]
    height = chain.blocks.height
    results = feeless_requests(serving, requesting, channel_id, inputs[:2], node_operator.address)
    assert chain.blocks.height == height  # no transaction from the requester (nor from anyone)
    assert all(result.proof_verified for result in results)

    output = run_bridgers(feeless_env, [7, 8])
    # The bridgers linked the stream to the model its author consented to, never the squatter's.
    assert "refused to link stream" in output, output
    assert (bridge.streamOf(stream).modelId, bridge.streamOf(stream).modelOwner) == (model_key(MODEL), model_owner.address)
    # One member proposes and the other co-signs, or both propose the same checkpoint at once
    # (each signature counts for the same checkpoint): either way one of them submits it.
    assert "submitted checkpoint" in output, output
    assert "co-signed" in output or output.count("proposed checkpoint") == 2, output
    state = bridge.streamOf(stream)
    assert state.checkpoints == 1
    # The owner's budget paid the node; the protocol's part of it is the usage's reward weight.
    cut = RATE * marketplace.protocolShareBps() // 10_000
    assert proof_of_use.modelUsage(epoch, model_key(MODEL)) == 2
    assert bridge.budgetOf(model_key(MODEL)).balance == BUDGET - 2 * RATE
    assert bridge.earningsOf(model_key(MODEL), node_operator) == 2 * (RATE - cut)
    assert proof_of_use.nodeUsage(epoch, node_operator) == proof_of_use.ownerUsage(epoch, model_owner) == 2 * cut
    # Alice bound the node's key to herself, but the key vouched for the node only: she gets nothing.
    assert bridge.earningsOf(model_key(MODEL), alice) == proof_of_use.nodeUsage(epoch, alice) == 0

    # Anyone can prove a request message is in the checkpoint.
    messages = SQLiteLedger().read(stream)
    covered = [m.hash for m in messages[: state.sequence + 1]]
    request = next(m for m in messages if m.type is MessageType.PACKET)
    leaves = [merkle_leaf(h) for h in covered]
    index = covered.index(request.hash)
    assert bridge.verifyInclusion(stream, state.sequence, request.hash, merkle_proof(leaves, index))
    assert not bridge.verifyInclusion(stream, state.sequence, b"\x01" * 32, merkle_proof(leaves, index))

    # One more inference; a restarted pair of bridgers credits only the new one.
    feeless_requests(serving, requesting, channel_id, inputs[2:], node_operator.address)
    run_bridgers(feeless_env, [8, 9])
    assert bridge.streamOf(stream).checkpoints == 2
    assert proof_of_use.modelUsage(epoch, model_key(MODEL)) == 3
    assert bridge.earningsOf(model_key(MODEL), node_operator) == 3 * (RATE - cut)
    assert proof_of_use.nodeUsage(epoch, node_operator) == proof_of_use.ownerUsage(epoch, model_owner) == 3 * cut
    asyncio.run(serving.close())
    owner_channel.close()
    asyncio.run(requesting.close())

    # The node withdraws its pay; after the epoch, owner and node claim from the DAO's pool at most
    # 90 % of the protocol's part (the self-dealing bound), so the pool cannot be farmed for profit.
    node_before = token.balanceOf(node_operator)
    bridge.withdrawEarnings([model_key(MODEL)], sender=node_operator)
    bridge.withdrawProtocolEarnings(sender=outsider)
    assert token.balanceOf(node_operator) == node_before + 3 * (RATE - cut)
    chain.pending_timestamp = proof_of_use.epochEnd(epoch) + 10
    chain.mine()
    proof_of_use.claimOwnerReward(epoch, sender=model_owner)
    proof_of_use.claimNodeReward(epoch, sender=node_operator)
    info = proof_of_use.epochInfo(epoch)
    assert 0 < info.paidOut <= 3 * cut * 9_000 // 10_000
    # JOY conserved: what left the bridge, the pool and the treasury is the node's pay and rewards.
    assert token.balanceOf(bridge) == BUDGET - 3 * RATE
    joy_now = token.balanceOf(bridge) + token.balanceOf(proof_of_use) + token.balanceOf(timelock)
    assert joy_held - joy_now == 3 * (RATE - cut) + info.paidOut
