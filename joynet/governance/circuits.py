"""The DAO's rule for circuits: it registers a verifier only with a trusted-setup transcript
anyone can verify.

A circuit-registration proposal (``ProofOfInference.registerCircuit(circuitId, verifier,
layout)``, made by ``joynet gov propose-circuit``) names, in its description, the pinned record
of its ceremony and the final zkey's sha256::

    Register circuit 0x17d1...: tiny classifier

    ceremony-transcript: Qm...        the record: the transcript and the CIDs of the r1cs, the
                                      powers of tau and the final zkey
    final-zkey-sha256: 8271...
    circuit-id: 0x17d1...

``CeremonyCheck.judge`` is what the voter agent (and anyone) runs on such a proposal: it fetches
the record and its files from IPFS (every block checked against its CID), re-runs the whole
ceremony verification (``joynet.zk.ceremony.verify_ceremony``), and checks that the final zkey is
the one the description names, that the circuit id is the sha256 of that zkey's verification key,
and that the code deployed at the verifier address carries that key. Any failure is a reason to
vote against.

The record travels in the description rather than in a ZKVerifier event or field: the description
is already part of the proposal's id (so the record cannot be swapped once proposed), the voters
read it before they vote (an on-chain field would be written only when the proposal executes,
after the vote), and the registry stays one storage slot per circuit.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from joynet.storage import ModelStore, StoreError
from joynet.zk.ceremony import (
    R1CS,
    TRANSCRIPT,
    ZKEYS,
    CeremonyVerification,
    bytecode_carries_key,
    verify_ceremony,
)
from joynet.zk.errors import CeremonyError

RECORD_KIND = "joynet-ceremony-record"
TRANSCRIPT_FIELD = "ceremony-transcript"
ZKEY_FIELD = "final-zkey-sha256"
CIRCUIT_FIELD = "circuit-id"
REGISTER = ("ProofOfInference", "registerCircuit")
FIELD_LINE = re.compile(r"^\s*([a-z0-9-]+):\s*(\S+)\s*$", re.MULTILINE)
ZKEY_NAME = re.compile(r"^\d{4}\.zkey$")
PTAU_NAME = "powers.ptau"
# Bounds on what a voter fetches for one proposal (a 2^20 powers of tau is ~1.2 GB).
MAX_FILE_BYTES = {"r1cs": 1 << 30, "zkey": 1 << 31, "ptau": 1 << 31}
MAX_RECORD_BYTES = 1 << 20


def refuse_bare_registration(calls: list[Any], directory: Any) -> None:
    """GovernanceError when ``calls`` (target and calldata each) register a circuit: a
    registration goes through ``joynet gov propose-circuit``, which names its transcript."""
    from joynet.chain.dao import GovernanceError

    for call in calls:
        decoded = directory.decode(call.target, call.calldata)
        if (getattr(decoded, "contract", None), getattr(decoded, "function", None)) == REGISTER:
            raise GovernanceError(
                "a circuit registration needs its ceremony transcript: use joynet gov propose-circuit CEREMONY_DIR"
            )


def description_fields(description: str) -> dict[str, str]:
    """The ``name: value`` lines of a proposal description (the first of each name)."""
    fields: dict[str, str] = {}
    for name, value in FIELD_LINE.findall(description or ""):
        fields.setdefault(name, value)
    return fields


def circuit_description(title: str, record_cid: str, result: CeremonyVerification) -> str:
    """A registration proposal's description: ``title``, then the record and final zkey lines."""
    return (
        f"{title}\n\n{TRANSCRIPT_FIELD}: {record_cid}\n{ZKEY_FIELD}: {result.zkey_sha256}\n"
        f"{CIRCUIT_FIELD}: 0x{result.circuit_id.hex()}\n"
    )


async def publish_ceremony(store: ModelStore, directory: str | Path, result: CeremonyVerification, ptau: Path) -> str:
    """Adds (and so pins) the ceremony's r1cs, powers of tau and final zkey to ``store``, then its
    record (the transcript and those files' CIDs); returns the record's CID."""
    directory = Path(directory)
    files = {
        "r1cs": await store.add_file(directory / R1CS),
        "ptau": await store.add_file(ptau),
        "zkey": await store.add_file(result.final_zkey),
    }
    record = {"kind": RECORD_KIND, "transcript": result.transcript, "files": files}
    return await store.add_bytes(json.dumps(record, indent=2, sort_keys=True).encode())


async def fetch_and_verify(store: ModelStore, record_cid: str, scratch: Path) -> CeremonyVerification:
    """Fetches the record ``record_cid`` and its files into ``scratch`` as a ceremony directory
    and verifies it. CeremonyError (or a StoreError) when it does not."""
    try:
        record = json.loads(await store.cat(record_cid))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CeremonyError(f"{record_cid} is not a ceremony record (not JSON)") from None
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND:
        raise CeremonyError(f"{record_cid} is not a ceremony record")
    transcript, files = record.get("transcript"), record.get("files")
    if not isinstance(transcript, dict) or not isinstance(files, dict) or not transcript.get("steps"):
        raise CeremonyError(f"the ceremony record {record_cid} lacks its transcript or files")
    final = transcript["steps"][-1].get("zkey", "")
    name = final.removeprefix(f"{ZKEYS}/")
    if not ZKEY_NAME.match(name):  # the path comes from the proposer: nothing outside scratch
        raise CeremonyError(f"the ceremony record names its final zkey {final!r}")
    targets = {"r1cs": scratch / R1CS, "ptau": scratch / PTAU_NAME, "zkey": scratch / ZKEYS / name}
    for kind, target in targets.items():
        if not isinstance(files.get(kind), str):
            raise CeremonyError(f"the ceremony record has no CID for its {kind}")
        await store.save(files[kind], target, max_bytes=MAX_FILE_BYTES[kind])
    (scratch / TRANSCRIPT).write_text(json.dumps(transcript))
    # snarkjs takes seconds to minutes: off the caller's event loop (the voter keeps following blocks).
    return await asyncio.to_thread(verify_ceremony, scratch, targets["ptau"])


@dataclass(frozen=True)
class CeremonyRules:
    """What a voter asks of a ceremony beyond its verifying: the powers of tau it accepts (by
    sha256; none listed: every registration is voted down) and the fewest contributions (the
    beacon not counted)."""

    ptau_sha256: frozenset[str] = frozenset()
    min_contributions: int = 1

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> CeremonyRules:
        from joynet.governance.errors import PolicyError

        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"ptau_sha256", "min_contributions"}:
            raise PolicyError(f"{where}: 'ceremonies' takes ptau_sha256 (a list) and min_contributions")
        hashes = data.get("ptau_sha256") or []
        if not isinstance(hashes, list) or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes
        ):
            raise PolicyError(f"{where}: ceremonies.ptau_sha256 must list sha256 digests (64 lowercase hex digits)")
        minimum = data.get("min_contributions", 1)
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
            raise PolicyError(f"{where}: ceremonies.min_contributions must be a positive integer")
        return cls(frozenset(hashes), minimum)


class CeremonyCheck:
    """Judges circuit-registration calls by the ceremony their proposal's description names."""

    def __init__(self, store: ModelStore, code_at: Callable[[str], bytes], rules: CeremonyRules | None = None):
        """``store``: where the records are fetched from; ``code_at``: an address's deployed code."""
        self.store, self.code_at, self.rules = store, code_at, rules or CeremonyRules()

    async def judge(self, description: str, arguments: dict[str, Any]) -> str | None:
        """Why the registration with ``arguments`` (circuitId, verifier, layout) must not pass
        (None when its ceremony verifies and matches it)."""
        fields = description_fields(description)
        record_cid, zkey_sha256 = fields.get(TRANSCRIPT_FIELD), fields.get(ZKEY_FIELD)
        if record_cid is None or zkey_sha256 is None:
            return f"no ceremony transcript in the description ({TRANSCRIPT_FIELD}: and {ZKEY_FIELD}: lines)"
        with tempfile.TemporaryDirectory(prefix="joynet-ceremony-check-") as scratch:
            try:
                result = await fetch_and_verify(self.store, record_cid, Path(scratch))
            except (CeremonyError, StoreError) as error:
                return f"the ceremony transcript {record_cid} does not verify: {error}"
        if result.zkey_sha256 != zkey_sha256.lower():
            return (
                f"the transcript's final zkey is {result.zkey_sha256[:16]}..., not the proposal's {zkey_sha256[:16]}..."
            )
        # Phase 1 must be trusted too: whoever knows a powers of tau's secret can forge proofs
        # whatever phase 2 did, so only the files the policy names are accepted.
        if result.transcript["ptau"]["sha256"] not in self.rules.ptau_sha256:
            return (
                f"the ceremony's powers of tau (sha256 {result.transcript['ptau']['sha256'][:16]}...) is not one the "
                "policy accepts (ceremonies.ptau_sha256)"
            )
        contributions = [step for step in result.contributions if step["kind"] == "contribution"]
        if len(contributions) < self.rules.min_contributions:
            return f"{len(contributions)} contribution(s), the policy asks for {self.rules.min_contributions}"
        if bytes(arguments["circuitId"]) != result.circuit_id:
            return f"circuitId is not the ceremony's (0x{result.circuit_id.hex()}, the sha256 of its verification key)"
        verifier = to_checksum_address(arguments["verifier"])
        if (why := bytecode_carries_key(bytes(self.code_at(verifier)), result.verification_key)) is not None:
            return f"the verifier at {verifier} is not the ceremony's: {why}"
        return None
