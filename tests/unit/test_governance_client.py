"""joynet.ModelGovernanceDAO: the original design's async client, against the deployed governor."""

import asyncio

import pytest

from joynet import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType


@pytest.fixture
def client_for(dao):
    return lambda account: ModelGovernanceDAO(address=dao.address, account=account)


def test_client__full_lifecycle__executes_parameter_change(dao, client_for, alice, bob, carol, chain, governance):
    async def lifecycle():
        proposer = client_for(alice)
        proposal_id = await proposer.propose(
            targets=[dao.address],
            values=[0],
            calldata=[dao.setVotingDelay.encode_input(2)],
            description="Voting delay: 2 blocks",
        )
        assert proposer.state(proposal_id) is ProposalState.Pending
        chain.mine(dao.votingDelay() + 1)
        assert proposer.state(proposal_id) is ProposalState.Active

        await client_for(alice).castVote(proposal_id, True)
        await client_for(bob).cast_vote(proposal_id, False, reason="too slow")
        await client_for(carol).castVote(proposal_id, VoteType.For)
        assert proposer.votes(proposal_id) == {"against": 50_000_000 * 10**18, "for": 100_000_000 * 10**18, "abstain": 0}
        chain.mine(dao.votingPeriod() + 1)
        assert proposer.state(proposal_id) is ProposalState.Succeeded

        await proposer.queue(proposal_id)
        assert proposer.state(proposal_id) is ProposalState.Queued
        governance.wait_timelock()
        await proposer.execute(proposal_id)
        return proposer.state(proposal_id)

    assert asyncio.run(lifecycle()) is ProposalState.Executed
    assert dao.votingDelay() == 2


def test_client__proposal_id__matches_the_governor_hash(dao, client_for, alice):
    client = client_for(alice)
    calldata = [dao.setVotingDelay.encode_input(3)]
    proposal_id = asyncio.run(client.propose([dao.address], [0], calldata, "Same id"))
    assert proposal_id == client.proposal_id([dao.address], [0], calldata, "Same id")


def test_client__queue_while_active__raises_readable_error(dao, client_for, alice, chain):
    client = client_for(alice)
    proposal_id = asyncio.run(client.propose([dao.address], [0], [dao.setVotingDelay.encode_input(2)], "Early"))
    chain.mine(dao.votingDelay() + 1)
    with pytest.raises(GovernanceError, match="is Active; only a Succeeded one can be queued"):
        asyncio.run(client.queue(proposal_id))
    with pytest.raises(GovernanceError, match="is Active; only a Queued one can be executed"):
        asyncio.run(client.execute(proposal_id))


def test_client__vote_when_not_active__raises_readable_error(dao, client_for, alice):
    client = client_for(alice)
    proposal_id = asyncio.run(client.propose([dao.address], [0], [dao.setVotingDelay.encode_input(2)], "Pending"))
    with pytest.raises(GovernanceError, match="is Pending, not Active"):
        asyncio.run(client.castVote(proposal_id, True))


def test_client__mismatched_proposal_lists__raises_before_sending(dao, client_for, alice):
    with pytest.raises(GovernanceError, match="one length"):
        asyncio.run(client_for(alice).propose([dao.address], [0, 0], [b""], "Broken"))


def test_client__one_call_given_as_itself__proposed_as_a_list_of_one(dao, client_for, alice):
    # The original design's example: one target, one value, one encoded call (bytes or 0x-hex).
    client, call = client_for(alice), dao.setVotingDelay.encode_input(2)
    proposal_id = asyncio.run(client.propose(targets=dao.address, values=0, calldata=call, description="One call"))
    assert proposal_id == client.proposal_id([dao.address], [0], [call], "One call")
    hex_id = asyncio.run(client.propose(dao.address, 0, "0x" + bytes(call).hex(), "One call, in hex"))
    assert hex_id == client.proposal_id([dao.address], [0], [call], "One call, in hex")


def test_client__no_account_given__signs_with_the_account_joynet_account_names(dao, alice, accounts, chain,
                                                                               monkeypatch):
    monkeypatch.setenv("JOYNET_ACCOUNT", f"test:{[a.address for a in accounts].index(alice.address)}")
    client = ModelGovernanceDAO(address=dao.address)  # as in the original design: no account argument
    proposal_id = asyncio.run(client.propose(dao.address, 0, dao.setVotingDelay.encode_input(2), "From the env"))
    assert client.account.address == alice.address
    (created,) = [log for log in dao.ProposalCreated.range(0, chain.blocks.height + 1) if log.proposalId == proposal_id]
    assert created.proposer == alice.address


def test_client__without_account__reads_but_cannot_send(dao, monkeypatch):
    monkeypatch.delenv("JOYNET_ACCOUNT", raising=False)
    client = ModelGovernanceDAO(address=dao.address)
    with pytest.raises(GovernanceError, match="no account"):
        asyncio.run(client.propose([dao.address], [0], [b""], "No signer"))


def test_client__default_address__comes_from_deployment_file(deployment, tmp_path, monkeypatch):
    monkeypatch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path))
    deployment.save(tmp_path / "local.json")
    assert ModelGovernanceDAO().address == deployment.address("ModelGovernanceDAO")


def test_client__execute_inside_timelock_delay__raises_without_sending(dao, client_for, governance, alice, bob):
    calls = [(dao, dao.setVotingDelay.encode_input(2))]
    proposal_id = governance.pass_and_queue(alice, calls, "Wait for it", [(alice, 1), (bob, 1)])
    client = client_for(alice)
    with pytest.raises(GovernanceError, match="is in the timelock until"):
        asyncio.run(client.execute(proposal_id))
    assert client.last_receipt is None
    assert client.state(proposal_id) is ProposalState.Queued
