"""`ape run governance propose|vote|queue|execute|status`: the DAO from the command line.

    ape run governance propose --account test:1 --description "Royalty 25 %" \\
        --call "ModelMarketplace.setFeeShares(7000, 2500, 500)"
    ape run governance vote PROPOSAL for|against|abstain [--reason TEXT] --account test:2
    ape run governance queue PROPOSAL
    ape run governance execute PROPOSAL
    ape run governance status [PROPOSAL]

Proposal ids are printed in hex and accepted in hex or decimal. Every command checks first and
fails with one readable line (exit status 1) instead of sending a transaction that would revert.
"""

import asyncio
import sys
import time

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from joynet.chain.dao import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType
from joynet.chain.deploy import JOY
from joynet.chain.deployment_file import DeploymentError, load_deployment
from joynet.governance.proposals import (
    AccountError,
    dry_run,
    parse_call,
    parse_proposal_id,
    proposals,
    seconds_per_block,
    signing_account,
    time_left,
)
from joynet.governance.voter import ContractDirectory, DecodedCall

SUPPORT = {"for": VoteType.For, "against": VoteType.Against, "abstain": VoteType.Abstain}


def fail(message: str):
    click.echo(f"governance: {message}", err=True)
    sys.exit(1)


def client(account_spec=None, needs_account=True):
    """The deployment and a DAO client (signing with ``account_spec`` when it sends)."""
    logger.set_level("WARNING")
    try:
        deployment = load_deployment()
        account = signing_account(account_spec) if needs_account else None
    except (DeploymentError, AccountError) as err:
        fail(str(err))
    return deployment, ModelGovernanceDAO(deployment.address("ModelGovernanceDAO"), account=account)


def existing_proposal(dao: ModelGovernanceDAO, text: str) -> int:
    proposal_id = parse_proposal_id(text)
    if dao.contract.proposalSnapshot(proposal_id) == 0:
        fail(f"no proposal {text} on this DAO (ape run governance status lists them)")
    return proposal_id


def send(action, *args) -> None:
    try:
        asyncio.run(action(*args))
    except GovernanceError as err:
        fail(str(err))


account_option = click.option(
    "--account",
    "account_spec",
    help="Ape account alias, or test:N on a local chain (default: $JOYNET_ACCOUNT, locally test:0)",
)


@click.group(short_help="Propose, vote, queue, execute and follow JoyNet DAO proposals")
def cli():
    pass


@cli.command(cls=ConnectedProviderCommand)
@click.option(
    "--call",
    "calls",
    multiple=True,
    required=True,
    help='A call, e.g. "ModelMarketplace.setFeeShares(7000, 2500, 500)"; repeat for several',
)
@click.option("--description", required=True, help="What the proposal does and why (its id depends on it)")
@account_option
def propose(calls, description, account_spec):
    """Propose one or more calls, each checked against its contract as the timelock would make it."""
    deployment, dao = client(account_spec)
    directory = ContractDirectory.from_deployment(deployment)
    encoded = []
    for text in calls:
        try:
            call = parse_call(text, deployment, directory)
        except GovernanceError as err:
            fail(str(err))
        timelock = deployment.address("TimelockController")
        if (revert := dry_run(call, timelock, dao.address, directory)) is not None:
            fail(f"{call} would revert when the timelock executes it: {revert}")
        encoded.append(call)
    try:
        proposal_id = asyncio.run(
            dao.propose([c.target for c in encoded], [0] * len(encoded), [c.calldata for c in encoded], description)
        )
    except GovernanceError as err:
        fail(str(err))
    click.echo(f"proposal {hex(proposal_id)}")
    for call in encoded:
        click.echo(f"  call        {call}")
    click.echo(
        f"  state       {dao.state(proposal_id).name}: {time_left(dao.contract, proposal_id, seconds_per_block())}"
    )
    click.echo(f"  gas         {dao.last_receipt.gas_used:,}")


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@click.argument("support", type=click.Choice(sorted(SUPPORT), case_sensitive=False))
@click.option("--reason", default="", help="Recorded on chain with the vote (castVoteWithReason)")
@account_option
def vote(proposal, support, reason, account_spec):
    """Vote for, against or abstain on an active proposal."""
    _, dao = client(account_spec)
    proposal_id = existing_proposal(dao, proposal)
    if dao.contract.hasVoted(proposal_id, dao.account):
        fail(f"{dao.account.address} has already voted on proposal {proposal}")
    send(dao.castVote, proposal_id, SUPPORT[support.lower()], reason)
    weight = dao.contract.getVotes(dao.account, dao.contract.proposalSnapshot(proposal_id))
    click.echo(
        f"voted {support.lower()} on {hex(proposal_id)} with {weight / JOY:,.0f} JOY (gas {dao.last_receipt.gas_used:,})"
    )
    if weight == 0:
        click.echo("  note: this account had no voting power at the proposal's snapshot (delegate first)")
    show_votes(dao, proposal_id)


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@account_option
def queue(proposal, account_spec):
    """Queue a succeeded proposal in the timelock."""
    _, dao = client(account_spec)
    proposal_id = existing_proposal(dao, proposal)
    send(dao.queue, proposal_id)
    click.echo(f"queued {hex(proposal_id)}: {time_left(dao.contract, proposal_id, seconds_per_block())}")


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@account_option
def execute(proposal, account_spec):
    """Execute a queued proposal whose timelock delay has passed."""
    _, dao = client(account_spec)
    proposal_id = existing_proposal(dao, proposal)
    send(dao.execute, proposal_id)
    click.echo(f"executed {hex(proposal_id)} (gas {dao.last_receipt.gas_used:,}): state {dao.state(proposal_id).name}")


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal", required=False)
def status(proposal):
    """One proposal in detail, or every proposal with its state and time left."""
    deployment, dao = client(needs_account=False)
    pace = seconds_per_block()
    created = proposals(dao.contract, deployment.start_block)
    if proposal is None:
        if not created:
            click.echo("no proposals yet")
        for log in created:
            title = (log.description or "").splitlines()[0][:60] if log.description else ""
            click.echo(f"{hex(log.proposalId)[:14]}...  {dao.state(log.proposalId).name:<9} {title}")
            click.echo(f"{'':18}{time_left(dao.contract, log.proposalId, pace)}")
        return
    proposal_id = existing_proposal(dao, proposal)
    directory = ContractDirectory.from_deployment(deployment)
    log = next((entry for entry in created if entry.proposalId == proposal_id), None)
    click.echo(f"proposal {hex(proposal_id)}")
    if log is not None:
        click.echo(f"  description {log.description}")
        click.echo(f"  proposer    {log.proposer}")
        for target, calldata in zip(log.targets, log.calldatas, strict=False):
            click.echo(f"  call        {describe_call(directory, target, bytes(calldata))}")
    state = dao.state(proposal_id)
    click.echo(f"  state       {state.name}: {time_left(dao.contract, proposal_id, pace)}")
    show_votes(dao, proposal_id)
    if state is ProposalState.Queued:
        eta = dao.contract.proposalEta(proposal_id)
        click.echo(f"  eta         {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(eta))} (chain time)")


def show_votes(dao: ModelGovernanceDAO, proposal_id: int) -> None:
    from ape import chain

    tally = dao.votes(proposal_id)
    snapshot = dao.contract.proposalSnapshot(proposal_id)
    quorum = dao.contract.quorum(snapshot) if snapshot < chain.blocks.height else None
    needed = f" (quorum {quorum / JOY:,.0f} JOY, counting for + abstain)" if quorum is not None else ""
    click.echo(
        f"  votes       for {tally['for'] / JOY:,.0f} JOY, against {tally['against'] / JOY:,.0f} JOY, "
        f"abstain {tally['abstain'] / JOY:,.0f} JOY{needed}"
    )


def describe_call(directory: ContractDirectory, target: str, calldata: bytes) -> str:
    decoded = directory.decode(target, calldata)
    return str(decoded) if isinstance(decoded, DecodedCall) else f"{decoded.call} ({decoded.why})"
