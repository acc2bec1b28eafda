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
def fresh_store(tmp_path):
    return EmbeddedStore(tmp_path / "ipfs")


def links_of(fresh_store, cid: str):
    _, links = decode_node(fresh_store.block_path(parse_cid(cid)).read_bytes())
    return links


@pytest.mark.parametrize(
    "data, cid_version, expected",
    [
        (b"hello world\n", 0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
        (b"", 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        (b"", 1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    ],
)
def test_add_bytes__kubo_test_vectors__kubo_cids(fresh_store, data, cid_version, expected):
    assert run(fresh_store.add_bytes(data, cid_version=cid_version)) == expected


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 7])
@pytest.mark.parametrize("cid_version", [0, 1])
def test_cat__after_add__same_bytes(fresh_store, size, cid_version):
    data = seeded_bytes(size)
    assert run(fresh_store.cat(run(fresh_store.add_bytes(data, cid_version=cid_version)))) == data


def test_add_bytes__cid_version_1__base32_cid_with_raw_leaf(fresh_store):
    cid = run(fresh_store.add_bytes(b"model weights", cid_version=1))
    assert cid.startswith("bafkrei") and parse_cid(cid).codec == RAW


def test_add_bytes__one_chunk__root_is_the_leaf(fresh_store):
    cid = run(fresh_store.add_bytes(seeded_bytes(CHUNK_SIZE)))
    assert links_of(fresh_store, cid) == []


def test_add_bytes__just_over_one_chunk__root_links_two_leaves(fresh_store):
    cid = run(fresh_store.add_bytes(seeded_bytes(CHUNK_SIZE + 1), cid_version=1))
    links = links_of(fresh_store, cid)
    assert [link.cid.codec for link in links] == [RAW, RAW]
    assert [link.tsize for link in links] == [CHUNK_SIZE, 1]


def test_add_bytes__more_than_174_chunks__balanced_two_level_dag(fresh_store):
    cid = run(fresh_store.add_bytes(seeded_bytes((MAX_LINKS + 1) * CHUNK_SIZE)))
    full, partial = links_of(fresh_store, cid)
    assert len(links_of(fresh_store, cid_text(full.cid))) == MAX_LINKS
    assert len(links_of(fresh_store, cid_text(partial.cid))) == 1


def test_add_file__same_file__same_cid_as_add_bytes(fresh_store, tmp_path):
    data = seeded_bytes(3 * CHUNK_SIZE)
    (tmp_path / "weights.bin").write_bytes(data)
    from_file = run(fresh_store.add_file(tmp_path / "weights.bin", cid_version=1))
    assert from_file == run(fresh_store.add_bytes(data, cid_version=1))


def test_add_file__missing_file__raises_file_not_found(fresh_store, tmp_path):
    with pytest.raises(FileNotFoundError):
        run(fresh_store.add_file(tmp_path / "nothing-here"))


def test_add_bytes__cid_version_2__raises_value_error(fresh_store):
    with pytest.raises(ValueError, match="cid_version"):
        run(fresh_store.add_bytes(b"x", cid_version=2))


def test_add_bytes__only_hash__stores_nothing(fresh_store):
    cid = run(fresh_store.add_bytes(b"hello world\n", only_hash=True))
    assert cid == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert not run(fresh_store.has(cid)) and run(fresh_store.pins()) == []


@pytest.mark.parametrize("tampered", ["leaf", "root"])
def test_cat__tampered_block_on_disk__raises_cid_mismatch(fresh_store, tampered):
    cid = run(fresh_store.add_bytes(seeded_bytes(3 * CHUNK_SIZE)))
    block_cid = links_of(fresh_store, cid)[1].cid if tampered == "leaf" else parse_cid(cid)
    path = fresh_store.block_path(block_cid)
    block = bytearray(path.read_bytes())
    block[-5] ^= 0x01
    path.write_bytes(bytes(block))
    with pytest.raises(CIDMismatchError, match="does not hash to its CID"):
        run(fresh_store.cat(cid))
    with pytest.raises(CIDMismatchError):
        run(fresh_store.has(cid))


def test_add_bytes__again_after_tampering__repairs_the_block(fresh_store):
    data = seeded_bytes(CHUNK_SIZE)
    cid = run(fresh_store.add_bytes(data))
    fresh_store.block_path(parse_cid(cid)).write_bytes(b"garbage")
    assert run(fresh_store.add_bytes(data)) == cid
    assert run(fresh_store.cat(cid)) == data


def test_cat__unknown_cid__raises_content_not_found(fresh_store):
    unknown = run(fresh_store.add_bytes(b"never stored", only_hash=True))
    with pytest.raises(ContentNotFoundError, match="not in the store"):
        run(fresh_store.cat(unknown))


def test_has__leaf_missing__false(fresh_store):
    cid = run(fresh_store.add_bytes(seeded_bytes(2 * CHUNK_SIZE)))
    fresh_store.block_path(links_of(fresh_store, cid)[0].cid).unlink()
    assert run(fresh_store.has(cid)) is False


@pytest.mark.parametrize("text", ["", "hello", "Qm123", "bafy!!", "ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"])
def test_cat__invalid_cid_text__raises_invalid_cid(fresh_store, text):
    with pytest.raises(InvalidCIDError, match="not a valid CID"):
        run(fresh_store.cat(text))


def test_cat__directory_node__raises_not_a_file(fresh_store):
    directory_node = encode_node(b"\x08\x01", [])  # UnixFS Data {Type: Directory}
    cid = cid_of_block(directory_node, DAG_PB, 0)
    fresh_store.block_path(cid).parent.mkdir(parents=True)
    fresh_store.block_path(cid).write_bytes(directory_node)
    with pytest.raises(NotAFileError, match="is a directory"):
        run(fresh_store.cat(cid_text(cid)))


def test_pins__after_add__lists_added_roots(fresh_store):
    first = run(fresh_store.add_bytes(b"first"))
    second = run(fresh_store.add_bytes(b"second", cid_version=1))
    assert run(fresh_store.pins()) == sorted([first, second])


def test_pin__content_not_in_store__raises_content_not_found(fresh_store):
    with pytest.raises(ContentNotFoundError, match="nothing to pin"):
        run(fresh_store.pin("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"))


def test_open_store__no_api__embedded_store_in_joynet_ipfs_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("JOYNET_IPFS_API", raising=False)
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "from-env"))
    fresh_store = open_store()
    assert isinstance(fresh_store, EmbeddedStore) and fresh_store.directory == tmp_path / "from-env"
