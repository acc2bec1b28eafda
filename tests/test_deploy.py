"""`ape run deploy`: the deployment file, no admin anywhere, re-runs, and the supernet network.

These run the real script in a subprocess, as an operator would, against the suite's anvil
(or one started here with the supernet's chain id), then inspect the chain from the test.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from joynet.deployment import Deployment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APE = str(Path(sys.executable).with_name("ape"))
ZERO = "0x0000000000000000000000000000000000000000"
# Anvil's (and Ape's test mnemonic's) first account: a well-known development key.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_ADDRESS_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def run_ape(*args, env_overrides, input_text=None):
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [APE, *args], cwd=PROJECT_ROOT, env=env, input=input_text, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def deployments_dir(tmp_path):
    return tmp_path / "deployments"


@pytest.fixture
def deploy_locally(chain, deployments_dir):
    """Runs `ape run deploy` against the suite's own anvil; returns (process, deployment json)."""

    def deploy(*extra):
        env = {"APE_FOUNDRY_HOST": chain.provider.uri, "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir)}
        process = run_ape("run", "deploy", *extra, env_overrides=env)
        assert process.returncode == 0, process.stdout + process.stderr
        return process, json.loads((deployments_dir / "local.json").read_text())

    return deploy


def role_holders(contract, start_block, chain):
    """Every (role, account) pair that currently holds a role, rebuilt from the role events and
    confirmed with hasRole: TimelockController is not enumerable, so events are the ground truth."""
    candidates = set()
    for event in (contract.RoleGranted, contract.RoleRevoked):
        for log in event.range(start_block, chain.blocks.height + 1):
            candidates.add((bytes(log.role), log.account))
    return {(role, account) for role, account in candidates if contract.hasRole(role, account)}


PROTOCOL = {
    "JoyToken",
    "TimelockController",
    "ModelGovernanceDAO",
    "NodeCoordinator",
    "ProofOfInference",
    "DigitsMLPVerifier",
    "ProofOfUse",
    "ModelMarketplace",
    "IOTAValidator",
}


def test_deploy__local__writes_deployment_file(deploy_locally, chain, project):
    process, data = deploy_locally()
    assert set(data) >= {"chain_id", "deployer", "contracts"}
    assert data["chain_id"] == chain.chain_id
    assert data["deployer"] == ANVIL_ADDRESS_0
    assert set(data["contracts"]) == PROTOCOL
    for name, address in data["contracts"].items():
        assert chain.provider.get_code(address), f"{name} has no code at {address}"
    token = project.JoyToken.at(data["contracts"]["JoyToken"])
    assert token.balanceOf(data["contracts"]["TimelockController"]) == 500_000_000 * 10**18
    assert "wrote" in process.stdout


def test_deploy__after_wiring__no_externally_owned_account_holds_any_power(deploy_locally, deployments_dir, chain):
    _, data = deploy_locally()
    protocol = {address.lower() for address in data["contracts"].values()}
    deployed = Deployment.load(deployments_dir / "local.json")
    contracts = {name: deployed.contract(name) for name in data["contracts"]}
    timelock_address = data["contracts"]["TimelockController"]
    found_roles = owned = 0
    for name, contract in contracts.items():
        abi_names = {item.name for item in contract.contract_type.abi if getattr(item, "name", None)}
        if "owner" in abi_names:
            owned += 1
            assert contract.owner() == timelock_address, f"{name} is owned by {contract.owner()}"
        if "hasRole" in abi_names:
            holders = role_holders(contract, data["start_block"], chain)
            found_roles += len(holders)
            for role, account in holders:
                # The zero address holds the timelock's executor role: "anyone may execute".
                assert account.lower() in protocol | {ZERO}, f"{name}: {account} holds role {role.hex()}"
                assert account == ZERO or chain.provider.get_code(account), f"{account} is not a contract"
            assert not any(contract.hasRole(role, data["deployer"]) for role, _ in holders)
    timelock, dao = contracts["TimelockController"], contracts["ModelGovernanceDAO"]
    assert owned == 5  # NodeCoordinator, ProofOfInference (with its circuit registry), ProofOfUse, marketplace, IOTAValidator
    assert found_roles == 4  # admin: the timelock itself; proposer + canceller: the DAO; executor: anyone
    assert timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), timelock)
    assert timelock.hasRole(timelock.PROPOSER_ROLE(), dao) and timelock.hasRole(timelock.CANCELLER_ROLE(), dao)
    assert timelock.hasRole(timelock.EXECUTOR_ROLE(), ZERO)
    assert dao.timelock() == timelock.address
    assert dao.token() == data["contracts"]["JoyToken"]


def test_deploy__run_twice__refuses_a_second_protocol(deploy_locally):
    _, first = deploy_locally()
    process, second = deploy_locally()
    assert "already deployed" in process.stdout
    assert "--redeploy" in process.stdout
    assert second == first


def test_deploy__redeploy_flag__deploys_a_second_protocol(deploy_locally, chain):
    _, first = deploy_locally()
    _, second = deploy_locally("--redeploy")
    assert second["contracts"]["JoyToken"] != first["contracts"]["JoyToken"]
    assert chain.provider.get_code(second["contracts"]["JoyToken"])


def test_deploy__stale_file_from_restarted_chain__deploys_anew(deploy_locally, deployments_dir, chain):
    deployments_dir.mkdir(parents=True)
    stale = {"chain_id": chain.chain_id, "deployer": ANVIL_ADDRESS_0, "contracts": {"JoyToken": "0x" + "ab" * 20}}
    (deployments_dir / "local.json").write_text(json.dumps(stale))
    process, data = deploy_locally()
    assert "restarted chain" in process.stdout
    assert data["contracts"]["JoyToken"] != stale["contracts"]["JoyToken"]


def test_deploy__corrupt_file__fails_with_clear_message(chain, deployments_dir):
    deployments_dir.mkdir(parents=True)
    (deployments_dir / "local.json").write_text("{not json")
    env = {"APE_FOUNDRY_HOST": chain.provider.uri, "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir)}
    process = run_ape("run", "deploy", env_overrides=env)
    assert process.returncode != 0
    assert "is not valid JSON" in process.stderr


# ---- the supernet network ----


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def supernet_anvil():
    """An anvil with the supernet's chain id, standing in for a Polygon Supernet RPC."""
    chain_id = os.environ["POLYGON_SUPERNET_CHAIN_ID"]
    port = _free_port()
    process = subprocess.Popen(
        ["anvil", "--port", str(port), "--chain-id", chain_id, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield url, int(chain_id)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def ape_data_folder(tmp_path):
    """A throw-away Ape data folder holding one imported deployer account."""
    folder = tmp_path / "ape-data"
    code = (
        "from ape_accounts import import_account_from_private_key as imp;"
        f"imp('supernet_deployer', 'correct horse', '{ANVIL_KEY_0}')"
    )
    env = {**os.environ, "APE_DATA_FOLDER": str(folder)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=PROJECT_ROOT, capture_output=True)
    return folder


def test_deploy__supernet_network__deploys_with_named_account(supernet_anvil, ape_data_folder, deployments_dir):
    url, chain_id = supernet_anvil
    env = {
        "POLYGON_SUPERNET_RPC": url,
        "APE_DATA_FOLDER": str(ape_data_folder),
        "APE_ACCOUNTS_supernet_deployer_PASSPHRASE": "correct horse",
        "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir),
    }
    process = run_ape(
        "run", "deploy", "--network", "polygon:supernet:node", "--account", "supernet_deployer", "--yes",
        env_overrides=env,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    data = json.loads((deployments_dir / "supernet.json").read_text())
    assert data["chain_id"] == chain_id
    assert data["deployer"] == ANVIL_ADDRESS_0
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url))
    assert w3.eth.chain_id == chain_id
    assert all(w3.eth.get_code(address) for address in data["contracts"].values())


def test_deploy__supernet_without_account__fails_with_clear_message(supernet_anvil, deployments_dir):
    url, _ = supernet_anvil
    env = {"POLYGON_SUPERNET_RPC": url, "JOYNET_ACCOUNT": "", "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir)}
    process = run_ape("run", "deploy", "--network", "polygon:supernet:node", env_overrides=env)
    assert process.returncode != 0
    assert "needs an account" in process.stderr
    assert not (deployments_dir / "supernet.json").exists()
