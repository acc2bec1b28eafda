"""The long-lived native proving process behind joynet.ZKProver(backend="native").

A separate program, not a module that joynet imports: it is the only code that loads groth16py
(arkworks's Groth16 prover with Python bindings, GPL-3.0), so groth16py runs in its own process
and talks to the MIT-licensed package over a pipe, the way snarkjs does in prover_worker.js.

It imports the snarkjs proving key once (refusing one from another ceremony than the
verification key), then answers one JSON request per stdin line with one JSON line on stdout:

    python native_prover_worker.py <circuit.zkey> <verification_key.json>
    -> {"ready": true, "nPublic": 3, "groth16py": "0.2.0"}
    <- {"id": 1, "op": "prove", "wtns": "/path/to/witness.wtns"}
    -> {"id": 1, "proof": {...snarkjs JSON...}, "proveSeconds": 0.33, "proveCpuSeconds": 0.32}
    <- {"id": 2, "op": "verify", "publicSignals": ["1", ...], "proof": {...}}
    -> {"id": 2, "verified": true}

The witness is snarkjs's .wtns file (from the circuit's wasm witness calculator).
proveCpuSeconds is the CPU time this process spent on the proof (groth16py uses one thread): unlike
proveSeconds it does not grow when other programs take the core. A failed
request answers {"id": n, "error": "..."}; the process goes on. EOF on stdin ends it.
"""

import json
import os
import sys
import time

import groth16py

# The verification key's fields that the proving key must carry unchanged.
KEY_FIELDS = ("nPublic", "vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC")
WORD = 32


def snarkjs_proof(blob: bytes) -> dict:
    """groth16py's Ethereum proof (eight big-endian words: a.x, a.y, b.x as (imaginary, real),
    b.y the same, c.x, c.y) as snarkjs's JSON, projective coordinates with z = 1."""
    if len(blob) != 8 * WORD:
        raise ValueError(f"a Groth16 proof is {8 * WORD} bytes, got {len(blob)}")
    words = [str(int.from_bytes(blob[i : i + WORD], "big")) for i in range(0, len(blob), WORD)]
    return {
        "pi_a": [words[0], words[1], "1"],
        "pi_b": [[words[3], words[2]], [words[5], words[4]], ["1", "0"]],
        "pi_c": [words[6], words[7], "1"],
        "protocol": "groth16",
        "curve": "bn128",
    }


def main() -> None:
    zkey_path, vkey_path = sys.argv[1:3]
    # The protocol owns stdout: anything the native library prints goes to stderr instead.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    proving_key, zkey_verifying_key = groth16py.import_zkey(zkey_path)
    vkey = json.loads(open(vkey_path).read())
    from_zkey = json.loads(zkey_verifying_key.to_json())
    expected = json.loads(groth16py.VerifyingKey.from_snarkjs(json.dumps(vkey)).to_json())
    for field in KEY_FIELDS:
        if from_zkey.get(field) != expected.get(field):
            raise SystemExit(f"the proving key does not match the verification key ({field} differs)")
    verifier = groth16py.Verifier(zkey_verifying_key)

    def prove(request: dict) -> dict:
        started, cpu = time.perf_counter(), time.process_time()
        blob = groth16py.prove_wtns(proving_key, request["wtns"])
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        return {"proof": snarkjs_proof(blob), "proveSeconds": seconds, "proveCpuSeconds": cpu_seconds}

    def verify(request: dict) -> dict:
        signals = json.dumps([str(v) for v in request["publicSignals"]])
        return {"verified": bool(verifier.verify_snarkjs(json.dumps(request["proof"]), signals))}

    handlers = {"prove": prove, "verify": verify}
    reply({"ready": True, "nPublic": vkey["nPublic"], "groth16py": groth16py.__version__})
    for line in sys.stdin:
        if not line.strip():
            continue
        request: dict = {}
        try:
            request = json.loads(line)
            handler = handlers.get(str(request.get("op")))
            if handler is None:
                raise ValueError(f"unknown op {request.get('op')!r}")
            reply({"id": request.get("id"), **handler(request)})
        except Exception as error:  # one failed request must not end the worker
            reply({"id": request.get("id"), "error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    main()
