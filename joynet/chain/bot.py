"""``Bot``: the one event loop every JoyNet agent runs on, in Silverback's shape.

An agent is one file of decorated handlers (``agents/edge_node.py``, ``agents/iota_bridger.py``,
``agents/dao_voter.py``); its state and decisions live in an object the handlers receive first
(``EdgeNode``, ``Bridger``, ``DaoVoter``), so they can be tested without the loop:

    bot = Bot("edge_node")

    @bot.on_startup()
    async def join(node): ...

    @bot.on_("InferenceRequested")          # an event of the contract the bot follows
    async def serve(node, event): ...

    @bot.on_block()                         # once per new chain head, after its events
    async def vote_due(voter, height): ...

    @bot.on_tick()                          # once per poll
    def checkpoint(bridger): ...

    bot.run(state, contract, cursor)        # until SIGTERM / SIGINT or bot.stop(), then on_shutdown

Why not Silverback itself (PyPI ``silverback`` resolves with the pinned eth-ape without moving a
pin): it runs under its own ``silverback run`` rather than ``ape run``; it does not replay the
events a stopped bot missed (an agent must: an assignment missed is a slash); its handlers run
concurrently and out of order (a result must not be submitted before its assignment is
journaled); and it exits 0 on fatal errors. This loop keeps Silverback's decorators and adds
what the agents need: events are read (Ape's ``get_contract_logs``) from the block after the
cursor to the head, handled in chain order, and only then does the cursor move (``cursor`` is any
object with a ``cursor`` attribute, e.g. the edge node's SQLite journal, so a restarted agent
replays the blocks it had not finished). A poll that fails is logged and tried again from the
same cursor.

On a local development chain (anvil's automine) the loop can also mine a block when a
transaction has waited in the pool for over a second: anvil mines a block when a transaction
arrives, but one that did not fit in it (two arriving together, each with the whole block's gas,
as Ape sends on local chains) waits for the next arrival, which may never come when everyone
waits on it (a quorum waiting for its last reveal).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from joynet.chain.constants import is_local_chain
from joynet.monitoring import AgentMonitor

logger = logging.getLogger("joynet.bot")

Handler = Callable[..., Any]  # sync or async
STUCK_SECONDS = 1.0  # a transaction pending this long on an automining local chain is stuck


@dataclass
class BlockCursor:
    """A cursor kept in memory: the last block whose events were handled."""

    cursor: int


class _PoolNudger:
    """Mines a block on a local chain in automine mode whose pool has held a pending transaction
    for too long. Not when the chain mines on an interval or was told to stop: that is the
    chain's own choice, which a test of a stalled chain makes on purpose."""

    def __init__(self, provider, enabled: bool):
        self.provider = provider
        self.enabled = enabled and is_local_chain(provider.chain_id)
        self.since: float | None = None
        self.checked = 0.0

    def check(self) -> None:
        if not self.enabled or time.monotonic() - self.checked < STUCK_SECONDS / 2:
            return
        self.checked = time.monotonic()
        try:
            if not self.provider.make_request("anvil_getAutomine", []):
                self.since = None
                return
            pending = int(self.provider.make_request("txpool_status", [])["pending"], 16)
        except Exception:  # noqa: BLE001 - a local node without these calls: nothing to do
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


class Bot:
    def __init__(self, name: str, poll_seconds: float = 0.1):
        self.name = name
        self.poll_seconds = poll_seconds
        self._startup: list[Handler] = []
        self._shutdown: list[Handler] = []
        self._events: dict[str, list[Handler]] = {}
        self._blocks: list[Handler] = []
        self._ticks: list[Handler] = []
        self._stops: list[asyncio.Event] = []

    # ---- registration (decorators) ----

    def on_startup(self) -> Callable[[Handler], Handler]:
        """``handler(state)`` before the first poll."""
        return self._register(self._startup)

    def on_shutdown(self) -> Callable[[Handler], Handler]:
        """``handler(state)`` once stopped (drain, collect, close)."""
        return self._register(self._shutdown)

    def on_(self, event_name: str) -> Callable[[Handler], Handler]:
        """``handler(state, event)`` for each ``event_name`` event of the followed contract."""
        return self._register(self._events.setdefault(event_name, []))

    def on_block(self) -> Callable[[Handler], Handler]:
        """``handler(state, height)`` once per new chain head, after that head's events."""
        return self._register(self._blocks)

    def on_tick(self) -> Callable[[Handler], Handler]:
        """``handler(state)`` once per poll, after the events and blocks."""
        return self._register(self._ticks)

    @staticmethod
    def _register(handlers: list[Handler]) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            handlers.append(handler)
            return handler

        return decorate

    # ---- running ----

    def run(self, state, contract, cursor, **options) -> None:
        """Serves ``state`` until SIGTERM or SIGINT (see :meth:`serve`)."""
        asyncio.run(self.serve(state, contract, cursor, **options))

    def stop(self) -> None:
        """Stops every state this bot serves (each drains through the shutdown handlers)."""
        for stop in self._stops:
            stop.set()

    async def serve(
        self,
        state,
        contract,
        cursor,
        *,
        stop: asyncio.Event | None = None,
        nudge_local_pool: bool = False,
        max_seconds: float | None = None,
        monitor: AgentMonitor | None = None,
    ) -> None:
        """Startup handlers, then polls until stopped (or ``max_seconds``), then the shutdown
        handlers. Without ``stop``, SIGTERM and SIGINT stop it (main thread only); several states
        can be served in one event loop, each with its own ``stop`` event. ``monitor`` is told what
        each poll saw and serves ``/healthz`` and ``/metrics`` (from before the startup handlers:
        a probe sees a starting agent) until the shutdown handlers are done."""
        from ape import networks

        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
        stop = stop or asyncio.Event()
        self._stops.append(stop)
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal, signum, stop)
        provider = networks.provider
        nudger = _PoolNudger(provider, nudge_local_pool)
        abis = [getattr(contract, name).abi for name in self._events]
        topics = ["0x" + keccak(text=abi.selector).hex() for abi in abis]  # any of the handled events
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        monitor = monitor or AgentMonitor(self.name)
        await monitor.start()
        try:
            for handler in self._startup:
                await _call(handler, state)
            logger.info(
                "%s listening for %s from block %d",
                self.name,
                ", ".join(self._events) or "new blocks",
                cursor.cursor + 1,
            )
            while not stop.is_set():
                try:
                    await self._poll(state, provider, contract.address, abis, topics, cursor, monitor)
                    for handler in self._ticks:
                        await _call(handler, state)
                    nudger.check()
                    monitor.poll_done()
                except Exception as error:  # noqa: BLE001 - an RPC hiccup must not stop an agent
                    monitor.poll_failed(error)
                    # The cursor did not move: the same blocks are read again (handlers are idempotent).
                    logger.warning("%s: a poll failed (%s: %s); retrying", self.name, type(error).__name__, error)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            self._stops.remove(stop)
            try:
                for handler in self._shutdown:
                    await _call(handler, state)
            finally:
                await monitor.stop()

    async def _poll(
        self, state, provider, address: str, abis: list, topics: list[str], cursor, monitor: AgentMonitor
    ) -> None:
        """Handles the events of the blocks after the cursor, then the new head, then moves the cursor."""
        from ape.types import LogFilter

        try:
            head = int(provider.make_request("eth_blockNumber", []), 16)
        except Exception as error:
            monitor.chain_unreachable(error)
            raise
        monitor.saw_head(head)
        start = cursor.cursor
        monitor.handled_through(start)
        if head <= start:
            return
        if abis:
            log_filter = LogFilter(
                addresses=[address], events=abis, topic_filter=[topics], start_block=start + 1, stop_block=head
            )
            for event in provider.get_contract_logs(log_filter):
                for handler in self._events[event.event_name]:
                    await _call(handler, state, event)
        for handler in self._blocks:
            await _call(handler, state, head)
        cursor.cursor = head
        monitor.handled_through(head)

    def _on_signal(self, signum: int, stop: asyncio.Event) -> None:
        logger.info("%s: %s received: finishing in-flight work, then exiting", self.name, signal.Signals(signum).name)
        stop.set()


async def _call(handler: Handler, *args) -> None:
    result = handler(*args)
    if inspect.isawaitable(result):
        await result
