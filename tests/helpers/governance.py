"""Drives DAO proposals through the governor with real transactions and chain-time moves (the
``governance`` fixture of tests/conftest.py, and tests that build their own)."""

from joynet.chain.dao import ProposalState


class Governance:
    """Drives a proposal through the governor with real transactions and chain-time moves."""

    def __init__(self, dao, timelock, chain):
        self.dao, self.timelock, self.chain = dao, timelock, chain

    def propose(self, proposer, calls, description):
        targets = [target.address if hasattr(target, "address") else target for target, _ in calls]
        calldata = [data for _, data in calls]
        values = [0] * len(calls)
        receipt = self.dao.propose(targets, values, calldata, description, sender=proposer)
        (created,) = receipt.decode_logs(self.dao.ProposalCreated)
        self.chain.mine(self.dao.votingDelay() + 1)
        return created.proposalId

    def vote(self, proposal_id, ballots):
        for voter, support in ballots:
            self.dao.castVote(proposal_id, support, sender=voter)
        self.chain.mine(self.dao.votingPeriod() + 1)
        return ProposalState(self.dao.state(proposal_id))

    def wait_timelock(self):
        self.chain.pending_timestamp += self.timelock.getMinDelay() + 1
        self.chain.mine()

    def pass_and_queue(self, proposer, calls, description, ballots):
        proposal_id = self.propose(proposer, calls, description)
        assert self.vote(proposal_id, ballots) is ProposalState.Succeeded
        self.dao.queue(proposal_id, sender=proposer)
        return proposal_id

    def ready_to_execute(self, proposer, calls, description, ballots):
        """Passes, queues and waits out the timelock; returns the proposal id."""
        proposal_id = self.pass_and_queue(proposer, calls, description, ballots)
        self.wait_timelock()
        return proposal_id

    def enact(self, proposer, calls, description, ballots):
        proposal_id = self.ready_to_execute(proposer, calls, description, ballots)
        return self.dao.execute(proposal_id, sender=proposer)
