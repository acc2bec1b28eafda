"""The digits MLP (ZK policy): ``joynet.zk.QuantizedMLP`` loaded from the package's ``model.json``.

Input ``{"pixels": [64 integers 0..16], "salt": field element}`` (the salt as an integer, a decimal
string or a 0x-hex string: JSON numbers above 2**53 do not survive every JSON reader).
Output ``{"class": int, "logits": [10 ints]}``, computed with the integer forward pass, bit for bit
what the circuit constrains. Output commitment: the class itself as a big-endian bytes32 (the
proof's public outputBinding carries it; the logits stay off chain); with a request id and a node
address, the result also carries a Groth16 proof (``ZKProver.prove``) and its calldata.
"""

import json

from joynet.inference.errors import InferenceError, InvalidInputError, ModelLoadError
from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput
from joynet.zk.commitments import check_salt, input_commitment, output_commitment, to_bytes32, weights_commitment
from joynet.zk.model import ModelError, QuantizedMLP, check_pixels

FRAMEWORK = "joynet-int-mlp"
MODEL_FILE = "model.json"


def parse_salt(salt) -> int:
    if isinstance(salt, str):
        try:
            salt = int(salt, 16) if salt.lower().startswith("0x") else int(salt, 10)
        except ValueError:
            raise InvalidInputError(f"salt {salt!r} is not a decimal or 0x-hex integer") from None
    try:
        return check_salt(salt)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None


def classifier_statement(weights_commitment: str, input_commitment: int, output: dict, request_id: int, node) -> dict:
    """The public signals of a classifier's proof (the protocol's three, in the circuit's order):
    the weights commitment, the input's, and the claimed class bound to the request and node."""
    from joynet.zk.prover import output_binding

    return {
        "weightsCommitment": int(weights_commitment, 16),
        "inputCommitment": input_commitment,
        "outputBinding": output_binding(int(output["class"]), request_id, node),
    }


def checked_weights_commitment(package, commitment: int) -> bytes:
    """``commitment`` (the weights' hash, a field element) as a bytes32, once it is the
    weightsCommitment the package's metadata declares; ModelLoadError otherwise."""
    computed = to_bytes32(commitment)
    declared = package.weights_commitment.lower()
    if "0x" + computed.hex() != declared:
        raise ModelLoadError(
            f"model {package.cid}: its weights hash to 0x{computed.hex()}, "
            f"not to the weightsCommitment {declared} its metadata declares"
        )
    return computed


def class_commitment(output: dict) -> bytes:
    """A classifier's output commitment: its class as a big-endian bytes32 (what the proof's
    outputBinding carries); ValueError for an output without an integer class."""
    try:
        return to_bytes32(int(output["class"]))
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"not a classifier's output: {error!r}") from None


class DigitsMLPRuntime(ModelRuntime):
    framework = FRAMEWORK  # the name of its entry point (pyproject.toml)

    def __init__(self, package, context):
        super().__init__(package, context)
        if MODEL_FILE not in package.files:
            raise ModelLoadError(f"model {package.cid}: the package has no {MODEL_FILE}")
        try:
            self.model = QuantizedMLP.from_dict(json.loads(package.read(MODEL_FILE)))
        except (ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(f"model {package.cid}: {MODEL_FILE} is not a quantized digits MLP: {error}") from None
        self.weights_commitment = checked_weights_commitment(package, weights_commitment(self.model))
        self._prover = None

    def run(self, input_data, *, request_id=None, node=None) -> RuntimeOutput:
        try:
            pixels = check_pixels(input_data["pixels"])
        except ModelError as error:
            raise InvalidInputError(str(error)) from None
        salt = parse_salt(input_data["salt"])
        inference = self.model.forward(pixels)
        output = {"class": inference.label, "logits": list(inference.logits)}
        commitment = to_bytes32(output_commitment(inference))
        proof = None
        if request_id is not None and node is not None:
            proof = self._prove(pixels, salt, request_id, node, inference)
            if proof.output_commitment != commitment:  # the prover runs the same integer model
                raise InferenceError("the circuit's output commitment differs from the runtime's")
        return RuntimeOutput(
            output=output,
            output_commitment=commitment,
            input_commitment=to_bytes32(input_commitment(pixels, salt)),
            proof=proof,
            proof_calldata=proof.calldata if proof else b"",
        )

    @classmethod
    def commitment_of(cls, output: dict) -> bytes:
        return class_commitment(output)

    @classmethod
    def proof_statement(cls, weights_commitment, input_data, output, request_id, node):
        commitment = input_commitment(input_data["pixels"], parse_salt(input_data["salt"]))
        return classifier_statement(weights_commitment, commitment, output, request_id, node)

    def _prove(self, pixels, salt, request_id, node, inference):
        from joynet.zk.prover import circuit_id

        declared = self.package.verification.get("circuitId")
        if declared is None:
            raise ModelLoadError(
                f"model {self.package.cid} names no circuit (verification.circuitId): nothing to prove with"
            )
        if declared.lower() != "0x" + circuit_id().hex():
            raise ModelLoadError(
                f"model {self.package.cid} is verified by circuit {declared}; this node proves with 0x{circuit_id().hex()}"
            )
        if self._prover is None:
            factory = self.context.prover_factory
            if factory is None:
                from joynet.zk import ZKProver as factory
            self._prover = factory()
        try:
            # The forward pass above is reused: the model is not run again before the witness.
            return self._prover.prove(
                self.model,
                pixels,
                salt,
                request_id,
                node,
                inference=inference,
                weights=int.from_bytes(self.weights_commitment, "big"),
            )
        except ValueError as error:  # a request id outside the field, a node that is not an address
            raise InvalidInputError(str(error)) from None

    def close(self) -> None:
        if self._prover is not None:
            self._prover.close()
            self._prover = None
