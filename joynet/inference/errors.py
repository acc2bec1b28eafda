"""What can go wrong when a node runs a model, or when a requester checks the output it got. Every
error is an ``InferenceError`` whose message is written for the requester (an edge agent declines
a request with ``str(error)`` as reason)."""

from joynet.errors import JoyNetError


class InferenceError(JoyNetError):
    """Base class: the node could not produce a result; the message says why."""


class InvalidInputError(InferenceError, ValueError):
    """The input does not satisfy the model's ``inputSchema`` (or the runtime's own checks)."""


class PayloadTooLargeError(InvalidInputError):
    """The input payload is larger than the node accepts (``max_input_bytes``)."""


class ModelLoadError(InferenceError):
    """The model could not be loaded: unknown or malformed CID, content missing from the store or
    not matching its CID, bad metadata, no runtime for its framework, files that do not match
    the commitment the metadata (or the chain) declares."""


class UnknownRuntimeError(ModelLoadError):
    """No runtime plugin is registered for the model's ``framework``."""


class ModelNotRegisteredError(ModelLoadError):
    """``model_id`` names no model in the marketplace (and is not a CID)."""


class OutputMismatchError(InferenceError):
    """A request's output does not check out against the chain: the request is not settled, or its
    output document names another request, carries another commitment than the one settled, or
    holds an output that does not commit to it (the message names the request and what differs)."""
