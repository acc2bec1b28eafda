"""What every JoyNet client that sends transactions shares: an Ape account, transactions checked
in the pending block before they are sent and sent from a worker thread (so an agent's event
loop keeps serving while one is mined), and the receipt of the latest one for gas accounting."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from eth_utils import keccak

from joynet.chain.errors import TransactionPendingError, TransactionRefusedError, TransactionRevertedError

# Gas allowed above a transaction's estimate: a quorum reveal estimated while others are still
# to come may land last, and then also judges and settles the request.
GAS_MARGIN = 1_000_000


class SigningClient:
    """Base of the async clients; ``error_type`` is the client's own error class."""

    error_type: type[Exception] = RuntimeError

    def __init__(self, account: Any = None):
        self.account = account
        self.last_receipt: Any = None
        self._error_names: dict[str, str] | None = None  # custom error selector -> name
        self._gas_ceiling: int | None = None  # the chain's block gas limit

    def _sender(self) -> str:
        if self.account is None:
            raise self.error_type("this client has no account: pass account= to sign transactions")
        return self.account.address

    async def _send(self, method, *args) -> Any:
        self.last_receipt = await self.transact(method, *args)
        return self.last_receipt

    async def transact(self, method, *args, wait: float | None = None) -> Any:
        """Sends ``method(*args)`` (an Ape contract method) from the client's account and returns
        its receipt. The transaction is dry-run in the pending block first and not sent if it
        would revert (TransactionRefusedError naming the contract's error): on a local chain Ape
        does not estimate gas, and would mine the failure. Its gas limit is the estimate plus
        GAS_MARGIN, not the whole block, so that a block holds many transactions. Its nonce
        follows the account's transactions already in the pool, so a transaction not yet mined
        does not block the next one. ``wait``: seconds to wait for the receipt (default: the
        network's acceptance timeout); TransactionPendingError when it is not mined by then
        (``receipt`` waits for it again), TransactionRevertedError when it reverted. Callers
        that send concurrently from one account serialize their calls (one nonce sequence)."""
        self._sender()
        return await asyncio.to_thread(self._transact_now, method, *args, wait=wait)

    def receipt(self, tx_hash: str, wait: float | None = None) -> Any:
        """The receipt of a transaction this client sent, waiting at most ``wait`` seconds
        (default: the network's acceptance timeout); TransactionPendingError if it is not mined
        by then, TransactionRevertedError if it reverted."""
        from ape import networks
        from ape.exceptions import TransactionNotFoundError

        provider = networks.provider
        timeout = provider.network.transaction_acceptance_timeout if wait is None else wait
        try:
            receipt = provider.get_receipt(tx_hash, timeout=timeout)
        except TransactionNotFoundError:
            raise TransactionPendingError(f"transaction {tx_hash} is not mined after {timeout} s", tx_hash) from None
        if receipt.failed:
            raise TransactionRevertedError(f"transaction {tx_hash} reverted", tx_hash)
        return receipt

    def dropped(self, tx_hash: str) -> bool:
        """True when the chain knows nothing of a transaction this client sent: neither mined nor
        in the pool (dropped, for instance by a node restart or a full pool). Sending it again is
        safe: its nonce is free."""
        from ape import networks
        from web3.exceptions import TransactionNotFound

        try:
            networks.provider.web3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return True
        return False

    def dry_run(self, method, *args) -> int:
        """The gas ``method(*args)`` takes in the pending block, sent from the client's account;
        TransactionRefusedError if it would revert."""
        call = {"from": self._sender(), "to": method.contract.address, "data": method.encode_input(*args).to_0x_hex()}
        try:
            return int(method.provider.make_request("eth_estimateGas", [call, "pending"]), 16)
        except Exception as error:  # noqa: BLE001 - a revert: named, if the error is one of the project's
            if "revert" not in str(error).lower():
                raise  # the client could not ask (an RPC failure), which says nothing of the transaction
            message = self._explain(str(error))
            name = re.search(r"custom error (\w+)", message)
            if name:  # the rest is the error's raw ABI-encoded arguments
                message = f"reverted: {name.group(1)}"
            raise TransactionRefusedError(message, name.group(1) if name else message) from None

    def _transact_now(self, method, *args, wait: float | None = None) -> Any:
        provider = method.provider
        estimate = self.dry_run(method, *args)
        limit = min(estimate + GAS_MARGIN, self._block_gas_limit(provider))
        # The pending count: the account's transactions still in the pool keep their nonces.
        nonce = provider.web3.eth.get_transaction_count(self.account.address, "pending")
        signed = method.as_transaction(*args, sender=self.account, gas_limit=limit, nonce=nonce, sign=True)
        # Checked again once prepared and signed: another account's transaction may have changed
        # the state meanwhile. What is left between this check and the send is one RPC call.
        self.dry_run(method, *args)
        tx_hash = provider.web3.eth.send_raw_transaction(signed.serialize_transaction()).to_0x_hex()
        return self.receipt(tx_hash, wait)

    def _block_gas_limit(self, provider) -> int:
        if self._gas_ceiling is None:
            block = provider.make_request("eth_getBlockByNumber", ["latest", False])
            self._gas_ceiling = int(block["gasLimit"], 16)
        return self._gas_ceiling

    def _explain(self, message: str) -> str:
        """A revert message with each custom error's selector replaced by its name (any error
        the project's contracts declare)."""
        if self._error_names is None:
            from ape import project

            self._error_names = {
                "0x" + keccak(text=abi.selector)[:4].hex(): abi.name
                for contract_type in project.contracts.values()
                for abi in contract_type.errors
            }
        names = self._error_names
        return re.sub(r"0x[0-9a-fA-F]{8}\b", lambda m: names.get(m.group(0).lower(), m.group(0)), message)
