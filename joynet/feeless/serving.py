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

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from joynet.feeless.errors import ErrorKind
from joynet.feeless.handler import circuit_request_id, proof_document
from joynet.identity.credentials import ACCESS_DENIED, CredentialError
from joynet.inference.errors import InferenceError, InvalidInputError

if TYPE_CHECKING:
    from joynet.feeless.handler import IOTAInferenceHandler
    from joynet.identity.credentials import ModelAccessPolicy

logger = logging.getLogger("joynet.feeless.serving")

# execute(model_id, input, request_id=..., node=...) -> a result with .output,
# .output_commitment_hex and .proof (a joynet.zk.ZKProof or None)
Execute = Callable[..., Awaitable[Any]]


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
) -> int:
    """Answers requests until ``max_requests`` were answered (or ``timeout`` passes with none);
    returns how many were answered."""
    answered = 0
    while max_requests is None or answered < max_requests:
        try:
            request = await handler.next_request(channel_id, timeout=timeout)
        except TimeoutError:
            break
        answered += 1
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
    return answered
