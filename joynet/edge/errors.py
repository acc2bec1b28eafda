"""The errors of ``joynet.edge``."""

from joynet.errors import JoyNetError


class EdgeNodeError(JoyNetError, RuntimeError):
    """A configuration the node cannot start with (unknown model, too little JOY...)."""


class TransactionWouldRevert(JoyNetError, RuntimeError):
    """The dry run of a transaction reverted: it was not sent. ``error``: the contract's error
    name when it is one of ours, else the node's message."""

    def __init__(self, message: str, error: str):
        super().__init__(message)
        self.error = error


class JournalError(JoyNetError, RuntimeError):
    """The journal belongs to another node or deployment."""
