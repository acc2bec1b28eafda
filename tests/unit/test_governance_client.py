"""joynet.ModelGovernanceDAO: the original design's async client, against the deployed governor."""

import asyncio
from datetime import UTC, datetime

import pytest

from joynet import (
    GovernanceError,
    ModelGovernanceDAO,
    ProposalState,
    ProposalStateError,
    TimelockNotReadyError,
    VoteType,
)


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
    with pytest.raises(TimelockNotReadyError, match=r"timelock: \d+ s left \(ETA "):
        asyncio.run(client.execute(proposal_id))
    assert client.last_receipt is None
    assert client.state(proposal_id) is ProposalState.Queued


def test_client__execute_before_eta__says_how_many_seconds_are_left(dao, timelock, client_for, governance, chain,
                                                                    alice, bob):
    calls = [(dao, dao.setVotingDelay.encode_input(2))]
    proposal_id = governance.pass_and_queue(alice, calls, "Count it down", [(alice, 1), (bob, 1)])
    client, eta = client_for(alice), dao.proposalEta(proposal_id)
    chain.pending_timestamp = eta - 25  # 25 s before the ETA, in the next block
    with pytest.raises(TimelockNotReadyError) as early:
        asyncio.run(client.execute(proposal_id))
    assert early.value.eta == eta and early.value.seconds_left == 25
    assert f"timelock: 25 s left (ETA {datetime.fromtimestamp(eta, UTC):%Y-%m-%d %H:%M:%S} UTC)" in str(early.value)
    assert client.last_receipt is None

    chain.pending_timestamp = eta  # the ETA itself: the timelock is ready
    asyncio.run(client.execute(proposal_id))
    assert client.state(proposal_id) is ProposalState.Executed and dao.votingDelay() == 2


def test_client__vote_before_voting_opens__names_the_block_it_opens_in(dao, client_for, alice, chain):
    client = client_for(alice)
    proposal_id = asyncio.run(client.propose(dao.address, 0, dao.setVotingDelay.encode_input(2), "Too soon"))
    opens = dao.proposalSnapshot(proposal_id) + 1
    with pytest.raises(ProposalStateError, match=f"voting opens in block {opens}; the chain is at block") as early:
        asyncio.run(client.castVote(proposal_id, True))
    assert early.value.state is ProposalState.Pending


def test_client__queue_or_execute_while_voting__names_the_block_voting_closes_after(dao, client_for, alice, chain):
    client = client_for(alice)
    proposal_id = asyncio.run(client.propose(dao.address, 0, dao.setVotingDelay.encode_input(2), "Still voting"))
    chain.mine(dao.votingDelay() + 1)
    closes = f"voting closes after block {dao.proposalDeadline(proposal_id)}"
    with pytest.raises(ProposalStateError, match=closes):
        asyncio.run(client.queue(proposal_id))
    with pytest.raises(ProposalStateError, match=closes):
        asyncio.run(client.execute(proposal_id))


def test_client__execute_a_succeeded_proposal_not_queued__says_to_queue_it_first(dao, client_for, governance,
                                                                                 alice, bob):
    proposal_id = governance.propose(alice, [(dao, dao.setVotingDelay.encode_input(2))], "Not queued")
    assert governance.vote(proposal_id, [(alice, 1), (bob, 1)]) is ProposalState.Succeeded
    with pytest.raises(ProposalStateError, match="is Succeeded; only a Queued one can be executed \\(queue it first"):
        asyncio.run(client_for(alice).execute(proposal_id))


def test_client__one_call_for_two_targets__raises_before_sending(dao, client_for, alice):
    client = client_for(alice)
    with pytest.raises(GovernanceError, match=r"one length \(got 2, 2, 1\)"):
        asyncio.run(client.propose([dao.address, dao.address], [0, 0], dao.setVotingDelay.encode_input(2), "Short"))
    assert client.last_receipt is None


def test_client__waits__follow_the_proposal_from_vote_to_execution(dao, client_for, governance, chain, alice, bob):
    client = client_for(alice)

    async def lifecycle():
        proposal_id = await client.propose(dao.address, 0, dao.setVotingDelay.encode_input(2), "Waited for")

        async def until(wait, advance):
            task = asyncio.create_task(wait)
            while not task.done():
                advance()
                await asyncio.sleep(0.2)
            return await task

        assert await until(client.wait_for_state(proposal_id, ProposalState.Active, timeout=30), chain.mine) \
            is ProposalState.Active
        await client.castVote(proposal_id, True)
        await client_for(bob).castVote(proposal_id, True)
        waited = await until(client.wait_for_state(proposal_id, ProposalState.Succeeded, timeout=60),
                             lambda: chain.mine(5))
        assert waited is ProposalState.Succeeded
        with pytest.raises(ProposalStateError, match="is Succeeded, not Queued: it has no ETA"):
            await client.wait_for_eta(proposal_id)
        await client.queue(proposal_id)

        def later():
            chain.pending_timestamp += 20
            chain.mine()

        assert await until(client.wait_for_eta(proposal_id, timeout=30), later) == dao.proposalEta(proposal_id)
        await client.execute(proposal_id)
        return proposal_id

    assert client.state(asyncio.run(lifecycle())) is ProposalState.Executed


def test_client__wait_for_success_of_a_defeated_proposal__raises_at_once(dao, client_for, governance, alice, bob):
    proposal_id = governance.propose(alice, [(dao, dao.setVotingDelay.encode_input(2))], "Doomed")
    assert governance.vote(proposal_id, [(alice, 0), (bob, 0)]) is ProposalState.Defeated
    with pytest.raises(ProposalStateError, match="is Defeated: it will not be Succeeded"):
        asyncio.run(client_for(alice).wait_for_state(proposal_id, ProposalState.Succeeded, timeout=5))
