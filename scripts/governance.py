"""`ape run governance propose|vote|queue|execute|status`: the DAO from the command line.

    ape run governance propose --account test:1 --description "Royalty 25 %" \\
        --call "ModelMarketplace.setFeeShares(7000, 2500, 500)"
    ape run governance vote PROPOSAL for|against|abstain [--reason TEXT] --account test:2
    ape run governance queue PROPOSAL
    ape run governance execute PROPOSAL
    ape run governance status [PROPOSAL]

Proposal ids are printed in hex and accepted in hex or decimal. Every command checks first and
fails with one readable line (exit status 1) instead of sending a transaction that would revert.
The checks are in joynet.governance.proposals, the texts printed in joynet.governance.reports.
"""

import asyncio
import sys
from contextlib import contextmanager

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from joynet.chain.dao import GovernanceError, VoteType
from joynet.chain.deployment_file import DeploymentError
from joynet.governance import proposals, reports
from joynet.governance.errors import AccountError

SUPPORT = {"for": VoteType.For, "against": VoteType.Against, "abstain": VoteType.Abstain}
account_option = click.option(
    "--account",
    "account_spec",
    help="Ape account alias, or test:N on a local chain (default: $JOYNET_ACCOUNT, locally test:0)",
)


@contextmanager
def one_line_failure():
    """A refusal (no deployment or account, a call or a state the DAO refuses): one line, exit status 1."""
    try:
        yield
    except (DeploymentError, AccountError, GovernanceError) as err:
        click.echo(f"governance: {err}", err=True)
        sys.exit(1)


def on_proposal(proposal, account_spec, action, *args, check=None):
    """Sends the DAO client's ``action`` (castVote, queue, execute) on an existing proposal, after
    ``check`` if given; returns the client and the proposal's id."""
    with one_line_failure():
        dao = proposals.dao_client(account_spec)[1]
        proposal_id = proposals.existing_proposal(dao, proposal)
        if check is not None:
            check(dao, proposal_id, proposal)
        asyncio.run(getattr(dao, action)(proposal_id, *args))
    return dao, proposal_id


@click.group(short_help="Propose, vote, queue, execute and follow JoyNet DAO proposals")
def cli():
    logger.set_level("WARNING")


@cli.command(cls=ConnectedProviderCommand)
@click.option(
    "--call",
    "calls",
    multiple=True,
    required=True,
    help='e.g. "ModelMarketplace.setFeeShares(7000, 2500, 500)"; repeatable',
)
@click.option("--description", required=True, help="What the proposal does and why (its id depends on it)")
@account_option
def propose(calls, description, account_spec):
    """Propose one or more calls, each checked against its contract as the timelock would make it."""
    with one_line_failure():
        deployment, dao = proposals.dao_client(account_spec)
        proposal_id, encoded = asyncio.run(proposals.propose_checked(dao, deployment, calls, description))
    click.echo(reports.proposed_report(dao, proposal_id, encoded))


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@click.argument("support", type=click.Choice(sorted(SUPPORT), case_sensitive=False))
@click.option("--reason", default="", help="Recorded on chain with the vote (castVoteWithReason)")
@account_option
def vote(proposal, support, reason, account_spec):
    """Vote for, against or abstain on an active proposal."""
    sent = on_proposal(
        proposal, account_spec, "castVote", SUPPORT[support.lower()], reason, check=proposals.check_not_voted
    )
    click.echo(reports.vote_report(*sent, support.lower()))


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@account_option
def queue(proposal, account_spec):
    """Queue a succeeded proposal in the timelock."""
    click.echo(reports.queued_report(*on_proposal(proposal, account_spec, "queue")))


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
@account_option
def execute(proposal, account_spec):
    """Execute a queued proposal whose timelock delay has passed."""
    click.echo(reports.executed_report(*on_proposal(proposal, account_spec, "execute")))


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal", required=False)
def status(proposal):
    """One proposal in detail, or every proposal with its state and time left."""
    with one_line_failure():
        deployment, dao = proposals.dao_client(needs_account=False)
        click.echo(reports.status_report(dao, deployment, proposal))
