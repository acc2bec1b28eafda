"""Trains the digits CNN with PyTorch and quantizes it to the joynet-quantized-model/1 format.

    .venv/bin/python circuits/digits_cnn/train.py

The network (about 54,000 parameters, 736 activations), built for a Groth16 circuit with public
weights, where a linear layer costs no constraints and every rescale, ReLU and comparison does:

    pixels 1x8x8 (0..16)
    conv2d 3x3 pad 1 -> 16 channels, shift 0     free: no rescale
    avgpool2d 2 -> 16x4x4, relu                  256 floor divisions by 4 (the ReLU fused)
    conv2d 3x3 pad 1 -> 32 channels, shift 0     free
    avgpool2d 2 -> 32x2x2, relu                  128
    flatten -> dense 128 -> 352, relu            352 rescales (the ReLU fused)
    dense 352 -> 10, shift 0                     free
    argmax                                       9 comparisons

Pooling before the ReLU (the two commute for max pooling; for the average they differ, and the
network is trained that way) puts the ReLU on the 4x smaller pooled map, and the convolutions
keep shift 0 so that their 1,024 and 512 outputs are never rescaled: the average pooling's
floor division is the only rescale of each convolution block.

Deterministic: fixed seeds, one thread, deterministic algorithms, full-batch training on the
digits MLP's fixed stratified split (joynet.zk.digits.load_split), so a rerun with the pinned
torch and scikit-learn writes the same files (checked: two runs, same sha256). Writes model.json
and manifest.json into joynet/zk/digits_cnn_model/ (circuits/digits_cnn/ links to them).
"""

import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch

from joynet.zk.digits import CNN_MODEL_DIR, HELD_OUT_FRACTION, SPLIT_SEED, accuracy, load_split
from joynet.zk.quantized import ArgMax, AvgPool2d, Conv2d, Dense, MaxPool2d, QuantizedModel, ReLU

PIXEL_MAX = 16
TORCH_SEED = 0
EPOCHS = 1000
LEARNING_RATE = 0.003
WEIGHT_DECAY = 1e-4
CHANNELS = (16, 32)
HIDDEN = 352
CLASSES = 10
# Weight bits per weighted layer (conv1, conv2, dense1, dense2) and the dense layer's rescale:
# the hidden activations keep about HIDDEN_BITS bits of precision.
WEIGHT_BITS = (8, 8, 8, 8)
HIDDEN_BITS = 10
MIN_QUANTIZED_ACCURACY = 0.95
COMMAND = "python circuits/digits_cnn/train.py"


class DigitsCNN(torch.nn.Module):
    """The float network the integer one is quantized from (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, CHANNELS[0], 3, padding=1)
        self.conv2 = torch.nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, padding=1)
        self.dense1 = torch.nn.Linear(CHANNELS[1] * 2 * 2, HIDDEN)
        self.dense2 = torch.nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        x = torch.relu(torch.nn.functional.avg_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.nn.functional.avg_pool2d(self.conv2(x), 2))
        return self.dense2(torch.relu(self.dense1(x.flatten(1))))

    def weighted_layers(self):
        return (self.conv1, self.conv2, self.dense1, self.dense2)


def as_images(pixels) -> torch.Tensor:
    """Integer pixels (N, 64) to the float network's input (N, 1, 8, 8) in [0, 1]."""
    return torch.tensor(np.asarray(pixels) / PIXEL_MAX, dtype=torch.float32).reshape(-1, 1, 8, 8)


def train(x_train, y_train) -> DigitsCNN:
    torch.manual_seed(TORCH_SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = DigitsCNN()
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    inputs, targets = as_images(x_train), torch.tensor(y_train, dtype=torch.long)
    for _ in range(EPOCHS):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    return net.eval()


def float_accuracy(net: DigitsCNN, pixels, labels) -> float:
    with torch.no_grad():
        predicted = net(as_images(pixels)).argmax(dim=1).numpy()
    return float((predicted == labels).mean())


def signed_bits(values) -> int:
    """The smallest multiple of 4 (at least 4) of bits that holds every value as a signed integer."""
    largest = max(1, int(np.abs(np.asarray(values)).max()))
    return max(4, 4 * math.ceil((largest.bit_length() + 1) / 4))


def quantize(net: DigitsCNN) -> tuple[dict, dict]:
    """Symmetric per-layer weights of WEIGHT_BITS bits; each bias at its accumulator's scale.

    An activation's integer is its float value times its scale: the input's is PIXEL_MAX, a
    layer's accumulator has the input's scale times the weights', the average pooling keeps it,
    and the dense layer's rescale by 2**shift divides it, the shift chosen so that the hidden
    activations' scale is about 2**HIDDEN_BITS / (largest hidden value on the training set)."""
    layers = net.weighted_layers()
    weights = [layer.weight.detach().numpy().astype(np.float64) for layer in layers]
    biases = [layer.bias.detach().numpy().astype(np.float64) for layer in layers]
    scale = float(PIXEL_MAX)
    scales: dict[str, float] = {"input": scale}
    quantized = []
    for index, (w, b, bits) in enumerate(zip(weights, biases, WEIGHT_BITS, strict=True)):
        weight_scale = (2 ** (bits - 1) - 1) / np.abs(w).max()
        scale *= weight_scale
        shift = 0
        if index == 2:
            shift = max(0, math.floor(math.log2(scale / 2**HIDDEN_BITS)))
        # floor(acc / 2**shift) rounds down: half a step in the bias makes it round to nearest.
        bias = np.rint(b * scale).astype(np.int64) + (2 ** (shift - 1) if shift else 0)
        quantized.append(
            {
                "weights": np.rint(w * weight_scale).astype(np.int64).tolist(),
                "bias": bias.tolist(),
                "weight_bits": bits,
                "bias_bits": signed_bits(bias),
                "shift": shift,
            }
        )
        scales[f"weights{index + 1}"] = weight_scale
        scale /= 2**shift
        scales[f"layer{index + 1}"] = scale
    conv1, conv2, dense1, dense2 = (
        {"type": kind, **q} for kind, q in zip(("conv2d", "conv2d", "dense", "dense"), quantized, strict=True)
    )
    conv1["padding"] = conv2["padding"] = 1
    model = {
        "format": "joynet-quantized-model/1",
        "name": "digits-cnn",
        "input": {"shape": [1, 8, 8], "max": PIXEL_MAX},
        "layers": [
            conv1,
            {"type": "avgpool2d", "size": 2},
            {"type": "relu"},
            conv2,
            {"type": "avgpool2d", "size": 2},
            {"type": "relu"},
            {"type": "flatten"},
            dense1,
            {"type": "relu"},
            dense2,
            {"type": "argmax"},
        ],
    }
    return model, scales


# What the estimate adds besides the layers: the input's range checks (64 pixels of 5 bits plus a
# comparison with 16), the input commitment (one Poseidon of three packed elements and the salt)
# and the output binding's checks; about a thousand constraints.
FIXED_CONSTRAINTS = 1_000


def estimate_constraints(model: QuantizedModel) -> dict[str, int]:
    """R1CS constraints of the model's circuit with public weights (weights are constants: a
    dense or convolution layer is linear and free), layer by layer, from the public-weight bounds:

    - a rescale (a weighted layer with shift > 0, or an average pooling's division by 2**k):
      per output, k remainder bits + the quotient's bits (its magnitude and a sign) + 2; a ReLU
      right after a weighted layer's rescale is fused into it (the quotient's sign is known);
    - any other ReLU: per element, a comparison with zero: its bits + 2;
    - a max pooling: per output, s*s - 1 comparisons of the value's bits + 2;
    - the argmax: per logit, a comparison of the logit differences' bits + 2.
    """
    bounds = model.bounds("public")
    costs: dict[str, int] = {}
    previous_fusable = False
    for index, (layer, bound) in enumerate(zip(model.layers, bounds, strict=True)):
        outputs = bound.low.size
        value_bits = bound.bits + 1
        cost, fusable = 0, False
        if isinstance(layer, Dense | Conv2d) and layer.shift:
            cost, fusable = outputs * (layer.shift + value_bits + 2), True
        elif isinstance(layer, AvgPool2d):
            cost = outputs * ((layer.size**2).bit_length() - 1 + value_bits + 2)
        elif isinstance(layer, ReLU) and not previous_fusable:
            cost = outputs * (value_bits + 2)
        elif isinstance(layer, MaxPool2d):
            cost = outputs * (layer.size**2 - 1) * (value_bits + 2)
        elif isinstance(layer, ArgMax):
            cost = outputs * (value_bits + 1 + 2)
        previous_fusable = fusable
        if cost:
            costs[f"{index}:{layer.type}"] = cost
    costs["input, commitments, binding"] = FIXED_CONSTRAINTS
    return {**costs, "total": sum(costs.values())}


def parameter_count(net: DigitsCNN) -> int:
    return sum(p.numel() for p in net.parameters())


def write_json(path: Path, data, indent: int | None = 1) -> str:
    text = json.dumps(data, indent=indent, separators=None if indent else (",", ":")) + "\n"
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:

    started = time.monotonic()
    x_train, x_test, y_train, y_test = load_split()
    net = train(x_train, y_train)
    print(f"trained in {time.monotonic() - started:.1f} s", file=sys.stderr)
    document, scales = quantize(net)
    model = QuantizedModel.from_dict(document)
    CNN_MODEL_DIR.mkdir(exist_ok=True)
    model_sha = write_json(CNN_MODEL_DIR / "model.json", model.to_dict(), indent=None)
    results = {
        "parameters": parameter_count(net),
        "float_accuracy_train": float_accuracy(net, x_train, y_train),
        "float_accuracy_held_out": float_accuracy(net, x_test, y_test),
        "quantized_accuracy_train": accuracy(model, x_train, y_train),
        "quantized_accuracy_held_out": accuracy(model, x_test, y_test),
    }
    estimate = estimate_constraints(model)
    manifest = {
        "dataset": "scikit-learn load_digits (1,797 images of 8x8 pixels 0..16)",
        "split": {
            "held_out_fraction": HELD_OUT_FRACTION,
            "random_state": SPLIT_SEED,
            "stratified": True,
            "train": len(y_train),
            "held_out": len(y_test),
        },
        "architecture": "conv3x3(16) avgpool2 relu, conv3x3(32) avgpool2 relu, dense 352 relu, dense 10, argmax",
        "training": {
            "torch_seed": TORCH_SEED,
            "epochs": EPOCHS,
            "optimizer": "Adam full batch",
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "quantization": {
            "weights": "symmetric per layer, post-training",
            "weight_bits": list(WEIGHT_BITS),
            "biases": "at the accumulator's scale",
            "scales": scales,
        },
        **results,
        "estimated_constraints": estimate,
        "weights_commitment": "0x" + model.weights_commitment().to_bytes(32, "big").hex(),
        "sha256": {"model.json": model_sha},
        "command": COMMAND,
    }
    write_json(CNN_MODEL_DIR / "manifest.json", manifest)
    print(json.dumps({**results, "estimated_constraints": estimate["total"]}, indent=1))
    if results["quantized_accuracy_held_out"] < MIN_QUANTIZED_ACCURACY:
        raise SystemExit(f"quantized held-out accuracy below {MIN_QUANTIZED_ACCURACY:.0%}")


if __name__ == "__main__":
    main()
