"""Attack: steering the assignment.

The attacker is a requester contract (contracts/test/AssignmentSteerer.sol). It wants its
requests served by a node of its choosing (its own, or one it targets), so it makes the draw in
a transaction that reverts unless the chosen node is drawn, and tries again until it is.

Rule: nobody can choose or predict, within the transaction that makes a request, which nodes it
will be assigned to; nodes are assigned from the next block on, seeded by the request block's
hash and the request id only, so the same request draws the same nodes in every later block and
from every sender: retrying gains nothing. Over many requests a chosen node gets what chance
gives, and assignment stays load-aware.

Old code (43cec05): requestInference drew the nodes at once from keccak(prevrandao, request id),
which the request's own transaction could read. A contract that reverted unless its chosen node
(one of four idle ones) was drawn got it for 10 of 10 requests (fair share 1/4) after 35
attempts, the 25 reverted ones costing gas only.

A node is an attacker too: the draw is fixed by the seed, but it reads state a node controls,
its place in the model's eligibility set (leaving and rejoining moves it to the end; and, under
load, its declared capacity: see test_sybil_majority.py). A node operator contract
(contracts/test/NodeSteerer.sol) that assigns someone else's request tries the draw as it
stands, then moves itself and tries again, in one transaction: the coordinator now refuses to
assign a model whose set changed in the same block.

The move need not share the assignment's transaction: a node that disliked the draw could move
in the block where the assignment lands, ahead of it; the next block's assignment read the new
order. Now a change of the set after the request's block reseeds the draw with the hash of the
block of the change, which the node could not know when it moved.

A reseeded draw is blind, but it is a new draw: a node that disliked a pending request's draw
could leave and rejoin the set ahead of the assignment, again and again, until a draw gave it
the request. A node that left a set now joins none for REJOIN_DELAY blocks, past the 256 blocks
within which any pending request is assigned: its leave re-rolls the draw without it.

A node's lease (it is drawn only while the lease it renews runs) is a switch a node flips at
will, with no delay, in the block of an assignment if it likes. It changes no set, so it reseeds
nothing: the node can only take itself out of a draw it knows, never into one.
"""

import pytest

from helpers.adversary import by_address, fresh_account  # noqa: F401 (fixtures)
from helpers.adversary import in_one_block, output, request_event, revert_name
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request

PRICE = 5 * JOY
STEERER_FUNDS = 1_000 * JOY


@pytest.fixture
def digits(served_model):
    """A quorum-1 model served by the four operators, each with capacity 4."""
    return served_model("digits", price=PRICE)


@pytest.fixture
def steerer(project, marketplace, token, requester, fresh_account):
    """The attacker's requester contract, funded by the requester."""
    contract = fresh_account().deploy(project.AssignmentSteerer, marketplace, token)
    token.transfer(contract, STEERER_FUNDS, sender=requester)
    return contract


def renew_due_leases(coordinator, chain, nodes):
    """Renews the leases with a third or less left, as the nodes' agents do: a long run of
    requests outlasts a lease."""
    for node in nodes:
        if coordinator.leaseEnd(node) - (chain.blocks.height + 1) <= coordinator.leaseBlocks() // 3:
            coordinator.renewLease(sender=node)


def steered_request(marketplace, steerer, model_id, chain, requester, deadline_in=600) -> Request:
    receipt = steerer.request(model_id, chain.pending_timestamp + deadline_in, sender=requester)
    return request_event(marketplace, receipt)


def test_request_and_assign__in_the_request_transaction__seed_not_available_and_nothing_happens(
    marketplace, token, steerer, digits, chain, requester, coordinator, operators
):
    with reverts_with("ModelMarketplaceSeedNotAvailable", abi=marketplace):
        steerer.requestAndAssign(digits, chain.pending_timestamp + 600, sender=requester)
    # The whole attempt reverted: no request, no escrow, no task.
    assert marketplace.requestCount() == 0 and token.balanceOf(steerer) == STEERER_FUNDS
    assert all(coordinator.nodeInfo(operator).activeTasks == 0 for operator in operators)


def test_assign_if_drawn__retried_in_later_blocks_and_by_other_senders__same_draw_so_it_keeps_reverting(
    marketplace, steerer, digits, chain, requester, outsider, operators, assign_nodes, fresh_account
):
    request = steered_request(marketplace, steerer, digits, chain, requester)
    snapshot = chain.snapshot()
    drawn = assign_nodes(request).nodes[0]  # what the draw is, seen by trying it once
    chain.restore(snapshot)
    unwanted = next(operator for operator in operators if operator.address != drawn)
    # The attacker wants another node. Whenever it tries, and whoever sends it, the draw is the same.
    for blocks_later, sender in ((0, requester), (1, outsider), (7, fresh_account()), (60, requester)):
        chain.mine(blocks_later)
        with reverts_with("AssignmentSteererNotDrawn"):
            steerer.assignIfDrawn(request, unwanted, sender=sender)
    # And the node that is drawn is the one the draw gave from the first block on.
    receipt = steerer.assignIfDrawn(request, drawn, sender=outsider)
    (assigned,) = receipt.decode_logs(marketplace.NodesAssigned)
    assert list(assigned.nodes) == [drawn]


def test_assign_if_drawn__many_requests__chosen_node_gets_its_fair_share_only(
    marketplace, coordinator, steerer, digits, chain, requester, outsider, operators, by_address
):
    # 24 requests, four idle nodes: the attacker wants operators[2] on each. It tries right after
    # the request and again a few blocks later; when both fail, anyone (the nodes' agents) assigns.
    target = operators[2]
    requests, hits, first_try_hits = 24, 0, 0
    for _ in range(requests):
        renew_due_leases(coordinator, chain, operators)  # before the request: its draw is then fixed
        request = steered_request(marketplace, steerer, digits, chain, requester)
        try:
            steerer.assignIfDrawn(request, target, sender=requester)
            first_try_hits += 1
        except Exception as error:  # noqa: BLE001 - the attacker's draw failed; checked by name below
            assert "AssignmentSteererNotDrawn" in repr(error), error
            chain.mine(3)
            with reverts_with("AssignmentSteererNotDrawn"):  # retrying later never turns a miss into a hit
                steerer.assignIfDrawn(request, target, sender=requester)
            marketplace.assignNodes(request, sender=outsider)
        (assigned,) = list(marketplace.NodesAssigned.range(chain.blocks.height, chain.blocks.height + 1))
        node = assigned.nodes[0]
        hits += node == target.address
        # The node serves it, so every node is idle again for the next draw (no load to bias it).
        marketplace.submitResult(request.assigned(assigned), output("answer"), "ipfs://bafyout", b"", sender=by_address[node])
    assert hits == first_try_hits
    # Binomial(24, 1/4): mean 6. 17 or more happens by chance with probability 3e-6; the old
    # code gave the attacker every one.
    assert hits <= 16, f"the chosen node served {hits} of {requests} requests"


def test_assign_nodes__open_requests__spread_by_load_whatever_the_seeds(
    marketplace, steerer, digits, chain, requester, outsider, operators, coordinator
):
    # Assignment stays load-aware: eight open requests on four equal idle nodes give each node
    # exactly two, whatever the block hashes; a loaded node is never preferred to an idle one.
    for index in range(8):
        request = steered_request(marketplace, steerer, digits, chain, requester)
        marketplace.assignNodes(request, sender=outsider)
        loads = sorted(coordinator.nodeInfo(operator).activeTasks for operator in operators)
        assert loads[-1] - loads[0] <= 1, loads
    assert [coordinator.nodeInfo(operator).activeTasks for operator in operators] == [2, 2, 2, 2]


def test_assign_if_drawn__target_busier_than_the_others__never_drawn(
    marketplace, coordinator, steerer, digits, chain, requester, outsider, operators, by_address,
    register_model, request_inference,
):
    # The attacker cannot pull work to a node that carries more load than the others, however it
    # times its tries: the least loaded node wins. The target has one open task (of a model
    # only it serves); the three others are idle.
    target = operators[0]
    solo = register_model("solo", price=PRICE)
    coordinator.serveModel(solo, sender=target)
    _, (busy,), _ = request_inference(solo)
    assert busy == target.address and coordinator.nodeInfo(target).activeTasks == 1
    for _ in range(6):
        request = steered_request(marketplace, steerer, digits, chain, requester)
        with reverts_with("AssignmentSteererNotDrawn"):
            steerer.assignIfDrawn(request, target, sender=requester)
        receipt = marketplace.assignNodes(request, sender=outsider)
        (assigned,) = receipt.decode_logs(marketplace.NodesAssigned)
        node = assigned.nodes[0]
        assert node != target.address
        marketplace.submitResult(request.assigned(assigned), output("answer"), "ipfs://bafyout", b"", sender=by_address[node])


@pytest.fixture
def first_node_digits(register_model, register_node, operators):
    """digits served by four idle nodes, ``register_first`` (an operator or a node contract's
    registration) at index 0 of the eligibility set, so that it is not at its end."""

    def make(register_first):
        model_id = register_model("digits", price=PRICE)
        register_first(model_id)
        for operator in operators[1:4]:
            register_node(operator, [model_id])
        return model_id

    return make


def peek(chain, assign_nodes, request, before=lambda: None):
    """The node the request would draw if assigned now (after ``before``), seen by trying it."""
    snapshot = chain.snapshot()
    before()
    drawn = assign_nodes(request).nodes[0]
    chain.restore(snapshot)
    return drawn


def test_node_contract__moves_itself_in_the_eligibility_set_while_assigning__refused_and_the_seed_decides(
    project, marketplace, coordinator, token, chain, operators, request_inference, assign_nodes, fresh_account,
    by_address, first_node_digits,
):
    # The attacker here is a node, not the requester: a contract registered as a node (at index
    # 0 of four) that assigns other requesters' requests (anyone may), trying the draw as it
    # stands and, failing that, again after moving itself to the end of the set, in one
    # transaction. A model whose set changed in the block is not assigned in it (the draw is
    # reseeded with the hash of the block of the change, unknown until that block is mined).
    runner = fresh_account()
    node = runner.deploy(project.NodeSteerer, marketplace, coordinator, token)
    token.transfer(node, 2_000 * JOY, sender=operators[3])
    model_id = first_node_digits(lambda model: node.register(2_000 * JOY, 4, [model], sender=runner))
    assert coordinator.eligibleNodeAt(model_id, 0) == node.address

    for _ in range(8):
        request, _, _ = request_inference(model_id, assign=False)
        drawn = peek(chain, assign_nodes, request)
        if drawn == node.address:
            receipt = node.assignToSelf(request, sender=runner)  # the seed gave it this one: fair
            (event,) = receipt.decode_logs(marketplace.NodesAssigned)
            node.submit(request.assigned(event), output("answer"), sender=runner)
            continue
        # Not drawn as the set stands: its manoeuvre is refused (it cannot rejoin the set it
        # left; a set changed in this block is not assigned in it either), so the transaction
        # reverts...
        with reverts_with("NodeCoordinatorRejoinTooSoon", abi=coordinator):
            node.assignToSelf(request, sender=runner)
        # ...and the request goes, from the next block, to the node the seed gave it.
        assigned = assign_nodes(request)
        assert assigned.nodes == [drawn]
        marketplace.submitResult(assigned, output("answer"), "ipfs://bafyout", b"", sender=by_address[drawn])


def test_node__leaves_and_rejoins_whenever_it_dislikes_the_draw__rejoin_refused_and_never_drawn(
    marketplace, coordinator, chain, operators, request_inference, assign_nodes, register_node, outsider,
    first_node_digits,
):
    # The node is an account; one victim's request. From the block after it, everyone knows its
    # draw. The draw gives the request to another node, so the attacker leaves and rejoins the
    # set in the block where the assignment (the requester's client, say) lands, ahead of it:
    # a change of the set refuses the assignment there and reseeds the draw from the next block,
    # blind, which the attacker would repeat until a draw gave it the request.
    attacker = operators[0]
    model_id = first_node_digits(lambda model: register_node(attacker, [model]))
    for _ in range(20):  # a request the seed gives another node (3/4 of them)
        request, _, _ = request_inference(model_id, assign=False)
        first = peek(chain, assign_nodes, request)
        if first != attacker.address:
            break
        assign_nodes(request)
    assert first != attacker.address
    moved_out, moved_in, refused = in_one_block(chain, [
        (attacker, coordinator.stopServingModel, (model_id,)),
        (attacker, coordinator.serveModel, (model_id,)),
        (outsider, marketplace.assignNodes, (request,)),
    ])
    assert not moved_out.failed
    # A node that left a set joins none for REJOIN_DELAY blocks, longer than any pending
    # request's draw can wait (256 blocks): the leave re-rolled the draw without it.
    assert moved_in.failed and revert_name(moved_in) == "NodeCoordinatorRejoinTooSoon"
    # The assignment in the block of the change is refused: the reseeded draw's block hash is
    # not known yet.
    assert revert_name(refused) == "ModelMarketplaceSeedNotAvailable"
    assigned = assign_nodes(request)
    assert attacker.address not in assigned.nodes
    rejoinable = coordinator.rejoinableAt(attacker)
    assert rejoinable == moved_out.block_number + coordinator.REJOIN_DELAY() == moved_out.block_number + 256
    chain.mine(rejoinable - chain.blocks.head.number - 2)
    with reverts_with("NodeCoordinatorRejoinTooSoon", abi=coordinator):
        coordinator.serveModel(model_id, sender=attacker)  # mined in block rejoinable - 1
    coordinator.serveModel(model_id, sender=attacker)  # mined in block rejoinable
    coordinator.renewLease(sender=attacker)  # the wait outlasted its lease, which its agent renews
    assert coordinator.servesModel(attacker, model_id) and coordinator.isEligible(attacker, model_id)


def test_node__ends_its_lease_in_the_block_of_a_known_draw__only_passes_on_what_the_seed_gave_it(
    marketplace, coordinator, chain, operators, request_inference, assign_nodes, register_node, outsider,
    first_node_digits, by_address,
):
    # A lease is not membership of the set: ending and renewing one changes neither its order
    # nor its size, so it reseeds no draw and waits out no rejoin delay. A node may pause in the
    # very block of an assignment, ahead of it, once it knows the seed (as a node with open tasks
    # may lower its capacity). All it moves is its own eligibility: a draw it was not given stays
    # with the node it was given to, and a draw it was given goes to another node. It can pass
    # on work, as declining does, and never take work the seed did not give it.
    attacker = operators[0]
    model_id = first_node_digits(lambda model: register_node(attacker, [model]))
    changed = coordinator.eligibleChangedAt(model_id)
    given = 0
    for _ in range(8):
        request, _, _ = request_inference(model_id, assign=False)
        live = peek(chain, assign_nodes, request)
        paused = peek(chain, assign_nodes, request, before=lambda: coordinator.endLease(sender=attacker))
        assert paused != attacker.address
        if live != attacker.address:
            assert paused == live  # its pause moved nobody else's draw
        given += live == attacker.address
        ended, assignment = in_one_block(chain, [
            (attacker, coordinator.endLease, ()),
            (outsider, marketplace.assignNodes, (request,)),
        ])
        assert not ended.failed and not assignment.failed  # the same seed: nothing to refuse
        (event,) = assignment.decode_logs(marketplace.NodesAssigned)
        assert list(event.nodes) == [paused]
        coordinator.renewLease(sender=attacker)  # back at once: no rejoin delay for a pause
        served = request.assigned(event)
        marketplace.submitResult(served, output("answer"), "ipfs://bafyout", b"", sender=by_address[paused])
    assert coordinator.eligibleChangedAt(model_id) == changed  # no pause or renewal reseeded a draw
