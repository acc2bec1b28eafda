"""The embedded store: blocks in a directory on disk, no daemon needed.

Layout (like kubo's flatfs): ``blocks/<2 chars>/<base32 multihash>.data``, sharded by the key's
next-to-last two characters; a block is keyed by its multihash, so a file added as CIDv0 and its
CIDv1 form share blocks. Pins are empty files ``pins/<CID>``.
"""

import asyncio
import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from joynet.paths import joynet_home
from joynet.storage.cids import CID, cid_text, parse_cid
from joynet.storage.errors import ContentNotFoundError
from joynet.storage.store import ModelStore
from joynet.storage.unixfs import Block

DEFAULT_DIRECTORY_ENV = "JOYNET_IPFS_DIR"


def default_directory() -> Path:
    return Path(os.environ.get(DEFAULT_DIRECTORY_ENV) or joynet_home() / "ipfs")


class EmbeddedStore(ModelStore):
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_directory()
        self._blocks = self.directory / "blocks"
        self._pins = self.directory / "pins"

    def __repr__(self):
        return f"EmbeddedStore({str(self.directory)!r})"

    def block_path(self, cid: CID) -> Path:
        key = base64.b32encode(cid.multihash).decode("ascii").rstrip("=")
        return self._blocks / key[-3:-1] / f"{key}.data"

    async def pin(self, cid: str) -> None:
        if not await self.has(cid):
            raise ContentNotFoundError(f"{cid}: not (wholly) in the store at {self.directory}; nothing to pin")
        self._pins.mkdir(parents=True, exist_ok=True)
        (self._pins / cid_text(parse_cid(cid))).touch()

    async def pins(self) -> list[str]:
        return sorted(path.name for path in self._pins.glob("*")) if self._pins.is_dir() else []

    async def _put(self, blocks: Iterator[Block], source, cid_version: int) -> CID:
        root = None
        for root in blocks:
            self._write_block(root)
            await asyncio.sleep(0)  # hashing a large file should not starve the event loop
        if root is None:
            raise ValueError("a DAG has at least its root block")
        self._pins.mkdir(parents=True, exist_ok=True)
        (self._pins / cid_text(root.cid)).touch()
        return root.cid

    def _write_block(self, block: Block) -> None:
        # Always rewritten, atomically: adding a file again repairs a damaged copy.
        path = self.block_path(block.cid)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(block.data)
        os.replace(temporary, path)

    async def _fetch_block(self, cid: CID) -> bytes:
        try:
            return self.block_path(cid).read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(f"{cid_text(cid)}: not in the store at {self.directory}") from None
