"""Extracts circomlib's Poseidon constants into joynet/zk/poseidon_constants.json.

Reads node_modules/circomlib/circuits/poseidon_constants.circom (the constants the circuit uses:
the optimized round constants C, the sparse matrices S, and the MDS matrices M and P), keeps the
state widths the protocol hashes with, and writes them as hex strings. Run once per circomlib
upgrade; nothing reads the npm package at run time.

    python toolchain/poseidon_constants.py
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "node_modules" / "circomlib" / "circuits" / "poseidon_constants.circom"
TARGET = ROOT / "joynet" / "zk" / "poseidon_constants.json"
# Every state width t = inputs + 1 of circomlib's Poseidon(1..16): a generated circuit's
# commitment chain ends on a hash of whatever number of elements its model leaves over.
WIDTHS = tuple(range(2, 18))
# circomlib's poseidon.circom: N_ROUNDS_P[t - 2]; 8 full rounds for every width.
PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]
FULL_ROUNDS = 8


def blocks(source: str, function: str) -> dict[int, list[int]]:
    """The numbers each `if (t==N)` branch of `function` returns, flattened, in source order."""
    body = source.split(f"function {function}(t)", 1)[1].split("\nfunction ", 1)[0]
    parts = re.split(r"if\s*\(\s*t\s*==\s*(\d+)\s*\)", body)
    return {int(width): [int(number, 16) for number in re.findall(r"0x[0-9a-fA-F]+", text)]
            for width, text in zip(parts[1::2], parts[2::2])}


def main() -> None:
    source = SOURCE.read_text()
    c, s, m, p = (blocks(source, name) for name in ("POSEIDON_C", "POSEIDON_S", "POSEIDON_M", "POSEIDON_P"))
    out = {"source": "circomlib 2.0.5 circuits/poseidon_constants.circom", "full_rounds": FULL_ROUNDS, "widths": {}}
    for t in WIDTHS:
        partial = PARTIAL_ROUNDS[t - 2]
        assert len(c[t]) == t * FULL_ROUNDS + partial, t
        assert len(s[t]) == partial * (2 * t - 1), t
        assert len(m[t]) == len(p[t]) == t * t, t
        out["widths"][str(t)] = {
            "partial_rounds": partial,
            "C": [hex(v) for v in c[t]],
            "S": [hex(v) for v in s[t]],
            "M": [[hex(v) for v in m[t][row * t:(row + 1) * t]] for row in range(t)],
            "P": [[hex(v) for v in p[t][row * t:(row + 1) * t]] for row in range(t)],
        }
    TARGET.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {TARGET.relative_to(ROOT)} (widths {', '.join(map(str, WIDTHS))})")


if __name__ == "__main__":
    main()
