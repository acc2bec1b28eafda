"""Example: a convolutional network trained and exported from PyTorch, packaged for the `onnx` runtime.

A model owner trains a small CNN (two 3x3 convolutions, max pooling, two dense layers: 85,194
parameters) on scikit-learn's 8x8 digits with a fixed seed on one thread, exports it with
`torch.onnx.export`, and writes the package directory that `joynet model publish` takes: the
`.onnx` file and a `model.yaml` naming the `onnx` framework, the image input, the logits output and
its quantization (nodes compare integers, not floats), and the weights commitment (keccak256 of
the `.onnx` file). Reproducible: the same torch gives the same bytes on the same kind of CPU.

    .venv/bin/python examples/onnx_cnn_classifier.py DIR     # writes DIR/model.onnx, DIR/model.yaml
    .venv/bin/joynet model publish DIR                       # prints the metadata CID
"""

import argparse
import io
import warnings
from pathlib import Path

import yaml
from eth_hash.auto import keccak

LOGIT_SCALE = 10_000  # logits as integers in ten-thousandths
TRAINING_IMAGES = 1500  # the rest of the 1,797 are held out
EPOCHS, BATCH, LEARNING_RATE = 8, 50, 1e-3


def digits_images():
    """scikit-learn's digits as (n, 1, 8, 8) float32 images in [0, 1], and their labels."""
    import torch
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    return torch.tensor(pixels / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8), torch.tensor(labels)


def train():
    """The trained network and its held-out accuracy."""
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same bytes every run
    try:
        images, labels = digits_images()
        network = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(64 * 4 * 4, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )
        optimizer = torch.optim.Adam(network.parameters(), LEARNING_RATE)
        order = torch.Generator().manual_seed(0)
        for _ in range(EPOCHS):
            permutation = torch.randperm(TRAINING_IMAGES, generator=order)
            for start in range(0, TRAINING_IMAGES, BATCH):
                batch = permutation[start : start + BATCH]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(network(images[batch]), labels[batch]).backward()
                optimizer.step()
        network.eval()
        with torch.no_grad():
            predicted = network(images[TRAINING_IMAGES:]).argmax(1)
        accuracy = float((predicted == labels[TRAINING_IMAGES:]).float().mean())
    finally:
        torch.set_num_threads(threads)
    return network, accuracy


def export(directory: Path, quorum: int = 3) -> Path:
    """Trains, exports and writes the package directory; returns it."""
    import torch

    network, accuracy = train()
    exported = io.BytesIO()
    # The TorchScript exporter: the torch.export-based one needs onnxscript, which this model does
    # not need for anything else (torch warns that the TorchScript one is no longer its default).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            network,
            (torch.zeros(1, 1, 8, 8),),
            exported,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    model_bytes = exported.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(model_bytes)
    description = {
        "name": "digits-cnn",
        "version": "1.0.0",
        "framework": "onnx",
        "license": "MIT",
        "description": f"A CNN on scikit-learn's 8x8 digits; held-out accuracy {accuracy:.3f}",
        # Shallow on purpose: the onnx runtime checks every input's dtype and shape itself, and a
        # schema over each of 64 pixels per image costs more than the network does.
        "inputSchema": {
            "type": "object",
            "properties": {"image": {"type": "array", "minItems": 1, "maxItems": 256}},
            "required": ["image"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"logits": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}},
        },
        "onnx": {
            "model": "model.onnx",
            "threads": 1,
            "inputs": {"image": {"dtype": "float32", "shape": [-1, 1, 8, 8]}},
            "outputs": ["logits"],
        },
        "quantization": {"outputs": {"logits": LOGIT_SCALE}},
        "weightsCommitment": "0x" + keccak(model_bytes).hex(),
        "verification": {"quorum": quorum, "circuitId": None},
    }
    (directory / "model.yaml").write_text(yaml.safe_dump(description, sort_keys=False))
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    written = export(parser.parse_args().directory)
    print(f"wrote {written / 'model.onnx'} and {written / 'model.yaml'}")
