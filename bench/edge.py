"""Edge agent figures, measured through real EdgeNodes on the connected (local) chain.

``measure_edge_e2e(funder, owner, requester)`` publishes both built-in models and SmolLM2 to a
fresh store, registers them, funds three new operators and serves them with the agent's own
handlers (``agents.edge_node.bot``) in this process's event loop: one node serves the digits
model (ZK), all three serve MiniLM (quorum 3) and SmolLM2; all share one InferenceNode, as
processes on one machine share its cores. It returns

- ``e2e.latency_zk_p50_s``: request sent -> InferenceSettled, digits model with a Groth16 proof
  verified on chain, one request at a time (median); the client leaves the request to its
  drawn node, whose result assigns it;
- ``e2e.latency_minilm_p50_s``: the same for MiniLM with a quorum of 3 agreeing nodes (each
  commits to its sealed result, then reveals it once all three have committed);
- ``e2e.latency_llm_p50_s``: the same for SmolLM2-135M-Instruct (a chat prompt, 32 tokens at most,
  greedy) under the tolerant policy its package declares, with a quorum of 3: one node generates
  and submits, the two others re-check the answer with a prefill and commit, then reveal, their
  votes; published through the store like the others;
- ``edge.zk_inferences_per_min``: proven digits inferences settled per minute by one node, with
  requests sent back to back;
- ``gateway.embeddings_per_s`` and ``client.embeddings_per_s``: MiniLM (quorum 3) embeddings per
  second through the OpenAI-compatible gateway and through the Python client on the same
  requests, four at a time, paid from the requester's balance (bench.gateway).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from agents.edge_node import bot
from bench.gateway import paid_overhead
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import ModelMarketplace, RequestStatus
from joynet.edge import InferenceNode
from joynet.edge.edge_node import EdgeNode
from joynet.inference.inputs import digits_input, publish_input
from joynet.inference.runtimes.language_model import write_smollm2_package
from joynet.models.builtin import publish_builtin_models
from joynet.models.package import publish_model
from joynet.storage import EmbeddedStore

LLM_MAX_TOKENS = 32
GATEWAY_TEXTS = 8  # texts per embeddings request, gateway against client
GATEWAY_DEPOSIT = 400 * JOY  # 24 requests at 9 JOY, with room
CHATS = [
    "Hello world",
    "What is the capital of France?",
    "Name three primary colors.",
    "Why is the sky blue?",
    "What do bees make?",
]
SENTENCES = [
    "Edge nodes serve models.",
    "A proof binds the output.",
    "Quorum nodes agree.",
    "Requesters pay in JOY.",
    "Results settle on chain.",
    "Fees are split three ways.",
    "Stake is slashed on timeouts.",
    "The DAO governs parameters.",
    "Hello world",
]


async def _settle_time(client: ModelMarketplace, store, model: str, document: dict, zk: bool) -> float:
    uri, commitment = await publish_input(store, document, zk=zk)
    started = time.perf_counter()
    request_id = await client.request_inference(model, commitment, uri)
    while client.status(request_id) is RequestStatus.Open:
        await asyncio.sleep(0.02)
    if client.status(request_id) is not RequestStatus.Settled:
        raise RuntimeError(
            f"bench request {request_id} ({model}) was refunded: {(await client.get_result(request_id)).refund_reason}"
        )
    return time.perf_counter() - started


async def _measure(marketplace_address, owner, requester, operators, workdir: Path, n_latency, n_throughput, say):
    from joynet.zk.digits import load_split

    store = EmbeddedStore(workdir / "ipfs")
    cids = await publish_builtin_models(store)
    cids["llm"] = await publish_model(store, write_smollm2_package(workdir / "smollm2", maxNewTokens=LLM_MAX_TOKENS))
    owner_client = ModelMarketplace(contract_address=marketplace_address, account=owner)
    suffix = str(int(time.time()))
    digits, minilm, llm = f"bench-edge-digits-{suffix}", f"bench-edge-minilm-{suffix}", f"bench-edge-llm-{suffix}"
    for name, cid, price, quorum in (
        (digits, cids["digits"], 5 * JOY, None),
        (minilm, cids["minilm"], 9 * JOY, None),
        (llm, cids["llm"], 1 * JOY, 3),  # the three nodes here: one generator, two validators
    ):
        description = json.loads(await store.cat(cid))
        await owner_client.register_model(
            name,
            f"ipfs://{cid}",
            price=price,
            weights_commitment=description["weightsCommitment"],
            quorum=quorum or description["verification"]["quorum"],
            circuit_id=description["verification"]["circuitId"],
            tolerant=description["verification"].get("tolerant", False),
        )
    client = ModelMarketplace(contract_address=marketplace_address, account=requester)
    client.token.approve(client.contract, 100_000 * JOY, sender=requester)
    shared = InferenceNode(store=store, marketplace=client, cache_dir=workdir / "models")
    nodes = [
        EdgeNode(
            operator,
            [digits, minilm, llm] if index == 0 else [minilm, llm],
            journal=workdir / f"journal{index}.sqlite",
            capacity=16,
            store=store,
            inference=shared,
            withdraw_threshold=1_000 * JOY,
            marketplace=ModelMarketplace(contract_address=marketplace_address, account=operator),
        )
        for index, operator in enumerate(operators)
    ]
    stop = asyncio.Event()
    serving = [
        asyncio.create_task(bot.serve(node, node.contract, node.journal, stop=stop, nudge_local_pool=True))
        for node in nodes
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(node.ready.wait() for node in nodes)), 600)
        say("edge bench: three agents ready")
        images = load_split()[1]
        await _settle_time(client, store, digits, digits_input(images[0]), True)  # warm-up round trips
        await _settle_time(client, store, minilm, {"text": "warm up"}, False)
        zk = [
            await _settle_time(client, store, digits, digits_input(image), True) for image in images[1 : 1 + n_latency]
        ]
        text = [
            await _settle_time(client, store, minilm, {"text": SENTENCES[i % len(SENTENCES)]}, False)
            for i in range(n_latency)
        ]
        chat = [
            await _settle_time(client, store, llm, {"text": prompt, "max_tokens": LLM_MAX_TOKENS}, False)
            for prompt in CHATS
        ]
        say(
            f"edge bench: latency ZK {statistics.median(zk):.2f} s, MiniLM {statistics.median(text):.2f} s, "
            f"SmolLM2 {statistics.median(chat):.2f} s (p50)"
        )
        await client.deposit(GATEWAY_DEPOSIT)
        overhead = await paid_overhead(client, store, minilm, SENTENCES[:GATEWAY_TEXTS])
        say(
            f"edge bench: MiniLM embeddings per second through the gateway {overhead['gateway.embeddings_per_s']:.1f}, "
            f"through the Python client {overhead['client.embeddings_per_s']:.1f}"
        )
        batch = []
        for image in images[20 : 20 + n_throughput]:
            batch.append(await publish_input(store, digits_input(image), zk=True))
        started = time.perf_counter()
        request_ids = [await client.request_inference(digits, commitment, uri) for uri, commitment in batch]
        while any(client.status(rid) is RequestStatus.Open for rid in request_ids):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        settled = sum(client.status(rid) is RequestStatus.Settled for rid in request_ids)
        say(f"edge bench: {settled} proven inferences settled in {elapsed:.1f} s")
    finally:
        stop.set()
        await asyncio.gather(*serving, return_exceptions=True)
    return {
        "e2e.latency_zk_p50_s": statistics.median(zk),
        "e2e.latency_minilm_p50_s": statistics.median(text),
        "e2e.latency_llm_p50_s": statistics.median(chat),
        "edge.zk_inferences_per_min": settled / elapsed * 60,
        **overhead,
    }


def measure_edge_e2e(
    funder,
    owner,
    requester,
    marketplace_address: str | None = None,
    *,
    n_latency: int = 7,
    n_throughput: int = 10,
    say=print,
) -> dict:
    """``funder``: an account with ETH and JOY that funds three fresh operators; ``owner``
    registers the models; ``requester`` (holding JOY) pays for the requests."""
    from ape import accounts

    from joynet.chain.deployment_file import load_deployment

    marketplace_address = marketplace_address or load_deployment().address("ModelMarketplace")
    token = ModelMarketplace(contract_address=marketplace_address).token
    operators = []
    for _ in range(3):
        operator = accounts.test_accounts.generate_test_account()
        funder.transfer(operator, "10 ether")
        token.transfer(operator, 5_000 * JOY, sender=funder)
        operators.append(operator)
    with tempfile.TemporaryDirectory(prefix="joynet-edge-bench-") as workdir:
        return asyncio.run(
            _measure(marketplace_address, owner, requester, operators, Path(workdir), n_latency, n_throughput, say)
        )
