"""Output documents: what a settled request's node published and a requester reads back.

**Format.** The node that computed the result stores, as canonical JSON (``encode_document``),
``{"requestId": <the request's id>, "model": <the model's name or CID>, "output": {...},
"outputCommitment": "0x<bytes32>"}``, plus ``"activationProof": "0x..."`` for a language model's
answer (``joynet.inference.toploc``: what validators re-check by a prefill); the request's
``outputURI`` on chain is ``ipfs://<CID>`` of that file. Only the commitment is on chain: :func:`fetch_output` reads the document and accepts its
output once it is this request's, with the commitment the chain settled, and (when the model's
runtime can compute it) once the output itself commits to that commitment.

    result = await marketplace.get_result(request_id)
    output = await fetch_output(store, result, framework="joynet-int-mlp")   # {"class": ..., "logits": [...]}
"""

from __future__ import annotations

import json
from typing import Any

from joynet.inference.errors import OutputMismatchError, UnknownRuntimeError
from joynet.inference.runtimes import runtime_for
from joynet.models.package import IPFS_SCHEME
from joynet.storage import ModelStore
from joynet.storage.cids import cid_text, parse_cid
from joynet.storage.errors import InvalidCIDError

SETTLED = "Settled"  # the name of ModelMarketplace.Status.Settled (joynet.chain.marketplace.RequestStatus)


async def fetch_output(store: ModelStore, result: Any, framework: str | None = None) -> dict:
    """The output of a settled request, checked against what the chain settled.

    ``result``: the request's ``InferenceResult`` (``ModelMarketplace.get_result``), or anything
    with its ``request_id``, ``status``, ``output_uri`` and ``output_commitment``. ``framework``:
    the model metadata's ``framework``; when a runtime for it is registered here and can compute an
    output's commitment (``ModelRuntime.commitment_of``), the output must commit to the chain's
    commitment. Without one (or with ``None``) the document's own ``outputCommitment`` is checked.

    Returns the document's ``output``. Raises :class:`OutputMismatchError`, naming the request and
    what differs, when the request is not settled, its output URI is not an ``ipfs://`` CID, the
    document is not an output document, names another request, carries another commitment than the
    chain's, or holds an output that does not commit to it; ``StoreError`` when the store cannot
    deliver the document."""
    request_id = result.request_id
    status = getattr(result.status, "name", result.status)
    if status != SETTLED:
        raise OutputMismatchError(f"request {request_id} is not settled (status {status}): it has no output to check")
    settled = bytes(result.output_commitment or b"")
    uri = result.output_uri
    try:
        if not isinstance(uri, str) or not uri.startswith(IPFS_SCHEME):
            raise InvalidCIDError("not an ipfs:// URI")
        cid = cid_text(parse_cid(uri.removeprefix(IPFS_SCHEME)))
    except InvalidCIDError as error:
        raise OutputMismatchError(
            f"request {request_id}: its outputURI {uri!r} is not an ipfs:// CID ({error})"
        ) from None
    document = _parse(await store.cat(cid), request_id, cid)
    if document["requestId"] != request_id:
        raise OutputMismatchError(
            f"request {request_id}: the output document {cid} is the one of request {document['requestId']!r}"
        )
    claimed = _commitment(document["outputCommitment"], request_id, cid)
    if claimed != settled:
        raise OutputMismatchError(
            f"request {request_id}: the output document {cid} carries outputCommitment 0x{claimed.hex()}, "
            f"but the chain settled 0x{settled.hex()}"
        )
    output = document["output"]
    recomputed = _recomputed(framework, output, request_id, cid)
    if recomputed is not None and recomputed != settled:
        raise OutputMismatchError(
            f"request {request_id}: the output in document {cid} commits to 0x{recomputed.hex()} ({framework}), "
            f"but the chain settled 0x{settled.hex()}"
        )
    return output


def _parse(data: bytes, request_id, cid: str) -> dict:
    """The output document in ``data``, with the keys every output document has."""
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OutputMismatchError(f"request {request_id}: {cid} is not a JSON output document")
    missing = [key for key in ("requestId", "output", "outputCommitment") if key not in document]
    if missing:
        raise OutputMismatchError(f"request {request_id}: the output document {cid} has no {', '.join(missing)}")
    if not isinstance(document["output"], dict):
        raise OutputMismatchError(f"request {request_id}: the output in document {cid} is not a JSON object")
    return document


def _commitment(value, request_id, cid: str) -> bytes:
    try:
        commitment = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else b""
    except ValueError:
        commitment = b""
    if len(commitment) != 32:
        raise OutputMismatchError(
            f"request {request_id}: the output document {cid} carries outputCommitment {value!r}, not a bytes32"
        )
    return commitment


def _recomputed(framework: str | None, output: dict, request_id, cid: str) -> bytes | None:
    """The commitment the model's runtime computes for ``output``; None when it cannot tell."""
    if framework is None:
        return None
    try:
        return runtime_for(framework).commitment_of(output)
    except UnknownRuntimeError:
        return None  # a framework this requester has no runtime for: it cannot tell
    except ValueError as error:
        raise OutputMismatchError(
            f"request {request_id}: the output in document {cid} is not one a {framework} model produces: {error}"
        ) from None
