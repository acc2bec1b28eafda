"""Which Ape account signs: ``test:N`` (Ape's test account N, local chains only: Ape's local
network, or a development chain such as anvil reached by its URL) or the alias of
an account Ape keeps (``ape accounts import``), named by an option or by ``$JOYNET_ACCOUNT``.
The scripts (``--account``) and the clients (``ModelMarketplace``, ``ModelGovernanceDAO``
created without ``account=``) resolve it the same way."""

from __future__ import annotations

import os
from typing import Any

from joynet.chain.constants import is_local_chain
from joynet.chain.errors import AccountError

ACCOUNT_ENV = "JOYNET_ACCOUNT"


def signing_account(spec: str | None) -> Any:
    """The account ``spec`` names; default ``$JOYNET_ACCOUNT``, and on a local chain test
    account 0. AccountError when it names none, or none is named off a local chain."""
    from ape import networks

    spec = spec or os.environ.get(ACCOUNT_ENV)
    if not spec:
        if networks.provider.network.is_local:
            from ape import accounts

            return accounts.test_accounts[0]
        raise AccountError(f"this network needs an account: pass --account ALIAS or set {ACCOUNT_ENV}")
    return named_account(spec)


def environment_account() -> Any | None:
    """The account ``$JOYNET_ACCOUNT`` names, or None when it is not set."""
    spec = os.environ.get(ACCOUNT_ENV)
    return named_account(spec) if spec else None


def named_account(spec: str) -> Any:
    """The account ``test:N`` or an Ape alias names; AccountError otherwise."""
    from ape import accounts, networks

    if spec.startswith("test:"):
        index = spec.removeprefix("test:")
        if not (networks.provider.network.is_local or is_local_chain(networks.provider.chain_id)):
            raise AccountError(f"{spec!r}: test accounts exist only on local chains")
        if not index.isdigit() or int(index) >= len(accounts.test_accounts):
            raise AccountError(f"{spec!r}: there are {len(accounts.test_accounts)} test accounts (test:0 ...)")
        return accounts.test_accounts[int(index)]
    try:
        return accounts.load(spec)
    except Exception as err:  # Ape raises several kinds for unknown aliases
        raise AccountError(f"cannot load Ape account {spec!r}: {err}") from None
