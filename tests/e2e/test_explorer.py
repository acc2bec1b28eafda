"""The explorer (joynet.gateway.explorer) in a real browser: headless Chromium from Debian, driven
by Playwright, on the gateway serving the suite's anvil.

Without a node: every page is public (no key) and read-only, an unknown model, node, request or
proposal is a 404 page that says so, and the index forgets what a reverted chain undid. With one
`ape run edge_agent` serving all-MiniLM-L6-v2 at quorum 1, a proposal queued in the timelock and
another being voted on, and a feeless checkpoint signed by two bridgers: each page shows what the
chain records (a settled request's verification and latency, a refund's reason, a node's load, a
proposal's state and ETA, the checkpoint's inferences), and a request that settles while a page
is open appears in it without a reload. The test's screenshots are the docs' (``make
explorer-screenshots`` writes them to docs/images).
"""

import asyncio
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from ape import accounts
from eth_utils import keccak
from helpers import PROJECT_ROOT
from helpers.edge_agents import EdgeAgent, agent_environment, events_of, request_with_input, wait_for
from helpers.gateway import GatewayServer, free_port

from joynet import JOY, ModelMarketplace
from joynet.chain.dao import ModelGovernanceDAO, ProposalState
from joynet.chain.marketplace import RequestStatus, model_key
from joynet.chain.validator import Checkpoint, StreamLink, Usage, ordered_signatures, sign_checkpoint, sign_stream_link
from joynet.gateway import GatewaySettings, KeyLedger, create_app
from joynet.gateway.chain_index import ChainIndex
from joynet.gateway.explorer import format_joy, utc
from joynet.gateway.keys import ApiKey
from joynet.models.builtin import publish_builtin_models
from joynet.storage import EmbeddedStore


def run(coroutine):
    """The coroutine run to its end on a thread of its own: Playwright's sync API keeps an event
    loop of its own on the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


MINILM, PRICE = "ex-minilm", 2 * JOY
FEELESS, STREAM = "ex-feeless", keccak(text="iota-stream:ex-feeless")
KEY = "jn-explorer"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(token, dao, coordinator, operators, outsider, model_owner, requester, alice, bob, carol, timelock):
    """The session's fixtures this module uses, made before any of its chain state: Ape rebuilds
    the state of the narrower scopes when a wider-scoped fixture comes after them."""


@pytest.fixture(scope="module")
def explorer_store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("explorer-ipfs"))


@pytest.fixture(scope="module")
def explorer_minilm(marketplace, model_owner, explorer_store):
    """MiniLM published and registered as MINILM at quorum 1."""
    import json

    cid = run(publish_builtin_models(explorer_store, minilm_quorum=1))["minilm"]
    metadata = json.loads(run(explorer_store.cat(cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(MINILM, f"ipfs://{cid}", price=PRICE, quorum=1,
                             weights_commitment=metadata["weightsCommitment"]))
    return cid


def serve_explorer(deployment, marketplace, requester, store) -> GatewayServer:
    """The gateway (paying as the requester, one key) with the explorer reading the suite's DAO."""
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    dao = ModelGovernanceDAO(deployment.address("ModelGovernanceDAO"))
    ledger = KeyLedger([ApiKey("explorer", KEY, 100 * JOY)])
    return GatewayServer(create_app(GatewaySettings(models=[MINILM], settle_timeout=120), client, store, ledger, dao))


@pytest.fixture
def gateway(explorer_minilm, deployment, marketplace, requester, explorer_store):
    with serve_explorer(deployment, marketplace, requester, explorer_store) as server:
        yield server


@pytest.fixture
def browser(tmp_path_factory):
    """Debian's Chromium, headless, with a fresh profile; Playwright drives it (its own browsers
    are never downloaded). For the one test that needs it: a module's fixture made after the
    chain's function-scoped state would make Ape rebuild that state."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1100, "height": 400})
        context.set_default_timeout(30_000)
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def screenshots_dir(tmp_path) -> Path:
    """Where the screenshots go: the test's directory, or $JOYNET_EXPLORER_SCREENSHOTS (the docs')."""
    directory = Path(os.environ.get("JOYNET_EXPLORER_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def shoot(page, path: Path) -> None:
    """The page down to its end, at the viewport's width (small files for the docs)."""
    page.wait_for_function("document.getElementById('live').classList.contains('on')")  # the script follows the head
    page.screenshot(path=path, full_page=True)


def text_of(page, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


# ---- without nodes ----


def test_joynet_gateway__command__serves_the_explorer_from_the_deployment(
        explorer_minilm, deployment, chain, explorer_store, tmp_path):
    env = agent_environment(deployment, chain, explorer_store.directory, tmp_path / "deployments")
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - {{name: alice, key: {KEY}, limit_wei: '1'}}\n")
    port = free_port()
    command = [sys.executable, "-m", "joynet.cli", "gateway", "--model", MINILM, "--keys", str(keys),
               "--port", str(port), "--account", "test:5"]
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    root = f"http://127.0.0.1:{port}/explorer"
    try:
        wait_for(lambda: process.poll() is not None or answers(f"{root}/head"), 120, "the gateway to listen")
        assert process.poll() is None, process.stderr.read()
        models = requests.get(f"{root}/models", timeout=30)
        assert models.status_code == 200 and f">{MINILM}</a>" in models.text
        assert requests.get(f"{root}/proposals", timeout=30).status_code == 200  # the deployment's DAO
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
    assert f"explorer at http://127.0.0.1:{port}/explorer" in " ".join(errors.split())  # rich wraps the line


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_explorer__no_key__every_page_served_and_nothing_writable(gateway, chain):
    height = chain.blocks.height
    for path in ("", "/models", "/nodes", "/requests", "/proposals", "/checkpoints", f"/models/{MINILM}"):
        answer = requests.get(f"{gateway.root}/explorer{path}", timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "JoyNet explorer" in answer.text
    for path in ("/requests", "/models", "/head"):
        assert requests.post(f"{gateway.root}/explorer{path}", json={}, timeout=30).status_code == 405
    assert requests.get(f"{gateway.root}/explorer/head", timeout=30).json() == {"block": chain.blocks.height}
    assert requests.get(f"{gateway.root}/explorer/static/explorer.js", timeout=30).status_code == 200
    assert chain.blocks.height == height


HOSTILE_REASON = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def test_explorer__node_declines_with_markup_as_its_reason__shown_as_text_and_never_run(
        register_node, operators, marketplace, token, requester, gateway, page, chain):
    # The decline reason is any string a node chooses, stored on chain and shown to every visitor.
    register_node(operators[1], [model_key(MINILM)])
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, PRICE, sender=requester)
    request_id = run(client.request_inference(MINILM, keccak(text="hostile input"), "ipfs://bafyhostile"))
    node = ModelMarketplace(contract_address=marketplace.address, account=operators[1])
    run(node.decline_request(request_id, HOSTILE_REASON))
    assert marketplace.requestStatus(request_id) == RequestStatus.Refunded

    for path in (f"/explorer/requests/{request_id}", "/explorer/requests", f"/explorer/nodes/{operators[1].address}"):
        page.goto(f"{gateway.root}{path}")
        page.wait_for_load_state("load")
        assert page.title() != "pwned", path
        assert page.locator("main img").count() == 0, path  # no element made from the reason
    page.goto(f"{gateway.root}/explorer/requests/{request_id}")
    assert HOSTILE_REASON in page.locator("main").inner_text()  # shown as the text it is
    assert page.title() != "pwned"


@pytest.mark.parametrize("path, words", [
    ("/requests/999999", "there is no request '999999'"),
    ("/requests/seven", "there is no request 'seven'"),
    ("/models/no-such-model", "no model 'no-such-model' is registered"),
    ("/nodes/0x0000000000000000000000000000000000000001", "is not a node registered"),
    ("/nodes/not-an-address", "'not-an-address' is not a node"),
    ("/proposals/0x1234", "there is no proposal '0x1234'"),
])
def test_explorer__unknown_id__404_page_that_says_so(gateway, path, words):
    answer = requests.get(f"{gateway.root}/explorer{path}", timeout=30)
    assert answer.status_code == 404
    assert words in answer.text.replace("&#39;", "'")


# ---- a network: one edge agent, the DAO, a feeless stream ----


def feeless_checkpoint(register_model, register_node, deployment, model_owner, chain, node, usage=3):
    """A feeless model on STREAM, linked and served by ``node``, and its first checkpoint signed by
    two of the local committee (test accounts 7, 8 and 9) and relayed to the bridge."""
    bridge = deployment.contract("IOTAValidator")
    bridgers = [accounts.test_accounts[7], accounts.test_accounts[8]]
    model_id = register_model(FEELESS, price=0, stream=STREAM)
    link = StreamLink(STREAM, model_id, model_owner.address)
    bridge.linkStream(STREAM, model_id, ordered_signatures(
        [sign_stream_link(b.private_key, link, chain.chain_id, bridge.address) for b in bridgers]), sender=node)
    register_node(node, [model_id])
    bridge.bindChannelKey(model_id, keccak(text="channel key"), sender=node)
    checkpoint = Checkpoint(STREAM, 4, b"\0" * 32, keccak(text="head"), keccak(text="root"), [Usage(node.address, usage)])
    signatures = [sign_checkpoint(b.private_key, checkpoint, chain.chain_id, bridge.address) for b in bridgers]
    bridge.submitCheckpoint(checkpoint, ordered_signatures(signatures), sender=node)
    return model_id


def embed(gateway, text: str) -> dict:
    answer = requests.post(f"{gateway.url}/embeddings", json={"model": MINILM, "input": text},
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()["joynet"]


def test_explorer__network_with_an_agent_proposals_and_a_checkpoint__pages_show_the_chain_and_follow_it_live(
        gateway, page, governance, dao, token, marketplace, coordinator, requester, bob, alice, carol, deployment,
        chain, explorer_store, register_model, register_node, model_owner, tmp_path):
    shots = screenshots_dir(tmp_path)
    fetched: list[str] = []
    page.on("request", lambda sent: fetched.append(sent.url))
    start_block = chain.blocks.height
    # The DAO: one proposal queued in the timelock (its ETA shown), one being voted on.
    queued = governance.pass_and_queue(alice, [(token, token.transfer.encode_input(bob, 1_000 * JOY))],
                                       "Grant 1,000 JOY to Bob\n\nFor the explorer.", [(alice, 1), (bob, 1)])
    active = governance.propose(carol, [(token, token.transfer.encode_input(carol, 5 * JOY))], "Pay Carol 5 JOY")
    dao.castVote(active, 0, sender=alice)
    node_feeless = accounts.test_accounts[8]
    feeless_checkpoint(register_model, register_node, deployment, model_owner, chain, node_feeless)
    # The gateway's deposit; then one agent serving MiniLM.
    token.approve(marketplace, 20 * JOY, sender=requester)
    marketplace.deposit(requester, 20 * JOY, sender=requester)
    env = agent_environment(deployment, chain, explorer_store.directory, tmp_path / "deployments")
    agent = EdgeAgent.in_workdir(6, tmp_path, env, [MINILM])
    node = accounts.test_accounts[6].address
    try:
        agent.start()
        agent.wait_ready()
        settled = embed(gateway, "The explorer reads the chain.")
        # A request whose input the model's schema refuses: declined by the node, refunded.
        other = ModelMarketplace(contract_address=marketplace.address, account=bob)
        refunded_id = run(request_with_input(other, explorer_store, MINILM, {"sentence": "no texts"}, zk=False))
        wait_for(lambda: other.status(refunded_id) is RequestStatus.Refunded, 60, "the bad request's refund")

        # ---- every page shows what the chain records ----
        rid = settled["request_id"]
        (settled_event,) = events_of(marketplace, "InferenceSettled", start_block, requestId=rid)
        page.goto(f"{gateway.root}/explorer")
        assert re.search(r"1 settled, 1 refunded, 0 open", text_of(page, "dl.facts"))
        shoot(page, shots / "explorer-overview.png")

        page.goto(f"{gateway.root}/explorer/requests/{rid}")
        assert text_of(page, "h1") == f"Request #{rid} Settled"
        assert text_of(page, "#verification") == "1 of 1 node(s) agreed on the output commitment"
        assert page.locator(f"dl.facts [title='{settled['output_commitment']}']").count() == 1
        assert settled["output_commitment"] == "0x" + bytes(settled_event.outputCommitment).hex()
        requested_at = chain.blocks[settled["block_number"]].timestamp
        (requested_event,) = events_of(marketplace, "InferenceRequested", start_block, requestId=rid)
        latency = requested_at - chain.blocks[requested_event.block_number].timestamp
        assert text_of(page, "#latency") == f"{latency} s"
        shoot(page, shots / "explorer-request.png")

        page.goto(f"{gateway.root}/explorer/requests/{refunded_id}")
        assert text_of(page, "h1") == f"Request #{refunded_id} Refunded"
        refund = text_of(page, "#refund")
        (refunded_event,) = events_of(marketplace, "InferenceRefunded", start_block, requestId=refunded_id)
        assert refund == " ".join(f"2 JOY back to the requester: {refunded_event.reason}".split())
        assert "inputSchema" in refund

        page.goto(f"{gateway.root}/explorer/nodes/{node}")
        info = coordinator.nodeInfo(node)
        assert text_of(page, "#load") == f"{info.activeTasks} / {info.capacity} tasks ({round(100 * info.activeTasks / info.capacity)} %)"
        assert info.capacity == 8
        page.goto(f"{gateway.root}/explorer/nodes")
        row = text_of(page, f"#node-{node}")
        assert f"{info.activeTasks} / 8" in row and MINILM in row
        assert text_of(page, f"#node-{node} td.earned") == format_joy(settled_event.nodesPaid)  # its part of the fee

        page.goto(f"{gateway.root}/explorer/models/{MINILM}")
        assert text_of(page, "#policy") == "quorum (1 node(s))"
        model_row_page = page.content()
        assert "2 request(s): 1 settled, 1 refunded" in " ".join(model_row_page.split())
        page.goto(f"{gateway.root}/explorer/models")
        assert f"{MINILM}" in text_of(page, f"#model-0x{model_key(MINILM).hex()}")

        page.goto(f"{gateway.root}/explorer/proposals")
        assert ProposalState(dao.state(queued)) is ProposalState.Queued
        assert "Queued" in text_of(page, f"#proposal-{queued:#x}")
        assert "Active" in text_of(page, f"#proposal-{active:#x}")
        shoot(page, shots / "explorer-proposals.png")
        page.goto(f"{gateway.root}/explorer/proposals/{queued:#x}")
        assert text_of(page, "#eta") == utc(dao.proposalEta(queued))
        page.goto(f"{gateway.root}/explorer/proposals/{active:#x}")
        assert text_of(page, "#state").startswith("Active voting closes in")
        assert "against 50,000,000 JOY" in page.inner_text("dl.facts")

        page.goto(f"{gateway.root}/explorer/checkpoints")
        cells = page.locator("table.checkpoints tbody tr td").all_inner_texts()
        assert cells[0].startswith("0x" + STREAM.hex()[:8]) and cells[2:5] == ["4", "3", "0 JOY"]
        feeless_key = "0x" + model_key(FEELESS).hex()
        assert page.locator("table.checkpoints tbody tr td a").get_attribute("href") == f"/explorer/models/{feeless_key}"
        shoot(page, shots / "explorer-checkpoints.png")

        # ---- live: a request settling after the page loaded appears without a reload ----
        page.goto(f"{gateway.root}/explorer/requests")
        page.evaluate("window.loadedOnce = true")
        assert page.locator("tr[data-status=Settled]").count() == 1
        answers: list = []
        worker = threading.Thread(target=lambda: answers.append(embed(gateway, "Live from the chain.")))
        worker.start()
        page.wait_for_selector("tr[data-status=Settled] >> nth=1", timeout=60_000)
        worker.join(timeout=120)
        assert page.evaluate("window.loadedOnce") is True  # the same document: swapped, not reloaded
        assert page.locator(f"#request-{answers[0]['request_id']}").get_attribute("data-status") == "Settled"
        # Everything the pages needed came from the gateway: no script, style or font from elsewhere.
        assert fetched and all(url.startswith(gateway.root + "/explorer") for url in fetched), set(fetched)
        assert f"{gateway.root}/explorer/head" in fetched and f"{gateway.root}/explorer/static/explorer.js" in fetched
    finally:
        agent.stop()


# ---- the index ----


def test_index__chain_reverted__forgets_the_undone_request(
        served_model, request_inference, marketplace, deployment, chain):
    client = ModelMarketplace(contract_address=marketplace.address)
    index = ChainIndex(client, names=["ex-reverted"])
    model_id = served_model("ex-reverted", price=PRICE)
    index.refresh()
    before = set(index.requests)
    snapshot = chain.snapshot()
    request, _, _ = request_inference(model_id)
    index.refresh()
    assert index.requests[request.id].status == "Open"
    assert index.models["0x" + model_id.hex()].requests == 1
    chain.restore(snapshot)
    index.refresh()
    assert set(index.requests) == before
    assert index.models["0x" + model_id.hex()].requests == 0
