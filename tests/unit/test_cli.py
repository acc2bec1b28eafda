"""The ``joynet`` command on the embedded store (its --api path is in test_storage_daemon.py)."""

import asyncio
import subprocess
import sys
import tomllib

import pytest

from joynet import load_model_package
from joynet.cli import main
from joynet.storage import EmbeddedStore
from helpers import PROJECT_ROOT
from helpers.model_directory import WEIGHTS, write_model_directory

HELLO_WORLD_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


@pytest.fixture(autouse=True)
def store_directory(monkeypatch, tmp_path):
    """Every command uses a fresh embedded store, never ~/.joynet or a daemon from the environment."""
    monkeypatch.delenv("JOYNET_IPFS_API", raising=False)
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))
    return tmp_path / "ipfs"


@pytest.fixture
def hello_file(tmp_path):
    (tmp_path / "hello.txt").write_bytes(b"hello world\n")
    return tmp_path / "hello.txt"


def joynet(*args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: a separate process (it inherits JOYNET_IPFS_DIR)."""
    return subprocess.run([sys.executable, "-m", "joynet.cli", *args], capture_output=True, text=True, cwd=PROJECT_ROOT)


def test_ipfs_add__file__prints_kubo_cid_alone(hello_file, capsys):
    assert main(["ipfs", "add", str(hello_file)]) == 0
    assert capsys.readouterr().out == f"{HELLO_WORLD_CID}\n"


def test_ipfs_add__cid_version_1__prints_base32_raw_leaf_cid(hello_file, capsys):
    assert main(["ipfs", "add", "--cid-version", "1", str(hello_file)]) == 0
    assert capsys.readouterr().out == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4\n"


def test_ipfs_add__only_hash__prints_cid_and_stores_nothing(hello_file, capsys, store_directory):
    assert main(["ipfs", "add", "--only-hash", str(hello_file)]) == 0
    assert capsys.readouterr().out == f"{HELLO_WORLD_CID}\n"
    assert not store_directory.exists()


def test_ipfs_cat__added_file__writes_its_bytes(tmp_path, capsysbinary):
    (tmp_path / "weights.bin").write_bytes(WEIGHTS)
    main(["ipfs", "add", str(tmp_path / "weights.bin")])
    cid = capsysbinary.readouterr().out.decode().strip()
    assert main(["ipfs", "cat", cid]) == 0
    assert capsysbinary.readouterr().out == WEIGHTS


@pytest.mark.parametrize(
    "args, message",
    [
        (["ipfs", "cat", HELLO_WORLD_CID], f"{HELLO_WORLD_CID}: not in the store"),
        (["ipfs", "cat", "Qm-not-a-cid"], "not a valid CID: 'Qm-not-a-cid'"),
        (["ipfs", "add", "missing.bin"], "missing.bin: No such file or directory"),
        (["ipfs", "add", "--api", "localhost:5001", "README.md"], "'localhost:5001' is not an RPC API multiaddr"),
        (["model", "publish", "tests"], "tests has no model description"),
    ],
)
def test_joynet__bad_input__one_line_error_and_exit_1(args, message):
    finished = joynet(*args)
    assert finished.returncode == 1
    assert finished.stderr.startswith("joynet: error: ") and message in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stderr.count("\n") == 1 and finished.stdout == ""


def test_joynet__no_command__usage_and_exit_2():
    finished = joynet()
    assert finished.returncode == 2 and "usage: joynet" in finished.stderr.lower()


def test_model_publish__model_directory__prints_loadable_metadata_cid(tmp_path, capsys, store_directory):
    assert main(["model", "publish", str(write_model_directory(tmp_path / "digits"))]) == 0
    package = asyncio.run(load_model_package(EmbeddedStore(store_directory), capsys.readouterr().out.strip(), tmp_path / "cache"))
    assert package.read("weights.bin") == WEIGHTS


def test_pyproject__console_script__joynet_runs_cli_main():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"joynet": "joynet.cli:main"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--price", "zero"], "--price 'zero' is not a number of JOY"),
        (["--price", "0.0000000000000000001"], "at most 18 decimals"),
        (["--price", "-1"], "a JOY amount from 0"),
        (["--price", "0"], "a model at price 0 is feeless: name its channel with --stream"),
    ],
)
def test_model_register__bad_price__one_line_error_before_anything_is_sent(extra, message):
    finished = joynet("model", "register", HELLO_WORLD_CID, "--model-id", "mine", *extra)
    assert finished.returncode == 1
    assert finished.stderr.startswith("joynet: error: ") and message in finished.stderr
    assert finished.stderr.count("\n") == 1


def test_model_register__cid_that_is_not_model_metadata__one_line_error(hello_file):
    main(["ipfs", "add", str(hello_file)])
    finished = joynet("model", "register", HELLO_WORLD_CID, "--model-id", "mine", "--price", "1")
    assert finished.returncode == 1 and "is not model metadata" in finished.stderr
    assert finished.stderr.count("\n") == 1


def test_model_register__no_chain_running__says_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("JOYNET_LOCAL_CHAIN_HOST", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("APE_FOUNDRY_HOST", raising=False)
    cid = joynet("model", "publish", str(write_model_directory(tmp_path / "digits"))).stdout.strip()
    finished = joynet("model", "register", cid, "--model-id", "mine", "--price", "1")
    assert finished.returncode == 1
    assert "no local chain answers at http://127.0.0.1:9" in finished.stderr and finished.stderr.count("\n") == 1
