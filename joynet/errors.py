"""The root of every error JoyNet raises on purpose.

Each package keeps its own errors in its ``errors`` module (``joynet.chain.errors``,
``joynet.storage.errors``...), all subclasses of :class:`JoyNetError`, so a caller can catch
everything JoyNet reports with one ``except JoyNetError`` and still tell the kinds apart.
"""


class JoyNetError(Exception):
    """Base of every JoyNet error."""
