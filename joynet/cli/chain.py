"""Connecting a ``joynet`` command to the chain and to the deployment on it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

from joynet.cli.output import CommandError
from joynet.errors import JoyNetError

LOCAL_CHAIN_ENV = "JOYNET_LOCAL_CHAIN_HOST"
DEFAULT_LOCAL_CHAIN = "http://127.0.0.1:8545"


@contextlib.contextmanager
def on_chain(network: str) -> Iterator:
    """The deployment on ``network``, connected, once its marketplace is found where its file
    says. On the local network a chain must already be running: Ape would otherwise start an
    empty one of its own, where nothing is deployed. The project's errors and Ape's become
    CommandErrors (one line)."""
    from ape import networks
    from ape.exceptions import ApeException

    if ":local" in network and not _listening(_local_chain_url()):
        raise CommandError(
            f"no local chain answers at {_local_chain_url()}: start one (`make demo`, or anvil and `ape run deploy`)"
        )
    active = networks.active_provider
    try:
        if active is not None and active.is_connected and active.network_choice == network:
            connection = contextlib.nullcontext()  # called from a process already on that chain (a test, a console)
        else:
            connection = networks.parse_network_choice(network)
        with connection:
            from ape import chain

            from joynet.chain.deployment_file import load_deployment

            deployment = load_deployment()
            address = deployment.address("ModelMarketplace")
            if not chain.provider.get_code(address):
                raise CommandError(
                    f"{deployment.path} names a marketplace at {address}, but chain {chain.chain_id} has no "
                    "contract there: deploy again (`ape run deploy`)"
                )
            yield deployment
    except JoyNetError as error:
        raise CommandError(str(error)) from None
    except ApeException as error:
        first, *rest = str(error).splitlines() or [type(error).__name__]
        raise CommandError(f"{network}: {first}" + (f" {', '.join(rest)}" if rest else "")) from None


@contextlib.contextmanager
def connected(network: str, account: str | None, needs_account: bool = True) -> Iterator:
    """A ``ModelMarketplace`` of the deployment on ``network`` (see ``on_chain``) that signs
    with ``account`` (default ``$JOYNET_ACCOUNT``); for reads only (``needs_account`` False)
    without an account unless one is named."""
    with on_chain(network) as deployment:
        from joynet.chain.accounts import signing_account
        from joynet.chain.marketplace import ModelMarketplace

        signer = signing_account(account) if needs_account or account else None
        yield ModelMarketplace(contract_address=deployment.address("ModelMarketplace"), account=signer)


@contextlib.contextmanager
def governed(network: str, account: str | None, needs_account: bool = True) -> Iterator:
    """The deployment on ``network`` (see ``on_chain``) and a ``ModelGovernanceDAO`` client of
    its governor, signing with ``account`` (default ``$JOYNET_ACCOUNT``) unless ``needs_account``
    is False."""
    with on_chain(network):
        from joynet.governance.proposals import dao_client

        yield dao_client(account, needs_account)


def _local_chain_url() -> str:
    return os.environ.get("APE_FOUNDRY_HOST") or os.environ.get(LOCAL_CHAIN_ENV) or DEFAULT_LOCAL_CHAIN


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 8545), timeout=2):
            return True
    except OSError:
        return False
