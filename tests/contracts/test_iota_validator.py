"""IOTAValidator: stream links the committee attests (the stream's author consented), t-of-n EIP-712 checkpoints crediting ProofOfUse, inclusion proofs,
and the committee only the DAO sets; every refusal leaves nothing recorded. Bridged (feeless)
usage is counted per model and announced per node, but carries no reward weight: nobody paid for
it, so a committee that inflated it could not mint rewards from the usage pool."""

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.validator import Checkpoint, StreamLink, Usage, ordered_signatures, sign_checkpoint, sign_stream_link
from joynet.channels.merkle import merkle_leaf, merkle_proof, merkle_root

ZERO32 = b"\0" * 32
STREAM = keccak(text="iota-stream:feeless-digits")
BUDGET, RATE = 100 * JOY, JOY


@pytest.fixture
def bridge(deployment):
    return deployment.contract("IOTAValidator")


@pytest.fixture
def bridgers(accounts):
    """The local committee (deploy-config.yaml): test accounts 7, 8 and 9, threshold 2."""
    return [accounts[7], accounts[8], accounts[9]]


@pytest.fixture
def sign_link(bridge, chain):
    """Committee signatures of the link of ``stream`` to ``model_id`` of ``owner``, ordered."""

    def sign_by(signers, stream, model_id, owner, chain_id=None, validator=None):
        link = StreamLink(stream, model_id, owner.address)
        domain = (chain_id or chain.chain_id, validator or bridge.address)
        return ordered_signatures([sign_stream_link(s.private_key, link, *domain) for s in signers])

    return sign_by


def channel_key(node):
    return keccak(text=f"channel key of {node.address}")


@pytest.fixture
def feeless_model(served_model, bridge, model_owner, bridgers, sign_link, outsider, operators):
    """The linked feeless model of STREAM, every operator a node serving it with its channel key
    bound; no budget yet."""
    model_id = served_model("feeless-digits", price=0, stream=STREAM)
    bridge.linkStream(STREAM, model_id, sign_link(bridgers[:2], STREAM, model_id, model_owner), sender=outsider)
    for operator in operators:
        bridge.bindChannelKey(model_id, channel_key(operator), sender=operator)
    return model_id


@pytest.fixture
def funded_model(feeless_model, bridge, token, model_owner):
    """The feeless model with a budget of BUDGET JOY paying RATE JOY per inference."""
    token.approve(bridge, BUDGET, sender=model_owner)
    bridge.fundBudget(feeless_model, BUDGET, sender=model_owner)
    bridge.setFeelessRate(feeless_model, RATE, sender=model_owner)
    return feeless_model


@pytest.fixture
def checkpoint(operators):
    """The first checkpoint of STREAM: messages 0..4, two nodes served 3 and 1 inferences."""
    messages = [keccak(text=f"message {i}") for i in range(5)]
    root = merkle_root([merkle_leaf(message) for message in messages])
    usage = [Usage(operators[0].address, 3), Usage(operators[1].address, 1)]
    return Checkpoint(STREAM, 3, ZERO32, messages[3], root, usage), messages


@pytest.fixture
def sign(bridge, chain):
    def sign_by(signers, checkpoint):
        return ordered_signatures([sign_checkpoint(s.private_key, checkpoint, chain.chain_id, bridge.address) for s in signers])

    return sign_by


def usage_of(proof_of_use, model_id, nodes):
    """The model's inferences counted this epoch, and the reward weights of the given nodes."""
    epoch = proof_of_use.currentEpoch()
    return proof_of_use.modelUsage(epoch, model_id), [proof_of_use.nodeUsage(epoch, node) for node in nodes]


def bridged_counts(proof_of_use, receipt):
    """Per node, the feeless inferences a checkpoint's receipt reported to ProofOfUse."""
    counts = {}
    for event in receipt.decode_logs(proof_of_use.BridgedUsageRecorded):
        for node, count, _ in event.usage:
            counts[to_checksum_address(node)] = counts.get(to_checksum_address(node), 0) + count
    return counts


# ---- streams ----


def test_request_stream_link__owner_of_feeless_model__asks_the_bridgers(register_model, bridge, model_owner):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    receipt = bridge.requestStreamLink(STREAM, model_id, sender=model_owner)
    [event] = receipt.decode_logs(bridge.StreamLinkRequested)
    assert (bytes(event.streamId), bytes(event.modelId), event.modelOwner) == (STREAM, model_id, model_owner.address)
    assert not bridge.isStreamLinked(STREAM)  # asking links nothing


def test_request_stream_link__not_the_owner__reverts(register_model, bridge, outsider):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    with reverts_with("IOTAValidatorNotModelOwner"):
        bridge.requestStreamLink(STREAM, model_id, sender=outsider)


def test_link_stream__threshold_attests_the_authors_consent__links(feeless_model, bridge, model_owner):
    stream = bridge.streamOf(STREAM)
    assert (stream.modelId, stream.modelOwner, stream.checkpoints) == (feeless_model, model_owner.address, 0)
    assert bridge.isStreamLinked(STREAM)


def test_link_stream__squatter_without_attestation__reverts(register_model, bridge, outsider, bridgers, sign_link):
    """The squatting attack: a model naming someone else's stream, linked by its own owner."""
    squat = register_model("squat", price=0, stream=STREAM, owner=outsider)
    with reverts_with("IOTAValidatorBelowThreshold"):
        bridge.linkStream(STREAM, squat, [], sender=outsider)
    with reverts_with("IOTAValidatorBelowThreshold"):  # one member alone is not the committee
        bridge.linkStream(STREAM, squat, sign_link(bridgers[:1], STREAM, squat, outsider), sender=outsider)
    assert not bridge.isStreamLinked(STREAM)


def test_link_stream__attestation_of_the_owners_link_reused_for_a_squatter__reverts(
    register_model, bridge, model_owner, outsider, bridgers, sign_link
):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    squat = register_model("squat", price=0, stream=STREAM, owner=outsider)
    attested = sign_link(bridgers[:2], STREAM, model_id, model_owner)
    with reverts_with("IOTAValidatorNotCommitteeMember"):  # recovers to nobody on the committee
        bridge.linkStream(STREAM, squat, attested, sender=outsider)
    bridge.linkStream(STREAM, model_id, attested, sender=outsider)
    assert bridge.streamOf(STREAM).modelOwner == model_owner.address


@pytest.mark.parametrize("domain", ["another chain", "another validator"])
def test_link_stream__attestation_for_another_deployment__reverts(
    register_model, bridge, model_owner, bridgers, sign_link, domain
):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    other = {"another chain": {"chain_id": 1}, "another validator": {"validator": "0x" + "11" * 20}}[domain]
    with reverts_with("IOTAValidatorNotCommitteeMember"):
        bridge.linkStream(STREAM, model_id, sign_link(bridgers[:2], STREAM, model_id, model_owner, **other),
                          sender=model_owner)


def test_link_stream__unsorted_or_repeated_signers__reverts(register_model, bridge, model_owner, bridgers, sign_link):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    ordered = sign_link(bridgers[:2], STREAM, model_id, model_owner)
    for signatures in ([ordered[1], ordered[0]], [ordered[0], ordered[0]]):
        with reverts_with("IOTAValidatorDuplicateOrUnsortedSigner"):
            bridge.linkStream(STREAM, model_id, signatures, sender=model_owner)


@pytest.mark.parametrize("case", ["paid model", "other stream"])
def test_link_stream__not_the_models_feeless_stream__reverts(
    register_model, bridge, model_owner, bridgers, sign_link, case
):
    price, stream = (5 * 10**18, STREAM) if case == "paid model" else (0, keccak(text="another stream"))
    model_id = register_model("m", price=price, stream=stream)
    with reverts_with("IOTAValidatorNotFeelessStream"):
        bridge.linkStream(STREAM, model_id, sign_link(bridgers[:2], STREAM, model_id, model_owner), sender=model_owner)
    with reverts_with("IOTAValidatorNotFeelessStream"):
        bridge.requestStreamLink(STREAM, model_id, sender=model_owner)


def test_link_stream__twice__reverts(feeless_model, register_model, bridge, model_owner, bridgers, sign_link):
    with reverts_with("IOTAValidatorStreamLinked"):
        bridge.linkStream(STREAM, feeless_model, sign_link(bridgers[:2], STREAM, feeless_model, model_owner),
                          sender=model_owner)
    # A stream belongs to one model: another model naming it can be neither linked nor requested.
    other = register_model("feeless-copy", price=0, stream=STREAM)
    with reverts_with("IOTAValidatorStreamLinked"):
        bridge.linkStream(STREAM, other, sign_link(bridgers[:2], STREAM, other, model_owner), sender=model_owner)
    with reverts_with("IOTAValidatorStreamLinked"):
        bridge.requestStreamLink(STREAM, other, sender=model_owner)


def test_stream_link_digest__python_typed_data__matches_the_contract(bridge, chain, model_owner):
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    from joynet.chain.validator import stream_link_typed_data

    link = StreamLink(STREAM, keccak(text="model"), model_owner.address)
    typed = encode_typed_data(full_message=stream_link_typed_data(link, chain.chain_id, bridge.address))
    assert bytes(bridge.streamLinkDigest(*link)) == _hash_eip191_message(typed)


# ---- checkpoints ----


def test_checkpoint__threshold_of_members_no_budget__counts_usage_without_pay_or_weight(
    bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators, outsider, model_owner
):
    cp, _ = checkpoint
    receipt = bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=outsider)  # anyone may relay
    assert bridge.CheckpointAccepted(STREAM, 3, cp.headHash, cp.messagesRoot, 4) in receipt.events
    assert bridged_counts(proof_of_use, receipt) == {operators[0].address: 3, operators[1].address: 1}
    # Counted for the model, but no pay and no reward weight: the model's budget paid nothing.
    assert usage_of(proof_of_use, feeless_model, [operators[0], operators[1]]) == (4, [0, 0])
    epoch = proof_of_use.currentEpoch()
    assert proof_of_use.ownerUsage(epoch, model_owner) == 0
    info = proof_of_use.epochInfo(epoch)
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (0, 0)
    stream = bridge.streamOf(STREAM)
    assert (stream.sequence, bytes(stream.head), stream.checkpoints) == (3, cp.headHash, 1)


def test_checkpoint__next_one_linked__accepted(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    bridge.submitCheckpoint(cp, sign(bridgers[1:], cp), sender=bridgers[1])
    following = Checkpoint(STREAM, 9, cp.headHash, keccak(text="m9"), keccak(text="root 2"), [Usage(operators[0].address, 2)])
    receipt = bridge.submitCheckpoint(following, sign(bridgers, following), sender=bridgers[0])
    assert bridged_counts(proof_of_use, receipt) == {operators[0].address: 2}
    assert usage_of(proof_of_use, feeless_model, [operators[0]]) == (6, [0])


def rejected(bridge, proof_of_use, model_id, operators, error, submit):
    with reverts_with(error):
        submit()
    assert usage_of(proof_of_use, model_id, operators[:2]) == (0, [0, 0])
    assert bridge.streamOf(STREAM).checkpoints == 0


def test_checkpoint__below_threshold__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorBelowThreshold",
             lambda: bridge.submitCheckpoint(cp, sign(bridgers[:1], cp), sender=bridgers[0]))


def test_checkpoint__signer_outside_committee__reverts(
    bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators, alice
):
    cp, _ = checkpoint
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorNotCommitteeMember",
             lambda: bridge.submitCheckpoint(cp, sign([bridgers[0], alice], cp), sender=alice))


def test_checkpoint__same_signer_twice__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    twice = sign(bridgers[:1], cp) * 2
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorDuplicateOrUnsortedSigner",
             lambda: bridge.submitCheckpoint(cp, twice, sender=bridgers[0]))


def test_checkpoint__forged_signature__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    inflated = cp._replace(usage=[Usage(operators[0].address, 300)])
    # Signatures of the honest checkpoint do not recover to members for the inflated one.
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorNotCommitteeMember",
             lambda: bridge.submitCheckpoint(inflated, sign(bridgers[:2], cp), sender=bridgers[0]))


def test_checkpoint__broken_link__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    unlinked = cp._replace(previousHead=keccak(text="a head the chain never saw"))
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorBrokenLink",
             lambda: bridge.submitCheckpoint(unlinked, sign(bridgers[:2], unlinked), sender=bridgers[0]))


def test_checkpoint__stale_sequence__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    stale = Checkpoint(STREAM, 3, cp.headHash, keccak(text="h"), keccak(text="r"), [Usage(operators[0].address, 1)])
    with reverts_with("IOTAValidatorStaleSequence"):
        bridge.submitCheckpoint(stale, sign(bridgers[:2], stale), sender=bridgers[0])
    with reverts_with("IOTAValidatorBrokenLink"):  # replaying the accepted checkpoint
        bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    assert usage_of(proof_of_use, feeless_model, operators[:1]) == (4, [0])


def test_checkpoint__unknown_stream__reverts(bridge, checkpoint, sign, bridgers):
    cp, _ = checkpoint
    with reverts_with("IOTAValidatorUnknownStream"):
        bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])


def test_checkpoint__zero_count__reverts(bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators):
    cp, _ = checkpoint
    empty = cp._replace(usage=[Usage(operators[0].address, 0)])
    rejected(bridge, proof_of_use, feeless_model, operators, "IOTAValidatorInvalidUsage",
             lambda: bridge.submitCheckpoint(empty, sign(bridgers[:2], empty), sender=bridgers[0]))


@pytest.mark.parametrize("who", ["no node of the model", "unbound node"])
def test_checkpoint__node_without_a_bound_key__reverts(
    bridge, proof_of_use, funded_model, checkpoint, sign, bridgers, operators, alice, who
):
    stranger = alice
    if who == "unbound node":
        stranger = operators[2]
        bridge.unbindChannelKey(funded_model, stranger, sender=stranger)
    cp, _ = checkpoint
    credited = cp._replace(usage=[*cp.usage, Usage(stranger.address, 5)])
    with reverts_with("IOTAValidatorNodeNotBound"):
        bridge.submitCheckpoint(credited, sign(bridgers[:2], credited), sender=bridgers[0])
    assert bridge.budgetOf(funded_model).balance == BUDGET and bridge.earningsOf(funded_model, stranger) == 0


# ---- channel keys ----


def test_bind_channel_key__serving_node__binds_and_rebinds(bridge, feeless_model, operators):
    node, key = operators[0], keccak(text="a new key")
    receipt = bridge.bindChannelKey(feeless_model, key, sender=node)
    assert bridge.ChannelKeyBound(feeless_model, node.address, key) in receipt.events
    assert bytes(bridge.channelKeyOf(feeless_model, node)) == key  # replaced the fixture's key


def test_bind_channel_key__not_serving_the_model__reverts(bridge, feeless_model, alice):
    with reverts_with("IOTAValidatorNodeNotServing"):
        bridge.bindChannelKey(feeless_model, keccak(text="alice"), sender=alice)


def test_bind_channel_key__another_nodes_key__binds_without_unbinding_it(bridge, feeless_model, operators):
    """The chain cannot tell who holds an Ed25519 key, so it takes a key another node bound: the
    key's holder vouches on the stream for its own node only, and only that node is ever credited
    (tests/unit/test_bridger.py): binding another's key takes nothing and blocks nobody."""
    bridge.bindChannelKey(feeless_model, channel_key(operators[1]), sender=operators[0])
    assert bytes(bridge.channelKeyOf(feeless_model, operators[0])) == channel_key(operators[1])
    assert bytes(bridge.channelKeyOf(feeless_model, operators[1])) == channel_key(operators[1])


def test_bind_channel_key__zero__reverts(bridge, feeless_model, operators):
    with reverts_with("IOTAValidatorZeroChannelKey"):
        bridge.bindChannelKey(feeless_model, ZERO32, sender=operators[0])


def test_bind_channel_key__paid_model__reverts(bridge, served_model, operators):
    paid = served_model("paid", price=5 * JOY)
    with reverts_with("IOTAValidatorNotFeelessStream"):
        bridge.bindChannelKey(paid, keccak(text="k"), sender=operators[0])


def test_unbind_channel_key__by_another_while_the_node_serves__reverts(bridge, coordinator, feeless_model, operators, outsider):
    node = operators[0]
    with reverts_with("IOTAValidatorNodeStillServing"):
        bridge.unbindChannelKey(feeless_model, node, sender=outsider)
    # Once the node stops serving the model, anyone may unbind it; its earnings stay.
    coordinator.stopServingModel(feeless_model, sender=node)
    receipt = bridge.unbindChannelKey(feeless_model, node, sender=outsider)
    assert bridge.ChannelKeyUnbound(feeless_model, node.address, channel_key(node)) in receipt.events
    assert bridge.channelKeyOf(feeless_model, node) == ZERO32
    with reverts_with("IOTAValidatorNodeNotBound"):
        bridge.unbindChannelKey(feeless_model, node, sender=node)


# ---- budgets ----


def protocol_part(marketplace, paid):
    return paid * marketplace.protocolShareBps() // 10_000


def test_checkpoint__funded_budget__pays_the_nodes_keeps_the_protocols_part_and_weighs_it(
    bridge, proof_of_use, marketplace, funded_model, checkpoint, sign, bridgers, operators, model_owner
):
    cp, _ = checkpoint
    receipt = bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    cut0, cut1 = protocol_part(marketplace, 3 * RATE), protocol_part(marketplace, RATE)
    assert bridge.BudgetSpent(funded_model, 4 * RATE, cut0 + cut1) in receipt.events
    assert bridge.budgetOf(funded_model).balance == BUDGET - 4 * RATE
    earned = bridge.earningsOf(funded_model, operators[0]), bridge.earningsOf(funded_model, operators[1])
    assert earned == (3 * RATE - cut0, RATE - cut1)
    assert bridge.protocolEarnings() == cut0 + cut1
    epoch = proof_of_use.currentEpoch()
    # What whoever funded the budget never gets back is the usage's weight, as for a paid request.
    assert (proof_of_use.nodeUsage(epoch, operators[0]), proof_of_use.nodeUsage(epoch, operators[1])) == (cut0, cut1)
    assert proof_of_use.ownerUsage(epoch, model_owner) == cut0 + cut1


def test_checkpoint__budget_runs_out__pays_what_is_left_and_counts_every_inference(
    bridge, proof_of_use, token, feeless_model, checkpoint, sign, bridgers, operators, model_owner
):
    token.approve(bridge, 2 * RATE, sender=model_owner)
    bridge.fundBudget(feeless_model, 2 * RATE, sender=model_owner)
    bridge.setFeelessRate(feeless_model, RATE, sender=model_owner)
    cp, _ = checkpoint  # operator 0 served 3, operator 1 served 1
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    assert bridge.budgetOf(feeless_model).balance == 0
    earned = [bridge.earningsOf(feeless_model, operator) for operator in operators[:2]]
    assert sum(earned) + bridge.protocolEarnings() == 2 * RATE and earned[1] == 0
    assert usage_of(proof_of_use, feeless_model, [])[0] == 4


def test_fund_budget__anyone_for_a_feeless_model__adds_to_it(bridge, token, feeless_model, alice):
    token.approve(bridge, 5 * JOY, sender=alice)
    receipt = bridge.fundBudget(feeless_model, 5 * JOY, sender=alice)
    assert bridge.BudgetFunded(feeless_model, alice.address, 5 * JOY) in receipt.events
    assert bridge.budgetOf(feeless_model).balance == 5 * JOY
    assert token.balanceOf(bridge) == 5 * JOY


def test_fund_budget__paid_model_or_zero__reverts(bridge, token, register_model, feeless_model, model_owner):
    paid = register_model("paid", price=5 * JOY)
    token.approve(bridge, JOY, sender=model_owner)
    with reverts_with("IOTAValidatorNotFeelessStream"):
        bridge.fundBudget(paid, JOY, sender=model_owner)
    with reverts_with("IOTAValidatorZeroAmount"):
        bridge.fundBudget(feeless_model, 0, sender=model_owner)


def test_set_feeless_rate__not_the_owner__reverts(bridge, feeless_model, outsider, operators):
    for caller in (outsider, operators[0]):
        with reverts_with("IOTAValidatorNotModelOwner"):
            bridge.setFeelessRate(feeless_model, 2 * RATE, sender=caller)


def test_set_feeless_rate__lower__applies_only_after_the_delay(
    bridge, chain, funded_model, checkpoint, sign, bridgers, operators, model_owner, marketplace
):
    receipt = bridge.setFeelessRate(funded_model, RATE // 4, sender=model_owner)
    due = receipt.timestamp + bridge.budgetDelay()
    assert bridge.FeelessRateSet(funded_model, RATE // 4, due) in receipt.events
    assert bridge.feelessRateOf(funded_model) == RATE  # nodes serving now are paid what they agreed to
    cp, _ = checkpoint
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    assert bridge.budgetOf(funded_model).balance == BUDGET - 4 * RATE
    chain.pending_timestamp = due
    chain.mine()
    assert bridge.feelessRateOf(funded_model) == RATE // 4
    following = Checkpoint(STREAM, 9, cp.headHash, keccak(text="m9"), keccak(text="r9"), [Usage(operators[0].address, 4)])
    bridge.submitCheckpoint(following, sign(bridgers[:2], following), sender=bridgers[0])
    assert bridge.budgetOf(funded_model).balance == BUDGET - 5 * RATE
    # A higher rate applies at once, and drops a lower one still pending.
    bridge.setFeelessRate(funded_model, RATE // 8, sender=model_owner)
    bridge.setFeelessRate(funded_model, 3 * RATE, sender=model_owner)
    assert bridge.feelessRateOf(funded_model) == 3 * RATE and bridge.budgetOf(funded_model).pendingRateFrom == 0


def test_withdraw_budget__after_the_delay__pays_the_owner_what_is_left(
    bridge, chain, token, funded_model, checkpoint, sign, bridgers, model_owner, outsider
):
    receipt = bridge.requestBudgetWithdrawal(funded_model, BUDGET, sender=model_owner)
    due = receipt.timestamp + bridge.budgetDelay()
    with reverts_with("IOTAValidatorWithdrawalNotDue"):
        bridge.withdrawBudget(funded_model, sender=model_owner)
    cp, _ = checkpoint  # the budget still pays for what is served meanwhile
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    chain.pending_timestamp = due
    chain.mine()
    with reverts_with("IOTAValidatorNotModelOwner"):
        bridge.withdrawBudget(funded_model, sender=outsider)
    before = token.balanceOf(model_owner)
    receipt = bridge.withdrawBudget(funded_model, sender=model_owner)
    assert bridge.BudgetWithdrawn(funded_model, model_owner.address, BUDGET - 4 * RATE) in receipt.events
    assert token.balanceOf(model_owner) == before + BUDGET - 4 * RATE
    assert bridge.budgetOf(funded_model).balance == 0
    with reverts_with("IOTAValidatorZeroAmount"):  # nothing announced any more
        bridge.withdrawBudget(funded_model, sender=model_owner)


def test_withdraw_budget__model_priced_since__still_returns_to_the_owner(
    bridge, chain, token, marketplace, funded_model, model_owner
):
    marketplace.updatePrice(funded_model, 5 * JOY, sender=model_owner)  # no longer feeless
    receipt = bridge.requestBudgetWithdrawal(funded_model, BUDGET, sender=model_owner)
    chain.pending_timestamp = receipt.timestamp + bridge.budgetDelay()
    chain.mine()
    before = token.balanceOf(model_owner)
    bridge.withdrawBudget(funded_model, sender=model_owner)
    assert token.balanceOf(model_owner) == before + BUDGET


def test_request_budget_withdrawal__not_the_owner__reverts(bridge, funded_model, outsider):
    with reverts_with("IOTAValidatorNotModelOwner"):
        bridge.requestBudgetWithdrawal(funded_model, BUDGET, sender=outsider)


def test_withdraw_earnings__after_a_checkpoint__pays_node_and_treasury(
    bridge, token, timelock, funded_model, checkpoint, sign, bridgers, operators, outsider
):
    cp, _ = checkpoint
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    earned, protocol = bridge.earningsOf(funded_model, operators[0]), bridge.protocolEarnings()
    node_before, treasury_before = token.balanceOf(operators[0]), token.balanceOf(timelock)
    assert bridge.withdrawEarnings([funded_model], sender=operators[0]).return_value == earned
    assert bridge.withdrawProtocolEarnings(sender=outsider).return_value == protocol  # anyone; to the treasury
    assert token.balanceOf(operators[0]) == node_before + earned
    assert token.balanceOf(timelock) == treasury_before + protocol
    for call in (
        lambda: bridge.withdrawEarnings([funded_model, funded_model], sender=operators[0]),
        lambda: bridge.withdrawEarnings([funded_model], sender=outsider),  # earned nothing
        lambda: bridge.withdrawProtocolEarnings(sender=outsider),
    ):
        with reverts_with("IOTAValidatorZeroAmount"):
            call()
    # JOY conserved: what stays in the bridge is the budget and the other node's earnings.
    left = bridge.budgetOf(funded_model).balance + bridge.earningsOf(funded_model, operators[1])
    assert token.balanceOf(bridge) == left


def test_set_budget_delay__not_from_timelock__reverts(bridge, deployer, model_owner):
    for caller in (deployer, model_owner):
        with reverts_with("OwnableUnauthorizedAccount"):
            bridge.setBudgetDelay(2 * 3600, sender=caller)


@pytest.mark.parametrize("delay", [3599, 30 * 86400 + 1])
def test_set_budget_delay__outside_bounds__cannot_execute(bridge, governance, alice, bob, dao, delay):
    calls = [(bridge, bridge.setBudgetDelay.encode_input(delay))]
    proposal_id = governance.ready_to_execute(alice, calls, f"Budget delay {delay}", [(alice, 1), (bob, 1)])
    with reverts_with("IOTAValidatorDelayOutOfBounds"):
        dao.execute(proposal_id, sender=alice)


# ---- inclusion ----


def test_inclusion__proof_of_a_covered_message__verifies(bridge, feeless_model, checkpoint, sign, bridgers):
    cp, messages = checkpoint
    bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    leaves = [merkle_leaf(message) for message in messages]
    for index, message in enumerate(messages):  # five leaves: the last is carried up unpaired
        assert bridge.verifyInclusion(STREAM, 3, message, merkle_proof(leaves, index))
    proof = merkle_proof(leaves, 2)
    assert not bridge.verifyInclusion(STREAM, 3, keccak(text="never sent"), proof)  # bad message
    assert not bridge.verifyInclusion(STREAM, 3, messages[2], proof[:1])  # bad proof
    assert not bridge.verifyInclusion(STREAM, 3, leaves[2], proof)  # a leaf is not a message
    assert not bridge.verifyInclusion(STREAM, 4, messages[2], proof)  # no checkpoint at 4


# ---- governance ----


def test_set_committee__not_from_timelock__reverts(bridge, deployer, outsider):
    for caller in (deployer, outsider):
        with reverts_with("OwnableUnauthorizedAccount"):
            bridge.setCommittee([outsider.address], 1, sender=caller)


def test_set_committee__by_proposal__replaces_the_bridgers(
    bridge, governance, alice, bob, carol, feeless_model, checkpoint, sign, bridgers
):
    calls = [(bridge, bridge.setCommittee.encode_input([alice.address, bob.address, carol.address], 2))]
    governance.enact(alice, calls, "New bridgers", [(alice, 1), (bob, 1)])
    assert bridge.committee() == [alice.address, bob.address, carol.address]
    assert not bridge.isCommitteeMember(bridgers[0])
    cp, _ = checkpoint
    with reverts_with("IOTAValidatorNotCommitteeMember"):  # former members lost their seats
        bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
    bridge.submitCheckpoint(cp, sign([alice, carol], cp), sender=alice)


@pytest.mark.parametrize("size, threshold", [(0, 0), (3, 1), (2, 1), (3, 4), (33, 17)])
def test_set_committee__outside_bounds__cannot_execute(bridge, governance, alice, bob, dao, accounts, size, threshold):
    members = [f"0x{i + 1:040x}" for i in range(size)]
    calls = [(bridge, bridge.setCommittee.encode_input(members, threshold))]
    proposal_id = governance.ready_to_execute(alice, calls, f"Committee {size}/{threshold}", [(alice, 1), (bob, 1)])
    with reverts_with("IOTAValidatorInvalidCommittee"):
        dao.execute(proposal_id, sender=alice)


def test_set_committee__repeated_member__cannot_execute(bridge, governance, alice, bob, dao):
    calls = [(bridge, bridge.setCommittee.encode_input([alice.address, alice.address, bob.address], 2))]
    proposal_id = governance.ready_to_execute(alice, calls, "Alice twice", [(alice, 1), (bob, 1)])
    with reverts_with("IOTAValidatorInvalidCommittee"):
        dao.execute(proposal_id, sender=alice)


# ---- budgets: property ----

AMOUNTS = st.one_of(st.integers(0, 10), st.integers(1, 10**20), st.integers(10**18, 10**24))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=AMOUNTS,
    rate=AMOUNTS,
    rounds=st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=1, max_size=3),
)
def test_checkpoints__random_budget_rate_and_usage__pay_in_order_and_conserve_joy(
    bridge, chain, token, marketplace, feeless_model, sign, bridgers, operators, model_owner, budget, rate, rounds
):
    """Each checkpoint pays node by node, count x rate as far as the budget goes, the protocol keeping
    its share of each payment; the bridge always holds exactly budget + earnings + protocol part."""
    snapshot = chain.snapshot()
    try:
        if budget:
            token.approve(bridge, budget, sender=model_owner)
            bridge.fundBudget(feeless_model, budget, sender=model_owner)
        rate = min(rate, 2**96 - 1)
        bridge.setFeelessRate(feeless_model, rate, sender=model_owner)
        left, earned, kept, head = budget, [0, 0], 0, ZERO32
        for index, counts in enumerate(rounds):
            usage = [Usage(operators[i].address, count) for i, count in enumerate(counts) if count]
            new_head = keccak(text=f"head {index}")
            cp = Checkpoint(STREAM, 10 * (index + 1), head, new_head, keccak(text=f"root {index}"), usage)
            bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=bridgers[0])
            head = new_head
            for i, count in enumerate(counts):
                paid = min(count * rate, left)
                cut = paid * marketplace.protocolShareBps() // 10_000
                left, earned[i], kept = left - paid, earned[i] + paid - cut, kept + cut
            assert bridge.budgetOf(feeless_model).balance == left
            assert [bridge.earningsOf(feeless_model, operator) for operator in operators[:2]] == earned
            assert bridge.protocolEarnings() == kept
            assert token.balanceOf(bridge) == left + sum(earned) + kept
    finally:
        chain.restore(snapshot)
