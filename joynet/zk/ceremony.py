"""Multi-party phase-2 trusted setups (Groth16) with a transcript anyone can check.

A ceremony lives in one directory that is handed from contributor to contributor::

    ceremony/
      circuit.r1cs          the circuit (copied in by init)
      transcript.json       every step, in order: name, contribution hash, zkey sha256, times
      zkeys/0000.zkey       contribution 0 (snarkjs zkey new), then one zkey per contribution
      verification_key.json, Verifier.sol, transcript-digest.txt   (written by export)

Each step runs snarkjs as a separate program (it is GPL-3.0): ``zkey new``, ``zkey contribute``
(its entropy typed on its stdin from ``os.urandom``; snarkjs mixes in its own randomness too),
``zkey beacon``, and ``zkey verify`` with the verification key's export (in one Node process,
``ceremony_verify.js``, on snarkjs's library). The final zkey carries its whole contribution history;
``verify_ceremony`` re-runs ``snarkjs zkey verify`` against the r1cs and the powers of tau and
checks that history, entry by entry, against the transcript. The setup is secure as long as one
contributor destroyed their entropy; the transcript tells who contributed, the verification tells
that the key really is the product of those contributions.

    init_ceremony("circuit.r1cs", "pot14_final.ptau", "ceremony")
    contribute("ceremony", "alice")      # on alice's machine, then the directory goes on to bob
    contribute("ceremony", "bob")
    apply_beacon("ceremony", "<a future block hash>", 10)
    result = verify_ceremony("ceremony")  # CeremonyError with a one-line reason on any mismatch
    export_ceremony("ceremony")
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joynet.zk.errors import CeremonyError
from joynet.zk.prover import NODE_MODULES_ENV, worker_environment

TRANSCRIPT = "transcript.json"
R1CS = "circuit.r1cs"
ZKEYS = "zkeys"
VERIFICATION_KEY = "verification_key.json"
SOLIDITY_VERIFIER = "Verifier.sol"
DIGEST = "transcript-digest.txt"
TRANSCRIPT_VERSION = 1
ENTROPY_BYTES = 64
# zkey verify and export verificationkey in one Node process (half the start-ups of the CLI's two).
VERIFY_SCRIPT = Path(__file__).with_name("ceremony_verify.js")
# snarkjs's logger colours its lines; the parser reads them plain.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CONTRIBUTION_LINE = re.compile(r"contribution #(\d+) (.*):$")
HASH_WORDS = re.compile(r"^\s*((?:[0-9a-f]{8}\s+){3}[0-9a-f]{8})\s*$")
BEACON_LINE = re.compile(r"Beacon generator: ([0-9a-fA-F]+)")
ITERATIONS_LINE = re.compile(r"Beacon iterations Exp: (\d+)")
HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})+$")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def snarkjs_command() -> list[str]:
    """How snarkjs's CLI is run: Node on ``$JOYNET_NODE_MODULES/snarkjs`` when that is set, else
    on the checkout's node_modules."""
    modules = os.environ.get(NODE_MODULES_ENV) or str(Path(__file__).resolve().parents[2] / "node_modules")
    cli = Path(modules) / "snarkjs" / "build" / "cli.cjs"
    if not cli.is_file():
        raise CeremonyError(f"snarkjs not found at {cli} (set ${NODE_MODULES_ENV} to a node_modules holding snarkjs)")
    return ["node", "--max-old-space-size=4096", str(cli)]


def snarkjs(*args: str | Path, stdin: str | None = None, what: str = "snarkjs") -> str:
    """Runs ``snarkjs args`` and returns its output without colours; CeremonyError with the
    last error line when it fails."""
    return _node([*snarkjs_command(), *map(str, args)], stdin, what)


def _node(command: list[str], stdin: str | None, what: str) -> str:
    process = subprocess.run(
        command,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env={**worker_environment(), "FORCE_COLOR": "0"},
        check=False,
    )
    output = ANSI.sub("", process.stdout + process.stderr)
    if process.returncode != 0 or "[ERROR]" in output:
        errors = [line for line in output.splitlines() if "ERROR" in line or "Error" in line] or output.splitlines()
        reason = errors[-1].split("snarkJS:", 1)[-1].strip() if errors else f"exit code {process.returncode}"
        raise CeremonyError(f"{what} failed: {reason}")
    return output


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- the transcript ----


def load_transcript(directory: str | Path) -> dict:
    """The ceremony's transcript; CeremonyError when the directory has none or it is not JSON."""
    path = Path(directory) / TRANSCRIPT
    if not Path(directory).is_dir():
        raise CeremonyError(f"no ceremony directory {directory}")
    try:
        transcript = json.loads(path.read_text())
    except FileNotFoundError:
        raise CeremonyError(f"{path} is missing: not a ceremony directory (joynet ceremony init makes one)") from None
    except json.JSONDecodeError as err:
        raise CeremonyError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(transcript, dict) or transcript.get("version") != TRANSCRIPT_VERSION:
        raise CeremonyError(f"{path} is not a version-{TRANSCRIPT_VERSION} ceremony transcript")
    if not isinstance(transcript.get("steps"), list) or not transcript["steps"]:
        raise CeremonyError(f"{path} has no steps")
    return transcript


def _save_transcript(directory: Path, transcript: dict) -> None:
    temporary = directory / (TRANSCRIPT + ".tmp")
    temporary.write_text(json.dumps(transcript, indent=2) + "\n")
    temporary.replace(directory / TRANSCRIPT)


def transcript_digest(transcript: dict) -> str:
    """sha256 of the transcript in canonical JSON (sorted keys, no spaces): what a proposal and
    the export name it by."""
    return hashlib.sha256(json.dumps(transcript, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _hash_words(lines: list[str], start: int) -> str:
    """The 64-byte hash snarkjs prints as four lines of four 8-digit words after line ``start``."""
    words: list[str] = []
    for line in lines[start + 1 : start + 5]:
        match = HASH_WORDS.match(line.split("snarkJS:", 1)[-1])
        if not match:
            raise CeremonyError(f"cannot read a hash from snarkjs's output near {lines[start].strip()!r}")
        words.extend(match.group(1).split())
    return "".join(words)


def _printed_hash(output: str, label: str) -> str:
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.rstrip().endswith(label):
            return _hash_words(lines, index)
    raise CeremonyError(f"snarkjs printed no {label!r}")


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CeremonyError(f"{what} {path} does not exist")
    return path


def _check_hex(value: str, what: str) -> str:
    if not HEX.match(value or ""):
        raise CeremonyError(f"{what} must be hex bytes (e.g. a block hash), got {value!r}")
    return value.removeprefix("0x").lower()


# ---- the steps ----


def init_ceremony(r1cs: str | Path, ptau: str | Path, directory: str | Path, progress: Progress = _quiet) -> dict:
    """Contribution 0: ``snarkjs zkey new`` of ``r1cs`` with the powers of tau ``ptau``, in a new
    ``directory`` (which must not hold a ceremony already). Returns the transcript."""
    r1cs, ptau, directory = _require_file(r1cs, "r1cs"), _require_file(ptau, "powers of tau"), Path(directory)
    if (directory / TRANSCRIPT).exists():
        raise CeremonyError(f"{directory} already holds a ceremony ({TRANSCRIPT})")
    if r1cs.read_bytes()[:4] != b"r1cs":
        raise CeremonyError(f"{r1cs} is not an R1CS file")
    (directory / ZKEYS).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(r1cs, directory / R1CS)
    zkey = directory / ZKEYS / "0000.zkey"
    started = _now()
    progress(f"zkey new {r1cs.name} with {ptau.name} (Groth16 setup; minutes for a large circuit)")
    output = snarkjs("zkey", "new", directory / R1CS, ptau, zkey, what="snarkjs zkey new")
    transcript = {
        "version": TRANSCRIPT_VERSION,
        "circuit": {
            "r1cs_sha256": sha256_file(directory / R1CS),
            "circuit_hash": _printed_hash(output, "Circuit hash:"),
        },
        "ptau": {"file": str(ptau.resolve()), "sha256": sha256_file(ptau)},
        "steps": [
            {
                "index": 0,
                "kind": "new",
                "zkey": f"{ZKEYS}/{zkey.name}",
                "zkey_sha256": sha256_file(zkey),
                "started": started,
                "finished": _now(),
            }
        ],
    }
    _save_transcript(directory, transcript)
    return transcript


def _last_zkey(directory: Path, transcript: dict) -> tuple[dict, Path]:
    """The last step and its zkey, once the zkey is checked to be the one the transcript names."""
    last = transcript["steps"][-1]
    if last["kind"] == "beacon":
        raise CeremonyError("the ceremony is closed: the beacon was its last step")
    zkey = directory / last["zkey"]
    if not zkey.is_file():
        raise CeremonyError(f"{zkey} (step {last['index']}) is missing")
    if sha256_file(zkey) != last["zkey_sha256"]:
        raise CeremonyError(f"{zkey} is not the zkey step {last['index']} recorded (sha256 differs)")
    return last, zkey


def contribute(directory: str | Path, name: str, progress: Progress = _quiet) -> dict:
    """Appends a contribution by ``name`` to the last zkey; the entropy comes from the operating
    system (never from the caller). Returns the transcript's new step."""
    if not name or not name.strip() or "\n" in name:
        raise CeremonyError("a contribution needs a --name on one line")

    def run(previous: Path, zkey: Path) -> str:
        progress(f"contribution by {name} (snarkjs zkey contribute)")
        return snarkjs(
            "zkey", "contribute", previous, zkey, f"--name={name}",
            stdin=os.urandom(ENTROPY_BYTES).hex() + "\n", what="snarkjs zkey contribute",
        )  # fmt: skip

    return _append_step(Path(directory), {"kind": "contribution", "name": name}, run)


def apply_beacon(directory: str | Path, beacon: str, iterations: int, progress: Progress = _quiet) -> dict:
    """The last step: a contribution derived from a public random value ``beacon`` (hex, e.g. a
    block hash fixed before it was known) hashed 2**``iterations`` times. Returns the step."""
    beacon = _check_hex(beacon, "--beacon")
    if not isinstance(iterations, int) or not 10 <= iterations <= 63:
        raise CeremonyError(
            f"--iterations must be between 10 and 63 (snarkjs hashes the beacon 2^N times), got {iterations}"
        )

    def run(previous: Path, zkey: Path) -> str:
        progress(f"beacon 0x{beacon[:16]}... with 2^{iterations} iterations (snarkjs zkey beacon)")
        return snarkjs(
            "zkey", "beacon", previous, zkey, beacon, str(iterations), "--name=beacon", what="snarkjs zkey beacon"
        )

    step = {"kind": "beacon", "name": "beacon", "beacon": beacon, "iterations": iterations}
    return _append_step(Path(directory), step, run)


def _append_step(directory: Path, fields: dict, run: Callable[[Path, Path], str]) -> dict:
    """Runs ``run(last zkey, next zkey)`` (a snarkjs step printing its contribution hash) and
    records the step (``fields`` plus its index, hash, zkey and times) in the transcript."""
    transcript = load_transcript(directory)
    last, previous = _last_zkey(directory, transcript)
    if fields["kind"] == "beacon" and last["kind"] == "new":
        raise CeremonyError("no contribution yet: a beacon alone would leave the setup known to everyone")
    index = last["index"] + 1
    zkey = directory / ZKEYS / f"{index:04d}.zkey"
    started = _now()
    output = run(previous, zkey)
    step = {
        "index": index,
        **fields,
        "contribution_hash": _printed_hash(output, "Contribution Hash:"),
        "zkey": f"{ZKEYS}/{zkey.name}",
        "zkey_sha256": sha256_file(zkey),
        "started": started,
        "finished": _now(),
    }
    transcript["steps"].append(step)
    _save_transcript(directory, transcript)
    return step


# ---- verification ----


@dataclass(frozen=True)
class CeremonyVerification:
    """What ``verify_ceremony`` established."""

    transcript: dict
    final_zkey: Path
    zkey_sha256: str
    verification_key: dict
    verification_key_bytes: bytes  # as ``snarkjs zkey export verificationkey`` writes it
    contributions: tuple[dict, ...]  # every step after contribution 0, in order

    @property
    def circuit_id(self) -> bytes:
        """The circuit's id in the ZKVerifier registry: sha256 of its verification key file."""
        return hashlib.sha256(self.verification_key_bytes).digest()

    @property
    def digest(self) -> str:
        return transcript_digest(self.transcript)


def zkey_contributions(output: str) -> list[dict]:
    """The contributions ``snarkjs zkey verify`` printed (it prints the last first), in order:
    index, name, contribution hash and, for a beacon, its value and iterations."""
    lines = output.splitlines()
    found: list[dict] = []
    for position, line in enumerate(lines):
        match = CONTRIBUTION_LINE.search(line.strip())
        if not match:
            continue
        entry: dict[str, Any] = {
            "index": int(match.group(1)),
            "name": match.group(2),
            "hash": _hash_words(lines, position),
        }
        for following in lines[position + 5 : position + 7]:
            if beacon := BEACON_LINE.search(following):
                entry["beacon"] = beacon.group(1).lower()
            if iterations := ITERATIONS_LINE.search(following):
                entry["iterations"] = int(iterations.group(1))
        found.append(entry)
    return sorted(found, key=lambda entry: entry["index"])


def verify_ceremony(
    directory: str | Path, ptau: str | Path | None = None, progress: Progress = _quiet
) -> CeremonyVerification:
    """Checks the whole ceremony: the r1cs and powers of tau are the transcript's, ``snarkjs zkey
    verify`` accepts the final zkey against them, each contribution it reports is the transcript's
    step (same order, name and hash; the beacon's value and iterations), and an exported
    verification key and Solidity verifier (if any) are the final zkey's. ``ptau`` overrides the
    file the transcript recorded (same sha256 required). CeremonyError with one line on any
    mismatch."""
    directory = Path(directory)
    transcript = load_transcript(directory)
    steps = transcript["steps"]
    r1cs = _require_file(directory / R1CS, "r1cs")
    if sha256_file(r1cs) != transcript["circuit"]["r1cs_sha256"]:
        raise CeremonyError(f"{r1cs} is not the circuit of the transcript (sha256 differs)")
    ptau = _require_file(ptau or transcript["ptau"]["file"], "powers of tau")
    if sha256_file(ptau) != transcript["ptau"]["sha256"]:
        raise CeremonyError(f"{ptau} is not the powers of tau of the transcript (sha256 differs)")
    for position, step in enumerate(steps):
        if step.get("index") != position:
            raise CeremonyError(
                f"transcript step {position} is numbered {step.get('index')}: steps removed or reordered"
            )
    final = steps[-1]
    zkey = _require_file(directory / final["zkey"], "final zkey")
    zkey_sha256 = sha256_file(zkey)
    if zkey_sha256 != final["zkey_sha256"]:
        raise CeremonyError(f"{zkey} is not the zkey the transcript's last step recorded (sha256 differs)")
    progress(f"snarkjs zkey verify {zkey.name} against {r1cs.name} and {ptau.name}")
    with tempfile.TemporaryDirectory(prefix="joynet-ceremony-") as scratch:
        vkey_path = Path(scratch) / VERIFICATION_KEY
        command = ["node", "--max-old-space-size=4096", str(VERIFY_SCRIPT), *map(str, (r1cs, ptau, zkey, vkey_path))]
        output = _node(command, None, "snarkjs zkey verify")
        if "ZKey Ok!" not in output:
            raise CeremonyError(f"snarkjs zkey verify did not accept {zkey}")
        vkey_bytes = vkey_path.read_bytes()
    if (printed := _printed_hash(output, "Circuit Hash:")) != transcript["circuit"]["circuit_hash"]:
        raise CeremonyError(f"the zkey's circuit hash {printed[:16]}... is not the transcript's")
    _match_contributions(zkey_contributions(output), steps[1:])
    vkey = json.loads(vkey_bytes)
    exported = directory / VERIFICATION_KEY
    if exported.exists() and exported.read_bytes() != vkey_bytes:
        raise CeremonyError(f"{exported} is not the final zkey's verification key")
    verifier = directory / SOLIDITY_VERIFIER
    if verifier.exists():
        check_solidity_verifier(verifier.read_text(), vkey)
    return CeremonyVerification(transcript, zkey, zkey_sha256, vkey, vkey_bytes, tuple(steps[1:]))


def _match_contributions(in_zkey: list[dict], recorded: list[dict]) -> None:
    for position in range(max(len(in_zkey), len(recorded))):
        if position >= len(recorded):
            raise CeremonyError(
                f"the zkey has contribution #{in_zkey[position]['index']} ({in_zkey[position]['name']}) the transcript lacks"
            )
        step = recorded[position]
        if position >= len(in_zkey):
            raise CeremonyError(
                f"transcript step {step['index']} ({step.get('name')}, {step['contribution_hash'][:16]}...) is not in the zkey"
            )
        found = in_zkey[position]
        if found["hash"] != step["contribution_hash"] or found["index"] != step["index"]:
            raise CeremonyError(
                f"transcript step {step['index']} ({step.get('name')}) has contribution hash "
                f"{step['contribution_hash'][:16]}..., the zkey's #{found['index']} is {found['name']} {found['hash'][:16]}..."
            )
        if found["name"] != step.get("name"):
            raise CeremonyError(
                f"transcript step {step['index']} is named {step.get('name')!r}, the zkey's {found['name']!r}"
            )
        if (step["kind"] == "beacon") != ("beacon" in found):
            raise CeremonyError(f"transcript step {step['index']} is a {step['kind']}, the zkey's is not")
        if step["kind"] == "beacon" and (found["beacon"], found.get("iterations")) != (
            step["beacon"],
            step["iterations"],
        ):
            raise CeremonyError(
                f"the beacon recorded ({step['beacon'][:16]}..., 2^{step['iterations']}) is not the zkey's "
                f"({found['beacon'][:16]}..., 2^{found.get('iterations')})"
            )


# ---- the Solidity verifier ----

SOLIDITY_CONSTANT = re.compile(r"uint256\s+constant\s+(\w+)\s*=\s*(\d+)\s*;")


def verifier_constants(vkey: dict) -> dict[str, int]:
    """The constants snarkjs's Solidity template writes for ``vkey`` (G2 coordinates as
    (imaginary, real)), by name."""
    constants = {"alphax": vkey["vk_alpha_1"][0], "alphay": vkey["vk_alpha_1"][1]}
    for point, key in (("beta", "vk_beta_2"), ("gamma", "vk_gamma_2"), ("delta", "vk_delta_2")):
        g2 = vkey[key]
        constants |= {f"{point}x1": g2[0][1], f"{point}x2": g2[0][0], f"{point}y1": g2[1][1], f"{point}y2": g2[1][0]}
    for index, (x, y, *_) in enumerate(vkey["IC"]):
        constants |= {f"IC{index}x": x, f"IC{index}y": y}
    return {name: int(value) for name, value in constants.items()}


def check_solidity_verifier(source: str, vkey: dict) -> None:
    """CeremonyError unless the Solidity verifier ``source`` carries exactly ``vkey``'s points."""
    written = {name: int(value) for name, value in SOLIDITY_CONSTANT.findall(source)}
    expected = verifier_constants(vkey)
    if "alphax" not in written:
        raise CeremonyError("the Solidity verifier has no verification key constants (not a snarkjs Groth16 verifier)")
    for name, value in expected.items():
        if written.get(name) != value:
            raise CeremonyError(f"the Solidity verifier's {name} is not the ceremony's verification key")
    extra = sorted(name for name in written if re.fullmatch(r"IC\d+[xy]", name) and name not in expected)
    if extra:
        raise CeremonyError(f"the Solidity verifier has public inputs the ceremony's key lacks ({', '.join(extra)})")


def bytecode_carries_key(code: bytes, vkey: dict) -> str | None:
    """Why the deployed ``code`` is not a verifier of ``vkey`` (None when every point of the key
    is pushed as a constant in it, as the snarkjs template compiles)."""
    for name, value in verifier_constants(vkey).items():
        immediate = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
        if bytes([0x5F + len(immediate)]) + immediate not in code:
            return f"its code lacks the verification key's {name}"
    return None


# ---- export ----


def export_ceremony(directory: str | Path, contract_name: str = "Groth16Verifier", progress: Progress = _quiet) -> dict:
    """Writes the final zkey's verification key, its Solidity verifier (the contract renamed
    ``contract_name``) and the transcript's digest into the ceremony directory, once the ceremony
    verifies. Returns their paths, the circuit id, the final zkey's sha256 and the digest."""
    directory = Path(directory)
    if not re.fullmatch(r"[A-Za-z_]\w*", contract_name):
        raise CeremonyError(f"{contract_name!r} is not a Solidity contract name")
    for stale in (VERIFICATION_KEY, SOLIDITY_VERIFIER):
        (directory / stale).unlink(missing_ok=True)
    result = verify_ceremony(directory, progress=progress)
    (directory / VERIFICATION_KEY).write_bytes(result.verification_key_bytes)
    progress("snarkjs zkey export solidityverifier")
    with tempfile.TemporaryDirectory(prefix="joynet-ceremony-") as scratch:
        source = Path(scratch) / SOLIDITY_VERIFIER
        snarkjs(
            "zkey", "export", "solidityverifier", result.final_zkey, source, what="snarkjs zkey export solidityverifier"
        )
        text = source.read_text().replace("contract Groth16Verifier", f"contract {contract_name}")
    check_solidity_verifier(text, result.verification_key)
    (directory / SOLIDITY_VERIFIER).write_text(text)
    (directory / DIGEST).write_text(f"{result.digest}  {TRANSCRIPT}\n")
    return {
        "circuit_id": "0x" + result.circuit_id.hex(),
        "zkey": str(result.final_zkey),
        "zkey_sha256": result.zkey_sha256,
        "transcript_sha256": result.digest,
        "contributions": [step["name"] for step in result.contributions],
        "verification_key": str(directory / VERIFICATION_KEY),
        "solidity_verifier": str(directory / SOLIDITY_VERIFIER),
        "digest": str(directory / DIGEST),
    }
