"""`ape run deploy [--network ecosystem:network:provider] [--account ALIAS] [--redeploy]`

Deploys JoyNet, hands every role to the DAO and its timelock, and writes
deployments/<network>.json. On a local network it uses Ape's first test account and asks
nothing; elsewhere it uses the Ape account named by --account or $JOYNET_ACCOUNT.
"""

import os
import sys
from pathlib import Path

import click
from ape import accounts, chain, networks
from ape.cli import ConnectedProviderCommand

from joynet.chain.deploy import (
    DEFAULT_CONFIG_PATH,
    DeployConfigError,
    check_deploy_config,
    deploy_protocol,
    load_deploy_config,
)
from joynet.chain.deployment_file import Deployment, DeploymentError, deployment_path


def _fail(message: str) -> None:
    click.echo(f"deploy: {message}", err=True)
    sys.exit(1)


def _deployer(account_alias: str | None):
    network = networks.provider.network
    if network.is_local:
        return accounts.test_accounts[0]
    alias = account_alias or os.environ.get("JOYNET_ACCOUNT")
    if not alias:
        _fail(f"network {network.name!r} needs an account: pass --account ALIAS or set JOYNET_ACCOUNT")
    try:
        return accounts.load(alias)
    except Exception as err:  # ape raises several kinds for unknown aliases
        _fail(f"cannot load Ape account {alias!r}: {err}")


def _existing_deployment(path: Path) -> Deployment | None:
    """The deployment recorded at ``path`` if its contracts are live on the connected chain."""
    if not path.exists():
        return None
    try:
        existing = Deployment.load(path)
    except DeploymentError as err:
        _fail(f"{err}; move it away or pass --redeploy")
    if existing.chain_id != chain.chain_id:
        return None
    if not all(chain.provider.get_code(address) for address in existing.contracts.values()):
        click.echo(f"deploy: {path} names contracts this chain does not have (a restarted chain); deploying anew")
        return None
    return existing


@click.command(cls=ConnectedProviderCommand, short_help="Deploy the JoyNet protocol")
@click.option("--account", "account_alias", help="Ape account alias (networks other than local)")
@click.option("--redeploy", is_flag=True, help="Deploy a new protocol even if one is already deployed")
@click.option("--yes", is_flag=True, help="Do not ask before signing the deployment (non-local networks)")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="Deploy configuration (token allocations, governance settings) per network",
)
def cli(account_alias, redeploy, yes, config_path):
    network = networks.provider.network
    out_path = deployment_path(network.name)
    existing = _existing_deployment(out_path)
    if existing and not redeploy:
        click.echo(
            f"deploy: JoyNet is already deployed on {network.name} (chain {existing.chain_id}), "
            f"recorded in {out_path}; JoyToken at {existing.address('JoyToken')}. "
            "Pass --redeploy to deploy a second protocol."
        )
        return

    try:
        config = load_deploy_config(network.name, config_path)
    except DeployConfigError as err:
        _fail(str(err))

    deployer = _deployer(account_alias)
    test_accounts = list(accounts.test_accounts) if network.is_local else None
    try:
        # Before the question below: a refused configuration is reported without prompting.
        check_deploy_config(config, chain.chain_id, deployer.address, [a.address for a in test_accounts or []])
    except DeployConfigError as err:
        _fail(str(err))
    target = f"{network.choice} (chain {chain.chain_id}) from {deployer.address}"
    if not network.is_local:
        # One question for the whole deployment instead of one per transaction; the passphrase
        # comes from APE_ACCOUNTS_<alias>_PASSPHRASE or a prompt.
        if not yes and not click.confirm(f"Deploy JoyNet to {target}?"):
            _fail("aborted")
        deployer.set_autosign(True)
    click.echo(f"deploy: deploying JoyNet to {target}")
    try:
        deployment = deploy_protocol(deployer, config, test_accounts, log=lambda message: click.echo(f"  - {message}"))
    except DeployConfigError as err:
        _fail(str(err))
    deployment.save(out_path)
    click.echo(f"deploy: wrote {out_path}")
    for name, address in deployment.contracts.items():
        click.echo(f"  {name:<20} {address}")
