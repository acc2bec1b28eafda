"""The embedded model store: kubo's CIDs and DAG layout, round trips, and refusal of bad data.
(That its CIDs equal a real IPFS daemon's is shown in test_storage_daemon.py.)"""

import asyncio
import random

import pytest

from joynet.storage import (
    CIDMismatchError,
    ContentNotFoundError,
    EmbeddedStore,
    InvalidCIDError,
    NotAFileError,
    open_store,
)
from joynet.storage.cids import DAG_PB, RAW, cid_of_block, cid_text, parse_cid
from joynet.storage.unixfs import CHUNK_SIZE, MAX_LINKS, decode_node, encode_node

run = asyncio.run


def seeded_bytes(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "ipfs")


def links_of(store, cid: str):
    _, links = decode_node(store.block_path(parse_cid(cid)).read_bytes())
    return links


@pytest.mark.parametrize(
    "data, cid_version, expected",
    [
        (b"hello world\n", 0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
        (b"", 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        (b"", 1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    ],
)
def test_add_bytes__kubo_test_vectors__kubo_cids(store, data, cid_version, expected):
    assert run(store.add_bytes(data, cid_version=cid_version)) == expected


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 7])
@pytest.mark.parametrize("cid_version", [0, 1])
def test_cat__after_add__same_bytes(store, size, cid_version):
    data = seeded_bytes(size)
    assert run(store.cat(run(store.add_bytes(data, cid_version=cid_version)))) == data


def test_add_bytes__cid_version_1__base32_cid_with_raw_leaf(store):
    cid = run(store.add_bytes(b"model weights", cid_version=1))
    assert cid.startswith("bafkrei") and parse_cid(cid).codec == RAW


def test_add_bytes__one_chunk__root_is_the_leaf(store):
    cid = run(store.add_bytes(seeded_bytes(CHUNK_SIZE)))
    assert links_of(store, cid) == []


def test_add_bytes__just_over_one_chunk__root_links_two_leaves(store):
    cid = run(store.add_bytes(seeded_bytes(CHUNK_SIZE + 1), cid_version=1))
    links = links_of(store, cid)
    assert [link.cid.codec for link in links] == [RAW, RAW]
    assert [link.tsize for link in links] == [CHUNK_SIZE, 1]


def test_add_bytes__more_than_174_chunks__balanced_two_level_dag(store):
    cid = run(store.add_bytes(seeded_bytes((MAX_LINKS + 1) * CHUNK_SIZE)))
    full, partial = links_of(store, cid)
    assert len(links_of(store, cid_text(full.cid))) == MAX_LINKS
    assert len(links_of(store, cid_text(partial.cid))) == 1


def test_add_file__same_file__same_cid_as_add_bytes(store, tmp_path):
    data = seeded_bytes(3 * CHUNK_SIZE)
    (tmp_path / "weights.bin").write_bytes(data)
    assert run(store.add_file(tmp_path / "weights.bin", cid_version=1)) == run(store.add_bytes(data, cid_version=1))


def test_add_file__missing_file__raises_file_not_found(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        run(store.add_file(tmp_path / "nothing-here"))


def test_add_bytes__cid_version_2__raises_value_error(store):
    with pytest.raises(ValueError, match="cid_version"):
        run(store.add_bytes(b"x", cid_version=2))


def test_add_bytes__only_hash__stores_nothing(store):
    cid = run(store.add_bytes(b"hello world\n", only_hash=True))
    assert cid == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert not run(store.has(cid)) and run(store.pins()) == []


@pytest.mark.parametrize("tampered", ["leaf", "root"])
def test_cat__tampered_block_on_disk__raises_cid_mismatch(store, tampered):
    cid = run(store.add_bytes(seeded_bytes(3 * CHUNK_SIZE)))
    block_cid = links_of(store, cid)[1].cid if tampered == "leaf" else parse_cid(cid)
    path = store.block_path(block_cid)
    block = bytearray(path.read_bytes())
    block[-5] ^= 0x01
    path.write_bytes(bytes(block))
    with pytest.raises(CIDMismatchError, match="does not hash to its CID"):
        run(store.cat(cid))
    with pytest.raises(CIDMismatchError):
        run(store.has(cid))


def test_add_bytes__again_after_tampering__repairs_the_block(store):
    data = seeded_bytes(CHUNK_SIZE)
    cid = run(store.add_bytes(data))
    store.block_path(parse_cid(cid)).write_bytes(b"garbage")
    assert run(store.add_bytes(data)) == cid
    assert run(store.cat(cid)) == data


def test_cat__unknown_cid__raises_content_not_found(store):
    unknown = run(store.add_bytes(b"never stored", only_hash=True))
    with pytest.raises(ContentNotFoundError, match="not in the store"):
        run(store.cat(unknown))


def test_has__leaf_missing__false(store):
    cid = run(store.add_bytes(seeded_bytes(2 * CHUNK_SIZE)))
    store.block_path(links_of(store, cid)[0].cid).unlink()
    assert run(store.has(cid)) is False


@pytest.mark.parametrize("text", ["", "hello", "Qm123", "bafy!!", "ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"])
def test_cat__invalid_cid_text__raises_invalid_cid(store, text):
    with pytest.raises(InvalidCIDError, match="not a valid CID"):
        run(store.cat(text))


def test_cat__directory_node__raises_not_a_file(store):
    directory_node = encode_node(b"\x08\x01", [])  # UnixFS Data {Type: Directory}
    cid = cid_of_block(directory_node, DAG_PB, 0)
    store.block_path(cid).parent.mkdir(parents=True)
    store.block_path(cid).write_bytes(directory_node)
    with pytest.raises(NotAFileError, match="is a directory"):
        run(store.cat(cid_text(cid)))


def test_pins__after_add__lists_added_roots(store):
    first = run(store.add_bytes(b"first"))
    second = run(store.add_bytes(b"second", cid_version=1))
    assert run(store.pins()) == sorted([first, second])


def test_pin__content_not_in_store__raises_content_not_found(store):
    with pytest.raises(ContentNotFoundError, match="nothing to pin"):
        run(store.pin("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"))


def test_open_store__no_api__embedded_store_in_joynet_ipfs_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("JOYNET_IPFS_API", raising=False)
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "from-env"))
    store = open_store()
    assert isinstance(store, EmbeddedStore) and store.directory == tmp_path / "from-env"
