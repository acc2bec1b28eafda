"""Attack: copying in quorums.

The attacker runs one of the k nodes of a quorum request and never runs the model: it waits for
the other nodes' results to appear on chain and submits the same, to be paid with them.

Rule: no copying. Quorum results are committed sealed, sealResult(request, node, output, salt),
before the deadline; nothing is revealed until every node has committed or the deadline has
passed, and by then commitments are closed. A copier that seals a guess cannot reveal the
honest output (RevealMismatch: the seal binds its own address and salt), a copier that copies
another node's sealed value cannot open it, and a copier that waits for the reveals cannot
commit any more. Whatever it tries, it is slashed (as silent, or as a dissenter) and paid nothing;
the honest nodes are paid.

Old code (43cec05): results went on chain in the clear (ResultSubmitted) as each node
submitted. The third node of a quorum of 3 read the first node's output commitment from the
event, submitted it and was paid 2.1 JOY (its third of the nodes' 70 % of 9 JOY) without
running the model; the request settled.
"""

import pytest

from helpers.adversary import by_address  # noqa: F401 (fixtures)
from helpers.adversary import (
    NODE_SHARE_BPS, BPS, SETTLED, TASK_BOND, commit, output, past_deadline, past_reveal_window, reveal, salt_for,
)
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key, seal_result

PRICE = 9 * JOY
STAKE = 2_000 * JOY
TRUTH = output("the embedding")


@pytest.fixture
def quorum_request(register_model, register_node, operators, request_inference, by_address):
    """A quorum-3 request served by exactly three nodes: (request, two honest nodes, the copier)."""
    model_id = register_model("minilm", price=PRICE, quorum=3)
    for operator in operators[:3]:
        register_node(operator, [model_id])
    request, nodes, _ = request_inference(model_id)
    honest = [by_address[node] for node in nodes[:2]]
    copier = by_address[nodes[2]]
    return request, honest, copier


def settle_after_expiry(marketplace, chain, request, closer):
    past_reveal_window(marketplace, chain, request)
    return marketplace.closeExpired(request, sender=closer)


def assert_copier_lost_and_honest_paid(marketplace, coordinator, token, timelock, receipt, honest, copier, treasury):
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == TRUTH
    per_node = PRICE * NODE_SHARE_BPS // BPS // 2
    assert [marketplace.balances(node) for node in honest] == [per_node, per_node]
    assert marketplace.balances(copier) == 0
    assert coordinator.nodeInfo(copier).stake == STAKE - TASK_BOND
    assert token.balanceOf(timelock) == treasury + TASK_BOND  # the slash went to the treasury


def test_copier__reads_the_commitments__sees_only_sealed_values_that_name_their_node(
    marketplace, quorum_request
):
    request, honest, copier = quorum_request
    receipts = [
        marketplace.commitResult(request, seal_result(request.id, node.address, TRUTH, salt_for(request, node.address)),
                                 sender=node)
        for node in honest
    ]
    # All the chain shows is a count and, in storage, each node's sealed value.
    events = [receipt.decode_logs(marketplace.ResultCommitted)[0] for receipt in receipts]
    assert [event.committed for event in events] == [1, 2]
    assert not any(receipt.decode_logs(marketplace.ResultSubmitted) for receipt in receipts)
    sealed = [marketplace.resultOf(request.id, slot) for slot in range(2)]
    assert TRUTH not in sealed and sealed[0] != sealed[1]  # same output, different seals
    # It cannot reveal without a commitment, and nobody can reveal before everyone committed.
    with reverts_with("ModelMarketplaceNotCommitted"):
        marketplace.revealResult(request, TRUTH, b"\0" * 32, "ipfs://copied", b"", sender=copier)
    with reverts_with("ModelMarketplaceRevealNotOpen"):
        reveal(marketplace, request, honest[0], TRUTH)


def test_copier__copies_another_nodes_sealed_value__cannot_reveal_it_and_is_slashed(
    marketplace, coordinator, token, timelock, chain, outsider, quorum_request
):
    request, honest, copier = quorum_request
    treasury = token.balanceOf(timelock)
    for node in honest:
        commit(marketplace, request, node, TRUTH)
    marketplace.commitResult(request, marketplace.resultOf(request.id, 0), sender=copier)  # a copy of slot 0's seal
    # Everyone committed: the reveals open. The honest nodes reveal; the copier now knows the
    # output and even the first node's salt (both in its reveal's calldata)...
    for node in honest:
        reveal(marketplace, request, node, TRUTH)
    # ...but the seal it copied binds the first node's address: no salt opens it for the copier.
    for salt in (salt_for(request, honest[0].address), salt_for(request, copier.address), model_key("any")):
        with reverts_with("ModelMarketplaceRevealMismatch"):
            marketplace.revealResult(request, TRUTH, salt, "ipfs://copied", b"", sender=copier)
    receipt = settle_after_expiry(marketplace, chain, request, outsider)
    assert_copier_lost_and_honest_paid(marketplace, coordinator, token, timelock, receipt, honest, copier, treasury)


def test_copier__commits_a_guess_then_sees_the_truth__cannot_switch_and_is_slashed(
    marketplace, coordinator, token, timelock, chain, outsider, quorum_request
):
    request, honest, copier = quorum_request
    treasury = token.balanceOf(timelock)
    guess = output("a guess")
    commit(marketplace, request, copier, guess)  # committing early, so that the reveals open early
    for node in honest:
        commit(marketplace, request, node, TRUTH)
    for node in honest:
        reveal(marketplace, request, node, TRUTH)
    with reverts_with("ModelMarketplaceRevealMismatch"):
        reveal(marketplace, request, copier, TRUTH)  # its seal holds the guess
    # Revealing the guess makes it a dissenter; staying silent makes it silent: slashed either way.
    receipt = reveal(marketplace, request, copier, guess)
    assert marketplace.requestStatus(request.id) == SETTLED
    assert_copier_lost_and_honest_paid(marketplace, coordinator, token, timelock, receipt, honest, copier, treasury)


def test_copier__waits_for_the_reveals__commitments_closed_by_then_and_slashed_as_silent(
    marketplace, coordinator, token, timelock, chain, outsider, quorum_request
):
    request, honest, copier = quorum_request
    treasury = token.balanceOf(timelock)
    for node in honest:
        commit(marketplace, request, node, TRUTH)
    # The copier never commits, so the reveals open only after the deadline...
    with reverts_with("ModelMarketplaceRevealNotOpen"):
        reveal(marketplace, request, honest[0], TRUTH)
    past_deadline(chain, request)
    for node in honest:
        reveal(marketplace, request, node, TRUTH)
    # ...when it is too late to commit what it has now seen.
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        commit(marketplace, request, copier, TRUTH)
    receipt = settle_after_expiry(marketplace, chain, request, outsider)
    assert_copier_lost_and_honest_paid(marketplace, coordinator, token, timelock, receipt, honest, copier, treasury)
    (missed,) = receipt.decode_logs(coordinator.DeadlineMissed)
    assert missed.node == copier.address
