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

measure_cnn_zk(n) does the same for the digits CNN's circuit (public weights), when its artefacts
exist (CNN_CIRCUIT_DIR, or $JOYNET_CNN_CIRCUIT_DIR), with the default backend alone:

    zk.cnn_constraints            R1CS constraints of the CNN's circuit (its manifest.json)
    zk.cnn_prove_seconds_p50      witness + Groth16 proof of a held-out digit, warm prover, median
    zk.cnn_prove_peak_memory_mb   peak resident memory of the prover's worker processes (VmHWM), summed

Without the artefacts it raises CnnCircuitUnavailable, which bench/protocol.py reports as a skip.

    .venv/bin/python -m bench.zk_prover [n]       these figures alone (no chain), as JSON
    .venv/bin/python -m bench.zk_prover cnn [n]   the CNN's
"""

import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.ezkl import peak_memory_mb
from joynet.zk.circuitgen import circuit_signals
from joynet.zk.commitments import random_salt
from joynet.zk.digits import CNN_MODEL_DIR
from joynet.zk.errors import ZKProofError
from joynet.zk.model import QuantizedMLP
from joynet.zk.prover import DEFAULT_CIRCUIT_DIR, ZKProver, prover_backend
from joynet.zk.quantized import QuantizedModel

BENCH_NODE = "0x" + "42" * 20
# Where the digits CNN's circuit artefacts (wasm, zkey, verification key, manifest.json with its
# constraint count) are expected; $JOYNET_CNN_CIRCUIT_DIR overrides it.
CNN_CIRCUIT_DIR = DEFAULT_CIRCUIT_DIR.with_name("digits_cnn_circuit")


class CnnCircuitUnavailable(RuntimeError):
    """The digits CNN's circuit artefacts are not built (or the prover cannot load them)."""


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


def cnn_circuit_dir() -> Path:
    return Path(os.environ.get("JOYNET_CNN_CIRCUIT_DIR") or CNN_CIRCUIT_DIR)


def measure_cnn_zk(n: int = 5, *, circuit_dir: Path | None = None) -> dict[str, float]:
    """n warm proofs of held-out digits with the digits CNN's circuit (generated with public
    weights by joynet.zk.circuitgen) and the default backend (see the module docstring);
    CnnCircuitUnavailable when its artefacts are missing or do not load."""
    from joynet.zk.digits import load_split

    circuit_dir = circuit_dir or cnn_circuit_dir()
    manifest_path = circuit_dir / "manifest.json"
    if not manifest_path.is_file():
        raise CnnCircuitUnavailable(f"no CNN circuit in {circuit_dir} (its manifest.json is missing)")
    model = QuantizedModel.load(CNN_MODEL_DIR / "model.json")
    _, images, _, _ = load_split()

    def prove(prover: ZKProver, index: int):
        values = images[index].tolist()
        inference = model.forward(values)
        signals = circuit_signals(
            model, values, random_salt(), 1 + index, BENCH_NODE, weights="public", inference=inference
        )
        return prover.prove_signals(signals, inference, 1 + index, BENCH_NODE)

    prove_seconds = []
    try:
        with ZKProver(circuit_dir) as prover:
            prove(prover, 0)  # warm-up
            for index in range(1, n + 1):
                proof = prove(prover, index)
                prove_seconds.append(proof.witness_seconds + proof.prove_seconds)
            peak_mb = sum(peak_memory_mb(pid) for pid in prover.worker_pids())
    except ZKProofError as error:
        raise CnnCircuitUnavailable(f"the CNN circuit in {circuit_dir} cannot be proven: {error}") from error
    return {
        "zk.cnn_constraints": json.loads(manifest_path.read_text())["constraints"],
        "zk.cnn_prove_seconds_p50": _median(prove_seconds),
        "zk.cnn_prove_peak_memory_mb": round(peak_mb, 1),
    }


if __name__ == "__main__":
    arguments = sys.argv[1:]
    measure = measure_zk
    if arguments[:1] == ["cnn"]:
        measure, arguments = measure_cnn_zk, arguments[1:]
    print(json.dumps(measure(int(arguments[0]) if arguments else 5), indent=1))
