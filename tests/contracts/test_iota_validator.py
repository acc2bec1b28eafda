"""IOTAValidator: stream links the committee attests (the stream's author consented), t-of-n EIP-712 checkpoints crediting ProofOfUse, inclusion proofs,
and the committee only the DAO sets; every refusal leaves nothing recorded. Bridged (feeless)
usage is counted per model and announced per node, but carries no reward weight: nobody paid for
it, so a committee that inflated it could not mint rewards from the usage pool."""

import pytest
from eth_utils import keccak

from helpers.chain_asserts import reverts_with
from joynet.chain.validator import Checkpoint, StreamLink, Usage, ordered_signatures, sign_checkpoint, sign_stream_link
from joynet.channels.merkle import merkle_leaf, merkle_proof, merkle_root

ZERO32 = b"\0" * 32
STREAM = keccak(text="iota-stream:feeless-digits")


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


@pytest.fixture
def feeless_model(register_model, bridge, model_owner, bridgers, sign_link, outsider):
    model_id = register_model("feeless-digits", price=0, stream=STREAM)
    bridge.linkStream(STREAM, model_id, sign_link(bridgers[:2], STREAM, model_id, model_owner), sender=outsider)
    return model_id


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
        counts[event.node] = counts.get(event.node, 0) + event.count
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


def test_checkpoint__threshold_of_members__counts_usage_without_reward_weight(
    bridge, proof_of_use, feeless_model, checkpoint, sign, bridgers, operators, outsider, model_owner
):
    cp, _ = checkpoint
    receipt = bridge.submitCheckpoint(cp, sign(bridgers[:2], cp), sender=outsider)  # anyone may relay
    assert bridge.CheckpointAccepted(STREAM, 3, cp.headHash, cp.messagesRoot, 4) in receipt.events
    assert bridged_counts(proof_of_use, receipt) == {operators[0].address: 3, operators[1].address: 1}
    # Counted for the model, but no reward weight for the nodes or the owner: it was feeless.
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
