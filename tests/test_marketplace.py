"""ModelMarketplaceV2 with its coordinator, judge and usage ledger: registry, requests, quorum
verification, settlement, timeouts, declines, earnings and governance, success and failure."""

import pytest
from eth_utils import keccak

from chain_asserts import permit_signature, reverts_with
from joynet.deploy import JOY
from joynet.marketplace import Request

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20
PRICE = 5 * JOY


@pytest.fixture
def by_address(operators):
    return {operator.address: operator for operator in operators}


@pytest.fixture
def conserved(token, marketplace, chain):
    """Checks that the marketplace holds exactly the escrow of open requests, the earnings of
    nodes and owners, and the protocol's share of every settlement (from the events) not yet
    sent to the treasury."""

    def check():
        height = chain.blocks.height + 1
        protocol_share = sum(e.protocolPaid for e in marketplace.InferenceSettled.range(0, height))
        protocol_share -= sum(e.amount for e in marketplace.ProtocolEarningsWithdrawn.range(0, height))
        assert marketplace.protocolEarnings() == protocol_share
        assert token.balanceOf(marketplace) == (
            marketplace.totalEscrow() + marketplace.totalEarnings() + protocol_share
        )

    return check


@pytest.fixture
def digits(register_model, register_node, operators):
    """A quorum-1 model served by all four operators."""
    model_id = register_model("digits", price=PRICE)
    for operator in operators:
        register_node(operator, [model_id])
    return model_id


@pytest.fixture
def embedder(register_model, register_node, operators):
    """A quorum-3 model served by all four operators."""
    model_id = register_model("minilm", price=9 * JOY, quorum=3)
    for operator in operators:
        register_node(operator, [model_id])
    return model_id


# ---- registry ----


def test_register_model__valid__stores_and_announces(marketplace, model_owner, register_model):
    model_id = register_model("digits", price=PRICE, quorum=2)
    model = marketplace.getModel(model_id)
    assert model.owner == model_owner.address
    assert (model.price, model.quorum, model.active) == (PRICE, 2, True)
    assert model.metadataURI == "ipfs://bafydigitsmetadata"
    assert not marketplace.isFeeless(model_id)


def test_register_model__same_id_twice__reverts(register_model):
    register_model("digits")
    with reverts_with("ModelMarketplaceModelExists"):
        register_model("digits")


@pytest.mark.parametrize("uri", ["https://example.com/m.json", "ipfs://", "", "IPFS://bafy"])
def test_register_model__not_an_ipfs_uri__reverts(marketplace, model_owner, uri):
    with reverts_with("ModelMarketplaceInvalidMetadataURI"):
        marketplace.registerModel(keccak(text="m"), uri, ZERO32, PRICE, (1, ZERO32), ZERO32, sender=model_owner)


@pytest.mark.parametrize("quorum", [0, 17])
def test_register_model__quorum_out_of_range__reverts(register_model, quorum):
    with reverts_with("ModelMarketplaceInvalidPolicy"):
        register_model("m", quorum=quorum)


def test_register_model__free_without_stream__reverts(register_model):
    with reverts_with("ModelMarketplaceInvalidPrice"):
        register_model("m", price=0)


def test_register_model__free_with_stream__is_feeless_and_not_requestable(
    marketplace, register_model, request_inference
):
    stream = keccak(text="iota-channel")
    model_id = register_model("feeless", price=0, stream=stream)
    assert marketplace.isFeeless(model_id)
    assert marketplace.iotaStreamOf(model_id) == stream
    with reverts_with("ModelMarketplaceFeelessModel"):
        request_inference(model_id, max_price=0)


def test_update_price__by_owner__changes_price(marketplace, model_owner, register_model):
    model_id = register_model("digits")
    receipt = marketplace.updatePrice(model_id, 7 * JOY, sender=model_owner)
    assert marketplace.getModel(model_id).price == 7 * JOY
    assert marketplace.ModelPriceUpdated(model_id, PRICE, 7 * JOY) in receipt.events


def test_update_price__by_someone_else__reverts(marketplace, register_model, outsider):
    model_id = register_model("digits")
    with reverts_with("ModelMarketplaceNotModelOwner"):
        marketplace.updatePrice(model_id, 1, sender=outsider)


def test_update_price__unknown_model__reverts(marketplace, model_owner):
    with reverts_with("ModelMarketplaceUnknownModel"):
        marketplace.updatePrice(keccak(text="nope"), 1, sender=model_owner)


def test_update_metadata__by_owner__changes_uri(marketplace, model_owner, register_model):
    model_id = register_model("digits")
    marketplace.updateMetadata(model_id, "ipfs://bafynew", sender=model_owner)
    assert marketplace.getModel(model_id).metadataURI == "ipfs://bafynew"
    with reverts_with("ModelMarketplaceInvalidMetadataURI"):
        marketplace.updateMetadata(model_id, "http://x", sender=model_owner)


def test_deactivate_model__then_request__reverts(marketplace, model_owner, digits, request_inference):
    marketplace.deactivateModel(digits, sender=model_owner)
    with reverts_with("ModelMarketplaceModelInactive"):
        request_inference(digits)
    with reverts_with("ModelMarketplaceModelInactive"):
        marketplace.deactivateModel(digits, sender=model_owner)


# ---- requests ----


def test_request__valid__escrows_price_and_bonds_a_node(
    marketplace, coordinator, token, requester, digits, request_inference, conserved
):
    balance = token.balanceOf(requester)
    request, nodes, _ = request_inference(digits, max_price=PRICE * 2)
    assert token.balanceOf(requester) == balance - PRICE  # the surplus over the price never leaves
    assert (request.escrow, request.quorum) == (PRICE, 1) and len(nodes) == 1
    assert marketplace.requestStatus(request.id) == 1  # Open
    assert marketplace.hashRequest(request) == marketplace.requestDigest(request.id)
    assert coordinator.freeStake(nodes[0]) == 2_000 * JOY - coordinator.taskBond()
    conserved()


def test_request__price_above_max__reverts(digits, request_inference):
    with reverts_with("ModelMarketplacePriceAboveMax"):
        request_inference(digits, max_price=PRICE - 1)


@pytest.mark.parametrize("deadline_in", [-10, 0, 86_400 + 60])
def test_request__deadline_outside_window__reverts(digits, request_inference, deadline_in):
    with reverts_with("ModelMarketplaceInvalidDeadline"):
        request_inference(digits, deadline_in=deadline_in)


def test_request__unknown_model__reverts(request_inference, marketplace, requester, token, chain):
    with reverts_with("ModelMarketplaceUnknownModel"):
        marketplace.requestInference(keccak(text="x"), ZERO32, "", PRICE, chain.pending_timestamp + 60, sender=requester)


def test_request__model_without_nodes__reverts_and_keeps_escrow(register_model, request_inference, token, requester):
    model_id = register_model("lonely")
    balance = token.balanceOf(requester)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        request_inference(model_id)
    assert token.balanceOf(requester) == balance


def test_request__with_permit__needs_no_approval(marketplace, token, requester, digits, chain):
    deadline = chain.pending_timestamp + 600
    v, r, s = permit_signature(token, requester, marketplace, PRICE, deadline)
    receipt = marketplace.requestInferenceWithPermit(
        digits, ZERO32, "ipfs://in", PRICE, deadline, deadline, v, r, s, sender=requester
    )
    assert receipt.decode_logs(marketplace.InferenceRequested)
    assert token.allowance(requester, marketplace) == 0


# ---- prepaid balance: deposit, then requests without a token transfer ----


def deposit(marketplace, token, sender, amount, account=None):
    token.approve(marketplace, amount, sender=sender)
    return marketplace.deposit(account or sender, amount, sender=sender)


def request_from_balance(marketplace, chain, requester, model_id, max_price=PRICE):
    receipt = marketplace.requestInferenceFromBalance(
        model_id, keccak(text=f"input {chain.blocks.height}"), "ipfs://bafyinput", max_price,
        chain.pending_timestamp + 600, sender=requester,
    )
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    return Request.from_event(event), receipt


def test_deposit__for_another_account__credits_its_balance(marketplace, token, requester, outsider, conserved):
    # A sponsor (here the requester account) funds someone else's balance.
    balance, earnings = token.balanceOf(requester), marketplace.totalEarnings()
    receipt = deposit(marketplace, token, requester, 3 * PRICE, account=outsider)
    assert marketplace.earnings(outsider) == 3 * PRICE and marketplace.earnings(requester) == 0
    assert token.balanceOf(requester) == balance - 3 * PRICE
    assert marketplace.totalEarnings() == earnings + 3 * PRICE
    assert marketplace.Deposited(outsider, requester, 3 * PRICE) in receipt.events
    conserved()


@pytest.mark.parametrize("case, error", [("zero amount", "ModelMarketplaceZeroDeposit"), ("zero account", "ModelMarketplaceZeroAddress")])
def test_deposit__invalid__reverts_and_moves_nothing(marketplace, token, requester, case, error):
    balance = token.balanceOf(requester)
    amount, account = (0, requester.address) if case == "zero amount" else (PRICE, ZERO_ADDRESS)
    token.approve(marketplace, PRICE, sender=requester)
    with reverts_with(error):
        marketplace.deposit(account, amount, sender=requester)
    assert token.balanceOf(requester) == balance and marketplace.totalEarnings() == 0


def test_request_from_balance__deposited__escrows_without_a_transfer(
    marketplace, token, requester, digits, chain, conserved
):
    deposit(marketplace, token, requester, 2 * PRICE)
    tokens = token.balanceOf(requester)
    request, receipt = request_from_balance(marketplace, chain, requester, digits, max_price=2 * PRICE)
    assert token.balanceOf(requester) == tokens  # no transfer: the balance paid
    assert marketplace.earnings(requester) == PRICE  # only the price, not maxPrice
    assert (request.escrow, marketplace.totalEscrow()) == (PRICE, PRICE)
    assert not receipt.decode_logs(token.Transfer)
    conserved()


def test_request_from_balance__settled__pays_as_a_transferred_request(
    marketplace, token, requester, model_owner, digits, chain, by_address, conserved
):
    deposit(marketplace, token, requester, PRICE)
    request, _ = request_from_balance(marketplace, chain, requester, digits)
    marketplace.submitResult(request, keccak(text="class 1"), "ipfs://out", b"", sender=by_address[request.nodes[0]])
    assert marketplace.earnings(request.nodes[0]) == PRICE * 70 // 100
    assert marketplace.earnings(model_owner) == PRICE * 20 // 100
    assert marketplace.earnings(requester) == 0
    conserved()


def test_request_from_balance__refunded__returns_tokens_to_requester(marketplace, token, requester, digits, chain, conserved):
    deposit(marketplace, token, requester, PRICE)
    request, _ = request_from_balance(marketplace, chain, requester, digits)
    tokens = token.balanceOf(requester)
    chain.pending_timestamp += 601
    marketplace.closeExpired(request, sender=requester)
    assert token.balanceOf(requester) >= tokens + PRICE  # the escrow, plus a share of the slash
    conserved()


def test_request_from_balance__insufficient__reverts_and_keeps_balance(marketplace, token, requester, digits, chain):
    deposit(marketplace, token, requester, PRICE - 1)
    count = marketplace.requestCount()
    with reverts_with("ModelMarketplaceInsufficientBalance"):
        request_from_balance(marketplace, chain, requester, digits)
    assert marketplace.earnings(requester) == PRICE - 1 and marketplace.requestCount() == count
    assert marketplace.totalEscrow() == 0


def test_withdraw_earnings__deposit__returns_it(marketplace, token, requester, conserved):
    deposit(marketplace, token, requester, PRICE)
    tokens = token.balanceOf(requester)
    marketplace.withdrawEarnings(requester, sender=requester)
    assert token.balanceOf(requester) == tokens + PRICE and marketplace.earnings(requester) == 0
    conserved()


# ---- quorum 1: submit and settle ----


def test_submit__assigned_node__settles_and_splits_fee(
    marketplace, coordinator, proof_of_use, timelock, model_owner, digits, request_inference, by_address, conserved
):
    request, (node,), _ = request_inference(digits)
    output = keccak(text="class 7")
    receipt = marketplace.submitResult(request, output, "ipfs://out", b"", sender=by_address[node])

    assert marketplace.requestStatus(request.id) == 2  # Settled
    assert marketplace.earnings(node) == PRICE * 70 // 100
    assert marketplace.earnings(model_owner) == PRICE * 20 // 100
    assert marketplace.protocolEarnings() == PRICE * 10 // 100
    assert marketplace.InferenceSettled(request.id, output, PRICE * 70 // 100, PRICE * 20 // 100, PRICE // 10) in receipt.events
    assert coordinator.freeStake(node) == 2_000 * JOY
    epoch = proof_of_use.currentEpoch()
    assert proof_of_use.modelUsage(epoch, digits) == 1
    assert proof_of_use.nodeUsage(epoch, node) == 1
    conserved()


def test_submit__unassigned_node__reverts(marketplace, digits, request_inference, operators, by_address):
    request, (node,), _ = request_inference(digits)
    stranger = next(op for op in operators if op.address != node)
    with reverts_with("ModelMarketplaceNotAssigned"):
        marketplace.submitResult(request, ZERO32, "", b"", sender=stranger)


def test_submit__after_settlement__reverts(marketplace, digits, request_inference, by_address):
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, ZERO32, "", b"", sender=by_address[node])
    with reverts_with("ModelMarketplaceRequestClosed"):
        marketplace.submitResult(request, ZERO32, "", b"", sender=by_address[node])


def test_submit__after_deadline__reverts(marketplace, digits, request_inference, by_address, chain):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    chain.pending_timestamp += 121
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        marketplace.submitResult(request, ZERO32, "", b"", sender=by_address[node])


def test_submit__unknown_request__reverts(marketplace, operators):
    unknown = Request(999, ZERO32, operators[1].address, PRICE, ZERO32, 10**10, [operators[0].address])
    with reverts_with("ModelMarketplaceUnknownRequest"):
        marketplace.submitResult(unknown, ZERO32, "", b"", sender=operators[0])


@pytest.mark.parametrize("field", ["escrow", "deadline", "inputCommitment", "nodes"])
def test_submit__request_altered__reverts(marketplace, digits, request_inference, by_address, operators, field):
    request, (node,), _ = request_inference(digits)
    altered = {
        "escrow": request._replace(escrow=request.escrow * 2),
        "deadline": request._replace(deadline=request.deadline + 3600),
        "inputCommitment": request._replace(inputCommitment=keccak(text="other input")),
        "nodes": request._replace(nodes=[op.address for op in operators]),
    }[field]
    with reverts_with("ModelMarketplaceRequestMismatch"):
        marketplace.submitResult(altered, ZERO32, "", b"", sender=by_address[node])
    with reverts_with("ModelMarketplaceRequestMismatch"):
        marketplace.declineRequest(altered, "no", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == 1


def test_submit__zk_model_with_unregistered_circuit__reverts(
    register_model, request_inference, register_node, operators, marketplace, zk_verifier, by_address
):
    model_id = register_model("zk", circuit_id=keccak(text="a circuit the DAO never registered"))
    register_node(operators[0], [model_id])
    request, (node,), _ = request_inference(model_id)
    with reverts_with("ZKVerifierUnknownCircuit", abi=zk_verifier):
        marketplace.submitResult(request, ZERO32, "", b"\1" * 256, sender=by_address[node])
    assert marketplace.requestStatus(request.id) == 1  # still open: nothing paid


# ---- quorum 3 ----


def test_quorum__all_agree__settles_and_pays_each_node(marketplace, embedder, request_inference, by_address, conserved):
    request, nodes, _ = request_inference(embedder)
    assert len(set(nodes)) == 3
    output = keccak(text="embedding")
    for node in nodes[:2]:
        marketplace.submitResult(request, output, "", b"", sender=by_address[node])
        assert marketplace.requestStatus(request.id) == 1  # still open
    with reverts_with("ModelMarketplaceAlreadySubmitted"):
        marketplace.submitResult(request, output, "", b"", sender=by_address[nodes[0]])
    marketplace.submitResult(request, output, "", b"", sender=by_address[nodes[2]])
    assert marketplace.requestStatus(request.id) == 2
    per_node = (9 * JOY * 70 // 100) // 3
    assert all(marketplace.earnings(node) == per_node for node in nodes)
    conserved()


def test_quorum__one_dissenter__is_slashed_and_majority_paid(
    marketplace, coordinator, token, embedder, request_inference, by_address, requester, timelock, conserved
):
    request, nodes, _ = request_inference(embedder)
    bond = coordinator.taskBond()
    requester_balance, treasury_balance = token.balanceOf(requester), token.balanceOf(timelock)
    good, bad = keccak(text="good"), keccak(text="bad")
    for node, output in zip(nodes, (good, bad, good)):
        marketplace.submitResult(request, output, "", b"", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == 2
    assert marketplace.earnings(nodes[1]) == 0
    assert coordinator.nodeInfo(nodes[1]).stake == 2_000 * JOY - bond
    assert token.balanceOf(requester) == requester_balance + bond // 2
    assert token.balanceOf(timelock) == treasury_balance + bond - bond // 2
    assert marketplace.earnings(nodes[0]) == (9 * JOY * 70 // 100) // 2
    conserved()


def test_quorum__no_majority__refunds_and_slashes_nobody(
    marketplace, coordinator, token, embedder, request_inference, by_address, requester, conserved
):
    request, nodes, _ = request_inference(embedder)
    balance = token.balanceOf(requester)
    for index, node in enumerate(nodes):
        marketplace.submitResult(request, keccak(text=str(index)), "", b"", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == 3  # Refunded
    assert token.balanceOf(requester) == balance + 9 * JOY
    assert all(coordinator.nodeInfo(node).stake == 2_000 * JOY for node in nodes)
    assert all(coordinator.freeStake(node) == 2_000 * JOY for node in nodes)
    conserved()


# ---- timeouts and declines ----


def test_close_expired__before_deadline__reverts(marketplace, digits, request_inference, outsider):
    request, _, _ = request_inference(digits)
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)


def test_close_expired__silent_node__refunds_and_slashes(
    marketplace, coordinator, token, digits, request_inference, requester, outsider, chain, conserved
):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    balance = token.balanceOf(requester)
    bond = coordinator.taskBond()
    chain.pending_timestamp += 121
    marketplace.closeExpired(request, sender=outsider)  # anyone may close it
    assert token.balanceOf(requester) == balance + PRICE + bond // 2
    assert coordinator.nodeInfo(node).missedDeadlines == 1
    with reverts_with("ModelMarketplaceRequestClosed"):
        marketplace.closeExpired(request, sender=outsider)
    conserved()


def test_close_expired__quorum_partly_served__slashes_only_the_silent(
    marketplace, coordinator, embedder, request_inference, by_address, outsider, chain
):
    request, nodes, _ = request_inference(embedder, deadline_in=120)
    marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[nodes[0]])
    chain.pending_timestamp += 121
    marketplace.closeExpired(request, sender=outsider)
    bond = coordinator.taskBond()
    assert coordinator.nodeInfo(nodes[0]).stake == 2_000 * JOY
    assert coordinator.freeStake(nodes[0]) == 2_000 * JOY
    assert all(coordinator.nodeInfo(node).stake == 2_000 * JOY - bond for node in nodes[1:])


def test_decline__assigned_node__refunds_with_reason(
    marketplace, token, digits, request_inference, by_address, requester, coordinator, conserved
):
    request, (node,), _ = request_inference(digits)
    balance = token.balanceOf(requester)
    receipt = marketplace.declineRequest(request, "input fails the schema", sender=by_address[node])
    assert token.balanceOf(requester) == balance + PRICE
    assert marketplace.RequestDeclined(request.id, node, "input fails the schema") in receipt.events
    assert coordinator.freeStake(node) == 2_000 * JOY
    conserved()


def test_decline__after_deadline__reverts_so_the_timeout_slash_stands(
    marketplace, coordinator, digits, request_inference, by_address, outsider, chain
):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    chain.pending_timestamp += 121
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        marketplace.declineRequest(request, "too late", sender=by_address[node])
    marketplace.closeExpired(request, sender=outsider)
    assert coordinator.nodeInfo(node).missedDeadlines == 1


def test_decline__after_a_result_is_in__reverts_so_the_vote_stands(
    marketplace, embedder, request_inference, by_address
):
    request, nodes, _ = request_inference(embedder)
    marketplace.submitResult(request, keccak(text="wrong"), "", b"", sender=by_address[nodes[0]])
    for node in nodes:
        with reverts_with("ModelMarketplaceResultsSubmitted"):
            marketplace.declineRequest(request, "changed my mind", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == 1


def test_decline__unassigned__reverts(marketplace, digits, request_inference, outsider):
    request, _, _ = request_inference(digits)
    with reverts_with("ModelMarketplaceNotAssigned"):
        marketplace.declineRequest(request, "no", sender=outsider)


# ---- earnings ----


def test_withdraw_earnings__credited__pays_once(marketplace, token, digits, request_inference, by_address, timelock, outsider, conserved):
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, ZERO32, "", b"", sender=by_address[node])
    before = token.balanceOf(node), token.balanceOf(timelock)
    marketplace.withdrawEarnings(node, sender=by_address[node])
    receipt = marketplace.withdrawProtocolEarnings(sender=outsider)  # anyone sweeps fees to the treasury
    assert marketplace.ProtocolEarningsWithdrawn(timelock, PRICE // 10) in receipt.events
    assert token.balanceOf(node) == before[0] + PRICE * 70 // 100
    assert token.balanceOf(timelock) == before[1] + PRICE // 10
    with reverts_with("ModelMarketplaceNothingToWithdraw"):
        marketplace.withdrawEarnings(node, sender=by_address[node])
    with reverts_with("ModelMarketplaceNothingToWithdraw"):
        marketplace.withdrawProtocolEarnings(sender=outsider)
    conserved()


# ---- governance ----


@pytest.mark.parametrize(
    "method, args",
    [
        ("setFeeShares", (6000, 3000, 1000)),
        ("setMaxDeadlineWindow", (3600,)),
        ("setTreasury", ("0x" + "11" * 20,)),
        ("updateGovernance", ("0x" + "11" * 20,)),
    ],
)
def test_marketplace_setting__not_from_timelock__reverts(marketplace, deployer, outsider, method, args):
    for caller in (deployer, outsider):
        with reverts_with("OwnableUnauthorizedAccount"):
            getattr(marketplace, method)(*args, sender=caller)


def test_fee_shares__changed_by_proposal__apply_to_next_settlement(
    marketplace, governance, alice, bob, digits, request_inference, by_address, model_owner
):
    calls = [(marketplace, marketplace.setFeeShares.encode_input(6000, 3000, 1000))]
    governance.enact(alice, calls, "Owners get 30 %", [(alice, 1), (bob, 1)])
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, ZERO32, "", b"", sender=by_address[node])
    assert marketplace.earnings(model_owner) == PRICE * 30 // 100


@pytest.mark.parametrize(
    "shares", [(6000, 3000, 999), (5000, 2500, 2500), (2900, 5000, 2100), (4000, 5500, 500)]
)
def test_fee_shares__outside_bounds__cannot_execute(marketplace, governance, alice, bob, dao, shares):
    calls = [(marketplace, marketplace.setFeeShares.encode_input(*shares))]
    proposal_id = governance.ready_to_execute(alice, calls, f"Shares {shares}", [(alice, 1), (bob, 1)])
    with reverts_with("ModelMarketplaceInvalidFeeShares"):
        dao.execute(proposal_id, sender=alice)


def test_deadline_window__below_floor__cannot_execute(marketplace, governance, alice, bob, dao):
    calls = [(marketplace, marketplace.setMaxDeadlineWindow.encode_input(59))]
    proposal_id = governance.ready_to_execute(alice, calls, "Window 59 s", [(alice, 1), (bob, 1)])
    with reverts_with("ModelMarketplaceParameterOutOfBounds"):
        dao.execute(proposal_id, sender=alice)


def test_update_governance__by_proposal__hands_over(marketplace, governance, alice, bob, carol):
    calls = [(marketplace, marketplace.updateGovernance.encode_input(carol.address))]
    governance.enact(alice, calls, "New governor", [(alice, 1), (bob, 1)])
    assert marketplace.owner() == carol.address
    assert marketplace.version() == 2


@pytest.fixture
def as_timelock(timelock, accounts, deployer):
    """The timelock, impersonated: it owns every component, so this is what an executed proposal sends."""
    governor = accounts[timelock.address]
    deployer.transfer(governor, "1 ether")
    return governor


def test_set_components__from_timelock__rewires_and_announces(marketplace, coordinator, judge, as_timelock, outsider):
    new_usage_ledger = outsider.address  # any non-zero address: the marketplace does not probe it
    receipt = marketplace.setComponents(coordinator, judge, new_usage_ledger, sender=as_timelock)
    assert marketplace.coordinator() == coordinator.address
    assert marketplace.proofOfInference() == judge.address
    assert marketplace.proofOfUse() == new_usage_ledger
    (event,) = receipt.decode_logs(marketplace.ComponentsSet)
    assert event.proofOfUse == new_usage_ledger


@pytest.mark.parametrize("zeroed", [0, 1, 2])
def test_set_components__zero_address__reverts(marketplace, coordinator, judge, proof_of_use, as_timelock, zeroed):
    components = [coordinator.address, judge.address, proof_of_use.address]
    components[zeroed] = ZERO_ADDRESS
    with reverts_with("ModelMarketplaceZeroAddress"):
        marketplace.setComponents(*components, sender=as_timelock)
    assert marketplace.proofOfUse() == proof_of_use.address


@pytest.mark.parametrize(
    "name", ["ModelMarketplace", "NodeCoordinator", "ProofOfInference", "ProofOfUse", "IOTAValidator"]
)
def test_renounce_ownership__even_by_governance__is_disabled(deployment, name, timelock, as_timelock):
    contract = deployment.contract(name)
    with reverts_with("JoyGovernedRenounceDisabled", abi=contract):
        contract.renounceOwnership(sender=as_timelock)
    assert contract.owner() == timelock.address


def test_judge__called_directly__reverts(judge, outsider):
    ctx = (1, outsider.address, ZERO32, ZERO32, 1, ZERO32)
    with reverts_with("ProofOfInferenceCallerNotMarketplace"):
        judge.judge(ctx, ZERO32, b"", sender=outsider)
