"""The widths of a generated circuit's range checks, from the model's interval bounds.

:meth:`joynet.zk.quantized.QuantizedModel.bounds` bounds every value of every layer element by
element (over the declared bit widths of the weights when they are private, the actual weights
when they are public); a circuit checks a whole layer with one width, so each layer's interval
here is the union of its elements'. The model format keeps every bound below 2**62, far below the
field (2**253): no range-checked value can wrap around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from joynet.zk.quantized import QuantizedModel, WeightMode


@dataclass(frozen=True)
class Interval:
    """The closed integer interval [low, high]."""

    low: int
    high: int

    def floor_shift(self, shift: int) -> Interval:
        return Interval(self.low >> shift, self.high >> shift)


@dataclass(frozen=True)
class LayerBounds:
    """A layer's output interval, and for dense and conv2d layers the interval of its sums
    before the rescale."""

    output: Interval
    accumulator: Interval | None = None


def signed_bits(interval: Interval) -> int:
    """The fewest bits q with every value of the interval in [-2^(q-1), 2^(q-1))."""
    bits = 1
    while interval.low < -(1 << (bits - 1)) or interval.high >= 1 << (bits - 1):
        bits += 1
    return bits


def unsigned_bits(value: int) -> int:
    """The fewest bits (at least one) that hold 0..value."""
    return max(1, int(value).bit_length())


def _union(low, high) -> Interval:
    return Interval(min(int(v) for v in low.reshape(-1)), max(int(v) for v in high.reshape(-1)))


def layer_bounds(model: QuantizedModel, mode: WeightMode) -> list[LayerBounds]:
    """[the input's bounds, the bounds after layer 0, after layer 1, ...], one interval a layer."""
    result = [LayerBounds(Interval(0, model.input_max))]
    for bounds in model.bounds(mode):
        accumulator = None
        if bounds.acc_low is not None and bounds.acc_high is not None:
            accumulator = _union(bounds.acc_low, bounds.acc_high)
        result.append(LayerBounds(_union(bounds.low, bounds.high), accumulator))
    return result
