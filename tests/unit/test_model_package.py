"""Model packages: publish a model directory, load it back by CID, and refuse bad metadata."""

import asyncio
import json
import os
import tracemalloc

import pytest
from eth_hash.auto import keccak

from joynet import ModelPackageError, load_model_package, publish_model
from joynet.storage import CIDMismatchError, ContentNotFoundError, EmbeddedStore
from joynet.storage.cids import parse_cid
from helpers.model_directory import CONFIG, DESCRIPTION, WEIGHTS, write_model_directory

run = asyncio.run


@pytest.fixture
def fresh_store(tmp_path):
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def model_directory(tmp_path):
    return write_model_directory(tmp_path / "digits")


def add_metadata(fresh_store, metadata: dict) -> str:
    return run(fresh_store.add_bytes(json.dumps(metadata).encode()))


def test_load_model_package__published_directory__same_files_and_description(fresh_store, model_directory, cache_dir):
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, model_directory)), cache_dir))
    assert {name: path.read_bytes() for name, path in package.files.items()} == {
        "weights.bin": WEIGHTS,
        "config/layers.json": CONFIG,
    }
    assert {key: value for key, value in package.metadata.items() if key != "files"} == DESCRIPTION
    assert (package.name, package.version, package.verification["quorum"]) == ("digits-mlp", "1.0.0", 1)


def test_publish_model__metadata__lists_every_file_as_ipfs_uri(fresh_store, model_directory):
    metadata = json.loads(run(fresh_store.cat(run(publish_model(fresh_store, model_directory)))))
    weights_cid = run(fresh_store.add_bytes(WEIGHTS, only_hash=True))
    assert metadata["files"]["weights.bin"] == f"ipfs://{weights_cid}"
    assert sorted(metadata["files"]) == ["config/layers.json", "weights.bin"]  # no hidden file, no model.yaml


def test_publish_model__same_directory_twice__same_metadata_cid(fresh_store, model_directory):
    assert run(publish_model(fresh_store, model_directory)) == run(publish_model(fresh_store, model_directory))


def test_publish_model__cid_version_1__every_cid_version_1(fresh_store, model_directory):
    metadata_cid = run(publish_model(fresh_store, model_directory, cid_version=1))
    metadata = json.loads(run(fresh_store.cat(metadata_cid)))
    uris = [metadata_cid] + [uri.removeprefix("ipfs://") for uri in metadata["files"].values()]
    assert all(parse_cid(cid).version == 1 for cid in uris)


def test_publish_model__model_json_description__published(fresh_store, tmp_path, cache_dir):
    directory = tmp_path / "json-model"
    directory.mkdir()
    (directory / "model.json").write_text(json.dumps(DESCRIPTION))
    (directory / "weights.bin").write_bytes(b"w")
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, directory)), cache_dir))
    assert {name: path.read_bytes() for name, path in package.files.items()} == {"weights.bin": b"w"}


def test_publish_model__description_without_license_and_commitment__error_names_both_and_adds_nothing(
        fresh_store, tmp_path):
    incomplete = {key: value for key, value in DESCRIPTION.items() if key not in ("license", "weightsCommitment")}
    directory = write_model_directory(tmp_path / "incomplete", incomplete)
    with pytest.raises(ModelPackageError, match="license is missing.*weightsCommitment is missing"):
        run(publish_model(fresh_store, directory))
    assert run(fresh_store.pins()) == []


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("verification", {"quorum": 0, "circuitId": None}, "verification.quorum must be an integer from 1 to 16"),
        ("verification", {"quorum": 2, "circuitId": "0x12"}, "circuitId must be null or 0x and 64 hex digits"),
        ("verification", {"quorum": 3, "circuitId": None, "tolerant": "yes"}, "tolerant must be true or false"),
        ("verification", {"quorum": 1, "circuitId": None, "tolerant": True}, "tolerant needs a quorum of at least 2"),
        ("verification", {"quorum": 3, "circuitId": "0x" + "ab" * 32, "tolerant": True}, "and no circuit"),
        ("inputSchema", "pixels", "inputSchema must be a JSON Schema object"),
        ("files", {"weights.bin": "ipfs://Qm"}, "'files' is written by publish"),
    ],
)
def test_publish_model__bad_field__error_says_which(fresh_store, tmp_path, field, value, message):
    directory = write_model_directory(tmp_path / "bad", {**DESCRIPTION, field: value})
    with pytest.raises(ModelPackageError, match=message):
        run(publish_model(fresh_store, directory))


def test_publish_model__directory_without_description__error(fresh_store, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"w")
    with pytest.raises(ModelPackageError, match="has no model description"):
        run(publish_model(fresh_store, tmp_path))


def test_load_model_package__metadata_without_verification__error_names_it(fresh_store, cache_dir):
    weights = run(fresh_store.add_bytes(b"w"))
    metadata = {key: value for key, value in DESCRIPTION.items() if key != "verification"}
    cid = add_metadata(fresh_store, {**metadata, "files": {"weights.bin": f"ipfs://{weights}"}})
    with pytest.raises(ModelPackageError, match="verification is missing"):
        run(load_model_package(fresh_store, cid, cache_dir))


@pytest.mark.parametrize("name", ["../escape.bin", "/etc/passwd"])
def test_load_model_package__file_name_outside_package__error(fresh_store, name, cache_dir):
    weights = run(fresh_store.add_bytes(b"w"))
    cid = add_metadata(fresh_store, {**DESCRIPTION, "files": {name: f"ipfs://{weights}"}})
    with pytest.raises(ModelPackageError, match="must be a relative path"):
        run(load_model_package(fresh_store, cid, cache_dir))


def test_load_model_package__not_json__error(fresh_store, cache_dir):
    with pytest.raises(ModelPackageError, match="not model metadata"):
        run(load_model_package(fresh_store, run(fresh_store.add_bytes(b"\x00 weights, not metadata")), cache_dir))


def test_load_model_package__tampered_weights_block__raises_cid_mismatch(fresh_store, model_directory, cache_dir):
    cid = run(publish_model(fresh_store, model_directory))
    weights_root = parse_cid(run(fresh_store.add_bytes(WEIGHTS, only_hash=True)))
    fresh_store.block_path(weights_root).write_bytes(b"\x00" + fresh_store.block_path(weights_root).read_bytes())
    with pytest.raises(CIDMismatchError):
        run(load_model_package(fresh_store, cid, cache_dir))


def test_load_model_package__ipfs_uri__same_package(fresh_store, model_directory, cache_dir):
    cid = run(publish_model(fresh_store, model_directory))
    by_uri = run(load_model_package(fresh_store, f"ipfs://{cid}", cache_dir))
    assert by_uri.files == run(load_model_package(fresh_store, cid, cache_dir)).files


def test_write_to__loaded_package__files_in_their_subdirectories(fresh_store, model_directory, tmp_path, cache_dir):
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, model_directory)), cache_dir))
    target = package.write_to(tmp_path / "materialized")
    assert (target / "config" / "layers.json").read_bytes() == CONFIG
    assert (target / "weights.bin").read_bytes() == WEIGHTS


# ---- streaming: model files go to and from the store piece by piece ----

LARGE_FILE_BYTES = 48 << 20
PEAK_ALLOWED = 8 << 20  # a few 256 KiB chunks in flight, far from the file's 48 MiB


@pytest.fixture
def large_model_directory(tmp_path):
    directory = write_model_directory(tmp_path / "large")
    with (directory / "weights.bin").open("wb") as stream:
        for _ in range(LARGE_FILE_BYTES >> 20):
            stream.write(os.urandom(1 << 20))
    return directory


def peak_allocated(work) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_publish_and_load__large_file__never_whole_in_memory(fresh_store, large_model_directory, cache_dir):
    cid, publish_peak = peak_allocated(lambda: run(publish_model(fresh_store, large_model_directory)))
    package, load_peak = peak_allocated(lambda: run(load_model_package(fresh_store, cid, cache_dir)))
    assert publish_peak < PEAK_ALLOWED and load_peak < PEAK_ALLOWED, (publish_peak, load_peak)
    assert package.path("weights.bin").stat().st_size == LARGE_FILE_BYTES
    assert package.keccak("weights.bin") == "0x" + keccak((large_model_directory / "weights.bin").read_bytes()).hex()


def test_publish_and_load__progress__every_file_reported_up_to_its_size(fresh_store, large_model_directory, cache_dir):
    published, fetched = [], []
    cid = run(publish_model(fresh_store, large_model_directory, progress=lambda *event: published.append(event)))
    run(load_model_package(fresh_store, cid, cache_dir, progress=lambda *event: fetched.append(event)))
    for events in (published, fetched):
        assert {name: total for name, _, total in events} == {"weights.bin": LARGE_FILE_BYTES, "config/layers.json": len(CONFIG)}
        assert ("weights.bin", LARGE_FILE_BYTES, LARGE_FILE_BYTES) in events
        weights_done = [done for name, done, _ in events if name == "weights.bin"]
        assert weights_done == sorted(weights_done) and len(weights_done) > 100  # reported as it goes


def test_load_model_package__file_already_cached__not_fetched_again(fresh_store, model_directory, cache_dir):
    cid = run(publish_model(fresh_store, model_directory))
    run(load_model_package(fresh_store, cid, cache_dir))
    weights_root = parse_cid(run(fresh_store.add_bytes(WEIGHTS, only_hash=True)))
    fresh_store.block_path(weights_root).unlink()  # the store lost it; the node's cache has it
    assert run(load_model_package(fresh_store, cid, cache_dir)).read("weights.bin") == WEIGHTS


def test_load_model_package__block_missing_midway__nothing_left_in_cache(fresh_store, large_model_directory, cache_dir):
    cid = run(publish_model(fresh_store, large_model_directory))
    leaves = sorted(fresh_store.directory.joinpath("blocks").rglob("*.data"), key=lambda path: path.stat().st_size)
    leaves[-1].unlink()  # one 256 KiB leaf of the weights
    with pytest.raises(ContentNotFoundError):
        run(load_model_package(fresh_store, cid, cache_dir))
    assert not [path for path in cache_dir.rglob("*") if path.is_file() and path.stat().st_size > len(CONFIG)]


@pytest.mark.parametrize("cid_version", [0, 1])
@pytest.mark.parametrize("size", [0, 1, 262_144, 262_145, 3_000_000])
def test_store_size__added_file__its_length(fresh_store, tmp_path, cid_version, size):
    path = tmp_path / "file.bin"
    path.write_bytes(os.urandom(size))
    assert run(fresh_store.size(run(fresh_store.add_file(path, cid_version=cid_version)))) == size


# ---- a node's disk: a package larger than the node takes is refused, whatever its blocks claim ----


def test_load_model_package__files_beyond_the_nodes_limit__refused_before_anything_is_fetched(
        fresh_store, large_model_directory, cache_dir):
    cid = run(publish_model(fresh_store, large_model_directory))
    with pytest.raises(ModelPackageError, match=r"more than the 10,000,000 bytes this node takes"):
        run(load_model_package(fresh_store, cid, cache_dir, max_bytes=10_000_000))
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_load_model_package__root_block_understating_its_size__cut_off_at_the_limit(fresh_store, tmp_path, cache_dir):
    """An owner's file whose root block claims 1 KB but links 5 MB of leaves (a valid DAG, every block
    matching its CID): the node stops writing at its limit and keeps nothing."""
    import io

    from joynet.storage.cids import DAG_PB, cid_of_block, cid_text
    from joynet.storage.unixfs import Block, Link, _unixfs_file, chunked, encode_node, file_blocks

    content = os.urandom(5 << 20)
    leaves = [block for block in file_blocks(chunked(io.BytesIO(content).read), 0)][:-1]  # every block but the real root
    for leaf in leaves:
        fresh_store._write_block(leaf)
    lying_root = encode_node(_unixfs_file(b"", 1_000), [Link(leaf.cid, len(leaf.data)) for leaf in leaves])
    root = Block(cid_of_block(lying_root, DAG_PB, 0), lying_root)
    fresh_store._write_block(root)
    weights_cid = cid_text(root.cid)
    assert run(fresh_store.size(weights_cid)) == 1_000
    metadata = {**DESCRIPTION, "files": {"weights.bin": f"ipfs://{weights_cid}"}}
    cid = add_metadata(fresh_store, metadata)
    with pytest.raises(ModelPackageError, match="more than the 2,000,000 bytes this node takes"):
        run(load_model_package(fresh_store, cid, cache_dir, max_bytes=2_000_000))
    assert not [path for path in cache_dir.rglob("*") if path.is_file()]


def test_load_model_package__within_the_limit__loaded(fresh_store, model_directory, cache_dir):
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, model_directory)), cache_dir,
                                     max_bytes=len(WEIGHTS) + len(CONFIG)))
    assert package.read("weights.bin") == WEIGHTS
