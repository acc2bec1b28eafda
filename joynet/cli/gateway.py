"""``joynet gateway``: the OpenAI-compatible HTTP gateway (``joynet.gateway``) on a host and port."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from joynet.cli.chain import connected
from joynet.cli.model import joy_to_wei
from joynet.cli.options import chain_account, chain_network, deposit, settle_timeout, store_api
from joynet.cli.output import CommandError, run, stderr
from joynet.errors import JoyNetError


@click.command()
@store_api
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="the port to listen on")
@click.option("--model", "models", multiple=True, required=True, help="a registered model id to expose (repeatable)")
@click.option(
    "--keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the API keys and their spending limits (JSON or YAML)",
)
@click.option(
    "--spending",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the SQLite file that keeps what each key spent across restarts (default: KEYS' stem + -spending.sqlite3)",
)
@deposit("the gateway's")
@settle_timeout("--settle-timeout", 120.0, "the answer is a 504")
@chain_network
@chain_account("the gateway's paying account")
def gateway(api, host, port, models, keys, spending, deposit, settle_timeout, network, account) -> None:
    """Serve OpenAI's API (models, embeddings, chat completions) over the marketplace: every
    request is paid from the account's deposited balance and answered once settled on chain,
    with its verification receipt. Serves the explorer's pages of the chain at /explorer too.
    Runs until Ctrl-C or SIGTERM."""
    from joynet.gateway import GatewaySettings, KeyLedger

    try:
        ledger = KeyLedger.from_file(keys, spending or keys.with_name(f"{keys.stem}-spending.sqlite3"))
    except JoyNetError as error:
        raise CommandError(str(error)) from None
    try:
        deposit_wei = joy_to_wei(deposit, "--deposit") if deposit else 0
        settings = GatewaySettings(models=list(dict.fromkeys(models)), settle_timeout=settle_timeout)
        with connected(network, account) as marketplace:
            run(_serve(marketplace, api, settings, ledger, host, port, deposit_wei))
    finally:
        ledger.close()


async def _serve(marketplace, api, settings, ledger, host: str, port: int, deposit_wei: int) -> None:
    from aiohttp import web

    from joynet.chain.dao import ModelGovernanceDAO
    from joynet.chain.deployment_file import load_deployment
    from joynet.gateway import create_app
    from joynet.gateway.app import SERVICE
    from joynet.storage import open_store

    async with open_store(api) as store:
        if deposit_wei:
            await marketplace.deposit(deposit_wei)
        # The explorer reads the events from the deployment's first block, not from the genesis.
        deployment = load_deployment()
        marketplace.start_block = max(marketplace.start_block, deployment.start_block)
        dao = ModelGovernanceDAO(deployment.address("ModelGovernanceDAO"))
        app = create_app(settings, marketplace, store, ledger, dao=dao)
        for name in settings.models:  # a model that is not registered fails now, not at the first request
            await app[SERVICE].model(name)
        balance = await asyncio.to_thread(marketplace.read, marketplace.contract.balances, marketplace.account.address)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as error:
                raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            stderr.print(
                f"gateway listening on http://{host}:{port}/v1 for {', '.join(settings.models)} "
                f"(account {marketplace.account.address}, balance {balance} wei); "
                f"explorer at http://{host}:{port}/explorer"
            )
            await stop.wait()
        finally:
            await runner.cleanup()
