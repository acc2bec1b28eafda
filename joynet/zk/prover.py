"""joynet.ZKProver: Groth16 proofs that a digits-MLP inference was computed as committed.

A ZKProver owns one long-lived Node process (joynet/zk/prover_worker.js) that keeps the wasm
witness generator, the proving key and the curve loaded, and with the native backend a second
one (joynet/zk/native_prover_worker.py, groth16py) that proves from that witness; each `prove`
costs the witness and the proof only. The proof is verified by snarkjs before it is returned.

    with ZKProver() as prover:
        proof = prover.prove(model, pixels, salt, request_id, node)
        verifier.verifyProof(*proof.verifier_args())    # DigitsMLPVerifier on chain
"""

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from eth_abi import decode, encode
from eth_utils import is_address, to_checksum_address

from joynet.zk.commitments import (
    check_salt,
    input_commitment,
    output_commitment,
    to_bytes32,
    weights_commitment,
)
from joynet.zk.errors import ZKProofError
from joynet.zk.model import Inference, QuantizedMLP, check_pixels
from joynet.zk.poseidon import SNARK_SCALAR_FIELD

logger = logging.getLogger("joynet.zk")

# The committed circuit artefacts ship with the package (circuits/build in a checkout links here;
# `make circuits` rebuilds them).
DEFAULT_CIRCUIT_DIR = Path(__file__).resolve().with_name("circuit")
WORKER = Path(__file__).with_name("prover_worker.js")
# Where the worker's Node packages (snarkjs, circom_runtime) are: $JOYNET_NODE_MODULES, else the
# checkout's node_modules (found by Node itself from the worker's path). An installed package
# names a directory holding them (`npm install snarkjs@<version of package.json>` somewhere).
NODE_MODULES_ENV = "JOYNET_NODE_MODULES"
DEFAULT_CIRCUIT_NAME = "digits_mlp"  # the artefacts are <name>.wasm, <name>.zkey, verification_key.json


def manifest_circuit_name(circuit_dir: Path) -> str:
    """The artefacts' name in a circuit directory: its manifest's circuit source's (digits_mlp
    when there is no manifest)."""
    manifest = circuit_dir / "manifest.json"
    if not manifest.is_file():
        return DEFAULT_CIRCUIT_NAME
    circuit = json.loads(manifest.read_text()).get("circuit")
    if not isinstance(circuit, str) or not circuit:
        raise ZKProofError(f"{manifest} names no circuit (circuits/build.sh writes it)")
    return Path(circuit).stem


def circuit_files(name: str = DEFAULT_CIRCUIT_NAME) -> tuple[str, str, str]:
    """The artefacts a prover loads from a circuit directory (circuits/build.sh writes them)."""
    return f"{name}.wasm", f"{name}.zkey", "verification_key.json"


# The circuit's public inputs, in the order the verifier takes them.
PUBLIC_INPUTS = ("weightsCommitment", "inputCommitment", "outputBinding")
# ZKVerifier's layout of those signals: byte i is the ZKVerifier.Signal at position i (the
# circuit's order is the registry's own: WeightsCommitment, InputCommitment, OutputBinding).
ZK_VERIFIER_LAYOUT = bytes(range(len(PUBLIC_INPUTS)))
# requestNode = requestId * 2**160 + uint160(node) names both the request and the node; request
# ids are below 2**64, so it is below 2**224. outputBinding = class * 2**224 + requestNode puts the
# output in the same public input (ZKVerifier accepts outputs below 2**29): below 2**253 < r, and
# the map is injective.
REQUEST_ID_BITS = 64
NODE_BITS = 160
OUTPUT_SHIFT = REQUEST_ID_BITS + NODE_BITS
OUTPUT_BITS = 29


def request_binding(request_id: int, node) -> int:
    """requestId * 2**160 + node: the private half of the output binding that names one request
    and one node."""
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not 0 <= request_id < 2**REQUEST_ID_BITS:
        raise ValueError(f"request_id must be an integer in [0, 2**{REQUEST_ID_BITS}), got {request_id!r}")
    _, node_uint = node_as_uint(node)
    return (request_id << NODE_BITS) | node_uint


def output_binding(output: int, request_id: int, node) -> int:
    """The public input that binds a proof to its output, one request and one node
    (ProofOfInference computes the same value from the claimed output, the request id and the
    submitting node)."""
    if not isinstance(output, int) or isinstance(output, bool) or not 0 <= output < 2**OUTPUT_BITS:
        raise ValueError(f"output must be an integer in [0, 2**{OUTPUT_BITS}), got {output!r}")
    return (output << OUTPUT_SHIFT) | request_binding(request_id, node)


def circuit_id(circuit_dir: str | Path = DEFAULT_CIRCUIT_DIR) -> bytes:
    """The circuit's id in the ZKVerifier registry: the sha-256 of its verification key (from
    the manifest), so that a new trusted setup is a new circuit the DAO must register."""
    manifest = json.loads((Path(circuit_dir) / "manifest.json").read_text())
    return bytes.fromhex(manifest["sha256"]["verification_key"])


CALLDATA_TYPES = ["uint256[2]", "uint256[2][2]", "uint256[2]"]


@dataclass(frozen=True)
class ZKProof:
    """A verified proof of one inference and everything needed to check it on chain."""

    inference: Inference  # the digits MLP's, or any quantized model's
    weights_commitment: bytes  # bytes32, big-endian field elements
    input_commitment: bytes
    output_commitment: bytes  # the class as a bytes32: the output submitResult carries
    request_id: int
    node: str  # checksummed address
    public_signals: tuple[int, ...]  # [weightsCommitment, inputCommitment, outputBinding]
    proof: dict  # snarkjs's JSON (pi_a, pi_b, pi_c in projective coordinates)
    calldata: bytes  # abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)
    witness_seconds: float
    prove_seconds: float  # the Groth16 proof alone (wall clock, in its worker)
    # The CPU time the proof took (every thread of its worker): groth16py's on one core is its
    # cost on an idle machine, however loaded this one is; snarkjs's adds up its worker threads.
    prove_cpu_seconds: float

    @property
    def label(self) -> int:
        return self.inference.label

    @property
    def logits(self) -> tuple[int, ...]:
        return self.inference.logits

    def verifier_args(self) -> tuple:
        """(a, b, c, publicSignals): the arguments of the snarkjs verifier's verifyProof."""
        return (*solidity_proof(self.proof), list(self.public_signals))


class _Proved(NamedTuple):
    """What a backend answers for one circuit input, before ZKProver.prove checks it."""

    proof: dict
    public_signals: tuple[int, ...]
    verified: bool  # by snarkjs
    witness_seconds: float
    prove_seconds: float
    prove_cpu_seconds: float


def solidity_proof(proof: dict) -> tuple[list[int], list[list[int]], list[int]]:
    """(a, b, c) as the snarkjs Solidity verifier takes them: affine coordinates, and each G2
    coordinate of b given as (imaginary, real), the order `snarkjs zkey export soliditycalldata`
    prints."""
    a = [int(v) for v in proof["pi_a"][:2]]
    b = [[int(proof["pi_b"][i][1]), int(proof["pi_b"][i][0])] for i in range(2)]
    c = [int(v) for v in proof["pi_c"][:2]]
    return a, b, c


def encode_calldata(proof: dict) -> bytes:
    return encode(CALLDATA_TYPES, list(solidity_proof(proof)))


def decode_calldata(calldata: bytes) -> tuple[list[int], list[list[int]], list[int]]:
    """The inverse of encode_calldata: (a, b, c) ready for verifyProof."""
    a, b, c = decode(CALLDATA_TYPES, calldata)
    return list(a), [list(row) for row in b], list(c)


def node_as_uint(node) -> tuple[str, int]:
    """An address (hex string, or anything with .address such as an Ape account) as
    (checksummed string, uint160)."""
    address = getattr(node, "address", node)
    if not isinstance(address, str) or not is_address(address):
        raise ValueError(f"node must be an Ethereum address, got {node!r}")
    checksummed = to_checksum_address(address)
    return checksummed, int(checksummed, 16)


def circuit_input(
    model: QuantizedMLP,
    pixels,
    salt: int,
    request_id: int,
    node,
    *,
    inference: Inference | None = None,
    weights: int | None = None,
) -> dict:
    """The witness generator's input for one inference: the public inputs (commitments computed
    here) and the private ones, every signal a decimal field element (negative weights as r - |w|).
    ``inference`` (the model's forward pass on ``pixels``) and ``weights`` (its weights
    commitment), when the caller has them already, are not computed again. Raises ValueError for
    pixels, a salt, a request id or a node the circuit cannot take."""
    pixels = check_pixels(pixels)  # ModelError is a ValueError
    check_salt(salt)
    inference = model.forward(pixels) if inference is None else inference
    public = {
        "weightsCommitment": weights_commitment(model) if weights is None else weights,
        "inputCommitment": input_commitment(pixels, salt),
        "outputBinding": output_binding(output_commitment(inference), request_id, node),
    }

    def field(value: int) -> str:
        return str(value % SNARK_SCALAR_FIELD)

    return {
        **{name: field(public[name]) for name in PUBLIC_INPUTS},
        "requestNode": field(request_binding(request_id, node)),
        "w1": [[field(w) for w in row] for row in model.w1],
        "b1": [field(b) for b in model.b1],
        "w2": [[field(w) for w in row] for row in model.w2],
        "b2": [field(b) for b in model.b2],
        "pixels": [field(p) for p in pixels],
        "salt": field(salt),
    }


def worker_environment() -> dict[str, str]:
    """The prover worker's environment: this process's, with ``$JOYNET_NODE_MODULES`` first on
    Node's module path when it is set."""
    env = dict(os.environ)
    if modules := env.get(NODE_MODULES_ENV):
        env["NODE_PATH"] = os.pathsep.join(filter(None, [modules, env.get("NODE_PATH")]))
    return env


PROVER_ENV = "JOYNET_ZK_PROVER"
BACKENDS = ("native", "snarkjs")
NATIVE_WORKER = Path(__file__).with_name("native_prover_worker.py")
NATIVE_REQUIREMENT = "groth16py==0.2.0"


def prover_backend(backend: str | None = None) -> str:
    """The Groth16 prover to use: ``backend`` if given, else $JOYNET_ZK_PROVER, else "native"
    when groth16py is installed and "snarkjs" otherwise. Raises ZKProofError for another name,
    or for "native" asked for explicitly without groth16py."""
    chosen = backend or os.environ.get(PROVER_ENV) or None
    if chosen is None:
        # find_spec locates the package without importing it: groth16py (GPL-3.0) only ever
        # runs in the native worker's own process.
        return "native" if importlib.util.find_spec("groth16py") is not None else "snarkjs"
    if chosen not in BACKENDS:
        raise ZKProofError(f"unknown ZK prover {chosen!r} (from {PROVER_ENV} or backend=): use native or snarkjs")
    if chosen == "native" and importlib.util.find_spec("groth16py") is None:
        raise ZKProofError(
            f"the native ZK prover needs groth16py: pip install {NATIVE_REQUIREMENT} (or {PROVER_ENV}=snarkjs)"
        )
    return chosen


def groth16_verifier() -> "ZKProver":
    """A ZKProver for checking others' proofs only: the snarkjs worker alone (verifying needs no
    native prover worker, whose start-up would be wasted)."""
    return ZKProver(backend="snarkjs")


class _Worker:
    """One long-lived worker process answering JSON lines on stdin with JSON lines on stdout
    (prover_worker.js, native_prover_worker.py); it answers {"ready": true, ...} once started."""

    def __init__(self, name: str, command: list[str], *, cwd: Path, start_timeout: float, request_timeout: float):
        self.name = name
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._next_id = 0
        # stderr goes to a file, not a pipe: nobody reads it while the worker runs, and a full
        # pipe would block the worker.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=cwd,
            env=worker_environment(),
        )
        # Both are pipes (PIPE above), never None; kept typed as such for the worker protocol.
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[str] = self.process.stdin
        self._stdout: IO[str] = self.process.stdout
        self.ready = self._read(start_timeout)
        if not self.ready.get("ready"):
            self.close()
            raise ZKProofError(f"the {name} did not start: {self.ready}")

    def _read(self, timeout: float) -> dict:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.kill()
            raise ZKProofError(f"the {self.name} gave no answer within {timeout:.0f} s (stopped)")
        line = result[0] if result else ""
        if not line:
            self.process.wait(timeout=10)
            self._stderr.seek(0)
            stderr = self._stderr.read().strip()[-2000:]
            hint = (
                f" (set ${NODE_MODULES_ENV} to a node_modules directory holding snarkjs)"
                if "Cannot find module" in stderr
                else ""
            )
            raise ZKProofError(f"the {self.name} exited (code {self.process.returncode}){hint}: {stderr}")
        return json.loads(line)

    def request(self, op: str, **payload) -> dict:
        with self._lock:
            if self.process.poll() is not None:
                raise ZKProofError(f"the {self.name} is not running (closed or crashed)")
            self._next_id += 1
            request_id = self._next_id
            self._stdin.write(json.dumps({"id": request_id, "op": op, **payload}) + "\n")
            self._stdin.flush()
            answer = self._read(self.request_timeout)
        if answer.get("id") != request_id:
            raise ZKProofError(f"the {self.name} answered request {answer.get('id')}, expected {request_id}")
        if "error" in answer:
            raise ZKProofError(f"the {self.name} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        """Ends the worker: EOF on its stdin lets it release its threads and exit."""
        if self.process.poll() is None:
            try:
                self._stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._stdout.close()
        self._stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class ZKProver:
    """Proves inferences with committed circuit artefacts (never reruns the ceremony): the digits
    MLP's by default, another circuit's with ``circuit_dir`` (its artefacts are named after the
    circuit its manifest names, or ``circuit_name``).

    ``backend`` (or $JOYNET_ZK_PROVER) picks the Groth16 prover: "native" (groth16py, arkworks,
    in its own process; the default when installed) or "snarkjs". Both take the witness from the
    circuit's wasm in the Node worker, use the same proving key, return snarkjs's proof JSON and
    check every proof with snarkjs's verifier before returning it."""

    def __init__(
        self,
        circuit_dir: str | Path = DEFAULT_CIRCUIT_DIR,
        *,
        circuit_name: str | None = None,
        backend: str | None = None,
        node_binary: str = "node",
        start_timeout: float = 120.0,
        request_timeout: float = 300.0,
    ):
        self.circuit_dir = Path(circuit_dir)
        files = circuit_files(circuit_name or manifest_circuit_name(self.circuit_dir))
        missing = [name for name in files if not (self.circuit_dir / name).is_file()]
        if missing:
            raise ZKProofError(
                f"circuit artefacts missing in {self.circuit_dir}: {', '.join(missing)} "
                "(they are committed; `make circuits` rebuilds them)"
            )
        self.backend = prover_backend(backend)
        node = shutil.which(node_binary)
        if node is None:
            raise ZKProofError(f"Node.js ({node_binary!r}) not found on PATH; the prover worker needs it")
        wasm, zkey, vkey = (str(self.circuit_dir / name) for name in files)
        zkey_mb = Path(zkey).stat().st_size / 2**20
        logger.info("starting the %s ZK prover (loading a %.1f MB proving key)", self.backend, zkey_mb)
        started = time.monotonic()
        timeouts = {"start_timeout": start_timeout, "request_timeout": request_timeout}
        self._native: _Worker | None = None
        self._scratch: str | None = None
        self._worker = _Worker("prover worker", [node, str(WORKER), wasm, zkey, vkey], cwd=self.circuit_dir, **timeouts)
        try:
            self._check_public_inputs(self._worker)
            if self.backend == "native":
                command = [sys.executable, str(NATIVE_WORKER), zkey, vkey]
                self._native = _Worker("native prover worker", command, cwd=self.circuit_dir, **timeouts)
                self._check_public_inputs(self._native)
                # The witness goes from one worker to the other as a .wtns file, in memory where
                # the system has a tmpfs.
                shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
                self._scratch = tempfile.mkdtemp(prefix="joynet-zk-", dir=shm)
        except BaseException:
            self.close()
            raise
        logger.info("%s ZK prover ready in %.1f s", self.backend, time.monotonic() - started)

    @staticmethod
    def _check_public_inputs(worker: _Worker) -> None:
        if worker.ready.get("nPublic") != len(PUBLIC_INPUTS):
            raise ZKProofError(
                f"the verification key has {worker.ready.get('nPublic')} public inputs, expected {len(PUBLIC_INPUTS)}"
            )

    def _request(self, op: str, **payload) -> dict:
        return self._worker.request(op, **payload)

    def _prove_signals(self, signals_in: dict) -> "_Proved":
        if self._native is None:
            answer = self._request("prove", input=signals_in)
            signals = tuple(int(v) for v in answer["publicSignals"])
            seconds = (answer["witnessSeconds"], answer["proveSeconds"], answer["proveCpuSeconds"])
            return _Proved(answer["proof"], signals, answer["verified"], *seconds)
        assert self._scratch is not None  # made with the native worker
        wtns = os.path.join(self._scratch, f"witness-{threading.get_ident()}.wtns")
        try:
            witness = self._request("wtns", input=signals_in, path=wtns)
            proved = self._native.request("prove", wtns=wtns)
        finally:
            if os.path.exists(wtns):
                os.remove(wtns)
        # The public inputs are the circuit's inputs: the proof must verify for exactly these.
        signals = tuple(int(signals_in[name]) for name in PUBLIC_INPUTS)
        verified = self.verify(signals, proved["proof"])
        seconds = (witness["witnessSeconds"], proved["proveSeconds"], proved["proveCpuSeconds"])
        return _Proved(proved["proof"], signals, verified, *seconds)

    # ---- API ----

    def prove(
        self,
        model: QuantizedMLP,
        pixels,
        salt: int,
        request_id: int,
        node,
        *,
        inference: Inference | None = None,
        weights: int | None = None,
    ) -> ZKProof:
        """Runs the model on `pixels` (64 integers 0..16) and proves it, bound to `request_id` and
        `node`. The input commitment is salted with `salt` (a field element; see random_salt).
        A caller that ran the model already passes its ``inference`` (and the model's
        ``weights`` commitment): neither is computed again before the witness."""
        inference = model.forward(pixels) if inference is None else inference
        signals_in = circuit_input(model, pixels, salt, request_id, node, inference=inference, weights=weights)
        return self.prove_signals(signals_in, inference, request_id, node)

    def prove_signals(self, signals_in: dict, inference: Inference, request_id: int, node) -> ZKProof:
        """Proves a circuit input already built (:func:`circuit_input` for the digits MLP,
        ``joynet.zk.circuitgen.circuit_signals`` for a generated circuit) whose ``inference`` (the
        reference forward pass: ``label`` and ``logits``) is known, bound to ``request_id`` and
        ``node`` (the ones its outputBinding names); the proof is checked by snarkjs before it is
        returned."""
        node_address, _ = node_as_uint(node)
        logger.info("proving inference for request %d (class %d) ...", request_id, inference.label)
        proved = self._prove_signals(signals_in)
        proof, signals = proved.proof, proved.public_signals
        expected = tuple(int(signals_in[name]) for name in PUBLIC_INPUTS)
        if signals != expected:
            raise ZKProofError(f"the proof's public signals {signals} differ from the expected {expected}")
        if not proved.verified:
            raise ZKProofError("the proof does not verify against the verification key")
        if signals[2] != output_binding(inference.label, request_id, node):
            raise ZKProofError("the circuit input's output binding does not name this inference, request and node")
        logger.info(
            "proof for request %d ready (%s): witness %.2f s, proof %.2f s, verified locally",
            request_id,
            self.backend,
            proved.witness_seconds,
            proved.prove_seconds,
        )
        return ZKProof(
            inference=inference,
            weights_commitment=to_bytes32(signals[0]),
            input_commitment=to_bytes32(signals[1]),
            output_commitment=to_bytes32(signals[2] >> OUTPUT_SHIFT),
            request_id=request_id,
            node=node_address,
            public_signals=signals,
            proof=proof,
            calldata=encode_calldata(proof),
            witness_seconds=proved.witness_seconds,
            prove_seconds=proved.prove_seconds,
            prove_cpu_seconds=proved.prove_cpu_seconds,
        )

    def check_witness(self, signals_in: dict) -> float:
        """Computes the witness of a circuit input with every constraint checked, and discards it
        (cheaper than :meth:`witness`, which sends every wire back); returns the witness seconds.
        Raises ZKProofError when the input violates a constraint."""
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.TemporaryDirectory(prefix="joynet-zk-check-", dir=shm) as scratch:
            answer = self._request("wtns", input=signals_in, path=os.path.join(scratch, "check.wtns"))
        return float(answer["witnessSeconds"])

    def witness(self, signals_in: dict) -> list[int]:
        """Every wire of the witness for a circuit input (see circuit_input); raises ZKProofError
        when the input violates a constraint. For tests and debugging: prove() needs no call."""
        return [int(v) for v in self._request("witness", input=signals_in)["witness"]]

    def verify(self, public_signals, proof: dict, verification_key: dict | None = None) -> bool:
        """Checks a snarkjs proof against the verification key (off chain): this prover's own, or
        ``verification_key`` (snarkjs's JSON of another circuit with the protocol's public inputs,
        e.g. a model package's)."""
        signals = [str(int(v)) for v in public_signals]
        if len(signals) != len(PUBLIC_INPUTS):
            raise ValueError(f"expected {len(PUBLIC_INPUTS)} public signals, got {len(signals)}")
        key = {} if verification_key is None else {"vkey": verification_key}
        return bool(self._request("verify", publicSignals=signals, proof=proof, **key)["verified"])

    def worker_pids(self) -> list[int]:
        """The process ids of the prover's workers (the Node worker, and the native one when it
        proves): what a benchmark reads the proving's memory from."""
        return [worker.process.pid for worker in (self._worker, self._native) if worker is not None]

    def close(self) -> None:
        """Ends the workers (EOF on their stdin lets them exit) and removes the scratch directory."""
        for worker in (getattr(self, "_worker", None), getattr(self, "_native", None)):
            if worker is not None:
                worker.close()
        if getattr(self, "_scratch", None):
            shutil.rmtree(str(self._scratch), ignore_errors=True)

    def __enter__(self) -> "ZKProver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        for worker in (getattr(self, "_worker", None), getattr(self, "_native", None)):
            if worker is not None and worker.process.poll() is None:
                worker.process.kill()
