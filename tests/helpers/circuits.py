"""Compiling generated circuits and computing their witnesses in tests (no trusted setup)."""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from joynet.zk.circuitgen.generator import CIRCOMLIB_FILES
from joynet.zk.poseidon import SNARK_SCALAR_FIELD

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CIRCOM = PROJECT_ROOT / "node_modules" / "circom2" / "cli.js"
CIRCOMLIB = PROJECT_ROOT / "node_modules" / "circomlib" / "circuits"
WITNESS_WORKER = Path(__file__).with_name("circuit_witness.js")


@dataclass(frozen=True)
class CompiledCircuit:
    wasm: Path
    r1cs: Path
    wires: dict[str, int]  # signal name -> witness position, for the signals --O2 kept

    def witnesses(self, inputs: list[dict]) -> list[list[int] | str]:
        """Each input's witness, or the witness generator's error (a failed constraint)."""
        lines = "".join(json.dumps(signals) + "\n" for signals in inputs)
        done = subprocess.run(
            ["node", str(WITNESS_WORKER), str(self.wasm)], input=lines, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        answers = [json.loads(line) for line in done.stdout.splitlines()]
        return [[int(v) for v in a["witness"]] if "witness" in a else a["error"] for a in answers]


def compile_circuit(source: str, directory: Path, name: str = "circuit") -> CompiledCircuit:
    """circom2 --O2 of `source` in `directory` (circomlib copied in: circom2 sees only its
    working directory)."""
    (directory / "circomlib").mkdir(parents=True, exist_ok=True)
    for file in CIRCOMLIB_FILES:
        shutil.copy(CIRCOMLIB / f"{file}.circom", directory / "circomlib")
    (directory / f"{name}.circom").write_text(source)
    done = subprocess.run(
        ["node", str(CIRCOM), f"{name}.circom", "--r1cs", "--wasm", "--sym", "--O2", "-l", "circomlib", "-o", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wires = {}
    for line in (directory / f"{name}.sym").read_text().splitlines():
        _label, wire, _component, signal = line.split(",", 3)
        if int(wire) >= 0:
            wires[signal] = int(wire)
    return CompiledCircuit(directory / f"{name}_js" / f"{name}.wasm", directory / f"{name}.r1cs", wires)


def signed(value: int) -> int:
    """A field element as the signed integer it stands for."""
    return value - SNARK_SCALAR_FIELD if value > SNARK_SCALAR_FIELD // 2 else value
