"""`ape run deploy`: the deployment file, no admin anywhere, re-runs, and the supernet network.

These run the real script in a subprocess, as an operator would, against the suite's anvil
(or one started here with the supernet's chain id), then inspect the chain from the test.
"""

import json
import os

import pytest

from joynet.chain.constants import LOCAL_CHAIN_IDS
from joynet.chain.deployment_file import Deployment
from helpers.ape_commands import run_ape
from helpers.other_chains import ANVIL_ADDRESS_0, ZERO, connected


@pytest.fixture
def deploy_locally(chain, deployments_dir):
    """Runs `ape run deploy` against the suite's own anvil; returns (process, deployment json)."""

    def deploy(*extra):
        env = {"APE_FOUNDRY_HOST": chain.provider.uri, "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir)}
        process = run_ape(["run", "deploy", *extra], {**os.environ, **env}, timeout=300)
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
    "DigitsMLPBatchVerifier",
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


def assert_no_single_account_reaches_quorum(token, dao, timelock, start_block, chain):
    """No account but the treasury holds, or votes with, the quorum or more. Balances count as
    well as votes: a balance becomes votes with one delegation. Every holder is found from the
    token's events, and together they must hold the whole supply."""
    height = chain.blocks.height
    holders = {log.to for log in token.Transfer.range(start_block, height + 1)}
    holders |= {log.toDelegate for log in token.DelegateChanged.range(start_block, height + 1)}
    holders.discard(ZERO)
    assert sum(token.balanceOf(holder) for holder in holders) == token.totalSupply()
    quorum = dao.quorum(height - 1)
    assert quorum == token.totalSupply() * dao.quorumNumerator() // dao.quorumDenominator() > 0
    # The treasury votes only through proposals: it delegates to nobody, so its JOY never votes.
    assert token.delegates(timelock) == ZERO and token.getVotes(timelock) == 0
    for holder in holders - {timelock.address}:
        assert token.balanceOf(holder) < quorum, f"{holder} holds {token.balanceOf(holder)}, quorum {quorum}"
        assert token.getVotes(holder) < quorum, f"{holder} votes {token.getVotes(holder)}, quorum {quorum}"
    return holders


@pytest.fixture(params=["local", "supernet"])
def wired_deployment(request, deployments_dir):
    """(network, deployment json) of the protocol as `ape run deploy` leaves it: on the suite's
    chain with the local configuration, or on an anvil with the supernet's chain id with the
    supernet configuration (Ape then talks to that chain for the rest of the test)."""
    if request.param == "local":
        _, data = request.getfixturevalue("deploy_locally")()
        yield "local", data
        return
    process = request.getfixturevalue("supernet_deploy")()
    assert process.returncode == 0, process.stdout + process.stderr
    data = json.loads((deployments_dir / "supernet.json").read_text())
    with connected(request.getfixturevalue("supernet_anvil")[0]):
        yield "supernet", data


def test_deploy__after_wiring__no_externally_owned_account_holds_any_power(wired_deployment, deployments_dir, chain):
    network, data = wired_deployment
    assert chain.chain_id == data["chain_id"]
    protocol = {address.lower() for address in data["contracts"].values()}
    deployed = Deployment.load(deployments_dir / f"{network}.json")
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
    # No key behind the timelock either: on a production chain no single genesis holder reaches
    # the quorum. Local chains are exempt by design (each test account holds 5 % of the supply,
    # above the 4 % quorum, so that tests pass proposals with few voters).
    if network == "supernet":
        assert chain.chain_id not in LOCAL_CHAIN_IDS
        holders = assert_no_single_account_reaches_quorum(contracts["JoyToken"], dao, timelock, data["start_block"], chain)
        assert data["deployer"] in holders and len(holders) == 12  # treasury, deployer, ten recipients
    else:
        assert chain.chain_id in LOCAL_CHAIN_IDS


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
    process = run_ape(["run", "deploy"], {**os.environ, **env}, timeout=300)
    assert process.returncode != 0
    assert "is not valid JSON" in process.stderr


# ---- the supernet network ----


def test_deploy__supernet_network__deploys_with_named_account(supernet_anvil, supernet_deploy, deployments_dir):
    url, chain_id = supernet_anvil
    process = supernet_deploy()
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
    process = run_ape(["run", "deploy", "--network", "polygon:supernet:node"], {**os.environ, **env}, timeout=300)
    assert process.returncode != 0
    assert "needs an account" in process.stderr
    assert not (deployments_dir / "supernet.json").exists()


EIP170_CODE_SIZE_LIMIT = 24_576  # bytes of runtime code a contract may have on Ethereum and Polygon chains


@pytest.mark.parametrize("name", ["ModelMarketplaceV2", "NodeCoordinator", "ProofOfUse", "IOTAValidator",
                                  "ModelGovernanceDAO", "ProofOfInference", "JoyToken", "JoyTimelock"])
def test_contracts__compiled__fit_the_code_size_limit(project, name):
    code = getattr(project, name).contract_type.runtime_bytecode.bytecode
    size = (len(code) - 2) // 2
    print(f"{name}: {size:,} bytes of {EIP170_CODE_SIZE_LIMIT:,}")
    assert 0 < size <= EIP170_CODE_SIZE_LIMIT
