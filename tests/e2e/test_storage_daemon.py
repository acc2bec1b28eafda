"""Against a real IPFS daemon (js-ipfs, see tests/helpers/ipfs_daemon.py): the embedded store computes the
daemon's CIDs, and the Kubo RPC backend round-trips files and refuses data that does not match."""

import asyncio
import contextlib
import random

import aiohttp
import aioipfs
import pytest
from aiohttp import web

from helpers.ipfs_daemon import free_local_port, running_ipfs_daemon
from joynet import load_model_package, publish_model
from joynet.cli import main
from joynet.storage import CIDMismatchError, ContentNotFoundError, EmbeddedStore, StoreUnavailableError
from joynet.storage.cids import cid_text, parse_cid
from joynet.storage.kubo import KuboStore
from joynet.storage.unixfs import CHUNK_SIZE, MAX_LINKS
from helpers.model_directory import CONFIG, WEIGHTS, write_model_directory

run = asyncio.run

SIZES = {
    "empty": 0,
    "tiny": 12,
    "one chunk": CHUNK_SIZE,
    "one chunk and a byte": CHUNK_SIZE + 1,
    "several MiB": 5 * 1024 * 1024 + 3,
    "over 174 chunks (two levels)": (MAX_LINKS + 1) * CHUNK_SIZE + 1,
}


def seeded_bytes(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture(scope="module")
def ipfs_api(tmp_path_factory):
    with running_ipfs_daemon(tmp_path_factory.mktemp("ipfs-daemon")) as api:
        yield api


async def daemon_add(api: str, data: bytes, **options) -> str:
    """``ipfs add`` on the daemon itself, with only the options given (its defaults otherwise)."""
    client = aioipfs.AsyncIPFS(maddr=api)
    try:
        return (await client.core.add_bytes(data, **options))["Hash"]
    finally:
        await client.close()


async def kubo_call(api: str, method, *args, **options):
    async with KuboStore(api) as store:
        return await method(store, *args, **options)


def cid_of(data: bytes, cid_version: int = 0) -> str:
    """The CID ``data`` has, computed without storing anything."""
    return run(EmbeddedStore("never-written").add_bytes(data, cid_version=cid_version, only_hash=True))


@pytest.mark.parametrize("cid_version", [0, 1])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_add__embedded_store_and_daemon__same_cid(ipfs_api, tmp_path, size, cid_version):
    data = seeded_bytes(size)
    daemon_cid = run(daemon_add(ipfs_api, data, cid_version=cid_version))
    embedded_cid = run(EmbeddedStore(tmp_path).add_bytes(data, cid_version=cid_version))
    assert parse_cid(daemon_cid) == parse_cid(embedded_cid)
    assert embedded_cid == cid_text(parse_cid(daemon_cid))


@pytest.mark.parametrize(
    "data, expected",
    [(b"hello world\n", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"), (b"", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")],
)
def test_daemon_add__kubo_test_vectors__known_cids(ipfs_api, data, expected):
    assert run(daemon_add(ipfs_api, data)) == expected


@pytest.mark.parametrize("cid_version", [0, 1])
def test_cat__file_added_through_kubo_store__same_bytes(ipfs_api, tmp_path, cid_version):
    data = seeded_bytes(3 * CHUNK_SIZE + 11)
    (tmp_path / "weights.bin").write_bytes(data)

    async def add_then_cat():
        async with KuboStore(ipfs_api) as store:
            cid = await store.add_file(tmp_path / "weights.bin", cid_version=cid_version)
            return cid, await store.cat(cid), await store.pins()

    cid, fetched, pins = run(add_then_cat())
    assert fetched == data
    assert cid == run(EmbeddedStore(tmp_path / "embedded").add_bytes(data, cid_version=cid_version))
    assert cid in pins


def test_has__file_added_through_kubo_store__true(ipfs_api):
    cid = run(kubo_call(ipfs_api, KuboStore.add_bytes, b"has me"))
    assert run(kubo_call(ipfs_api, KuboStore.has, cid)) is True


def test_pin__file_added_by_the_daemon__listed(ipfs_api):
    cid = run(daemon_add(ipfs_api, b"pin me", pin=False))
    run(kubo_call(ipfs_api, KuboStore.pin, cid))
    assert cid in run(kubo_call(ipfs_api, KuboStore.pins))


@contextlib.asynccontextmanager
async def block_substituting_proxy(api: str, substitutes: dict[str, str]):
    """An RPC API in front of the daemon that answers ``block/get`` of a CID in ``substitutes``
    with the block of another CID: a daemon handing out the wrong data."""
    daemon_port = api.rsplit("/", 1)[1]

    async def block_get(request: web.Request) -> web.Response:
        wanted = request.query["arg"]
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{daemon_port}/api/v0/block/get", params={"arg": substitutes.get(wanted, wanted)}
            ) as answer:
                return web.Response(body=await answer.read(), status=answer.status)

    app = web.Application()
    app.router.add_post("/api/v0/block/get", block_get)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_local_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"/ip4/127.0.0.1/tcp/{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("substituted", ["root", "leaf"])
def test_cat__daemon_returns_another_block__raises_cid_mismatch(ipfs_api, substituted):
    data = seeded_bytes(2 * CHUNK_SIZE)
    wanted = run(kubo_call(ipfs_api, KuboStore.add_bytes, data, cid_version=1))
    other = run(kubo_call(ipfs_api, KuboStore.add_bytes, seeded_bytes(CHUNK_SIZE), cid_version=1))
    first_leaf = cid_of(data[:CHUNK_SIZE], cid_version=1)  # a raw leaf's CID is its chunk's
    substitutes = {first_leaf if substituted == "leaf" else wanted: other}

    async def cat_through_proxy():
        async with block_substituting_proxy(ipfs_api, substitutes) as proxy_api:
            async with KuboStore(proxy_api) as store:
                return await store.cat(wanted)

    with pytest.raises(CIDMismatchError, match="does not hash to its CID"):
        run(cat_through_proxy())


def test_cat__cid_the_daemon_lacks__raises_content_not_found(ipfs_api):
    unknown = cid_of(b"nobody stored this")

    async def cat_unknown():
        async with KuboStore(ipfs_api, timeout=1) as store:
            return await store.cat(unknown)

    with pytest.raises(ContentNotFoundError, match="not available"):
        run(cat_unknown())


def test_cat__nothing_listening__raises_store_unavailable():
    with pytest.raises(StoreUnavailableError, match="cannot reach the IPFS RPC API"):
        run(kubo_call(f"/ip4/127.0.0.1/tcp/{free_local_port()}", KuboStore.cat, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"))


def test_joynet_ipfs__api_option__adds_and_cats_through_the_daemon(ipfs_api, tmp_path, capsysbinary):
    (tmp_path / "weights.bin").write_bytes(WEIGHTS)
    assert main(["ipfs", "add", "--cid-version", "1", "--api", ipfs_api, str(tmp_path / "weights.bin")]) == 0
    cid = capsysbinary.readouterr().out.decode().strip()
    assert cid == cid_of(WEIGHTS, cid_version=1)
    assert main(["ipfs", "cat", "--api", ipfs_api, cid]) == 0
    assert capsysbinary.readouterr().out == WEIGHTS


def test_joynet_ipfs_cat__joynet_ipfs_api_set__reads_from_the_daemon(ipfs_api, monkeypatch, capsysbinary):
    cid = run(daemon_add(ipfs_api, b"only the daemon has this"))
    monkeypatch.setenv("JOYNET_IPFS_API", ipfs_api)
    assert main(["ipfs", "cat", cid]) == 0
    assert capsysbinary.readouterr().out == b"only the daemon has this"


def test_load_model_package__published_through_the_daemon__same_files(ipfs_api, tmp_path):
    async def publish_then_load():
        async with KuboStore(ipfs_api) as store:
            cid = await publish_model(store, write_model_directory(tmp_path / "m"))
            return await load_model_package(store, cid, tmp_path / "cache")

    package = run(publish_then_load())
    assert {name: path.read_bytes() for name, path in package.files.items()} == {
        "weights.bin": WEIGHTS, "config/layers.json": CONFIG}
