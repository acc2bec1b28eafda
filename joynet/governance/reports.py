"""What ``ape run governance`` (``scripts/governance.py``) prints, as text: a proposal just made,
a vote just cast, a proposal queued or executed, the votes so far, one proposal in detail and the
list of all of them. Each
function reads the chain through the DAO client and returns the lines; the script prints them."""

from __future__ import annotations

import time

from joynet.chain.dao import ModelGovernanceDAO, ProposalState, proposals, seconds_per_block, time_left
from joynet.chain.deploy import JOY
from joynet.governance.proposals import EncodedCall, existing_proposal
from joynet.governance.voter import ContractDirectory, DecodedCall


def describe_call(directory: ContractDirectory, target: str, calldata: bytes) -> str:
    """A proposal's call by contract and argument names, or the call with why it has none."""
    decoded = directory.decode(target, calldata)
    return str(decoded) if isinstance(decoded, DecodedCall) else f"{decoded.call} ({decoded.why})"


def state_line(dao: ModelGovernanceDAO, proposal_id: int, pace: float) -> str:
    """The proposal's state and what it waits for (``pace``: seconds per block)."""
    return f"  state       {dao.state(proposal_id).name}: {time_left(dao.contract, proposal_id, pace)}"


def votes_line(dao: ModelGovernanceDAO, proposal_id: int) -> str:
    """The votes for, against and abstaining, in JOY, with the quorum once the snapshot is mined."""
    from ape import chain

    tally = dao.votes(proposal_id)
    snapshot = dao.contract.proposalSnapshot(proposal_id)
    quorum = dao.contract.quorum(snapshot) if snapshot < chain.blocks.height else None
    needed = f" (quorum {quorum / JOY:,.0f} JOY, counting for + abstain)" if quorum is not None else ""
    return (
        f"  votes       for {tally['for'] / JOY:,.0f} JOY, against {tally['against'] / JOY:,.0f} JOY, "
        f"abstain {tally['abstain'] / JOY:,.0f} JOY{needed}"
    )


def proposed_report(dao: ModelGovernanceDAO, proposal_id: int, calls: list[EncodedCall]) -> str:
    """A proposal just made: its id, calls, state and the gas of the transaction."""
    lines = [f"proposal {hex(proposal_id)}", *(f"  call        {call}" for call in calls)]
    lines += [state_line(dao, proposal_id, seconds_per_block()), f"  gas         {dao.last_receipt.gas_used:,}"]
    return "\n".join(lines)


def vote_report(dao: ModelGovernanceDAO, proposal_id: int, support: str) -> str:
    """A vote just cast by the client's account: its weight at the snapshot, then the votes so far."""
    weight = dao.contract.getVotes(dao.account, dao.contract.proposalSnapshot(proposal_id))
    lines = [f"voted {support} on {hex(proposal_id)} with {weight / JOY:,.0f} JOY (gas {dao.last_receipt.gas_used:,})"]
    if weight == 0:
        lines.append("  note: this account had no voting power at the proposal's snapshot (delegate first)")
    lines.append(votes_line(dao, proposal_id))
    return "\n".join(lines)


def queued_report(dao: ModelGovernanceDAO, proposal_id: int) -> str:
    """A proposal just queued, with the time left in the timelock."""
    return f"queued {hex(proposal_id)}: {time_left(dao.contract, proposal_id, seconds_per_block())}"


def executed_report(dao: ModelGovernanceDAO, proposal_id: int) -> str:
    """A proposal just executed: the gas of the execution and the state it left."""
    return f"executed {hex(proposal_id)} (gas {dao.last_receipt.gas_used:,}): state {dao.state(proposal_id).name}"


def proposals_listing(dao: ModelGovernanceDAO, created: list, pace: float) -> str:
    """Every proposal (its ProposalCreated logs, ``created``) with its state, title and time left."""
    if not created:
        return "no proposals yet"
    lines = []
    for log in created:
        title = (log.description or "").splitlines()[0][:60] if log.description else ""
        lines.append(f"{hex(log.proposalId)[:14]}...  {dao.state(log.proposalId).name:<9} {title}")
        lines.append(f"{'':18}{time_left(dao.contract, log.proposalId, pace)}")
    return "\n".join(lines)


def proposal_report(
    dao: ModelGovernanceDAO, directory: ContractDirectory, proposal_id: int, created: list, pace: float
) -> str:
    """One proposal in detail: description, proposer and calls (from its log in ``created``),
    state and time left, votes, and the timelock's eta once queued."""
    log = next((entry for entry in created if entry.proposalId == proposal_id), None)
    lines = [f"proposal {hex(proposal_id)}"]
    if log is not None:
        lines += [f"  description {log.description}", f"  proposer    {log.proposer}"]
        for target, calldata in zip(log.targets, log.calldatas, strict=False):
            lines.append(f"  call        {describe_call(directory, target, bytes(calldata))}")
    lines += [state_line(dao, proposal_id, pace), votes_line(dao, proposal_id)]
    if dao.state(proposal_id) is ProposalState.Queued:
        eta = dao.contract.proposalEta(proposal_id)
        lines.append(f"  eta         {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(eta))} (chain time)")
    return "\n".join(lines)


def status_report(dao: ModelGovernanceDAO, deployment, proposal: str | None = None) -> str:
    """``ape run governance status``: the proposal written as ``proposal`` in detail
    (``proposal_report``; UnknownProposal when the DAO has none by that id), or without one every
    proposal since the deployment (``proposals_listing``)."""
    created, pace = proposals(dao.contract, deployment.start_block), seconds_per_block()
    if proposal is None:
        return proposals_listing(dao, created, pace)
    proposal_id = existing_proposal(dao, proposal)
    return proposal_report(dao, ContractDirectory.from_deployment(deployment), proposal_id, created, pace)
