"""Model packages: publish a model directory, load it back by CID, and refuse bad metadata."""

import asyncio
import json

import pytest

from joynet import ModelPackageError, load_model_package, publish_model
from joynet.storage import CIDMismatchError, EmbeddedStore
from joynet.storage.cids import parse_cid
from helpers.model_directory import CONFIG, DESCRIPTION, WEIGHTS, write_model_directory

run = asyncio.run


@pytest.fixture
def fresh_store(tmp_path):
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture
def model_directory(tmp_path):
    return write_model_directory(tmp_path / "digits")


def add_metadata(fresh_store, metadata: dict) -> str:
    return run(fresh_store.add_bytes(json.dumps(metadata).encode()))


def test_load_model_package__published_directory__same_files_and_description(fresh_store, model_directory):
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, model_directory))))
    assert package.files == {"weights.bin": WEIGHTS, "config/layers.json": CONFIG}
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


def test_publish_model__model_json_description__published(fresh_store, tmp_path):
    directory = tmp_path / "json-model"
    directory.mkdir()
    (directory / "model.json").write_text(json.dumps(DESCRIPTION))
    (directory / "weights.bin").write_bytes(b"w")
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, directory))))
    assert package.files == {"weights.bin": b"w"}


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


def test_load_model_package__metadata_without_verification__error_names_it(fresh_store):
    weights = run(fresh_store.add_bytes(b"w"))
    metadata = {key: value for key, value in DESCRIPTION.items() if key != "verification"}
    cid = add_metadata(fresh_store, {**metadata, "files": {"weights.bin": f"ipfs://{weights}"}})
    with pytest.raises(ModelPackageError, match="verification is missing"):
        run(load_model_package(fresh_store, cid))


@pytest.mark.parametrize("name", ["../escape.bin", "/etc/passwd"])
def test_load_model_package__file_name_outside_package__error(fresh_store, name):
    weights = run(fresh_store.add_bytes(b"w"))
    cid = add_metadata(fresh_store, {**DESCRIPTION, "files": {name: f"ipfs://{weights}"}})
    with pytest.raises(ModelPackageError, match="must be a relative path"):
        run(load_model_package(fresh_store, cid))


def test_load_model_package__not_json__error(fresh_store):
    with pytest.raises(ModelPackageError, match="not model metadata"):
        run(load_model_package(fresh_store, run(fresh_store.add_bytes(b"\x00 weights, not metadata"))))


def test_load_model_package__tampered_weights_block__raises_cid_mismatch(fresh_store, model_directory):
    cid = run(publish_model(fresh_store, model_directory))
    weights_root = parse_cid(run(fresh_store.add_bytes(WEIGHTS, only_hash=True)))
    fresh_store.block_path(weights_root).write_bytes(b"\x00" + fresh_store.block_path(weights_root).read_bytes())
    with pytest.raises(CIDMismatchError):
        run(load_model_package(fresh_store, cid))


def test_load_model_package__ipfs_uri__same_package(fresh_store, model_directory):
    cid = run(publish_model(fresh_store, model_directory))
    by_uri = run(load_model_package(fresh_store, f"ipfs://{cid}"))
    assert by_uri.files == run(load_model_package(fresh_store, cid)).files


def test_write_to__loaded_package__files_in_their_subdirectories(fresh_store, model_directory, tmp_path):
    package = run(load_model_package(fresh_store, run(publish_model(fresh_store, model_directory))))
    target = package.write_to(tmp_path / "materialized")
    assert (target / "config" / "layers.json").read_bytes() == CONFIG
    assert (target / "weights.bin").read_bytes() == WEIGHTS
