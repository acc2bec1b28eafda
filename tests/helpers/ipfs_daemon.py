"""Runs a real IPFS daemon for tests: js-ipfs 0.66.1 from node_modules, started by
toolchain/ipfs-daemon.mjs in a fresh repo on free ports, offline."""

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from helpers import PROJECT_ROOT

LAUNCHER = PROJECT_ROOT / "toolchain" / "ipfs-daemon.mjs"


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_ipfs_daemon(directory: Path, start_timeout: float = 60.0):
    """Yields the daemon's RPC API multiaddr once the API answers; stops the daemon after."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH (make setup needs Node.js 20 or newer)")
    api_port, gateway_port = free_local_port(), free_local_port()
    log = directory / "daemon.log"
    command = [node, str(LAUNCHER), "--repo", str(directory / "repo"),
               "--api-port", str(api_port), "--gateway-port", str(gateway_port)]
    with log.open("w") as log_stream:
        process = subprocess.Popen(command, stdout=log_stream, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    try:
        _wait_for_rpc(process, api_port, log, start_timeout)
        yield f"/ip4/127.0.0.1/tcp/{api_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_rpc(process: subprocess.Popen, api_port: int, log: Path, timeout: float) -> None:
    version_url = f"http://127.0.0.1:{api_port}/api/v0/version"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the IPFS daemon exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(version_url, method="POST"), timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the IPFS daemon's RPC API did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")
