"""What every JoyNet client that sends transactions shares: an Ape account and a transaction
manager for it. A transaction is checked in the next block before it is sent; its nonce comes
from a local sequence, so that one account has several transactions in flight; its fees follow
the chain's base fee. While a receipt is awaited the manager tends the transaction: one the pool
dropped is broadcast again, one priced under the base fee (a base-fee spike) or left waiting is
replaced at its nonce with higher fees, and one that could no longer succeed is cancelled (its
nonce taken by an empty transfer, so that the account's later transactions are not held up)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from joynet.chain.errors import TransactionPendingError, TransactionRefusedError, TransactionRevertedError

logger = logging.getLogger(__name__)

# Gas allowed above a transaction's estimate: a quorum reveal estimated while others are still
# to come may land last, and then also judges and settles the request.
GAS_MARGIN = 1_000_000
# A replacement raises both fees by at least this factor (nodes refuse a replacement under
# about +10 %: geth's and anvil's "replacement transaction underpriced").
FEE_BUMP = 1.125
# A transaction still in the pool this long while the chain mined other blocks is replaced with
# a higher tip; one priced under the base fee is replaced at once.
STUCK_SECONDS = 30.0
# How often a receipt wait looks for the receipt, and how often it tends the transaction.
RECEIPT_POLL_SECONDS = 0.2
TEND_SECONDS = 2.0
# A client quiet for this long reads its account's nonce from the chain again before sending.
NONCE_RESYNC_SECONDS = 2.0
# A mined transaction's record is kept this long, for late readers of its receipt.
FORGET_SECONDS = 600.0


@dataclass
class SentTransaction:
    """One nonce of the account and every transaction sent at it (the first, then its
    replacements); ``hashes[0]`` names it to callers."""

    method: Any
    args: tuple
    nonce: int
    gas_limit: int
    max_fee: int | None
    priority_fee: int | None
    raw: bytes
    sent_at: float  # monotonic, of the latest broadcast at this nonce
    hashes: list[str] = field(default_factory=list)
    # The head when it was sent; read at its first tending (one mined at once never needs it).
    sent_at_block: int | None = None
    cancelled: bool = False
    tended_at: float = field(init=False)  # when it was last tended (sending counts as tending)
    looked_at: float = 0.0  # when a waiter last asked the chain for its receipt
    finished_at: float | None = None  # when its receipt was first read
    receipt: Any = None  # that receipt, for every other waiter of the transaction
    mined_hash: str | None = None  # the hash it names (the first's or a replacement's)

    def __post_init__(self):
        self.tended_at = self.sent_at


class SigningClient:
    """Base of the async clients; ``error_type`` is the client's own error class. The methods
    that send are safe to call from several threads at once (one nonce sequence per client)."""

    error_type: type[Exception] = RuntimeError

    def __init__(self, account: Any = None):
        self.account = account
        self.last_receipt: Any = None
        self._error_names: dict[str, str] | None = None  # custom error selector -> name
        self._gas_ceiling: int | None = None  # the chain's block gas limit
        self._nonce_lock = threading.Lock()  # allocation, signing and broadcast of one nonce
        self._next_nonce: int | None = None
        self._sent: dict[str, SentTransaction] = {}  # every hash of a sent nonce -> its record
        self._chain: int | None = None  # the chain id, read once
        self._overrides: bool | None = None  # whether the node takes block overrides (None: not known yet)
        self._last_send = 0.0  # monotonic time of the latest send

    def _sender(self) -> str:
        if self.account is None:
            # A client made without account= signs with the account $JOYNET_ACCOUNT names, as
            # the scripts do (an Ape alias, or test:N on a local chain).
            from joynet.chain.accounts import ACCOUNT_ENV, environment_account

            self.account = environment_account()
            if self.account is None:
                raise self.error_type(
                    f"this client has no account: pass account= or set {ACCOUNT_ENV} "
                    "(an Ape account alias, or test:N on a local chain)"
                )
        return self.account.address

    async def _send(self, method, *args) -> Any:
        self.last_receipt = await self.transact(method, *args)
        return self.last_receipt

    async def transact(self, method, *args, wait: float | None = None) -> Any:
        """Sends ``method(*args)`` (an Ape contract method) from the client's account and returns
        its receipt. The transaction is dry-run in the next block first and not sent if it
        would revert (TransactionRefusedError naming the contract's error): on a local chain Ape
        does not estimate gas, and would mine the failure. Its gas limit is the estimate plus
        GAS_MARGIN, not the whole block, so that a block holds many transactions. ``wait``:
        seconds to wait for the receipt (default: the network's acceptance timeout);
        TransactionPendingError when it is not mined by then (``receipt`` waits for it again,
        the transaction being tended meanwhile), TransactionRevertedError when it reverted."""
        tx_hash = await self.send(method, *args)
        return await self.wait_for_receipt(tx_hash, wait)

    async def send(self, method, *args) -> str:
        """Sends ``method(*args)`` as ``transact`` does, without waiting for it to be mined: the
        transaction's hash, for ``receipt``. Several may be in flight at once."""
        self._sender()
        return await asyncio.to_thread(self._send_now, method, *args)

    def receipt(self, tx_hash: str, wait: float | None = None) -> Any:
        """The receipt of a transaction this client sent (or of its replacement at the same
        nonce), waiting at most ``wait`` seconds (default: the network's acceptance timeout) and
        tending it meanwhile (see the module). TransactionPendingError if it is not mined by
        then, TransactionRevertedError if it reverted, TransactionRefusedError if it was
        cancelled because it could no longer succeed. Blocks its thread; ``wait_for_receipt``
        is the same for a coroutine."""
        deadline = time.monotonic() + self._timeout(wait)
        while (receipt := self._look(tx_hash)) is None:
            now = time.monotonic()
            if now >= deadline:
                raise TransactionPendingError(
                    f"transaction {tx_hash} is not mined after {self._timeout(wait)} s", tx_hash
                )
            time.sleep(min(RECEIPT_POLL_SECONDS, max(0.0, deadline - now)))
        return receipt

    async def wait_for_receipt(self, tx_hash: str, wait: float | None = None) -> Any:
        """``receipt`` for a coroutine: each look at the chain runs on a worker thread, and the
        waits between them hold no thread (an agent with many transactions in flight would
        otherwise tie up its event loop's worker threads)."""
        deadline = time.monotonic() + self._timeout(wait)
        while (receipt := await asyncio.to_thread(self._look, tx_hash)) is None:
            now = time.monotonic()
            if now >= deadline:
                raise TransactionPendingError(
                    f"transaction {tx_hash} is not mined after {self._timeout(wait)} s", tx_hash
                )
            await asyncio.sleep(min(RECEIPT_POLL_SECONDS, max(0.0, deadline - now)))
        return receipt

    @staticmethod
    def _timeout(wait: float | None) -> float:
        from ape import networks

        return networks.provider.network.transaction_acceptance_timeout if wait is None else wait

    def _look(self, tx_hash: str) -> Any:
        """One look for the receipt of ``tx_hash`` or of a replacement (None: not mined yet);
        tends the transaction when it is due (see ``_tend``). Several waiters of one transaction
        (the jobs of one batch of results, say) share the looks: the chain is asked at most once
        per half RECEIPT_POLL_SECONDS, and the receipt read once."""
        from ape import networks

        provider = networks.provider
        sent = self._sent.get(tx_hash)
        if sent is not None:
            if sent.mined_hash is not None:  # set with the receipt, once read
                return self._finished(sent, sent.mined_hash, tx_hash)
            now = time.monotonic()
            if now - sent.looked_at < RECEIPT_POLL_SECONDS / 2:
                return None  # another waiter has just looked
            sent.looked_at = now
        for candidate in sent.hashes if sent is not None else [tx_hash]:
            # The raw RPC: web3's own call formats every field of a receipt it polls for.
            if provider.make_request("eth_getTransactionReceipt", [candidate]) is not None:
                return self._finished(sent, candidate, tx_hash)
        if sent is not None:
            self._tend(sent)
        return None

    def dropped(self, tx_hash: str) -> bool:
        """True when the chain knows nothing of a transaction this client sent nor of any of
        its replacements: neither mined nor in the pool. (``receipt`` broadcasts such a
        transaction again; a nonce this client cancelled is not dropped.)"""
        sent = self._sent.get(tx_hash)
        return not any(self._known(candidate) for candidate in (sent.hashes if sent is not None else [tx_hash]))

    def read(self, method, *args, next_block: bool = False) -> Any:
        """``method(*args)`` (an Ape view method) as one eth_call on the latest block, or with
        ``next_block`` in the block that comes next (see ``_in_next_block``), decoded as Ape
        decodes it (a single output unwrapped). The reads an agent or a busy requester makes per
        request: Ape's own call also looks up the contract's code and builds a transaction model
        each time (about 5 ms of CPU against 2 ms)."""
        provider = method.provider
        call = {"to": method.contract.address, "data": method.encode_input(*args).to_0x_hex()}
        returned = (
            self._in_next_block(provider, "eth_call", call)
            if next_block
            else provider.make_request("eth_call", [call, "latest"])
        )
        (abi,) = [abi for abi in method.abis if len(abi.inputs) == len(args)]
        values = provider.network.ecosystem.decode_returndata(abi, bytes.fromhex(returned[2:]))
        return values[0] if len(values) == 1 else values

    def dry_run(self, method, *args, latest: dict | None = None) -> int:
        """The gas ``method(*args)`` takes in the block that comes next (see ``_in_next_block``;
        ``latest``: the latest block, if just read), sent from the client's account;
        TransactionRefusedError if it would revert."""
        call = {"from": self._sender(), "to": method.contract.address, "data": method.encode_input(*args).to_0x_hex()}
        try:
            return int(self._in_next_block(method.provider, "eth_estimateGas", call, latest), 16)
        except Exception as error:  # noqa: BLE001 - a revert: named, if the error is one of the project's
            if "revert" not in str(error).lower():
                raise  # the client could not ask (an RPC failure), which says nothing of the transaction
            message = self._explain(str(error))
            name = re.search(r"custom error (\w+)", message)
            if name:  # the rest is the error's raw ABI-encoded arguments
                message = f"reverted: {name.group(1)}"
            raise TransactionRefusedError(message, name.group(1) if name else message) from None

    def _in_next_block(self, provider, rpc: str, call: dict, latest: dict | None = None) -> Any:
        """``rpc`` (eth_call or eth_estimateGas) in the block that comes next: the latest block's
        state, with the next block's number and timestamp as block overrides (so that, for
        instance, a request's seed, its block's hash, is known as it is to a transaction sent
        now). Not the node's "pending" block at first: a node builds that by running every
        pooled transaction again, for each call (anvil: about 7 ms with 60 in the pool, against
        1.5 ms), which under load cost the chain more than the transactions themselves. A revert
        is confirmed in the pending block, the node's own view of what comes next (a chain
        whose next timestamp was set ahead, say), before it is taken for an answer. A dry run
        does not see the account's own unmined transactions: a transaction that depends on
        another waits for its receipt first. Nodes without block overrides get "pending"."""
        if self._overrides is not False:
            block = latest or provider.make_request("eth_getBlockByNumber", ["latest", False])
            number, stamp = int(block["number"], 16), int(block["timestamp"], 16)
            overrides = {"number": hex(number + 1), "time": hex(max(stamp + 1, int(time.time())))}
            try:
                result = provider.make_request(rpc, [call, hex(number), {}, overrides])
                self._overrides = True
                return result
            except Exception as error:  # noqa: BLE001 - a revert, or a node that does not take overrides
                if "revert" not in str(error).lower():
                    if self._overrides:
                        raise
                    self._overrides = False
        return provider.make_request(rpc, [call, "pending"])

    # ---- sending ----

    def _send_now(self, method, *args) -> str:
        provider = method.provider
        latest = provider.make_request("eth_getBlockByNumber", ["latest", False])  # for the dry run and the fees
        estimate = self.dry_run(method, *args, latest=latest)
        limit = min(estimate + GAS_MARGIN, self._block_gas_limit(provider))
        max_fee, priority_fee = self._fees(provider, latest)
        with self._nonce_lock:
            nonce = self._allocate_nonce(provider)
            signed = self._sign(method, args, nonce, limit, max_fee, priority_fee)
            # Checked again once prepared and signed: another account's transaction may have
            # changed the state meanwhile. What is left between this check and the send is one
            # RPC call.
            self.dry_run(method, *args)
            raw = bytes(signed.serialize_transaction())
            try:
                tx_hash = self._broadcast(provider, raw)
            except Exception as error:  # noqa: BLE001 - "nonce too low": another sender of this account
                if "nonce" not in str(error).lower():
                    raise
                self._next_nonce = None
                nonce = self._allocate_nonce(provider)
                signed = self._sign(method, args, nonce, limit, max_fee, priority_fee)
                raw = bytes(signed.serialize_transaction())
                tx_hash = self._broadcast(provider, raw)
            self._next_nonce, self._last_send = nonce + 1, time.monotonic()
            sent = SentTransaction(method, args, nonce, limit, max_fee, priority_fee, raw, time.monotonic(), [tx_hash])
            self._sent[tx_hash] = sent
            self._forget_finished()
        return tx_hash

    def _forget_finished(self) -> None:
        """Drops the records of transactions whose receipt was read FORGET_SECONDS ago (a
        long-running agent sends without end)."""
        now = time.monotonic()
        old = [
            h
            for h, sent in self._sent.items()
            if sent.finished_at is not None and now - sent.finished_at > FORGET_SECONDS
        ]
        for tx_hash in old:
            del self._sent[tx_hash]

    def _allocate_nonce(self, provider) -> int:
        # The local sequence covers this client's own transactions, even those the pool has
        # dropped (their waiters broadcast them again, so their nonces stay theirs); the
        # account's pending count, read when the client has been quiet for a while, covers
        # transactions sent by other means (Ape directly). A busy client reads it only after a
        # "nonce too low" (see _send_now).
        if self._next_nonce is not None and time.monotonic() - self._last_send < NONCE_RESYNC_SECONDS:
            return self._next_nonce
        pending = provider.web3.eth.get_transaction_count(self.account.address, "pending")
        return pending if self._next_nonce is None else max(pending, self._next_nonce)

    def _sign(self, method, args, nonce, limit, max_fee, priority_fee):
        if max_fee is None:  # a chain without a base fee: Ape prices a legacy transaction
            return method.as_transaction(*args, sender=self.account, gas_limit=limit, nonce=nonce, sign=True)
        # Built from its fields and signed, without Ape's preparation (a transaction model filled
        # in through several RPC calls): the manager has already set every field.
        transaction = method.provider.network.ecosystem.create_transaction(
            chain_id=self._chain_id(method.provider),
            sender=self.account.address,
            receiver=method.contract.address,
            data=method.encode_input(*args),
            value=0,
            nonce=nonce,
            gas_limit=limit,
            max_fee=max_fee,
            max_priority_fee=priority_fee,
            type=2,
        )
        return self.account.sign_transaction(transaction)

    def _chain_id(self, provider) -> int:
        if self._chain is None:
            self._chain = provider.chain_id
        return self._chain

    @staticmethod
    def _broadcast(provider, raw: bytes) -> str:
        return provider.web3.eth.send_raw_transaction(raw).to_0x_hex()

    @staticmethod
    def _head(provider) -> int:
        return provider.web3.eth.block_number

    @staticmethod
    def _base_fee(provider, latest: dict | None = None) -> int | None:
        """The next block's base fee at most: the latest's plus the 12.5 % EIP-1559 allows per block."""
        fee = (latest or provider.make_request("eth_getBlockByNumber", ["latest", False])).get("baseFeePerGas")
        return None if fee is None else int(fee, 16) * 9 // 8

    def _fees(self, provider, latest: dict | None = None) -> tuple[int | None, int | None]:
        """EIP-1559 fees: the node's suggested tip, and room for the base fee to double before
        the transaction is priced out. (None, None) on a chain without a base fee."""
        base = self._base_fee(provider, latest)
        if base is None:
            return None, None
        tip = int(provider.make_request("eth_maxPriorityFeePerGas", []), 16)
        return 2 * base + tip, tip

    # ---- tending what was sent ----

    def _known(self, tx_hash: str) -> bool:
        from ape import networks
        from web3.exceptions import TransactionNotFound

        try:
            networks.provider.web3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _finished(self, sent: SentTransaction | None, mined_hash: str, tx_hash: str) -> Any:
        from ape import networks

        receipt = sent.receipt if sent is not None and sent.receipt is not None else None
        if receipt is None:
            receipt = networks.provider.get_receipt(mined_hash)
        if sent is not None and sent.finished_at is None:
            sent.finished_at, sent.receipt, sent.mined_hash = time.monotonic(), receipt, mined_hash
        if sent is not None and sent.cancelled and mined_hash != sent.hashes[0] and not receipt.failed:
            if receipt.receiver == self.account.address:  # the empty transfer took the nonce
                raise TransactionRefusedError(
                    f"transaction {tx_hash} was cancelled: it could no longer succeed", "cancelled"
                )
        if receipt.failed:
            raise TransactionRevertedError(f"transaction {tx_hash} reverted", tx_hash)
        return receipt

    def _tend(self, sent: SentTransaction) -> None:
        """One look at a sent, unmined transaction: broadcast again when dropped, replaced with
        higher fees when priced out or stuck, cancelled when it could no longer succeed."""
        from ape import networks

        provider = networks.provider
        with self._nonce_lock:
            if time.monotonic() - sent.tended_at < TEND_SECONDS:
                return  # several waiters of one transaction tend it once
            sent.tended_at = time.monotonic()
            if provider.web3.eth.get_transaction_count(self.account.address, "latest") > sent.nonce:
                return  # mined (its receipt is read next), by this or a replacement
            if not any(self._known(candidate) for candidate in sent.hashes):
                if not sent.cancelled and not self._still_valid(sent):
                    self._replace(provider, sent, cancel=True)
                    return
                logger.warning("transaction %s was dropped from the pool; broadcasting it again", sent.hashes[0])
                try:
                    self._broadcast(provider, sent.raw)
                except Exception as error:  # noqa: BLE001 - priced out since: replaced below
                    logger.info("transaction %s: broadcast refused (%s)", sent.hashes[0], str(error)[:120])
                    self._replace(provider, sent, cancel=sent.cancelled)
                return
            if sent.max_fee is None:
                return  # a chain without a base fee: nothing to bump against
            base = self._base_fee(provider) or 0
            priced_out = sent.max_fee < base
            if sent.sent_at_block is None:
                sent.sent_at_block = self._head(provider)
            waited = time.monotonic() - sent.sent_at >= STUCK_SECONDS and self._head(provider) > sent.sent_at_block + 1
            if priced_out or waited:
                logger.warning(
                    "transaction %s is %s; replacing it with higher fees",
                    sent.hashes[0],
                    f"priced under the base fee ({base} wei)"
                    if priced_out
                    else f"not mined after {STUCK_SECONDS:.0f} s",
                )
                self._replace(provider, sent, cancel=sent.cancelled)

    def _still_valid(self, sent: SentTransaction) -> bool:
        try:
            self.dry_run(sent.method, *sent.args)
        except TransactionRefusedError:
            return False
        return True

    def _replace(self, provider, sent: SentTransaction, cancel: bool) -> None:
        """Sends a new transaction at ``sent``'s nonce, both fees raised by FEE_BUMP at least and
        the fee cap at twice the base fee plus the tip: the same call, or (``cancel``) an empty
        transfer to the account itself."""
        base = self._base_fee(provider) or 0
        tip = max(
            int((sent.priority_fee or 0) * FEE_BUMP) + 1, int(provider.make_request("eth_maxPriorityFeePerGas", []), 16)
        )
        max_fee = max(int((sent.max_fee or 0) * FEE_BUMP) + 1, 2 * base + tip)
        if cancel:
            from ape import networks

            transfer = networks.provider.network.ecosystem.create_transaction(
                chain_id=self._chain_id(provider),
                sender=self.account.address,
                receiver=self.account.address,
                value=0,
                nonce=sent.nonce,
                gas_limit=21_000,
                max_fee=max_fee,
                max_priority_fee=tip,
                type=2,
            )
            signed = self.account.sign_transaction(transfer)
        else:
            signed = self._sign(sent.method, sent.args, sent.nonce, sent.gas_limit, max_fee, tip)
        raw = bytes(signed.serialize_transaction())
        try:
            tx_hash = self._broadcast(provider, raw)
        except Exception as error:  # noqa: BLE001 - mined meanwhile, or refused: looked at again next time
            logger.info("transaction %s: replacement refused (%s)", sent.hashes[0], str(error)[:120])
            return
        sent.raw, sent.max_fee, sent.priority_fee, sent.cancelled = raw, max_fee, tip, cancel
        sent.sent_at = sent.tended_at = time.monotonic()
        sent.sent_at_block = self._head(provider)
        sent.hashes.append(tx_hash)
        self._sent[tx_hash] = sent
        logger.info(
            "transaction %s %s at nonce %d as %s (fee cap %d wei, tip %d wei)",
            sent.hashes[0],
            "cancelled" if cancel else "replaced",
            sent.nonce,
            tx_hash,
            max_fee,
            tip,
        )

    def _block_gas_limit(self, provider) -> int:
        if self._gas_ceiling is None:
            block = provider.make_request("eth_getBlockByNumber", ["latest", False])
            self._gas_ceiling = int(block["gasLimit"], 16)
        return self._gas_ceiling

    def _explain(self, message: str) -> str:
        """A revert message with each custom error's selector replaced by its name (any error
        the project's contracts declare)."""
        if self._error_names is None:
            from joynet.chain.contract_types import all_contract_types

            self._error_names = {
                "0x" + keccak(text=abi.selector)[:4].hex(): abi.name
                for contract_type in all_contract_types()
                for abi in contract_type.errors
            }
        names = self._error_names
        return re.sub(r"0x[0-9a-fA-F]{8}\b", lambda m: names.get(m.group(0).lower(), m.group(0)), message)
