"""Model runtimes: a runtime plugin per metadata ``framework`` (``joynet.inference.runtimes``),
the input and output schemas a package declares (``schema``), the request input documents
(``inputs``: ``publish_input`` for requesters, ``fetch_input`` for nodes), the output documents
(``outputs``: ``fetch_output`` checks a settled request's output against the chain) and the errors
a node reports when it cannot produce a result (or a requester, when an output does not check out)."""

from joynet.inference.errors import (
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    ModelNotRegisteredError,
    OutputMismatchError,
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
    "OutputMismatchError",
    "PayloadTooLargeError",
    "RuntimeContext",
    "RuntimeOutput",
    "UnknownRuntimeError",
    "register_runtime",
]
