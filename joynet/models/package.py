"""Model packages: a model's files plus one metadata JSON, all on IPFS.

The metadata (what a model's on-chain ``metadataURI`` points at)::

    {"name": "digits-mlp", "version": "1.0.0", "framework": "pytorch",
     "inputSchema": {...JSON Schema...}, "outputSchema": {...JSON Schema...},
     "quantization": "int8" or {...}, "weightsCommitment": "0x<32 bytes hex>",
     "verification": {"quorum": 1, "circuitId": "0x<32 bytes hex>" or null, "tolerant": false},
     "license": "MIT", "files": {"model.pt": "ipfs://Qm..."},
     "serving": {"failoverSeconds": 10, "maxRequestsPerRequester": 100}}

``verification.tolerant`` is optional (default false): true registers the tolerant policy, where
the first of the ``quorum`` nodes generates and the others validate its answer (quorum at least 2,
no circuit; an odd number of validators, so that one validator's vote never ties the others').
``serving`` is optional: ``failoverSeconds`` is how long a feeless request waits for its assigned
node before the next node answers it (``joynet.feeless.assignment``), from 0.5 to 600 seconds;
``maxRequestsPerRequester`` (a positive integer, default none) caps the feeless requests one
channel key may have served on the model's channel: the nodes decline the rest, and the bridgers
credit none of them.

``publish_model`` builds it from a directory holding the files and a ``model.yaml`` (or
``model.json``) with every field but ``files``; ``load_model_package`` fetches it back, checks
it, and fetches every file into a cache directory (each piece verified against its CID by the
store). Files are streamed both ways: a model file is never held whole in memory, only on disk.
"""

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml
from eth_hash.auto import keccak

from joynet.models.errors import ModelPackageError, PackageTooLargeError
from joynet.storage import ModelStore
from joynet.storage.cids import cid_text, parse_cid
from joynet.storage.errors import ContentTooLargeError, InvalidCIDError

DESCRIPTION_FILES = ("model.yaml", "model.yml", "model.json")
IPFS_SCHEME = "ipfs://"
MAX_QUORUM = 16  # the marketplace's bound on k
DEFAULT_FAILOVER_SECONDS = 10.0
FAILOVER_RANGE = (0.5, 600.0)

_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")
_HASH_PIECE = 1 << 20

# Called as files are added or fetched: (file name, bytes done, the file's size).
PackageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelPackage:
    cid: str  # of the metadata document
    metadata: dict
    files: dict[str, Path]  # name -> the file on disk, verified against its CID as it was fetched

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def framework(self) -> str:
        return self.metadata["framework"]

    @property
    def input_schema(self) -> dict:
        return self.metadata["inputSchema"]

    @property
    def output_schema(self) -> dict:
        return self.metadata["outputSchema"]

    @property
    def weights_commitment(self) -> str:
        return self.metadata["weightsCommitment"]

    @property
    def verification(self) -> dict:
        return self.metadata["verification"]

    @property
    def failover_seconds(self) -> float:
        """How long a node serving the model's channel waits for the one before it (see above)."""
        return float(self.metadata.get("serving", {}).get("failoverSeconds", DEFAULT_FAILOVER_SECONDS))

    @property
    def max_requests_per_requester(self) -> int | None:
        """The feeless requests one requester key may have served (see above), or None."""
        return self.metadata.get("serving", {}).get("maxRequestsPerRequester")

    def path(self, name: str) -> Path:
        """Where the package's file ``name`` is on disk; ModelPackageError if it has none."""
        if name not in self.files:
            raise ModelPackageError(f"model {self.cid}: the package has no file {name!r}")
        return self.files[name]

    def read(self, name: str) -> bytes:
        """The contents of a (small) file of the package."""
        return self.path(name).read_bytes()

    def keccak(self, name: str) -> str:
        """0x + keccak256 of a file of the package, read piece by piece."""
        return file_keccak(self.path(name))

    def write_to(self, directory: str | Path) -> Path:
        """Lays the files out under ``directory`` by name (for loaders that want a directory):
        hard links to the cached files where the file system allows, copies otherwise."""
        directory = Path(directory)
        for name, source in self.files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            try:
                os.link(source, path)
            except OSError:
                shutil.copyfile(source, path)
        return directory


def file_keccak(path: str | Path) -> str:
    """0x + keccak256 of a file, read piece by piece (never whole into memory)."""
    digest = keccak.new(b"")
    with Path(path).open("rb") as stream:
        while piece := stream.read(_HASH_PIECE):
            digest.update(piece)
    return "0x" + digest.digest().hex()


async def publish_model(
    store: ModelStore, directory: str | Path, *, cid_version: int = 0, progress: PackageProgress | None = None
) -> str:
    """Adds every file of ``directory`` (hidden ones excepted, as ``ipfs add -r`` does) and the
    metadata built from its description; returns the metadata's CID. ``progress`` is told of
    each file's bytes as they are added."""
    directory = Path(directory)
    description_path = _description_path(directory)
    description = _read_description(description_path)
    if "files" in description:
        raise ModelPackageError(
            f"{description_path}: 'files' is written by publish (it adds every file of {directory})"
        )
    _raise_if_invalid(_description_problems(description), description_path)
    files = {}
    for path in _package_files(directory, description_path):
        name = path.relative_to(directory).as_posix()
        files[name] = IPFS_SCHEME + await store.add_file(
            path, cid_version=cid_version, progress=_reporter(progress, name, path.stat().st_size)
        )
    metadata = {**description, "files": files}
    _raise_if_invalid(_metadata_problems(metadata), description_path)
    encoded = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    return await store.add_bytes(encoded, cid_version=cid_version)


async def load_model_metadata(store: ModelStore, cid: str) -> dict:
    """The checked metadata document whose CID is ``cid`` (or ``ipfs://CID``); no file fetched."""
    cid = cid.removeprefix(IPFS_SCHEME)
    try:
        metadata = json.loads(await store.cat(cid))
    except (UnicodeDecodeError, json.JSONDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise ModelPackageError(f"{cid} is not model metadata (not a JSON object)")
    _raise_if_invalid(_metadata_problems(metadata), f"model metadata {cid}")
    return metadata


async def load_model_package(
    store: ModelStore,
    cid: str,
    cache_dir: str | Path,
    *,
    progress: PackageProgress | None = None,
    max_bytes: int | None = None,
) -> ModelPackage:
    """The package whose metadata has CID ``cid`` (or ``ipfs://CID``), every file fetched into
    ``cache_dir`` under its own CID (a file several packages share is fetched once; one already
    there was verified as it was written, and is not fetched again). With ``max_bytes``, a
    package whose files add up to more is refused (PackageTooLargeError) before anything is fetched,
    and a fetch is cut off as soon as the bytes that arrive pass it, whatever the files' root
    blocks claim: a model owner cannot fill a node's disk."""
    cid = cid.removeprefix(IPFS_SCHEME)
    metadata = await load_model_metadata(store, cid)
    cache_dir = Path(cache_dir)
    paths = {
        name: cache_dir / cid_text(parse_cid(uri.removeprefix(IPFS_SCHEME))) for name, uri in metadata["files"].items()
    }
    missing = {name: path for name, path in paths.items() if not path.is_file()}
    sizes = {name: await store.size(path.name) for name, path in missing.items()}
    budget = None
    if max_bytes is not None:
        total = sum(sizes.values()) + sum(path.stat().st_size for name, path in paths.items() if name not in missing)
        if total > max_bytes:
            raise PackageTooLargeError(f"model {cid}: its files are {total:,} bytes, {_over_the_limit(max_bytes)}")
        budget = max_bytes - total + sum(sizes.values())
    for name, path in paths.items():
        if name in missing:
            try:
                await store.save(path.name, path, progress=_reporter(progress, name, sizes[name]), max_bytes=budget)
            except ContentTooLargeError:
                raise PackageTooLargeError(
                    f"model {cid}: {name} is larger than its root block says, {_over_the_limit(max_bytes)}"
                ) from None
            if budget is not None:
                budget -= path.stat().st_size
        elif progress is not None:
            size = path.stat().st_size
            progress(name, size, size)
    return ModelPackage(cid=cid, metadata=metadata, files=paths)


def _over_the_limit(max_bytes: int | None) -> str:
    return f"more than the {max_bytes:,} bytes this node takes"


def _reporter(progress: PackageProgress | None, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    progress(name, 0, total)
    return lambda done: progress(name, done, total)


# ---- reading a package directory ----


def _description_path(directory: Path) -> Path:
    if not directory.is_dir():
        raise ModelPackageError(f"{directory} is not a directory")
    for name in DESCRIPTION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise ModelPackageError(f"{directory} has no model description ({' or '.join(DESCRIPTION_FILES)})")


def _read_description(path: Path) -> dict:
    try:
        description = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ModelPackageError(f"{path} cannot be parsed: {error}") from None
    if not isinstance(description, dict):
        raise ModelPackageError(f"{path} must hold a mapping of the model's fields")
    return description


def _package_files(directory: Path, description_path: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path != description_path
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )


# ---- validation ----


def _raise_if_invalid(problems: list[str], source) -> None:
    if problems:
        raise ModelPackageError(f"{source}: " + "; ".join(problems))


def _description_problems(document: dict) -> list[str]:
    """Every field but ``files``."""
    problems = []
    for field in ("name", "version", "framework", "license"):
        if not isinstance(document.get(field), str) or not document[field].strip():
            problems.append(_missing_or_wrong(document, field, "a non-empty string"))
    for field in ("inputSchema", "outputSchema"):
        if not isinstance(document.get(field), dict):
            problems.append(_missing_or_wrong(document, field, "a JSON Schema object"))
    if not isinstance(document.get("quantization"), (str, dict)):
        problems.append(_missing_or_wrong(document, "quantization", "a string or an object"))
    if not _is_bytes32(document.get("weightsCommitment")):
        problems.append(_missing_or_wrong(document, "weightsCommitment", "0x and 64 hex digits"))
    problems += _verification_problems(document.get("verification"))
    problems += _serving_problems(document.get("serving", {}))
    return problems


def _serving_problems(serving) -> list[str]:
    if not isinstance(serving, dict):
        return ["serving must be an object ({failoverSeconds})"]
    failover = serving.get("failoverSeconds", DEFAULT_FAILOVER_SECONDS)
    low, high = FAILOVER_RANGE
    problems = []
    if isinstance(failover, bool) or not isinstance(failover, (int, float)) or not low <= failover <= high:
        problems.append(f"serving.failoverSeconds must be a number of seconds from {low} to {high}")
    cap = serving.get("maxRequestsPerRequester")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        problems.append("serving.maxRequestsPerRequester must be a positive integer")
    return problems


def _metadata_problems(document: dict) -> list[str]:
    return _description_problems(document) + _files_problems(document.get("files"))


def _verification_problems(verification) -> list[str]:
    if not isinstance(verification, dict):
        return ["verification is missing (it must be {quorum, circuitId})"]
    problems = []
    quorum = verification.get("quorum")
    if not isinstance(quorum, int) or isinstance(quorum, bool) or not 1 <= quorum <= MAX_QUORUM:
        problems.append(f"verification.quorum must be an integer from 1 to {MAX_QUORUM}")
    circuit = verification.get("circuitId")
    if circuit is not None and not _is_bytes32(circuit):
        problems.append("verification.circuitId must be null or 0x and 64 hex digits")
    tolerant = verification.get("tolerant", False)
    if not isinstance(tolerant, bool):
        problems.append("verification.tolerant must be true or false")
    elif tolerant and (quorum == 1 or circuit is not None):
        problems.append(
            "verification.tolerant needs a quorum of at least 2 (a generator and validators) and no circuit"
        )
    return problems


def _files_problems(files) -> list[str]:
    if not isinstance(files, dict) or not files:
        return ["files is missing (it must map file names to ipfs:// URIs)"]
    problems = []
    for name, uri in files.items():
        if not _is_safe_relative_path(name):
            problems.append(f"file name {name!r} must be a relative path without '..'")
        if not isinstance(uri, str) or not uri.startswith(IPFS_SCHEME):
            problems.append(f"files[{name!r}] must be an ipfs:// URI")
            continue
        try:
            parse_cid(uri.removeprefix(IPFS_SCHEME))
        except InvalidCIDError as error:
            problems.append(f"files[{name!r}]: {error}")
    return problems


def _missing_or_wrong(document: dict, field: str, expected: str) -> str:
    return f"{field} is missing (it must be {expected})" if field not in document else f"{field} must be {expected}"


def _is_bytes32(value) -> bool:
    return isinstance(value, str) and _BYTES32.fullmatch(value) is not None


def _is_safe_relative_path(name) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts
