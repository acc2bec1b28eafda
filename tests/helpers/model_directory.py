"""A model directory as a model owner would publish it: weights, a config in a subdirectory,
a hidden file that must not be published, and the model.yaml description."""

import random
from pathlib import Path

import yaml

DESCRIPTION = {
    "name": "digits-mlp",
    "version": "1.0.0",
    "framework": "pytorch",
    "inputSchema": {"type": "object", "properties": {"pixels": {"type": "array", "items": {"type": "integer"}}}},
    "outputSchema": {"type": "object", "properties": {"digit": {"type": "integer"}}},
    "quantization": {"weights": "int8", "scale": 256},
    "weightsCommitment": "0x" + "ab" * 32,
    "verification": {"quorum": 1, "circuitId": "0x" + "01" * 32},
    "license": "MIT",
}

WEIGHTS = random.Random(64).randbytes(600_000)  # three chunks
CONFIG = b'{"layers": [64, 16, 10]}'


def write_model_directory(directory: Path, description: dict = DESCRIPTION) -> Path:
    (directory / "config").mkdir(parents=True)
    (directory / "weights.bin").write_bytes(WEIGHTS)
    (directory / "config" / "layers.json").write_bytes(CONFIG)
    (directory / ".DS_Store").write_bytes(b"finder noise")
    (directory / "model.yaml").write_text(yaml.safe_dump(description))
    return directory
