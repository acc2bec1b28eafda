"""`ape run iota_bridger`: one member of the IOTAValidator committee, checkpointing feeless channels.

    ape run iota_bridger --network ethereum:local:foundry --test-account 7
    ape run iota_bridger --network polygon:supernet:node --account bridger1

The agent is agents/iota_bridger.py (its handlers) and joynet.feeless.bridger.Bridger (its decisions);
this script is its command line.

Channels and the bridge board are on the embedded ledger (``$JOYNET_CHANNEL_DB``), or on IPFS
pubsub through the Kubo RPC API ``$JOYNET_CHANNEL_API`` when it is set; see
``joynet.feeless.bridger`` for what is counted and how signatures meet. ``--until-caught-up`` stops once
every followed stream is checkpointed up to its last served request (for tests and cron use).
"""

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from agents.iota_bridger import bot
from joynet.chain.bot import BlockCursor
from joynet.chain.deployment_file import load_deployment
from joynet.channels import open_transport
from joynet.feeless.bridger import Bridger
from joynet.feeless.checks import model_answer_checks
from joynet.storage import open_store


def say(message: str) -> None:
    click.echo(f"iota_bridger: {message}")


@click.command(cls=ConnectedProviderCommand, short_help="Checkpoint feeless IOTA channels as a bridger")
@click.option("--account", "account_alias", help="Ape account alias of this committee member")
@click.option("--test-account", type=int, help="Ape local test account index (local chains)")
@click.option("--poll-seconds", type=float, default=1.0, show_default=True)
@click.option("--max-seconds", type=float, help="Stop after this long")
@click.option("--until-caught-up", is_flag=True, help="Stop when every followed stream is checkpointed")
def cli(account_alias, test_account, poll_seconds, max_seconds, until_caught_up):
    logger.set_level("WARNING")
    if (account_alias is None) == (test_account is None):
        raise click.UsageError("give exactly one of --account ALIAS or --test-account N")
    signer = accounts.load(account_alias) if account_alias else accounts.test_accounts[test_account]
    deployment = load_deployment()
    validator = deployment.contract("IOTAValidator")
    if not validator.isCommitteeMember(signer.address):
        raise click.ClickException(f"{signer.address} is not on the IOTAValidator committee")
    transport = open_transport()
    # On an open channel every answer is public: a model's proofs and commitments are checked
    # (its metadata read from the store: $JOYNET_IPFS_DIR or $JOYNET_IPFS_API) before it is credited.
    checks_for = model_answer_checks(deployment.contract("ModelMarketplace"), open_store())
    bridger = Bridger(
        validator, signer, transport, chain.chain_id, say=say, until_caught_up=until_caught_up, checks_for=checks_for
    )
    where = getattr(transport, "path", None) or f"IPFS pubsub at {getattr(transport, 'api', '?')}"
    say(
        f"member {signer.address}, validator {validator.address}, channels {where}, "
        f"threshold {validator.threshold()} of {len(validator.committee())}"
    )
    bot.poll_seconds = poll_seconds
    bot.run(bridger, validator, BlockCursor(deployment.start_block - 1), max_seconds=max_seconds)
