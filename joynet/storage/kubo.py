"""A store behind any Kubo RPC API (kubo, or anything that speaks its /api/v0), through aioipfs.

Reads fetch raw blocks (``block/get``) and walk the DAG here, so every block is re-hashed locally
and a daemon cannot substitute data. Adds send the file with kubo's ``ipfs add`` parameters spelled
out (a daemon may be configured otherwise) and check that the daemon's CID is the one computed
here.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import aioipfs

from joynet.storage.cids import CID, cid_text, parse_cid
from joynet.storage.errors import CIDMismatchError, ContentNotFoundError, StoreUnavailableError
from joynet.storage.store import ModelStore, root_cid
from joynet.storage.unixfs import CHUNK_SIZE, Block

DEFAULT_API = "/ip4/127.0.0.1/tcp/5001"


class KuboStore(ModelStore):
    def __init__(self, api: str = DEFAULT_API, *, timeout: float = 60.0):
        """``api``: the RPC API's multiaddr; ``timeout``: seconds for any one call (a daemon
        online may search the network for a block nobody has)."""
        self.api = api
        self.timeout = timeout
        self._client = None

    def __repr__(self):
        return f"KuboStore({self.api!r})"

    async def pin(self, cid: str) -> None:
        async def pin_all():
            async for _ in self._ipfs().pin.add(cid_text(parse_cid(cid))):
                pass

        await self._call(pin_all(), f"pin {cid}")

    async def pins(self) -> list[str]:
        listing = await self._call(self._ipfs().pin.ls(pintype="recursive"), "list pins")
        return sorted(cid_text(parse_cid(key)) for key in listing.get("Keys", {}))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _put(self, blocks: Iterator[Block], source: bytes | Path, cid_version: int) -> CID:
        expected = root_cid(blocks)
        answer = await self._call(self._send_file(source, cid_version), "add")
        added = parse_cid(answer["Hash"])
        if added != expected:
            raise CIDMismatchError(
                f"the IPFS daemon at {self.api} stored the file as {cid_text(added)}, "
                f"not as {cid_text(expected)} (kubo's layout); is it configured differently?"
            )
        return expected

    async def _send_file(self, source: bytes | Path, cid_version: int) -> dict:
        options = dict(
            cid_version=cid_version,
            raw_leaves=cid_version == 1,
            chunker=f"size-{CHUNK_SIZE}",
            hash="sha2-256",
            pin=True,
        )
        if isinstance(source, bytes):
            return await self._ipfs().core.add_bytes(source, **options)
        entries = [entry async for entry in self._ipfs().core.add(str(source), **options)]
        return next(entry for entry in reversed(entries) if "Hash" in entry)

    async def _fetch_block(self, cid: CID) -> bytes:
        return await self._call(self._ipfs().block.get(cid_text(cid)), f"get block {cid_text(cid)}")

    def _ipfs(self) -> aioipfs.AsyncIPFS:
        # Made on first use, inside the running event loop that its HTTP session belongs to.
        if self._client is None:
            try:
                self._client = aioipfs.AsyncIPFS(maddr=self.api)
            except aioipfs.InvalidNodeAddressError:
                raise StoreUnavailableError(f"{self.api!r} is not an RPC API multiaddr (like {DEFAULT_API})") from None
        return self._client

    async def _call(self, request, what: str):
        """Awaits an RPC call, turning the client's failures into StoreErrors that say what failed."""
        try:
            return await asyncio.wait_for(request, self.timeout)
        except TimeoutError:
            raise ContentNotFoundError(f"{what}: not available from {self.api} within {self.timeout:g} s") from None
        except aioipfs.APIError as error:
            raise ContentNotFoundError(f"{what}: the IPFS daemon at {self.api} answered: {error.message}") from None
        except (aiohttp.ClientError, OSError) as error:
            raise StoreUnavailableError(f"{what}: cannot reach the IPFS RPC API at {self.api} ({error})") from None
