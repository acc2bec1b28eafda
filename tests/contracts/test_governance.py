"""ModelGovernanceDAO + JoyTimelock: the whole lifecycle of a proposal, and every way it fails."""

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.dao import ProposalState


@pytest.fixture
def set_voting_period(dao):
    """A real parameter change: the DAO's voting period becomes ``blocks``."""
    return lambda blocks: [(dao, dao.setVotingPeriod.encode_input(blocks))]


# ---- the happy path ----


def test_proposal__passed_and_delayed__changes_voting_period(
    dao, timelock, governance, alice, bob, carol, outsider, chain, set_voting_period
):
    calls = set_voting_period(30)
    proposal_id = governance.propose(alice, calls, "Lengthen the vote to 30 blocks")
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Active

    for voter in (alice, bob, carol):
        dao.castVote(proposal_id, 1, sender=voter)
    assert dao.proposalVotes(proposal_id) == (0, 150_000_000 * JOY, 0)
    chain.mine(dao.votingPeriod() + 1)
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Succeeded

    dao.queue(proposal_id, sender=outsider)  # anyone may queue a succeeded proposal
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Queued
    assert dao.proposalEta(proposal_id) >= chain.pending_timestamp + timelock.getMinDelay() - 1

    governance.wait_timelock()
    receipt = dao.execute(proposal_id, sender=outsider)  # and anyone may execute it

    assert ProposalState(dao.state(proposal_id)) is ProposalState.Executed
    assert dao.votingPeriod() == 30
    assert dao.VotingPeriodSet(20, 30) in receipt.events


def test_proposal__treasury_transfer__pays_from_the_timelock(token, timelock, governance, alice, bob, outsider):
    treasury = token.balanceOf(timelock)
    calls = [(token, token.transfer.encode_input(outsider, 1_000 * JOY))]
    governance.enact(alice, calls, "Grant 1,000 JOY to a contributor", [(alice, 1), (bob, 1)])
    assert token.balanceOf(outsider) == 1_000 * JOY
    assert token.balanceOf(timelock) == treasury - 1_000 * JOY


def test_proposal__abstentions__count_for_quorum_not_for_outcome(dao, governance, alice, bob, set_voting_period):
    proposal_id = governance.propose(alice, set_voting_period(25), "Abstain test")
    state = governance.vote(proposal_id, [(alice, 1), (bob, 2)])
    assert state is ProposalState.Succeeded
    assert dao.proposalVotes(proposal_id) == (0, 50_000_000 * JOY, 50_000_000 * JOY)


# ---- failure paths ----


def test_execute__before_timelock_delay__reverts(dao, timelock, governance, alice, bob, set_voting_period):
    proposal_id = governance.pass_and_queue(alice, set_voting_period(30), "Too early", [(alice, 1), (bob, 1)])
    with reverts_with("TimelockUnexpectedOperationState"):
        dao.execute(proposal_id, sender=alice)
    assert dao.votingPeriod() == 20


def test_proposal__below_quorum__is_defeated_and_cannot_queue(
    dao, token, governance, alice, outsider, chain, set_voting_period
):
    # 1M JOY is 0.1 % of the supply, well below the 4 % quorum.
    token.transfer(outsider, 1_000_000 * JOY, sender=alice)
    token.invoke_transaction("delegate", outsider, sender=outsider)
    chain.mine()
    proposal_id = governance.propose(outsider, set_voting_period(30), "Lonely proposal")
    assert dao.quorum(dao.proposalSnapshot(proposal_id)) == 40_000_000 * JOY

    state = governance.vote(proposal_id, [(outsider, 1)])

    assert state is ProposalState.Defeated
    with reverts_with("GovernorUnexpectedProposalState"):
        dao.queue(proposal_id, sender=outsider)


def test_proposal__more_against_than_for__is_defeated_and_cannot_queue(
    dao, governance, alice, bob, carol, set_voting_period
):
    proposal_id = governance.propose(alice, set_voting_period(30), "Contested")
    state = governance.vote(proposal_id, [(alice, 1), (bob, 0), (carol, 0)])
    assert state is ProposalState.Defeated
    assert dao.proposalVotes(proposal_id) == (100_000_000 * JOY, 50_000_000 * JOY, 0)
    with reverts_with("GovernorUnexpectedProposalState"):
        dao.queue(proposal_id, sender=alice)
    with reverts_with("GovernorUnexpectedProposalState"):
        dao.execute(proposal_id, sender=alice)


def test_vote__twice__reverts(dao, governance, alice, set_voting_period):
    proposal_id = governance.propose(alice, set_voting_period(30), "Vote twice")
    dao.castVote(proposal_id, 1, sender=alice)
    with reverts_with("GovernorAlreadyCastVote"):
        dao.castVote(proposal_id, 0, sender=alice)


def test_vote__before_voting_starts__reverts(dao, alice, set_voting_period):
    (target, data), = set_voting_period(30)
    receipt = dao.propose([target], [0], [data], "Not open yet", sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    with reverts_with("GovernorUnexpectedProposalState"):
        dao.castVote(created.proposalId, 1, sender=alice)


def test_vote__without_delegated_votes__counts_nothing(dao, governance, alice, outsider, set_voting_period):
    proposal_id = governance.propose(alice, set_voting_period(30), "Zero weight")
    dao.castVote(proposal_id, 1, sender=outsider)
    assert dao.proposalVotes(proposal_id) == (0, 0, 0)


def test_cancel__by_someone_else__reverts(dao, alice, bob, set_voting_period):
    (target, data), = set_voting_period(30)
    description = "Cancel me"
    dao.propose([target], [0], [data], description, sender=alice)
    proposal_id = dao.hashProposal([target], [0], [data], keccak(text=description))
    with reverts_with("GovernorUnableToCancel"):
        dao.cancel(proposal_id, sender=bob)


def test_cancel__by_proposer_while_pending__cancels(dao, alice, set_voting_period):
    (target, data), = set_voting_period(30)
    receipt = dao.propose([target], [0], [data], "Withdrawn", sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    dao.cancel(created.proposalId, sender=alice)
    assert ProposalState(dao.state(created.proposalId)) is ProposalState.Canceled


# ---- only the timelock changes anything ----


@pytest.mark.parametrize(
    "method, args",
    [
        ("setVotingPeriod", (30,)),
        ("setVotingDelay", (5,)),
        ("setProposalThreshold", (0,)),
        ("updateQuorumNumerator", (10,)),
        ("updateTimelock", ("0x" + "11" * 20,)),
        ("relay", ("0x" + "11" * 20, 0, b"")),
    ],
)
def test_dao_setting__called_directly__reverts(dao, deployer, outsider, method, args):
    for caller in (deployer, outsider):
        with reverts_with("GovernorOnlyExecutor"):
            getattr(dao, method)(*args, sender=caller)


def test_timelock__update_delay_by_anyone_but_itself__reverts(timelock, deployer):
    with reverts_with("TimelockUnauthorizedCaller"):
        timelock.updateDelay(3600, sender=deployer)
    assert timelock.getMinDelay() == 60


@pytest.mark.parametrize("role", ["PROPOSER_ROLE", "CANCELLER_ROLE", "DEFAULT_ADMIN_ROLE"])
def test_timelock__grant_role_by_deployer__reverts(timelock, deployer, role):
    with reverts_with("AccessControlUnauthorizedAccount"):
        timelock.grantRole(getattr(timelock, role)(), deployer, sender=deployer)


def test_timelock__schedule_by_deployer__reverts(timelock, token, deployer):
    data = token.transfer.encode_input(deployer, 1)
    with reverts_with("AccessControlUnauthorizedAccount"):
        timelock.schedule(token, 0, data, b"\0" * 32, b"\0" * 32, 3600, sender=deployer)


# ---- hard bounds, even for a passed proposal ----


def test_proposal__quorum_above_cap__passes_vote_but_cannot_execute(dao, governance, alice, bob):
    calls = [(dao, dao.updateQuorumNumerator.encode_input(80))]
    proposal_id = governance.ready_to_execute(alice, calls, "Quorum 80 %", [(alice, 1), (bob, 1)])
    with reverts_with("ModelGovernanceDAOSettingOutOfBounds"):
        dao.execute(proposal_id, sender=alice)
    assert dao.quorumNumerator() == 4


def test_proposal__timelock_delay_below_floor__cannot_execute(dao, timelock, governance, alice, bob):
    calls = [(timelock, timelock.updateDelay.encode_input(10))]
    proposal_id = governance.ready_to_execute(alice, calls, "Delay 10 s", [(alice, 1), (bob, 1)])
    with reverts_with("JoyTimelockDelayOutOfBounds"):
        dao.execute(proposal_id, sender=alice)
    assert timelock.getMinDelay() == 60


def test_proposal__timelock_delay_within_bounds__changes_delay(dao, timelock, governance, alice, bob):
    calls = [(timelock, timelock.updateDelay.encode_input(3600))]
    governance.enact(alice, calls, "Delay 1 h", [(alice, 1), (bob, 1)])
    assert timelock.getMinDelay() == 3600


@pytest.mark.parametrize(
    "voting_delay, voting_period, threshold, quorum, setting",
    [
        (1, 5, 0, 4, "votingPeriod"),
        (1_296_001, 20, 0, 4, "votingDelay"),
        (1, 20, 0, 0, "quorumNumerator"),
        (1, 20, 0, 51, "quorumNumerator"),
        (1, 20, 10_000_001 * JOY, 4, "proposalThreshold"),
    ],
)
def test_deploy_dao__setting_out_of_bounds__reverts(
    project, doomed_deployer, token, timelock, voting_delay, voting_period, threshold, quorum, setting
):
    with reverts_with("ModelGovernanceDAOSettingOutOfBounds", abi=project.ModelGovernanceDAO) as revert:
        doomed_deployer.deploy(
            project.ModelGovernanceDAO, token, timelock, voting_delay, voting_period, threshold, quorum
        )
    # ModelGovernanceDAOSettingOutOfBounds(string setting, uint256 value, uint256 min, uint256 max)
    name, value, _, _ = abi_decode(["string", "uint256", "uint256", "uint256"], revert.data[4:])
    assert name == setting
    assert value in (voting_delay, voting_period, threshold, quorum)


@pytest.mark.parametrize("delay", [0, 59, 30 * 24 * 3600 + 1])
def test_deploy_timelock__delay_out_of_bounds__reverts(project, doomed_deployer, delay):
    with reverts_with("JoyTimelockDelayOutOfBounds", abi=project.JoyTimelock):
        doomed_deployer.deploy(project.JoyTimelock, delay, [], [], doomed_deployer)
