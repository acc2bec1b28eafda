"""Writes circuits/build/manifest.json after `make circuits` (called by circuits/build.sh).

Records the sha256 of every committed artefact, the R1CS sizes, the public-input order, and the
witness positions of the signals the tests compare with the Python forward pass. Refuses to
write it if a public input's point in the verification key is the point at infinity: such an
input would not be bound by the proof.

    python circuits/write_manifest.py <circuit.r1cs> <circuit.sym> [--source FILE.circom]
        [--out DIR] [--verifier NAME|none] [--power N]
"""

import argparse
import hashlib
import json
import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "circuits" / "build"
PUBLIC_INPUTS = ["weightsCommitment", "inputCommitment", "outputBinding"]
# Signals of the digits circuit that the forward-pass test reads from the witness: the hidden
# layer's ReLU outputs, the second layer's products and biases (the logits are their sums).
WITNESS_SIGNALS = {
    "hidden": re.compile(r"^main\.rescale1\[(\d+)\]\.out$"),
    "products2": re.compile(r"^main\.products2\[(\d+)\]\[(\d+)\]$"),
    "b2": re.compile(r"^main\.b2\[(\d+)\]$"),
    "outputBinding": re.compile(r"^main\.outputBinding$"),  # class * 2^224 + requestNode
}


def r1cs_header(path: Path) -> dict:
    data = path.read_bytes()
    magic, _version, sections = struct.unpack_from("<4sII", data, 0)
    assert magic == b"r1cs", "not an R1CS file"
    offset = 12
    for _ in range(sections):
        kind, size = struct.unpack_from("<IQ", data, offset)
        offset += 12
        if kind == 1:
            (field_size,) = struct.unpack_from("<I", data, offset)
            fields = struct.unpack_from("<IIIIQI", data, offset + 4 + field_size)
            names = ["wires", "public_outputs", "public_inputs", "private_inputs", "labels", "constraints"]
            return dict(zip(names, fields))
        offset += size
    raise ValueError("R1CS header section not found")


def witness_wires(sym: Path) -> dict:
    found = {"hidden": {}, "products2": {}, "b2": {}, "outputBinding": None}
    for line in sym.read_text().splitlines():
        _label, wire, _component, name = line.split(",", 3)
        for key, pattern in WITNESS_SIGNALS.items():
            match = pattern.match(name)
            if not match:
                continue
            if int(wire) < 0:
                raise SystemExit(f"{name} was optimized out of the witness; the forward-pass test needs it")
            if key == "outputBinding":
                found[key] = int(wire)
            else:
                found[key][tuple(map(int, match.groups()))] = int(wire)
    as_list = lambda table, shape: [table[(i,)] for i in range(shape)] if isinstance(shape, int) else [
        [table[(i, j)] for j in range(shape[1])] for i in range(shape[0])]
    return {"hidden": as_list(found["hidden"], 16), "b2": as_list(found["b2"], 10),
            "products2": as_list(found["products2"], (10, 16)), "outputBinding": found["outputBinding"]}


def main(r1cs: str, sym: str, source: str, build: Path, verifier: str, power: int) -> None:
    circuit = Path(source).stem
    artefacts = {
        "wasm": build / f"{circuit}.wasm",
        "zkey": build / f"{circuit}.zkey",
        "verification_key": build / "verification_key.json",
    }
    if verifier != "none":
        artefacts["solidity_verifier"] = ROOT / "contracts" / "verifiers" / f"{verifier}.sol"
    header = r1cs_header(Path(r1cs))
    vkey = json.loads(artefacts["verification_key"].read_text())
    if vkey["nPublic"] != len(PUBLIC_INPUTS):
        raise SystemExit(f"the circuit has {vkey['nPublic']} public signals, expected {len(PUBLIC_INPUTS)}")
    for name, point in zip(PUBLIC_INPUTS, vkey["IC"][1:]):
        if point[2] == "0":  # projective z = 0: the point at infinity
            raise SystemExit(f"public input {name} has a zero IC point: the proof would not bind it")
    # The generator names the weight mode in the circuit's header: "(private weights)" or "(public weights)".
    mode = re.search(r"\((private|public) weights\)", (ROOT / source).read_text())
    manifest = {
        "circuit": source,
        "weights": mode.group(1) if mode else "private",
        "compiler": "circom2 --O2",
        "public_inputs": PUBLIC_INPUTS,
        "constraints": header["constraints"],
        "wires": header["wires"],
        "private_inputs": header["private_inputs"],
        "ptau_power": power,
        "sha256": {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in artefacts.items()},
        "files": {key: display(path) for key, path in artefacts.items()},
    }
    if circuit == "digits_mlp":
        manifest["witness_wires"] = witness_wires(Path(sym))
    (build / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{display(build / 'manifest.json')}: {header['constraints']} constraints")


def display(path: Path) -> str:
    """A path as the manifest records it: relative to the checkout (circuits/build for the digits
    circuit's directory, which links to joynet/zk/circuit)."""
    path = path.resolve()
    if path.is_relative_to(BUILD.resolve()):
        return str(Path("circuits/build") / path.relative_to(BUILD.resolve()))
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("r1cs")
    parser.add_argument("sym")
    parser.add_argument("--source", default="circuits/digits_mlp.circom")
    parser.add_argument("--out", type=Path, default=BUILD)
    parser.add_argument("--verifier", default="DigitsMLPVerifier")
    parser.add_argument("--power", type=int, default=14)
    args = parser.parse_args()
    main(args.r1cs, args.sym, args.source, args.out, args.verifier, args.power)
