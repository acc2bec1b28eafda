"""The errors of ``joynet.identity``."""

from joynet.errors import JoyNetError


class CredentialError(JoyNetError):
    """A credential that does not grant access; the message says why."""
