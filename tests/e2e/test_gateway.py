"""The OpenAI-compatible gateway (joynet.gateway) in front of the marketplace, called by the real
`openai` SDK.

The gateway runs in this process (aiohttp on a free port, its own event loop in a thread) and pays
from the requester's deposited balance on the suite's anvil. Without any node: the list of models
from the registry, and every refusal (unknown model, missing or unknown key, a key past its
spending limit, no node serving, bad input) with its status and body, nothing sent on chain. With
one `ape run edge_agent` serving all-MiniLM-L6-v2 (quorum 1): embeddings equal to a local
sentence-transformers run through the project's int8 quantization, a receipt that checks out on
chain, and a key stopped at its limit; a batch whose bad item is its own error. With one agent
serving MiniLM feeless on its owner's channel: the same embeddings, asked over the channel, with
nothing sent on chain. With one agent serving SmolLM2: a streamed chat completion whose text is the
settled answer's. With the only node at its capacity: 503 within 2 s.
"""

import asyncio
import concurrent.futures
import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import openai
import pytest
import requests
import yaml
from ape import accounts
from helpers import PROJECT_ROOT
from helpers.ape_commands import ape_env
from helpers.edge_agents import EdgeAgent, agent_environment, events_of, wait_for
from helpers.gateway import GatewayServer, free_port

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import RequestStatus, model_key
from joynet.gateway import GatewaySettings, KeyLedger, create_app
from joynet.gateway.app import LEDGER
from joynet.models.builtin import publish_builtin_models
from joynet.storage import EmbeddedStore

run = asyncio.run
MINILM, IDLE, UNREGISTERED = "gw-minilm", "gw-minilm-idle", "gw-not-registered"
FEELESS = "gw-minilm-feeless"
OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
PRICE = 2 * JOY
CHAT, CHAT_PRICE, CHAT_TOKENS = "gw-smollm2", 1 * JOY, 16
KEY, BROKE_KEY, BATCH_KEY = "jn-test-alice", "jn-test-broke", "jn-test-batch"
LIMIT = 5 * JOY  # two requests at PRICE, not three
TEXTS = ["The gateway speaks OpenAI's API.", "Hello world", "Edge nodes stake JOY and serve models."]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("gateway-ipfs"))


@pytest.fixture(scope="module")
def minilm_cid(marketplace, model_owner, store):
    """MiniLM published once and registered twice at quorum 1: MINILM (served in the end-to-end
    test) and IDLE (never served)."""
    cid = run(publish_builtin_models(store, minilm_quorum=1))["minilm"]
    metadata = json.loads(run(store.cat(cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    for name in (MINILM, IDLE):
        run(owner.register_model(name, f"ipfs://{cid}", price=PRICE, quorum=1,
                                 weights_commitment=metadata["weightsCommitment"]))
    return cid


@pytest.fixture(scope="module")
def smollm2_cid(marketplace, model_owner, store, tmp_path_factory):
    """SmolLM2-135M-Instruct published and registered at quorum 1 (one agent answers)."""
    from joynet.inference.runtimes.language_model import write_smollm2_package
    from joynet.models.package import load_model_metadata, publish_model

    package_dir = write_smollm2_package(tmp_path_factory.mktemp("smollm2"), maxNewTokens=CHAT_TOKENS)
    cid = run(publish_model(store, package_dir))
    metadata = run(load_model_metadata(store, cid))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(CHAT, f"ipfs://{cid}", price=CHAT_PRICE, quorum=1,
                             weights_commitment=metadata["weightsCommitment"]))
    return cid


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [
        {"name": "alice", "key": KEY, "limit_wei": str(LIMIT)},
        {"name": "broke", "key": BROKE_KEY, "limit_wei": PRICE - 1},
        {"name": "batch", "key": BATCH_KEY, "limit_wei": str(10 * PRICE)},
    ]}))
    return path


def serve_gateway(models, marketplace, requester, store, keys_file, settle_timeout=240) -> GatewayServer:
    """The gateway, paying as the requester; a new one per test (Ape reverts the chain after each,
    and a client's nonces must follow)."""
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    settings = GatewaySettings(models=models, settle_timeout=settle_timeout)
    return GatewayServer(create_app(settings, client, store, KeyLedger.from_file(keys_file)))


@pytest.fixture
def gateway(minilm_cid, marketplace, requester, store, keys_file):
    with serve_gateway([MINILM, IDLE, UNREGISTERED], marketplace, requester, store, keys_file) as server:
        yield server


def deposit(marketplace, token, requester, amount):
    """The gateway's deposit, made by its account directly."""
    token.approve(marketplace, amount, sender=requester)
    marketplace.deposit(requester, amount, sender=requester)
    return marketplace.balances(requester)


def sdk(gateway, key=KEY) -> openai.OpenAI:
    """The real SDK against the gateway; no retries, so that each refusal is seen once."""
    return openai.OpenAI(base_url=gateway.url, api_key=key, max_retries=0, timeout=60)


def post(gateway, path, body, key=KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{gateway.url}{path}", json=body, headers=headers, timeout=60)


def assert_openai_error(body: dict, code: str, type_: str):
    assert set(body["error"]) == {"message", "type", "code"}, body
    assert (body["error"]["code"], body["error"]["type"]) == (code, type_), body
    assert body["error"]["message"]


def local_quantized(texts):
    """all-MiniLM-L6-v2 loaded straight from the wheel, through the project's int8 quantization."""
    from sentence_transformers import SentenceTransformer

    from joynet.inference.runtimes.sentence_embedding import quantize
    from joynet.models.builtin import minilm_source_dir

    embedder = SentenceTransformer(str(minilm_source_dir()), device="cpu", local_files_only=True)
    return quantize(embedder.encode(texts, batch_size=32))


def hex_of(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


# ---- without nodes ----


def test_list_models__registered_and_unregistered_exposed__registered_ones_with_chain_price_policy_and_framework(
        gateway, minilm_cid, model_owner):
    listed = sdk(gateway).models.list()
    assert [model.id for model in listed.data] == [MINILM, IDLE]
    entry = listed.data[0]
    assert (entry.object, entry.owned_by) == ("model", "joynet")
    joynet = entry.model_extra["joynet"]
    assert joynet["price_wei"] == str(PRICE)
    assert joynet["policy"] == {"kind": "quorum", "quorum": 1, "circuit_id": None}
    assert joynet["framework"] == "sentence-transformers"
    assert joynet["metadata_uri"] == f"ipfs://{minilm_cid}"
    assert joynet["owner"] == model_owner.address
    assert joynet["key"] == "0x" + model_key(MINILM).hex()


def test_embeddings__unknown_or_unregistered_model__404_in_openai_error_format(gateway, chain):
    height = chain.blocks.height
    for name in ("no-such-model", UNREGISTERED):
        with pytest.raises(openai.NotFoundError) as refused:
            sdk(gateway).embeddings.create(model=name, input="Hello world")
        assert refused.value.status_code == 404
        assert refused.value.body["code"] == "model_not_found"
        assert_openai_error(refused.value.response.json(), "model_not_found", "invalid_request_error")
    assert chain.blocks.height == height


def test_embeddings__missing_or_unknown_key__401_and_nothing_sent(gateway, chain):
    height = chain.blocks.height
    missing = post(gateway, "/embeddings", {"model": MINILM, "input": "Hello world"}, key=None)
    assert missing.status_code == 401
    assert_openai_error(missing.json(), "invalid_api_key", "invalid_request_error")
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(gateway, key="jn-wrong").embeddings.create(model=MINILM, input="Hello world")
    assert refused.value.status_code == 401
    assert_openai_error(refused.value.response.json(), "invalid_api_key", "invalid_request_error")
    assert requests.get(f"{gateway.url}/models", timeout=30).status_code == 401
    assert chain.blocks.height == height


def test_embeddings__key_below_the_price__402_and_nothing_sent_on_chain(gateway, chain, marketplace):
    height = chain.blocks.height
    refused = post(gateway, "/embeddings", {"model": MINILM, "input": "Hello world"}, key=BROKE_KEY)
    assert refused.status_code == 402
    assert_openai_error(refused.json(), "spending_limit_reached", "insufficient_quota")
    assert str(PRICE) in refused.json()["error"]["message"]
    assert chain.blocks.height == height
    assert events_of(marketplace, "InferenceRequested", height) == []


def test_embeddings__no_node_serving__503_with_retry_after_within_2_s(gateway, chain):
    height = chain.blocks.height
    started = time.monotonic()
    refused = post(gateway, "/embeddings", {"model": IDLE, "input": "Hello world"})
    elapsed = time.monotonic() - started
    assert refused.status_code == 503
    assert elapsed < 2, elapsed
    assert int(refused.headers["Retry-After"]) > 0
    assert_openai_error(refused.json(), "no_capacity", "server_error")
    assert f"model {IDLE!r} needs 1 node(s) with room and no node serves it" in refused.json()["error"]["message"]
    assert chain.blocks.height == height


def test_embeddings__the_only_node_at_its_capacity__503_with_retry_after_within_2_s(
        operators, marketplace, token, requester, gateway, register_node, request_inference, chain):
    register_node(operators[0], [model_key(IDLE)], capacity=1)
    request_inference(model_key(IDLE))  # assigned to the node, which is now full
    deposit(marketplace, token, requester, 10 * JOY)
    height = chain.blocks.height
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as refused:
        sdk(gateway).embeddings.create(model=IDLE, input="Hello world")
    elapsed = time.monotonic() - started
    assert refused.value.status_code == 503
    assert elapsed < 2, elapsed
    assert int(refused.value.response.headers["Retry-After"]) > 0
    assert refused.value.body["code"] == "no_capacity"
    assert f"model {IDLE!r} needs 1 node(s) with room and 0 of the nodes serving it have room now" in (
        refused.value.body["message"])
    assert chain.blocks.height == height


def test_inference_batch__bad_items_among_good__207_with_each_item_its_own_error_nothing_sent(gateway, chain):
    height = chain.blocks.height
    answer = post(gateway, f"/inference/{IDLE}/batch", {"inputs": [{"texts": ["fine"]}, {"sentence": "no"}, "text"]})
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert body["failed"] == 3
    first, second, third = body["data"]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert first["status"] == 503 and first["error"]["code"] == "no_capacity"  # a valid input, but no node
    assert second["status"] == 400 and "inputSchema" in second["error"]["message"]
    assert third["status"] == 400 and "input 2 must be a JSON object" in third["error"]["message"]
    assert chain.blocks.height == height


@pytest.mark.parametrize("inputs", [[], "x", [{"texts": ["a"]}] * 33])
def test_inference_batch__no_list_of_inputs__400(gateway, inputs):
    refused = post(gateway, f"/inference/{MINILM}/batch", {"inputs": inputs})
    assert refused.status_code == 400
    assert_openai_error(refused.json(), "invalid_input", "invalid_request_error")


@pytest.mark.parametrize("path, body, words", [
    ("/embeddings", {"model": MINILM, "input": []}, "'input'"),
    ("/embeddings", {"model": MINILM, "input": [1, 2]}, "'input'"),
    ("/embeddings", {"input": "Hello world"}, "'model'"),
    ("/embeddings", {"model": MINILM, "input": "Hello", "encoding_format": "int8"}, "encoding_format"),
    ("/chat/completions", {"model": MINILM, "messages": [{"role": "user", "content": "Hi"}]}, "not a chat model"),
    ("/chat/completions", {"model": MINILM, "messages": [{"role": "robot", "content": "Hi"}]}, "role"),
    (f"/inference/{MINILM}", {"sentence": "Hello"}, "inputSchema"),
    (f"/inference/{MINILM}", {"texts": "x" * 70_000}, "bytes"),
])
def test_post__bad_input__400_and_nothing_sent(gateway, chain, path, body, words):
    height = chain.blocks.height
    refused = post(gateway, path, body)
    assert refused.status_code == 400, refused.text
    assert_openai_error(refused.json(), "invalid_input", "invalid_request_error")
    assert words in refused.json()["error"]["message"]
    assert chain.blocks.height == height


def test_post__body_not_json__400(gateway):
    refused = requests.post(f"{gateway.url}/embeddings", data=b"{not json", timeout=30,
                            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert refused.status_code == 400
    assert_openai_error(refused.json(), "invalid_input", "invalid_request_error")


def test_get_request__unknown_id__404(gateway):
    missing = requests.get(f"{gateway.url}/requests/999999", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert missing.status_code == 404
    assert_openai_error(missing.json(), "request_not_found", "invalid_request_error")


def test_healthz__chain_up__ok_with_chain_id_and_block(gateway, chain):
    health = requests.get(f"{gateway.root}/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "chain_id": chain.chain_id, "block": chain.blocks.height}


def test_gateway_command__started_then_sigterm__deposits_serves_the_registry_and_keeps_spending_in_its_file(
        minilm_cid, deployment, chain, marketplace, requester, store, keys_file, tmp_path):
    env = ape_env(chain, tmp_path / "deployments", JOYNET_IPFS_DIR=str(store.directory))
    deployment.save(tmp_path / "deployments" / f"{chain.provider.network.name}.json")
    balance, port = marketplace.balances(requester), free_port()
    command = [sys.executable, "-m", "joynet.cli", "gateway", "--model", MINILM, "--keys", str(keys_file),
               "--port", str(port), "--account", "test:5", "--deposit", "3"]
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_for(lambda: _answer(f"http://127.0.0.1:{port}/healthz"), 90, "the gateway's /healthz")
        listed = requests.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {KEY}"},
                              timeout=30).json()
        deposited = marketplace.balances(requester)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert health.json()["chain_id"] == chain.chain_id
    assert [entry["id"] for entry in listed["data"]] == [MINILM]
    assert listed["data"][0]["joynet"]["price_wei"] == str(PRICE)
    assert deposited == balance + 3 * JOY
    assert f"gateway listening on http://127.0.0.1:{port}/v1 for {MINILM}" in err
    spending = sqlite3.connect(keys_file.with_name("keys-spending.sqlite3"))
    assert sorted(spending.execute("SELECT name, spent, reserved FROM spending")) == [
        ("alice", "0", "0"), ("batch", "0", "0"), ("broke", "0", "0")]
    spending.close()


def _answer(url: str):
    try:
        answer = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None
    return answer if answer.status_code == 200 else None


# ---- with the test as the node ----


def request_as_the_node_acts(gateway, marketplace, chain, act, path, body):
    """POSTs ``body`` to the gateway from a thread and, once the request is on chain, calls
    ``act(request_id)`` (the test acting as the request's node); returns the gateway's answer."""
    start_block = chain.blocks.height
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, gateway, path, body)
        (requested,) = wait_for(lambda: events_of(marketplace, "InferenceRequested", start_block), 30,
                                "the gateway's request on chain")
        act(requested.requestId)
        return answer.result(timeout=60)


@pytest.fixture
def idle_node(operators, marketplace, token, requester, register_node):
    """The node serving IDLE, acted by the test (no agent), and the gateway's deposit."""
    register_node(operators[1], [model_key(IDLE)])
    deposit(marketplace, token, requester, 10 * JOY)
    return ModelMarketplace(contract_address=marketplace.address, account=operators[1])


def test_inference__the_node_declines__422_with_the_chains_reason_and_the_refund_receipt(
        idle_node, gateway, marketplace, token, requester, chain):
    balance, wallet = marketplace.balances(requester), token.balanceOf(requester)
    reason = "this node does not take texts in that language"
    answer = request_as_the_node_acts(gateway, marketplace, chain, lambda rid: run(idle_node.decline_request(rid, reason)),
                                      f"/inference/{IDLE}", {"texts": ["Bonjour"]})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert_openai_error(body, "refunded", "inference_refunded")
    assert reason in body["error"]["message"]
    receipt = body["joynet"]
    assert (receipt["status"], receipt["refund_reason"]) == ("Refunded", reason)
    assert marketplace.requestStatus(receipt["request_id"]) == RequestStatus.Refunded
    # The escrow came back, to the gateway's wallet (a refund is a transfer, not a deposit).
    assert (marketplace.balances(requester), token.balanceOf(requester)) == (balance - PRICE, wallet + PRICE)
    alice = gateway.app[LEDGER].authenticate(f"Bearer {KEY}")
    assert (alice.spent, alice.reserved) == (0, 0)  # a refund is given back to the key


@pytest.mark.parametrize("lie", ["another output", "another commitment"])
def test_inference__the_node_settles_an_output_that_does_not_check_out__502_and_the_output_withheld(
        idle_node, gateway, marketplace, chain, store, lie):
    from joynet.inference.inputs import encode_document
    from joynet.inference.runtimes.sentence_embedding import embedding_commitment

    honest = np.zeros((1, 384), dtype=np.int8)
    honest[0, 0] = 127

    def settle_a_lie(request_id):
        shown = honest.copy()
        shown[0, 1] = 5 if lie == "another output" else 0
        document = {"requestId": request_id, "model": IDLE, "output": {"embeddings": shown.tolist()},
                    "outputCommitment": "0x" + embedding_commitment(honest).hex()}
        if lie == "another commitment":
            document["outputCommitment"] = "0x" + model_key("not the settled one").hex()
        cid = run(store.add_bytes(encode_document(document)))
        run(idle_node.submit_result(request_id, embedding_commitment(honest), f"ipfs://{cid}"))

    answer = request_as_the_node_acts(gateway, marketplace, chain, settle_a_lie, f"/inference/{IDLE}",
                                      {"texts": ["Hello"]})
    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert_openai_error(body, "output_mismatch", "verification_error")
    assert "output" not in body
    assert body["joynet"]["status"] == "Settled"
    assert body["joynet"]["output_commitment"] == "0x" + embedding_commitment(honest).hex()
    alice = gateway.app[LEDGER].authenticate(f"Bearer {KEY}")
    assert (alice.spent, alice.reserved) == (0, 0)  # the gateway paid for it, the user is not charged


# ---- with an edge agent ----


def test_embeddings__openai_sdk_through_the_gateway_and_one_agent__local_quantized_floats_and_receipt_on_chain(
        store, deployment, chain, marketplace, token, requester, gateway, tmp_path):
    expected = local_quantized(TEXTS)
    start_block = chain.blocks.height
    balance = deposit(marketplace, token, requester, 10 * JOY)
    env = agent_environment(deployment, chain, store.directory, tmp_path / "deployments")
    agent = EdgeAgent.in_workdir(6, tmp_path, env, [MINILM])
    client = sdk(gateway)
    try:
        agent.start()
        agent.wait_ready()
        # The SDK's default: base64 float32, which it decodes.
        batch = client.embeddings.create(model=MINILM, input=TEXTS)
        single = client.embeddings.create(model=MINILM, input=TEXTS[1], encoding_format="float")
        with pytest.raises(openai.APIStatusError) as over_limit:  # a third request would pass the key's limit
            client.embeddings.create(model=MINILM, input="One too many")
        followed = requests.get(f"{gateway.url}/requests/{batch.model_extra['joynet']['request_id']}",
                                headers={"Authorization": f"Bearer {KEY}"}, timeout=30).json()
        # Any model's own route, and a batch whose bad item fails alone.
        direct = post(gateway, f"/inference/{MINILM}", {"texts": TEXTS[:1]}, key=BATCH_KEY)
        mixed = post(gateway, f"/inference/{MINILM}/batch",
                     {"inputs": [{"texts": TEXTS[2:]}, {"texts": 7}]}, key=BATCH_KEY)
    finally:
        agent.stop()

    assert direct.status_code == 200, direct.text
    assert direct.json()["output"]["embeddings"] == expected[:1].tolist()
    assert direct.json()["joynet"]["status"] == "Settled"
    assert direct.json()["outputCommitment"] == direct.json()["joynet"]["output_commitment"]
    assert mixed.status_code == 207, mixed.text
    good, bad = mixed.json()["data"]
    assert good["status"] == 200 and good["output"]["embeddings"] == expected[2:].tolist()
    assert marketplace.requestStatus(good["requestId"]) == RequestStatus.Settled
    assert bad["status"] == 400 and bad["error"]["code"] == "invalid_input" and "joynet" not in bad

    floats = expected.astype(np.float64) / 127
    assert [item.index for item in batch.data] == [0, 1, 2]
    assert [item.embedding for item in batch.data] == floats.astype(np.float32).tolist()
    assert single.data[0].embedding == floats[1].tolist()  # "float": q / 127 exactly
    assert len(single.data[0].embedding) == 384

    node = accounts.test_accounts[agent.index].address
    from joynet.inference.runtimes.sentence_embedding import embedding_commitment

    for answer, q in ((batch, expected), (single, expected[1:2])):
        receipt = answer.model_extra["joynet"]
        rid = receipt["request_id"]
        assert receipt["status"] == "Settled"
        assert marketplace.requestStatus(rid) == RequestStatus.Settled
        (settled,) = events_of(marketplace, "InferenceSettled", start_block, requestId=rid)
        assert receipt["transaction_hash"] == hex_of(settled.transaction_hash)
        assert receipt["block_number"] == settled.block_number
        assert receipt["output_commitment"] == "0x" + bytes(settled.outputCommitment).hex()
        assert bytes(settled.outputCommitment) == embedding_commitment(q)
        (submitted,) = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
        assert receipt["output_uri"] == submitted.outputURI
        assert receipt["nodes"] == [node]
        assert receipt["policy"] == {"kind": "quorum", "quorum": 1, "circuit_id": None}
        (requested,) = events_of(marketplace, "InferenceRequested", start_block, requestId=rid)
        assert requested.requester == requester.address
        assert receipt["input_commitment"] == "0x" + bytes(requested.inputCommitment).hex()
    assert followed["status"] == "Settled"
    assert followed["transaction_hash"] == batch.model_extra["joynet"]["transaction_hash"]

    assert over_limit.value.status_code == 402
    assert over_limit.value.body["code"] == "spending_limit_reached"
    assert len(events_of(marketplace, "InferenceRequested", start_block)) == 4  # the over-limit one was never sent
    assert marketplace.balances(requester) == balance - 4 * PRICE


def register_feeless(store, minilm_cid, marketplace, model_owner):
    """FEELESS: MiniLM at price 0 with its owner's open channel as stream; returns the owner's
    channel handler and the channel id."""
    from joynet.feeless.handler import IOTAInferenceHandler

    owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_SEED)
    channel_id = run(owner_channel.create_model_channel(FEELESS, private=False, open=True))
    metadata = json.loads(run(store.cat(minilm_cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(FEELESS, f"ipfs://{minilm_cid}", price=0, quorum=1, iota_stream_id=channel_id,
                             weights_commitment=metadata["weightsCommitment"]))
    return owner_channel, channel_id


NODE_SEED = "abandon " * 11 + "about"  # BIP-39 test vectors: development wallets only


@pytest.mark.parametrize("node", ["none serving", "vouched but silent"])
def test_embeddings__feeless_model_nobody_answers__503_at_once_or_504_after_the_timeout_nothing_charged(
        store, minilm_cid, operators, deployment, marketplace, model_owner, requester, keys_file, register_node,
        chain, tmp_path, monkeypatch, node):
    from joynet.feeless.claims import NODE_KEY, ChannelClaim
    from joynet.feeless.handler import IOTAInferenceHandler

    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))
    owner_channel, channel_id = register_feeless(store, minilm_cid, marketplace, model_owner)
    register_node(operators[0], [model_key(FEELESS)])  # staked, but no agent runs
    silent = IOTAInferenceHandler(wallet_seed=NODE_SEED)
    if node == "vouched but silent":  # bound on chain and vouching on the channel: it counts as serving
        bridge = deployment.contract("IOTAValidator")
        bridge.bindChannelKey(model_key(FEELESS), silent.identity.public_key, sender=operators[0])
        run(silent.ensure_subscribed(channel_id))
        run(silent.post_claim(channel_id, ChannelClaim(NODE_KEY, model_key(FEELESS), operators[0].address,
                                                       chain.chain_id, bridge.address)))
    height = chain.blocks.height
    try:
        with serve_gateway([FEELESS], marketplace, requester, store, keys_file, settle_timeout=3) as gateway:
            started = time.monotonic()
            refused = post(gateway, "/embeddings", {"model": FEELESS, "input": "Hello world"})
            elapsed = time.monotonic() - started
    finally:
        owner_channel.close()
        silent.close()
    message = refused.json()["error"]["message"]
    assert channel_id in message, message
    if node == "none serving":
        assert refused.status_code == 503, refused.text
        assert_openai_error(refused.json(), "no_capacity", "server_error")
        assert f"no node serves model {FEELESS!r}" in message and int(refused.headers["Retry-After"]) > 0
        assert elapsed < 2, elapsed
    else:
        assert refused.status_code == 504, refused.text
        assert_openai_error(refused.json(), "settlement_timeout", "server_error")
        assert "nothing was charged" in message
        assert 3 <= elapsed < 10, elapsed
    assert chain.blocks.height == height


def test_embeddings__feeless_model_served_by_one_agent__asked_over_its_channel_nothing_paid_answer_bound_on_chain(
        store, minilm_cid, deployment, chain, marketplace, model_owner, requester, keys_file, tmp_path, monkeypatch):
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))  # the parties' shared ledger
    from joynet.feeless.claims import STREAM_LINK, ChannelClaim

    expected = local_quantized(TEXTS)
    owner_channel, channel_id = register_feeless(store, minilm_cid, marketplace, model_owner)
    bridge = deployment.contract("IOTAValidator")
    run(owner_channel.post_claim(channel_id, ChannelClaim(STREAM_LINK, model_key(FEELESS), model_owner.address,
                                                          chain.chain_id, bridge.address)))
    env = agent_environment(deployment, chain, store.directory, tmp_path / "deployments")
    agent = EdgeAgent.in_workdir(6, tmp_path, env, [FEELESS])
    balance = marketplace.balances(requester)
    try:
        agent.start()
        with serve_gateway([FEELESS], marketplace, requester, store, keys_file, settle_timeout=60) as gateway:
            agent.wait_ready()
            entry = sdk(gateway).models.retrieve(FEELESS).model_extra["joynet"]
            start_block = chain.blocks.height
            answer = sdk(gateway).embeddings.create(model=FEELESS, input=TEXTS, encoding_format="float")
    finally:
        agent.stop()
        owner_channel.close()

    assert (entry["mode"], entry["channel_id"], entry["price_wei"]) == ("feeless", channel_id, "0")
    assert [item.embedding for item in answer.data] == (expected.astype(np.float64) / 127).tolist()
    receipt = answer.model_extra["joynet"]
    node = accounts.test_accounts[agent.index].address
    assert (receipt["mode"], receipt["status"], receipt["channel_id"]) == ("feeless", "Answered", channel_id)
    assert receipt["nodes"] == [node]
    # The key that signed the answer is the one the chain binds to that node for this model.
    assert "0x" + bytes(bridge.channelKeyOf(model_key(FEELESS), node)).hex() == receipt["responder_key"]
    from joynet.inference.runtimes.sentence_embedding import embedding_commitment

    assert receipt["output_commitment"] == "0x" + embedding_commitment(expected).hex()
    assert events_of(marketplace, "InferenceRequested", start_block) == []
    assert marketplace.balances(requester) == balance


def test_chat_completions__by_the_openai_sdk_from_one_smollm2_agent__streamed_in_chunks_or_whole_settled_text_and_receipt(
        store, smollm2_cid, smollm2_cache, deployment, chain, marketplace, token, requester, keys_file, tmp_path):
    from joynet.inference.runtimes.language_model import LanguageModelRuntime

    start_block = chain.blocks.height
    deposit(marketplace, token, requester, 10 * JOY)
    env = agent_environment(deployment, chain, store.directory, tmp_path / "deployments")
    agent = EdgeAgent.in_workdir(7, tmp_path, env, [CHAT])
    agent.env["JOYNET_MODEL_CACHE"] = str(smollm2_cache)  # the session's SmolLM2 conversion
    try:
        agent.start()
        with serve_gateway([CHAT], marketplace, requester, store, keys_file) as gateway:
            agent.wait_ready(300)
            stream = sdk(gateway).chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "Hello world"}], max_tokens=CHAT_TOKENS, stream=True)
            chunks = list(stream)
            whole = sdk(gateway).chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=CHAT_TOKENS)
    finally:
        agent.stop()

    # Not streamed: one completion, the settled answer's text.
    answered = json.loads(run(store.cat(whole.model_extra["joynet"]["output_uri"].removeprefix("ipfs://"))))["output"]
    assert whole.choices[0].message.content == answered["text"] and answered["text"].strip()
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].finish_reason == answered["finish_reason"]
    assert whole.usage.completion_tokens == len(answered["tokens"])
    assert marketplace.requestStatus(whole.model_extra["joynet"]["request_id"]) == RequestStatus.Settled

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert len(chunks) >= 3  # the role, at least one piece of text, the end
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])
    last = chunks[-1]
    receipt = last.model_extra["joynet"]
    rid = receipt["request_id"]
    assert marketplace.requestStatus(rid) == RequestStatus.Settled
    (settled,) = events_of(marketplace, "InferenceSettled", start_block, requestId=rid)
    assert receipt["transaction_hash"] == hex_of(settled.transaction_hash)
    assert receipt["output_commitment"] == "0x" + bytes(settled.outputCommitment).hex()
    assert receipt["nodes"] == [accounts.test_accounts[agent.index].address]
    document = json.loads(run(store.cat(receipt["output_uri"].removeprefix("ipfs://"))))
    assert document["requestId"] == rid
    output = document["output"]
    assert text == output["text"] and text.strip()
    assert last.choices[0].finish_reason == output["finish_reason"]
    assert last.usage.completion_tokens == len(output["tokens"]) <= CHAT_TOKENS
    assert LanguageModelRuntime.commitment_of(output) == bytes(settled.outputCommitment)
