"""The errors of ``joynet.feeless``."""

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
