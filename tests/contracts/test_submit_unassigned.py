"""A single-node request submitted unassigned: the node that assignNodes would draw now answers
it directly, and submitResult assigns, checks and settles in one transaction. The draw is the
same one anyone could make by assigning first, so submitting gains no node anything: every other
node, a quorum request, a request whose seed is not known yet and a stale copy are refused."""

import pytest

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request

PRICE = 5 * JOY
OUTPUT = b"\x07" * 32


@pytest.fixture
def digits(served_model):
    return served_model("digits", price=PRICE)


@pytest.fixture
def unassigned(request_inference, digits, chain):
    """A fresh, unassigned request for ``digits`` (by default), and the block after it, whose
    existence makes the request's seed known (to calls at the latest block too)."""

    def make(model_id=None, **kwargs):
        request = request_inference(model_id or digits, assign=False, **kwargs)[0]
        chain.mine()
        return request

    return make


def _submit(marketplace, request, node, output=OUTPUT, proof=b""):
    return marketplace.submitResult(request, output, "ipfs://bafyoutput", proof, sender=node)


def test_submit_unassigned__by_the_drawn_node__assigned_and_settled_in_one_transaction(
    marketplace, coordinator, token, unassigned, assign_nodes, accounts, chain, model_owner
):
    request = unassigned()
    (drawn,) = marketplace.drawnNodes(request)
    snapshot = chain.snapshot()
    assert assign_nodes(request).nodes == [drawn]  # the draw assignNodes makes in the same state
    chain.restore(snapshot)
    node = accounts[drawn]
    before = {drawn: marketplace.balances(drawn), model_owner.address: marketplace.balances(model_owner)}
    escrow_before = marketplace.totalEscrow()

    receipt = _submit(marketplace, request, node)

    assert marketplace.requestStatus(request.id) == 2  # Settled
    (assigned,) = receipt.decode_logs(marketplace.NodesAssigned)  # announced like any assignment
    assert (assigned.requestId, list(assigned.nodes), assigned.deadline) == (request.id, [drawn], request.deadline)
    (submitted,) = receipt.decode_logs(marketplace.ResultSubmitted)
    assert (submitted.requestId, submitted.node) == (request.id, drawn)
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert marketplace.balances(drawn) - before[drawn] == settled.nodesPaid > 0
    assert marketplace.balances(model_owner) - before[model_owner.address] == settled.ownerPaid > 0
    assert marketplace.totalEscrow() == escrow_before - PRICE
    # The bond locked by the assignment was released with the settlement.
    info = coordinator.nodeInfo(drawn)
    assert (info.activeTasks, info.bonded) == (0, 0)


def test_submit_unassigned__by_a_node_not_drawn__reverts_and_leaves_the_request_open(
    marketplace, coordinator, unassigned, operators
):
    # A node grabbing requests it was not drawn for, to earn their fees.
    request = unassigned()
    (drawn,) = marketplace.drawnNodes(request)
    others = [operator for operator in operators if operator.address != drawn]
    assert others

    for other in others:
        with reverts_with("ModelMarketplaceNotAssigned", requestId=request.id, caller=other.address):
            _submit(marketplace, request, other)

    assert marketplace.requestStatus(request.id) == 1  # Open, unassigned
    assert marketplace.requestDigest(request.id) == marketplace.hashRequest(request)
    assert all(coordinator.nodeInfo(operator).activeTasks == 0 for operator in operators)


def test_submit_unassigned__by_an_outsider__reverts_not_assigned(marketplace, unassigned, outsider):
    request = unassigned()
    with reverts_with("ModelMarketplaceNotAssigned", requestId=request.id, caller=outsider.address):
        _submit(marketplace, request, outsider)


def test_submit_unassigned__quorum_request__reverts_not_assigned_yet(
    marketplace, coordinator, register_model, digits, operators, unassigned, accounts
):
    # A quorum's nodes must commit before anyone reveals: its seats are never taken by a result.
    quorum3 = register_model("quorum3", price=9 * JOY, quorum=3)
    for operator in operators:
        coordinator.serveModel(quorum3, sender=operator)
    request = unassigned(quorum3)
    drawn = marketplace.drawnNodes(request)
    assert len(set(drawn)) == 3

    with reverts_with("ModelMarketplaceNotAssignedYet", requestId=request.id):
        _submit(marketplace, request, accounts[drawn[0]])


def test_submit_unassigned__in_the_request_block__reverts_seed_not_available(
    marketplace, digits, token, requester, chain, operators
):
    # Nobody knows the draw in the request's own block (its hash seeds it): a node that is also
    # the requester cannot request and answer in one transaction to pick the request up.
    token.approve(marketplace, PRICE, sender=requester)
    receipt = marketplace.requestInference(
        digits, b"\x01" * 32, "ipfs://bafyinput", PRICE, chain.pending_timestamp + 600, sender=requester
    )
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    request = Request.from_event(event)

    # (Reverts of calls reach Ape undecoded: matched by the error's selector.)
    for operator in operators:
        with reverts_with("ModelMarketplaceSeedNotAvailable", abi=marketplace):
            marketplace.submitResult.call(
                request, OUTPUT, "ipfs://bafyoutput", b"", sender=operator, block_id=receipt.block_number
            )
    with reverts_with("ModelMarketplaceSeedNotAvailable", abi=marketplace):
        marketplace.drawnNodes(request, block_id=receipt.block_number)


def test_submit_unassigned__after_the_deadline__reverts_deadline_passed(
    marketplace, unassigned, accounts, chain
):
    request = unassigned(deadline_in=120)
    (drawn,) = marketplace.drawnNodes(request)
    chain.pending_timestamp = request.deadline + 1

    with reverts_with("ModelMarketplaceDeadlinePassed", requestId=request.id, deadline=request.deadline):
        _submit(marketplace, request, accounts[drawn])


def test_submit_unassigned__assigned_meanwhile__stale_copy_reverts_assigned_copy_settles(
    marketplace, unassigned, assign_nodes, accounts
):
    request = unassigned()
    (drawn,) = marketplace.drawnNodes(request)
    assigned = assign_nodes(request)  # a standby node or the requester's client assigned it first

    with reverts_with("ModelMarketplaceRequestMismatch", requestId=request.id):
        _submit(marketplace, request, accounts[drawn])
    with reverts_with("ModelMarketplaceAlreadyAssigned", abi=marketplace):
        marketplace.drawnNodes(assigned)

    _submit(marketplace, assigned, accounts[drawn])
    assert marketplace.requestStatus(request.id) == 2


def test_submit_unassigned__altered_request__reverts_request_mismatch(marketplace, unassigned, accounts):
    request = unassigned()
    (drawn,) = marketplace.drawnNodes(request)
    # A node claiming a larger escrow, or naming itself as the assigned node, is refused.
    for forged in (request._replace(escrow=request.escrow * 2), request._replace(nodes=[drawn])):
        with reverts_with("ModelMarketplaceRequestMismatch", requestId=request.id):
            _submit(marketplace, forged, accounts[drawn])


def test_drawn_nodes__follows_the_loads__matches_what_assign_nodes_assigns(
    marketplace, unassigned, assign_nodes
):
    # Each assignment changes a node's load, hence the next single-node draws: what drawnNodes
    # says always matches what assignNodes then assigns, request after request.
    for _ in range(6):
        request = unassigned()
        drawn = list(marketplace.drawnNodes(request))
        assert assign_nodes(request).nodes == drawn

