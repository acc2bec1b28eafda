"""Model runtimes: a runtime plugin per metadata ``framework`` (``joynet.inference.runtimes``),
the input and output schemas a package declares (``schema``), the request input documents
(``inputs``: ``publish_input`` for requesters, ``fetch_input`` for nodes) and the errors a node
reports when it cannot produce a result."""

from joynet.inference.errors import (
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    ModelNotRegisteredError,
    PayloadTooLargeError,
    UnknownRuntimeError,
)
from joynet.inference.runtimes import ModelRuntime, RuntimeContext, RuntimeOutput, register_runtime
from joynet.inference.schema import DEFAULT_MAX_INPUT_BYTES

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "InferenceError",
    "InvalidInputError",
    "ModelLoadError",
    "ModelNotRegisteredError",
    "ModelRuntime",
    "PayloadTooLargeError",
    "RuntimeContext",
    "RuntimeOutput",
    "UnknownRuntimeError",
    "register_runtime",
]
