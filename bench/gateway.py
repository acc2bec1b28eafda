"""The gateway's cost, measured against the Python client on the same requests in the same run.

``served_gateway`` serves ``joynet.gateway``'s application on a free local port of the running
event loop (as ``joynet gateway`` serves it) with one API key, and yields an HTTP session to it.
``paid_overhead`` alternates rounds of concurrent MiniLM embedding requests through the gateway
(``POST /v1/embeddings``) and through ``joynet.ModelMarketplace`` as a Python program uses it
(publish the input, request from the deposited balance, wait for the settlement, fetch and check
the output), on the same texts and the same nodes, and returns embeddings per second of each. The
client's rounds run on worker threads with event loops of their own: its calls block, and the
nodes serving the requests run on this loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from joynet.chain.marketplace import ModelMarketplace
from joynet.gateway import GatewaySettings, KeyLedger, create_app
from joynet.gateway.keys import ApiKey
from joynet.inference.inputs import publish_input
from joynet.inference.outputs import fetch_output

BENCH_KEY = "jn-bench"
POLL_SECONDS = 0.1  # the gateway's default wait between status reads; the client's is set to it


@asynccontextmanager
async def served_gateway(
    models: list[str], marketplace: ModelMarketplace, store
) -> AsyncIterator[aiohttp.ClientSession]:
    """The gateway paying as ``marketplace``'s account, and a session that calls it with the key."""
    settings = GatewaySettings(models=models, settle_timeout=300, poll_seconds=POLL_SECONDS)
    ledger = KeyLedger([ApiKey("bench", BENCH_KEY, limit=1 << 120)])
    runner = web.AppRunner(create_app(settings, marketplace, store, ledger))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as session:
            yield session
    finally:
        await runner.cleanup()


async def gateway_embeddings(session: aiohttp.ClientSession, model: str, texts: list[str]) -> list:
    """The embeddings of ``texts`` through the gateway (OpenAI's format, floats)."""
    async with session.post("/v1/embeddings", json={"model": model, "input": texts, "encoding_format": "float"}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"the gateway answered {r.status}: {body}")
        return body["data"]


async def client_embeddings(client: ModelMarketplace, store, model: str, texts: list[str]) -> dict:
    """The same through the Python client: publish, request from the balance, wait, fetch and check."""
    uri, commitment = await publish_input(store, {"texts": texts}, zk=False)
    request_id = await client.request_inference(model, commitment, uri, from_balance=True)
    result = await client.get_result(request_id, timeout=300, poll_seconds=POLL_SECONDS)
    return await fetch_output(store, result, framework="sentence-transformers")


async def paid_overhead(
    client: ModelMarketplace, store, model: str, texts: list[str], *, rounds: int = 3, concurrent: int = 4
) -> dict[str, float]:
    """``gateway.embeddings_per_s`` and ``client.embeddings_per_s``: ``rounds`` rounds of each,
    alternating which goes first, each round ``concurrent`` requests of ``texts`` at once; both
    pay from ``client``'s deposited balance."""
    elapsed = {"gateway": 0.0, "client": 0.0}

    def client_request() -> dict:
        return asyncio.run(client_embeddings(client, store, model, texts))

    async with served_gateway([model], client, store) as session:
        for round_ in range(rounds):
            for side in ("gateway", "client") if round_ % 2 == 0 else ("client", "gateway"):
                started = time.perf_counter()
                if side == "gateway":
                    await asyncio.gather(*(gateway_embeddings(session, model, texts) for _ in range(concurrent)))
                else:
                    await asyncio.gather(*(asyncio.to_thread(client_request) for _ in range(concurrent)))
                elapsed[side] += time.perf_counter() - started
    embeddings = rounds * concurrent * len(texts)
    return {
        "gateway.embeddings_per_s": embeddings / elapsed["gateway"],
        "client.embeddings_per_s": embeddings / elapsed["client"],
    }


async def feeless_answer_seconds(session: aiohttp.ClientSession, model: str, text: str) -> float:
    """Seconds from sending a feeless embedding request to the gateway to its checked answer."""
    started = time.perf_counter()
    await gateway_embeddings(session, model, [text])
    return time.perf_counter() - started
