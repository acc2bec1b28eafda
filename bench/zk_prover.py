"""Figures of the digits-MLP proof system, for bench/protocol.py (`make bench`).

measure_zk(n) starts a ZKProver, proves one warm-up inference, then n more (held-out digits),
and returns a flat {"metric": number} dict:

    zk.constraints              R1CS constraints of the circuit (circuits/build/manifest.json)
    zk.prover_start_seconds     ZKProver() until its worker is ready (keys loaded, curve built)
    zk.witness_seconds_p50      witness generation, median
    zk.prove_seconds_p50        witness + Groth16 proof, median (warm worker)
    zk.prove_call_seconds_p50   the whole ZKProver.prove call: commitments, witness, proof, local verification
    gas.groth16_verify         verifyProof in a real transaction, whole (when a deployed verifier is given)
    gas.groth16_verify_execution  the same without the transaction's 21,000 base and its calldata
                                (4 gas per zero byte, 16 per other byte): the verifier's own execution
"""

import json
import statistics
import time

from joynet.zk.commitments import random_salt
from joynet.zk.model import QuantizedMLP
from joynet.zk.prover import DEFAULT_CIRCUIT_DIR, ZKProver

BENCH_NODE = "0x" + "42" * 20


def calldata_gas(data: bytes) -> int:
    """What a transaction's data costs (EIP-2028): 4 gas per zero byte, 16 per other byte."""
    return sum(4 if byte == 0 else 16 for byte in data)


def measure_zk(n: int = 5, *, circuit_dir=DEFAULT_CIRCUIT_DIR, verifier=None, sender=None) -> dict[str, float]:
    """Measures n warm proofs. With `verifier` (a deployed DigitsMLPVerifier, e.g. an Ape
    contract instance) and `sender`, also the gas of verifyProof sent as a transaction."""
    from joynet.zk.digits import load_split

    manifest = json.loads((DEFAULT_CIRCUIT_DIR / "manifest.json").read_text())
    model = QuantizedMLP.load()
    _, images, _, _ = load_split()
    started = time.monotonic()
    with ZKProver(circuit_dir) as prover:
        start_seconds = time.monotonic() - started
        prover.prove(model, images[0].tolist(), random_salt(), 1, BENCH_NODE)  # warm-up
        witness, prove, call = [], [], []
        for index in range(n):
            started = time.monotonic()
            proof = prover.prove(model, images[1 + index].tolist(), random_salt(), 2 + index, BENCH_NODE)
            call.append(time.monotonic() - started)
            witness.append(proof.witness_seconds)
            prove.append(proof.witness_seconds + proof.prove_seconds)
    results = {
        "zk.constraints": manifest["constraints"],
        "zk.prover_start_seconds": round(start_seconds, 3),
        "zk.witness_seconds_p50": round(statistics.median(witness), 3),
        "zk.prove_seconds_p50": round(statistics.median(prove), 3),
        "zk.prove_call_seconds_p50": round(statistics.median(call), 3),
    }
    if verifier is not None:
        args = proof.verifier_args()
        receipt = verifier.invoke_transaction("verifyProof", *args, sender=sender)
        results["gas.groth16_verify"] = receipt.gas_used
        results["gas.groth16_verify_execution"] = (
            receipt.gas_used - 21_000 - calldata_gas(bytes(verifier.verifyProof.encode_input(*args)))
        )
    return results
