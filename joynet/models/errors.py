"""The errors of ``joynet.models``."""

from joynet.errors import JoyNetError


class ModelPackageError(JoyNetError, ValueError):
    """A model description or metadata document is missing something or is malformed."""
