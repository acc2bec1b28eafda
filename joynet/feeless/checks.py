"""Whether an answer on a model's channel checks out: what a requester checks before it accepts
an answer, and what a bridger checks before it credits one.

An answer's output commitment must be the one the model's runtime computes for its output; a ZK
model's answer must carry a Groth16 proof whose public signals state this model, this input, this
output, this request and the answering node (``ModelRuntime.proof_statement``), and whose pairing
holds; and the request must be within its requester's cap, when the model sets one. On an open
channel (one the network serves) requests and answers are public, so the bridgers check every
answer before they count it (:func:`answer_check`). On a private channel they see only an
answer's accounting part and cannot check it: they credit none (a private model's usage is
neither paid from a budget nor weighed in a usage pool).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from joynet.feeless.errors import ProofRejectedError
from joynet.feeless.handler import IOTAInferenceResponse, circuit_request_id
from joynet.inference.errors import UnknownRuntimeError
from joynet.inference.runtimes import runtime_for
from joynet.models.package import IPFS_SCHEME, ModelPackage
from joynet.zk.prover import PUBLIC_INPUTS

if TYPE_CHECKING:
    from joynet.feeless.assignment import Answer, AnswerCheck, Assignment

logger = logging.getLogger("joynet.feeless.checks")

# (public signals, snarkjs proof) -> whether the Groth16 pairing check holds
SyncPairingCheck = Callable[[list, dict], bool]
# Verification key files by their CID: content-addressed, so fetched once per process (a
# requester checks every answer of a model with the same key).
_KEY_FILES: dict[str, bytes] = {}


async def circuit_verification_key(package: ModelPackage, store) -> dict | None:
    """The snarkjs verification key a proof of ``package``'s model is checked with: None when its
    runtime proves with the built-in circuit (the digits MLP's key, in ``joynet.zk``) or it names
    no circuit; else the key file its runtime names (``ModelRuntime.verification_key_file``),
    fetched from ``store`` by the CID the metadata gives it, and refused (ProofRejectedError)
    unless its SHA-256 is the circuit id the metadata names."""
    circuit = str(package.verification.get("circuitId") or "0x0")
    if not int(circuit, 16):
        return None
    try:
        name = runtime_for(package.framework).verification_key_file
    except UnknownRuntimeError:
        return None  # check_proof_statement refuses the answer: no runtime here to state its proof
    if name is None:
        return None
    uri = package.metadata.get("files", {}).get(name)
    if not isinstance(uri, str):
        raise ProofRejectedError(f"model {package.cid}: its package has no {name} to check proofs with")
    cid = uri.removeprefix(IPFS_SCHEME)
    if cid not in _KEY_FILES:
        _KEY_FILES[cid] = await store.cat(cid)
    data = _KEY_FILES[cid]
    if "0x" + hashlib.sha256(data).hexdigest() != circuit.lower():
        raise ProofRejectedError(f"model {package.cid}: its {name} is not circuit {circuit}")
    try:
        key = json.loads(data)
        if key["nPublic"] != len(PUBLIC_INPUTS):
            raise ValueError(f"{key['nPublic']} public inputs, not the protocol's {len(PUBLIC_INPUTS)}")
    except (ValueError, KeyError, TypeError) as error:
        raise ProofRejectedError(f"model {package.cid}: its {name} is not a verification key: {error}") from None
    return key


def check_registered_circuit(
    package: ModelPackage, chain_circuit: bytes, registered: Callable[[bytes], bool] | None = None
) -> None:
    """ProofRejectedError unless the circuit the metadata names is the one the model's chain
    registration names (what a paid result's proof is checked against) and, with ``registered``
    (``joynet.chain.marketplace.circuit_registered``), one the DAO registered: a feeless answer's
    proof is worth what its circuit's trusted setup is worth, and only the DAO's registrations
    come with a ceremony transcript anyone can verify."""
    named = int(str(package.verification.get("circuitId") or "0x0"), 16)
    circuit = bytes(chain_circuit)
    if named != int.from_bytes(circuit, "big"):
        raise ProofRejectedError(
            f"model {package.cid}: its metadata names circuit {package.verification.get('circuitId')}, "
            f"the chain 0x{circuit.hex()}"
        )
    if named and registered is not None and not registered(circuit):
        raise ProofRejectedError(
            f"model {package.cid}: circuit 0x{circuit.hex()} is not one the DAO registered (ProofOfInference)"
        )


def answer_check(package: ModelPackage, verify_pairing: SyncPairingCheck) -> AnswerCheck:
    """A bridger's check of the answers of one model (``package``: its metadata), remembered per
    answer: a checkpoint is built several times a round (its own, then each proposal's)."""
    verdicts: dict[str, bool] = {}

    def check(assignment: Assignment, answer: Answer) -> bool:
        if answer.message_id not in verdicts:
            verdicts[answer.message_id] = _checks_out(package, verify_pairing, assignment, answer)
        return verdicts[answer.message_id]

    return check


def model_answer_checks(marketplace, store) -> Callable[[bytes], AnswerCheck]:
    """For a bridger: ``checks_for(model_id)``, the :func:`answer_check` of each registered model
    (``marketplace``: the ModelMarketplace contract; ``store``: where its metadata is), built once.
    A model whose metadata cannot be read, or whose weights commitment is not the chain's, gets a
    check that refuses every answer: nothing is credited that the bridgers could not check."""
    checks: dict[bytes, AnswerCheck] = {}
    prover = None

    def verify_pairing(public_signals: list, proof: dict, verification_key: dict | None) -> bool:
        nonlocal prover
        if prover is None:
            from joynet.zk import groth16_verifier

            prover = groth16_verifier()
        return prover.verify(public_signals, proof, verification_key)

    def checks_for(model_id: bytes) -> AnswerCheck:
        def check(assignment: Assignment, answer: Answer) -> bool:
            if "output" not in answer.body:
                return False  # a private channel's answer: masked, so it cannot be checked
            if model_id not in checks:  # the model's metadata is read at its first public answer
                checks[model_id] = _model_check(marketplace, store, model_id, verify_pairing)
            return checks[model_id](assignment, answer)

        return check

    return checks_for


def _model_check(
    marketplace, store, model_id: bytes, verify_pairing: Callable[[list, dict, dict | None], bool]
) -> AnswerCheck:
    from concurrent.futures import ThreadPoolExecutor

    from joynet.chain.marketplace import circuit_registered

    model = marketplace.getModel(model_id)
    cid = str(model.metadataURI).removeprefix(IPFS_SCHEME)
    try:
        with ThreadPoolExecutor(max_workers=1) as reader:  # the caller may be inside an event loop
            metadata = json.loads(reader.submit(asyncio.run, store.cat(cid)).result(timeout=120))
            package = ModelPackage(cid=cid, metadata=metadata, files={})
            if package.weights_commitment.lower() != "0x" + bytes(model.weightsCommitment).hex():
                raise ValueError("its metadata's weightsCommitment is not the chain's")
            check_registered_circuit(package, model.circuitId, lambda circuit: circuit_registered(marketplace, circuit))
            key = reader.submit(asyncio.run, circuit_verification_key(package, store)).result(timeout=120)
    except Exception as error:  # noqa: BLE001 - any failure to read the model means nothing checks out
        logger.warning("model 0x%s: cannot check its answers (%r); none is credited", model_id.hex()[:16], error)
        return lambda assignment, answer: False
    return answer_check(package, lambda public_signals, proof: verify_pairing(public_signals, proof, key))


def _checks_out(
    package: ModelPackage, verify_pairing: SyncPairingCheck, assignment: Assignment, answer: Answer
) -> bool:
    if "output" not in answer.body:
        return False  # a private channel's answer: its output and proof are masked from the bridgers
    response = IOTAInferenceResponse(
        answer.message_id,
        assignment.request_id,
        "",
        answer.body.get("output"),
        answer.body.get("proof"),
        "",
        answer.sequence,
        answer.node,
    )
    try:
        circuit = package.verification.get("circuitId")
        if circuit and int(circuit, 16):
            proof = check_proof_statement(package, assignment.body.get("input"), assignment.request_id, response)
            if not verify_pairing(proof["publicSignals"], proof["proof"]):
                return False
        output = dict(response.output) if isinstance(response.output, dict) else {"value": response.output}
        check_output_commitment(package, output, output.pop("outputCommitment", None), assignment.request_id)
    except ProofRejectedError:
        return False
    return True


def check_output_commitment(package: ModelPackage, output: dict, claimed, request_id: str) -> bytes:
    """The answer's output commitment, once it is the one the model's runtime computes for the
    output (what a node would submit on chain for it); ProofRejectedError otherwise."""
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
    """The proof's public signals must state what the model's runtime says a proof of this result
    states; returns the proof document. The pairing check itself is the caller's."""
    document = response.proof
    signals = document.get("publicSignals") if isinstance(document, dict) else None
    if not isinstance(signals, list) or "proof" not in document:
        raise ProofRejectedError(f"the answer to {request_id} carries no Groth16 proof for a ZK model")
    value = json.loads(input_data) if isinstance(input_data, (str, bytes)) else input_data
    if response.node is None:
        raise ProofRejectedError(f"the answer to {request_id} cannot be checked: it names no node")
    try:
        expected = runtime_for(package.framework).proof_statement(
            package.weights_commitment, value, response.output or {}, circuit_request_id(request_id), response.node
        )
        claimed = [int(signal) for signal in signals]
    except UnknownRuntimeError:
        raise ProofRejectedError(
            f"model {package.cid}: no runtime here for {package.framework!r} to check its proof"
        ) from None
    except (KeyError, TypeError, ValueError) as error:
        raise ProofRejectedError(f"the answer to {request_id} cannot be checked: {error}") from None
    if expected is None:
        raise ProofRejectedError(f"model {package.cid} names a circuit, but its runtime proves nothing")
    if len(claimed) != len(expected):
        raise ProofRejectedError(f"the answer to {request_id} carries no Groth16 proof for a ZK model")
    wrong = [name for (name, want), got in zip(expected.items(), claimed, strict=False) if got != want]
    if wrong:
        raise ProofRejectedError(f"the proof of {request_id} does not state this result: {', '.join(wrong)} differ")
    return document
