"""The quantized 64-16-10 digits MLP and its integer-only forward pass.

This is bit for bit what circuits/digits_mlp.circom computes and constrains:

    acc1[j]  = b1[j] + sum_i w1[j][i] * pixels[i]          (int4 weights, int16 biases, pixels 0..16)
    hidden[j] = max(floor(acc1[j] / 2**SHIFT), 0)           (floor division, i.e. rounding towards -inf)
    logits[k] = b2[k] + sum_j w2[k][j] * hidden[j]
    class     = the lowest index k whose logit is the maximum

The bounds below are what the circuit's range checks rely on: with int4 weights, int16 biases
and pixels in 0..16, |acc1| < 2**ACC1_BITS, so the quotient fits QUOTIENT_BITS signed bits and
every logit difference fits LOGIT_DIFF_BITS bits, far below the field size (no wrap-around).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from joynet.zk.errors import ModelError

INPUTS, HIDDEN, CLASSES = 64, 16, 10
PIXEL_MAX = 16  # scikit-learn's 8x8 digits: every pixel is an integer 0..16
WEIGHT_BITS = 4  # int4: the circuit range-checks each weight with 4 bits
WEIGHT_MIN, WEIGHT_MAX = -(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1) - 1  # -8..7
BIAS_BITS = 16
BIAS_MIN, BIAS_MAX = -(2 ** (BIAS_BITS - 1)), 2 ** (BIAS_BITS - 1) - 1  # int16
SHIFT = 2  # hidden activations are rescaled by 2**SHIFT (floor division) before the ReLU
ACC1_BITS = 16  # |acc1| <= 64 * 16 * 8 + 2**15 = 40,960 < 2**16
QUOTIENT_BITS = ACC1_BITS - SHIFT + 1  # signed quotient in [-2**14, 2**14): 15 bits
LOGIT_DIFF_BITS = 23  # |logit| <= 16 * (2**14 - 1) * 8 + 2**15 < 2**22, so differences < 2**23
NIBBLE_BITS = 4  # the weights commitment hashes the model as a stream of 4-bit nibbles

# The quantized model and its training manifest, shipped with the package (circuits/digits/ in a
# checkout links to them; circuits/digits/train.py writes them).
MODEL_DIR = Path(__file__).resolve().with_name("digits_model")
DEFAULT_MODEL = MODEL_DIR / "model.json"


@dataclass(frozen=True)
class Inference:
    """What the circuit outputs: the predicted class and the ten integer logits."""

    label: int
    logits: tuple[int, ...]


@dataclass(frozen=True)
class QuantizedMLP:
    """Integer weights of the circuit's network (row-major: w1[hidden][input], w2[class][hidden])."""

    w1: tuple[tuple[int, ...], ...]
    b1: tuple[int, ...]
    w2: tuple[tuple[int, ...], ...]
    b2: tuple[int, ...]

    def __post_init__(self):
        _check_matrix("w1", self.w1, HIDDEN, INPUTS, WEIGHT_MIN, WEIGHT_MAX)
        _check_matrix("w2", self.w2, CLASSES, HIDDEN, WEIGHT_MIN, WEIGHT_MAX)
        _check_vector("b1", self.b1, HIDDEN, BIAS_MIN, BIAS_MAX)
        _check_vector("b2", self.b2, CLASSES, BIAS_MIN, BIAS_MAX)

    @classmethod
    def from_dict(cls, data: dict) -> "QuantizedMLP":
        if data.get("shift") != SHIFT:
            raise ModelError(f"model rescale shift {data.get('shift')!r} differs from the circuit's {SHIFT}")
        return cls(
            w1=tuple(tuple(row) for row in data["w1"]),
            b1=tuple(data["b1"]),
            w2=tuple(tuple(row) for row in data["w2"]),
            b2=tuple(data["b2"]),
        )

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> "QuantizedMLP":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        return {
            "shift": SHIFT,
            "w1": [list(r) for r in self.w1],
            "b1": list(self.b1),
            "w2": [list(r) for r in self.w2],
            "b2": list(self.b2),
        }

    def hidden_layer(self, pixels) -> list[int]:
        """The 16 hidden activations max(floor(acc1 / 2**SHIFT), 0) for integer pixels 0..16."""
        x = check_pixels(pixels)
        # Python's >> on ints is floor division by 2**SHIFT, as the circuit constrains it.
        return [
            max((bias + sum(w * p for w, p in zip(row, x, strict=False))) >> SHIFT, 0)
            for row, bias in zip(self.w1, self.b1, strict=False)
        ]

    def forward(self, pixels) -> Inference:
        """The circuit's computation on 64 integer pixels 0..16 (row by row)."""
        hidden = self.hidden_layer(pixels)
        logits = tuple(
            bias + sum(w * h for w, h in zip(row, hidden, strict=False))
            for row, bias in zip(self.w2, self.b2, strict=False)
        )
        return Inference(label=logits.index(max(logits)), logits=logits)  # index(): the first maximum wins

    def weight_nibbles(self) -> list[int]:
        """The 4-bit digits (0..15) the weights commitment hashes: w1 row-major, b1, w2
        row-major, b2. A weight w is the one nibble w + 8; a bias b is the four nibbles of
        b + 2**15, least significant first. 16 * 64 + 4 * 16 + 10 * 16 + 4 * 10 = 1,288 nibbles."""
        out: list[int] = []
        for matrix, biases in ((self.w1, self.b1), (self.w2, self.b2)):
            out.extend(w - WEIGHT_MIN for row in matrix for w in row)
            for b in biases:
                out.extend(((b - BIAS_MIN) >> (NIBBLE_BITS * k)) & 15 for k in range(BIAS_BITS // NIBBLE_BITS))
        return out


def check_pixels(pixels) -> list[int]:
    values = list(pixels)
    if len(values) != INPUTS:
        raise ModelError(f"expected {INPUTS} pixels (an 8x8 image), got {len(values)}")
    for index, value in enumerate(values):
        if isinstance(value, bool) or int(value) != value or not 0 <= value <= PIXEL_MAX:
            raise ModelError(f"pixel {index} is {value!r}: pixels are integers from 0 to {PIXEL_MAX}")
    return [int(v) for v in values]


def _check_vector(name, values, length, low, high):
    if len(values) != length:
        raise ModelError(f"{name} has {len(values)} entries, expected {length}")
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ModelError(f"{name} entry {value!r} is outside [{low}, {high}]")


def _check_matrix(name, rows, height, width, low, high):
    if len(rows) != height:
        raise ModelError(f"{name} has {len(rows)} rows, expected {height}")
    for row in rows:
        _check_vector(name, row, width, low, high)
