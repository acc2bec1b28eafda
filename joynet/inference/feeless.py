"""Feeless inference over a model channel: ``InferenceNode.execute_inference(..., use_iota=True)``.

Requester side (:func:`request_over_channel`): subscribe to the model's channel (presenting an
access credential for a private model), post the request, wait for the node's answer and, for a
ZK model, verify the Groth16 proof locally with snarkjs (``joynet.zk.ZKProver.verify``) before
accepting the output. Nothing touches the chain: the requester sends no transaction.

Node side (:func:`serve_channel`): answer each request with the model's output and, for a ZK
model, the proof bound to the request and to the node's EVM address. A private model is served
only to a requester whose subscription carried a valid, unexpired, unrevoked model-access
credential (``joynet.identity.ModelAccessPolicy``); others get a refusal and no output.

A channel request id is a 32-byte message hash; the circuit binds a request id below 2**64, so the
proof binds the first 8 bytes of the hash (:func:`circuit_request_id`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from joynet.identity import ACCESS_DENIED, CredentialError
from joynet.inference.errors import InferenceError, InvalidInputError
from joynet.iota_handler import AdmissionRefusedError
from joynet.model_package import ModelPackage

if TYPE_CHECKING:
    from joynet.identity import ModelAccessPolicy
    from joynet.inference.node import InferenceNode, InferenceOutput
    from joynet.iota_handler import IOTAInferenceHandler, IOTAInferenceResponse

logger = logging.getLogger("joynet.inference.feeless")

ZERO_BYTES32 = b"\0" * 32


class ProofRejectedError(InferenceError):
    """The node's answer to a ZK model carries no proof, or one that does not prove this result; or
    an answer's output commitment does not commit to its output."""


class AccessDeniedError(InferenceError):
    """The node refused admission to a private model's channel, or declined a request: no valid
    access credential (the message says why)."""


def circuit_request_id(request_id: str) -> int:
    """The request id a channel request's proof binds: the first 8 bytes of its message hash."""
    return int.from_bytes(bytes.fromhex(request_id.removeprefix("0x"))[:8], "big")


def proof_document(proof) -> dict | None:
    """A ``joynet.zk.ZKProof`` as it travels in a channel answer (snarkjs JSON + public signals)."""
    if proof is None:
        return None
    return {"proof": proof.proof, "publicSignals": [str(signal) for signal in proof.public_signals]}


# ---- requester ----


async def model_metadata(node: InferenceNode, model_id: str) -> ModelPackage:
    """The model's metadata document (no weights fetched), checked against the chain's commitment."""
    cid, chain_commitment = await node.resolve(model_id)
    metadata = json.loads(await node.store.cat(cid))
    package = ModelPackage(cid=cid, metadata=metadata, files={})
    if chain_commitment is not None and package.weights_commitment.lower() != "0x" + chain_commitment.hex():
        raise ProofRejectedError(f"model {model_id!r}: its metadata's weightsCommitment differs from the chain's")
    return package


async def model_channel(node: InferenceNode, model_id: str) -> str:
    """The channel a registered feeless model names on chain (its iotaStreamId)."""
    stream = bytes(node.marketplace.get_model(model_id).iotaStreamId)
    if stream == ZERO_BYTES32:
        raise InferenceError(f"model {model_id!r} has no IOTA stream: pass channel_id= or use use_iota=False")
    return "0x" + stream.hex()


async def request_over_channel(
    node: InferenceNode, handler: IOTAInferenceHandler, model_id: str, input_data, *,
    channel_id: str | None, credential: str | bytes | None, timeout: float,
) -> InferenceOutput:
    from joynet.inference.node import InferenceOutput

    channel_id = channel_id or await model_channel(node, model_id)
    package = await model_metadata(node, model_id)
    credential = credential.encode() if isinstance(credential, str) else (credential or b"")
    await node.subscribe_once(channel_id, credential)
    try:
        request_id = await handler.send_request(channel_id, model_id, input_data, timeout=timeout)
    except AdmissionRefusedError as refused:
        raise AccessDeniedError(str(refused)) from None
    response = await handler.wait_response(channel_id, request_id, timeout=timeout)
    if response.error:
        declined = AccessDeniedError if response.error.startswith(ACCESS_DENIED) else InferenceError
        raise declined(f"the node declined: {response.error}")
    proof, calldata = None, b""
    circuit = package.verification.get("circuitId")
    if circuit and int(circuit, 16):
        proof = await node.verify_channel_proof(package, input_data, request_id, response)
        from joynet.zk import encode_calldata

        calldata = encode_calldata(proof["proof"])
    output = dict(response.output) if isinstance(response.output, dict) else {"value": response.output}
    commitment = check_output_commitment(package, output, output.pop("outputCommitment", None), request_id)
    return InferenceOutput(
        model_id=model_id, model_cid=package.cid, output=output, output_commitment=commitment,
        input_commitment=None, proof=proof, proof_calldata=calldata, verification=dict(package.verification),
        seconds=0.0,
    )


def check_output_commitment(package: ModelPackage, output: dict, claimed, request_id: str) -> bytes:
    """The answer's output commitment, once it is the one the model's runtime computes for the
    output (what a node would submit on chain for it); ProofRejectedError otherwise."""
    from joynet.inference.errors import UnknownRuntimeError
    from joynet.inference.runtimes import runtime_for

    try:
        commitment = bytes.fromhex(str(claimed).removeprefix("0x"))
        if len(commitment) != 32:
            raise ValueError(f"outputCommitment {claimed!r} is not 32 bytes")
        expected = runtime_for(package.framework).commitment_of(output)
    except UnknownRuntimeError:
        expected = None  # a framework this requester has no runtime for: it cannot tell
    except ValueError as error:
        raise ProofRejectedError(f"the answer to {request_id} cannot be checked: {error}") from None
    if expected is not None and commitment != expected:
        raise ProofRejectedError(f"the answer to {request_id}: its outputCommitment does not commit to its output")
    return commitment


def check_proof_statement(package: ModelPackage, input_data, request_id: str, response: IOTAInferenceResponse) -> dict:
    """The proof's public signals must state this model, this input, this output, this request and
    the answering node; returns the proof document. The pairing check itself is snarkjs's."""
    from joynet.inference.runtimes.digits import parse_salt
    from joynet.zk import PUBLIC_INPUTS, input_commitment, output_binding

    document = response.proof
    if not isinstance(document, dict) or "proof" not in document or len(document.get("publicSignals") or []) != len(PUBLIC_INPUTS):
        raise ProofRejectedError(f"the answer to {request_id} carries no Groth16 proof for a ZK model")
    signals = [int(value) for value in document["publicSignals"]]
    value = json.loads(input_data) if isinstance(input_data, (str, bytes)) else input_data
    output = response.output or {}
    try:
        expected = [
            int(package.weights_commitment, 16),
            input_commitment(value["pixels"], parse_salt(value["salt"])),
            output_binding(int(output["class"]), circuit_request_id(request_id), response.node),
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ProofRejectedError(f"the answer to {request_id} cannot be checked: {error}") from None
    wrong = [name for name, got, want in zip(PUBLIC_INPUTS, signals, expected) if got != want]
    if wrong:
        raise ProofRejectedError(f"the proof of {request_id} does not state this result: {', '.join(wrong)} differ")
    return document


# ---- node ----


async def serve_channel(
    node: InferenceNode, handler: IOTAInferenceHandler, channel_id: str, model_id: str, *,
    node_address: str, access: ModelAccessPolicy | None, max_requests: int | None, timeout: float | None,
) -> int:
    """Answer requests until ``max_requests`` were answered (or ``timeout`` passes with none)."""
    answered = 0
    while max_requests is None or answered < max_requests:
        try:
            request = await handler.next_request(channel_id, timeout=timeout)
        except TimeoutError:
            break
        answered += 1
        reply: dict[str, Any] = {"node": node_address}
        try:
            if request.model_id != model_id:
                raise InvalidInputError(f"this channel serves model {model_id!r}, not {request.model_id!r}")
            if access is not None:
                access.check(handler.credential_of(channel_id, request.requester), request.requester)
            result = await node.execute_inference(
                model_id, request.input, request_id=circuit_request_id(request.request_id), node=node_address)
            reply["output"] = {**result.output, "outputCommitment": result.output_commitment_hex}
            reply["proof"] = proof_document(result.proof)
        except CredentialError as error:
            logger.info("declined request %s: %s", request.request_id, error)
            reply["error"] = f"{ACCESS_DENIED}: {error}"
        except InferenceError as error:
            logger.info("declined request %s: %s", request.request_id, error)
            reply["error"] = str(error)
        await handler.send_response(channel_id, request.request_id, reply.get("output"), reply.get("proof"),
                                    node=node_address, error=reply.get("error"))
    return answered
