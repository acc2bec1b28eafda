"""assignNodesBatch: several requests assigned in one transaction, as an edge agent assigns the
pending requests it sees; a request that cannot be assigned is skipped, never the whole batch."""

import pytest

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request

PRICE = 5 * JOY


@pytest.fixture
def digits(served_model):
    return served_model("digits", price=PRICE)


def _assigned(marketplace, receipt):
    return {event.requestId: event for event in receipt.decode_logs(marketplace.NodesAssigned)}


def test_assign_batch__pending_requests__each_assigned_as_alone(
    marketplace, coordinator, digits, request_inference, outsider, assign_nodes, chain
):
    pending = [request_inference(digits, assign=False)[0] for _ in range(3)]
    # What each request would draw on its own, in this same state.
    snapshot = chain.snapshot()
    alone = [assign_nodes(request).nodes for request in pending]
    chain.restore(snapshot)

    receipt = marketplace.assignNodesBatch(pending, sender=outsider)

    events = _assigned(marketplace, receipt)
    assert sorted(events) == [request.id for request in pending]
    for request, nodes in zip(pending, alone):
        assigned = request.assigned(events[request.id])
        assert assigned.nodes == nodes
        assert marketplace.requestDigest(request.id) == marketplace.hashRequest(assigned)
    assert sum(coordinator.nodeInfo(node).activeTasks for node in {n for ns in alone for n in ns}) == 3


def test_assign_batch__one_already_assigned_or_closed_or_altered__skipped_others_assigned(
    marketplace, digits, request_inference, assign_nodes, outsider, accounts
):
    assigned_first, closed, altered, fresh = (request_inference(digits, assign=False)[0] for _ in range(4))
    # A front-runner assigns one of the batch's requests first; another is declined (closed).
    assign_nodes(assigned_first)
    declined = assign_nodes(closed)
    marketplace.declineRequest(declined, "bad input", sender=accounts[declined.nodes[0]])
    forged = altered._replace(escrow=altered.escrow + 1)

    receipt = marketplace.assignNodesBatch([assigned_first, closed, forged, fresh], sender=outsider)

    assert list(_assigned(marketplace, receipt)) == [fresh.id]
    assert marketplace.assignNodesBatch.call([forged], sender=outsider) == 0
    assert marketplace.requestStatus(altered.id) == 1  # still open, still unassigned
    assert marketplace.requestDigest(altered.id) == marketplace.hashRequest(altered)


def test_assign_batch__seed_gone_or_no_eligible_node__skipped_without_reverting(
    marketplace, coordinator, digits, register_model, request_inference, outsider, chain, operators
):
    stale = request_inference(digits, assign=False)[0]
    chain.mine(300)  # the request block's hash is gone (the EVM keeps 256)
    for operator in operators:  # and the nodes' leases with it: live agents renew them
        coordinator.renewLease(sender=operator)
    unserved_model = register_model("nobody-serves-it", price=PRICE)
    unserved = request_inference(unserved_model, assign=False)[0]
    fresh = request_inference(digits, assign=False)[0]

    receipt = marketplace.assignNodesBatch([stale, unserved, fresh], sender=outsider)

    assert list(_assigned(marketplace, receipt)) == [fresh.id]
    with reverts_with("ModelMarketplaceSeedNotAvailable"):
        marketplace.assignNodes(stale, sender=outsider)


def test_assign_batch__in_the_request_block__nothing_assigned(marketplace, digits, token, requester, chain):
    # The seed of a request is its block's hash, unknown in that block: a batch that runs in the
    # request's block (a requester contract batching its own fresh request) assigns nothing.
    token.approve(marketplace, PRICE, sender=requester)
    receipt = marketplace.requestInference(
        digits, b"\x01" * 32, "ipfs://bafyinput", PRICE, chain.pending_timestamp + 600, sender=requester
    )
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    request = Request.from_event(event)
    # An eth_call at the request's own block sees no hash for it.
    assert marketplace.assignNodesBatch.call([request], block_id=receipt.block_number) == 0


def test_assign_batch__empty__assigns_nothing(marketplace, outsider):
    receipt = marketplace.assignNodesBatch([], sender=outsider)
    assert not receipt.decode_logs(marketplace.NodesAssigned)
