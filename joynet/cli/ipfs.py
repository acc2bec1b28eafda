"""``joynet ipfs``: add and fetch files with kubo's CIDs."""

import sys
from pathlib import Path

import click

from joynet.cli.options import cid_version, store_api
from joynet.cli.output import run
from joynet.storage import open_store


@click.group()
def ipfs() -> None:
    """Add and fetch files with kubo's CIDs."""


@ipfs.command()
@store_api
@cid_version
@click.option("--only-hash", is_flag=True, help="compute the CID without storing anything")
@click.argument("file", type=click.Path(path_type=Path))
def add(api, cid_version, only_hash, file) -> None:
    """Add FILE; print its CID."""

    async def adding() -> str:
        async with open_store(api) as store:
            return await store.add_file(file, cid_version=cid_version, only_hash=only_hash)

    click.echo(run(adding()))


@ipfs.command()
@store_api
@click.argument("cid")
def cat(api, cid) -> None:
    """Write the file CID to stdout (every block verified)."""

    async def writing() -> None:
        async with open_store(api) as store:
            async for piece in store.iter_cat(cid):
                sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()

    run(writing())
