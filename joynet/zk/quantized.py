"""Quantized models in the format the circuit generator proves: layers, integer forward pass,
interval bounds and commitments.

A model file (JSON) names its format, its input and its layers::

    {"format": "joynet-quantized-model/1", "name": "digits-cnn",
     "input": {"shape": [1, 8, 8], "max": 16},
     "layers": [{"type": "conv2d", "weight_bits": 8, "bias_bits": 16, "shift": 6, "padding": 1,
                 "weights": [[[[...]]]], "bias": [...]},
                {"type": "relu"}, {"type": "maxpool2d", "size": 2}, {"type": "flatten"},
                {"type": "dense", "weight_bits": 4, "bias_bits": 16, "shift": 0,
                 "weights": [[...]], "bias": [...]},
                {"type": "argmax"}]}

Everything is an integer, and every division is a floor division (rounding towards -inf):

- the input: integers ``0..max`` (``max <= 255``), flat in C-H-W order; ``shape`` is ``[C, H, W]``
  for a model with convolutions and ``[N]`` for a dense-only one;
- ``dense``: ``acc[o] = bias[o] + sum_i weights[o][i] * x[i]``, output ``acc >> shift``;
- ``conv2d``: ``weights[out][in][kh][kw]``, stride 1, ``padding`` zeros on each side,
  ``acc[o][y][x] = bias[o] + sum w[o][c][i][j] * in[c][y+i-p][x+j-p]``, output ``acc >> shift``;
- ``relu``: ``max(v, 0)``;
- ``maxpool2d`` / ``avgpool2d`` of ``size`` s: non-overlapping s x s windows; the maximum, or
  ``floor(sum / s**2)`` (s**2 must be a power of two, so the division is a shift);
- ``flatten``: C-H-W order to a vector;
- ``argmax``: the last layer; the label is the lowest index among equal maxima.

Commitments (the same whatever the circuit's weight mode, and for the digits MLP exactly what
:mod:`joynet.zk.commitments` computes, so a model keeps its registered commitment):

- the nibble stream: for each weighted layer, its weights in row-major order, then its biases;
  a value ``v`` of ``b`` bits is the ``b / 4`` nibbles of ``v + 2**(b-1)``, least significant first;
- ``weightsCommitment = poseidon_chain(pack_nibbles(stream))``;
- ``inputCommitment = poseidon_chain(pack_bytes(bytes(values)) + [salt])``.

:meth:`QuantizedModel.bounds` gives every layer's interval bounds, element by element: the range
checks of a circuit are sized from them, so that no value of the proven computation can wrap
around the field.
"""

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from joynet.zk.commitments import byte_input_commitment, pack_nibbles, poseidon_chain
from joynet.zk.errors import ModelError
from joynet.zk.model import Inference  # label and logits, as for the digits MLP

FORMAT = "joynet-quantized-model/1"
MAX_INPUT = 255  # inputs are committed as bytes
MAX_VALUE_BITS = 62  # every bound stays below 2**62: exact in int64, far below the field (2**253)
WeightMode = Literal["private", "public"]
WEIGHT_MODES: tuple[WeightMode, ...] = ("private", "public")


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: ``(bias + weights @ x) >> shift``; weights are ``[out][in]``."""

    weights: np.ndarray
    bias: np.ndarray
    weight_bits: int
    bias_bits: int
    shift: int = 0
    type: str = "dense"


@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution of stride 1 with zero padding: weights are ``[out][in][kh][kw]``."""

    weights: np.ndarray
    bias: np.ndarray
    weight_bits: int
    bias_bits: int
    shift: int = 0
    padding: int = 0
    type: str = "conv2d"


@dataclass(frozen=True)
class ReLU:
    type: str = "relu"


@dataclass(frozen=True)
class MaxPool2d:
    size: int
    type: str = "maxpool2d"


@dataclass(frozen=True)
class AvgPool2d:
    size: int
    type: str = "avgpool2d"


@dataclass(frozen=True)
class Flatten:
    type: str = "flatten"


@dataclass(frozen=True)
class ArgMax:
    type: str = "argmax"


Layer = Dense | Conv2d | ReLU | MaxPool2d | AvgPool2d | Flatten | ArgMax
WeightedLayer = Dense | Conv2d


@dataclass(frozen=True)
class Bounds:
    """Element-wise intervals of one layer, shaped like its output.

    For a weighted layer ``acc_low``/``acc_high`` bound the accumulator before the rescale; for
    every layer ``low``/``high`` bound its output."""

    low: np.ndarray
    high: np.ndarray
    acc_low: np.ndarray | None = None
    acc_high: np.ndarray | None = None

    @property
    def bits(self) -> int:
        """Bits of the largest magnitude of the output (sign excluded)."""
        return _magnitude_bits(self.low, self.high)

    @property
    def acc_bits(self) -> int:
        """Bits of the largest magnitude of the accumulator (sign excluded); 0 without one."""
        if self.acc_low is None or self.acc_high is None:
            return 0
        return _magnitude_bits(self.acc_low, self.acc_high)


@dataclass(frozen=True)
class QuantizedModel:
    """A validated quantized model (see the module's docstring for the format)."""

    name: str
    input_shape: tuple[int, ...]
    input_max: int
    layers: tuple[Layer, ...]

    def __post_init__(self):
        _validate(self)

    # ---- reading and writing ----

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantizedModel":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ModelError(f"not a quantized model: format is {found!r}, expected {FORMAT!r}")
        model_input = data.get("input")
        if not isinstance(model_input, dict) or "shape" not in model_input or "max" not in model_input:
            raise ModelError('the model needs "input": {"shape": [...], "max": ...}')
        layers = data.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ModelError('the model needs a non-empty "layers" list')
        return cls(
            name=str(data.get("name", "")),
            input_shape=tuple(_integer("input shape", v) for v in model_input["shape"]),
            input_max=_integer("input max", model_input["max"]),
            layers=tuple(_layer_from_dict(index, layer) for index, layer in enumerate(layers)),
        )

    @classmethod
    def load(cls, path: str | Path) -> "QuantizedModel":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ModelError(f"cannot read the model {path}: {error}") from error
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "input": {"shape": list(self.input_shape), "max": self.input_max},
            "layers": [_layer_to_dict(layer) for layer in self.layers],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    # ---- what the model is ----

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def weighted_layers(self) -> tuple[WeightedLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Dense | Conv2d))

    @property
    def parameter_count(self) -> int:
        return sum(layer.weights.size + layer.bias.size for layer in self.weighted_layers)

    @property
    def classes(self) -> int:
        return int(np.prod(self.output_shapes()[-1]))

    def output_shapes(self) -> list[tuple[int, ...]]:
        """The shape of each layer's output (the argmax's is the logits' shape)."""
        shapes = []
        shape = self.input_shape
        for layer in self.layers:
            shape = _output_shape(layer, shape)
            shapes.append(shape)
        return shapes

    # ---- the computation ----

    def check_input(self, values) -> np.ndarray:
        """The input as a flat int64 array, or a ModelError saying what is wrong with it."""
        flat = np.asarray(values, dtype=object).reshape(-1).tolist()
        if len(flat) != self.input_size:
            raise ModelError(
                f"expected {self.input_size} input values (shape {list(self.input_shape)}), got {len(flat)}"
            )
        for index, value in enumerate(flat):
            if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
                raise ModelError(f"input value {index} is {value!r}: inputs are integers from 0 to {self.input_max}")
            if not 0 <= value <= self.input_max:
                raise ModelError(f"input value {index} is {value!r}: inputs are integers from 0 to {self.input_max}")
        return np.asarray([int(v) for v in flat], dtype=np.int64)

    def trace(self, values) -> list[np.ndarray]:
        """Every layer's output (int64 arrays in the layers' shapes), bit-exact."""
        x = self.check_input(values).reshape(self.input_shape)
        outputs = []
        for layer in self.layers:
            x = _apply(layer, x)
            outputs.append(x)
        return outputs

    def forward(self, values) -> Inference:
        logits = self.trace(values)[-1].reshape(-1)
        return Inference(label=int(np.argmax(logits)), logits=tuple(int(v) for v in logits))

    def bounds(self, mode: WeightMode = "private") -> list[Bounds]:
        """Element-wise intervals of every layer's output over all valid inputs.

        ``private``: a weighted layer's weights and biases may be any values of their declared
        bits (the circuit only range-checks them); ``public``: they are this model's."""
        if mode not in WEIGHT_MODES:
            raise ModelError(f"weight mode must be one of {WEIGHT_MODES}, got {mode!r}")
        low = np.zeros(self.input_shape, dtype=object)
        high = np.full(self.input_shape, self.input_max, dtype=object)
        result = []
        for layer in self.layers:
            bounds = _layer_bounds(layer, low, high, mode)
            low, high = bounds.low, bounds.high
            result.append(bounds)
        return result

    # ---- commitments ----

    def weight_nibbles(self) -> list[int]:
        """The 4-bit stream the weights commitment hashes (see the module's docstring)."""
        out: list[int] = []
        for layer in self.weighted_layers:
            out.extend(_nibbles(layer.weights.reshape(-1).tolist(), layer.weight_bits))
            out.extend(_nibbles(layer.bias.reshape(-1).tolist(), layer.bias_bits))
        return out

    def weights_commitment(self) -> int:
        return self._weights_commitment

    @cached_property
    def _weights_commitment(self) -> int:
        # Computed once per model: a large model's chain is hundreds of Poseidon hashes, and every
        # circuit input names the commitment.
        return poseidon_chain(pack_nibbles(self.weight_nibbles()))

    def input_commitment(self, values, salt: int) -> int:
        return byte_input_commitment([int(v) for v in self.check_input(values)], salt)


def from_digits_mlp(mlp) -> QuantizedModel:
    """The digits MLP (:class:`joynet.zk.model.QuantizedMLP`) in this format: same forward pass,
    same commitments."""
    from joynet.zk import model as digits

    return QuantizedModel(
        name="digits-mlp",
        input_shape=(digits.INPUTS,),
        input_max=digits.PIXEL_MAX,
        layers=(
            Dense(
                weights=np.array(mlp.w1, dtype=np.int64),
                bias=np.array(mlp.b1, dtype=np.int64),
                weight_bits=digits.WEIGHT_BITS,
                bias_bits=digits.BIAS_BITS,
                shift=digits.SHIFT,
            ),
            ReLU(),
            Dense(
                weights=np.array(mlp.w2, dtype=np.int64),
                bias=np.array(mlp.b2, dtype=np.int64),
                weight_bits=digits.WEIGHT_BITS,
                bias_bits=digits.BIAS_BITS,
            ),
            ArgMax(),
        ),
    )


# ---- layers: parsing and validation ----


def _integer(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"{what} must be an integer, got {value!r}")
    return value


def _int_array(what: str, value, ndim: int) -> np.ndarray:
    try:
        array = np.array(value, dtype=object)
    except ValueError as error:  # ragged nesting
        raise ModelError(f"{what} must be a {ndim}-dimensional array of integers: {error}") from error
    if array.ndim != ndim or array.size == 0:
        raise ModelError(
            f"{what} must be a non-empty {ndim}-dimensional array of integers, got {array.ndim} dimensions"
        )
    for item in array.reshape(-1):
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ModelError(f"{what} holds {item!r}, which is not an integer")
    return array.astype(np.int64) if all(abs(int(v)) < 2**62 for v in array.reshape(-1)) else array


def _layer_from_dict(index: int, data) -> Layer:
    if not isinstance(data, dict) or "type" not in data:
        raise ModelError(f'layer {index} must be an object with a "type"')
    kind = data["type"]
    where = f"layer {index} ({kind})"
    try:
        if kind in ("dense", "conv2d"):
            common: dict[str, Any] = {
                "weights": _int_array(f"{where} weights", data["weights"], 2 if kind == "dense" else 4),
                "bias": _int_array(f"{where} bias", data["bias"], 1),
                "weight_bits": _integer(f"{where} weight_bits", data["weight_bits"]),
                "bias_bits": _integer(f"{where} bias_bits", data["bias_bits"]),
                "shift": _integer(f"{where} shift", data.get("shift", 0)),
            }
            if kind == "dense":
                return Dense(**common)
            return Conv2d(**common, padding=_integer(f"{where} padding", data.get("padding", 0)))
        if kind == "relu":
            return ReLU()
        if kind in ("maxpool2d", "avgpool2d"):
            size = _integer(f"{where} size", data["size"])
            return MaxPool2d(size) if kind == "maxpool2d" else AvgPool2d(size)
        if kind == "flatten":
            return Flatten()
        if kind == "argmax":
            return ArgMax()
    except KeyError as error:
        raise ModelError(f"{where} lacks {error.args[0]!r}") from None
    raise ModelError(f"layer {index} has an unknown type {kind!r}")


def _layer_to_dict(layer: Layer) -> dict[str, Any]:
    if isinstance(layer, Dense | Conv2d):
        data: dict[str, Any] = {
            "type": layer.type,
            "weight_bits": layer.weight_bits,
            "bias_bits": layer.bias_bits,
            "shift": layer.shift,
        }
        if isinstance(layer, Conv2d):
            data["padding"] = layer.padding
        data["weights"] = layer.weights.tolist()
        data["bias"] = layer.bias.tolist()
        return data
    if isinstance(layer, MaxPool2d | AvgPool2d):
        return {"type": layer.type, "size": layer.size}
    return {"type": layer.type}


def _validate(model: QuantizedModel) -> None:
    if not model.input_shape or any(d <= 0 for d in model.input_shape) or len(model.input_shape) not in (1, 3):
        raise ModelError(f"input shape must be [N] or [C, H, W] of positive sizes, got {list(model.input_shape)}")
    if not 1 <= model.input_max <= MAX_INPUT:
        raise ModelError(f"input max must be 1..{MAX_INPUT} (inputs are committed as bytes), got {model.input_max}")
    if not model.layers or not isinstance(model.layers[-1], ArgMax):
        raise ModelError("the last layer must be argmax")
    if sum(isinstance(layer, ArgMax) for layer in model.layers) != 1:
        raise ModelError("argmax must appear exactly once, as the last layer")
    shape = model.input_shape
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dense | Conv2d):
            _check_weighted(index, layer)
        shape = _output_shape(layer, shape, index)
    for index, bounds in enumerate(model.bounds("private")):
        if bounds.bits > MAX_VALUE_BITS or bounds.acc_bits > MAX_VALUE_BITS:
            raise ModelError(
                f"layer {index}'s values can reach 2**{max(bounds.bits, bounds.acc_bits)}: keep them below 2**{MAX_VALUE_BITS}"
            )


def _check_weighted(index: int, layer: WeightedLayer) -> None:
    where = f"layer {index} ({layer.type})"
    for name, bits in (("weight_bits", layer.weight_bits), ("bias_bits", layer.bias_bits)):
        if bits % 4 or not 4 <= bits <= 32:
            raise ModelError(f"{where} {name} must be a multiple of 4 from 4 to 32, got {bits}")
    if not 0 <= layer.shift <= 32:
        raise ModelError(f"{where} shift must be 0..32, got {layer.shift}")
    if isinstance(layer, Conv2d) and not 0 <= layer.padding <= 8:
        raise ModelError(f"{where} padding must be 0..8, got {layer.padding}")
    if layer.bias.shape[0] != layer.weights.shape[0]:
        raise ModelError(f"{where} has {layer.weights.shape[0]} outputs but {layer.bias.shape[0]} biases")
    for name, values, bits in (("weight", layer.weights, layer.weight_bits), ("bias", layer.bias, layer.bias_bits)):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        outside = [int(v) for v in values.reshape(-1) if not low <= int(v) <= high]
        if outside:
            raise ModelError(f"{where} {name} {outside[0]} is outside [{low}, {high}] ({bits} bits)")


def _output_shape(layer: Layer, shape: tuple[int, ...], index: int | None = None) -> tuple[int, ...]:
    where = f"layer {index} ({layer.type})" if index is not None else layer.type
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise ModelError(f"{where} takes a vector, got shape {list(shape)}: flatten first")
        if layer.weights.shape[1] != shape[0]:
            raise ModelError(f"{where} takes {layer.weights.shape[1]} inputs, the previous layer gives {shape[0]}")
        return (layer.weights.shape[0],)
    if isinstance(layer, Conv2d):
        if len(shape) != 3:
            raise ModelError(f"{where} takes [C, H, W], got shape {list(shape)}")
        out_c, in_c, kh, kw = layer.weights.shape
        if in_c != shape[0]:
            raise ModelError(f"{where} takes {in_c} channels, the previous layer gives {shape[0]}")
        height, width = shape[1] + 2 * layer.padding - kh + 1, shape[2] + 2 * layer.padding - kw + 1
        if height <= 0 or width <= 0:
            raise ModelError(f"{where}'s {kh}x{kw} kernel is larger than its padded {list(shape[1:])} input")
        return (out_c, height, width)
    if isinstance(layer, MaxPool2d | AvgPool2d):
        if len(shape) != 3:
            raise ModelError(f"{where} takes [C, H, W], got shape {list(shape)}")
        if layer.size < 1 or shape[1] % layer.size or shape[2] % layer.size:
            raise ModelError(f"{where} size {layer.size} does not divide the {shape[1]}x{shape[2]} input")
        if isinstance(layer, AvgPool2d) and (layer.size * layer.size) & (layer.size * layer.size - 1):
            raise ModelError(f"{where} size {layer.size}: its area must be a power of two (a shift)")
        return (shape[0], shape[1] // layer.size, shape[2] // layer.size)
    if isinstance(layer, Flatten):
        return (int(np.prod(shape)),)
    if isinstance(layer, ArgMax):
        if len(shape) != 1:
            raise ModelError(f"{where} takes a vector, got shape {list(shape)}")
        return shape
    return shape  # relu


# ---- the forward pass and the bounds (the same layer code, on int64 values or object intervals) ----


def _linear(layer: WeightedLayer, x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """bias + weights applied to x (dense or convolution), in x's dtype."""
    if isinstance(layer, Dense):
        return bias + weights @ x
    out_c, _, kh, kw = weights.shape
    p = layer.padding
    padded = np.pad(x, ((0, 0), (p, p), (p, p)))
    height, width = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    acc = np.zeros((out_c, height, width), dtype=x.dtype) + bias.reshape(-1, 1, 1)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i : i + height, j : j + width]
            acc = acc + np.tensordot(weights[:, :, i, j], window, axes=([1], [0]))
    return acc


def _pool(layer: MaxPool2d | AvgPool2d, x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    s = layer.size
    windows = x.reshape(c, h // s, s, w // s, s)
    if isinstance(layer, MaxPool2d):
        return windows.max(axis=(2, 4))
    return windows.sum(axis=(2, 4)) >> ((s * s).bit_length() - 1)


def _apply(layer: Layer, x: np.ndarray) -> np.ndarray:
    if isinstance(layer, Dense | Conv2d):
        return _linear(layer, x, layer.weights, layer.bias) >> layer.shift
    if isinstance(layer, ReLU):
        return np.maximum(x, 0)
    if isinstance(layer, MaxPool2d | AvgPool2d):
        return _pool(layer, x)
    if isinstance(layer, Flatten):
        return x.reshape(-1)
    return x  # argmax: the logits


def _layer_bounds(layer: Layer, low: np.ndarray, high: np.ndarray, mode: WeightMode) -> Bounds:
    if isinstance(layer, Dense | Conv2d):
        if mode == "public":
            # Each weight is fixed: w * x is largest at x's high end for w > 0, its low end for w < 0.
            weights = layer.weights.astype(object)
            positive, negative = np.maximum(weights, 0), np.minimum(weights, 0)
            bias = layer.bias.astype(object)
            zero = np.zeros_like(bias)
            acc_high = _linear(layer, high, positive, bias) + _linear(layer, low, negative, zero)
            acc_low = _linear(layer, low, positive, bias) + _linear(layer, high, negative, zero)
        else:
            # Any weight of its bits, w in [w_low, w_high] with w_low < 0 < w_high: for x in
            # [low, high], w * x lies in [min(w_high * low, w_low * high), max(w_high * high, w_low * low)].
            w_low, w_high = -(2 ** (layer.weight_bits - 1)), 2 ** (layer.weight_bits - 1) - 1
            ones = np.ones(layer.weights.shape, dtype=object)
            bias_low = np.full(layer.bias.shape, -(2 ** (layer.bias_bits - 1)), dtype=object)
            bias_high = np.full(layer.bias.shape, 2 ** (layer.bias_bits - 1) - 1, dtype=object)
            product_high = np.maximum(w_high * high, w_low * low)
            product_low = np.minimum(w_high * low, w_low * high)
            acc_high = _linear(layer, product_high, ones, bias_high)
            acc_low = _linear(layer, product_low, ones, bias_low)
        return Bounds(acc_low >> layer.shift, acc_high >> layer.shift, acc_low, acc_high)
    if isinstance(layer, ReLU):
        return Bounds(np.maximum(low, 0), np.maximum(high, 0))
    if isinstance(layer, MaxPool2d | AvgPool2d):
        return Bounds(_pool(layer, low), _pool(layer, high))
    if isinstance(layer, Flatten):
        return Bounds(low.reshape(-1), high.reshape(-1))
    return Bounds(low, high)


def _magnitude_bits(low: np.ndarray, high: np.ndarray) -> int:
    magnitude = max(max(abs(int(v)) for v in low.reshape(-1)), max(abs(int(v)) for v in high.reshape(-1)))
    return int(magnitude).bit_length()


def _nibbles(values: list[int], bits: int) -> list[int]:
    offset = 2 ** (bits - 1)
    return [((int(v) + offset) >> (4 * k)) & 15 for v in values for k in range(bits // 4)]
