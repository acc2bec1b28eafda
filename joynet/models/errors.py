"""The errors of ``joynet.models``."""

from joynet.errors import JoyNetError


class ModelPackageError(JoyNetError, ValueError):
    """A model description or metadata document is missing something or is malformed."""


class PackageTooLargeError(ModelPackageError):
    """A package's files are larger than the node fetching it takes."""
