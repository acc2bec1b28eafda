"""Options several ``joynet`` commands share."""

import os

import click

from joynet.storage import API_ENV

store_api = click.option(
    "--api",
    metavar="MULTIADDR",
    default=None,
    help=f"Kubo RPC API to use, e.g. /ip4/127.0.0.1/tcp/5001 (default: ${API_ENV}, else the embedded store)",
)
cid_version = click.option(
    "--cid-version",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="0, or 1 (raw leaves, base32), as in kubo",
)
chain_network = click.option(
    "--network",
    default=lambda: os.environ.get("JOYNET_NETWORK", "ethereum:local:foundry"),
    show_default="$JOYNET_NETWORK, else ethereum:local:foundry",
    help="the Ape network choice of the chain",
)
