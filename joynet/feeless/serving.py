"""The serving node's side of a feeless inference: answer each request on a model's channel.

Each answer carries the model's output with its output commitment and, for a ZK model, the proof
bound to the request (:func:`joynet.feeless.handler.circuit_request_id`) and to the node's EVM
address. A private model is served only to a requester whose subscription carried a valid,
unexpired, unrevoked model-access credential (``joynet.identity.credentials.ModelAccessPolicy``);
others get a refusal and no output. A refusal says why in ``error`` and of which kind in
``error_kind`` (``joynet.feeless.errors.ErrorKind``): access denied, invalid input or a failed
inference. Running the model is ``execute``'s job (the edge node's
``InferenceNode.execute_inference``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from joynet.feeless.errors import ErrorKind
from joynet.feeless.handler import circuit_request_id, proof_document
from joynet.identity.credentials import ACCESS_DENIED, CredentialError
from joynet.inference.errors import InferenceError, InvalidInputError
from joynet.models.package import DEFAULT_FAILOVER_SECONDS

if TYPE_CHECKING:
    from joynet.feeless.assignment import AssignmentBook
    from joynet.feeless.handler import IOTAInferenceHandler, IOTAInferenceRequest
    from joynet.identity.credentials import ModelAccessPolicy

logger = logging.getLogger("joynet.feeless.serving")

# execute(model_id, input, request_id=..., node=...) -> a result with .output,
# .output_commitment_hex and .proof (a joynet.zk.ZKProof or None)
Execute = Callable[..., Awaitable[Any]]
# How often a loop told to ``stop`` looks at it while no request comes.
STOP_POLL_SECONDS = 0.2


async def serve_channel(
    handler: IOTAInferenceHandler,
    execute: Execute,
    channel_id: str,
    model_id: str,
    *,
    node_address: str,
    access: ModelAccessPolicy | None,
    max_requests: int | None,
    timeout: float | None,
    book: AssignmentBook | None = None,
    failover_seconds: float = DEFAULT_FAILOVER_SECONDS,
    stop: asyncio.Event | None = None,
    on_answer: Callable[[IOTAInferenceRequest, str | None], None] | None = None,
    requester_cap: int | None = None,
) -> int:
    """Answers requests until ``max_requests`` were answered, ``timeout`` passes with none to
    answer, or ``stop`` is set (the request in hand is answered first); returns how many were answered.

    Without ``book`` this node is the channel's only server (its author) and answers every request.
    With ``book`` (an ``AssignmentBook`` of a channel the network serves) it answers the requests
    assigned to it at once, and a request for which it is the k-th fallback once ``k x
    failover_seconds`` passed without an answer from a bound node, declining a request beyond its
    requester's ``requester_cap`` (the model's ``serving.maxRequestsPerRequester``).
    ``on_answer(request, error_kind)`` is told of each answer (``error_kind`` None: served)."""
    if book is not None:
        handler.watch(channel_id, book.observe)
    node_address = to_checksum_address(node_address)
    answered = 0
    fallbacks: dict[str, tuple[float, IOTAInferenceRequest]] = {}  # request id -> (when it is ours, request)

    async def answer(request: IOTAInferenceRequest) -> None:
        nonlocal answered
        answered += 1
        assignment = book.requests.get(request.request_id) if book is not None else None
        if requester_cap is not None and assignment is not None and assignment.requester_count > requester_cap:
            error_kind: str | None = ErrorKind.ACCESS_DENIED
            reason = f"{ACCESS_DENIED}: this requester used up its {requester_cap} request(s) of this model"
            await handler.send_response(
                channel_id, request.request_id, None, None, node=node_address, error=reason, error_kind=error_kind
            )
        else:
            error_kind = await answer_request(handler, execute, channel_id, model_id, request, node_address, access)
        if on_answer is not None:
            on_answer(request, error_kind)

    async def next_or_none(idle_since: float) -> IOTAInferenceRequest | None:
        """The next request, or None once it is time to look at the fallbacks, ``stop`` or the timeout."""
        waits = [STOP_POLL_SECONDS] if stop is not None else []
        waits += [due - time.monotonic() for due, _ in fallbacks.values()]
        if timeout is not None:
            waits.append(idle_since + timeout - time.monotonic())
        try:
            return await handler.next_request(channel_id, timeout=max(0.0, min(waits)) if waits else None)
        except TimeoutError:
            return None

    idle_since = time.monotonic()
    while (max_requests is None or answered < max_requests) and not (stop is not None and stop.is_set()):
        now = time.monotonic()
        for request_id, (due, held) in sorted(fallbacks.items(), key=lambda item: item[1][0]):
            if due > now:
                break
            del fallbacks[request_id]
            handler.poll(channel_id)  # the book must know of any answer posted until now
            if book is not None and not book.requests[request_id].answered:
                logger.info("request %s: failing over to this node", request_id)
                await answer(held)
        request = await next_or_none(idle_since)
        if request is None:
            if timeout is not None and not fallbacks and time.monotonic() >= idle_since + timeout:
                break  # nothing came for ``timeout`` and nothing is left to fail over
            continue
        idle_since = time.monotonic()
        if book is None:
            await answer(request)
            continue
        assignment = book.requests.get(request.request_id)
        rank = assignment.rank_of(node_address) if assignment else None
        if assignment is None or rank is None or assignment.answered:
            continue  # not one this node serves (it was not serving yet), or answered already
        if rank == 0:
            await answer(request)
        else:
            fallbacks[request.request_id] = (time.monotonic() + rank * failover_seconds, request)
    return answered


async def answer_request(
    handler: IOTAInferenceHandler,
    execute: Execute,
    channel_id: str,
    model_id: str,
    request: IOTAInferenceRequest,
    node_address: str,
    access: ModelAccessPolicy | None,
) -> str | None:
    """Runs and answers one request, or declines it; returns the refusal's kind (None: served)."""
    reply: dict[str, Any] = {}
    try:
        if request.model_id != model_id:
            raise InvalidInputError(f"this channel serves model {model_id!r}, not {request.model_id!r}")
        if access is not None:
            access.check(handler.credential_of(channel_id, request.requester), request.requester)
        result = await execute(
            model_id, request.input, request_id=circuit_request_id(request.request_id), node=node_address
        )
        reply["output"] = {**result.output, "outputCommitment": result.output_commitment_hex}
        reply["proof"] = proof_document(result.proof)
    except CredentialError as error:
        logger.info("declined request %s: %s", request.request_id, error)
        reply["error"], reply["error_kind"] = f"{ACCESS_DENIED}: {error}", ErrorKind.ACCESS_DENIED
    except InvalidInputError as error:
        logger.info("declined request %s: %s", request.request_id, error)
        reply["error"], reply["error_kind"] = str(error), ErrorKind.INVALID_INPUT
    except InferenceError as error:
        logger.info("declined request %s: %s", request.request_id, error)
        reply["error"], reply["error_kind"] = str(error), ErrorKind.INFERENCE_FAILED
    except Exception as error:  # noqa: BLE001 - one request's failure must not stop the serving loop
        logger.exception("request %s failed", request.request_id)
        reply["error"] = f"the node failed on this request ({type(error).__name__}: {error})"
        reply["error_kind"] = ErrorKind.INFERENCE_FAILED
    await handler.send_response(
        channel_id,
        request.request_id,
        reply.get("output"),
        reply.get("proof"),
        node=node_address,
        error=reply.get("error"),
        error_kind=reply.get("error_kind"),
    )
    return reply.get("error_kind")
