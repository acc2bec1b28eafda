"""Request input documents: what a requester publishes and an edge agent fetches.

**Format.** An input document is the JSON object the model's ``inputSchema`` describes, stored in
the ModelStore (IPFS) as canonical JSON (UTF-8, keys sorted, no spaces); the request's
``inputURI`` is ``ipfs://<CID>`` of that file. For the two built-in models:

- digits MLP (ZK policy): ``{"pixels": [64 integers 0..16], "salt": "0x<hex>"}``. The salt is the
  one of the input commitment; ``inputCommitment = Poseidon(packed pixels, salt)``, the circuit's
  public input (``joynet.zk.input_commitment``), so the proof binds the request's input.
- all-MiniLM-L6-v2 (quorum policy): ``{"text": "..."}`` or ``{"texts": [...]}``;
  ``inputCommitment = keccak256(the document's bytes as stored)``.

The rule in general: a model verified by a circuit commits to its input the circuit's way (the
runtime computes it, ``InferenceOutput.input_commitment``); every other model commits with
keccak256 of the stored document. An agent recomputes the commitment from what it fetched and
declines the request when it differs.

    uri, commitment = await publish_input(store, digits_input(pixels), zk=True)
    request_id = await marketplace.request_inference("digits", commitment, uri)
"""

from __future__ import annotations

import json

from eth_utils import keccak

from joynet.inference.errors import InvalidInputError, PayloadTooLargeError
from joynet.models.package import IPFS_SCHEME
from joynet.storage import ModelStore, StoreError
from joynet.storage.cids import cid_text, parse_cid
from joynet.storage.errors import ContentNotFoundError, InvalidCIDError


class InputFetchError(InvalidInputError):
    """The input URI does not name a document this node can fetch and verify."""


def encode_document(document: dict) -> bytes:
    """The canonical bytes of an input (or output) document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def document_commitment(data: bytes) -> bytes:
    """The input commitment of a model without a circuit: keccak256 of the stored bytes."""
    return keccak(data)


def digits_input(pixels, salt: int | None = None) -> dict:
    """The input document of the digits model; a random field-element salt unless one is given."""
    from joynet.zk import random_salt

    return {"pixels": [int(p) for p in pixels], "salt": hex(random_salt() if salt is None else salt)}


def digits_commitment(document: dict) -> bytes:
    from joynet.inference.runtimes.digits import parse_salt
    from joynet.zk import input_commitment, to_bytes32

    return to_bytes32(input_commitment(document["pixels"], parse_salt(document["salt"])))


async def publish_input(store: ModelStore, document: dict, *, zk: bool) -> tuple[str, bytes]:
    """Publishes ``document`` and returns ``(inputURI, inputCommitment)`` for requestInference.
    ``zk``: the model is verified by the digits circuit (Poseidon commitment with the document's
    salt); otherwise the commitment is keccak256 of the stored bytes."""
    data = encode_document(document)
    cid = await store.add_bytes(data)
    commitment = digits_commitment(document) if zk else document_commitment(data)
    return IPFS_SCHEME + cid, commitment


async def fetch_input(store: ModelStore, input_uri: str, max_bytes: int) -> bytes:
    """The document at ``ipfs://CID``, every block verified, refused past ``max_bytes``.
    Raises InputFetchError (bad URI, unknown or tampered content) or PayloadTooLargeError."""
    if not isinstance(input_uri, str) or not input_uri.startswith(IPFS_SCHEME):
        raise InputFetchError(f"input URI {input_uri!r} is not an ipfs:// CID")
    try:
        cid = cid_text(parse_cid(input_uri.removeprefix(IPFS_SCHEME)))
    except InvalidCIDError as error:
        raise InputFetchError(f"input URI {input_uri!r} is not a valid CID: {error}") from None
    pieces, size = [], 0
    try:
        async for piece in store.iter_cat(cid):
            size += len(piece)
            if size > max_bytes:
                raise PayloadTooLargeError(f"input {cid} is over {max_bytes:,} bytes, the most this node accepts")
            pieces.append(piece)
    except ContentNotFoundError:  # its message names the node's store directory: not for the chain
        raise InputFetchError(f"input {cid} cannot be fetched: not found in the store this node reads") from None
    except StoreError as error:
        raise InputFetchError(f"input {cid} cannot be fetched: {error}") from None
    return b"".join(pieces)
