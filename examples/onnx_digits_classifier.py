"""Example: a model JoyNet did not write, packaged for the `onnx` runtime.

A model owner trains a scikit-learn classifier (logistic regression on scikit-learn's 8x8 digits,
fixed seed and split), exports it to ONNX with skl2onnx, and writes the package directory that
`joynet model publish` takes: the `.onnx` file and a `model.yaml` naming the `onnx` framework, the
tensor input, the outputs, the quantization of the probabilities (nodes compare integers, not
floats) and the weights commitment (keccak256 of the `.onnx` file). Reproducible: the same
scikit-learn and skl2onnx give the same bytes.

    .venv/bin/python examples/onnx_digits_classifier.py DIR     # writes DIR/model.onnx, DIR/model.yaml
    .venv/bin/joynet model publish DIR                                # prints the metadata CID
"""

import argparse
from pathlib import Path

import numpy as np
import yaml
from eth_hash.auto import keccak

PROBABILITY_SCALE = 1_000_000  # probabilities as integers in millionths


def export(directory: Path, quorum: int = 3) -> Path:
    """Trains, exports and writes the package directory; returns it."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    pixels, labels = load_digits(return_X_y=True)
    train_x, _, train_y, _ = train_test_split(pixels / 16.0, labels, test_size=0.25, random_state=7, stratify=labels)
    classifier = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    onnx_model = to_onnx(
        classifier, train_x[:1].astype(np.float32), options={id(classifier): {"zipmap": False}}, target_opset=17
    )
    model_bytes = onnx_model.SerializeToString()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(model_bytes)
    description = {
        "name": "digits-logistic-regression",
        "version": "1.0.0",
        "framework": "onnx",
        "license": "BSD-3-Clause",
        "inputSchema": {
            "type": "object",
            "properties": {
                "X": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 64,
                    "items": {"type": "array", "minItems": 64, "maxItems": 64, "items": {"type": "number"}},
                }
            },
            "required": ["X"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "label": {"type": "array", "items": {"type": "integer"}},
                "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            },
        },
        "onnx": {
            "model": "model.onnx",
            "threads": 1,
            "inputs": {"X": {"dtype": "float32", "shape": [-1, 64]}},
            "outputs": ["label", "probabilities"],
        },
        "quantization": {"outputs": {"probabilities": PROBABILITY_SCALE}},
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
