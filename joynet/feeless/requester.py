"""The requester's side of a feeless inference: post a request on the model's channel, wait for
the serving node's answer and accept it only once it checks out.

A ZK model's answer is accepted only with a proof whose public signals state this model, this
input, this output, this request and the answering node (the model's runtime says what they must
be: ``ModelRuntime.proof_statement``), and whose pairing ``verify_pairing`` accepts (snarkjs on
the requester's machine). Every answer's output commitment must be the one the model's runtime
computes for its output. Nothing touches the chain: the requester sends no transaction.

``joynet.InferenceNode.execute_inference(..., use_iota=True)`` is the design's entry point; it
resolves the model's channel and metadata and calls :func:`request_over_channel`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils import is_address

from joynet.channels.errors import AdmissionRefusedError
from joynet.feeless.checks import check_output_commitment, check_proof_statement
from joynet.feeless.claims import Bindings
from joynet.feeless.errors import AccessDeniedError, ErrorKind, ProofRejectedError
from joynet.inference.errors import InferenceError, InvalidInputError
from joynet.models.package import ModelPackage

if TYPE_CHECKING:
    from joynet.feeless.handler import IOTAInferenceHandler, IOTAInferenceResponse

# (public signals, snarkjs proof) -> whether the Groth16 pairing check holds
PairingCheck = Callable[[list, dict], Awaitable[bool]]

# How often a requester on a channel nobody serves yet looks for a serving node's claim.
SERVING_POLL_SECONDS = 0.2

# the error a node's refusal raises, by its error_kind; any other kind (or none) is an InferenceError
DECLINED_AS: dict[str, type[InferenceError]] = {
    ErrorKind.ACCESS_DENIED: AccessDeniedError,
    ErrorKind.INVALID_INPUT: InvalidInputError,
    ErrorKind.INFERENCE_FAILED: InferenceError,
}


@dataclass(frozen=True)
class ChannelAnswer:
    """An answer the requester accepted."""

    request_id: str  # the request message's hash
    output: dict  # without its outputCommitment
    output_commitment: bytes  # bytes32, checked against the output
    proof: dict | None  # {"proof", "publicSignals"} for a ZK model, else None
    proof_verified: bool  # the proof states this result and its pairing holds
    node: str | None = None  # the EVM address the answer names (checked against the chain with bindings)
    responder: str | None = None  # the answer's signing key (hex Ed25519)


async def request_over_channel(
    handler: IOTAInferenceHandler,
    package: ModelPackage,
    channel_id: str,
    model_id: str,
    input_data,
    *,
    timeout: float,
    verify_pairing: PairingCheck,
    bindings: Bindings | None = None,
) -> ChannelAnswer:
    """Posts ``input_data`` for ``model_id`` on ``channel_id`` (already subscribed) and returns the
    checked answer. AccessDeniedError when the node refused the requester, InvalidInputError or
    InferenceError when it declined (by the answer's ``error_kind``), ProofRejectedError when no
    answer came that checks out (an answer that does not is set aside while the timeout lasts:
    on a channel the network serves, another node may still answer). With ``bindings`` (a model registered on chain), an answer counts
    only when its signing key vouched on the channel for the node it names and the chain binds
    that node to the key."""
    if bindings is None and handler.is_open(channel_id):
        raise InferenceError(
            f"channel {channel_id} is open to every subscriber: its answers can only be checked against the chain's "
            "bindings of the model's nodes (a model registered on chain)"
        )
    deadline = time.monotonic() + timeout
    if bindings is not None and handler.is_open(channel_id):
        await wait_for_serving_node(handler, channel_id, bindings, deadline)
    try:
        request_id = await handler.send_request(
            channel_id, model_id, input_data, timeout=max(0.0, deadline - time.monotonic())
        )
    except AdmissionRefusedError as refused:
        raise AccessDeniedError(str(refused)) from None
    rejected: dict[str, ProofRejectedError] = {}  # response id -> why it was refused

    def worth_checking(response: IOTAInferenceResponse) -> bool:
        return response.response_id not in rejected

    while True:
        try:
            response = await handler.wait_response(
                channel_id, request_id, timeout=max(0.0, deadline - time.monotonic()), accept=worth_checking
            )
        except TimeoutError:
            if rejected:  # only answers that did not check out came
                raise list(rejected.values())[-1] from None
            raise
        try:
            return await check_answer(
                package, input_data, request_id, response, handler, channel_id, bindings, verify_pairing
            )
        except ProofRejectedError as error:
            if not handler.is_open(channel_id):
                raise  # only the author answers on its channel, and that answer is wrong
            # On a channel the network serves, anyone may post a response: one that does not check
            # out is set aside and the requester waits for a bound node's answer until its timeout.
            rejected[response.response_id] = error


async def wait_for_serving_node(
    handler: IOTAInferenceHandler, channel_id: str, bindings: Bindings, deadline: float
) -> None:
    """Waits until a node the chain binds to the model vouched on the open channel ``channel_id``:
    a request is assigned among the nodes serving when it arrives (``joynet.feeless.assignment``),
    so one posted before any serves would never be answered (a model just registered, its nodes
    still starting). TimeoutError at ``deadline`` (a monotonic time)."""
    while True:
        if any(
            bindings.credits(key, node, {(key, node)}) for key, node in bindings.vouched(handler.claims(channel_id))
        ):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no node serves channel {channel_id} yet: nobody would be assigned the request")
        await asyncio.sleep(SERVING_POLL_SECONDS)


async def check_answer(
    package: ModelPackage,
    input_data,
    request_id: str,
    response: IOTAInferenceResponse,
    handler: IOTAInferenceHandler,
    channel_id: str,
    bindings: Bindings | None,
    verify_pairing: PairingCheck,
) -> ChannelAnswer:
    """The answer, once ``response`` checks out (see :func:`request_over_channel`)."""
    if bindings is not None:
        check_bound_node(bindings, handler.claims(channel_id), response)
    if response.error or response.error_kind:
        declined = DECLINED_AS.get(response.error_kind or "", InferenceError)
        raise declined(f"the node declined: {response.error or response.error_kind}")
    proof = None
    circuit = package.verification.get("circuitId")
    if circuit and int(circuit, 16):
        proof = check_proof_statement(package, input_data, request_id, response)
        if not await verify_pairing(proof["publicSignals"], proof["proof"]):
            raise ProofRejectedError(f"the Groth16 proof of {request_id} does not verify (snarkjs)")
    output = dict(response.output) if isinstance(response.output, dict) else {"value": response.output}
    commitment = check_output_commitment(package, output, output.pop("outputCommitment", None), request_id)
    return ChannelAnswer(
        request_id=request_id,
        output=output,
        output_commitment=commitment,
        proof=proof,
        proof_verified=proof is not None,
        node=response.node,
        responder=response.responder,
    )


def check_bound_node(bindings: Bindings, claims, response: IOTAInferenceResponse) -> None:
    """ProofRejectedError unless the answer's signing key vouched on the channel (``claims``) for the
    node the answer names, and the chain binds that node to the key."""
    key = bytes.fromhex(response.responder.removeprefix("0x"))
    named = response.node if isinstance(response.node, str) and is_address(response.node) else None
    if named is None or not bindings.credits(key, named, bindings.vouched(claims)):
        raise ProofRejectedError(
            f"the answer to {response.request_id} is signed by a key that is not the bound channel key of the node "
            f"it names ({named or 'none'})"
        )
