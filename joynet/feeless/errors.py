"""The errors of ``joynet.feeless``, and the kinds of refusal a node's answer names."""

import enum

from joynet.errors import JoyNetError
from joynet.inference.errors import InferenceError


class BridgeError(JoyNetError):
    """The channel and the chain disagree (e.g. the checkpointed head is not in the channel)."""


class ProofRejectedError(InferenceError):
    """The node's answer to a ZK model carries no proof, or one that does not prove this result; or
    an answer's output commitment does not commit to its output."""


class AccessDeniedError(InferenceError):
    """The node refused admission to a private model's channel, or declined a request: no valid
    access credential (the message says why)."""


class ErrorKind(enum.StrEnum):
    """Why a node declined a feeless request: the ``error_kind`` of its answer, next to the human
    message in ``error``. The requester raises by kind (``joynet.feeless.requester``), never by
    the message's text; a kind it does not know is a plain ``InferenceError``."""

    ACCESS_DENIED = "access_denied"  # no valid access credential: AccessDeniedError
    INVALID_INPUT = "invalid_input"  # the input is not one the model takes: InvalidInputError
    INFERENCE_FAILED = "inference_failed"  # the node could not produce a result: InferenceError
