"""`ape run contract_types`: writes joynet/chain/contract_types.json, the contract ABIs an installed
joynet package uses (it does not compile). Run it after changing a contract; the tests check that
the file matches the compiled project."""

import json

import click
from ape import project

from joynet.chain.contract_types import SHIPPED, export_contract_types


@click.command(short_help="Write the ABIs the installed package ships")
def cli():
    SHIPPED.write_text(json.dumps(export_contract_types(project), indent=1, sort_keys=True) + "\n")
    click.echo(f"wrote {SHIPPED} ({len(project.contracts)} contract types)")
