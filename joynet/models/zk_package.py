"""Model packages of the ``joynet-zk`` framework: a quantized model with its generated circuit.

``write_zk_package(directory, model_file, circuit_dir)`` lays out what ``joynet model publish``
publishes and the ``joynet-zk`` runtime serves (joynet.inference.runtimes.zk_circuit):
``model.json``, the circuit's witness generator, proving key, verification key and manifest under
``circuit/``, and a ``model.yaml`` whose weights commitment, circuit id (the sha-256 of the
verification key) and input/output schemas are computed from the files themselves.
"""

import hashlib
import json
import shutil
from pathlib import Path

import yaml

from joynet.models.builtin import SALT_SCHEMA
from joynet.models.errors import ModelPackageError
from joynet.zk.errors import ModelError
from joynet.zk.quantized import QuantizedModel

FRAMEWORK = "joynet-zk"
CIRCUIT_FILES = ("manifest.json", "verification_key.json")  # plus <name>.wasm and <name>.zkey


def write_zk_package(
    directory: str | Path,
    model_file: str | Path,
    circuit_dir: str | Path,
    *,
    version: str = "1.0.0",
    license: str = "MIT",
    description: str | None = None,
) -> Path:
    """Writes the package of ``model_file`` proven by the circuit built in ``circuit_dir``;
    returns ``directory``. Raises ModelPackageError when the circuit is not this model's."""
    directory, circuit_dir = Path(directory), Path(circuit_dir)
    try:
        model = QuantizedModel.load(model_file)
    except ModelError as error:
        raise ModelPackageError(str(error)) from None
    manifest_path = circuit_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ModelPackageError(f"{circuit_dir} has no manifest.json: build the circuit first (circuits/build.sh)")
    manifest = json.loads(manifest_path.read_text())
    stem = Path(manifest["circuit"]).stem
    files = [*CIRCUIT_FILES, f"{stem}.wasm", f"{stem}.zkey"]
    missing = [name for name in files if not (circuit_dir / name).is_file()]
    if missing:
        raise ModelPackageError(f"{circuit_dir} lacks {', '.join(missing)}")
    vkey = (circuit_dir / "verification_key.json").read_bytes()
    if hashlib.sha256(vkey).hexdigest() != manifest["sha256"]["verification_key"]:
        raise ModelPackageError(f"{circuit_dir}: verification_key.json is not the one its manifest records")
    weights_commitment = f"0x{model.weights_commitment():064x}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "circuit").mkdir(exist_ok=True)
    shutil.copyfile(model_file, directory / "model.json")
    for name in files:
        shutil.copyfile(circuit_dir / name, directory / "circuit" / name)
    classes = model.classes
    metadata = {
        "name": model.name or stem,
        "version": version,
        "framework": FRAMEWORK,
        "description": description
        or f"{model.name or stem}: a quantized model whose every answer carries a Groth16 proof",
        "license": license,
        "inputSchema": {
            "type": "object",
            "properties": {
                "input": {
                    "type": "array",
                    "minItems": model.input_size,
                    "maxItems": model.input_size,
                    "items": {"type": "integer", "minimum": 0, "maximum": model.input_max},
                    "description": f"the input, shape {list(model.input_shape)}, flat in C-H-W order",
                },
                "salt": SALT_SCHEMA,
            },
            "required": ["input", "salt"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "class": {"type": "integer", "minimum": 0, "maximum": classes - 1},
                "logits": {"type": "array", "minItems": classes, "maxItems": classes, "items": {"type": "integer"}},
            },
            "required": ["class", "logits"],
        },
        "quantization": {"format": "joynet-quantized-model/1", "weights": manifest.get("weights", "private")},
        "weightsCommitment": weights_commitment,
        "verification": {"quorum": 1, "circuitId": "0x" + hashlib.sha256(vkey).hexdigest()},
        "outputCommitment": "the class as a big-endian bytes32 (the proof's outputBinding carries it)",
    }
    # The description must be model.yaml: model.json is the package's weights file.
    (directory / "model.yaml").write_text(yaml.safe_dump(metadata, sort_keys=True))
    return directory
