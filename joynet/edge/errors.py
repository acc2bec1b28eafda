"""The errors of ``joynet.edge``."""

from joynet.errors import JoyNetError


class EdgeNodeError(JoyNetError, RuntimeError):
    """A configuration the node cannot start with (unknown model, too little JOY...)."""


class JournalError(JoyNetError, RuntimeError):
    """The journal belongs to another node or deployment."""
