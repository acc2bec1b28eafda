"""``fetch_output``: a requester reads a settled request's output document from the store and
accepts it only as this request's, with the commitment the chain settled, and with an output that
commits to it (by the model runtime's own commitment function); ``OutputMismatchError`` otherwise.

Plain functions: the output documents are written as the edge node writes them, into a real
embedded store; no chain and no model is needed."""

import asyncio
import random

import pytest

from joynet import InferenceError, JoyNetError, OutputMismatchError, fetch_output
from joynet.chain.marketplace import InferenceResult, RequestStatus
from joynet.inference.inputs import encode_document
from joynet.inference.runtimes.digits import FRAMEWORK as DIGITS
from joynet.inference.runtimes.digits import DigitsMLPRuntime
from joynet.inference.runtimes.sentence_embedding import FRAMEWORK as EMBEDDING
from joynet.inference.runtimes.sentence_embedding import SentenceEmbeddingRuntime
from joynet.models.package import IPFS_SCHEME
from joynet.storage import EmbeddedStore

REQUEST_ID = 7
LOGITS = [-3, 1, 0, 12, 4, -1, 2, 5, 0, 1]


def digits_output(label: int = 3) -> dict:
    return {"class": label, "logits": LOGITS}


def embedding_output(seed: int = 1) -> dict:
    return {"embedding": [random.Random(seed).randint(-127, 127) for _ in range(384)]}


def commitment_of(framework: str, output: dict) -> bytes:
    runtime = {DIGITS: DigitsMLPRuntime, EMBEDDING: SentenceEmbeddingRuntime}[framework]
    return runtime.commitment_of(output)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("ipfs"))


def settled(store, document: dict, commitment: bytes, status=RequestStatus.Settled) -> InferenceResult:
    """The chain's record of request ``REQUEST_ID``, settled with ``commitment`` and ``document``
    (stored as the edge node stores it) as output."""
    uri = IPFS_SCHEME + asyncio.run(store.add_bytes(encode_document(document)))
    return InferenceResult(REQUEST_ID, status, output_commitment=commitment, output_uri=uri, nodes=["0x" + "42" * 20])


def node_document(framework: str, output: dict, request_id: int = REQUEST_ID) -> dict:
    """The output document an honest node writes (``EdgeNode._compute``)."""
    commitment = commitment_of(framework, output)
    return {"requestId": request_id, "model": framework, "output": output, "outputCommitment": "0x" + commitment.hex()}


def fetched(store, result, framework=None):
    return asyncio.run(fetch_output(store, result, framework=framework))


@pytest.mark.parametrize("framework, output", [(DIGITS, digits_output()), (EMBEDDING, embedding_output())])
def test_fetch_output__document_as_the_node_wrote_it__returns_its_output(store, framework, output):
    result = settled(store, node_document(framework, output), commitment_of(framework, output))
    assert fetched(store, result, framework) == output


@pytest.mark.parametrize(
    "framework, output, altered",
    [(DIGITS, digits_output(3), digits_output(8)), (EMBEDDING, embedding_output(1), embedding_output(2))],
)
def test_fetch_output__output_altered_after_settling__output_mismatch(store, framework, output, altered):
    honest = commitment_of(framework, output)
    document = {**node_document(framework, output), "output": altered}  # the commitment is still the honest one
    result = settled(store, document, honest)
    with pytest.raises(OutputMismatchError) as mismatch:
        fetched(store, result, framework)
    assert str(mismatch.value) == (
        f"request {REQUEST_ID}: the output in document {result.output_uri.removeprefix(IPFS_SCHEME)} commits to "
        f"0x{commitment_of(framework, altered).hex()} ({framework}), but the chain settled 0x{honest.hex()}"
    )


def test_fetch_output__output_altered_and_no_framework__document_commitment_alone_checked(store):
    document = {**node_document(DIGITS, digits_output(3)), "output": digits_output(8)}
    result = settled(store, document, commitment_of(DIGITS, digits_output(3)))
    assert fetched(store, result) == digits_output(8)  # without the runtime, nothing recomputes the commitment
    assert fetched(store, result, "a-framework-without-runtime-here") == digits_output(8)


@pytest.mark.parametrize("framework, output", [(DIGITS, digits_output()), (EMBEDDING, embedding_output())])
def test_fetch_output__document_commitment_differs_from_chain__output_mismatch(store, framework, output):
    on_chain = bytes(31) + b"\x09"
    result = settled(store, node_document(framework, output), on_chain)
    with pytest.raises(OutputMismatchError) as mismatch:
        fetched(store, result, framework)
    assert str(mismatch.value) == (
        f"request {REQUEST_ID}: the output document {result.output_uri.removeprefix(IPFS_SCHEME)} carries "
        f"outputCommitment 0x{commitment_of(framework, output).hex()}, but the chain settled 0x{on_chain.hex()}"
    )


def test_fetch_output__document_of_another_request__output_mismatch(store):
    output = digits_output()
    result = settled(store, node_document(DIGITS, output, request_id=REQUEST_ID + 1), commitment_of(DIGITS, output))
    with pytest.raises(OutputMismatchError) as mismatch:
        fetched(store, result, DIGITS)
    assert str(mismatch.value) == (
        f"request {REQUEST_ID}: the output document {result.output_uri.removeprefix(IPFS_SCHEME)} is the one of "
        f"request {REQUEST_ID + 1}"
    )


@pytest.mark.parametrize("status", [RequestStatus.Open, RequestStatus.Refunded])
def test_fetch_output__request_not_settled__output_mismatch(store, status):
    output = digits_output()
    result = settled(store, node_document(DIGITS, output), commitment_of(DIGITS, output), status=status)
    with pytest.raises(OutputMismatchError) as mismatch:
        fetched(store, result, DIGITS)
    assert str(mismatch.value) == (
        f"request {REQUEST_ID} is not settled (status {status.name}): it has no output to check"
    )


@pytest.mark.parametrize("uri", ["https://example.com/out.json", "ipfs://not-a-cid", None])
def test_fetch_output__output_uri_not_an_ipfs_cid__output_mismatch(store, uri):
    result = InferenceResult(REQUEST_ID, RequestStatus.Settled, output_commitment=bytes(32), output_uri=uri)
    with pytest.raises(OutputMismatchError, match=f"request {REQUEST_ID}: its outputURI .* is not an ipfs:// CID"):
        fetched(store, result, DIGITS)


def test_fetch_output__output_no_digits_output__output_mismatch(store):
    document = {**node_document(DIGITS, digits_output()), "output": {"label": 3}}
    result = settled(store, document, commitment_of(DIGITS, digits_output()))
    with pytest.raises(OutputMismatchError, match=f"request {REQUEST_ID}: the output in .* not one a {DIGITS} model"):
        fetched(store, result, DIGITS)


def test_output_mismatch_error__raised__an_inference_error_of_joynet():
    assert issubclass(OutputMismatchError, InferenceError) and issubclass(OutputMismatchError, JoyNetError)
