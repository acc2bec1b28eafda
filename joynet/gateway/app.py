"""The gateway's HTTP application (aiohttp.web): OpenAI's routes over the marketplace.

    GET  /healthz                  the gateway is up and the chain answers
    GET  /v1/models                the exposed models, from the registry on chain and their metadata
    POST /v1/embeddings            a sentence-transformers model (OpenAI's embeddings format)
    POST /v1/chat/completions      a causal-lm model; ``stream: true`` answers Server-Sent Events
    POST /v1/inference/{model}     any exposed model: its input document in, its output out
    POST /v1/inference/{model}/batch   several input documents, each its own request: 200 when all
                                   were answered, 207 with each item's own error otherwise
    GET  /v1/requests/{id}         any request's status and receipt
    GET  /explorer/...             the explorer: public, read-only pages of the chain (``explorer``)

Every ``/v1`` route needs ``Authorization: Bearer <key>`` (a key of the keys file). Every answer
carries the request's verification receipt under ``joynet``; errors are OpenAI's
``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from joynet.chain.dao import ModelGovernanceDAO
from joynet.chain.marketplace import ModelMarketplace
from joynet.gateway import openai_format
from joynet.gateway.chain_index import ChainIndex
from joynet.gateway.errors import BadRequestError, GatewayError, RequestNotFoundError
from joynet.gateway.explorer import add_explorer
from joynet.gateway.keys import ApiKey, KeyLedger
from joynet.gateway.service import ExposedModel, GatewaySettings, InferenceService, Settlement
from joynet.storage import ModelStore

logger = logging.getLogger("joynet.gateway")

EMBEDDING_FRAMEWORKS = ("sentence-transformers",)
CHAT_FRAMEWORKS = ("causal-lm",)

SERVICE = web.AppKey("service", InferenceService)
LEDGER = web.AppKey("ledger", KeyLedger)
STARTED = web.AppKey("started", int)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: GatewaySettings,
    marketplace: ModelMarketplace,
    store: ModelStore,
    ledger: KeyLedger,
    dao: ModelGovernanceDAO | None = None,
) -> web.Application:
    """The gateway's application. ``marketplace``: the client of the gateway's own account (it
    pays every request from its deposited balance); ``store``: the model store the nodes read
    (inputs are published there, outputs fetched from there); ``ledger``: the API keys;
    ``dao``: the governor whose proposals the explorer shows (none without it)."""
    app = web.Application(middlewares=[_errors], client_max_size=2 * settings.max_input_bytes + 4096)
    app[SERVICE] = InferenceService(marketplace, store, settings)
    app[LEDGER] = ledger
    app[STARTED] = int(time.time())
    app.cleanup_ctx.append(_service_lifetime)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/inference/{model}", inference)
    app.router.add_post("/v1/inference/{model}/batch", inference_batch)
    app.router.add_get("/v1/requests/{request_id}", request_status)
    add_explorer(app, ChainIndex(marketplace, dao, names=settings.models))
    return app


async def _service_lifetime(app: web.Application) -> AsyncIterator[None]:
    """The service's channel transport is closed with the application."""
    yield
    app[SERVICE].close()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as OpenAI's error body: the gateway's own with their status and headers,
    aiohttp's (no such route, wrong method) with theirs, anything else as a 500 that is logged."""
    try:
        return await handler(request)
    except GatewayError as error:
        return web.json_response(error.body(), status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = "not_found" if error.status == 404 else error.reason.lower().replace(" ", "_")
        return web.json_response(
            _error_body(f"{request.method} {request.path}: {error.reason}", "invalid_request_error", code),
            status=error.status,
            headers={k: v for k, v in error.headers.items() if k == "Allow"},
        )
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        body = _error_body("the gateway failed on this request; its log says why", "server_error", None)
        return web.json_response(body, status=500)


def _error_body(message: str, kind: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


def _service(request: web.Request) -> InferenceService:
    return request.app[SERVICE]


def _authenticate(request: web.Request) -> ApiKey:
    return request.app[LEDGER].authenticate(request.headers.get("Authorization"))


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    return body


async def _model_of(service: InferenceService, name: object, frameworks: tuple[str, ...], what: str) -> ExposedModel:
    if not isinstance(name, str) or not name:
        raise BadRequestError("'model' must name a model: GET /v1/models lists them")
    model = await service.model(name)
    if model.framework not in frameworks:
        raise BadRequestError(f"model {name!r} is a {model.framework} model, not {what}")
    return model


# ---- routes ----


async def healthz(request: web.Request) -> web.Response:
    service = _service(request)
    from ape import chain

    block = await service.chain(lambda: chain.blocks.height)
    return web.json_response({"status": "ok", "chain_id": await service.chain_id(), "block": block})


async def list_models(request: web.Request) -> web.Response:
    _authenticate(request)
    models = await _service(request).models()
    created = request.app[STARTED]
    entries = [openai_format.model_entry(model.name, created, model.describe()) for model in models]
    return web.json_response(openai_format.model_list(entries))


async def get_model(request: web.Request) -> web.Response:
    _authenticate(request)
    model = await _service(request).model(request.match_info["model"])
    return web.json_response(openai_format.model_entry(model.name, request.app[STARTED], model.describe()))


async def embeddings(request: web.Request) -> web.Response:
    key = _authenticate(request)
    body = await _body(request)
    service = _service(request)
    texts = openai_format.embedding_texts(body)
    model = await _model_of(service, body.get("model"), EMBEDDING_FRAMEWORKS, "an embedding model")
    settled = await service.infer(model, {"texts": texts}, key, request.app[LEDGER])
    answer = openai_format.embeddings_response(
        model.name, settled.output, body.get("encoding_format") or "float", settled.receipt
    )
    return web.json_response(answer)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    key = _authenticate(request)
    body = await _body(request)
    service = _service(request)
    document = openai_format.chat_input(body)
    model = await _model_of(service, body.get("model"), CHAT_FRAMEWORKS, "a chat model")
    # The answer is known once the request settles on chain: a stream starts then.
    settled = await service.infer(model, document, key, request.app[LEDGER])
    if not body.get("stream"):
        return web.json_response(openai_format.chat_completion(model.name, settled.output, settled.receipt))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for chunk in openai_format.chat_chunks(model.name, settled.output, settled.receipt):
        await response.write(openai_format.sse(chunk))
    await response.write(openai_format.sse(openai_format.DONE))
    await response.write_eof()
    return response


async def inference(request: web.Request) -> web.Response:
    key = _authenticate(request)
    service = _service(request)
    model = await service.model(request.match_info["model"])
    document = await _body(request)
    settled = await service.infer(model, document, key, request.app[LEDGER])
    return web.json_response(_inference_answer(settled))


def _inference_answer(settled: Settlement) -> dict:
    return {
        "requestId": settled.request_id,
        "model": settled.model.name,
        "output": settled.output,
        "outputCommitment": settled.receipt["output_commitment"],
        "joynet": settled.receipt,
    }


# The most input documents one batch may carry: each is a request of its own, made concurrently.
MAX_BATCH = 32


async def inference_batch(request: web.Request) -> web.Response:
    """Each input of ``{"inputs": [...]}`` as its own request, made concurrently. One item's
    failure (bad input, no capacity, spending limit, refund...) is that item's error, in OpenAI's
    format with its HTTP ``status`` (and its receipt once something was sent); the others go on.
    200 when every item was answered, else 207 (Multi-Status)."""
    key = _authenticate(request)
    service = _service(request)
    model = await service.model(request.match_info["model"])
    inputs = (await _body(request)).get("inputs")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_BATCH:
        raise BadRequestError(f"'inputs' must be a list of 1 to {MAX_BATCH} input documents")
    ledger = request.app[LEDGER]

    async def item(index: int, document: object) -> dict:
        try:
            if not isinstance(document, dict):
                raise BadRequestError(f"input {index} must be a JSON object")
            return {
                "index": index,
                "status": 200,
                **_inference_answer(await service.infer(model, document, key, ledger)),
            }
        except GatewayError as error:
            return {"index": index, "status": error.status, **error.body()}

    items = await asyncio.gather(*(item(index, document) for index, document in enumerate(inputs)))
    failed = sum(entry["status"] != 200 for entry in items)
    return web.json_response(
        {"object": "list", "model": model.name, "data": items, "failed": failed}, status=207 if failed else 200
    )


async def request_status(request: web.Request) -> web.Response:
    _authenticate(request)
    try:
        request_id = int(request.match_info["request_id"])
    except ValueError:
        raise RequestNotFoundError(f"{request.match_info['request_id']!r} is not a request id") from None
    if request_id < 0:
        raise RequestNotFoundError(f"there is no request {request_id}")
    return web.json_response(await _service(request).request_status(request_id))
