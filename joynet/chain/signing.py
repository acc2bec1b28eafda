"""What every JoyNet client that sends transactions shares: an Ape account, transactions sent
from a worker thread (so an agent's event loop keeps serving while one is mined), and the
receipt of the latest one for gas accounting."""

from __future__ import annotations

import asyncio
from typing import Any


class SigningClient:
    """Base of the async clients; ``error_type`` is the client's own error class."""

    error_type: type[Exception] = RuntimeError

    def __init__(self, account: Any = None):
        self.account = account
        self.last_receipt: Any = None

    def _sender(self) -> str:
        if self.account is None:
            raise self.error_type("this client has no account: pass account= to sign transactions")
        return self.account.address

    async def _send(self, method, *args) -> Any:
        self._sender()
        self.last_receipt = await asyncio.to_thread(method, *args, sender=self.account)
        return self.last_receipt
