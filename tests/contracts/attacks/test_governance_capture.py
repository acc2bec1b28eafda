"""Governance capture: one genesis holder who passes every proposal alone, and governance delays
too short for a community to react within.

The rule (DESIGN.md, "Mechanism rules"): no single holder can pass a proposal alone, and the
delays leave a community time to react. Each attack is written as the attacker runs it.

A production network here is an anvil with the supernet's chain id; the local development chains
are the suite's own anvil (31337) and an anvil with chain id 1337. Proposals run end to end only
on local chains: the production floors are counted in days of blocks (151,200 at least), more
than anvil can mine in a test, so on a production chain the tests stop where the floors bite.
"""

import contextlib
import dataclasses

import pytest
import yaml
from eth_abi import decode as abi_decode

from helpers.chain_asserts import reverts_with
from helpers.governance import Governance
from joynet.chain.deploy import (
    DEFAULT_CONFIG_PATH,
    JOY,
    LOCAL_FLOORS,
    PRODUCTION_FLOORS,
    Allocation,
    DeployConfigError,
    check_deploy_config,
    deploy_protocol,
    load_deploy_config,
)
from joynet.chain.dao import ProposalState
from helpers.other_chains import ANVIL_ADDRESS_0, ZERO, anvil, connected, supernet_chain_id

DAY = 86_400
# The supernet allocation before this rule: the deployer kept 40 % of the supply "for distribution",
# ten times the 4 % quorum, and the treasury (which never votes) the rest.
OLD_SUPERNET_ALLOCATIONS = (Allocation("treasury", 600_000_000), Allocation("deployer", 400_000_000))
CAPTURED = "one holder could pass any proposal alone"


@pytest.fixture(scope="module")
def supernet_config():
    return load_deploy_config("supernet")


@pytest.fixture(scope="module")
def old_supernet_config(supernet_config):
    return dataclasses.replace(supernet_config, allocations=OLD_SUPERNET_ALLOCATIONS)


@pytest.fixture
def attacker(accounts):
    """A fresh funded key (nobody else's deployments share its addresses): the deployer who kept
    the undistributed allocation."""
    account = accounts.generate_test_account()
    accounts[0].transfer(account, "10 ether")
    return account


def with_allocations(config, *allocations):
    return dataclasses.replace(config, allocations=tuple(Allocation(to, amount) for to, amount in allocations))


def with_governance(config, **settings):
    return dataclasses.replace(config, governance=dataclasses.replace(config.governance, **settings))


# ---- one genesis holder passes every proposal ----


def test_pass_proposal__deployer_keeps_old_supernet_allocation__deployer_alone_drains_treasury(
    attacker, old_supernet_config, chain
):
    """The old supernet configuration, deployed: the deployer holds 40 % of the supply and is the
    only account that can vote at all. It proposes, votes, queues and executes the transfer of
    the whole treasury to itself; the contracts cannot tell a key from a community. The delays
    are local ones because the old production delays (1 day + 7 days of blocks, then 2 days)
    cannot be mined here; they would only make the attacker wait, with nobody able to vote
    against it. A local chain still accepts this allocation (tests need strong voters); a
    production chain no longer does (next tests)."""
    config = with_governance(old_supernet_config, voting_delay_blocks=1, voting_period_blocks=20, timelock_delay_seconds=60)
    deployment = deploy_protocol(attacker, config)
    token, timelock, dao = (deployment.contract(name) for name in ("JoyToken", "TimelockController", "ModelGovernanceDAO"))
    treasury = token.balanceOf(timelock)
    assert treasury == 600_000_000 * JOY and token.balanceOf(attacker) == 400_000_000 * JOY

    token.invoke_transaction("delegate", attacker, sender=attacker)
    chain.mine()
    governance = Governance(dao, timelock, chain)
    calls = [(token, token.transfer.encode_input(attacker, treasury))]
    proposal_id = governance.propose(attacker, calls, "Move the treasury to its steward")
    assert governance.vote(proposal_id, [(attacker, 1)]) is ProposalState.Succeeded
    assert dao.proposalVotes(proposal_id) == (0, 400_000_000 * JOY, 0)
    assert dao.quorum(dao.proposalSnapshot(proposal_id)) == 40_000_000 * JOY
    dao.queue(proposal_id, sender=attacker)
    governance.wait_timelock()
    dao.execute(proposal_id, sender=attacker)

    assert token.balanceOf(attacker) == token.totalSupply() == 10**9 * JOY
    assert token.balanceOf(timelock) == 0
    with pytest.raises(DeployConfigError, match=CAPTURED):
        check_deploy_config(old_supernet_config, supernet_chain_id(), attacker.address)


def test_deploy__old_supernet_config_on_supernet_chain__refused_with_nothing_deployed(
    supernet_anvil, supernet_deploy, deployments_dir, tmp_path, chain
):
    url, _ = supernet_anvil
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf8"))
    document["supernet"]["allocations"] = [{"to": a.to, "amount": a.amount} for a in OLD_SUPERNET_ALLOCATIONS]
    old_config = tmp_path / "old-deploy-config.yaml"
    old_config.write_text(yaml.safe_dump(document), encoding="utf8")

    process = supernet_deploy("--config", str(old_config))

    assert process.returncode == 1
    assert f"{ANVIL_ADDRESS_0} (deployer) receives 400,000,000 JOY" in process.stderr
    assert "at least the quorum of 40,000,000 JOY" in process.stderr and CAPTURED in process.stderr
    assert "deploying JoyNet" not in process.stdout
    assert not (deployments_dir / "supernet.json").exists()
    with connected(url):
        assert chain.provider.get_nonce(ANVIL_ADDRESS_0) == 0  # not one transaction sent
        assert chain.blocks.height == 0


def test_deploy_protocol__old_supernet_config_on_supernet_chain__raises_before_any_transaction(
    supernet_anvil, old_supernet_config, accounts, chain
):
    """The routine the script, the demo and the fixtures share refuses on its own."""
    url, chain_id = supernet_anvil
    with connected(url):
        deployer = accounts[0]
        with pytest.raises(DeployConfigError, match=f"refused on chain {chain_id}.*{CAPTURED}"):
            deploy_protocol(deployer, old_supernet_config)
        assert deployer.nonce == 0 and chain.blocks.height == 0


def test_check_config__deployer_also_named_by_its_address__refused_on_the_sum(supernet_config):
    """Two entries below the quorum each, one key behind both."""
    config = with_allocations(
        supernet_config, ("treasury", 960_000_000), ("deployer", 20_000_000), (ANVIL_ADDRESS_0.lower(), 20_000_000)
    )
    with pytest.raises(DeployConfigError, match=CAPTURED) as refused:
        check_deploy_config(config, supernet_chain_id(), ANVIL_ADDRESS_0)
    assert f"{ANVIL_ADDRESS_0} (deployer + {ANVIL_ADDRESS_0.lower()}) receives 40,000,000 JOY" in str(refused.value)


@pytest.mark.parametrize("largest, refused", [(39_999_999, False), (40_000_000, True)])
def test_check_config__one_recipient_just_below_or_at_quorum__refused_only_at_quorum(supernet_config, largest, refused):
    recipient = "0x" + "ab" * 20
    config = with_allocations(
        supernet_config, ("treasury", 1_000_000_000 - largest - 30_000_000), (recipient, largest), ("deployer", 30_000_000)
    )
    with pytest.raises(DeployConfigError, match=CAPTURED) if refused else contextlib.nullcontext():
        check_deploy_config(config, supernet_chain_id(), ANVIL_ADDRESS_0)


@pytest.mark.parametrize("chain_id", [31337, 1337])
def test_check_config__old_supernet_allocation_on_local_chain__accepted(old_supernet_config, chain_id):
    check_deploy_config(old_supernet_config, chain_id, ANVIL_ADDRESS_0)


@pytest.mark.parametrize("chain_id", [31337, "supernet"])
def test_check_config__almost_everything_in_treasury__refused_as_unreachable(supernet_config, chain_id):
    """The naive fix (keep the whole supply in the treasury) freezes governance instead: the
    treasury never votes, so no proposal could reach the quorum."""
    config = with_allocations(supernet_config, ("treasury", 990_000_000), ("deployer", 10_000_000))
    chain_id = supernet_chain_id() if chain_id == "supernet" else chain_id
    with pytest.raises(DeployConfigError, match="no proposal could ever reach the quorum"):
        check_deploy_config(config, chain_id, ANVIL_ADDRESS_0)


# ---- delays a community cannot react within ----


def test_check_config__floors__equal_the_contracts_constants(timelock, dao):
    assert (timelock.MIN_DELAY_FLOOR_LOCAL(), dao.MIN_VOTING_DELAY_LOCAL(), dao.MIN_VOTING_PERIOD_LOCAL()) == (
        dataclasses.astuple(LOCAL_FLOORS)
    )
    assert (
        timelock.MIN_DELAY_FLOOR_PRODUCTION(),
        dao.MIN_VOTING_DELAY_PRODUCTION(),
        dao.MIN_VOTING_PERIOD_PRODUCTION(),
    ) == dataclasses.astuple(PRODUCTION_FLOORS) == (2 * DAY, 12 * 3600 // 2, 3 * DAY // 2)


def test_deploy_protocol__local_delays_on_supernet_chain__refused_before_any_transaction(
    supernet_anvil, supernet_config, accounts, chain
):
    url, _ = supernet_anvil
    config = with_governance(supernet_config, voting_delay_blocks=1, voting_period_blocks=20, timelock_delay_seconds=60)
    with connected(url):
        with pytest.raises(DeployConfigError, match="timelock_delay_seconds is 60 s, below the floor of 172,800 s"):
            deploy_protocol(accounts[0], config)
        assert accounts[0].nonce == 0


@pytest.mark.parametrize("delay", [60, 2 * DAY - 1])
def test_deploy_timelock__delay_under_two_days_on_supernet_chain__reverts(supernet_anvil, accounts, project, delay):
    url, _ = supernet_anvil
    with connected(url):
        deployer = accounts[0]
        with reverts_with("JoyTimelockDelayOutOfBounds", abi=project.JoyTimelock) as revert:
            deployer.deploy(project.JoyTimelock, delay, [], [ZERO], deployer)
        # JoyTimelockDelayOutOfBounds(uint256 delay, uint256 floor, uint256 ceiling)
        assert abi_decode(["uint256"] * 3, revert.data[4:]) == (delay, 2 * DAY, 30 * DAY)


def test_update_delay__captured_proposer_schedules_60_seconds_on_supernet_chain__execution_reverts(
    supernet_anvil, accounts, project, chain
):
    """A captured DAO (here a key holding the proposer and executor roles outright) tries to turn
    the timelock into an instant path: it schedules updateDelay(60) and waits out the two days.
    The timelock's own call reverts, and the delay stays two days."""
    url, _ = supernet_anvil
    with connected(url) as provider:
        captor = accounts[0]
        timelock = captor.deploy(project.JoyTimelock, 2 * DAY, [captor], [captor], ZERO)
        assert timelock.minDelayFloor() == timelock.getMinDelay() == 2 * DAY
        data = timelock.updateDelay.encode_input(60)
        predecessor, salt = b"\0" * 32, b"\1" * 32
        timelock.schedule(timelock, 0, data, predecessor, salt, 2 * DAY, sender=captor)
        provider.make_request("evm_increaseTime", [2 * DAY + 1])
        provider.make_request("evm_mine", [])
        with reverts_with("JoyTimelockDelayOutOfBounds", abi=project.JoyTimelock):
            timelock.execute(timelock, 0, data, predecessor, salt, sender=captor)
        assert timelock.getMinDelay() == 2 * DAY


@pytest.mark.parametrize(
    "voting_delay, voting_period, setting, floor",
    [
        (21_600, 10, "votingPeriod", 129_600),
        (21_600, 129_599, "votingPeriod", 129_600),
        (0, 129_600, "votingDelay", 21_600),
        (21_599, 129_600, "votingDelay", 21_600),
    ],
)
def test_deploy_dao__vote_shorter_than_production_floors_on_supernet_chain__reverts(
    supernet_anvil, accounts, project, voting_delay, voting_period, setting, floor
):
    url, _ = supernet_anvil
    with connected(url):
        deployer, doomed = accounts[0], accounts[1]  # doomed only sends the reverting deployment
        token = deployer.deploy(project.JoyToken, "J", "J", [deployer], [10**9 * JOY])
        timelock = deployer.deploy(project.JoyTimelock, 2 * DAY, [], [ZERO], deployer)
        with reverts_with("ModelGovernanceDAOSettingOutOfBounds", abi=project.ModelGovernanceDAO) as revert:
            doomed.deploy(project.ModelGovernanceDAO, token, timelock, voting_delay, voting_period, 0, 4)
        # ModelGovernanceDAOSettingOutOfBounds(string setting, uint256 value, uint256 min, uint256 max)
        name, value, minimum, _ = abi_decode(["string", "uint256", "uint256", "uint256"], revert.data[4:])
        assert (name, minimum) == (setting, floor) and value in (voting_delay, voting_period)
        dao = deployer.deploy(project.ModelGovernanceDAO, token, timelock, 21_600, 129_600, 0, 4)
        assert (dao.minVotingDelay(), dao.minVotingPeriod()) == (21_600, 129_600)


@pytest.mark.parametrize("chain_id", [31337, 1337])
def test_deploy_governance__minute_timelock_and_10_block_vote_on_local_chain__deploys(
    chain_id, accounts, project, chain
):
    """The short floors stay where tests and demos need them: local development chains only."""
    with contextlib.ExitStack() as stack:
        if chain_id == chain.chain_id:
            deployer = accounts.generate_test_account()
            accounts[0].transfer(deployer, "10 ether")
        else:
            stack.enter_context(connected(stack.enter_context(anvil(chain_id))))
            deployer = accounts[0]
        assert chain.chain_id == chain_id
        token = deployer.deploy(project.JoyToken, "J", "J", [deployer], [10**9 * JOY])
        timelock = deployer.deploy(project.JoyTimelock, 60, [], [ZERO], deployer)
        dao = deployer.deploy(project.ModelGovernanceDAO, token, timelock, 0, 10, 0, 4)
        assert (timelock.getMinDelay(), dao.votingDelay(), dao.votingPeriod()) == (60, 0, 10)
        assert (timelock.minDelayFloor(), dao.minVotingDelay(), dao.minVotingPeriod()) == (60, 0, 10)
