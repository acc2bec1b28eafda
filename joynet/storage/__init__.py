"""Model storage on IPFS: files kept under kubo's CIDs, verified on every read.

``open_store()`` gives the store to use: a Kubo RPC API when one is named (argument or
``JOYNET_IPFS_API``), otherwise the embedded store in ``$JOYNET_IPFS_DIR`` (``~/.joynet/ipfs``).
"""

import os

from joynet.storage.embedded import EmbeddedStore
from joynet.storage.errors import (
    CIDMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    InvalidCIDError,
    NotAFileError,
    StoreError,
    StoreUnavailableError,
)
from joynet.storage.store import ModelStore

API_ENV = "JOYNET_IPFS_API"


def open_store(api: str | None = None, directory: str | None = None) -> ModelStore:
    api = api or os.environ.get(API_ENV)
    if api:
        from joynet.storage.kubo import KuboStore  # aiohttp and aioipfs only when a daemon is used

        return KuboStore(api)
    return EmbeddedStore(directory)


__all__ = [
    "API_ENV",
    "CIDMismatchError",
    "ContentNotFoundError",
    "ContentTooLargeError",
    "EmbeddedStore",
    "InvalidCIDError",
    "ModelStore",
    "NotAFileError",
    "StoreError",
    "StoreUnavailableError",
    "open_store",
]
