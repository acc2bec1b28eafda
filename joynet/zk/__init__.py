"""Zero-knowledge proofs of inference for the digits MLP (Circom + Groth16).

The integer model and its forward pass (`QuantizedMLP`), circomlib's Poseidon, the three
commitments a proof binds, and `ZKProver`, which proves inferences with the committed circuit.
"""

from joynet.zk.commitments import (
    input_commitment,
    output_commitment,
    pack_bytes,
    pack_nibbles,
    random_salt,
    to_bytes32,
    weights_commitment,
)
from joynet.zk.model import DEFAULT_MODEL, Inference, ModelError, QuantizedMLP
from joynet.zk.poseidon import SNARK_SCALAR_FIELD, poseidon
from joynet.zk.prover import (
    PUBLIC_INPUTS,
    ZK_VERIFIER_LAYOUT,
    ZKProof,
    ZKProofError,
    ZKProver,
    circuit_id,
    circuit_input,
    decode_calldata,
    encode_calldata,
    groth16_verifier,
    output_binding,
    request_binding,
    solidity_proof,
)

__all__ = [
    "DEFAULT_MODEL",
    "Inference",
    "ModelError",
    "PUBLIC_INPUTS",
    "QuantizedMLP",
    "SNARK_SCALAR_FIELD",
    "ZK_VERIFIER_LAYOUT",
    "circuit_id",
    "circuit_input",
    "ZKProof",
    "ZKProofError",
    "ZKProver",
    "decode_calldata",
    "groth16_verifier",
    "encode_calldata",
    "input_commitment",
    "output_commitment",
    "pack_bytes",
    "pack_nibbles",
    "poseidon",
    "random_salt",
    "output_binding",
    "request_binding",
    "solidity_proof",
    "to_bytes32",
    "weights_commitment",
]
