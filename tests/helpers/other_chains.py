"""Chains other than the suite's own anvil: start an anvil with a given chain id, connect Ape to
it from inside a test (`ape` commands run through helpers.ape_commands.run_ape).

The contracts and the deploy routine treat chain ids 31337 and 1337 as local development chains
and every other chain id as production, so a production network is an anvil started with the
supernet's chain id. Tests connect to it as ``ethereum:local:node``: Ape then writes no record of
the contracts deployed there to its data folder (it does for networks it considers live), while
the contracts see the real ``block.chainid``.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from helpers import PROJECT_ROOT

from ape import networks

ZERO = "0x0000000000000000000000000000000000000000"
# Anvil's (and Ape's test mnemonic's) first account: a well-known development key.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_ADDRESS_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def supernet_chain_id() -> int:
    return int(os.environ["POLYGON_SUPERNET_CHAIN_ID"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def anvil(chain_id: int):
    """An anvil with ``chain_id`` (and the test mnemonic's ten funded accounts); yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        ["anvil", "--port", str(port), "--chain-id", str(chain_id), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def rpc_chain_id(url: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.load(response)["result"], 16)


@contextmanager
def connected(url: str):
    """Ape talks to the chain at ``url`` inside the block (accounts, project, chain), then returns
    to the suite's chain. Test accounts sign with the chain's own id.

    Ape keeps one in-memory record of contract types per address for every ``ethereum:local``
    chain, and the same deployer's nonces give the same addresses on both chains. The records
    are set aside on the way in and restored on the way out, so that neither chain ever decodes
    a call or a revert with a contract type that lives at that address only on the other. Ape
    also remembers one chain id per local provider; it is forgotten both ways."""
    from ape import chain

    def local_caches():
        return chain.contracts._caches.get("ethereum", {}).get("local", {})

    saved = {key: cache.memory for key, cache in local_caches().items()}
    chain._chain_id_cache.pop("local:node", None)  # Ape's chain id per network and provider
    try:
        # Ape's node provider signs for a local network with the chain id configured for it.
        # Disconnected on the way out: Ape would otherwise hand the next test the same provider
        # (it keys connections by network and chain id), still pointing at this anvil.
        chain_id = rpc_chain_id(url)
        settings = {"uri": url, "ethereum": {"local": {"uri": url, "chain_id": chain_id}}}
        with networks.ethereum.local.use_provider("node", settings, disconnect_after=True) as provider:
            found = (provider.uri, provider.web3.eth.chain_id, chain.chain_id)
            assert found == (url, chain_id, chain_id), found
            for cache in local_caches().values():
                cache.memory = {}  # and nothing from the suite's chain is used here
            yield provider
    finally:
        chain._chain_id_cache.pop("local:node", None)
        for key, cache in local_caches().items():
            cache.memory = dict(saved.get(key, {}))


def import_deployer_account(data_folder: Path, alias: str, passphrase: str) -> None:
    """Imports ANVIL_KEY_0 as ``alias`` into the Ape data folder ``data_folder``."""
    code = (
        "from ape_accounts import import_account_from_private_key as imp;"
        f"imp({alias!r}, {passphrase!r}, {ANVIL_KEY_0!r})"
    )
    env = {**os.environ, "APE_DATA_FOLDER": str(data_folder)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=PROJECT_ROOT, capture_output=True)
