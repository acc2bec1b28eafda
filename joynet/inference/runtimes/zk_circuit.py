"""Any quantized model with a generated circuit (ZK policy): framework ``joynet-zk``.

The package holds the model and its circuit:

    model.json                    the quantized model (joynet.zk.quantized, joynet-quantized-model/1)
    circuit/manifest.json         written by circuits/build.sh: the circuit's name, its weight mode
    circuit/<name>.wasm           the witness generator
    circuit/<name>.zkey           the proving key (from the circuit's ceremony)
    circuit/verification_key.json its sha-256 is the circuit id the DAO registered

Input ``{"input": [integers 0..max, flat in C-H-W order], "salt": field element}``; output
``{"class": int, "logits": [ints]}`` from the bit-exact integer forward pass; output commitment:
the class as a big-endian bytes32, which the proof's outputBinding carries. With a request id and
a node address the result carries a Groth16 proof made with the package's own proving key.
"""

import hashlib
import json

from joynet.inference.errors import InferenceError, InvalidInputError, ModelLoadError
from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput
from joynet.inference.runtimes.digits import (
    checked_weights_commitment,
    class_commitment,
    classifier_statement,
    parse_salt,
)
from joynet.zk.commitments import byte_input_commitment, to_bytes32
from joynet.zk.errors import ModelError
from joynet.zk.quantized import WEIGHT_MODES, QuantizedModel

FRAMEWORK = "joynet-zk"
MODEL_FILE = "model.json"
CIRCUIT_DIR = "circuit"
MANIFEST = f"{CIRCUIT_DIR}/manifest.json"
VERIFICATION_KEY = f"{CIRCUIT_DIR}/verification_key.json"


class ZKCircuitRuntime(ModelRuntime):
    framework = FRAMEWORK  # the name of its entry point (pyproject.toml)
    verification_key_file = VERIFICATION_KEY

    def __init__(self, package, context):
        super().__init__(package, context)
        for name in (MODEL_FILE, MANIFEST, VERIFICATION_KEY):
            if name not in package.files:
                raise ModelLoadError(f"model {package.cid}: the package has no {name} (see docs/zk-models.md)")
        try:
            self.model = QuantizedModel.from_dict(json.loads(package.read(MODEL_FILE)))
        except (ValueError, TypeError) as error:
            raise ModelLoadError(f"model {package.cid}: {MODEL_FILE} is not a quantized model: {error}") from None
        self.weights_commitment = checked_weights_commitment(package, self.model.weights_commitment())
        manifest = json.loads(package.read(MANIFEST))
        self.weight_mode = manifest.get("weights")
        if self.weight_mode not in WEIGHT_MODES:
            raise ModelLoadError(f"model {package.cid}: {MANIFEST} names no weight mode ({' or '.join(WEIGHT_MODES)})")
        # The circuit id is the verification key's own hash, not the manifest's word for it.
        self.circuit_id = hashlib.sha256(package.read(VERIFICATION_KEY)).digest()
        circuit = package.verification.get("circuitId")
        if circuit is None or circuit.lower() != "0x" + self.circuit_id.hex():
            raise ModelLoadError(
                f"model {package.cid} is verified by circuit {circuit}; its package's verification key "
                f"is circuit 0x{self.circuit_id.hex()}"
            )
        self._prover = None

    def run(self, input_data, *, request_id=None, node=None) -> RuntimeOutput:
        try:
            values = self.model.check_input(input_data["input"])
        except ModelError as error:
            raise InvalidInputError(str(error)) from None
        salt = parse_salt(input_data["salt"])
        inference = self.model.forward(values)
        commitment = to_bytes32(inference.label)
        proof = None
        if request_id is not None and node is not None:
            proof = self._prove(values, salt, request_id, node, inference)
            if proof.output_commitment != commitment:  # the circuit computes the same integer model
                raise InferenceError("the circuit's output commitment differs from the runtime's")
        return RuntimeOutput(
            {"class": inference.label, "logits": list(inference.logits)},
            commitment,
            to_bytes32(self.model.input_commitment(values, salt)),
            proof,
            proof.calldata if proof else b"",
        )

    @classmethod
    def commitment_of(cls, output: dict) -> bytes:
        return class_commitment(output)

    @classmethod
    def proof_statement(cls, weights_commitment, input_data, output, request_id, node):
        commitment = byte_input_commitment(list(input_data["input"]), parse_salt(input_data["salt"]))
        return classifier_statement(weights_commitment, commitment, output, request_id, node)

    def _prove(self, values, salt, request_id, node, inference):
        from joynet.zk.circuitgen import circuit_signals
        from joynet.zk.prover import ZKProver

        if self._prover is None:
            # The store keeps files by CID; the prover wants the circuit's files by name.
            layout = self.package.write_to(self.context.cache_dir / "package")
            self._prover = ZKProver(layout / CIRCUIT_DIR)
        try:
            signals = circuit_signals(
                self.model, values.tolist(), salt, request_id, node, weights=self.weight_mode, inference=inference
            )
            return self._prover.prove_signals(signals, inference, request_id, node)
        except ValueError as error:  # a request id outside the field, a node that is not an address
            raise InvalidInputError(str(error)) from None

    def close(self) -> None:
        if self._prover is not None:
            self._prover.close()
            self._prover = None
