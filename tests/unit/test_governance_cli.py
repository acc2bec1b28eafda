"""`ape run governance propose|vote|queue|execute|status`: a whole lifecycle from the command
line in subprocesses on the suite's chain, and its refusals of bad input; the call parser and the
timelock dry run in process."""

import re

import pytest

from helpers.ape_commands import ape_env, run_ape
from joynet.chain.dao import GovernanceError, ProposalState
from joynet.governance.proposals import dry_run, parse_call
from joynet.governance.voter import ContractDirectory


@pytest.fixture
def deployments_dir(deployment, tmp_path):
    deployment.save(tmp_path / "local.json")
    return tmp_path


@pytest.fixture
def governance_cli(chain, deployments_dir):
    def run(*args, ok=True):
        process = run_ape(["run", "governance", *args], ape_env(chain, deployments_dir))
        if ok:
            assert process.returncode == 0, process.stdout + process.stderr
        else:
            assert process.returncode == 1, process.stdout + process.stderr
        return process

    return run


@pytest.fixture(scope="module")
def directory(deployment):
    return ContractDirectory.from_deployment(deployment)


def test_governance_cli__lifecycle__proposes_votes_queues_and_executes_with_states_and_time_left(
    governance_cli, voters, dao, marketplace, chain, governance
):
    out = governance_cli(
        "propose", "--account", "test:1", "--description", "Royalty to 25 %",
        "--call", "ModelMarketplace.setFeeShares(7000, 2_500, 500)",
    ).stdout
    proposal = re.search(r"proposal (0x[0-9a-f]+)", out).group(1)
    assert "ModelMarketplace.setFeeShares(newNodeShareBps=7000, newOwnerShareBps=2500, newProtocolShareBps=500)" in out
    assert "Pending: voting opens in" in out

    refused = governance_cli("vote", proposal, "for", "--account", "test:1", ok=False)
    assert "is Pending, not Active: no vote possible" in refused.stderr

    chain.mine(dao.votingDelay() + 1)
    out = governance_cli("vote", proposal, "for", "--reason", "fair to owners", "--account", "test:1").stdout
    assert "voted for" in out and "with 50,000,000 JOY" in out
    assert "votes       for 50,000,000 JOY, against 0 JOY" in out
    governance_cli("vote", proposal, "for", "--account", "test:2")
    governance_cli("vote", str(int(proposal, 16)), "AGAINST", "--account", "test:3")  # decimal ids too

    status = governance_cli("status", proposal).stdout
    assert "description Royalty to 25 %" in status
    assert re.search(r"state       Active: voting closes in \d+ block\(s\) \(≈ \d+ s\)", status), status
    listing = governance_cli("status").stdout
    assert proposal[:14] in listing and "Active" in listing

    chain.mine(dao.votingPeriod() + 1)
    out = governance_cli("queue", proposal).stdout
    assert re.search(r"queued 0x[0-9a-f]+: executable in \d+ s", out), out
    early = governance_cli("execute", proposal, ok=False)
    assert re.search(r"is in the timelock: \d+ s left \(ETA \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", early.stderr), early.stderr

    governance.wait_timelock()
    assert "ready to execute" in governance_cli("status", proposal).stdout
    out = governance_cli("execute", proposal, "--account", "test:5").stdout
    assert "state Executed" in out
    assert ProposalState(dao.state(int(proposal, 16))) is ProposalState.Executed
    assert marketplace.ownerShareBps() == 2500


@pytest.mark.parametrize(
    "call, message",
    [
        ("ModelMarketplace.setFeeShare(7000, 2500, 500)", "ModelMarketplace has no function 'setFeeShare'; its functions:"),
        ("ModelMarketplace.setFeeShares(70000, 2500, 500)", "argument newNodeShareBps: 70000 is out of range for uint16 (0 to 65,535)"),
        ("ModelMarketplace.setFeeShares(7000, 2500)", "takes 3 argument(s) (uint16 newNodeShareBps, uint16 newOwnerShareBps, uint16 newProtocolShareBps), got 2"),
        ("Marketplace.setFeeShares(7000, 2500, 500)", "unknown contract 'Marketplace'; the deployment has:"),
        ("ModelMarketplace.setTreasury(12)", "argument newTreasury: 12 is not an address"),
        ("setFeeShares(7000, 2500, 500)", "write it as Contract.function(arg, ...)"),
    ],
)
def test_parse_call__bad_input__raises_a_readable_error(deployment, directory, call, message):
    with pytest.raises(GovernanceError) as error:
        parse_call(call, deployment, directory)
    assert message in str(error.value)


def test_parse_call__addresses_and_bytes32__stay_text_until_typed(deployment, directory, marketplace):
    call = parse_call(f"ModelMarketplace.setTreasury({deployment.address('TimelockController')})", deployment, directory)
    assert call.calldata == marketplace.setTreasury.encode_input(deployment.address("TimelockController"))


def test_dry_run__beyond_the_contracts_cap__reports_the_contracts_error(deployment, directory):
    call = parse_call("ModelMarketplace.setFeeShares(3000, 6000, 1000)", deployment, directory)  # owner cap is 50 %
    timelock, governor = deployment.address("TimelockController"), deployment.address("ModelGovernanceDAO")
    assert dry_run(call, timelock, governor, directory) == (
        "ModelMarketplaceInvalidFeeShares(nodeShareBps=3000, ownerShareBps=6000, protocolShareBps=1000)"
    )
    within = parse_call("ModelMarketplace.setFeeShares(7000, 2500, 500)", deployment, directory)
    assert dry_run(within, timelock, governor, directory) is None


def test_governance_cli__bad_input__fails_with_one_line_and_nothing_proposed(governance_cli, dao, chain, deployment):
    proposals_before = dao.proposalCount()
    out_of_bounds = governance_cli(
        "propose", "--description", "too much", "--call", "ModelMarketplace.setFeeShares(3000, 6000, 1000)", ok=False
    )
    assert "would revert when the timelock executes it: ModelMarketplaceInvalidFeeShares(" in out_of_bounds.stderr
    unknown = governance_cli("propose", "--description", "x", "--call", "ModelMarketplace.setFees(1)", ok=False)
    assert "ModelMarketplace has no function 'setFees'" in unknown.stderr
    missing = governance_cli("queue", "0x1234", ok=False)
    assert "no proposal 0x1234 on this DAO" in missing.stderr
    assert dao.proposalCount() == proposals_before
