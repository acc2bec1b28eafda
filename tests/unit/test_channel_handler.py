"""``joynet.IOTAInferenceHandler``: feeless requests and responses over the embedded ledger."""

import asyncio
import json
import time

import pytest

from joynet import IOTAInferenceHandler, IOTAInferenceRequest, IOTAInferenceResponse
from joynet.channels import ChannelReader, MaskedPayloadAccessError, MessageType, SQLiteLedger
from bench.channels import measure_channel
from joynet.feeless.errors import ErrorKind
from joynet.feeless.handler import REFUSED_WITHOUT_REASON, AdmissionRefusedError, credential_digest

NODE_SEED = "abandon " * 11 + "about"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
OTHER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"


@pytest.fixture(autouse=True)
def ledger_path(monkeypatch, tmp_path):
    path = tmp_path / "channels.sqlite3"
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(path))
    return path


async def serve_one(node, channel_id, timeout=5):
    """What an edge node does for one request (the 'model' doubles its input)."""
    request = await node.next_request(channel_id, timeout=timeout)
    await node.send_response(channel_id, request.request_id, {"y": request.input["x"] * 2}, proof={"pi_a": [1, 2]})
    return request


def round_trip(private):
    async def scenario():
        node, requester = IOTAInferenceHandler(wallet_seed=NODE_SEED), IOTAInferenceHandler(wallet_seed=REQUESTER_SEED)
        channel_id = await node.create_model_channel("mymodel", private=private, open=False)
        await requester.subscribe(channel_id)
        serving = asyncio.create_task(serve_one(node, channel_id))
        request_id = await requester.send_request(channel_id, "mymodel", {"x": 21}, timeout=5)
        response = await requester.wait_response(channel_id, request_id, timeout=5)
        return channel_id, request_id, await serving, response, requester

    return asyncio.run(scenario())


def test_request_response__private_channel__requester_gets_output_and_proof_and_payloads_are_masked(ledger_path):
    channel_id, request_id, request, response, requester = round_trip(private=True)

    assert isinstance(request, IOTAInferenceRequest) and isinstance(response, IOTAInferenceResponse)
    assert request.request_id == request_id and request.model_id == "mymodel" and request.input == {"x": 21}
    assert request.requester == requester.public_key
    assert response.request_id == request_id and response.output == {"y": 42} and response.proof == {"pi_a": [1, 2]}
    packets = [m for m in SQLiteLedger(ledger_path).read(bytes.fromhex(channel_id[2:])) if m.type is MessageType.PACKET]
    assert len(packets) == 2 and all(m.masked for m in packets)
    # In the clear only what the bridgers count usage with: no input, output or proof.
    assert [json.loads(m.public) for m in packets] == [
        {"kind": "request"}, {"kind": "response", "request_id": request_id, "node": None, "served": True}]
    outsider = ChannelReader(SQLiteLedger(ledger_path), bytes.fromhex(channel_id[2:]))
    outsider.sync()
    with pytest.raises(MaskedPayloadAccessError):
        outsider.open_masked(packets[0])


def test_request_response__public_channel__payloads_in_the_clear(ledger_path):
    channel_id, _, _, response, _ = round_trip(private=False)
    packets = [m for m in SQLiteLedger(ledger_path).read(bytes.fromhex(channel_id[2:])) if m.type is MessageType.PACKET]
    assert response.output == {"y": 42}
    assert all(m.public and not m.masked for m in packets)


def refused_round(policy, presented=b"forged"):
    """A requester presenting ``presented`` to a node whose admission policy is ``policy``."""
    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED, admission=policy)
        requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED)
        channel_id = await node.create_model_channel("private-model", private=True)
        await requester.subscribe(channel_id, credential=presented)
        assert await node.admit_pending(channel_id) == []
        with pytest.raises(AdmissionRefusedError) as refused:
            await requester.send_request(channel_id, "private-model", {"x": 1}, timeout=30)
        return channel_id, requester, str(refused.value)

    return asyncio.run(scenario())


def test_send_request__admission_policy_returns_false__refused_at_once_and_nothing_admitted(ledger_path):
    started = time.monotonic()
    channel_id, requester, message = refused_round(lambda key, credential: credential == b"valid")
    assert time.monotonic() - started < 10  # told, not timed out (the timeout is 30 s)
    assert message.endswith(REFUSED_WITHOUT_REASON)
    messages = SQLiteLedger(ledger_path).read(bytes.fromhex(channel_id[2:]))
    assert MessageType.KEYLOAD not in [m.type for m in messages]
    (packet,) = [m for m in messages if m.type is MessageType.PACKET]  # the refusal only: no request was posted
    assert json.loads(packet.public) == {
        "kind": "refusal", "subscriber": requester.public_key, "credential": credential_digest(b"forged"),
        "reason": REFUSED_WITHOUT_REASON}


def test_send_request__admission_policy_raises_reason__subscriber_told_why(ledger_path):
    def policy(key, credential):
        raise AdmissionRefusedError("the credential expired")

    _, _, message = refused_round(policy)
    assert message.endswith("refused us: the credential expired")


def test_send_request__refused_then_new_credential__judged_again_and_served(ledger_path):
    """A refusal names the credential it judged: after resubscribing with another credential the
    author judges again, and the requester waits for that instead of failing on the old refusal."""
    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED, admission=lambda key, credential: credential == b"valid")
        requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED)
        channel_id = await node.create_model_channel("private-model", private=True)
        await requester.subscribe(channel_id, credential=b"forged")
        await node.admit_pending(channel_id)
        with pytest.raises(AdmissionRefusedError):
            await requester.send_request(channel_id, "private-model", {"x": 1}, timeout=5)
        await requester.subscribe(channel_id, credential=b"valid")
        serving = asyncio.create_task(serve_one(node, channel_id))  # the same node judges the new subscription
        request_id = await requester.send_request(channel_id, "private-model", {"x": 4}, timeout=5)
        await serving
        return await requester.wait_response(channel_id, request_id, timeout=5)

    assert asyncio.run(scenario()).output == {"y": 8}


def test_wait_response__answer_posted_by_another_requester__ignored(ledger_path):
    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED)
        requester, impostor = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED), IOTAInferenceHandler(wallet_seed=OTHER_SEED)
        channel_id = await node.create_model_channel("mymodel", private=True)
        await requester.subscribe(channel_id)
        await impostor.subscribe(channel_id)
        await node.admit_pending(channel_id)
        request_id = await requester.send_request(channel_id, "mymodel", {"x": 21})
        await impostor.send_response(channel_id, request_id, {"y": -1})  # admitted, but not the node
        with pytest.raises(TimeoutError):
            await requester.wait_response(channel_id, request_id, timeout=0.2)
        await serve_one(node, channel_id)
        return await requester.wait_response(channel_id, request_id, timeout=5)

    assert asyncio.run(scenario()).output == {"y": 42}


def test_next_request__node_restarts__answered_requests_not_served_again(ledger_path):
    async def scenario():
        node, requester = IOTAInferenceHandler(wallet_seed=NODE_SEED), IOTAInferenceHandler(wallet_seed=REQUESTER_SEED)
        channel_id = await node.create_model_channel("mymodel", private=True)
        await requester.subscribe(channel_id)
        await node.admit_pending(channel_id)
        first = await requester.send_request(channel_id, "mymodel", {"x": 1})
        second = await requester.send_request(channel_id, "mymodel", {"x": 2})
        assert (await serve_one(node, channel_id)).request_id == first

        restarted = IOTAInferenceHandler(wallet_seed=NODE_SEED)
        assert await restarted.create_model_channel("mymodel", private=True) == channel_id
        return second, await serve_one(restarted, channel_id)

    second, served = asyncio.run(scenario())
    assert served.request_id == second and served.input == {"x": 2}


def test_next_request__nothing_arrives__timeout_error():
    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED)
        channel_id = await node.create_model_channel("quiet", private=True)
        await node.next_request(channel_id, timeout=0.1)

    with pytest.raises(TimeoutError, match="a request"):
        asyncio.run(scenario())


def test_handler__no_wallet_seed__refused():
    with pytest.raises(ValueError, match="mnemonic"):
        IOTAInferenceHandler()


def test_measure_channel__small_run__positive_rate():
    result = measure_channel(n=50)
    assert set(result) == {"channel.messages_per_s"} and result["channel.messages_per_s"] > 0


def test_send_response__declined_with_a_kind__requester_gets_message_and_kind_and_public_part_says_not_served(
        ledger_path):
    async def decline_one(node, channel_id):
        request = await node.next_request(channel_id, timeout=5)
        await node.send_response(channel_id, request.request_id, None, error="x is not a number",
                                 error_kind=ErrorKind.INVALID_INPUT)

    async def scenario():
        node, requester = IOTAInferenceHandler(wallet_seed=NODE_SEED), IOTAInferenceHandler(wallet_seed=REQUESTER_SEED)
        channel_id = await node.create_model_channel("mymodel", private=True)
        await requester.subscribe(channel_id)
        declining = asyncio.create_task(decline_one(node, channel_id))
        request_id = await requester.send_request(channel_id, "mymodel", {"x": "?"}, timeout=5)
        response = await requester.wait_response(channel_id, request_id, timeout=5)
        await declining
        return channel_id, response

    channel_id, response = asyncio.run(scenario())
    assert (response.output, response.proof) == (None, None)
    assert (response.error, response.error_kind) == ("x is not a number", "invalid_input")
    packets = [m for m in SQLiteLedger(ledger_path).read(bytes.fromhex(channel_id[2:])) if m.type is MessageType.PACKET]
    assert json.loads(packets[-1].public) == {"kind": "response", "request_id": response.request_id, "node": None,
                                              "served": False}  # the kind and the message stay masked
