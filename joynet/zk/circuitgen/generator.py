"""Circom circuits generated from quantized models (joynet-quantized-model/1).

One circuit proves one inference of one model, with the public inputs every JoyNet circuit has,
``[weightsCommitment, inputCommitment, outputBinding]``:

- the input values are range-checked to ``0..input.max`` and committed with their salt;
- each weighted layer (dense, conv2d) is a sum of products; with **private** weights they are
  signals (one constraint per product), range-checked to their bit widths and hashed as the nibble
  stream of the weights commitment; with **public** weights they are constants, so the sums are
  linear combinations that ``circom --O2`` folds into the next non-linear constraint (no cost),
  and the circuit pins ``weightsCommitment`` to the model's own commitment;
- each rescale (``>> shift``), fused with a following ReLU, is a range-checked quotient and
  remainder; max pooling is a range-checked maximum; average pooling a rescale of the window's
  sum; the argmax is a one-hot index with range-checked differences;
- ``outputBinding = label * 2^224 + requestNode`` with ``requestNode`` range-checked to 224 bits.

Every range check's width comes from the interval bounds of the model (worst case over the
declared weight bit widths with private weights, the actual weights with public ones), so no
value ever wraps around the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from joynet.zk.circuitgen.bounds import Interval, layer_bounds, signed_bits, unsigned_bits
from joynet.zk.errors import ModelError
from joynet.zk.quantized import WEIGHT_MODES, QuantizedModel, WeightMode

LIBRARY = Path(__file__).with_name("library.circom")
# The circomlib files a generated circuit includes (build scripts copy them next to it).
CIRCOMLIB_FILES = ("poseidon", "poseidon_constants", "bitify", "comparators", "binsum", "aliascheck", "compconstant")
BINDING_BITS = 224  # requestNode = requestId * 2^160 + node < 2^224
NIBBLES_PER_ELEMENT = 63
BYTES_PER_ELEMENT = 31

FUSES_RELU = ("dense", "conv2d", "avgpool2d")  # layers ending in a rescale
# An activation element as a Circom expression, from a Circom index expression.
Reference = Callable[[str], str]


class GenerationError(ModelError):
    """A model the generator cannot turn into a circuit (an unsupported layer order, a bound
    too wide for the field)."""


@dataclass
class _Layer:
    """One step of the circuit: a model layer, with a following ReLU fused into it."""

    index: int  # position in the model's layers
    spec: dict
    relu: bool = False
    weighted_index: int = 0  # 1-based among dense and conv2d layers (names w1, b1, w2, ...)


@dataclass
class GeneratedCircuit:
    """A generated circuit: its Circom source and what its inputs look like."""

    name: str
    weights: str  # "private" or "public"
    source: str
    weighted_layers: list[dict] = field(default_factory=list)  # the dense/conv2d specs, in order


def _indent(lines: list[str], depth: int) -> list[str]:
    return [("    " * depth + line) if line else line for line in lines]


def _loops(dims: list[tuple[str, int]], body: list[str]) -> list[str]:
    """Nested Circom for-loops over (variable, size) pairs around `body`."""
    lines: list[str] = []
    for depth, (var, size) in enumerate(dims):
        lines.append("    " * depth + f"for (var {var} = 0; {var} < {size}; {var}++) {{")
    lines.extend(_indent(body, len(dims)))
    for depth in reversed(range(len(dims))):
        lines.append("    " * depth + "}")
    return lines


def _literal(values) -> str:
    """A (nested) list of ints as a Circom array literal."""
    if isinstance(values, list):
        return "[" + ", ".join(_literal(v) for v in values) + "]"
    return str(int(values))


def _shape_of(values) -> list[int]:
    dims = []
    while isinstance(values, list):
        dims.append(len(values))
        values = values[0]
    return dims


def _brackets(names: list[str]) -> str:
    return "".join(f"[{n}]" for n in names)


def _steps(layers: list[dict]) -> list[_Layer]:
    """The model's layers with each ReLU fused into the layer before it when that layer ends in
    a rescale (dense, conv2d, avgpool2d): the quotient's sign bit then gives the ReLU for one
    constraint. Any other ReLU stays a step of its own (a rescale by 2^0 with the ReLU)."""
    steps: list[_Layer] = []
    weighted = 0
    for index, spec in enumerate(layers):
        kind = spec["type"]
        if kind == "relu" and steps and steps[-1].spec["type"] in FUSES_RELU and not steps[-1].relu:
            steps[-1].relu = True
            continue
        step = _Layer(index=index, spec=spec)
        if kind in ("dense", "conv2d"):
            weighted += 1
            step.weighted_index = weighted
        steps.append(step)
    if not steps or steps[-1].spec["type"] != "argmax":
        raise GenerationError("the model's last layer must be an argmax")
    return steps


class _Emitter:
    """Builds the main template's body layer by layer."""

    def __init__(self, model: dict, weights: str, commitment: int | None):
        self.model = model
        self.weights = weights
        self.commitment = commitment
        self.declarations: list[str] = []
        self.body: list[str] = []

    # ---- inputs and commitments ----

    def inputs(self, count: int, maximum: int) -> None:
        self.declarations.append(f"signal input pixels[{count}];")
        self.declarations.append("signal input salt;")
        if maximum + 1 == 1 << unsigned_bits(maximum):
            template = f"InputBits({unsigned_bits(maximum)})"
        elif maximum & (maximum - 1) == 0:
            template = f"InputUpToPowerOfTwo({maximum.bit_length() - 1})"
        else:
            template = f"InputUpTo({maximum}, {unsigned_bits(maximum)})"
        elements = (count + BYTES_PER_ELEMENT - 1) // BYTES_PER_ELEMENT
        self.declarations.append(f"component pixelRange[{count}];")
        self.body += [f"// ---- input: {count} values 0..{maximum}, salted commitment ----"]
        self.body += _loops([("i", count)], [f"pixelRange[i] = {template};", "pixelRange[i].in <== pixels[i];"])
        self.body += [
            f"component pixelElements = PackBytes({count});",
            "pixelElements.in <== pixels;",
            f"component inputHash = PoseidonChain({elements + 1});",
        ]
        self.body += _loops([("e", elements)], ["inputHash.in[e] <== pixelElements.out[e];"])
        self.body += [f"inputHash.in[{elements}] <== salt;", "inputCommitment === inputHash.out;", ""]

    def weights_commitment(self, steps: list[_Layer]) -> None:
        weighted = [s for s in steps if s.weighted_index]
        if self.weights == "public":
            self.body += [
                "// ---- weights: constants of the circuit, committed to by this constant ----",
                f"weightsCommitment === {self.commitment};",
                "",
            ]
            return
        self.body.append("// ---- weights: range checks, the nibble stream, its commitment ----")
        total = 0
        for step in weighted:
            spec = step.spec
            total += _count(spec["weights"]) * spec["weight_bits"] // 4 + len(spec["bias"]) * spec["bias_bits"] // 4
        self.body += [f"signal nibbles[{total}];", "var at = 0;"]
        for step in weighted:
            k, spec = step.weighted_index, step.spec
            shape = _shape_of(spec["weights"])
            names = [f"i{d}" for d in range(len(shape))]
            for name, dims, bits in (
                (f"w{k}", list(zip(names, shape, strict=True)), spec["weight_bits"]),
                (f"b{k}", [("i0", len(spec["bias"]))], spec["bias_bits"]),
            ):
                index = _brackets([d for d, _ in dims])
                self.declarations.append(f"component {name}Nibbles{_brackets([str(s) for _, s in dims])};")
                self.body += _loops(
                    dims,
                    [
                        f"{name}Nibbles{index} = SignedNibbles({bits});",
                        f"{name}Nibbles{index}.in <== {name}{index};",
                        f"for (var n = 0; n < {bits // 4}; n++) {{",
                        f"    nibbles[at] <== {name}Nibbles{index}.out[n];",
                        "    at++;",
                        "}",
                    ],
                )
        self.body += [
            f"component weightElements = PackNibbles({total});",
            "weightElements.in <== nibbles;",
            f"component weightsHash = PoseidonChain({(total + NIBBLES_PER_ELEMENT - 1) // NIBBLES_PER_ELEMENT});",
            "weightsHash.in <== weightElements.out;",
            "weightsCommitment === weightsHash.out;",
            "",
        ]

    # ---- layers ----

    def weight_arrays(self, k: int, spec: dict) -> None:
        shape = _shape_of(spec["weights"])
        if self.weights == "private":
            self.declarations.append(f"signal input w{k}{_brackets([str(s) for s in shape])};")
            self.declarations.append(f"signal input b{k}[{len(spec['bias'])}];")
        else:
            self.body.append(f"var w{k}{_brackets([str(s) for s in shape])} = {_literal(spec['weights'])};")
            self.body.append(f"var b{k}[{len(spec['bias'])}] = {_literal(spec['bias'])};")

    def rescaled(self, step: _Layer, count: int, accumulator: Interval, inner: list[str], dims) -> Reference:
        """Wraps the accumulation lines `inner` (leaving `acc` and the flat output index `o`) with
        the layer's rescale (and ReLU) and returns a reference to its outputs."""
        k, shift = step.weighted_index, step.spec["shift"]
        if shift == 0 and not step.relu:
            # A linear layer's outputs stay linear expressions (a var array, no signals): they
            # cost nothing until a non-linear constraint uses them.
            self.body.append(f"var out{k}[{count}];")
            self.body += _loops(dims, [*inner, f"out{k}[o] = acc;"])
            return lambda i: f"out{k}[{i}]"
        bits = signed_bits(accumulator.floor_shift(shift))
        template = "RescaleReLU" if step.relu else "Rescale"
        self.declarations.append(f"component rescale{k}[{count}];")
        self.body += _loops(
            dims, [*inner, f"rescale{k}[o] = {template}({shift}, {bits});", f"rescale{k}[o].in <== acc;"]
        )
        return lambda i: f"rescale{k}[{i}].out"

    def dense(self, step: _Layer, x: Reference, accumulator: Interval) -> Reference:
        k, spec = step.weighted_index, step.spec
        outputs, inputs = len(spec["weights"]), len(spec["weights"][0])
        self.body.append(
            f"// ---- layer {step.index}: dense {inputs} -> {outputs}, shift {spec['shift']}"
            f"{', relu' if step.relu else ''} ----"
        )
        self.weight_arrays(k, spec)
        if self.weights == "private":
            self.declarations.append(f"signal products{k}[{outputs}][{inputs}];")
            inner = [
                f"var acc = b{k}[o];",
                f"for (var i = 0; i < {inputs}; i++) {{",
                f"    products{k}[o][i] <== w{k}[o][i] * {x('i')};",
                f"    acc += products{k}[o][i];",
                "}",
            ]
        else:
            inner = [
                f"var acc = b{k}[o];",
                f"for (var i = 0; i < {inputs}; i++) {{",
                f"    acc += w{k}[o][i] * {x('i')};",
                "}",
            ]
        reference = self.rescaled(step, outputs, accumulator, inner, [("o", outputs)])
        self.body.append("")
        return reference

    def conv2d(self, step: _Layer, x: Reference, shape: list[int], accumulator: Interval) -> Reference:
        k, spec = step.weighted_index, step.spec
        channels, height, width = shape
        out_channels, _, kernel, _ = _shape_of(spec["weights"])
        padding = spec.get("padding", 0)
        out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
        count = out_channels * out_h * out_w
        self.body.append(
            f"// ---- layer {step.index}: conv2d {channels}x{height}x{width} -> "
            f"{out_channels}x{out_h}x{out_w}, kernel {kernel}, padding {padding}, "
            f"shift {spec['shift']}{', relu' if step.relu else ''} ----"
        )
        self.weight_arrays(k, spec)
        tap = f"{x(f'c * {height * width} + yy * {width} + xx')}"
        if self.weights == "private":
            products = (
                sum(
                    1
                    for y in range(out_h)
                    for xx in range(out_w)
                    for i in range(kernel)
                    for j in range(kernel)
                    if 0 <= y + i - padding < height and 0 <= xx + j - padding < width
                )
                * out_channels
                * channels
            )
            self.declarations.append(f"signal products{k}[{products}];")
            self.body.append(f"var at{k} = 0;")
            term = [
                f"products{k}[at{k}] <== w{k}[oc][c][i][j] * {tap};",
                f"acc += products{k}[at{k}];",
                f"at{k}++;",
            ]
        else:
            term = [f"acc += w{k}[oc][c][i][j] * {tap};"]
        inner = [
            f"var o = oc * {out_h * out_w} + y * {out_w} + x;",
            f"var acc = b{k}[oc];",
            *_loops(
                [("c", channels), ("i", kernel), ("j", kernel)],
                [
                    f"var yy = y + i - {padding};",
                    f"var xx = x + j - {padding};",
                    f"if (yy >= 0 && yy < {height} && xx >= 0 && xx < {width}) {{",
                    *_indent(term, 1),
                    "}",
                ],
            ),
        ]
        reference = self.rescaled(step, count, accumulator, inner, [("oc", out_channels), ("y", out_h), ("x", out_w)])
        self.body.append("")
        return reference

    def pool(self, step: _Layer, x: Reference, shape: list[int], before: Interval) -> Reference:
        kind, size = step.spec["type"], step.spec["size"]
        channels, height, width = shape
        out_h, out_w = height // size, width // size
        count = channels * out_h * out_w
        name = f"{'maxpool' if kind == 'maxpool2d' else 'avgpool'}{step.index}"
        self.body.append(
            f"// ---- layer {step.index}: {kind} {size}x{size} on {channels}x{height}x{width}"
            f"{', relu' if step.relu else ''} ----"
        )
        self.declarations.append(f"component {name}[{count}];")
        window = f"{x(f'c * {height * width} + (y * {size} + i) * {width} + x * {size} + j')}"
        head = f"var o = c * {out_h * out_w} + y * {out_w} + x;"
        dims = [("c", channels), ("y", out_h), ("x", out_w)]
        if kind == "maxpool2d":
            bits = unsigned_bits(before.high - before.low)
            self.body += _loops(
                dims,
                [
                    head,
                    f"{name}[o] = MaxPool({size * size}, {bits});",
                    *_loops([("i", size), ("j", size)], [f"{name}[o].in[i * {size} + j] <== {window};"]),
                ],
            )
        else:
            shift = (size * size).bit_length() - 1
            window_sum = Interval(before.low * size * size, before.high * size * size)
            bits = signed_bits(window_sum.floor_shift(shift))
            template = "RescaleReLU" if step.relu else "Rescale"
            self.body += _loops(
                dims,
                [
                    head,
                    "var sum = 0;",
                    *_loops([("i", size), ("j", size)], [f"sum += {window};"]),
                    f"{name}[o] = {template}({shift}, {bits});",
                    f"{name}[o].in <== sum;",
                ],
            )
        self.body.append("")
        return lambda i: f"{name}[{i}].out"

    def relu(self, step: _Layer, x: Reference, count: int, before: Interval) -> Reference:
        """A ReLU on its own: max(v, 0) as a rescale by 2^0 (the sign bit of v's range check)."""
        name = f"relu{step.index}"
        self.body.append(f"// ---- layer {step.index}: relu on {count} values ----")
        self.declarations.append(f"component {name}[{count}];")
        self.body += _loops(
            [("o", count)], [f"{name}[o] = RescaleReLU(0, {signed_bits(before)});", f"{name}[o].in <== {x('o')};"]
        )
        self.body.append("")
        return lambda i: f"{name}[{i}].out"

    def argmax(self, x: Reference, count: int, before: Interval) -> None:
        bits = unsigned_bits(before.high - before.low)
        self.body.append(f"// ---- argmax over {count} values ----")
        self.body += [f"component label = ArgMax({count}, {bits});"]
        self.body += _loops([("i", count)], [f"label.in[i] <== {x('i')};"])
        self.body.append("")


def _count(values) -> int:
    return sum(_count(v) for v in values) if isinstance(values, list) else 1


def generate(model: QuantizedModel, weights: WeightMode = "private", *, name: str | None = None) -> GeneratedCircuit:
    """The Circom circuit proving one inference of ``model`` (a QuantizedModel) with its weights
    ``private`` (signals, range-checked and hashed in the circuit) or ``public`` (constants of
    the circuit; the model is then public). Raises GenerationError for a model it cannot take."""
    if weights not in WEIGHT_MODES:
        raise GenerationError(f"weights must be one of {', '.join(WEIGHT_MODES)}, got {weights!r}")
    data = model.to_dict()
    steps = _steps(data["layers"])
    bounds = layer_bounds(model, weights)
    emitter = _Emitter(data, weights, model.weights_commitment() if weights == "public" else None)
    shape = list(data["input"]["shape"])
    count = _product(shape)
    emitter.inputs(count, data["input"]["max"])
    emitter.weights_commitment(steps)

    reference: Reference = lambda i: f"pixels[{i}]"  # noqa: E731
    before = bounds[0].output  # the input's interval; bounds[j + 1] is after model layer j
    for step in steps:
        kind, spec = step.spec["type"], step.spec
        accumulator = bounds[step.index + 1].accumulator or Interval(0, 0)
        if kind == "dense":
            reference = emitter.dense(step, reference, accumulator)
            shape = [len(spec["weights"])]
        elif kind == "conv2d":
            reference = emitter.conv2d(step, reference, shape, accumulator)
            padding = spec.get("padding", 0)
            kernel = len(spec["weights"][0][0])
            shape = [len(spec["weights"]), shape[1] + 2 * padding - kernel + 1, shape[2] + 2 * padding - kernel + 1]
        elif kind in ("maxpool2d", "avgpool2d"):
            reference = emitter.pool(step, reference, shape, before)
            shape = [shape[0], shape[1] // spec["size"], shape[2] // spec["size"]]
        elif kind == "relu":
            reference = emitter.relu(step, reference, _product(shape), before)
        elif kind == "flatten":
            shape = [_product(shape)]
        elif kind == "argmax":
            emitter.argmax(reference, _product(shape), before)
        else:
            raise GenerationError(f"layer {step.index}: unsupported type {kind!r}")
        before = bounds[step.index + 2 if step.relu else step.index + 1].output

    emitter.body += [
        "// ---- output and binding: label * 2^224 + requestNode, with requestNode < 2^224 ----",
        "// The range check makes the split unique: without it a prover could move a multiple of",
        "// 2^224 between the label and requestNode and claim another label.",
        f"component requestNodeRange = Num2Bits({BINDING_BITS});",
        "requestNodeRange.in <== requestNode;",
        f"outputBinding === label.index * (1 << {BINDING_BITS}) + requestNode;",
    ]
    title = name or data.get("name", "model")
    template = "".join(part.capitalize() for part in title.replace("_", "-").split("-") if part) or "Model"
    source = "\n".join(
        [
            "pragma circom 2.1.0;",
            "",
            f"// Proof of one inference of the quantized model {title!r} ({weights} weights), generated by",
            "// joynet.zk.circuitgen from its joynet-quantized-model/1 file; do not edit (regenerate it:",
            "// `joynet circuit generate`). Public inputs, in order: [weightsCommitment, inputCommitment,",
            "// outputBinding = label * 2^224 + requestId * 2^160 + node].",
            "",
            'include "poseidon.circom";',
            'include "bitify.circom";',
            "",
            LIBRARY.read_text().rstrip(),
            "",
            f"template {template}() {{",
            "    signal input weightsCommitment;",
            "    signal input inputCommitment;",
            "    signal input outputBinding;",
            "    signal input requestNode;  // private: requestId * 2^160 + node",
            *_indent(emitter.declarations, 1),
            "",
            *_indent(emitter.body, 1),
            "}",
            "",
            f"component main {{public [weightsCommitment, inputCommitment, outputBinding]}} = {template}();",
            "",
        ]
    )
    return GeneratedCircuit(
        name=title,
        weights=weights,
        source=source,
        weighted_layers=[s.spec for s in steps if s.weighted_index],
    )


def _product(values: list[int]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
