"""joynet.ModelMarketplace: the original design's async client against the deployed marketplace,
through the whole lifecycle: committed registration, request and assignment, single results and
quorum commit-reveal, declines, expiry, deposits and operator withdrawals."""

import asyncio
import os

import pytest
from eth_utils import keccak
from helpers.chain_asserts import refused_with

from joynet import InferenceResult, MarketplaceError, ModelMarketplace, RequestStatus, model_key
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, seal_result


@pytest.fixture
def client_for(marketplace):
    return lambda account: ModelMarketplace(contract_address=marketplace.address, account=account)


def test_client__register_request_serve__returns_settled_result(client_for, model_owner, requester, operators):
    async def flow():
        await client_for(model_owner).register_model(
            model_id="mymodel", metadata="ipfs://bafymeta", price=3 * JOY, weights_commitment=keccak(text="w")
        )
        node = client_for(operators[0])
        await node.register_node(stake=2_000 * JOY, capacity=2, models=["mymodel"])
        buyer = client_for(requester)
        request_id = await buyer.request_inference("mymodel", keccak(text="input"), "ipfs://bafyinput")
        assert buyer.status(request_id) is RequestStatus.Open
        await node.submit_result(request_id, keccak(text="output"), "ipfs://bafyoutput")
        return await buyer.get_result(request_id, timeout=5)

    result = asyncio.run(flow())
    assert isinstance(result, InferenceResult)
    assert result.status is RequestStatus.Settled
    assert result.output_commitment == keccak(text="output")
    assert result.output_uri == "ipfs://bafyoutput"
    assert result.nodes == [operators[0].address]


def test_client__declined_request__returns_refund_reason(client_for, register_model, register_node, requester, operators):
    register_model("mymodel", price=JOY)
    register_node(operators[0], [model_key("mymodel")])

    async def flow():
        buyer = client_for(requester)
        request_id = await buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in")
        await client_for(operators[0]).decline_request(request_id, "input is not 64 pixels")
        return await buyer.get_result(request_id, timeout=5)

    result = asyncio.run(flow())
    assert result.status is RequestStatus.Refunded
    assert result.refund_reason == "input is not 64 pixels"


def test_client__open_request__times_out_with_clear_error(client_for, register_model, register_node, requester, operators):
    register_model("mymodel", price=JOY)
    register_node(operators[0], [model_key("mymodel")])
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in"))
    with pytest.raises(MarketplaceError, match="still open after 0.2 s"):
        asyncio.run(buyer.get_result(request_id, timeout=0.2, poll_seconds=0.05))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metadata": "https://x", "price": 1}, "must be an ipfs:// URI"),
        ({"metadata": "ipfs://x", "price": 0}, "must name its IOTA stream"),
        ({"metadata": "ipfs://x", "price": 1, "weights_commitment": b"short"}, "must be 32 bytes"),
    ],
)
def test_client__bad_model_arguments__raise_before_sending(client_for, model_owner, kwargs, message):
    client = client_for(model_owner)
    with pytest.raises(MarketplaceError, match=message):
        asyncio.run(client.register_model(model_id="m", **kwargs))
    assert client.last_receipt is None


def test_client__price_above_max__raises_before_sending(client_for, register_model, requester):
    register_model("mymodel", price=2 * JOY)
    client = client_for(requester)
    with pytest.raises(MarketplaceError, match="above max_price"):
        asyncio.run(client.request_inference("mymodel", keccak(text="in"), "ipfs://in", max_price=JOY))
    assert client.last_receipt is None


def test_client__unknown_model__raises(client_for, requester):
    with pytest.raises(MarketplaceError, match="no model 'ghost' is registered"):
        asyncio.run(client_for(requester).request_inference("ghost", keccak(text="in"), "ipfs://in"))


def test_client__without_account__cannot_send(marketplace, monkeypatch):
    monkeypatch.delenv("JOYNET_ACCOUNT", raising=False)
    client = ModelMarketplace(contract_address=marketplace.address)
    with pytest.raises(MarketplaceError, match="no account: pass account= or set JOYNET_ACCOUNT"):
        asyncio.run(client.register_model("m", "ipfs://x", price=1))


def test_client__no_account_given_and_joynet_account_names_none__account_error_before_sending(marketplace, monkeypatch):
    from joynet.chain.errors import AccountError

    monkeypatch.setenv("JOYNET_ACCOUNT", "test:9999")
    client = ModelMarketplace(contract_address=marketplace.address)
    with pytest.raises(AccountError, match=r"there are \d+ test accounts"):
        asyncio.run(client.register_model("m", "ipfs://x", price=1))


def test_client__deposit_then_request_from_balance__pays_from_balance(client_for, register_model, register_node, requester, operators, token, marketplace):
    register_model("mymodel", price=JOY)
    register_node(operators[0], [model_key("mymodel")])
    buyer = client_for(requester)

    async def flow():
        await buyer.deposit(3 * JOY)
        tokens = token.balanceOf(requester)
        request_id = await buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", from_balance=True)
        return request_id, tokens

    request_id, tokens = asyncio.run(flow())
    assert buyer.status(request_id) is RequestStatus.Open
    assert token.balanceOf(requester) == tokens and marketplace.balances(requester) == 2 * JOY


def test_client__request_from_balance_without_deposit__raises_before_sending(client_for, register_model, register_node, requester, operators, marketplace):
    register_model("mymodel", price=JOY)
    register_node(operators[0], [model_key("mymodel")])
    count = marketplace.requestCount()
    with pytest.raises(MarketplaceError, match="below the price .* deposit first"):
        asyncio.run(client_for(requester).request_inference("mymodel", keccak(text="in"), "ipfs://in", from_balance=True))
    assert marketplace.requestCount() == count


# ---- registration in two steps ----


def test_client__register_model__commits_then_registers_from_a_later_block(client_for, marketplace, model_owner, chain):
    start = chain.blocks.height + 1
    client = client_for(model_owner)
    key = asyncio.run(client.register_model(
        "slowmodel", "ipfs://bafymeta", price=2 * JOY, quorum=3, circuit_id=keccak(text="circuit"),
        response_window=300,
    ))
    assert key == model_key("slowmodel")
    (committed,) = marketplace.ModelRegistrationCommitted.range(start, chain.blocks.height + 1)
    (registered,) = marketplace.ModelRegistered.range(start, chain.blocks.height + 1)
    assert committed.committer == model_owner.address
    assert committed.block_number < registered.block_number  # the commitment is older
    assert (registered.modelId, registered.owner) == (key, model_owner.address)
    model = client.get_model("slowmodel")
    assert (model.price, model.quorum, bytes(model.circuitId), model.responseWindow) == (
        2 * JOY, 3, keccak(text="circuit"), 300
    )
    assert marketplace.responseWindowOf(key) == 300


def test_client__register_model__taken_id__raises_before_sending(client_for, register_model, model_owner, outsider):
    register_model("mymodel", price=JOY)
    client = client_for(outsider)
    with pytest.raises(MarketplaceError, match="already registered"):
        asyncio.run(client.register_model("mymodel", "ipfs://bafy", price=JOY))
    assert client.last_receipt is None


def test_client__register_model__policy_refused_by_the_chain__registration_not_sent(client_for, model_owner):
    with refused_with("ModelMarketplaceInvalidPolicy", account=model_owner, sent=1):  # after the commitment
        asyncio.run(client_for(model_owner).register_model("m", "ipfs://bafy", price=JOY, response_window=86_401))


# ---- requests and assignment ----


@pytest.fixture
def served(register_model, register_node, operators):
    """Registers ``name`` (price 1 JOY, the given quorum) served by the first ``quorum`` operators."""

    def serve(name="mymodel", quorum=1):
        model_id = register_model(name, price=JOY, quorum=quorum)
        for operator in operators[:quorum]:
            register_node(operator, [model_id])
        return model_id

    return serve


def test_client__request_inference__quorum_request__assigned_by_default(
    client_for, served, requester, operators, marketplace
):
    served("pair", quorum=2)
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("pair", keccak(text="in"), "ipfs://in"))
    # The client's last transaction was the assignment, from the block after the request's.
    (assigned,) = buyer.last_receipt.decode_logs(marketplace.NodesAssigned)
    request = buyer.get_request(request_id)
    assert assigned.requestId == request_id and set(request.nodes) == {op.address for op in operators[:2]}
    assert buyer.last_receipt.block_number > request.seedBlock
    assert marketplace.requestDigest(request_id) == marketplace.hashRequest(request)


def test_client__request_inference__no_node_has_room__request_left_open_or_named_in_the_error(
    client_for, register_model, register_node, requester, operators
):
    model_id = register_model("busy-pair", price=JOY, quorum=2)
    for operator in operators[:2]:
        register_node(operator, [model_id], capacity=1)
    buyer = client_for(requester)
    first = asyncio.run(buyer.request_inference("busy-pair", keccak(text="a"), "ipfs://a"))
    assert len(buyer.get_request(first).nodes) == 2  # both nodes are now full
    # By default the request stands, unassigned, for the edge agents to assign once room frees.
    second = asyncio.run(buyer.request_inference("busy-pair", keccak(text="b"), "ipfs://b"))
    assert buyer.status(second) is RequestStatus.Open and buyer.get_request(second).nodes == []
    # Asked to assign, the client says which request was made, so nothing is lost.
    with pytest.raises(MarketplaceError, match=rf"request {second + 1} was made, but no node has room"):
        asyncio.run(buyer.request_inference("busy-pair", keccak(text="c"), "ipfs://c", assign=True))
    assert buyer.status(second + 1) is RequestStatus.Open


def test_client__nodes_with_room__full_and_free_nodes__counts_only_those_assignable_now(
    client_for, register_model, register_node, requester, operators
):
    model_id = register_model("half-busy", price=JOY, quorum=1)
    buyer = client_for(requester)
    assert buyer.nodes_with_room("half-busy") == (0, 0)
    for operator in operators[:3]:
        register_node(operator, [model_id], capacity=1)
    assert buyer.nodes_with_room("half-busy") == (3, 3)
    assert buyer.nodes_with_room("half-busy", enough=1) == (1, 3)  # stops counting once enough have room
    for text in ("a", "b"):  # two nodes fill up
        asyncio.run(buyer.request_inference("half-busy", keccak(text=text), f"ipfs://{text}", assign=True))
    assert buyer.nodes_with_room("half-busy") == (1, 3)


def test_client__request_inference__fewer_nodes_serve_the_model_than_its_quorum__refused_before_sending(
    client_for, register_model, register_node, requester, operators, token, marketplace
):
    model_id = register_model("lonely-pair", price=JOY, quorum=2)
    register_node(operators[0], [model_id])  # one node: a quorum of 2 can never be assigned
    token.approve(marketplace, 10 * JOY, sender=requester)
    buyer = client_for(requester)
    nonce, tokens = requester.nonce, token.balanceOf(requester)
    with pytest.raises(MarketplaceError, match=r"needs 2 node\(s\) and 1 serve it now: nothing was sent"):
        asyncio.run(buyer.request_inference("lonely-pair", keccak(text="in"), "ipfs://in"))
    assert (requester.nonce, token.balanceOf(requester)) == (nonce, tokens)


def test_client__request_inference__single_node_request__left_to_its_drawn_node_whose_result_assigns_it(
    client_for, served, requester, operators, marketplace
):
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in"))
    assert not buyer.last_receipt.decode_logs(marketplace.NodesAssigned)  # the request was the last transaction
    assert buyer.get_request(request_id).nodes == []
    assert buyer.drawn_nodes(request_id) == [operators[0].address]

    receipt = asyncio.run(client_for(operators[0]).submit_result(request_id, keccak(text="out"), "ipfs://out"))

    (assigned,) = receipt.decode_logs(marketplace.NodesAssigned)
    assert list(assigned.nodes) == [operators[0].address]
    result = asyncio.run(buyer.get_result(request_id, timeout=5))
    assert result.status is RequestStatus.Settled and result.nodes == [operators[0].address]


def test_client__decline_request__drawn_unassigned_request__assigned_then_declined(
    client_for, served, requester, operators, marketplace, token
):
    served()
    buyer = client_for(requester)
    balance = token.balanceOf(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in"))

    asyncio.run(client_for(operators[0]).decline_request(request_id, "not 64 pixels"))

    result = asyncio.run(buyer.get_result(request_id, timeout=5))
    assert (result.status, result.refund_reason, result.nodes) == (RequestStatus.Refunded, "not 64 pixels",
                                                                    [operators[0].address])
    assert token.balanceOf(requester) == balance


def test_client__request_without_assign__assign_nodes_assigns_once(client_for, served, requester, operators, marketplace):
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    unassigned = buyer.get_request(request_id)
    assert unassigned.nodes == [] and unassigned.quorum == 0
    assigned = asyncio.run(buyer.assign_nodes(request_id))
    assert assigned.nodes == [operators[0].address] and assigned == buyer.get_request(request_id)
    receipt = buyer.last_receipt
    # Already assigned: read back, nothing sent.
    assert asyncio.run(buyer.assign_nodes(assigned)) == assigned
    assert buyer.last_receipt is receipt


def test_client__assign_nodes__someone_assigned_first__returns_the_assigned_request(
    client_for, served, requester, assign_nodes, marketplace
):
    # Nodes serving the model assign what they see: the client's own attempt is then refused by its dry run
    # (ModelMarketplaceRequestMismatch, as the request it holds is the unassigned one), and it
    # reads the assignment back instead of failing.
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    unassigned = buyer.get_request(request_id)
    by_a_node = assign_nodes(unassigned)
    assert asyncio.run(buyer.assign_nodes(unassigned)) == by_a_node


def test_client__transact__another_account_acts_while_it_is_signed__refused_and_nothing_sent(
    client_for, served, requester, assign_nodes
):
    # The attack on a dry run: the state changes between the check and the send. The client
    # checks again once the transaction is signed; here a node assigns the request while the
    # requester's own assignment is being prepared, and the requester's is never sent.
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    unassigned = buyer.get_request(request_id)
    real_dry_run, interloper = buyer.dry_run, []

    def dry_run_then_interlope(method, *args, **options):
        gas = real_dry_run(method, *args, **options)
        if not interloper:  # after the first check, before the transaction is signed and checked again
            interloper.append(assign_nodes(unassigned))
        return gas

    buyer.dry_run = dry_run_then_interlope
    nonce = requester.nonce
    assert asyncio.run(buyer.assign_nodes(unassigned)) == interloper[0]  # read back, not failed
    assert requester.nonce == nonce


def test_client__assign_nodes__seed_gone__raises(client_for, served, requester, chain):
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    chain.mine(300)
    with refused_with("ModelMarketplaceSeedNotAvailable", account=requester):
        asyncio.run(buyer.assign_nodes(request_id))
    assert buyer.get_request(request_id).nodes == []


def test_client__unassigned_request__closes_expired_with_a_full_refund(client_for, served, requester, outsider, token, chain):
    served()
    buyer = client_for(requester)
    balance = token.balanceOf(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    chain.pending_timestamp = buyer.get_request(request_id).deadline + 1
    asyncio.run(client_for(outsider).close_expired(request_id))
    result = asyncio.run(buyer.get_result(request_id, timeout=5))
    assert (result.status, result.refund_reason, result.nodes) == (RequestStatus.Refunded, "no node was assigned", [])
    assert token.balanceOf(requester) == balance


# ---- quorum: commit, then reveal ----


def test_client__quorum_commit_then_reveal__settles_with_both_nodes(client_for, served, requester, operators):
    served("pair", quorum=2)
    output = keccak(text="embedding")

    async def flow():
        buyer = client_for(requester)
        request_id = await buyer.request_inference("pair", keccak(text="in"), "ipfs://in")
        request = buyer.get_request(request_id)
        nodes = {op.address: client_for(op) for op in operators[:2]}
        assert sorted(request.nodes) == sorted(nodes)
        salts = {address: os.urandom(32) for address in nodes}
        for address, node in nodes.items():
            await node.commit_result(request, output, salts[address])
        assert buyer.status(request_id) is RequestStatus.Open
        for address, node in nodes.items():
            await node.reveal_result(request_id, output, salts[address], "ipfs://bafyembedding")
        return request, await buyer.get_result(request_id, timeout=5)

    request, result = asyncio.run(flow())
    assert result.status is RequestStatus.Settled
    assert (result.output_commitment, result.output_uri) == (output, "ipfs://bafyembedding")
    assert result.nodes == request.nodes


def test_client__commit_result__seals_for_the_signing_node(client_for, served, requester, operators, marketplace):
    served("pair", quorum=2)
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("pair", keccak(text="in"), "ipfs://in"))
    request = buyer.get_request(request_id)
    node = client_for(operators[0])
    salt = os.urandom(32)
    receipt = asyncio.run(node.commit_result(request_id, keccak(text="e"), salt))
    assert marketplace.ResultCommitted(request_id, operators[0].address, 1) in receipt.events
    slot = request.nodes.index(operators[0].address)
    assert marketplace.resultOf(request_id, slot) == seal_result(request_id, operators[0].address, keccak(text="e"), salt)


def test_client__reveal_result__wrong_salt_or_not_yet_open__refused_before_sending(client_for, served, requester, operators):
    served("pair", quorum=2)
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("pair", keccak(text="in"), "ipfs://in"))
    first, second = client_for(operators[0]), client_for(operators[1])
    asyncio.run(first.commit_result(request_id, keccak(text="e"), b"\1" * 32))
    with refused_with("ModelMarketplaceRevealNotOpen", account=operators[0]):  # the other node has not committed yet
        asyncio.run(first.reveal_result(request_id, keccak(text="e"), b"\1" * 32, "ipfs://out"))
    asyncio.run(second.commit_result(request_id, keccak(text="e"), b"\2" * 32))
    with refused_with("ModelMarketplaceRevealMismatch", account=operators[0]):
        asyncio.run(first.reveal_result(request_id, keccak(text="e"), b"\2" * 32, "ipfs://out"))
    with pytest.raises(MarketplaceError, match="salt must be 32 bytes"):
        asyncio.run(first.commit_result(request_id, keccak(text="e"), b"short"))


def test_client__submit_result__on_a_quorum_request__refused_before_sending(client_for, served, requester, operators):
    served("pair", quorum=2)
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("pair", keccak(text="in"), "ipfs://in"))
    with refused_with("ModelMarketplaceCommitRequired", account=operators[0]):
        asyncio.run(client_for(operators[0]).submit_result(request_id, keccak(text="e"), "ipfs://out"))


# ---- balances and operators ----


def test_client__withdraw_balance__by_an_approved_operator__pays_the_account(
    client_for, served, requester, operators, outsider, token, marketplace
):
    served()
    node_account = operators[0]
    node, keeper = client_for(node_account), client_for(outsider)

    async def earn():
        buyer = client_for(requester)
        request_id = await buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in")
        await node.submit_result(request_id, keccak(text="out"), "ipfs://out")

    asyncio.run(earn())
    earned = marketplace.balances(node_account)
    assert earned == JOY * 70 // 100
    with refused_with("ModelMarketplaceNotAuthorized", account=outsider):  # not (yet) the node's operator
        asyncio.run(keeper.withdraw_balance(node_account.address))
    asyncio.run(node.set_operator(outsider.address))
    assert marketplace.isOperator(node_account, outsider)
    tokens, keeper_tokens = token.balanceOf(node_account), token.balanceOf(outsider)
    asyncio.run(keeper.withdraw_balance(node_account.address))
    assert token.balanceOf(node_account) == tokens + earned  # to the node, not its operator
    assert token.balanceOf(outsider) == keeper_tokens
    asyncio.run(node.set_operator(outsider.address, approved=False))
    assert not marketplace.isOperator(node_account, outsider)


def test_client__withdraw_balance__own_deposit_by_default(client_for, requester, token, marketplace):
    buyer = client_for(requester)
    asyncio.run(buyer.deposit(2 * JOY))
    tokens = token.balanceOf(requester)
    asyncio.run(buyer.withdraw_balance())
    assert token.balanceOf(requester) == tokens + 2 * JOY and marketplace.balances(requester) == 0
    with refused_with("ModelMarketplaceNothingToWithdraw", account=requester):
        asyncio.run(buyer.withdraw_balance())


def test_client__request_from_event__matches_the_chains_digest(client_for, served, requester, marketplace, chain):
    served()
    buyer = client_for(requester)
    request_id = asyncio.run(buyer.request_inference("mymodel", keccak(text="in"), "ipfs://in", assign=False))
    (requested,) = marketplace.InferenceRequested.range(0, chain.blocks.height + 1, search_topics={"requestId": request_id})
    request = Request.from_event(requested)
    assert request.seedBlock == requested.block_number and request.nodes == []
    assert marketplace.hashRequest(request) == marketplace.requestDigest(request_id)
    asyncio.run(buyer.assign_nodes(request))
    (event,) = marketplace.NodesAssigned.range(0, chain.blocks.height + 1, search_topics={"requestId": request_id})
    assert marketplace.hashRequest(Request.from_event(requested, event)) == marketplace.requestDigest(request_id)
    assert Request.from_event(requested, event) == request.assigned(event)
