"""`ape run demo` (what `make demo` runs): JoyNet end to end on a local chain.

    ape run demo                 # the whole demo (about 3-5 minutes on 2 cores)
    ape run demo --short         # fewer requests (CI; also JOYNET_DEMO_SHORT=1)
    ape run demo --workdir DIR   # keep the store, ledger, journals and agent logs in DIR

Deploys, publishes and registers the models, starts three edge agents, two bridgers and a voter
as separate `ape run` processes, runs paid and feeless requests and a governance change, prints
a summary and stops every process it started. The steps are in joynet/demo.py.
"""

import sys
from pathlib import Path

import click
from ape import networks
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from joynet.demo import FULL_PLAN, SHORT_PLAN, run_demo


@click.command(cls=ConnectedProviderCommand, short_help="Run the JoyNet demo on a local chain")
@click.option("--short", is_flag=True, envvar="JOYNET_DEMO_SHORT", help="Fewer requests (what CI runs)")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the run's store, channel ledger, journals and agent logs here "
    "[default: a temporary directory, removed after a successful run]",
)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as JSON to this file",
)
def cli(short, workdir, summary_json):
    if not networks.provider.network.is_local:
        raise click.ClickException("the demo runs on a local chain only (--network ethereum:local:foundry)")
    logger.set_level("WARNING")  # Ape's per-transaction INFO lines would drown the steps
    run_demo(SHORT_PLAN if short else FULL_PLAN, workdir, summary_json, short)
    sys.stdout.flush()
