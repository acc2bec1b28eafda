"""`ape run bench [--gas-only]` (what `make bench` runs): gas from real transactions on a fresh
local chain, plus the feeless channel's throughput (`channel.messages_per_s`).

Writes bench/results.json (a flat {"metric": number} object), bench/breakdown.json (where the
gas of each measured transaction went, from anvil's traces) and BENCHMARKS.md, and prints a
table with the machine it ran on. A benchmark, not a test: it asserts nothing, it measures.
What is measured, and how, is bench/protocol.py.

`ape run bench --gas-only` measures the gas, the ZK prover and the checkpoints only (no EZKL,
edge agents, channel or MiniLM throughput).
"""

import time

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from bench.protocol import BenchError, machine, run_benchmark
from bench.report import BREAKDOWN_PATH, RESULTS_PATH, format_table


@click.command(cls=ConnectedProviderCommand, short_help="Measure JoyNet's gas on a local chain")
@click.option(
    "--gas-only", is_flag=True, help="gas, ZK proofs and checkpoints only: no EZKL, edge agents, channel or MiniLM"
)
def cli(gas_only):
    logger.set_level("WARNING")
    started = time.monotonic()
    try:
        results, report = run_benchmark(lambda text: click.echo(text, err=True), gas_only)
    except BenchError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"\nJoyNet benchmark on {machine()} ({time.monotonic() - started:.0f} s)")
    click.echo(format_table(results))
    click.echo(f"\nwrote {RESULTS_PATH}, {BREAKDOWN_PATH} and {report}")
