"""Poseidon over BN254, exactly as circomlib's `Poseidon(nInputs)` template computes it.

The circuit evaluates circomlib's optimized form (round constants C, sparse matrices S, MDS
matrices M and P); this module follows the template step by step with the same constants
(joynet/zk/poseidon_constants.json, extracted from circomlib by toolchain/poseidon_constants.py),
so it yields the same field element the circuit does, which equals circomlibjs's `poseidon`.
"""

import json
from functools import cache
from pathlib import Path

# The BN254 scalar field: every signal of the circuit, and every public input, lives below it.
SNARK_SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617

_CONSTANTS = Path(__file__).with_name("poseidon_constants.json")


class _Width:
    """Constants of one state width t = inputs + 1."""

    def __init__(self, t: int, spec: dict, full_rounds: int):
        self.t = t
        self.full_rounds = full_rounds
        self.partial_rounds = spec["partial_rounds"]
        self.c = [int(v, 16) for v in spec["C"]]
        self.s = [int(v, 16) for v in spec["S"]]
        self.m = [[int(v, 16) for v in row] for row in spec["M"]]
        self.p = [[int(v, 16) for v in row] for row in spec["P"]]


@cache
def _widths() -> dict[int, _Width]:
    data = json.loads(_CONSTANTS.read_text())
    return {int(t): _Width(int(t), spec, data["full_rounds"]) for t, spec in data["widths"].items()}


def supported_arities() -> list[int]:
    return sorted(t - 1 for t in _widths())


def _sigma(x: int) -> int:
    return pow(x, 5, SNARK_SCALAR_FIELD)


def _mix(state: list[int], matrix: list[list[int]]) -> list[int]:
    # circomlib's Mix: out[i] = sum_j M[j][i] * in[j]
    t = len(state)
    return [sum(matrix[j][i] * state[j] for j in range(t)) % SNARK_SCALAR_FIELD for i in range(t)]


def poseidon(inputs: list[int] | tuple[int, ...]) -> int:
    """circomlib `Poseidon(len(inputs))` of field elements (each must be in [0, r))."""
    r = SNARK_SCALAR_FIELD
    widths = _widths()
    t = len(inputs) + 1
    if t not in widths:
        raise ValueError(f"Poseidon with {len(inputs)} inputs is not supported (constants for {supported_arities()})")
    for value in inputs:
        if not isinstance(value, int) or not 0 <= value < r:
            raise ValueError(f"Poseidon input {value!r} is not a field element in [0, r)")
    w = widths[t]
    half = w.full_rounds // 2
    c = w.c

    state = [(x + c[i]) % r for i, x in enumerate([0, *inputs])]  # initial state 0, then ark 0
    for rnd in range(half - 1):
        state = [(_sigma(x) + c[(rnd + 1) * t + i]) % r for i, x in enumerate(state)]
        state = _mix(state, w.m)
    state = [(_sigma(x) + c[half * t + i]) % r for i, x in enumerate(state)]
    state = _mix(state, w.p)

    for rnd in range(w.partial_rounds):
        state[0] = (_sigma(state[0]) + c[(half + 1) * t + rnd]) % r
        base = (2 * t - 1) * rnd
        first = sum(w.s[base + i] * state[i] for i in range(t)) % r
        state = [first] + [(state[i] + state[0] * w.s[base + t + i - 1]) % r for i in range(1, t)]

    for rnd in range(half - 1):
        offset = (half + 1) * t + w.partial_rounds + rnd * t
        state = [(_sigma(x) + c[offset + i]) % r for i, x in enumerate(state)]
        state = _mix(state, w.m)
    state = [_sigma(x) for x in state]
    return sum(w.m[j][0] * state[j] for j in range(t)) % r
