"""The agents' command lines: ``joynet agent edge|bridger|voter`` (the ``joynet.agents`` entry
points of the package) and ``ape run edge_agent|iota_bridger|dao_voter`` in a checkout (the
scripts in ``scripts/`` name these same commands).

    joynet agent edge --network ethereum:local:foundry --account-index 6 --model digits --metrics-port 9101
    joynet agent edge status --account-index 6
    joynet agent bridger --test-account 7
    joynet agent voter --account test:6

Each builds its agent's state (``EdgeNode``, ``Bridger``, ``DaoVoter``) from its options, finds
the protocol through the deployment file (``$JOYNET_DEPLOYMENTS_DIR``, else
``$JOYNET_HOME/deployments``; see ``joynet.chain.deployment_file``) and runs its bot
(``agents/edge_node.py``, ``agents/iota_bridger.py``, ``agents/dao_voter.py``) until SIGTERM.
``--metrics-port`` (``$JOYNET_METRICS_PORT``; 0, the default: off) serves the agent's
``/healthz`` and Prometheus ``/metrics`` (``joynet.monitoring``).

The edge agent: a feeless model (one with a stream on chain) is served on its owner's open
channel: the agent binds its channel key to the model, vouches for the node with it on the stream
and answers the requests assigned to it (and those it is next in line for when the assigned node
is silent). The key is the mnemonic of --channel-mnemonic, else of the file --channel-key-file,
created on first use. SIGTERM (or Ctrl-C) drains in-flight jobs (at most --drain-seconds),
collects fees and exits.

The bridger: channels and the bridge board are on the embedded ledger (``$JOYNET_CHANNEL_DB``), or
on IPFS pubsub through the Kubo RPC API ``$JOYNET_CHANNEL_API`` when it is set; see
``joynet.feeless.bridger`` for what is counted and how signatures meet. ``--until-caught-up``
stops once every followed stream is checkpointed up to its last served request.

The voter delegates its JOY to itself if it has no delegate, then follows ProposalCreated and votes
on each proposal by the policy file as soon as voting opens, with the explanation as the vote's
reason string and in its log.
"""

import json
import os
import sys
from pathlib import Path

import click
from ape import accounts, chain, networks
from ape.cli import ConnectedProviderCommand
from ape.logging import logger as ape_logger

from agents.dao_voter import bot as voter_bot
from agents.edge_node import bot
from agents.iota_bridger import bot as bridger_bot
from joynet.chain.accounts import signing_account
from joynet.chain.bot import BlockCursor
from joynet.chain.dao import ModelGovernanceDAO
from joynet.chain.deploy import JOY
from joynet.chain.deployment_file import DeploymentError, load_deployment
from joynet.chain.errors import AccountError
from joynet.chain.marketplace import MarketplaceError, ModelMarketplace
from joynet.channels import open_transport
from joynet.channels.keys import channel_mnemonic as channel_mnemonic_file
from joynet.edge import EdgeNode, JobJournal, format_status, node_status
from joynet.edge.edge_node import EdgeNodeError, log_to_stderr, logger
from joynet.edge.journal import JournalError, default_journal_path
from joynet.feeless.bridger import Bridger
from joynet.feeless.checks import model_answer_checks
from joynet.governance.circuits import CeremonyCheck
from joynet.governance.voter import ContractDirectory, DaoVoter, PolicyError, VoterPolicy, timestamped
from joynet.inference import DEFAULT_MAX_INPUT_BYTES
from joynet.monitoring import METRICS_PORT_ENV, AgentMonitor, MonitoringError
from joynet.storage import open_store

metrics_port = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar=METRICS_PORT_ENV,
    show_default=True,
    help=f"serve /healthz and Prometheus /metrics on this port (env {METRICS_PORT_ENV}; 0: off)",
)


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


@click.command("edge", cls=ConnectedProviderCommand, short_help="Run a JoyNet edge node agent, or show its status")
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
@metrics_port
def edge(
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
    metrics_port,
):
    """An edge node's agent (serve, the default) or its status (stake, load, jobs, fees)."""
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
        monitor = AgentMonitor(bot.name, registry=node.metrics.registry, port=metrics_port)
        bot.run(node, node.contract, node.journal, nudge_local_pool=True, monitor=monitor)
    except (EdgeNodeError, JournalError, MarketplaceError, MonitoringError, ValueError) as error:
        raise click.ClickException(str(error)) from None


def _feeless(market, name: str) -> bool:
    """Whether the model ``name`` is feeless (names a stream on chain)."""
    return bytes(market.get_model(name).iotaStreamId) != bytes(32)


def _say_bridger(message: str) -> None:
    click.echo(f"iota_bridger: {message}")


@click.command("bridger", cls=ConnectedProviderCommand, short_help="Checkpoint feeless IOTA channels as a bridger")
@click.option("--account", "account_alias", help="Ape account alias of this committee member")
@click.option("--test-account", type=int, help="Ape local test account index (local chains)")
@click.option("--poll-seconds", type=float, default=1.0, show_default=True)
@click.option("--max-seconds", type=float, help="Stop after this long")
@click.option("--until-caught-up", is_flag=True, help="Stop when every followed stream is checkpointed")
@metrics_port
def bridger(account_alias, test_account, poll_seconds, max_seconds, until_caught_up, metrics_port):
    """One member of the IOTAValidator committee, checkpointing feeless channels."""
    ape_logger.set_level("WARNING")
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
    member = Bridger(
        validator,
        signer,
        transport,
        chain.chain_id,
        say=_say_bridger,
        until_caught_up=until_caught_up,
        checks_for=checks_for,
    )
    where = getattr(transport, "path", None) or f"IPFS pubsub at {getattr(transport, 'api', '?')}"
    _say_bridger(
        f"member {signer.address}, validator {validator.address}, channels {where}, "
        f"threshold {validator.threshold()} of {len(validator.committee())}"
    )
    bridger_bot.poll_seconds = poll_seconds
    monitor = AgentMonitor(bridger_bot.name, registry=member.metrics.registry, port=metrics_port)
    try:
        bridger_bot.run(
            member, validator, BlockCursor(deployment.start_block - 1), max_seconds=max_seconds, monitor=monitor
        )
    except MonitoringError as error:
        raise click.ClickException(str(error)) from None


DEFAULT_POLICY = Path(__file__).with_name("voter-policy.yaml")


def _log_voter(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


@click.command("voter", cls=ConnectedProviderCommand, short_help="Vote on JoyNet DAO proposals by a policy file")
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
@metrics_port
def voter(policy_path, account_spec, from_block, poll_seconds, metrics_port):
    """The DAO voter: votes on each proposal by the policy file as soon as voting opens."""
    ape_logger.set_level("WARNING")  # Ape's per-transaction lines would drown the voter's own
    say = timestamped(_log_voter)
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
    # Circuit registrations are checked against their ceremony records, fetched from the store
    # ($JOYNET_IPFS_DIR or $JOYNET_IPFS_API) and verified with snarkjs.
    ceremonies = CeremonyCheck(open_store(), lambda address: bytes(chain.provider.get_code(address)), policy.ceremonies)
    dao_voter = DaoVoter(policy, dao, deployment.contract("JoyToken"), directory, log=say, ceremonies=ceremonies)
    start = deployment.start_block if from_block is None else from_block
    supported = ", ".join(f"{c}.{f}" for c, f in policy.rules) or "nothing"
    say(
        f"dao_voter {account.address} on chain {chain.chain_id}: policy {policy_path} supports {supported}; otherwise {policy.otherwise.name.lower()}"
    )
    say(f"following ModelGovernanceDAO {dao.address} from block {start}")
    voter_bot.poll_seconds = poll_seconds
    monitor = AgentMonitor(voter_bot.name, registry=dao_voter.metrics.registry, port=metrics_port)
    try:
        voter_bot.run(dao_voter, dao.contract, BlockCursor(start - 1), monitor=monitor)
    except MonitoringError as error:
        raise click.ClickException(str(error)) from None
    say(f"dao_voter stopped after {dao_voter.votes_cast} vote(s)")
