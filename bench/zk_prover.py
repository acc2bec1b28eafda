"""Figures of the digits-MLP proof system, for bench/protocol.py (`make bench`).

measure_zk(n) starts a ZKProver with the default backend (native when groth16py is installed)
and, when that is not snarkjs, one with snarkjs beside it; proves one warm-up inference with each,
then n more (held-out digits), each digit with both provers in turn so that both see the same
load, and returns a flat {"metric": number} dict:

    zk.constraints              R1CS constraints of the circuit (circuits/build/manifest.json)
    zk.prover_start_seconds     ZKProver() until its workers are ready (keys loaded, curve built)
    zk.witness_seconds_p50      witness generation, median
    zk.prove_seconds_p50        witness + Groth16 proof, median (warm workers)
    zk.proof_seconds_p50        the Groth16 proof alone, median
    zk.proof_cpu_seconds_p50    the CPU time of that proof (all its worker's threads), median: for
                                the one-core native prover, what the proof costs on an idle core
    zk.prove_call_overhead_seconds_p50
                                the rest of the ZKProver.prove call, median: inputs and
                                commitments, the pipes and the .wtns file, snarkjs's check
    zk.prove_call_seconds_p50   the whole ZKProver.prove call: commitments, witness, proof, snarkjs's check
    zk.native_prover            1 when the figures above are the native prover's, 0 for snarkjs's
    zk.load_average             the machine's 1-minute load average when the proofs started
    zk.prove_seconds_p50_snarkjs, zk.proof_cpu_seconds_p50_snarkjs, zk.prove_call_seconds_p50_snarkjs,
    zk.prover_start_seconds_snarkjs
                                the same with snarkjs, in the same run (native default only)
    gas.groth16_verify         verifyProof in a real transaction, whole (when a deployed verifier is given)
    gas.groth16_verify_execution  the same without the transaction's 21,000 base and its calldata
                                (4 gas per zero byte, 16 per other byte): the verifier's own execution

    .venv/bin/python -m bench.zk_prover [n]     these figures alone (no chain), as JSON
"""

import json
import os
import statistics
import sys
import time
from contextlib import ExitStack

from joynet.zk.commitments import random_salt
from joynet.zk.model import QuantizedMLP
from joynet.zk.prover import DEFAULT_CIRCUIT_DIR, ZKProver, prover_backend

BENCH_NODE = "0x" + "42" * 20


def calldata_gas(data: bytes) -> int:
    """What a transaction's data costs (EIP-2028): 4 gas per zero byte, 16 per other byte."""
    return sum(4 if byte == 0 else 16 for byte in data)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure_zk(n: int = 5, *, circuit_dir=DEFAULT_CIRCUIT_DIR, verifier=None, sender=None) -> dict[str, float]:
    """Measures n warm proofs with the default prover backend, and with snarkjs beside it when
    the default is the native one. With `verifier` (a deployed DigitsMLPVerifier, e.g. an Ape
    contract instance) and `sender`, also the gas of verifyProof sent as a transaction."""
    from joynet.zk.digits import load_split

    manifest = json.loads((DEFAULT_CIRCUIT_DIR / "manifest.json").read_text())
    model = QuantizedMLP.load()
    _, images, _, _ = load_split()
    default = prover_backend()
    backends = [default] + (["snarkjs"] if default != "snarkjs" else [])
    start: dict[str, float] = {}
    figures = ("witness", "prove", "proof", "proof_cpu", "overhead", "call")
    seconds: dict[str, dict[str, list[float]]] = {figure: {backend: [] for backend in backends} for figure in figures}
    with ExitStack() as stack:
        provers = {}
        for backend in backends:
            started = time.monotonic()
            provers[backend] = stack.enter_context(ZKProver(circuit_dir, backend=backend))
            start[backend] = time.monotonic() - started
            provers[backend].prove(model, images[0].tolist(), random_salt(), 1, BENCH_NODE)  # warm-up
        load_average = os.getloadavg()[0]
        for index in range(n):
            for backend, prover in provers.items():
                started = time.monotonic()
                proof = prover.prove(model, images[1 + index].tolist(), random_salt(), 2 + index, BENCH_NODE)
                call = time.monotonic() - started
                measured = {
                    "witness": proof.witness_seconds,
                    "prove": proof.witness_seconds + proof.prove_seconds,
                    "proof": proof.prove_seconds,
                    "proof_cpu": proof.prove_cpu_seconds,
                    "overhead": call - proof.witness_seconds - proof.prove_seconds,
                    "call": call,
                }
                for figure, value in measured.items():
                    seconds[figure][backend].append(value)
    results: dict[str, float] = {
        "zk.constraints": manifest["constraints"],
        "zk.prover_start_seconds": round(start[default], 3),
        "zk.witness_seconds_p50": _median(seconds["witness"][default]),
        "zk.prove_seconds_p50": _median(seconds["prove"][default]),
        "zk.proof_seconds_p50": _median(seconds["proof"][default]),
        "zk.proof_cpu_seconds_p50": _median(seconds["proof_cpu"][default]),
        "zk.prove_call_overhead_seconds_p50": _median(seconds["overhead"][default]),
        "zk.prove_call_seconds_p50": _median(seconds["call"][default]),
        "zk.native_prover": int(default == "native"),
        "zk.load_average": round(load_average, 2),
    }
    if default != "snarkjs":
        results |= {
            "zk.prover_start_seconds_snarkjs": round(start["snarkjs"], 3),
            "zk.prove_seconds_p50_snarkjs": _median(seconds["prove"]["snarkjs"]),
            "zk.proof_cpu_seconds_p50_snarkjs": _median(seconds["proof_cpu"]["snarkjs"]),
            "zk.prove_call_seconds_p50_snarkjs": _median(seconds["call"]["snarkjs"]),
        }
    if verifier is not None:
        args = proof.verifier_args()
        receipt = verifier.invoke_transaction("verifyProof", *args, sender=sender)
        results["gas.groth16_verify"] = receipt.gas_used
        results["gas.groth16_verify_execution"] = (
            receipt.gas_used - 21_000 - calldata_gas(bytes(verifier.verifyProof.encode_input(*args)))
        )
    return results


if __name__ == "__main__":
    print(json.dumps(measure_zk(int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=1))
