"""joynet.ModelMarketplace: the original design's async client against the deployed marketplace."""

import asyncio

import pytest
from eth_utils import keccak

from joynet import InferenceResult, MarketplaceError, ModelMarketplace, RequestStatus, model_key
from joynet.deploy import JOY


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


def test_client__without_account__cannot_send(marketplace):
    client = ModelMarketplace(contract_address=marketplace.address)
    with pytest.raises(MarketplaceError, match="no account"):
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
    assert token.balanceOf(requester) == tokens and marketplace.earnings(requester) == 2 * JOY


def test_client__request_from_balance_without_deposit__raises_before_sending(client_for, register_model, register_node, requester, operators, marketplace):
    register_model("mymodel", price=JOY)
    register_node(operators[0], [model_key("mymodel")])
    count = marketplace.requestCount()
    with pytest.raises(MarketplaceError, match="below the price .* deposit first"):
        asyncio.run(client_for(requester).request_inference("mymodel", keccak(text="in"), "ipfs://in", from_balance=True))
    assert marketplace.requestCount() == count
