"""Attack: unmeetable deadlines.

The attacker is a requester. It asks for an inference with a deadline one second after its
request, so that no node can answer in time, then closes the request as expired: it wants its
escrow back plus part of the slashed bonds, and the nodes out of assignment.

Rule: a requester's JOY after a request is at most what it had before, and it never receives
any part of a slash; a node is slashed for silence only after it had at least the response
window. A deadline must leave the response window (``ModelMarketplaceInvalidDeadline``
otherwise), a node assigned late gets a deadline moved to the end of its window, and every
slash goes to the treasury.

Old code (43cec05): any deadline after the request's block was accepted; closeExpired refunded
the escrow in full and paid the requester half of each silent node's 10 JOY bond: +5 JOY per
request at quorum 1, +15 JOY at quorum 3 (+45 JOY after three requests), and the three requests
took the node(s) out of assignment (three missed deadlines).
"""

import pytest

from helpers.adversary import by_address  # noqa: F401 (fixtures)
from helpers.adversary import TASK_BOND, output, past_deadline, past_reveal_window
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, model_key

PRICE = 5 * JOY


@pytest.fixture
def served(register_model, register_node, operators):
    """A model of the given quorum served by exactly that many nodes (so all of them are drawn)."""

    def make(quorum, response_window=0):
        model_id = register_model(f"model-q{quorum}", price=PRICE, quorum=quorum, response_window=response_window)
        for operator in operators[:quorum]:
            register_node(operator, [model_id])
        return model_id, operators[:quorum]

    return make


def request_with_deadline(marketplace, token, requester, chain, model_id, seconds_after_request):
    """The attacker's request: its block's time is pinned, so the deadline is exactly
    ``seconds_after_request`` after it."""
    token.approve(marketplace, PRICE, sender=requester)
    now = chain.pending_timestamp
    chain.pending_timestamp = now
    receipt = marketplace.requestInference(
        model_id, model_key(f"input:{now}"), "ipfs://bafyinput", PRICE, now + seconds_after_request, sender=requester
    )
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    return Request.from_event(event)


@pytest.mark.parametrize("quorum", [1, 3])
def test_request__deadline_one_second_after__reverts_invalid_deadline(
    marketplace, token, requester, chain, served, quorum
):
    model_id, _ = served(quorum)
    balance = token.balanceOf(requester)
    for seconds in (1, marketplace.minResponseWindow() - 1):
        with reverts_with("ModelMarketplaceInvalidDeadline"):
            request_with_deadline(marketplace, token, requester, chain, model_id, seconds)
    assert token.balanceOf(requester) == balance and marketplace.requestCount() == 0
    # The earliest deadline allowed leaves exactly the response window.
    request = request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
    assert request.deadline - chain.blocks.head.timestamp == marketplace.minResponseWindow()


def test_request__below_the_models_own_window__reverts_invalid_deadline(marketplace, token, requester, chain, served):
    # A model that declared that its nodes need 10 minutes cannot be asked for less, even when
    # the network's minimum would allow it.
    model_id, _ = served(1, response_window=600)
    with reverts_with("ModelMarketplaceInvalidDeadline"):
        request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
    request_with_deadline(marketplace, token, requester, chain, model_id, 600)


@pytest.mark.parametrize("quorum", [1, 3])
def test_close_expired__no_node_answered_a_valid_request__requester_gets_back_exactly_its_escrow_and_treasury_the_slash(
    marketplace, coordinator, token, requester, timelock, outsider, chain, served, assign_nodes, quorum
):
    # The most the attacker can do now: the shortest valid deadline, and nodes that stay silent.
    model_id, nodes = served(quorum)
    before, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    request = assign_nodes(
        request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
    )
    if quorum > 1:
        past_reveal_window(marketplace, chain, request)
    else:
        past_deadline(chain, request)
    receipt = marketplace.closeExpired(request, sender=requester)
    assert token.balanceOf(requester) == before  # the escrow back, and not a wei more
    assert token.balanceOf(timelock) == treasury + quorum * TASK_BOND  # every slashed bond
    slashes = receipt.decode_logs(coordinator.NodeSlashed)
    assert len(slashes) == quorum
    assert all(s.beneficiaryShare == 0 for s in slashes)


def test_three_expired_requests__each_node_had_its_window__requester_never_gains(
    marketplace, coordinator, token, requester, outsider, chain, served, assign_nodes
):
    # The old attack three times over, at the shortest deadline allowed: a node that really is
    # silent three times leaves assignment, as it should, but the requester earned nothing.
    model_id, (node,) = served(1)
    before = token.balanceOf(requester)
    for _ in range(3):
        request = assign_nodes(
            request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
        )
        assert request.deadline - chain.blocks.head.timestamp >= marketplace.minResponseWindow()
        past_deadline(chain, request)
        marketplace.closeExpired(request, sender=outsider)
        assert token.balanceOf(requester) == before
    assert not coordinator.nodeInfo(node).active


def test_assign_nodes__late__moves_the_deadline_so_the_node_gets_its_window_and_is_paid(
    marketplace, token, requester, chain, served, assign_nodes, by_address
):
    # A requester that makes a valid request but lets its assignment wait until its deadline is
    # nearly over still cannot hand a node a deadline it cannot meet.
    model_id, _ = served(1)
    window = marketplace.minResponseWindow()
    request = request_with_deadline(marketplace, token, requester, chain, model_id, window)
    chain.pending_timestamp = request.deadline - 1
    assigned = assign_nodes(request)
    assigned_at = chain.blocks.head.timestamp
    assert assigned.deadline == assigned_at + window > request.deadline
    # The node answers after the original deadline, within its own window, and is paid.
    chain.pending_timestamp = assigned_at + window - 5
    node = by_address[assigned.nodes[0]]
    marketplace.submitResult(assigned, output("answer"), "ipfs://bafyout", b"", sender=node)
    assert marketplace.balances(node) == PRICE * 7_000 // 10_000


def test_assign_nodes__after_the_deadline__moves_it_and_expiry_waits_for_the_window(
    marketplace, token, requester, outsider, chain, served, assign_nodes
):
    model_id, _ = served(1)
    request = request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
    chain.pending_timestamp = request.deadline + 20
    assigned = assign_nodes(request)
    # The request cannot be closed (and the node slashed) before the node's moved deadline.
    chain.pending_timestamp = assigned.deadline
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(assigned, sender=requester)


def test_close_expired__never_assigned__full_refund_and_nobody_slashed(
    marketplace, coordinator, token, requester, timelock, outsider, chain, served
):
    # Left unassigned, a request only comes back: nothing was slashed, nothing is gained.
    model_id, nodes = served(3)
    before, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    request = request_with_deadline(marketplace, token, requester, chain, model_id, marketplace.minResponseWindow())
    past_deadline(chain, request)
    marketplace.closeExpired(request, sender=outsider)
    assert token.balanceOf(requester) == before and token.balanceOf(timelock) == treasury
    assert all(coordinator.nodeInfo(node).stake == 2_000 * JOY for node in nodes)
