"""`make setup` on a machine that lacks a prerequisite stops with one line saying what to install."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from helpers import PROJECT_ROOT

SETUP = PROJECT_ROOT / "toolchain" / "setup.sh"


@pytest.fixture
def bin_without(tmp_path):
    """A PATH holding the basic tools and the named prerequisites only (others are missing)."""

    def make(*present):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("dirname", *present):
            os.symlink(shutil.which(tool), bin_dir / tool)
        return str(bin_dir)

    return make


@pytest.mark.parametrize(
    "present, missing, advice",
    [
        ((), "python3", "install Python 3.11"),
        (("python3",), "node", "install Node.js 20 or newer"),
        (("python3", "node"), "npm", "install npm"),
    ],
)
def test_setup__missing_prerequisite__says_what_to_install(bin_without, present, missing, advice):
    path = bin_without(*present)
    process = subprocess.run(
        ["/bin/bash", str(SETUP)], env={"PATH": path, "HOME": os.environ.get("HOME", "/")},
        capture_output=True, text=True, timeout=60,
    )
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith(f"joynet setup: '{missing}' not found: {advice}")


def _rpc(url, method, params):
    request = urllib.request.Request(
        url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_anvil__many_blocks_then_stopped__leaves_no_state_files_behind(tmp_path):
    # The npm anvil spills old states to a state folder under the home directory after a few hundred blocks and keeps
    # them after a SIGTERM; the suite's runs filled a CI disk that way. Setup's wrapper stops it.
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    anvil = subprocess.Popen(
        [shutil.which("anvil"), "--port", str(port), "--silent"], env={**os.environ, "HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                sender = _rpc(url, "eth_accounts", [])["result"][0]
                break
            except OSError:
                time.sleep(0.1)
        for index in range(800):
            _rpc(url, "eth_sendTransaction", [{"from": sender, "to": f"0x{index + 1:040x}", "value": "0x1"}])
        assert int(_rpc(url, "eth_blockNumber", [])["result"], 16) >= 600
    finally:
        anvil.send_signal(signal.SIGTERM)
        anvil.wait(timeout=30)
    assert [str(path) for path in home.rglob("*") if path.is_file()] == []
