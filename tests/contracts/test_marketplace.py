"""ModelMarketplaceV2 with its coordinator, judge and usage ledger: committed registrations,
requests, delayed assignment, single-node results, commit-reveal quorums and their judging,
timeouts, declines, balances and their operators, and governance, success and failure."""

import pytest
from eth_utils import keccak

from helpers.chain_asserts import permit_signature, reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, model_key, registration_commitment, seal_result

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20
PRICE = 5 * JOY
EMBEDDER_PRICE = 9 * JOY
STAKE = 2_000 * JOY
OPEN, SETTLED, REFUNDED = 1, 2, 3
WEIGHT_UNIT = 10**9  # ProofOfUse.WEIGHT_UNIT: usage weights are whole gwei of JOY


@pytest.fixture
def by_address(operators):
    return {operator.address: operator for operator in operators}


@pytest.fixture
def conserved(token, marketplace, chain):
    """Checks that the marketplace holds exactly the escrow of open requests, the balances of
    accounts (fees of nodes and owners, deposits), and the protocol's part of every closed request (from the events: the
    protocol share of each settlement, and what a refund kept of its escrow) not yet sent to
    the treasury."""

    def check():
        height = chain.blocks.height + 1
        escrows = {e.requestId: e.price for e in marketplace.InferenceRequested.range(0, height)}
        protocol_share = sum(e.protocolPaid for e in marketplace.InferenceSettled.range(0, height))
        protocol_share += sum(escrows[e.requestId] - e.amount for e in marketplace.InferenceRefunded.range(0, height))
        protocol_share -= sum(e.amount for e in marketplace.ProtocolEarningsWithdrawn.range(0, height))
        assert marketplace.protocolEarnings() == protocol_share
        assert token.balanceOf(marketplace) == (
            marketplace.totalEscrow() + marketplace.totalBalances() + protocol_share
        )

    return check


@pytest.fixture
def digits(served_model):
    """A quorum-1 model served by all four operators."""
    return served_model("digits", price=PRICE)


@pytest.fixture
def embedder(served_model):
    """A quorum-3 model served by all four operators."""
    return served_model("minilm", price=EMBEDDER_PRICE, quorum=3)


@pytest.fixture
def pair(served_model):
    """A quorum-2 model served by all four operators: any dissent leaves it without a majority."""
    return served_model("pair", price=PRICE, quorum=2)


def salt_of(request, node):
    """The salt the conftest ``commit_reveal`` fixture seals a node's result with."""
    return model_key(f"salt:{request.id}:{node}")


def reveal(marketplace, request, node, output, sender, salt=None, uri="ipfs://bafyoutput"):
    return marketplace.revealResult(request, output, salt or salt_of(request, node), uri, b"", sender=sender)


def commit(marketplace, request, node, output, sender, salt=None):
    sealed = seal_result(request.id, node, output, salt or salt_of(request, node))
    return marketplace.commitResult(request, sealed, sender=sender)


def after_reveal_window(marketplace, chain, request):
    """Moves the chain past the request's deadline and its reveal window."""
    chain.pending_timestamp = request.deadline + marketplace.revealWindow() + 1


# ---- registry: commit, then register from a later block ----


def commit_registration(marketplace, owner, model_id, salt, committer=None):
    commitment = registration_commitment(model_id, owner.address, salt)
    return marketplace.commitModelRegistration(commitment, sender=committer or owner)


def register(marketplace, owner, model_id, salt, uri="ipfs://bafymodel", price=PRICE, policy=(1, ZERO32, 0, False)):
    return marketplace.registerModel(model_id, uri, keccak(text="weights"), price, policy, ZERO32, salt, sender=owner)


def in_one_block(chain, calls):
    """Mines ``calls`` — (account, contract method, args) — in a single block, in order: automine
    off, the signed transactions into anvil's pool (gas limits given, since an estimate would run
    each against a state without the others), one block, automine on. Returns their receipts."""
    provider = chain.provider
    nonces, hashes = {}, []
    provider.auto_mine = False
    try:
        for account, method, args in calls:
            nonce = nonces.setdefault(account.address, account.nonce)
            nonces[account.address] += 1
            txn = method.as_transaction(*args, sender=account, nonce=nonce, gas_limit=1_000_000)
            signed = account.sign_transaction(txn)
            hashes.append(provider.web3.eth.send_raw_transaction(signed.serialize_transaction()))
        chain.mine()
    finally:
        provider.auto_mine = True
    receipts = [provider.get_receipt(h.to_0x_hex()) for h in hashes]
    assert len({r.block_number for r in receipts}) == 1
    return receipts


def revert_name(receipt):
    """The custom error a transaction mined by ``in_one_block`` reverted with. It was mined, not
    sent through Ape, so ``reverts_with`` cannot catch it: Ape decodes it from the trace."""
    assert receipt.failed
    return receipt.trace.revert_message.split("(", 1)[0]


def test_register_model__valid__stores_and_announces(marketplace, model_owner, register_model):
    model_id = register_model("digits", price=PRICE, quorum=2, response_window=300)
    model = marketplace.getModel(model_id)
    assert model.owner == model_owner.address
    assert (model.price, model.quorum, model.active, model.responseWindow) == (PRICE, 2, True, 300)
    assert model.metadataURI == "ipfs://bafydigitsmetadata"
    assert not marketplace.isFeeless(model_id)


def test_register_model__committed_in_an_earlier_block__registers_and_keeps_the_id(
    marketplace, model_owner
):
    model_id, salt = keccak(text="m"), keccak(text="secret")
    receipt = commit_registration(marketplace, model_owner, model_id, salt)
    commitment = registration_commitment(model_id, model_owner.address, salt)
    # The commitment shows neither the id nor the owner's intent: only its hash and the sender.
    assert marketplace.ModelRegistrationCommitted(commitment, model_owner) in receipt.events
    receipt = register(marketplace, model_owner, model_id, salt)
    (event,) = receipt.decode_logs(marketplace.ModelRegistered)
    assert (event.modelId, event.owner, event.price) == (model_id, model_owner.address, PRICE)
    # Deactivated, the id stays taken: not even its owner's commitment registers it again.
    marketplace.deactivateModel(model_id, sender=model_owner)
    with reverts_with("ModelMarketplaceModelExists"):
        register(marketplace, model_owner, model_id, salt)


def test_register_model__same_block_as_the_commitment__reverts(marketplace, model_owner, chain):
    # Anyone who sees the registration (its id and salt) in the mempool could otherwise commit
    # and register in one block ahead of it: the commitment must be older than the registration.
    model_id, salt = keccak(text="m"), keccak(text="secret")
    commitment = registration_commitment(model_id, model_owner.address, salt)
    committed, registered = in_one_block(chain, [
        (model_owner, marketplace.commitModelRegistration, (commitment,)),
        (model_owner, marketplace.registerModel,
         (model_id, "ipfs://bafymodel", ZERO32, PRICE, (1, ZERO32, 0, False), ZERO32, salt)),
    ])
    assert not committed.failed
    assert revert_name(registered) == "ModelMarketplaceRegistrationNotCommitted"
    assert marketplace.getModel(model_id).owner == ZERO_ADDRESS
    # From the next block on, the same commitment registers.
    register(marketplace, model_owner, model_id, salt)
    assert marketplace.getModel(model_id).owner == model_owner.address


def test_register_model__never_committed__reverts(marketplace, model_owner):
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        register(marketplace, model_owner, keccak(text="m"), keccak(text="secret"))


def test_register_model__wrong_salt__reverts(marketplace, model_owner):
    model_id = keccak(text="m")
    commit_registration(marketplace, model_owner, model_id, keccak(text="secret"))
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        register(marketplace, model_owner, model_id, keccak(text="another salt"))


def test_register_model__another_accounts_commitment__reverts(marketplace, model_owner, outsider):
    # A front-runner who copies the owner's id and salt from the mempool finds no commitment of
    # its own: the commitment binds the owner's address.
    model_id, salt = keccak(text="m"), keccak(text="secret")
    commit_registration(marketplace, model_owner, model_id, salt)
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        register(marketplace, outsider, model_id, salt)
    # Nor does committing to the owner's (id, owner, salt) help the front-runner: it names the owner.
    commit_registration(marketplace, model_owner, model_id, salt, committer=outsider)
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        register(marketplace, outsider, model_id, salt)
    # Commitments are kept per committer: one made by someone else does not count for the owner.
    other_salt = keccak(text="another secret")
    commit_registration(marketplace, model_owner, model_id, other_salt, committer=outsider)
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        register(marketplace, model_owner, model_id, other_salt)
    register(marketplace, model_owner, model_id, salt)
    assert marketplace.getModel(model_id).owner == model_owner.address


def test_register_model__commitment_renewed_by_someone_else__still_registers(marketplace, model_owner, outsider, chain):
    # The commitment hash is public once committed: a griefer who re-commits it in the block of
    # the owner's registration must not be able to block that registration.
    model_id, salt = keccak(text="m"), keccak(text="secret")
    commit_registration(marketplace, model_owner, model_id, salt)
    commitment = registration_commitment(model_id, model_owner.address, salt)
    renewed, registered = in_one_block(chain, [
        (outsider, marketplace.commitModelRegistration, (commitment,)),
        (model_owner, marketplace.registerModel,
         (model_id, "ipfs://bafymodel", ZERO32, PRICE, (1, ZERO32, 0, False), ZERO32, salt)),
    ])
    assert not renewed.failed
    assert not registered.failed, f"re-committing a public commitment blocked its registration: {revert_name(registered)}"
    assert marketplace.getModel(model_id).owner == model_owner.address


def test_register_model__same_id_twice__reverts(register_model):
    register_model("digits")
    with reverts_with("ModelMarketplaceModelExists"):
        register_model("digits")


@pytest.mark.parametrize("uri", ["https://example.com/m.json", "ipfs://", "", "IPFS://bafy"])
def test_register_model__not_an_ipfs_uri__reverts(marketplace, model_owner, uri):
    model_id, salt = keccak(text="m"), keccak(text="secret")
    commit_registration(marketplace, model_owner, model_id, salt)
    with reverts_with("ModelMarketplaceInvalidMetadataURI"):
        register(marketplace, model_owner, model_id, salt, uri=uri)


@pytest.mark.parametrize("quorum, window", [(0, 0), (17, 0), (1, 86_400 + 1)])
def test_register_model__policy_out_of_range__reverts(register_model, quorum, window):
    with reverts_with("ModelMarketplaceInvalidPolicy"):
        register_model("m", quorum=quorum, response_window=window)


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


# ---- response windows ----


def test_response_window_of__model_declares_longer__is_the_models(marketplace, register_model):
    assert marketplace.minResponseWindow() == 60  # deploy-config.yaml (local)
    assert marketplace.responseWindowOf(register_model("slow", response_window=300)) == 300
    assert marketplace.responseWindowOf(register_model("default")) == 60
    # A window under the network's minimum does not shorten it.
    assert marketplace.responseWindowOf(register_model("eager", response_window=10)) == 60
    assert marketplace.responseWindowOf(keccak(text="unknown")) == 60


def test_request__deadline_inside_models_window__reverts(
    marketplace, register_model, register_node, operators, request_inference
):
    model_id = register_model("slow", response_window=300)
    register_node(operators[0], [model_id])
    with reverts_with("ModelMarketplaceInvalidDeadline"):
        request_inference(model_id, deadline_in=200)  # enough for the network, not for the model
    request, _, receipt = request_inference(model_id, deadline_in=330)
    assert marketplace.requestStatus(request.id) == OPEN


# ---- requests ----


def test_request__valid__escrows_the_price_and_assigns_nobody(
    marketplace, coordinator, token, requester, digits, request_inference, operators, conserved
):
    balance = token.balanceOf(requester)
    request, nodes, receipt = request_inference(digits, max_price=PRICE * 2, assign=False)
    assert token.balanceOf(requester) == balance - PRICE  # the surplus over the price never leaves
    assert request.escrow == PRICE and nodes == []
    assert (request.seedBlock, request.coordinator) == (receipt.block_number, coordinator.address)
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    assert (event.requester, event.price, event.coordinator) == (requester.address, PRICE, coordinator.address)
    assert marketplace.requestStatus(request.id) == OPEN
    assert marketplace.hashRequest(request) == marketplace.requestDigest(request.id)
    # Nobody is bonded until assignment.
    assert all(coordinator.freeStake(op) == STAKE for op in operators)
    assert not receipt.decode_logs(marketplace.NodesAssigned)
    conserved()


def test_request__price_above_max__reverts(digits, request_inference):
    with reverts_with("ModelMarketplacePriceAboveMax"):
        request_inference(digits, max_price=PRICE - 1)


@pytest.mark.parametrize("deadline_in", [-10, 0, 50, 86_400 + 60])
def test_request__deadline_outside_window__reverts(digits, request_inference, deadline_in):
    # 50 s: in the future, but inside the network's 60 s response window (deploy-config.yaml).
    with reverts_with("ModelMarketplaceInvalidDeadline"):
        request_inference(digits, deadline_in=deadline_in)


def test_request__unknown_model__reverts(marketplace, requester, chain):
    with reverts_with("ModelMarketplaceUnknownModel"):
        marketplace.requestInference(keccak(text="x"), ZERO32, "", PRICE, chain.pending_timestamp + 600, sender=requester)


def test_request__model_without_nodes__assignment_reverts_and_expiry_refunds(
    marketplace, register_model, request_inference, assign_nodes, token, requester, outsider, chain, conserved
):
    model_id = register_model("lonely")
    balance = token.balanceOf(requester)
    request, _, _ = request_inference(model_id, assign=False)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        assign_nodes(request)
    chain.pending_timestamp = request.deadline + 1
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert marketplace.InferenceRefunded(request.id, requester, PRICE, "no node was assigned") in receipt.events
    assert token.balanceOf(requester) == balance
    conserved()


def test_request__with_permit__needs_no_approval(marketplace, token, requester, digits, chain):
    deadline = chain.pending_timestamp + 600
    v, r, s = permit_signature(token, requester, marketplace, PRICE, deadline)
    receipt = marketplace.requestInferenceWithPermit(
        digits, ZERO32, "ipfs://in", PRICE, deadline, deadline, v, r, s, sender=requester
    )
    assert receipt.decode_logs(marketplace.InferenceRequested)
    assert token.allowance(requester, marketplace) == 0


# ---- assignment ----


def test_assign_nodes__next_block__bonds_nodes_and_records_the_assigned_request(
    marketplace, coordinator, digits, request_inference, assign_nodes, outsider, conserved
):
    request, _, _ = request_inference(digits, assign=False)
    receipt = marketplace.assignNodes(request, sender=outsider)  # anyone may assign
    (event,) = receipt.decode_logs(marketplace.NodesAssigned)
    assigned = request.assigned(event)
    assert len(assigned.nodes) == 1 and assigned.deadline == request.deadline  # plenty of time was left
    assert marketplace.requestDigest(request.id) == marketplace.hashRequest(assigned)
    assert coordinator.freeStake(assigned.nodes[0]) == STAKE - coordinator.taskBond()
    # The request as it was made is no longer the open one.
    with reverts_with("ModelMarketplaceRequestMismatch"):
        marketplace.assignNodes(request, sender=outsider)
    conserved()


def test_assign_nodes__twice__reverts(marketplace, digits, request_inference, outsider):
    request, nodes, _ = request_inference(digits)
    with reverts_with("ModelMarketplaceAlreadyAssigned"):
        marketplace.assignNodes(request, sender=outsider)
    assert request.nodes == nodes


def test_assign_nodes__retried_in_a_later_block__draws_the_same_nodes(
    marketplace, embedder, request_inference, assign_nodes, chain
):
    # Nothing of the assigning transaction enters the draw: whoever assigns cannot re-roll it.
    request, _, _ = request_inference(embedder, assign=False)
    snapshot = chain.snapshot()
    first = assign_nodes(request).nodes
    chain.restore(snapshot)
    chain.mine(5)
    assert assign_nodes(request).nodes == first


def test_assign_nodes__after_256_blocks__seed_not_available_and_expiry_refunds_in_full(
    marketplace, coordinator, token, digits, request_inference, requester, outsider, operators, chain, timelock,
    conserved,
):
    balance, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    request, _, _ = request_inference(digits, assign=False)
    chain.mine(300)  # the EVM keeps the hashes of the last 256 blocks only
    with reverts_with("ModelMarketplaceSeedNotAvailable"):
        marketplace.assignNodes(request, sender=outsider)
    # Nor can a node answer it unassigned: its result would assign it, from the same draw.
    for operator in operators:
        with reverts_with("ModelMarketplaceSeedNotAvailable", requestId=request.id):
            marketplace.submitResult(request, keccak(text="x"), "", b"", sender=operator)
    chain.pending_timestamp = max(chain.pending_timestamp, request.deadline + 1)
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert marketplace.InferenceRefunded(request.id, requester, PRICE, "no node was assigned") in receipt.events
    assert token.balanceOf(requester) == balance and token.balanceOf(timelock) == treasury
    assert all(coordinator.nodeInfo(op).stake == STAKE for op in operators)  # nobody slashed
    conserved()


def test_assign_nodes__little_time_left__moves_deadline_to_now_plus_window(
    marketplace, digits, request_inference, assign_nodes, chain
):
    request, _, _ = request_inference(digits, deadline_in=90, assign=False)
    chain.pending_timestamp = request.deadline - 10  # 10 s left: less than the 60 s window
    assigned = assign_nodes(request)
    block = chain.blocks.head
    assert assigned.deadline == block.timestamp + marketplace.minResponseWindow() > request.deadline


def test_assign_nodes__after_the_deadline__gives_the_node_its_window(
    marketplace, digits, request_inference, assign_nodes, chain, by_address
):
    # Assigned late (within 256 blocks), a node still gets its full window, never a request it
    # could not meet.
    request, _, _ = request_inference(digits, deadline_in=90, assign=False)
    chain.pending_timestamp = request.deadline + 30
    assigned = assign_nodes(request)
    assert assigned.deadline == chain.blocks.head.timestamp + 60
    marketplace.submitResult(assigned, keccak(text="x"), "", b"", sender=by_address[assigned.nodes[0]])
    assert marketplace.requestStatus(request.id) == SETTLED


def test_assign_nodes__model_declares_longer_window__node_gets_it(
    marketplace, register_model, register_node, operators, request_inference, assign_nodes, chain
):
    model_id = register_model("slow", response_window=300)
    register_node(operators[0], [model_id])
    request, _, _ = request_inference(model_id, deadline_in=320, assign=False)
    chain.pending_timestamp = request.deadline - 100
    assert assign_nodes(request).deadline == chain.blocks.head.timestamp + 300


def test_assign_nodes__closed_request__reverts(marketplace, digits, request_inference, by_address, outsider, chain):
    request, _, _ = request_inference(digits, assign=False)
    chain.pending_timestamp = request.deadline + 1
    marketplace.closeExpired(request, sender=outsider)
    with reverts_with("ModelMarketplaceRequestClosed"):
        marketplace.assignNodes(request, sender=outsider)


# ---- prepaid balance: deposit, then requests without a token transfer ----


def deposit(marketplace, token, sender, amount, account=None):
    token.approve(marketplace, amount, sender=sender)
    return marketplace.deposit(account or sender, amount, sender=sender)


@pytest.fixture
def request_from_balance(marketplace, chain, requester, assign_nodes):
    """Requests from the requester's balance and assigns the request; returns (Request, receipt)."""

    def make(model_id, max_price=PRICE):
        receipt = marketplace.requestInferenceFromBalance(
            model_id, keccak(text=f"input {chain.blocks.height}"), "ipfs://bafyinput", max_price,
            chain.pending_timestamp + 600, sender=requester,
        )
        (event,) = receipt.decode_logs(marketplace.InferenceRequested)
        return assign_nodes(Request.from_event(event)), receipt

    return make


def test_deposit__for_another_account__credits_its_balance(marketplace, token, requester, outsider, conserved):
    # A sponsor (here the requester account) funds someone else's balance.
    balance, held = token.balanceOf(requester), marketplace.totalBalances()
    receipt = deposit(marketplace, token, requester, 3 * PRICE, account=outsider)
    assert marketplace.balances(outsider) == 3 * PRICE and marketplace.balances(requester) == 0
    assert token.balanceOf(requester) == balance - 3 * PRICE
    assert marketplace.totalBalances() == held + 3 * PRICE
    assert marketplace.Deposited(outsider, requester, 3 * PRICE) in receipt.events
    conserved()


@pytest.mark.parametrize("case, error", [("zero amount", "ModelMarketplaceZeroDeposit"), ("zero account", "ModelMarketplaceZeroAddress")])
def test_deposit__invalid__reverts_and_moves_nothing(marketplace, token, requester, case, error):
    balance = token.balanceOf(requester)
    amount, account = (0, requester.address) if case == "zero amount" else (PRICE, ZERO_ADDRESS)
    token.approve(marketplace, PRICE, sender=requester)
    with reverts_with(error):
        marketplace.deposit(account, amount, sender=requester)
    assert token.balanceOf(requester) == balance and marketplace.totalBalances() == 0


def test_request_from_balance__deposited__escrows_without_a_transfer(
    marketplace, token, requester, digits, request_from_balance, conserved
):
    deposit(marketplace, token, requester, 2 * PRICE)
    tokens = token.balanceOf(requester)
    request, receipt = request_from_balance(digits, max_price=2 * PRICE)
    assert token.balanceOf(requester) == tokens  # no transfer: the balance paid
    assert marketplace.balances(requester) == PRICE  # only the price, not maxPrice
    assert (request.escrow, marketplace.totalEscrow()) == (PRICE, PRICE)
    assert not receipt.decode_logs(token.Transfer)
    conserved()


def test_request_from_balance__settled__pays_as_a_transferred_request(
    marketplace, token, requester, model_owner, digits, request_from_balance, by_address, conserved
):
    deposit(marketplace, token, requester, PRICE)
    request, _ = request_from_balance(digits)
    marketplace.submitResult(request, keccak(text="class 1"), "ipfs://out", b"", sender=by_address[request.nodes[0]])
    assert marketplace.balances(request.nodes[0]) == PRICE * 70 // 100
    assert marketplace.balances(model_owner) == PRICE * 20 // 100
    assert marketplace.balances(requester) == 0
    conserved()


def test_request_from_balance__refunded__returns_exactly_the_escrow_to_requester(
    marketplace, token, requester, digits, request_from_balance, chain, conserved
):
    deposit(marketplace, token, requester, PRICE)
    request, _ = request_from_balance(digits)
    tokens = token.balanceOf(requester)
    chain.pending_timestamp = request.deadline + 1
    marketplace.closeExpired(request, sender=requester)
    assert token.balanceOf(requester) == tokens + PRICE  # the escrow, and nothing of the slash
    conserved()


def test_request_from_balance__insufficient__reverts_and_keeps_balance(
    marketplace, token, requester, digits, request_from_balance
):
    deposit(marketplace, token, requester, PRICE - 1)
    count = marketplace.requestCount()
    with reverts_with("ModelMarketplaceInsufficientBalance"):
        request_from_balance(digits)
    assert marketplace.balances(requester) == PRICE - 1 and marketplace.requestCount() == count
    assert marketplace.totalEscrow() == 0


# ---- quorum 1: submit and settle ----


def test_submit__assigned_node__settles_splits_fee_and_weighs_usage_by_the_protocol_share(
    marketplace, coordinator, proof_of_use, model_owner, digits, request_inference, by_address, conserved
):
    request, (node,), _ = request_inference(digits)
    output = keccak(text="class 7")
    receipt = marketplace.submitResult(request, output, "ipfs://out", b"", sender=by_address[node])

    assert marketplace.requestStatus(request.id) == SETTLED
    assert marketplace.balances(node) == PRICE * 70 // 100
    assert marketplace.balances(model_owner) == PRICE * 20 // 100
    assert marketplace.protocolEarnings() == PRICE * 10 // 100
    assert marketplace.ResultSubmitted(request.id, node, output, "ipfs://out") in receipt.events
    assert marketplace.InferenceSettled(request.id, output, PRICE * 70 // 100, PRICE * 20 // 100, PRICE // 10) in receipt.events
    assert coordinator.freeStake(node) == STAKE
    # Usage weighs the protocol's share of the fee (0.5 JOY), the part no party gets back.
    epoch = proof_of_use.currentEpoch()
    value = PRICE // 10
    emitters = {log["address"] for log in receipt.logs}
    assert marketplace.address in emitters and proof_of_use.address not in emitters  # InferenceSettled says it all
    assert proof_of_use.modelUsage(epoch, digits) == 1
    assert proof_of_use.ownerUsage(epoch, model_owner) == value // WEIGHT_UNIT * WEIGHT_UNIT
    assert proof_of_use.nodeUsage(epoch, node) == value // WEIGHT_UNIT * WEIGHT_UNIT
    info = proof_of_use.epochInfo(epoch)
    assert info.totalOwnerWeight == info.totalNodeWeight == value // WEIGHT_UNIT
    conserved()


def test_submit__unassigned_node__reverts(marketplace, digits, request_inference, operators):
    request, (node,), _ = request_inference(digits)
    stranger = next(op for op in operators if op.address != node)
    with reverts_with("ModelMarketplaceNotAssigned"):
        marketplace.submitResult(request, keccak(text="x"), "", b"", sender=stranger)


def test_submit__quorum_request_before_assignment__reverts_not_assigned_yet(
    marketplace, embedder, request_inference, operators
):
    request, _, _ = request_inference(embedder, assign=False)
    for operator in operators:
        with reverts_with("ModelMarketplaceNotAssignedYet", requestId=request.id):
            marketplace.submitResult(request, keccak(text="x"), "", b"", sender=operator)


def test_submit__zero_output__settles(marketplace, digits, request_inference, by_address, conserved):
    # Any value is an output (a ZK digits result is the class itself: class 0 is zero).
    request, (node,), _ = request_inference(digits)
    receipt = marketplace.submitResult(request, ZERO32, "ipfs://out", b"", sender=by_address[node])
    assert marketplace.InferenceSettled(request.id, ZERO32, PRICE * 70 // 100, PRICE * 20 // 100, PRICE // 10) in receipt.events
    assert marketplace.requestStatus(request.id) == SETTLED
    conserved()


def test_submit__quorum_request__commit_required(marketplace, embedder, request_inference, by_address):
    request, nodes, _ = request_inference(embedder)
    with reverts_with("ModelMarketplaceCommitRequired"):
        marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[nodes[0]])


def test_submit__after_settlement__reverts(marketplace, digits, request_inference, by_address):
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[node])
    with reverts_with("ModelMarketplaceRequestClosed"):
        marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[node])


def test_submit__after_deadline__reverts(marketplace, digits, request_inference, by_address, chain):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    chain.pending_timestamp = request.deadline + 1
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[node])


def test_submit__unknown_request__reverts(marketplace, coordinator, operators):
    unknown = Request(999, ZERO32, operators[1].address, PRICE, ZERO32, 10**10, 1, coordinator.address,
                      [operators[0].address])
    with reverts_with("ModelMarketplaceUnknownRequest"):
        marketplace.submitResult(unknown, keccak(text="x"), "", b"", sender=operators[0])


@pytest.mark.parametrize(
    "field", ["requester", "escrow", "deadline", "inputCommitment", "seedBlock", "coordinator", "nodes"]
)
def test_submit__request_altered__reverts(marketplace, digits, request_inference, by_address, operators, outsider, field):
    request, (node,), _ = request_inference(digits)
    altered = {
        "requester": request._replace(requester=outsider.address),
        "escrow": request._replace(escrow=request.escrow * 2),
        "deadline": request._replace(deadline=request.deadline + 3600),
        "inputCommitment": request._replace(inputCommitment=keccak(text="other input")),
        "seedBlock": request._replace(seedBlock=request.seedBlock + 1),
        "coordinator": request._replace(coordinator=outsider.address),
        "nodes": request._replace(nodes=[op.address for op in operators]),
    }[field]
    with reverts_with("ModelMarketplaceRequestMismatch"):
        marketplace.submitResult(altered, keccak(text="x"), "", b"", sender=by_address[node])
    with reverts_with("ModelMarketplaceRequestMismatch"):
        marketplace.declineRequest(altered, "no", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == OPEN


def test_submit__zk_model_with_unregistered_circuit__reverts(
    register_model, request_inference, register_node, operators, marketplace, zk_verifier, by_address
):
    model_id = register_model("zk", circuit_id=keccak(text="a circuit the DAO never registered"))
    register_node(operators[0], [model_id])
    request, (node,), _ = request_inference(model_id)
    with reverts_with("ZKVerifierUnknownCircuit", abi=zk_verifier):
        marketplace.submitResult(request, keccak(text="x"), "", b"\1" * 256, sender=by_address[node])
    assert marketplace.requestStatus(request.id) == OPEN  # still open: nothing paid


# ---- quorum k: commit, then reveal ----


def test_commit__each_node__recorded_sealed_and_counted(marketplace, embedder, request_inference, by_address, chain):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    for count, node in enumerate(nodes[:2], start=1):
        receipt = commit(marketplace, request, node, output, by_address[node])
        assert marketplace.ResultCommitted(request.id, node, count) in receipt.events
    # Nothing public but the seal: the output itself is not in the commitment.
    assert marketplace.resultOf(request.id, 0) == seal_result(request.id, nodes[0], output, salt_of(request, nodes[0]))
    assert marketplace.submittedMask(request.id) == 0b011
    assert marketplace.sealResult(request.id, nodes[0], output, salt_of(request, nodes[0])) == marketplace.resultOf(request.id, 0)
    assert marketplace.requestStatus(request.id) == OPEN


def test_commit__single_node_request__reverts(marketplace, digits, request_inference, by_address):
    request, (node,), _ = request_inference(digits)
    with reverts_with("ModelMarketplaceNotQuorum"):
        commit(marketplace, request, node, keccak(text="x"), by_address[node])


def test_commit__before_assignment__reverts(marketplace, embedder, request_inference, operators):
    request, _, _ = request_inference(embedder, assign=False)
    with reverts_with("ModelMarketplaceNotQuorum"):
        commit(marketplace, request, operators[0].address, keccak(text="x"), operators[0])


def test_commit__not_assigned__reverts(marketplace, embedder, request_inference, operators):
    request, nodes, _ = request_inference(embedder)
    (stranger,) = [op for op in operators if op.address not in nodes]
    with reverts_with("ModelMarketplaceNotAssigned"):
        commit(marketplace, request, stranger.address, keccak(text="x"), stranger)


def test_commit__twice__reverts(marketplace, embedder, request_inference, by_address):
    request, nodes, _ = request_inference(embedder)
    commit(marketplace, request, nodes[0], keccak(text="x"), by_address[nodes[0]])
    with reverts_with("ModelMarketplaceAlreadySubmitted"):
        commit(marketplace, request, nodes[0], keccak(text="y"), by_address[nodes[0]])


def test_commit__after_deadline__reverts(marketplace, embedder, request_inference, by_address, chain):
    request, nodes, _ = request_inference(embedder)
    chain.pending_timestamp = request.deadline + 1
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        commit(marketplace, request, nodes[0], keccak(text="x"), by_address[nodes[0]])


def test_reveal__before_everyone_committed_and_before_deadline__reverts(
    marketplace, embedder, request_inference, by_address, commit_reveal
):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    commit_reveal(request, {node: output for node in nodes[:2]}, reveal=False)
    with reverts_with("ModelMarketplaceRevealNotOpen"):
        reveal(marketplace, request, nodes[0], output, by_address[nodes[0]])


def test_reveal__after_deadline__opens_without_everyone_committed(
    marketplace, embedder, request_inference, by_address, commit_reveal, chain
):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    commit_reveal(request, {node: output for node in nodes[:2]}, reveal=False)
    chain.pending_timestamp = request.deadline + 1
    receipt = reveal(marketplace, request, nodes[0], output, by_address[nodes[0]])
    assert marketplace.ResultSubmitted(request.id, nodes[0], output, "ipfs://bafyoutput") in receipt.events
    assert marketplace.submittedMask(request.id) == 0b011 | (0b001 << 16)
    assert marketplace.resultOf(request.id, 0) == output  # the seal is replaced by the output


def test_reveal__after_the_reveal_window__reverts(
    marketplace, embedder, request_inference, by_address, commit_reveal, chain
):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    commit_reveal(request, {node: output for node in nodes}, reveal=False)
    after_reveal_window(marketplace, chain, request)
    with reverts_with("ModelMarketplaceRevealClosed"):
        reveal(marketplace, request, nodes[0], output, by_address[nodes[0]])


@pytest.mark.parametrize("case", ["wrong salt", "wrong output", "another node's seal"])
def test_reveal__not_what_was_committed__reverts(
    marketplace, embedder, request_inference, by_address, commit_reveal, case
):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    if case == "another node's seal":
        # A lazy node copies node 0's seal from the chain: the seal binds node 0's address, so
        # the copier cannot reveal it, whatever output it guesses.
        commit_reveal(request, {nodes[0]: output}, reveal=False)
        copied = marketplace.resultOf(request.id, 0)
        marketplace.commitResult(request, copied, sender=by_address[nodes[1]])
        commit_reveal(request, {nodes[2]: output}, reveal=False)
        node, salt, revealed = nodes[1], salt_of(request, nodes[0]), output
    else:
        commit_reveal(request, {node: output for node in nodes}, reveal=False)
        node = nodes[0]
        salt = keccak(text="another salt") if case == "wrong salt" else salt_of(request, node)
        revealed = keccak(text="another output") if case == "wrong output" else output
    with reverts_with("ModelMarketplaceRevealMismatch"):
        reveal(marketplace, request, node, revealed, by_address[node], salt=salt)


def test_reveal__twice__reverts(marketplace, embedder, request_inference, by_address, commit_reveal):
    request, nodes, _ = request_inference(embedder)
    output = keccak(text="embedding")
    commit_reveal(request, {node: output for node in nodes}, reveal=False)
    reveal(marketplace, request, nodes[0], output, by_address[nodes[0]])
    with reverts_with("ModelMarketplaceAlreadySubmitted"):
        reveal(marketplace, request, nodes[0], output, by_address[nodes[0]])


def test_reveal__not_committed__reverts(marketplace, embedder, request_inference, by_address, commit_reveal, chain):
    request, nodes, _ = request_inference(embedder)
    commit_reveal(request, {node: keccak(text="e") for node in nodes[:2]}, reveal=False)
    chain.pending_timestamp = request.deadline + 1
    with reverts_with("ModelMarketplaceNotCommitted"):
        reveal(marketplace, request, nodes[2], keccak(text="e"), by_address[nodes[2]])


def test_reveal__not_assigned__reverts(marketplace, embedder, request_inference, operators, commit_reveal):
    request, nodes, _ = request_inference(embedder)
    commit_reveal(request, {node: keccak(text="e") for node in nodes}, reveal=False)
    (stranger,) = [op for op in operators if op.address not in nodes]
    with reverts_with("ModelMarketplaceNotAssigned"):
        reveal(marketplace, request, stranger.address, keccak(text="e"), stranger)


def test_reveal__single_node_request__reverts(marketplace, digits, request_inference, by_address):
    request, (node,), _ = request_inference(digits)
    with reverts_with("ModelMarketplaceNotQuorum"):
        reveal(marketplace, request, node, keccak(text="e"), by_address[node])


def test_reveal__zero_output__is_a_vote_like_any_other(
    marketplace, coordinator, embedder, request_inference, by_address, commit_reveal, conserved
):
    # Zero is an output, not silence: two zeros outvote the third node, which is slashed for
    # dissent (not for a missed deadline), and the zero-revealing nodes are paid.
    request, nodes, _ = request_inference(embedder)
    receipts = commit_reveal(request, {nodes[0]: ZERO32, nodes[1]: keccak(text="e"), nodes[2]: ZERO32})
    (settled,) = receipts[-1].decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == ZERO32
    assert marketplace.balances(nodes[0]) == marketplace.balances(nodes[2]) == (EMBEDDER_PRICE * 70 // 100) // 2
    assert marketplace.balances(nodes[1]) == 0
    dissenter = coordinator.nodeInfo(nodes[1])
    assert (dissenter.stake, dissenter.missedDeadlines) == (STAKE - coordinator.taskBond(), 0)
    conserved()


# ---- quorum k: judging ----


def test_quorum__all_agree__settles_at_the_last_reveal_and_pays_each_node(
    marketplace, coordinator, proof_of_use, embedder, request_inference, by_address, commit_reveal, conserved
):
    request, nodes, _ = request_inference(embedder)
    assert len(set(nodes)) == 3
    output = keccak(text="embedding")
    commit_reveal(request, {node: output for node in nodes}, reveal=False)
    for node in nodes[:2]:
        reveal(marketplace, request, node, output, by_address[node])
        assert marketplace.requestStatus(request.id) == OPEN
    receipt = reveal(marketplace, request, nodes[2], output, by_address[nodes[2]])
    assert marketplace.requestStatus(request.id) == SETTLED
    per_node = (EMBEDDER_PRICE * 70 // 100) // 3
    assert all(marketplace.balances(node) == per_node for node in nodes)
    assert all(coordinator.freeStake(node) == STAKE for node in nodes)
    # A closed request leaves no commitments or reveals behind.
    assert marketplace.submittedMask(request.id) == 0
    assert all(marketplace.resultOf(request.id, slot) == ZERO32 for slot in range(3))
    # Each agreeing node weighs a third of the protocol's share.
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    epoch = proof_of_use.currentEpoch()
    node_weight = settled.protocolPaid // WEIGHT_UNIT // 3
    assert all(proof_of_use.nodeUsage(epoch, node) == node_weight * WEIGHT_UNIT for node in nodes)
    conserved()


def test_quorum__one_dissenter__is_slashed_to_the_treasury_and_majority_paid(
    marketplace, coordinator, token, embedder, request_inference, by_address, requester, timelock, commit_reveal,
    conserved,
):
    request, nodes, _ = request_inference(embedder)
    bond = coordinator.taskBond()
    requester_balance, treasury_balance = token.balanceOf(requester), token.balanceOf(timelock)
    good, bad = keccak(text="good"), keccak(text="bad")
    commit_reveal(request, dict(zip(nodes, (good, bad, good))))
    assert marketplace.requestStatus(request.id) == SETTLED
    assert marketplace.balances(nodes[1]) == 0
    assert coordinator.nodeInfo(nodes[1]).stake == STAKE - bond
    assert coordinator.nodeInfo(nodes[1]).missedDeadlines == 0  # dissent is not a missed deadline
    assert token.balanceOf(requester) == requester_balance  # none of the slash
    assert token.balanceOf(timelock) == treasury_balance + bond  # all of it
    assert marketplace.balances(nodes[0]) == marketplace.balances(nodes[2]) == (EMBEDDER_PRICE * 70 // 100) // 2
    assert all(coordinator.freeStake(node) == STAKE for node in (nodes[0], nodes[2]))
    conserved()


@pytest.mark.parametrize("silence", ["no commit", "no reveal"])
def test_quorum__two_agree_one_silent__settles_at_expiry_and_slashes_the_silent(
    marketplace, coordinator, token, embedder, request_inference, by_address, requester, timelock, outsider,
    commit_reveal, chain, silence, conserved,
):
    request, nodes, _ = request_inference(embedder)
    bond = coordinator.taskBond()
    requester_balance, treasury_balance = token.balanceOf(requester), token.balanceOf(timelock)
    output = keccak(text="embedding")
    committed = nodes if silence == "no reveal" else nodes[:2]
    commit_reveal(request, {node: keccak(text="unrevealed") if node == nodes[2] else output for node in committed},
                  reveal=False)
    if silence == "no commit":
        chain.pending_timestamp = request.deadline + 1  # reveals open at the deadline
    for node in nodes[:2]:
        reveal(marketplace, request, node, output, by_address[node])
    assert marketplace.requestStatus(request.id) == OPEN  # the third may still reveal
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)

    after_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == output
    assert marketplace.balances(nodes[0]) == marketplace.balances(nodes[1]) == (EMBEDDER_PRICE * 70 // 100) // 2
    assert coordinator.nodeInfo(nodes[2]).stake == STAKE - bond
    assert coordinator.nodeInfo(nodes[2]).missedDeadlines == 1
    assert token.balanceOf(requester) == requester_balance
    assert token.balanceOf(timelock) == treasury_balance + bond
    conserved()


def test_quorum_2__dissent__refunds_all_but_the_nodes_share_and_slashes_nobody(
    marketplace, coordinator, token, pair, request_inference, requester, commit_reveal, conserved
):
    request, nodes, _ = request_inference(pair)
    balance, protocol = token.balanceOf(requester), marketplace.protocolEarnings()
    receipts = commit_reveal(request, dict(zip(nodes, (keccak(text="a"), keccak(text="b")))))
    kept = PRICE * 70 // 100  # the nodes' share: the requester holds both answers
    assert marketplace.InferenceRefunded(
        request.id, requester, PRICE - kept, "no majority among the results"
    ) in receipts[-1].events
    assert marketplace.requestStatus(request.id) == REFUNDED
    assert token.balanceOf(requester) == balance + PRICE - kept
    assert marketplace.protocolEarnings() == protocol + kept
    assert all(marketplace.balances(node) == 0 for node in nodes)  # nobody paid
    assert all(coordinator.nodeInfo(node).stake == STAKE for node in nodes)  # nobody slashed
    assert all(coordinator.freeStake(node) == STAKE for node in nodes)  # bonds released
    conserved()


def test_quorum__three_different_outputs__no_majority_refunds_less_the_nodes_share(
    marketplace, coordinator, token, embedder, request_inference, requester, commit_reveal, conserved
):
    request, nodes, _ = request_inference(embedder)
    balance = token.balanceOf(requester)
    commit_reveal(request, {node: keccak(text=str(index)) for index, node in enumerate(nodes)})
    assert marketplace.requestStatus(request.id) == REFUNDED
    assert token.balanceOf(requester) == balance + EMBEDDER_PRICE - EMBEDDER_PRICE * 70 // 100
    assert all(coordinator.nodeInfo(node).stake == STAKE for node in nodes)
    assert all(coordinator.freeStake(node) == STAKE for node in nodes)
    conserved()


@pytest.mark.parametrize("committed", [0, 3])
def test_quorum__nobody_revealed__refunds_in_full_and_slashes_every_silent_node(
    marketplace, coordinator, token, embedder, request_inference, requester, timelock, outsider, commit_reveal,
    chain, committed, conserved,
):
    request, nodes, _ = request_inference(embedder)
    bond = coordinator.taskBond()
    balance, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    commit_reveal(request, {node: keccak(text="e") for node in nodes[:committed]}, reveal=False)
    after_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert marketplace.InferenceRefunded(request.id, requester, EMBEDDER_PRICE, "no result was revealed") in receipt.events
    assert token.balanceOf(requester) == balance + EMBEDDER_PRICE
    assert token.balanceOf(timelock) == treasury + 3 * bond
    assert all(coordinator.nodeInfo(node).stake == STAKE - bond for node in nodes)
    assert all(coordinator.nodeInfo(node).missedDeadlines == 1 for node in nodes)
    assert all(marketplace.resultOf(request.id, slot) == ZERO32 for slot in range(3))
    conserved()


def test_quorum__one_revealed_two_silent__no_majority_slashes_the_silent_and_keeps_the_nodes_share(
    marketplace, coordinator, token, embedder, request_inference, by_address, requester, outsider, commit_reveal,
    chain, conserved,
):
    # One answer is not a majority of three: the two silent are slashed, the revealer released
    # unpaid, and the requester, who holds that answer, gets the escrow less the nodes' share.
    request, nodes, _ = request_inference(embedder)
    bond = coordinator.taskBond()
    balance = token.balanceOf(requester)
    commit_reveal(request, {nodes[0]: keccak(text="e")}, reveal=False)
    chain.pending_timestamp = request.deadline + 1
    reveal(marketplace, request, nodes[0], keccak(text="e"), by_address[nodes[0]])
    after_reveal_window(marketplace, chain, request)
    marketplace.closeExpired(request, sender=outsider)
    assert token.balanceOf(requester) == balance + EMBEDDER_PRICE - EMBEDDER_PRICE * 70 // 100
    assert coordinator.nodeInfo(nodes[0]).stake == coordinator.freeStake(nodes[0]) == STAKE
    assert marketplace.balances(nodes[0]) == 0
    assert all(coordinator.nodeInfo(node).stake == STAKE - bond for node in nodes[1:])
    conserved()


def test_tally__majority_of_the_quorum__not_of_the_reveals(judge):
    # The judge gets only the outputs revealed (any order, any value, zero included) and the
    # quorum k: an output wins with more than k / 2 of them.
    a, b = keccak(text="a"), keccak(text="b")
    assert judge.tally(3, [a, a]) == (1, a)  # Accepted: two of three, the third silent
    assert judge.tally(3, [b, a, a]) == (1, a)
    assert judge.tally(3, [a]).verdict == 2  # one of three: Rejected
    assert judge.tally(3, []) == (2, ZERO32)
    assert judge.tally(4, [a, a, b, b]).verdict == 2  # a tie is no majority
    assert judge.tally(4, [a, b, a]).verdict == 2  # two of four is no majority
    assert judge.tally(2, [a, b]) == (2, ZERO32)
    assert judge.tally(1, [a]) == (1, a)
    assert judge.tally(3, [ZERO32, ZERO32]) == (1, ZERO32)  # zero is an output like any other


@pytest.mark.parametrize("quorum, outputs", [(0, 0), (2, 3)])
def test_tally__invalid_sizes__reverts(judge, quorum, outputs):
    with reverts_with("ProofOfInferenceInvalidTally", abi=judge):
        judge.tally(quorum, [keccak(text="a")] * outputs)


def test_judge__stateless__no_judge_or_marketplace_entry_points(judge):
    names = {abi.name for abi in judge.contract_type.abi if abi.type == "function"}
    assert {"tally", "checkProof"} <= names
    assert not names & {"judge", "submissionsOf", "setMarketplace", "marketplace"}


# ---- timeouts and declines ----


def test_close_expired__before_deadline__reverts(marketplace, digits, request_inference, outsider):
    request, _, _ = request_inference(digits)
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)


def test_close_expired__unassigned__refunds_in_full_and_slashes_nobody(
    marketplace, coordinator, token, digits, request_inference, requester, outsider, operators, timelock, chain,
    conserved,
):
    request, _, _ = request_inference(digits, assign=False)
    balance, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)
    chain.pending_timestamp = request.deadline + 1
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert marketplace.InferenceRefunded(request.id, requester, PRICE, "no node was assigned") in receipt.events
    assert token.balanceOf(requester) == balance + PRICE and token.balanceOf(timelock) == treasury
    assert all(coordinator.nodeInfo(op).stake == STAKE and coordinator.freeStake(op) == STAKE for op in operators)
    assert marketplace.requestStatus(request.id) == REFUNDED
    conserved()


def test_close_expired__silent_node__refunds_the_escrow_and_slashes_to_the_treasury(
    marketplace, coordinator, token, digits, request_inference, requester, outsider, timelock, chain, conserved
):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    balance, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    bond = coordinator.taskBond()
    chain.pending_timestamp = request.deadline + 1
    receipt = marketplace.closeExpired(request, sender=outsider)  # anyone may close it
    assert token.balanceOf(requester) == balance + PRICE  # the escrow, never part of the slash
    assert token.balanceOf(timelock) == treasury + bond
    (slashed,) = receipt.decode_logs(coordinator.NodeSlashed)
    assert (slashed.node, slashed.amount, slashed.beneficiary, slashed.beneficiaryShare) == (node, bond, ZERO_ADDRESS, 0)
    assert coordinator.nodeInfo(node).missedDeadlines == 1
    with reverts_with("ModelMarketplaceRequestClosed"):
        marketplace.closeExpired(request, sender=outsider)
    conserved()


def test_close_expired__even_with_a_full_beneficiary_share__requester_gets_no_slash(
    marketplace, coordinator, token, digits, request_inference, requester, outsider, timelock, chain, as_timelock
):
    # The coordinator pays a beneficiary only when the marketplace names one, and it never does.
    coordinator.setSlashBeneficiaryShareBps(10_000, sender=as_timelock)
    request, _, _ = request_inference(digits)
    balance, treasury = token.balanceOf(requester), token.balanceOf(timelock)
    chain.pending_timestamp = request.deadline + 1
    marketplace.closeExpired(request, sender=outsider)
    assert token.balanceOf(requester) == balance + PRICE
    assert token.balanceOf(timelock) == treasury + coordinator.taskBond()


def test_close_expired__quorum_within_reveal_window__reverts(
    marketplace, embedder, request_inference, outsider, chain
):
    request, _, _ = request_inference(embedder)
    chain.pending_timestamp = request.deadline + marketplace.revealWindow() - 5
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)


def test_decline__assigned_node__refunds_with_reason(
    marketplace, token, digits, request_inference, by_address, requester, coordinator, conserved
):
    request, (node,), _ = request_inference(digits)
    balance = token.balanceOf(requester)
    receipt = marketplace.declineRequest(request, "input fails the schema", sender=by_address[node])
    assert token.balanceOf(requester) == balance + PRICE
    assert marketplace.RequestDeclined(request.id, node, "input fails the schema") in receipt.events
    assert coordinator.freeStake(node) == STAKE
    conserved()


def test_decline__quorum_before_any_commit__refunds_and_releases_all(
    marketplace, token, embedder, request_inference, by_address, requester, coordinator, conserved
):
    request, nodes, _ = request_inference(embedder)
    balance = token.balanceOf(requester)
    marketplace.declineRequest(request, "input too large", sender=by_address[nodes[1]])
    assert token.balanceOf(requester) == balance + EMBEDDER_PRICE
    assert all(coordinator.freeStake(node) == STAKE for node in nodes)
    conserved()


def test_decline__after_deadline__reverts_so_the_timeout_slash_stands(
    marketplace, coordinator, digits, request_inference, by_address, outsider, chain
):
    request, (node,), _ = request_inference(digits, deadline_in=120)
    chain.pending_timestamp = request.deadline + 1
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        marketplace.declineRequest(request, "too late", sender=by_address[node])
    marketplace.closeExpired(request, sender=outsider)
    assert coordinator.nodeInfo(node).missedDeadlines == 1


def test_decline__after_a_commit__reverts_so_the_vote_stands(
    marketplace, embedder, request_inference, by_address, commit_reveal
):
    request, nodes, _ = request_inference(embedder)
    commit_reveal(request, {nodes[0]: keccak(text="wrong")}, reveal=False)
    for node in nodes:
        with reverts_with("ModelMarketplaceResultsSubmitted"):
            marketplace.declineRequest(request, "changed my mind", sender=by_address[node])
    assert marketplace.requestStatus(request.id) == OPEN


def test_decline__not_assigned__reverts(marketplace, digits, request_inference, outsider, operators):
    request, _, _ = request_inference(digits)
    with reverts_with("ModelMarketplaceNotAssigned"):
        marketplace.declineRequest(request, "no", sender=outsider)
    unassigned, _, _ = request_inference(digits, assign=False)
    with reverts_with("ModelMarketplaceNotAssigned"):
        marketplace.declineRequest(unassigned, "no", sender=operators[0])


# ---- balances ----


def test_withdraw_balance__credited__pays_once(marketplace, token, digits, request_inference, by_address, timelock, outsider, conserved):
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[node])
    before = token.balanceOf(node), token.balanceOf(timelock)
    receipt = marketplace.withdrawBalance(node, sender=by_address[node])
    assert marketplace.BalanceWithdrawn(node, PRICE * 70 // 100) in receipt.events
    receipt = marketplace.withdrawProtocolEarnings(sender=outsider)  # anyone sweeps fees to the treasury
    assert marketplace.ProtocolEarningsWithdrawn(timelock, PRICE // 10) in receipt.events
    assert token.balanceOf(node) == before[0] + PRICE * 70 // 100
    assert token.balanceOf(timelock) == before[1] + PRICE // 10
    with reverts_with("ModelMarketplaceNothingToWithdraw"):
        marketplace.withdrawBalance(node, sender=by_address[node])
    with reverts_with("ModelMarketplaceNothingToWithdraw"):
        marketplace.withdrawProtocolEarnings(sender=outsider)
    conserved()


def test_withdraw_balance__deposit__returns_it(marketplace, token, requester, conserved):
    deposit(marketplace, token, requester, PRICE)
    tokens = token.balanceOf(requester)
    marketplace.withdrawBalance(requester, sender=requester)
    assert token.balanceOf(requester) == tokens + PRICE and marketplace.balances(requester) == 0
    conserved()


def test_withdraw_balance__by_an_outsider__reverts_and_the_balance_stays(
    marketplace, token, requester, outsider, model_owner
):
    # Pushing a requester's deposit back to its wallet would make its balance-paid requests fail.
    deposit(marketplace, token, requester, PRICE)
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=outsider)
    marketplace.setOperator(outsider, True, sender=model_owner)  # another account's operator
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=outsider)
    assert marketplace.balances(requester) == PRICE


def test_withdraw_balance__by_an_approved_operator__pays_the_account(
    marketplace, token, requester, outsider, conserved
):
    deposit(marketplace, token, requester, PRICE)
    receipt = marketplace.setOperator(outsider, True, sender=requester)
    assert marketplace.OperatorSet(requester, outsider, True) in receipt.events
    assert marketplace.isOperator(requester, outsider)
    tokens, operator_tokens = token.balanceOf(requester), token.balanceOf(outsider)
    marketplace.withdrawBalance(requester, sender=outsider)
    assert token.balanceOf(requester) == tokens + PRICE  # to the account, not the operator
    assert token.balanceOf(outsider) == operator_tokens
    # Revoked, the operator can withdraw no more.
    deposit(marketplace, token, requester, PRICE)
    marketplace.setOperator(outsider, False, sender=requester)
    assert not marketplace.isOperator(requester, outsider)
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=outsider)
    conserved()


# ---- governance ----


@pytest.mark.parametrize(
    "method, args",
    [
        ("setFeeShares", (6000, 3000, 1000)),
        ("setMaxDeadlineWindow", (3600,)),
        ("setMinResponseWindow", (120,)),
        ("setRevealWindow", (120,)),
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
    marketplace.submitResult(request, keccak(text="x"), "", b"", sender=by_address[node])
    assert marketplace.balances(model_owner) == PRICE * 30 // 100


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


def test_response_and_reveal_windows__changed_by_proposal__apply_to_next_requests(
    marketplace, governance, alice, bob, embedder, request_inference, outsider, chain
):
    calls = [
        (marketplace, marketplace.setMinResponseWindow.encode_input(300)),
        (marketplace, marketplace.setRevealWindow.encode_input(600)),
    ]
    receipt = governance.enact(alice, calls, "Slower nodes", [(alice, 1), (bob, 1)])
    assert marketplace.MinResponseWindowSet(60, 300) in receipt.events
    assert marketplace.RevealWindowSet(60, 600) in receipt.events
    assert (marketplace.minResponseWindow(), marketplace.revealWindow()) == (300, 600)
    assert marketplace.responseWindowOf(embedder) == 300
    with reverts_with("ModelMarketplaceInvalidDeadline"):
        request_inference(embedder, deadline_in=200)
    request, _, _ = request_inference(embedder, deadline_in=400)
    chain.pending_timestamp = request.deadline + 500  # past the old reveal window, not the new one
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)


@pytest.mark.parametrize(
    "method, window",
    [("setMinResponseWindow", 29), ("setMinResponseWindow", 86_401), ("setRevealWindow", 29), ("setRevealWindow", 86_401)],
)
def test_response_and_reveal_windows__outside_bounds__cannot_execute(
    marketplace, governance, alice, bob, dao, method, window
):
    calls = [(marketplace, getattr(marketplace, method).encode_input(window))]
    proposal_id = governance.ready_to_execute(alice, calls, f"{method} {window}", [(alice, 1), (bob, 1)])
    with reverts_with("ModelMarketplaceParameterOutOfBounds"):
        dao.execute(proposal_id, sender=alice)


@pytest.mark.parametrize("method", ["setMinResponseWindow", "setRevealWindow"])
def test_response_and_reveal_windows__at_their_bounds__accepted_from_the_timelock(marketplace, as_timelock, method):
    getter = {"setMinResponseWindow": marketplace.minResponseWindow, "setRevealWindow": marketplace.revealWindow}[method]
    low = marketplace.RESPONSE_WINDOW_FLOOR() if method == "setMinResponseWindow" else marketplace.MIN_REVEAL_WINDOW()
    high = marketplace.MAX_RESPONSE_WINDOW() if method == "setMinResponseWindow" else marketplace.MAX_REVEAL_WINDOW()
    assert (low, high) == (30, 86_400)
    for window in (low, high):
        getattr(marketplace, method)(window, sender=as_timelock)
        assert getter() == window


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
