"""``EdgeApp``: a Silverback-shaped event bot on Ape.

Silverback itself (PyPI ``silverback`` 0.7.x) resolves against the pinned eth-ape 0.8.51 but would
add eleven packages (taskiq, apepay, quattro, jwcrypto...) to the shared environment and runs
under its own ``silverback run`` command, not ``ape run``. ``EdgeApp`` keeps its shape — one
decorated handler per contract event, startup and shutdown hooks — over a plain polling loop:

    app = EdgeApp()

    @app.on_("InferenceRequested")
    async def serve(node, event): ...

    app.run(node)          # until SIGTERM / SIGINT, then the shutdown handlers (drain)

Events are read with ``eth_getLogs`` from the block after the journal's cursor to the chain
head, handled in chain order, and only then is the cursor moved: an agent that dies between two
polls replays those blocks when it restarts (handlers are idempotent through the journal).

On a local development chain (anvil's automine) the loop also mines a block when a transaction
has waited in the pool for over a second: anvil mines a block when a transaction arrives, but one
that did not fit in it (two arriving together, each with the whole block's gas, as Ape sends on
local chains) waits for the next arrival, which may never come when everyone waits on it (a
quorum waiting for its last reveal).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from eth_utils import keccak

logger = logging.getLogger("joynet.edge")

Handler = Callable[..., Awaitable[None]]
LOCAL_CHAIN_IDS = (31337, 1337)
STUCK_SECONDS = 1.0  # a transaction pending this long on an automining local chain is stuck


class _PoolNudger:
    """Mines a block on a local chain whose pool has held a pending transaction for too long."""

    def __init__(self, provider):
        self.provider = provider
        self.enabled = provider.chain_id in LOCAL_CHAIN_IDS
        self.since: float | None = None
        self.checked = 0.0

    def check(self) -> None:
        if not self.enabled or time.monotonic() - self.checked < STUCK_SECONDS / 2:
            return
        self.checked = time.monotonic()
        try:
            pending = int(self.provider.make_request("txpool_status", [])["pending"], 16)
        except Exception:  # noqa: BLE001 - a local node without txpool_status: nothing to do
            self.enabled = False
            return
        now = time.monotonic()
        if pending == 0:
            self.since = None
        elif self.since is None:
            self.since = now
        elif now - self.since > STUCK_SECONDS:
            self.provider.make_request("evm_mine", [])
            self.since = None
            logger.info("mined a block for %d transaction(s) left pending by the local chain", pending)


class EdgeApp:
    def __init__(self, poll_seconds: float = 0.1):
        self.poll_seconds = poll_seconds
        self._startup: list[Handler] = []
        self._shutdown: list[Handler] = []
        self._events: dict[str, list[Handler]] = {}
        self._stops: list[asyncio.Event] = []

    # ---- registration (decorators) ----

    def on_startup(self) -> Callable[[Handler], Handler]:
        return self._register(self._startup)

    def on_shutdown(self) -> Callable[[Handler], Handler]:
        return self._register(self._shutdown)

    def on_(self, event_name: str) -> Callable[[Handler], Handler]:
        """Calls the handler with (node, decoded event) for each marketplace event ``event_name``."""
        return self._register(self._events.setdefault(event_name, []))

    @staticmethod
    def _register(handlers: list[Handler]) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            handlers.append(handler)
            return handler

        return decorate

    # ---- running ----

    def run(self, node) -> None:
        """Serves ``node`` until SIGTERM or SIGINT."""
        asyncio.run(self.serve(node))

    def stop(self) -> None:
        """Stops every node this app serves (each drains through the shutdown handlers)."""
        for stop in self._stops:
            stop.set()

    async def serve(self, node, stop: asyncio.Event | None = None) -> None:
        """Startup handlers, then events until stopped, then the shutdown handlers. Without
        ``stop``, SIGTERM and SIGINT stop it (main thread only); several nodes can be served
        in one event loop, each with its own ``stop`` event."""
        from ape import networks

        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
        stop = stop or asyncio.Event()
        self._stops.append(stop)
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal, signum, stop)
        provider, contract = networks.provider, node.contract
        nudger = _PoolNudger(provider)
        abis = [getattr(contract, name).abi for name in self._events]
        topics = ["0x" + keccak(text=abi.selector).hex() for abi in abis]
        try:
            for handler in self._startup:
                await handler(node)
            logger.info("listening for %s from block %d", ", ".join(self._events), node.journal.cursor + 1)
            while not stop.is_set():
                try:
                    await self._poll(node, provider, contract.address, abis, topics)
                    nudger.check()
                except Exception as error:  # noqa: BLE001 - an RPC hiccup must not stop a node
                    # The cursor did not move: the same blocks are read again (handlers are idempotent).
                    logger.warning("reading events failed (%s: %s); retrying", type(error).__name__, error)
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            self._stops.remove(stop)
            for handler in self._shutdown:
                await handler(node)

    async def _poll(self, node, provider, address: str, abis: list, topics: list[str]) -> None:
        """Handles the events of the blocks after the journal's cursor, then moves the cursor."""
        head = int(provider.make_request("eth_blockNumber", []), 16)
        cursor = node.journal.cursor
        if head <= cursor:
            return
        logs = provider.make_request("eth_getLogs", [{
            "address": address, "fromBlock": hex(cursor + 1), "toBlock": hex(head), "topics": [topics]}])
        for event in provider.network.ecosystem.decode_logs(logs, *abis):
            for handler in self._events[event.event_name]:
                await handler(node, event)
        node.journal.cursor = head

    @staticmethod
    def _on_signal(signum: int, stop: asyncio.Event) -> None:
        logger.info("%s received: finishing in-flight work, then exiting", signal.Signals(signum).name)
        stop.set()
