"""The errors of ``joynet.governance``."""

from joynet.errors import JoyNetError


class PolicyError(JoyNetError, ValueError):
    """A voter policy file that cannot be read, or that names what the protocol does not have."""


class AccountError(JoyNetError, ValueError):
    """An account option that names no usable account."""
