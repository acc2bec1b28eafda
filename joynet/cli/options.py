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


def chain_account(role: str = "the signing account"):
    """``--account``: who signs (``role``), as every command on chain names it."""
    return click.option("--account", help=f"{role}: an Ape alias or test:N (default: $JOYNET_ACCOUNT)")


def deposit(whose: str):
    """``--deposit JOY``: moved into ``whose`` balance on the marketplace first, to pay from."""
    return click.option("--deposit", metavar="JOY", help=f"JOY to deposit into {whose} balance first (it pays from it)")


def settle_timeout(name: str, default: float, after: str):
    """``name``: how long a request may take to settle; ``after``: what happens then."""
    return click.option(
        name,
        type=click.FloatRange(1),
        default=default,
        show_default=True,
        help=f"seconds a request may take to settle before {after}",
    )
