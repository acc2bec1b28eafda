"""Trains the 64-16-10 digits MLP with PyTorch and quantizes it for the circuit.

    .venv/bin/python circuits/digits/train.py

Deterministic: fixed seeds, one thread, deterministic algorithms, full-batch training on a fixed
stratified split, so a rerun with the pinned torch and scikit-learn writes the same files.
Writes, next to this script:
  float_model.json  the trained float weights (w1[16][64], b1[16], w2[10][16], b2[10])
  model.json        the quantized integer model the circuit proves (int4 weights, int16 biases)
  manifest.json     accuracies (float and quantized, held-out), scales, commitment, sha256 of both
"""

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import sklearn
import torch

from joynet.zk.commitments import weights_commitment
from joynet.zk.digits import HELD_OUT_FRACTION, SPLIT_SEED, accuracy, load_split
from joynet.zk.model import BIAS_MAX, BIAS_MIN, HIDDEN, INPUTS, CLASSES, PIXEL_MAX, SHIFT, WEIGHT_MAX, QuantizedMLP

HERE = Path(__file__).resolve().parent
TORCH_SEED = 0
EPOCHS = 600
LEARNING_RATE = 0.02
WEIGHT_DECAY = 1e-4
MIN_QUANTIZED_ACCURACY = 0.90


def train(x_train, y_train) -> torch.nn.Sequential:
    torch.manual_seed(TORCH_SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = torch.nn.Sequential(torch.nn.Linear(INPUTS, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    inputs = torch.tensor(x_train / PIXEL_MAX, dtype=torch.float32)
    targets = torch.tensor(y_train, dtype=torch.long)
    for _ in range(EPOCHS):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs), targets)
        loss.backward()
        optimizer.step()
    return net


def float_accuracy(net, pixels, labels) -> float:
    with torch.no_grad():
        predicted = net(torch.tensor(pixels / PIXEL_MAX, dtype=torch.float32)).argmax(dim=1).numpy()
    return float((predicted == labels).mean())


def quantize(w1, b1, w2, b2) -> tuple[QuantizedMLP, dict]:
    """Symmetric per-layer int4 weights (-7..7, post-training: the float model quantizes to
    int4 without losing more than a point of held-out accuracy, so no quantization-aware
    fine-tuning is needed). The first accumulator's scale is 16 * s_w1 (pixels are the real
    input times 16); the hidden value after the 2**SHIFT rescale has scale 16 * s_w1 / 2**SHIFT;
    the logits' scale is that times s_w2 (argmax ignores it)."""
    s_w1 = WEIGHT_MAX / np.abs(w1).max()
    s_w2 = WEIGHT_MAX / np.abs(w2).max()
    acc1_scale = PIXEL_MAX * s_w1
    hidden_scale = acc1_scale / 2**SHIFT
    logit_scale = s_w2 * hidden_scale

    def ints(array, low, high, what):
        rounded = np.rint(array).astype(np.int64)
        if rounded.min() < low or rounded.max() > high:
            raise SystemExit(f"{what} does not fit [{low}, {high}] after scaling: retrain with more weight decay")
        return rounded.tolist()

    model = QuantizedMLP(
        w1=tuple(map(tuple, ints(w1 * s_w1, -WEIGHT_MAX, WEIGHT_MAX, "w1"))),
        b1=tuple(ints(b1 * acc1_scale, BIAS_MIN, BIAS_MAX, "b1")),
        w2=tuple(map(tuple, ints(w2 * s_w2, -WEIGHT_MAX, WEIGHT_MAX, "w2"))),
        b2=tuple(ints(b2 * logit_scale, BIAS_MIN, BIAS_MAX, "b2")),
    )
    scales = {"w1": s_w1, "w2": s_w2, "acc1": acc1_scale, "hidden": hidden_scale, "logits": logit_scale}
    return model, scales


def write_json(path: Path, data) -> str:
    text = json.dumps(data, indent=1) + "\n"
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    x_train, x_test, y_train, y_test = load_split()
    net = train(x_train, y_train)
    w1, b1 = (p.detach().numpy().astype(np.float64) for p in (net[0].weight, net[0].bias))
    w2, b2 = (p.detach().numpy().astype(np.float64) for p in (net[2].weight, net[2].bias))
    model, scales = quantize(w1, b1, w2, b2)

    floats = {"architecture": "64-16-10 ReLU MLP, input = pixel / 16",
              "w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(), "b2": b2.tolist()}
    float_sha = write_json(HERE / "float_model.json", floats)
    quantized = {"architecture": "64-16-10 ReLU MLP, integer pixels 0..16, hidden = max(acc >> shift, 0)",
                 **model.to_dict()}
    model_sha = write_json(HERE / "model.json", quantized)

    results = {
        "float_accuracy_train": float_accuracy(net, x_train, y_train),
        "float_accuracy_held_out": float_accuracy(net, x_test, y_test),
        "quantized_accuracy_train": accuracy(model, x_train, y_train),
        "quantized_accuracy_held_out": accuracy(model, x_test, y_test),
    }
    manifest = {
        "dataset": "scikit-learn load_digits (1,797 images of 8x8 pixels 0..16)",
        "split": {"held_out_fraction": HELD_OUT_FRACTION, "random_state": SPLIT_SEED, "stratified": True,
                  "train": len(y_train), "held_out": len(y_test)},
        "training": {"torch_seed": TORCH_SEED, "epochs": EPOCHS, "optimizer": "Adam full batch",
                     "learning_rate": LEARNING_RATE, "weight_decay": WEIGHT_DECAY,
                     "torch": torch.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "quantization": {"weights": "int4 (-7..7), symmetric per layer, post-training", "biases": "int16 at the accumulator's scale",
                         "shift": SHIFT, "scales": scales},
        **results,
        "weights_commitment": "0x" + weights_commitment(model).to_bytes(32, "big").hex(),
        "sha256": {"float_model.json": float_sha, "model.json": model_sha},
    }
    write_json(HERE / "manifest.json", manifest)
    print(json.dumps(results, indent=1))
    if results["quantized_accuracy_held_out"] < MIN_QUANTIZED_ACCURACY:
        raise SystemExit(f"quantized held-out accuracy below {MIN_QUANTIZED_ACCURACY:.0%}")


if __name__ == "__main__":
    main()
