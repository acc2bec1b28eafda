"""`ape run load` (what `make load` runs): the load benchmark on a fresh local chain.

    ape run load                          # 1,000 MiniLM requests, the mixed load (+100 digits), the fault and crash runs
    ape run load --minilm 60 --digits 0 --fault-seconds 0 --no-crash   # a smaller run: MiniLM only
    ape run load --workdir DIR            # keep the store, journals and agent logs in DIR

Three requester accounts against three `ape run edge_agent` processes, anvil mining a block every
2 s. Prints and writes bench/load.json: settled per minute, request -> settled p50/p90 per model,
the agents' CPU per job, and the correctness checks' counts. The fault run (150 requests, all
sent at once) stops the chain for --fault-seconds once every request is sent (the pool emptied halfway, an agent stopped by SIGTERM
and restarted, a base-fee spike when mining resumes) and checks that every request still settles,
no job is journaled failed, nothing is slashed and the journals' fees are the chain's. The crash
run (300 requests at 2 a second) SIGKILLs an agent 20 s in, restarts it once its lease has run out
and checks that it was assigned nothing after that. What is measured, and how, is bench/load.py.
A benchmark, not a test: a failed correctness check stops it with an error.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import click
from ape import networks
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from bench.load import LoadError, LoadPlan, run_load
from bench.protocol import machine

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "load.json"


@click.command(cls=ConnectedProviderCommand, short_help="Measure JoyNet under load on a local chain")
@click.option("--minilm", type=click.IntRange(0), default=1000, show_default=True, help="MiniLM requests (quorum 1)")
@click.option(
    "--digits",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="digits requests (ZK) of the mixed load, run after the MiniLM-only one (0: none)",
)
@click.option("--block-seconds", type=click.IntRange(1), default=2, show_default=True, help="anvil's block interval")
@click.option(
    "--fault-seconds",
    type=click.FloatRange(0),
    default=150.0,
    show_default=True,
    help="the fault run (after the others): the chain stops mining this long once the MiniLM requests are "
    "sent, the pool is emptied, an agent gets SIGTERM and restarts, the base fee spikes (0: no fault run)",
)
@click.option(
    "--crash/--no-crash",
    default=True,
    show_default=True,
    help="the crash run (after the others): 300 MiniLM requests at 2 a second; one agent is SIGKILLed 20 s in "
    "and restarted once its lease has run out",
)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="keep the run's files here")
@click.option("--no-write", is_flag=True, help="print the figures only; leave bench/load.json as it is")
def cli(minilm, digits, block_seconds, fault_seconds, crash, workdir, no_write):
    if not networks.provider.network.is_local:
        raise click.ClickException("the load benchmark runs on a local chain only (--network ethereum:local:foundry)")
    logger.set_level("WARNING")
    say = lambda text: click.echo(text, err=True)  # noqa: E731
    if os.environ.get("JOYNET_ANVIL_STEPS_TRACING") != "0":
        say("note: anvil keeps a trace of every transaction (set JOYNET_ANVIL_STEPS_TRACING=0, as make load does)")
    runs = {"minilm": LoadPlan(minilm=minilm, block_seconds=block_seconds)}
    if digits:
        runs["mixed"] = LoadPlan(minilm=minilm, digits=digits, block_seconds=block_seconds)
    if fault_seconds:
        # All sent before the chain stops: as many as the three agents' capacity holds open.
        runs["fault"] = LoadPlan(
            minilm=min(minilm, 150), block_seconds=block_seconds, stop_mining_s=fault_seconds, closed_loop=False
        )
    if crash:
        # Paced, so that the dead node's share stays below its capacity while its lease runs out.
        runs["crash"] = LoadPlan(
            minilm=min(minilm, 300),
            block_seconds=block_seconds,
            requests_per_s=2.0,
            kill_after_s=20.0,
            closed_loop=False,
        )
    results: dict = {"machine": machine()}
    for name, plan in runs.items():
        directory = Path(tempfile.mkdtemp(prefix=f"joynet-load-{name}-")) if workdir is None else workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        say(f"== {name}: {plan.minilm} MiniLM + {plan.digits} digits requests, {block_seconds}-second blocks")
        started = time.monotonic()
        try:
            results[name] = run_load(plan, directory, say)
        except LoadError as error:
            raise click.ClickException(f"{name}: {error} (files kept in {directory})") from None
        results[name]["wall_s"] = round(time.monotonic() - started, 1)
        say(json.dumps(results[name], indent=1))
        if workdir is None:
            shutil.rmtree(directory, ignore_errors=True)
    click.echo(json.dumps(results, indent=1))
    if not no_write:
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        click.echo(f"wrote {RESULTS}")
