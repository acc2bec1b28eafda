"""Edge inference runtime: ``InferenceNode`` loads models from the store by CID, validates input,
runs them (runtime plugins per ``framework``) and returns deterministic outputs and commitments."""

from joynet.inference.errors import (
    InferenceError, InvalidInputError, ModelLoadError, ModelNotRegisteredError, PayloadTooLargeError,
    UnknownRuntimeError,
)
from joynet.inference.node import DEFAULT_MAX_INPUT_BYTES, InferenceNode, InferenceOutput, LoadedModel
from joynet.inference.runtimes import ModelRuntime, RuntimeContext, RuntimeOutput, register_runtime

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "InferenceError",
    "InferenceNode",
    "InferenceOutput",
    "InvalidInputError",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotRegisteredError",
    "ModelRuntime",
    "PayloadTooLargeError",
    "RuntimeContext",
    "RuntimeOutput",
    "UnknownRuntimeError",
    "register_runtime",
]
