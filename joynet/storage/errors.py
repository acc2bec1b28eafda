"""What can go wrong when storing or fetching content. Every error is a ``StoreError``, so a
caller (the CLI, an edge agent declining a request) can catch one type and show its message."""

from joynet.errors import JoyNetError


class StoreError(JoyNetError):
    """Base class: a store could not do what was asked; the message says why."""


class InvalidCIDError(StoreError, ValueError):
    """The text is not a CID, or names content this store cannot verify (e.g. not sha2-256)."""


class CIDMismatchError(StoreError):
    """Data does not hash to the CID it was fetched or stored under: it is refused."""


class ContentNotFoundError(StoreError):
    """A block of the requested content is not available from this store."""


class NotAFileError(StoreError):
    """The CID names something other than a UnixFS file (a directory, a symlink...)."""


class StoreUnavailableError(StoreError):
    """The store's backend (an IPFS RPC API) could not be reached or answered badly."""


class ContentTooLargeError(StoreError):
    """A file is larger than the caller would keep (``ModelStore.save``'s ``max_bytes``)."""
