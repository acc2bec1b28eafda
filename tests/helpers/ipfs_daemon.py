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
def running_ipfs_daemon(directory: Path, start_timeout: float = 60.0, peer: bool = False):
    """Yields the daemon's RPC API multiaddr once the API answers; stops the daemon after.
    ``peer``: a libp2p peer on a local swarm port (for pubsub with other daemons), not offline."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH (make setup needs Node.js 20 or newer)")
    api_port, gateway_port = free_local_port(), free_local_port()
    log = directory / "daemon.log"
    command = [node, str(LAUNCHER), "--repo", str(directory / "repo"),
               "--api-port", str(api_port), "--gateway-port", str(gateway_port)]
    if peer:
        command += ["--swarm-port", str(free_local_port())]
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


@contextlib.contextmanager
def running_ipfs_peers(directory: Path, count: int):
    """``count`` daemons that are libp2p peers of each other (every pair connected); yields their
    RPC API multiaddrs."""
    with contextlib.ExitStack() as stack:
        apis = []
        for index in range(count):
            folder = directory / f"daemon{index}"
            folder.mkdir(parents=True, exist_ok=True)
            apis.append(stack.enter_context(running_ipfs_daemon(folder, peer=True)))
        addresses = [_rpc(api, "id")["Addresses"][0] for api in apis]
        for index, api in enumerate(apis):
            for address in addresses[index + 1:]:
                _rpc(api, "swarm/connect", arg=address)
        yield apis


def _rpc(api: str, command: str, **params) -> dict:
    import json
    import urllib.parse

    port = api.rsplit("/", 1)[1]
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v0/{command}{query}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
