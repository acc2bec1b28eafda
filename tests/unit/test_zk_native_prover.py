"""The native Groth16 prover (groth16py, arkworks, in joynet/zk/native_prover_worker.py): its
proofs are snarkjs's JSON, accepted by the snarkjs command line's `groth16 verify` and refused
once tampered; its worker refuses a proving key of another setup, answers an unreadable witness
with a clear error and goes on, and what it proves from a witness that breaks the circuit's
constraints does not verify; JOYNET_ZK_PROVER picks the backend. (tests/contracts/
test_zk_verifier.py checks its proofs in DigitsMLPVerifier on chain.)"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from helpers import PROJECT_ROOT

from joynet import ZKProofError, ZKProver
from joynet.zk import PUBLIC_INPUTS, circuit_input
from joynet.zk.prover import DEFAULT_CIRCUIT_DIR, NATIVE_WORKER, PROVER_ENV, prover_backend

NODE = "0x" + "cd" * 20
SNARKJS = PROJECT_ROOT / "node_modules" / ".bin" / "snarkjs"
# The BN254 base field: negating a G1 point is (x, q - y), a valid point that breaks the proof.
BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583
WTNS_HEADER = 76  # "wtns", version, 2 sections; section 1 (n8, prime, wire count); section 2's header


@pytest.fixture(scope="module")
def native_prover():
    with ZKProver(backend="native") as instance:
        yield instance


@pytest.fixture(scope="module")
def native_proof(native_prover, model):
    return native_prover.prove(model, [5] * 64, salt=777, request_id=9, node=NODE)


def snarkjs_verify(tmp_path, public_signals, proof) -> subprocess.CompletedProcess:
    """`snarkjs groth16 verify` on the committed verification key, as a separate program."""
    (tmp_path / "public.json").write_text(json.dumps([str(v) for v in public_signals]))
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    command = [str(SNARKJS), "groth16", "verify", str(DEFAULT_CIRCUIT_DIR / "verification_key.json"),
               str(tmp_path / "public.json"), str(tmp_path / "proof.json")]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_prove__native__proof_in_snarkjs_json_accepted_by_snarkjs_cli(native_prover, native_proof, tmp_path):
    assert native_prover.backend == "native"
    assert set(native_proof.proof) >= {"pi_a", "pi_b", "pi_c", "protocol", "curve"}
    assert native_proof.proof["pi_a"][2] == "1" and native_proof.proof["pi_b"][2] == ["1", "0"]
    checked = snarkjs_verify(tmp_path, native_proof.public_signals, native_proof.proof)
    assert checked.returncode == 0 and "OK" in checked.stdout


def test_prove__native_proof_tampered__rejected_by_snarkjs_cli_and_worker(native_prover, native_proof, tmp_path):
    tampered = json.loads(json.dumps(native_proof.proof))
    tampered["pi_a"][1] = str(BASE_FIELD - int(tampered["pi_a"][1]))
    checked = snarkjs_verify(tmp_path, native_proof.public_signals, tampered)
    assert checked.returncode != 0 and "Invalid proof" in checked.stdout + checked.stderr
    assert not native_prover.verify(native_proof.public_signals, tampered)
    assert not native_prover._native.request("verify", publicSignals=list(native_proof.public_signals),
                                             proof=tampered)["verified"]
    assert native_prover._native.request("verify", publicSignals=list(native_proof.public_signals),
                                         proof=native_proof.proof)["verified"]


@pytest.mark.parametrize("content, message", [
    (b"not a witness", "not a .wtns file"),
    (None, "cannot read"),
])
def test_native_worker__unreadable_witness__clear_error_and_worker_goes_on(native_prover, model, tmp_path,
                                                                          content, message):
    path = tmp_path / "witness.wtns"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ZKProofError, match=f"native prover worker failed: WitnessError: {message}"):
        native_prover._native.request("prove", wtns=str(path))
    assert native_prover.prove(model, [1] * 64, salt=3, request_id=1, node=NODE).label in range(10)


def test_prove__native__input_of_another_class__witness_refused_with_the_circuits_error(native_prover, model):
    """The native path's witness comes from the circuit's wasm too: an output binding that is not
    the network's class fails there, with the circuit's message, before anything is proven."""
    signals_in = circuit_input(model, [4] * 64, 5, 3, NODE)
    signals_in["outputBinding"] = str(int(signals_in["outputBinding"]) ^ (1 << 224))  # class ^ 1
    with pytest.raises(ZKProofError, match="prover worker failed: .*Assert Failed"):
        native_prover._prove_signals(signals_in)


def test_native_worker__witness_breaking_the_constraints__proof_does_not_verify(native_prover, model, tmp_path):
    """groth16py proves whatever witness it is given: the snarkjs check in ZKProver.prove is what
    refuses a proof of a witness that does not satisfy the circuit."""
    signals_in = circuit_input(model, [2] * 64, 5, 3, NODE)
    path = tmp_path / "witness.wtns"
    native_prover._request("wtns", input=signals_in, path=str(path))
    data = bytearray(path.read_bytes())
    data[-32] ^= 1  # the last wire, a private one
    path.write_bytes(bytes(data))
    proof = native_prover._native.request("prove", wtns=str(path))["proof"]
    assert not native_prover.verify([int(signals_in[name]) for name in PUBLIC_INPUTS], proof)


def test_native_worker__verification_key_of_another_setup__refuses_to_start(tmp_path):
    vkey = json.loads((DEFAULT_CIRCUIT_DIR / "verification_key.json").read_text())
    vkey["vk_delta_2"] = vkey["vk_gamma_2"]
    (tmp_path / "verification_key.json").write_text(json.dumps(vkey))
    command = [sys.executable, str(NATIVE_WORKER), str(DEFAULT_CIRCUIT_DIR / "digits_mlp.zkey"),
               str(tmp_path / "verification_key.json")]
    started = subprocess.run(command, input="", capture_output=True, text=True, timeout=120)
    assert started.returncode != 0 and started.stdout == ""
    assert "does not match the verification key (vk_delta_2 differs)" in started.stderr


def test_prover_backend__environment__picks_it_and_the_argument_wins(monkeypatch):
    monkeypatch.setenv(PROVER_ENV, "snarkjs")
    assert prover_backend() == "snarkjs"
    assert prover_backend("native") == "native"
    with ZKProver() as prover:
        assert prover.backend == "snarkjs" and prover._native is None


def test_prover_backend__unset__native_when_groth16py_is_installed(monkeypatch):
    monkeypatch.delenv(PROVER_ENV, raising=False)
    assert prover_backend() == "native"


@pytest.mark.parametrize("name", ["rapidsnark", "NATIVE"])
def test_prover_backend__unknown_name__raises(monkeypatch, name):
    monkeypatch.setenv(PROVER_ENV, name)
    with pytest.raises(ZKProofError, match="unknown ZK prover .* use native or snarkjs"):
        ZKProver()


def test_prover_backend__groth16py_missing__snarkjs_by_default_and_native_refused(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "groth16py" else find_spec(name, *a))
    monkeypatch.delenv(PROVER_ENV, raising=False)
    assert prover_backend() == "snarkjs"
    with pytest.raises(ZKProofError, match=r"pip install groth16py==0\.2\.0"):
        prover_backend("native")


@pytest.mark.parametrize(("backend", "count"), [("native", 2), ("snarkjs", 1)])
def test_worker_pids__each_backend__its_running_workers(backend, count):
    with ZKProver(backend=backend) as prover:
        pids = prover.worker_pids()
        assert len(set(pids)) == count
        for pid in pids:
            os.kill(pid, 0)  # alive: no ProcessLookupError
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_close__native__both_workers_gone_and_scratch_removed(model):
    prover = ZKProver(backend="native")
    scratch = prover._scratch
    prover.close()
    assert prover._worker.process.poll() == 0 and prover._native.process.poll() == 0
    assert scratch is not None and not os.path.exists(scratch)
    with pytest.raises(ZKProofError, match="not running"):
        prover.prove(model, [0] * 64, 1, 1, NODE)


def test_prove__native__cpu_time_of_the_proof_on_one_core(native_proof):
    """groth16py proves on one thread: the proof's CPU time is at most its wall time (plus the
    clocks' granularity), whatever else runs on the machine."""
    assert 0.05 < native_proof.prove_cpu_seconds <= native_proof.prove_seconds + 0.02

