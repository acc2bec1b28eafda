"""`ape run edge_agent [serve|status] [options]`: an edge node's agent (serve, the default) or its
status (stake, load, jobs, fees).

    ape run edge_agent --account-index 6 --model digits --model minilm --capacity 4 \
        --journal ~/.joynet/edge/node6.sqlite
    ape run edge_agent status --account-index 6 --journal ~/.joynet/edge/node6.sqlite

The agent is agents/edge_node.py (one decorated handler per marketplace event, on the agents' bot,
joynet/chain/bot.py); the status is joynet.edge's node_status and format_status; this script is
their command line. Every option also reads an environment variable (shown by --help). The
protocol is found through the deployment file (deployments/<network>.json, $JOYNET_DEPLOYMENTS_DIR);
inputs and models come from the embedded store ($JOYNET_IPFS_DIR) or a Kubo RPC API ($JOYNET_IPFS_API).
SIGTERM (or Ctrl-C) drains in-flight jobs (at most --drain-seconds), collects fees and exits.

A feeless model (one with a stream on chain) is served on its owner's open channel: the agent binds
its channel key to the model, vouches for the node with it on the stream and answers the requests
assigned to it (and those it is next in line for when the assigned node is silent). The key is the
mnemonic of --channel-mnemonic, else of the file --channel-key-file, created on first use.
"""

import json
import os
from pathlib import Path

import click
from ape import accounts, networks
from ape.cli import ConnectedProviderCommand
from ape.logging import logger as ape_logger

from agents.edge_node import bot
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import MarketplaceError, ModelMarketplace
from joynet.channels.keys import channel_mnemonic as channel_mnemonic_file
from joynet.edge import EdgeNode, JobJournal, format_status, node_status
from joynet.edge.edge_node import EdgeNodeError, log_to_stderr, logger
from joynet.edge.journal import JournalError, default_journal_path
from joynet.inference import DEFAULT_MAX_INPUT_BYTES
from joynet.storage import open_store


def _account(alias, index):
    if alias:
        account = accounts.load(alias)
        # An agent runs unattended: with Ape's passphrase variable set, it signs without prompting.
        passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE")
        if passphrase:
            account.set_autosign(True, passphrase=passphrase)
        return account
    if index is None:
        raise click.UsageError("name the operator: --account ALIAS, or --account-index N (local test accounts)")
    if not networks.provider.network.is_local:
        raise click.UsageError("--account-index names Ape's test accounts, which exist on local networks only")
    return accounts.test_accounts[index]


@click.command(cls=ConnectedProviderCommand, short_help="Run a JoyNet edge node agent, or show its status")
@click.argument("action", type=click.Choice(["serve", "status"]), default="serve")
@click.option("--account", "account_alias", envvar="JOYNET_ACCOUNT", help="Ape account alias of the operator")
@click.option(
    "--account-index", type=int, envvar="JOYNET_EDGE_ACCOUNT_INDEX", help="Ape test account N instead (local networks)"
)
@click.option(
    "--model",
    "models",
    multiple=True,
    envvar="JOYNET_EDGE_MODELS",
    help="a model name registered on chain to serve (repeat; env: space-separated)",
)
@click.option(
    "--capacity",
    type=click.IntRange(1, 1024),
    default=4,
    show_default=True,
    envvar="JOYNET_EDGE_CAPACITY",
    help="concurrent tasks declared on chain",
)
@click.option(
    "--stake",
    type=float,
    envvar="JOYNET_EDGE_STAKE",
    help="JOY to keep staked [default: minStake + capacity x taskBond]",
)
@click.option("--store-dir", envvar="JOYNET_IPFS_DIR", help="embedded store directory [default: ~/.joynet/ipfs]")
@click.option("--ipfs-api", envvar="JOYNET_IPFS_API", help="a Kubo RPC API multiaddr instead of the embedded store")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="JOYNET_EDGE_JOURNAL",
    help="SQLite job journal [default: ~/.joynet/edge/<network>-<address>.sqlite]",
)
@click.option(
    "--withdraw-at",
    type=float,
    default=10.0,
    show_default=True,
    envvar="JOYNET_EDGE_WITHDRAW_AT",
    help="withdraw fees once they reach this many JOY (0: after every settlement)",
)
@click.option(
    "--max-input-bytes",
    type=click.IntRange(1),
    default=DEFAULT_MAX_INPUT_BYTES,
    show_default=True,
    envvar="JOYNET_EDGE_MAX_INPUT_BYTES",
    help="largest input document accepted",
)
@click.option(
    "--drain-seconds",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    envvar="JOYNET_EDGE_DRAIN_SECONDS",
    help="on SIGTERM, wait at most this long for in-flight jobs (the journal resumes the rest)",
)
@click.option(
    "--channel-mnemonic",
    envvar="JOYNET_CHANNEL_MNEMONIC",
    help="BIP-39 mnemonic of the node's channel key (feeless models) [default: --channel-key-file's]",
)
@click.option(
    "--channel-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="JOYNET_CHANNEL_KEY_FILE",
    help="file holding the channel key's mnemonic, created on first use [default: the journal's, .channel-key]",
)
@click.option("--json", "as_json", is_flag=True, help="status: print JSON")
def cli(
    action,
    account_alias,
    account_index,
    models,
    capacity,
    stake,
    store_dir,
    ipfs_api,
    journal_path,
    withdraw_at,
    max_input_bytes,
    drain_seconds,
    channel_mnemonic,
    channel_key_file,
    as_json,
):
    account = _account(account_alias, account_index)
    journal_path = journal_path or default_journal_path(networks.provider.network.name, account.address)
    models = [name for value in models for name in value.replace(",", " ").split()]
    market = ModelMarketplace(account=account)
    if action == "status":
        journal = JobJournal(journal_path, readonly=True) if journal_path.exists() else None
        status = node_status(market, account.address, journal, models)
        click.echo(json.dumps(status, indent=1) if as_json else format_status(status))
        return
    if not models:
        raise click.UsageError("name the models to serve: --model NAME (repeatable) or JOYNET_EDGE_MODELS")
    ape_logger.set_level("WARNING")  # the agent logs each transaction itself, with its request
    log_to_stderr(account.address)
    try:
        if channel_mnemonic is None and any(_feeless(market, name) for name in models):
            channel_mnemonic = channel_mnemonic_file(channel_key_file or journal_path.with_suffix(".channel-key"))
        node = EdgeNode(
            account,
            models,
            journal=journal_path,
            capacity=capacity,
            stake=int(stake * JOY) if stake else None,
            store=open_store(ipfs_api, store_dir),
            marketplace=market,
            max_input_bytes=max_input_bytes,
            withdraw_threshold=int(withdraw_at * JOY),
            drain_seconds=drain_seconds,
            channel_seed=channel_mnemonic,
        )
        logger.info(
            "edge agent %s on %s: models %s, capacity %d, journal %s",
            account.address,
            networks.provider.network.name,
            ", ".join(models),
            capacity,
            journal_path,
        )
        bot.run(node, node.contract, node.journal, nudge_local_pool=True)
    except (EdgeNodeError, JournalError, MarketplaceError, ValueError) as error:
        raise click.ClickException(str(error)) from None


def _feeless(market, name: str) -> bool:
    """Whether the model ``name`` is feeless (names a stream on chain)."""
    return bytes(market.get_model(name).iotaStreamId) != bytes(32)
