"""The explorer: public, read-only web pages of what the chain records, served by the gateway.

    GET /explorer                          the overview: the head, counts, the latest requests and checkpoints
    GET /explorer/models[/{model}]         models: price, policy, requests, what owners and nodes earned
    GET /explorer/nodes[/{address}]        nodes: stake, load, missed deadlines, earnings
    GET /explorer/requests[/{id}]          requests: status, latency, verification, refunds and their reasons
    GET /explorer/proposals[/{id}]         the DAO's proposals: state, votes, timelock ETA
    GET /explorer/checkpoints              the feeless streams' checkpoints the bridgers settled
    GET /explorer/head                     {"block": n}: the head the pages were read at (for live updates)

Pages are rendered on the server (Jinja2 templates in ``templates/explorer``, styles and a small
script in ``static/explorer``, all shipped with the package). The script asks ``/explorer/head``
every few seconds and, when a block was mined, fetches the page again and swaps its content:
the pages follow the chain without a reload. Without JavaScript they refresh themselves.
No API key is needed: everything shown is public on chain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from eth_utils import is_address, to_checksum_address

from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key
from joynet.gateway.chain_index import ChainIndex, RequestRecord, hex32

T = TypeVar("T")

HERE = Path(__file__).parent
INDEX = web.AppKey("explorer_index", ChainIndex)
TEMPLATES = web.AppKey("explorer_templates", jinja2.Environment)
# Seconds between the script's looks at the head (a data attribute of the page).
POLL_SECONDS = 2
LATEST = 10  # requests and checkpoints on the overview


def add_explorer(app: web.Application, index: ChainIndex) -> None:
    """Mounts the explorer's pages, its head endpoint and its static files on ``app``."""
    app[INDEX] = index
    app[TEMPLATES] = templates()
    routes = [
        ("/explorer", overview),
        ("/explorer/models", models_page),
        ("/explorer/models/{model}", model_page),
        ("/explorer/nodes", nodes_page),
        ("/explorer/nodes/{address}", node_page),
        ("/explorer/requests", requests_page),
        ("/explorer/requests/{request_id}", request_page),
        ("/explorer/proposals", proposals_page),
        ("/explorer/proposals/{proposal_id}", proposal_page),
        ("/explorer/checkpoints", checkpoints_page),
        ("/explorer/head", head),
    ]
    for path, handler in routes:
        app.router.add_get(path, handler)
    app.router.add_static("/explorer/static", HERE / "static" / "explorer", name="explorer_static")


def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates" / "explorer"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(joy=format_joy, short=short, utc=utc, seconds=format_seconds)
    return environment


# ---- formatting ----


def format_joy(wei: int | None) -> str:
    """``wei`` as JOY with up to four decimals (``2 JOY``, ``0.3333 JOY``)."""
    if wei is None:
        return "-"
    text = f"{wei / JOY:,.4f}".rstrip("0").rstrip(".")
    return f"{text} JOY"


def short(value: str | None, keep: int = 10) -> str:
    """A hash or address cut to its first ``keep`` characters and its last four."""
    if not value:
        return "-"
    return value if len(value) <= keep + 6 else f"{value[:keep]}…{value[-4:]}"


def utc(timestamp: int | None) -> str:
    return "-" if not timestamp else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def format_seconds(seconds: int | None) -> str:
    return "-" if seconds is None else f"{seconds} s"


# ---- rendering ----


async def _read(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on a worker thread: Ape blocks, the gateway's loop goes on serving."""
    return await asyncio.to_thread(call, *args)


def _index(request: web.Request) -> ChainIndex:
    return request.app[INDEX]


async def _page(request: web.Request, template: str, build: Callable[[ChainIndex], dict], status: int = 200):
    """Refreshes the index and builds the page's values from it (on a worker thread), then
    renders ``template`` with them."""
    block, values = await _read(_index(request).read, build)
    if values.get("missing"):
        template, status = "not_found.html", 404
    return _render(request, template, {**values, "block": block}, status)


def _render(request: web.Request, template: str, values: dict, status: int = 200) -> web.Response:
    section = request.path.removeprefix("/explorer").strip("/").split("/")[0] or "overview"
    page = request.app[TEMPLATES].get_template(template)
    html = page.render(section=section, poll_seconds=POLL_SECONDS, **values)
    return web.Response(text=html, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


def _missing(what: str) -> dict:
    return {"missing": what}


# ---- pages ----


async def head(request: web.Request) -> web.Response:
    block = await _read(_index(request).refresh)
    return web.json_response({"block": block}, headers={"Cache-Control": "no-store"})


def request_row(index: ChainIndex, record: RequestRecord) -> dict:
    """A request as its lines in the tables show it: model, status, nodes, latency, verification."""
    model = index.models.get(record.model_key)
    return {
        "record": record,
        "model": index.model_name(record.model_key),
        "verification": verification(index, record),
        "policy": model.policy if model else "?",
    }


def verification(index: ChainIndex, record: RequestRecord) -> str:
    """How the chain decided the request, in a few words."""
    if record.status == "Open":
        if record.nodes:
            return f"waiting for {len(record.nodes)} node(s) ({len(record.results)} answered)"
        return "waiting for its node(s) to be drawn"
    if record.status == "Refunded":
        return f"refunded: {record.refund_reason}"
    model = index.models.get(record.model_key)
    agreeing = len(record.agreeing)
    if model is not None and model.circuit_id:
        return f"zero-knowledge proof accepted (circuit {short(model.circuit_id)})"
    if model is not None and model.tolerant:
        return f"generated by one node, accepted by {agreeing - 1} of {len(record.nodes) - 1} validator(s)"
    return f"{agreeing} of {len(record.nodes)} node(s) agreed on the output commitment"


def _overview(index: ChainIndex) -> dict:
    requests = list(index.requests.values())
    counts = {status: sum(r.status == status for r in requests) for status in ("Open", "Settled", "Refunded")}
    settled = [r.latency for r in requests if r.status == "Settled" and r.latency is not None]
    return {
        "chain_id": _chain_id(),
        "marketplace": index.marketplace.address,
        "counts": counts,
        "models": len(index.models),
        "nodes": len(index.nodes),
        "proposals": len(index.proposals),
        "checkpoints": len(index.checkpoints),
        "mean_latency": round(sum(settled) / len(settled)) if settled else None,
        "requests": [request_row(index, r) for r in sorted(requests, key=lambda r: -r.id)[:LATEST]],
        "latest_checkpoints": list(reversed(index.checkpoints[-LATEST:])),
        "index": index,
    }


def _chain_id() -> int:
    from ape import chain

    return chain.chain_id


async def overview(request: web.Request) -> web.Response:
    return await _page(request, "overview.html", _overview)


async def models_page(request: web.Request) -> web.Response:
    return await _page(request, "models.html", lambda index: {"models": list(index.models.values())})


async def model_page(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    if wanted.startswith("0x") and len(wanted) == 66:
        key = wanted.lower()
    else:
        key = hex32(model_key(wanted)) if wanted else ""

    def build(index: ChainIndex) -> dict:
        model = index.models.get(key)
        if model is None:
            return _missing(f"no model {wanted!r} is registered on this chain")
        requests = [request_row(index, r) for r in reversed(index.requests.values()) if r.model_key == key]
        # node_state names the models the gateway exposes, and gives the others' keys.
        serving = [node for node in index.nodes if (model.name or model.key) in index.node_state(node)["models"]]
        checkpoints = [c for c in index.checkpoints if c.model_key == key]
        return {"model": model, "requests": requests, "serving": serving, "checkpoints": checkpoints}

    return await _page(request, "model.html", build)


def _nodes(index: ChainIndex) -> dict:
    return {"nodes": [(record, index.node_state(address)) for address, record in index.nodes.items()]}


async def nodes_page(request: web.Request) -> web.Response:
    return await _page(request, "nodes.html", _nodes)


async def node_page(request: web.Request) -> web.Response:
    wanted = request.match_info["address"]

    def build(index: ChainIndex) -> dict:
        address = to_checksum_address(wanted) if is_address(wanted) else None
        record = index.nodes.get(address) if address else None
        if address is None or record is None:
            return _missing(f"{wanted!r} is not a node registered on this chain")
        requests = [request_row(index, r) for r in reversed(index.requests.values()) if address in r.nodes]
        return {"node": record, "state": index.node_state(address), "requests": requests}

    return await _page(request, "node.html", build)


async def requests_page(request: web.Request) -> web.Response:
    def build(index: ChainIndex) -> dict:
        return {"requests": [request_row(index, r) for r in sorted(index.requests.values(), key=lambda r: -r.id)]}

    return await _page(request, "requests.html", build)


async def request_page(request: web.Request) -> web.Response:
    wanted = request.match_info["request_id"]

    def build(index: ChainIndex) -> dict:
        record = index.requests.get(int(wanted)) if wanted.isdigit() else None
        if record is None:
            return _missing(f"there is no request {wanted!r} on this chain")
        return {**request_row(index, record), "model_record": index.models.get(record.model_key)}

    return await _page(request, "request.html", build)


def _proposal_id(text: str) -> int | None:
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


async def proposals_page(request: web.Request) -> web.Response:
    def build(index: ChainIndex) -> dict:
        if index.dao is None:
            return {"proposals": [], "no_dao": True}
        proposals = [(p, index.proposal_state(p.id)) for p in reversed(index.proposals.values())]
        return {"proposals": proposals, "no_dao": False}

    return await _page(request, "proposals.html", build)


async def proposal_page(request: web.Request) -> web.Response:
    wanted = request.match_info["proposal_id"]

    def build(index: ChainIndex) -> dict:
        proposal_id = _proposal_id(wanted)
        proposal = index.proposals.get(proposal_id) if proposal_id is not None else None
        if proposal is None:
            return _missing(f"there is no proposal {wanted!r} on this chain")
        return {"proposal": proposal, "state": index.proposal_state(proposal.id)}

    return await _page(request, "proposal.html", build)


async def checkpoints_page(request: web.Request) -> web.Response:
    def build(index: ChainIndex) -> dict:
        return {"checkpoints": list(reversed(index.checkpoints)), "index": index}

    return await _page(request, "checkpoints.html", build)
