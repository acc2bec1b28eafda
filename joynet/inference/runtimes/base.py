"""Model runtimes: one plugin per ``framework`` value of the model metadata.

A runtime is built from a verified ``ModelPackage`` (every file already re-hashed against its CID
by the store) and turns a schema-valid input into a deterministic output and the commitment a
node submits on chain.

Runtimes are found through the ``joynet.runtimes`` entry-point group: a distribution declares
``my-framework = "my_package.module:MyRuntime"`` under ``[project.entry-points."joynet.runtimes"]``
and, once pip-installed, every node on that machine can load models whose metadata says
``"framework": "my-framework"``. JoyNet's own runtimes are declared the same way in its
``pyproject.toml``; a plugin is imported only when a model first needs it.
``@register_runtime("name")`` registers a class in-process (a notebook, a test) and wins over an
entry point of the same name.
"""

import importlib.metadata
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joynet.inference.errors import UnknownRuntimeError
from joynet.models.package import ModelPackage

ENTRY_POINT_GROUP = "joynet.runtimes"
# Registered in-process, and the entry points' classes once loaded.
_RUNTIMES: dict[str, type["ModelRuntime"]] = {}


@dataclass(frozen=True)
class RuntimeContext:
    """What the node hands a runtime when it loads one."""

    cache_dir: Path  # a directory of the runtime's own, keyed by the metadata CID
    device: str  # "cpu" or "cuda"
    prover_factory: Any = None  # () -> ZKProver, for runtimes that prove


@dataclass(frozen=True)
class RuntimeOutput:
    output: dict  # JSON-serialisable, matches the model's outputSchema
    output_commitment: bytes  # bytes32, what submitResult carries
    input_commitment: bytes | None = None  # bytes32 when the runtime can compute it (ZK models)
    proof: Any = None  # e.g. a joynet.zk.ZKProof
    proof_calldata: bytes = b""
    extra: dict = field(default_factory=dict)


class ModelRuntime(ABC):
    framework: str = ""
    # For a runtime that proves: the package file holding the circuit's snarkjs verification key,
    # with which a requester or a bridger checks a channel answer's proof (its SHA-256 is the
    # circuit id). None: proofs are checked with the built-in digits circuit's key (joynet.zk).
    verification_key_file: str | None = None

    def __init__(self, package: ModelPackage, context: RuntimeContext):
        self.package = package
        self.context = context

    @abstractmethod
    def run(self, input_data: dict, *, request_id: int | None = None, node: Any = None) -> RuntimeOutput:
        """Runs one schema-valid input. Raises InvalidInputError for input the schema let through
        but the model cannot take."""

    def close(self) -> None:  # noqa: B027  (optional hook: most runtimes hold nothing)
        """Releases what the runtime holds (worker processes...)."""

    @classmethod
    def commitment_of(cls, output: dict) -> bytes | None:
        """The commitment of ``output`` as :meth:`run` computes it, without the model: a requester
        re-checks an answer's commitment with it. None when the runtime cannot tell; ValueError
        for an output this runtime could not have produced."""
        return None

    @classmethod
    def proof_statement(
        cls, weights_commitment: str, input_data: dict, output: dict, request_id: int, node: str
    ) -> dict[str, int] | None:
        """The public signals a proof of this result must state (for a model with a circuit), by name
        in the circuit's order, computed from the request and the claimed answer without the model;
        None when the runtime proves nothing. KeyError, TypeError or ValueError for an input or output it could not have taken."""
        return None


def register_runtime(framework: str):
    def decorate(cls: type[ModelRuntime]) -> type[ModelRuntime]:
        cls.framework = framework
        _RUNTIMES[framework] = cls
        return cls

    return decorate


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {entry.name: entry for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def runtime_for(framework: str) -> type[ModelRuntime]:
    """The runtime class of ``framework``: registered in-process, else the installed entry point
    of that name (imported now). UnknownRuntimeError when there is none, or when the plugin does
    not import or is not a ModelRuntime."""
    runtime = _RUNTIMES.get(framework)
    if runtime is not None:
        return runtime
    entry = _entry_points().get(framework)
    if entry is None:
        known = ", ".join(registered_frameworks()) or "none"
        raise UnknownRuntimeError(f"no runtime for framework {framework!r} on this node (known: {known})")
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - a third party's plugin: whatever it raises, say which
        raise UnknownRuntimeError(
            f"the runtime plugin {entry.value} for framework {framework!r} does not import: {error}"
        ) from error
    if not (isinstance(loaded, type) and issubclass(loaded, ModelRuntime)):
        raise UnknownRuntimeError(f"the runtime plugin {entry.value} for framework {framework!r} is not a ModelRuntime")
    loaded.framework = framework
    _RUNTIMES[framework] = loaded
    return loaded


def registered_frameworks() -> list[str]:
    """Every framework this node can run: registered in-process or installed as an entry point."""
    return sorted(set(_RUNTIMES) | set(_entry_points()))
