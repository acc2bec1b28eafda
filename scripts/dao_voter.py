"""`ape run dao_voter [--policy agents/voter-policy.yaml] [--account test:6|ALIAS]`

The DAO voter agent (agents/dao_voter.py): delegates its JOY to itself if it has no delegate, then follows
ProposalCreated and votes on each proposal by the policy file as soon as voting opens, with the
explanation as the vote's reason string and in its log. Runs until SIGTERM or Ctrl-C.
"""

import sys
from pathlib import Path

import click
from ape import chain
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from agents.dao_voter import bot
from joynet.chain.accounts import signing_account
from joynet.chain.bot import BlockCursor
from joynet.chain.dao import ModelGovernanceDAO
from joynet.chain.deployment_file import PROJECT_ROOT, DeploymentError, load_deployment
from joynet.chain.errors import AccountError
from joynet.governance.voter import ContractDirectory, DaoVoter, PolicyError, VoterPolicy, timestamped

DEFAULT_POLICY = PROJECT_ROOT / "agents" / "voter-policy.yaml"


def log(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


@click.command(cls=ConnectedProviderCommand, short_help="Vote on JoyNet DAO proposals by a policy file")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_POLICY,
    show_default=True,
    help="Voter policy (YAML): supported calls and their bounds",
)
@click.option(
    "--account",
    "account_spec",
    help="Ape account alias, or test:N on a local chain (default: $JOYNET_ACCOUNT, locally test:0)",
)
@click.option(
    "--from-block", type=int, help="Consider proposals from this block (default: the deployment's first block)"
)
@click.option("--poll-seconds", type=float, default=1.0, show_default=True, help="How often to look for new blocks")
def cli(policy_path, account_spec, from_block, poll_seconds):
    logger.set_level("WARNING")  # Ape's per-transaction lines would drown the voter's own
    say = timestamped(log)
    try:
        policy = VoterPolicy.load(policy_path)
        deployment = load_deployment()
        directory = ContractDirectory.from_deployment(deployment)
        policy.check_against(directory)
        account = signing_account(account_spec)
    except (PolicyError, DeploymentError, AccountError) as err:
        click.echo(f"dao_voter: {err}", err=True)
        sys.exit(1)

    dao = ModelGovernanceDAO(deployment.address("ModelGovernanceDAO"), account=account)
    voter = DaoVoter(policy, dao, deployment.contract("JoyToken"), directory, log=say)
    start = deployment.start_block if from_block is None else from_block
    supported = ", ".join(f"{c}.{f}" for c, f in policy.rules) or "nothing"
    say(
        f"dao_voter {account.address} on chain {chain.chain_id}: policy {policy_path} supports {supported}; otherwise {policy.otherwise.name.lower()}"
    )
    say(f"following ModelGovernanceDAO {dao.address} from block {start}")
    bot.poll_seconds = poll_seconds
    bot.run(voter, dao.contract, BlockCursor(start - 1))
    say(f"dao_voter stopped after {voter.votes_cast} vote(s)")
