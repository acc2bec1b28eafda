"""Sentence embedders (quorum policy) with sentence-transformers, e.g. all-MiniLM-L6-v2.

Input ``{"text": str}`` or ``{"texts": [str, ...]}``. The runtime writes the package's files
(already verified against their CIDs by the store) into a cache directory keyed by the metadata
CID and loads them from there with ``SentenceTransformer(dir, local_files_only=True)``; nothing is
downloaded (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``). Only safetensors weights and the
module types in ``ALLOWED_MODULES`` are accepted, so a package cannot make the node unpickle
anything or import arbitrary code.

**Quantized output** (what independent nodes agree on bit for bit): the texts are encoded exactly
as ``SentenceTransformer.encode(texts, batch_size=32)`` does (the model's own pipeline: Transformer,
mean pooling, L2 normalisation; float32), then every component x becomes the int8
``q = clip(rint(float32(x) * 127), -127, 127)`` (``numpy.rint``: round half to even).
Output ``{"embedding": [384 ints]}`` (or ``{"embeddings": [[...], ...]}``, one row per text, in order).

**Output commitment**: ``keccak256(uint32_be(n) || uint32_be(dim) || q)``, where n is the number of
texts (1 for ``text``), dim the embedding size (384) and q the n x dim int8 values row-major, each
one byte in two's complement (``abi.encodePacked(uint32 n, uint32 dim, int8[] q)`` in Solidity).

**Weights commitment** (metadata ``weightsCommitment``, checked at load): keccak256 of the
``model.safetensors`` file.
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from eth_hash.auto import keccak

from joynet.inference.errors import InvalidInputError, ModelLoadError
from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput

FRAMEWORK = "sentence-transformers"
WEIGHTS_FILE = "model.safetensors"
BATCH_SIZE = 32
INT8_SCALE = 127
ALLOWED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".py", ".ckpt")


def offline() -> None:
    """Nothing may be downloaded at run time."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def quantize(embeddings) -> np.ndarray:
    """float embeddings (n x dim) -> int8, q = clip(rint(float32(x) * 127), -127, 127)."""
    values = np.asarray(embeddings, dtype=np.float32)
    return np.clip(np.rint(values * np.float32(INT8_SCALE)), -INT8_SCALE, INT8_SCALE).astype(np.int8)


def encode_quantized(q: np.ndarray) -> bytes:
    """The canonical encoding the output commitment hashes (see the module's docstring)."""
    q = np.ascontiguousarray(q, dtype=np.int8)
    if q.ndim != 2:
        raise ValueError("expected an n x dim matrix")
    n, dim = q.shape
    return n.to_bytes(4, "big") + dim.to_bytes(4, "big") + q.tobytes(order="C")


def embedding_commitment(q: np.ndarray) -> bytes:
    return keccak(encode_quantized(q))


class SentenceEmbeddingRuntime(ModelRuntime):
    framework = FRAMEWORK  # the name of its entry point (pyproject.toml)

    def __init__(self, package, context):
        super().__init__(package, context)
        offline()
        self._check_package()
        directory = self._materialise()
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(directory), device=context.device, local_files_only=True)
        except Exception as error:  # noqa: BLE001 - any loader failure is the package's
            raise ModelLoadError(f"model {package.cid}: sentence-transformers cannot load it: {error}") from None
        self.model.eval()
        self.directory = directory

    def _check_package(self) -> None:
        import json

        files, cid = self.package.files, self.package.cid
        for name in ("modules.json", WEIGHTS_FILE):
            if name not in files:
                raise ModelLoadError(f"model {cid}: the package has no {name}")
        unsafe = sorted(name for name in files if name.lower().endswith(FORBIDDEN_SUFFIXES))
        if unsafe:
            raise ModelLoadError(f"model {cid}: refusing files that could run code when loaded: {', '.join(unsafe)}")
        try:
            modules = json.loads(self.package.read("modules.json"))
            types = {module["type"] for module in modules}
        except (ValueError, TypeError, KeyError) as error:
            raise ModelLoadError(f"model {cid}: modules.json is malformed: {error}") from None
        if not types <= ALLOWED_MODULES:
            raise ModelLoadError(f"model {cid}: module types {sorted(types - ALLOWED_MODULES)} are not allowed")
        actual = self.package.keccak(WEIGHTS_FILE)
        declared = self.package.weights_commitment.lower()
        if actual != declared:
            raise ModelLoadError(
                f"model {cid}: {WEIGHTS_FILE} hashes to {actual}, not to the weightsCommitment {declared} "
                "its metadata declares"
            )

    def _materialise(self) -> Path:
        """Writes the verified files to cache_dir (replacing whatever was there) and returns it."""
        target = Path(self.context.cache_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            self.package.write_to(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @property
    def dimension(self) -> int:
        return self.model.get_sentence_embedding_dimension()

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 embeddings exactly as SentenceTransformer.encode gives them."""
        return self.model.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)

    def run(self, input_data, *, request_id=None, node=None) -> RuntimeOutput:
        single = "text" in input_data
        texts = [input_data["text"]] if single else list(input_data["texts"])
        if not texts or not all(isinstance(text, str) for text in texts):
            raise InvalidInputError("input must hold a text or a non-empty list of texts")
        q = quantize(self.embed(texts))
        rows = q.tolist()
        output = {"embedding": rows[0]} if single else {"embeddings": rows}
        return RuntimeOutput(output=output, output_commitment=embedding_commitment(q))

    @classmethod
    def commitment_of(cls, output: dict) -> bytes:
        rows = [output["embedding"]] if "embedding" in output else output.get("embeddings")
        try:
            values = np.asarray(rows, dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"not an int8 embedding matrix: {error}") from None
        if values.ndim != 2 or values.size == 0 or np.abs(values).max() > INT8_SCALE:
            raise ValueError("not an int8 embedding matrix (n x dim, values in -127..127)")
        return embedding_commitment(values.astype(np.int8))
