"""``joynet node``: an edge node as the chain (and, where it runs, its job journal) records it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from joynet.cli.chain import connected
from joynet.cli.options import chain_account, chain_network
from joynet.cli.output import CommandError


@click.group()
def node() -> None:
    """Edge nodes: their stake, load and fees."""


@node.command()
@click.argument("address", required=False)
@click.option(
    "--journal",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the node's job journal (where its agent runs), for its jobs, outcomes and fees withdrawn",
)
@click.option("--model", "models", multiple=True, help="a model name to show by name (repeatable; others show as keys)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@chain_network
@chain_account("the node's account when no ADDRESS is given")
def status(address, journal, models, as_json, network, account) -> None:
    """The node ADDRESS (default: the --account's): stake (bonded, unbonding), load and capacity, lease, missed deadlines,
    models, fees to withdraw and, with --journal, its jobs and fees withdrawn."""
    from eth_utils import is_address, to_checksum_address

    from joynet.edge import JobJournal, format_status, node_status

    if address is not None and not is_address(address):
        raise CommandError(f"{address!r} is not an address (0x and 40 hex digits)")
    with connected(network, account, needs_account=address is None) as marketplace:
        address = to_checksum_address(address) if address is not None else marketplace.account.address
        journal_file = JobJournal(journal, readonly=True) if journal else None
        try:
            report = node_status(marketplace, address, journal_file, models)
        finally:
            if journal_file is not None:
                journal_file.close()
    if not report["registered"]:
        raise CommandError(
            f"{address} is not a registered node (no stake): an operator registers with `ape run edge_agent`"
        )
    click.echo(json.dumps(report) if as_json else format_status(report))
