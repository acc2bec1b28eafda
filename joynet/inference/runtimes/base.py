"""Model runtimes: one plugin per ``framework`` value of the model metadata.

A runtime is built from a verified ``ModelPackage`` (every file already re-hashed against its CID
by the store) and turns a schema-valid input into a deterministic output and the commitment a
node submits on chain. Register a new one with ``@register_runtime("my-framework")``.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joynet.inference.errors import UnknownRuntimeError
from joynet.models.package import ModelPackage

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


def runtime_for(framework: str) -> type[ModelRuntime]:
    try:
        return _RUNTIMES[framework]
    except KeyError:
        known = ", ".join(sorted(_RUNTIMES)) or "none"
        raise UnknownRuntimeError(f"no runtime for framework {framework!r} on this node (known: {known})") from None


def registered_frameworks() -> list[str]:
    return sorted(_RUNTIMES)
