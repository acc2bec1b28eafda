"""Attack: free answers.

The attacker is a requester that also runs one of the k nodes assigned to its request. It lets
the honest nodes compute, reads their answer, and then keeps its own node from completing the
quorum (silent until expiry, or dissenting at quorum 2), so that the request ends without a
settlement: the answer in hand, the escrow back.

Rule: a requester never holds a published answer together with a full refund. Nodes whose
results form the accepted answer are paid, silent nodes are slashed (to the treasury), and a
quorum that ends without a majority after any reveal refunds the escrow minus the nodes' share.
At quorum 3 the two honest nodes are a strict majority of the three assigned: they are paid, the
silent node is slashed and the requester gets nothing back. At quorum 2 a dissent leaves no
majority: the refund is the escrow less the nodes' 70 %, so the attacker's JOY strictly falls.

Old code (43cec05): a quorum was judged only once all k nodes had submitted. With its node
silent at quorum 3, the request expired: a full 9 JOY refund, honest nodes paid 0, and the
attacker's node lost 10 JOY of which 5 came back to the requester (net -5 JOY for a 9 JOY
answer). At quorum 2 its node dissented: no majority, a full 5 JOY refund, nobody slashed, the
honest node paid 0 (net 0 JOY, the answer free).
"""

import pytest

from helpers.adversary import by_address  # noqa: F401 (fixtures)
from helpers.adversary import (
    NODE_SHARE_BPS, BPS, SETTLED, TASK_BOND, commit, joy_held, output, past_deadline, past_reveal_window, reveal,
)
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY

TRUTH = output("the honest answer")


@pytest.fixture
def attacker_node(operators):
    """The requester's own node (operators[3]; the requester is accounts[5])."""
    return operators[3]


@pytest.fixture
def quorum_model(register_model, register_node, operators, attacker_node):
    """A model of quorum k served by k - 1 honest nodes and the attacker's node, so that every
    request of it is assigned to all of them."""

    def make(quorum, price):
        model_id = register_model(f"q{quorum}", price=price, quorum=quorum)
        for operator in operators[: quorum - 1] + [attacker_node]:
            register_node(operator, [model_id])
        return model_id

    return make


def split(request, attacker_node, by_address):
    honest = [by_address[node] for node in request.nodes if node != attacker_node.address]
    assert len(honest) == len(request.nodes) - 1
    return honest


@pytest.mark.parametrize("opens_reveals", [False, True], ids=["never-commits", "commits-and-withholds"])
def test_own_node_silent__quorum_3__honest_nodes_paid_silent_node_slashed_no_refund(
    marketplace, coordinator, token, timelock, chain, requester, outsider, by_address, quorum_model, attacker_node,
    request_inference, opens_reveals,
):
    price = 9 * JOY
    model_id = quorum_model(3, price)
    before = joy_held(token, marketplace, coordinator, requester, attacker_node)
    treasury = token.balanceOf(timelock)
    request, _, _ = request_inference(model_id)
    honest = split(request, attacker_node, by_address)
    if opens_reveals:
        commit(marketplace, request, attacker_node, output("garbage"))  # opens the reveals at the honest commits
    for node in honest:
        commit(marketplace, request, node, TRUTH)
    if not opens_reveals:
        past_deadline(chain, request)
    for node in honest:
        reveal(marketplace, request, node, TRUTH)  # the answer is public: the attacker has it
    past_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=requester)

    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == TRUTH and marketplace.requestStatus(request.id) == SETTLED
    assert not receipt.decode_logs(marketplace.InferenceRefunded)  # no refund at all
    per_node = price * NODE_SHARE_BPS // BPS // 2
    assert [marketplace.balances(node) for node in honest] == [per_node, per_node]
    assert token.balanceOf(timelock) == treasury + TASK_BOND  # its node's bond, to the treasury
    # The attacker paid the full price and lost its node's bond.
    assert joy_held(token, marketplace, coordinator, requester, attacker_node) == before - price - TASK_BOND


def test_own_node_dissents__quorum_2__refund_is_escrow_less_the_nodes_share_so_attacker_loses(
    marketplace, coordinator, token, chain, requester, by_address, quorum_model, attacker_node, request_inference,
):
    price = 5 * JOY
    model_id = quorum_model(2, price)
    before = joy_held(token, marketplace, coordinator, requester, attacker_node)
    request, _, _ = request_inference(model_id)
    (honest,) = split(request, attacker_node, by_address)
    commit(marketplace, request, honest, TRUTH)
    commit(marketplace, request, attacker_node, output("dissent"))
    reveal(marketplace, request, honest, TRUTH)
    receipt = reveal(marketplace, request, attacker_node, output("dissent"))  # the last reveal judges it

    (refund,) = receipt.decode_logs(marketplace.InferenceRefunded)
    nodes_share = price * NODE_SHARE_BPS // BPS
    assert refund.amount == price - nodes_share
    assert not receipt.decode_logs(coordinator.NodeSlashed)  # nobody can tell who was right
    after = joy_held(token, marketplace, coordinator, requester, attacker_node)
    assert after == before - nodes_share < before


def test_own_node_silent__quorum_2__slashed_and_refund_less_the_nodes_share(
    marketplace, coordinator, token, timelock, chain, requester, outsider, by_address, quorum_model, attacker_node,
    request_inference,
):
    price = 5 * JOY
    model_id = quorum_model(2, price)
    before = joy_held(token, marketplace, coordinator, requester, attacker_node)
    request, _, _ = request_inference(model_id)
    (honest,) = split(request, attacker_node, by_address)
    commit(marketplace, request, honest, TRUTH)
    past_deadline(chain, request)
    reveal(marketplace, request, honest, TRUTH)
    past_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)

    (refund,) = receipt.decode_logs(marketplace.InferenceRefunded)
    nodes_share = price * NODE_SHARE_BPS // BPS
    assert refund.amount == price - nodes_share
    (slash,) = receipt.decode_logs(coordinator.NodeSlashed)
    assert slash.node == attacker_node.address and slash.beneficiaryShare == 0
    after = joy_held(token, marketplace, coordinator, requester, attacker_node)
    assert after == before - nodes_share - TASK_BOND


@pytest.mark.parametrize("quorum", [2, 3])
def test_own_node_declines__after_an_honest_commit__reverts_so_the_request_runs_on(
    marketplace, chain, requester, by_address, quorum_model, attacker_node, request_inference, quorum,
):
    # A decline refunds in full, so it is refused once any result is in (even sealed).
    model_id = quorum_model(quorum, 5 * JOY)
    request, _, _ = request_inference(model_id)
    honest = split(request, attacker_node, by_address)
    commit(marketplace, request, honest[0], TRUTH)
    with reverts_with("ModelMarketplaceResultsSubmitted"):
        marketplace.declineRequest(request, "input too large", sender=attacker_node)
