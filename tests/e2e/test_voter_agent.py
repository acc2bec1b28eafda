"""`ape run dao_voter` as a separate process on the suite's chain: it delegates to itself, then
votes by agents/voter-policy.yaml, and with its weight decides the outcome; its /metrics counts
the vote."""

import urllib.request

import pytest

from joynet.chain.dao import ProposalState, VoteType
from helpers.ape_commands import ape_env
from helpers.ipfs_daemon import free_local_port
from helpers.metrics import metric_samples
from joynet.processes import Agent

VOTER_ACCOUNT_INDEX = 6


@pytest.fixture
def voter_account(accounts):
    return accounts[VOTER_ACCOUNT_INDEX]


@pytest.fixture
def backers(token, voter_account, alice, bob):
    """Alice votes her own 50M JOY; Bob trusts the voter agent with his: it votes 100M."""
    token.invoke_transaction("delegate", alice, sender=alice)
    token.invoke_transaction("delegate", voter_account, sender=bob)
    return alice, bob


@pytest.fixture
def voter_agent(chain, deployment, tmp_path, token, voter_account, backers):
    deployment.save(tmp_path / "local.json")
    assert token.delegates(voter_account) == "0x" + "00" * 20  # so the agent has to delegate
    port = free_local_port()
    agent = Agent(
        "voter", ["dao_voter", "--account", f"test:{VOTER_ACCOUNT_INDEX}", "--poll-seconds", "0.2",
                  "--metrics-port", str(port)],
        tmp_path / "voter.log", "following ModelGovernanceDAO", ape_env(chain, tmp_path), extra={"port": port},
    )
    agent.start()
    agent.wait_ready(90)
    yield agent
    assert agent.stop(20) == 0, agent.log()


def fee_shares_call(marketplace, node, owner, protocol):
    return (marketplace, marketplace.setFeeShares.encode_input(node, owner, protocol))


def wait_for_the_agents_vote(agent, dao, chain, proposal_id):
    """Mines until voting opens (anvil mines only when asked), then waits for the agent's vote."""

    def open_voting():
        if ProposalState(dao.state(proposal_id)) is ProposalState.Pending:
            chain.mine()

    return agent.wait_for("voted ", step=open_voting)


def vote_cast_by(dao, voter, proposal_id, chain, start_block):
    (log,) = [
        entry
        for entry in dao.VoteCast.range(start_block, chain.blocks.height + 1)
        if entry.proposalId == proposal_id and entry.voter == voter.address
    ]
    return log


def test_dao_voter__royalty_above_policy__votes_against_with_reason_and_proposal_fails(
    voter_agent, governance, dao, marketplace, token, chain, voter_account, alice, deployment
):
    assert voter_agent.wait_for("delegated its 50,000,000 JOY to itself")
    assert token.delegates(voter_account) == voter_account.address
    calls = [fee_shares_call(marketplace, 5000, 4500, 500)]  # within the contract's 50 % cap, not the policy's 30 %
    proposal_id = governance.propose(alice, calls, "Raise the model-owner royalty to 45 %")
    dao.castVote(proposal_id, VoteType.For, sender=alice)

    line = wait_for_the_agents_vote(voter_agent, dao, chain, proposal_id)
    assert "voted AGAINST" in line and "with 100,000,000 JOY" in line
    vote = vote_cast_by(dao, voter_account, proposal_id, chain, deployment.start_block)
    assert vote.support == VoteType.Against and vote.weight == 100_000_000 * 10**18
    assert "newOwnerShareBps=4500 is above the policy's maximum 3000" in vote.reason
    with urllib.request.urlopen(f"http://127.0.0.1:{voter_agent.extra['port']}/metrics", timeout=10) as page:
        metrics = metric_samples(page.read().decode())
    assert metrics['joynet_voter_votes_cast_total{support="against"}'] == 1
    assert metrics['joynet_voter_votes_cast_total{support="for"}'] == 0
    assert metrics["joynet_voter_proposals_seen_total"] == 1 and metrics["joynet_voter_votes_pending"] == 0
    chain.mine(dao.votingPeriod() + 1)
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Defeated
    assert marketplace.ownerShareBps() == 2000


def test_dao_voter__royalty_within_policy__votes_for_and_proposal_executes_after_timelock(
    voter_agent, governance, dao, marketplace, chain, voter_account, alice, deployment
):
    calls = [fee_shares_call(marketplace, 7000, 2500, 500)]
    proposal_id = governance.propose(alice, calls, "Raise the model-owner royalty to 25 %")

    line = wait_for_the_agents_vote(voter_agent, dao, chain, proposal_id)
    assert "voted FOR" in line
    vote = vote_cast_by(dao, voter_account, proposal_id, chain, deployment.start_block)
    assert vote.support == VoteType.For
    assert "newOwnerShareBps=2500 within [1000, 3000]" in vote.reason
    chain.mine(dao.votingPeriod() + 1)
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Succeeded  # the agent's 100M alone reach quorum
    dao.queue(proposal_id, sender=alice)
    governance.wait_timelock()
    dao.execute(proposal_id, sender=alice)
    assert ProposalState(dao.state(proposal_id)) is ProposalState.Executed
    assert (marketplace.nodeShareBps(), marketplace.ownerShareBps(), marketplace.protocolShareBps()) == (7000, 2500, 500)
    voter_agent.wait_for("executed")


def test_dao_voter__malformed_policy__exits_with_a_clear_error(chain, deployment, tmp_path):
    deployment.save(tmp_path / "local.json")
    bad = tmp_path / "policy.yaml"
    bad.write_text("supports: [{contract: ModelMarketplace, function: setFeeShare}]\n")
    agent = Agent("voter", ["dao_voter", "--policy", str(bad)], tmp_path / "voter.log", "following", ape_env(chain, tmp_path))
    agent.start()
    assert agent.process.wait(120) == 1
    agent.stop()
    assert "dao_voter:" in agent.log() and "ModelMarketplace has no function 'setFeeShare'" in agent.log()
