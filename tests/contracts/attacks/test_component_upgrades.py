"""Attack: component upgrades that lock funds.

Not a thief but an accident an attacker can wait for (or a proposal can provoke): the DAO
swaps a component under open requests. The marketplace then asked the new coordinator to release
or slash nodes it never bonded, and the judge kept submissions of requests that closed without a
verdict, which a new marketplace on the same judge (its request ids starting again at 1) stumbled
over.

Rule: upgrades never strand funds. Every request carries the coordinator that assigned it and
closes against it (settled, expired, declined or judged) after ``setComponents``; a marketplace
the coordinator replaced may still release and slash the nodes of its requests (and record their
usage), though it assigns no more, and its unassigned requests expire with a full refund; the
judge keeps nothing per request, and a closed request leaves no state behind, so a fresh
marketplace on the same judge settles its quorum requests normally.

Old code (43cec05): after setComponents(new coordinator), closeExpired of an open 5 JOY request
reverted (NodeCoordinatorNoOpenTask): 5 JOY of escrow and the node's 10 JOY bond locked for
good. An expired quorum-3 request left one submission in the judge. On a new marketplace wired
to the same judge (its request 1 again), the node that had submitted was refused as a duplicate
(ProofOfInferenceDuplicateSubmission) and the request settled with the stale submission counted;
when that node was not among the new request's nodes, the second and third submissions panicked
(0x32, array index out of bounds) and the 9 JOY request could not settle.
"""

import pytest

from helpers.adversary import as_timelock, by_address, fresh_account  # noqa: F401 (fixtures)
from helpers.adversary import (
    NODE_SHARE_BPS, BPS, OPEN, REFUNDED, SETTLED, TASK_BOND, commit, output, past_deadline, past_reveal_window, reveal,
)
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, model_key, registration_commitment

PRICE, EMBEDDER_PRICE = 5 * JOY, 9 * JOY
STAKE = 2_000 * JOY
TRUTH = output("the answer")


@pytest.fixture
def models(register_model, register_node, operators):
    """digits (quorum 1) and minilm (quorum 3), both served by the four operators."""
    digits = register_model("digits", price=PRICE)
    minilm = register_model("minilm", price=EMBEDDER_PRICE, quorum=3)
    for operator in operators:
        register_node(operator, [digits, minilm])
    return digits, minilm


@pytest.fixture
def open_requests(models, request_inference, marketplace, by_address):
    """Requests left open when the DAO upgrades: one about to be answered, one whose node will
    stay silent, one whose node will decline, a quorum request all of whose nodes committed, and
    one nobody assigned yet."""
    digits, minilm = models
    answered, _, _ = request_inference(digits)
    silent, _, _ = request_inference(digits)
    declined, _, _ = request_inference(digits)
    quorum, _, _ = request_inference(minilm)
    for node in quorum.nodes:
        commit(marketplace, quorum, by_address[node], TRUTH)
    unassigned, _, _ = request_inference(digits, assign=False)
    return dict(answered=answered, silent=silent, declined=declined, quorum=quorum, unassigned=unassigned)


def new_coordinator(project, deployer_account, token, timelock, marketplace, deploy_config):
    nodes = deploy_config.nodes
    coordinator = deployer_account.deploy(
        project.NodeCoordinator, token, deployer_account, timelock, nodes.min_stake * JOY, nodes.task_bond * JOY,
        nodes.unbonding_delay_seconds, nodes.max_missed_deadlines, 0, nodes.lease_blocks,
    )
    coordinator.setMarketplace(marketplace, sender=deployer_account)
    return coordinator


def new_marketplace(project, deployer_account, token, timelock, coordinator, judge, proof_of_use, deploy_config):
    market = deploy_config.marketplace
    marketplace = deployer_account.deploy(
        project.ModelMarketplaceV2, token, deployer_account, timelock,
        [market.node_share_bps, market.owner_share_bps, market.protocol_share_bps],
        market.max_deadline_window_seconds, [market.min_response_window_seconds, market.reveal_window_seconds],
    )
    marketplace.setComponents(coordinator, judge, proof_of_use, sender=deployer_account)
    return marketplace


def close_all(marketplace, chain, open_requests, by_address, outsider, assign_nodes):
    """Closes every kind of open request the way it ends; returns them as closed."""
    r = open_requests
    marketplace.submitResult(r["answered"], TRUTH, "ipfs://bafyout", b"", sender=by_address[r["answered"].nodes[0]])
    marketplace.declineRequest(r["declined"], "input unreadable", sender=by_address[r["declined"].nodes[0]])
    for node in r["quorum"].nodes:
        reveal(marketplace, r["quorum"], by_address[node], TRUTH)
    past_deadline(chain, r["silent"])
    marketplace.closeExpired(r["silent"], sender=outsider)


def assert_no_bond_left(coordinator, operators):
    for operator in operators:
        info = coordinator.nodeInfo(operator)
        assert (info.activeTasks, info.bonded) == (0, 0), operator


def test_set_components__new_coordinator__old_requests_settle_expire_decline_and_release_their_bonds(
    project, marketplace, coordinator, judge, proof_of_use, token, timelock, chain, requester, outsider, operators,
    by_address, open_requests, assign_nodes, as_timelock, fresh_account, deploy_config,
):
    successor = new_coordinator(project, fresh_account(), token, timelock, marketplace, deploy_config)
    marketplace.setComponents(successor, judge, proof_of_use, sender=as_timelock)
    treasury = token.balanceOf(timelock)

    close_all(marketplace, chain, open_requests, by_address, outsider, assign_nodes)
    # The request nobody had assigned is assigned by the coordinator it names (the old one).
    unassigned = assign_nodes(open_requests["unassigned"])
    assert unassigned.coordinator == coordinator.address
    marketplace.submitResult(unassigned, TRUTH, "ipfs://bafyout", b"", sender=by_address[unassigned.nodes[0]])

    statuses = {name: marketplace.requestStatus(request.id) for name, request in open_requests.items()}
    assert statuses == dict(answered=SETTLED, silent=REFUNDED, declined=REFUNDED, quorum=SETTLED, unassigned=SETTLED)
    assert marketplace.totalEscrow() == 0
    assert token.balanceOf(timelock) == treasury + TASK_BOND  # the silent node, slashed by the old coordinator
    assert_no_bond_left(coordinator, operators)
    # New requests go to the new coordinator.
    token.approve(marketplace, PRICE, sender=requester)
    receipt = marketplace.requestInference(open_requests["answered"].modelId, model_key("in"), "ipfs://bafyin", PRICE,
                                           chain.pending_timestamp + 600, sender=requester)
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    assert event.coordinator == successor.address


def test_coordinator_set_marketplace__new_marketplace__old_one_still_closes_its_requests(
    project, marketplace, coordinator, judge, proof_of_use, token, timelock, chain, requester, outsider, operators,
    by_address, open_requests, assign_nodes, as_timelock, fresh_account, deploy_config,
):
    successor = new_marketplace(project, fresh_account(), token, timelock, coordinator, judge, proof_of_use,
                                deploy_config)
    coordinator.setMarketplace(successor, sender=as_timelock)
    proof_of_use.setMarketplace(successor, sender=as_timelock)
    assert coordinator.isFormerMarketplace(marketplace)
    before, start_block = token.balanceOf(requester), chain.blocks.height + 1

    close_all(marketplace, chain, open_requests, by_address, outsider, assign_nodes)
    # The old marketplace assigns no more: its unassigned request expires with a full refund.
    unassigned = open_requests["unassigned"]
    with reverts_with("NodeCoordinatorCallerNotMarketplace", abi=coordinator):
        marketplace.assignNodes(unassigned, sender=outsider)
    past_deadline(chain, unassigned)
    receipt = marketplace.closeExpired(unassigned, sender=outsider)
    (refund,) = receipt.decode_logs(marketplace.InferenceRefunded)
    assert refund.amount == PRICE

    assert marketplace.totalEscrow() == 0
    assert_no_bond_left(coordinator, operators)
    # The requester got back the escrow of the declined, the silent and the unassigned requests.
    assert token.balanceOf(requester) == before + 3 * PRICE
    # And the usage of what it settled was still recorded, as a former marketplace's.
    settled = marketplace.InferenceSettled.range(start_block, chain.blocks.height + 1)
    assert sorted(event.requestId for event in settled) == sorted(
        [open_requests["answered"].id, open_requests["quorum"].id]
    )
    epoch = proof_of_use.currentEpoch()
    for request in (open_requests["answered"], open_requests["quorum"]):
        assert proof_of_use.modelUsage(epoch, request.modelId) >= 1


def test_fresh_marketplace_on_the_same_judge__request_ids_restart__quorum_requests_settle(
    project, marketplace, coordinator, judge, proof_of_use, token, timelock, chain, requester, outsider, operators,
    by_address, models, request_inference, as_timelock, fresh_account, deploy_config, model_owner,
):
    _, minilm = models
    # On the old marketplace, quorum requests that close without a verdict: one expired with a
    # single commitment, one declined.
    expired, _, _ = request_inference(minilm)
    commit(marketplace, expired, by_address[expired.nodes[0]], TRUTH)
    past_reveal_window(marketplace, chain, expired)
    marketplace.closeExpired(expired, sender=outsider)
    declined, _, _ = request_inference(minilm)
    marketplace.declineRequest(declined, "input unreadable", sender=by_address[declined.nodes[1]])
    for closed in (expired, declined):
        assert marketplace.submittedMask(closed.id) == 0
        assert all(marketplace.resultOf(closed.id, slot) == b"\0" * 32 for slot in range(3))

    # A fresh marketplace on the same judge and coordinator: its request ids start at 1 again.
    successor = new_marketplace(project, fresh_account(), token, timelock, coordinator, judge, proof_of_use,
                                deploy_config)
    coordinator.setMarketplace(successor, sender=as_timelock)
    proof_of_use.setMarketplace(successor, sender=as_timelock)
    salt = model_key("salt")
    successor.commitModelRegistration(registration_commitment(minilm, model_owner.address, salt), sender=model_owner)
    successor.registerModel(minilm, "ipfs://bafyminilm", model_key("weights"), EMBEDDER_PRICE, (3, b"\0" * 32, 0, False),
                            b"\0" * 32, salt, sender=model_owner)
    token.approve(successor, EMBEDDER_PRICE, sender=requester)
    receipt = successor.requestInference(minilm, model_key("in"), "ipfs://bafyin", EMBEDDER_PRICE,
                                         chain.pending_timestamp + 600, sender=requester)
    (event,) = receipt.decode_logs(successor.InferenceRequested)
    request = Request.from_event(event)
    assert request.id == expired.id == 1
    (assigned,) = successor.assignNodes(request, sender=outsider).decode_logs(successor.NodesAssigned)
    request = request.assigned(assigned)
    for node in request.nodes:
        commit(successor, request, by_address[node], TRUTH)
    for node in request.nodes:
        receipt = reveal(successor, request, by_address[node], TRUTH)
    (settled,) = receipt.decode_logs(successor.InferenceSettled)
    per_node = EMBEDDER_PRICE * NODE_SHARE_BPS // BPS // 3
    assert settled.outputCommitment == TRUTH and settled.nodesPaid == 3 * per_node
    assert all(successor.balances(node) == per_node for node in request.nodes)
    assert successor.submittedMask(request.id) == 0
    assert_no_bond_left(coordinator, operators)
