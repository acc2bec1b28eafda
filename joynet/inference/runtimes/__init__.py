"""Runtime plugins, keyed by the model metadata's ``framework``. Importing this package registers
the built-in ones: ``joynet-int-mlp`` (the digits MLP, ZK policy) and ``sentence-transformers``
(sentence embedders such as all-MiniLM-L6-v2, quorum policy)."""

from joynet.inference.runtimes import digits, sentence_embedding  # noqa: F401  (registers them)
from joynet.inference.runtimes.base import (
    ModelRuntime,
    RuntimeContext,
    RuntimeOutput,
    register_runtime,
    registered_frameworks,
    runtime_for,
)

__all__ = [
    "ModelRuntime",
    "RuntimeContext",
    "RuntimeOutput",
    "register_runtime",
    "registered_frameworks",
    "runtime_for",
]
