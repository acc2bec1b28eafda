"""``ModelStore``: the one interface edge nodes and publishers use to keep and fetch model files.

Backends say only how to keep a new file and how to fetch one block. Everything that decides what
a CID is (chunking, the DAG layout) and every check of fetched data lives here, so no backend can
hand out bytes that were not re-hashed against the CID they were asked for.
"""

import io
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from joynet.storage.cids import CID, cid_text, parse_cid, verify_block
from joynet.storage.errors import ContentNotFoundError, ContentTooLargeError
from joynet.storage.unixfs import Block, chunked, file_blocks, file_size, read_file

# Called with the bytes done so far, as a file is added or fetched.
Progress = Callable[[int], None]


class ModelStore(ABC):
    """Content-addressed files with kubo's CIDs (``ipfs add``: CIDv0 by default, CIDv1 with raw
    leaves). Adding pins the file. Every read re-hashes each block and raises CIDMismatchError
    on a block that does not match; every error is a ``joynet.storage.StoreError``."""

    async def add_bytes(self, data: bytes, *, cid_version: int = 0, only_hash: bool = False) -> str:
        return await self._add(io.BytesIO(data).read, data, cid_version, only_hash)

    async def add_file(
        self, path: str | Path, *, cid_version: int = 0, only_hash: bool = False, progress: Progress | None = None
    ) -> str:
        """Adds the file chunk by chunk (it is never read whole); ``progress`` gets the bytes read
        so far. Raises FileNotFoundError / IsADirectoryError for a path that is not a readable file."""
        path = Path(path)
        with path.open("rb") as stream:
            read = stream.read if progress is None else _reporting(stream.read, progress)
            return await self._add(read, path, cid_version, only_hash)

    async def cat(self, cid: str) -> bytes:
        return b"".join([piece async for piece in self.iter_cat(cid)])

    async def iter_cat(self, cid: str) -> AsyncIterator[bytes]:
        """The file's bytes piece by piece (each piece verified before it is yielded)."""
        async for piece in read_file(parse_cid(cid), self._verified_block):
            yield piece

    async def size(self, cid: str) -> int:
        """The file's size in bytes, from its root block alone."""
        parsed = parse_cid(cid)
        return file_size(parsed, await self._verified_block(parsed))

    async def save(
        self, cid: str, path: str | Path, *, progress: Progress | None = None, max_bytes: int | None = None
    ) -> Path:
        """Writes the file to ``path`` piece by piece, each piece verified before it is written;
        ``path`` appears only once the whole file is there (written aside, then renamed), so a
        failed or interrupted fetch leaves nothing under that name. ContentTooLargeError as soon as
        more than ``max_bytes`` arrived (whatever size the file's root block claims)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                async for piece in self.iter_cat(cid):
                    stream.write(piece)
                    if max_bytes is not None and stream.tell() > max_bytes:
                        raise ContentTooLargeError(f"{cid} is larger than {max_bytes:,} bytes")
                    if progress is not None:
                        progress(stream.tell())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    async def has(self, cid: str) -> bool:
        """Whether every block of the file is available (a block that is there but does not
        match its CID raises CIDMismatchError rather than passing for missing)."""
        try:
            async for _ in self.iter_cat(cid):
                pass
        except ContentNotFoundError:
            return False
        return True

    @abstractmethod
    async def pin(self, cid: str) -> None:
        """Keeps the whole file (fetching what is missing, where the backend can)."""

    @abstractmethod
    async def pins(self) -> list[str]:
        """The CIDs of the pinned files."""

    async def close(self) -> None:  # noqa: B027  (optional hook: the embedded store holds nothing)
        """Releases connections; the embedded store holds none."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def _add(self, read, source: bytes | Path, cid_version: int, only_hash: bool) -> str:
        if cid_version not in (0, 1):
            raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
        blocks = file_blocks(chunked(read), cid_version)
        root = root_cid(blocks) if only_hash else await self._put(blocks, source, cid_version)
        return cid_text(root)

    async def _verified_block(self, cid: CID) -> bytes:
        return verify_block(cid, await self._fetch_block(cid))

    @abstractmethod
    async def _put(self, blocks: Iterator[Block], source: bytes | Path, cid_version: int) -> CID:
        """Keeps a new file given both as its DAG's blocks (root last) and as its source bytes
        or path, whichever the backend needs; pins it; returns the root CID."""

    @abstractmethod
    async def _fetch_block(self, cid: CID) -> bytes:
        """The raw block stored under ``cid``, unverified; ContentNotFoundError if absent."""


def _reporting(read: Callable[[int], bytes], progress: Progress) -> Callable[[int], bytes]:
    done = 0

    def read_and_report(size: int) -> bytes:
        nonlocal done
        piece = read(size)
        done += len(piece)
        progress(done)
        return piece

    return read_and_report


def root_cid(blocks: Iterator[Block]) -> CID:
    """Runs through a DAG's blocks (root last) keeping none of them; returns the root's CID."""
    root = None
    for root in blocks:  # noqa: B007  (the loop only keeps the last block: the root)
        pass
    if root is None:
        raise ValueError("a DAG has at least its root block")
    return root.cid
