"""``joynet.EdgeNode``: an edge node operator's agent, from assignment on chain to a paid result.

    node = EdgeNode(account, models=["digits", "minilm"], capacity=4, journal="edge.sqlite")
    await node.join()                 # register and stake when needed, serve the models, warm up
    await node.reconcile()            # resume the journal's unfinished jobs (after a restart)
    await node.on_requested(event)    # InferenceRequested: assign the nodes if nobody does
    await node.on_assigned(event)     # NodesAssigned: journal the job, serve it if it is ours
    node.on_block(height)             # each new head: renew the node's lease when a third is left
    await node.drain()                # end the lease, finish in-flight jobs, collect fees, close

``agents/edge_node.py`` wires these to chain events (``ape run edge_agent``). A request is
made unassigned; from the next block anyone assigns its nodes. The requester's client assigns a
quorum request's. A single-node request is left to the node the draw names (``drawnNodes``):
that node serves it at once and its result assigns it, one transaction instead of two; the
other nodes stand by and assign it only if it is still unassigned after
``DRAWN_NODE_STANDBY_SECONDS`` (the drawn node may be down: once assigned, its silence is
slashed). A request still without nodes after a short grace is assigned by a node serving the
model. For each request assigned (or drawn) to it the node fetches the input document
(``joynet.inference.inputs``: every block verified, size-limited), runs it with
:class:`joynet.InferenceNode` (schema check, the model loaded from the store by its on-chain
metadataURI), checks the request's inputCommitment against the document, proves ZK models with
:class:`joynet.ZKProver`, publishes the output document to the store and journals the result
before sending anything. A single node then submits it. A node of a quorum journals a random
salt with it, commits to the sealed result, waits until every assigned node has committed (or
the deadline passed) and reveals it with that salt before the reveal window closes. Under a
model's tolerant policy the first node of the request, the generator, computes and submits its
result like a single node; each other node, a validator, waits for that result, re-checks it
(``InferenceNode.check_answer``: the prefill over the claimed tokens against the published
activation proof) and commits, then reveals, its vote as a quorum node does its result: the
generator's output commitment to accept it, ``REJECTED_VOTE`` to reject it. An input it
cannot serve, or a result it cannot compute before the deadline, is declined with a reason the
requester can read (the escrow goes back at once); the node keeps serving.

The coordinator draws a node only while its lease runs (``leaseBlocks`` blocks from its last
renewal), so that a node whose agent died stops getting work within a lease. The agent renews it
in the background when about a third of it is left (``LEASE_RENEW_FRACTION``), retried with a
short backoff; a start whose lease ran out (or is about to) renews it once the models are
loaded, before serving; a drain ends it first, so that no new work comes while in-flight jobs
finish.

``node_status`` reads a node's stake, load, jobs and fees; ``format_status`` writes them as the
lines of ``ape run edge_agent status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from joynet.chain.errors import TransactionPendingError, TransactionRefusedError, TransactionRevertedError
from joynet.chain.marketplace import (
    REJECTED_VOTE,
    MarketplaceError,
    ModelMarketplace,
    Request,
    RequestStatus,
    model_key,
    node_state,
    seal_result,
)
from joynet.edge.errors import EdgeNodeError
from joynet.edge.inference_node import InferenceNode, LoadedModel
from joynet.edge.journal import (
    ASSIGNED,
    CLOSED,
    COMMITTED,
    COMPUTED,
    DECLINED,
    DECLINING,
    EXPIRED,
    FAILED,
    REVEALED,
    RUNNING,
    SUBMITTED,
    UNFINISHED,
    Job,
    JobJournal,
)
from joynet.edge.metrics import EdgeMetrics
from joynet.inference import DEFAULT_MAX_INPUT_BYTES, InferenceError, InvalidInputError
from joynet.inference.inputs import document_commitment, encode_document, fetch_input
from joynet.models.package import IPFS_SCHEME

logger = logging.getLogger("joynet.edge")


class _NothingToValidate(Exception):
    """A validator's generator submitted nothing in time, or the request closed first."""


MAX_REASON_CHARS = 300  # a decline reason is stored in an event: readable, not a stack trace
# The requester's client assigns a request's nodes right after the request (by default): a node
# leaves it that long before checking, then waits its own offset within the spread, so that
# when nobody else does it, one node of the model assigns it rather than all at once.
ASSIGN_GRACE_SECONDS = 1.0
ASSIGN_SPREAD_SECONDS = 1.5
CLAIM_RETRY_SECONDS = 2.0  # a drawn job waiting for a node with room looks again at least this often
SEED_BLOCKS = 256  # assignment needs the hash of the request's block: the EVM keeps the last 256
# A single-node request's drawn node answers it unassigned; the other nodes assign it only if it
# is still unassigned this long after their grace (then the drawn node is liable for silence).
DRAWN_NODE_STANDBY_SECONDS = 10.0
# A node's transaction not mined within this is waited for outside its transaction lock (the
# chain may have stopped mining): the node's other transactions go on, and the job is never
# failed for it while its transaction can still land. Waited for in polls of PENDING_POLL_SECONDS.
RECEIPT_WAIT_SECONDS = 10.0
# While a result transaction is on its way, results that become ready within this window go out
# together in the next one: a few transactions a block, not one result each, nor a block's wait.
RESULT_BATCH_WINDOW_SECONDS = 0.5
# The journal's meta key of a fee withdrawal a shutdown left unmined.
PENDING_WITHDRAWAL = "pending_withdrawal"
# A job's transaction that reverted when mined is sent again this many times at most.
MAX_REVERTED_SENDS = 3
# Requests one assignNodesBatch of this node's assigns at most.
MAX_ASSIGNMENTS_PER_TRANSACTION = 16
PENDING_POLL_SECONDS = 2.0
JOY_WEI = 10**18  # wei per JOY (the token's 18 decimals)
# The latest block (head, time) is read again only after this: a fraction of a block interval.
LATEST_BLOCK_READ_SECONDS = 0.2
# Results of single-node requests ready together go out in one submitResults of at most this
# many (its gas grows with each; 32 stay far below a block's gas limit, proofs included).
MAX_RESULTS_PER_TRANSACTION = 32
# A failed fee withdrawal is tried again after this, doubling up to the maximum.
FEE_RETRY_SECONDS = 2.0
FEE_RETRY_MAX_SECONDS = 120.0
# Time kept before the deadline to send a decline (or a quorum commitment) and have it mined.
ANSWER_MARGIN_SECONDS = 10
DECLINE_STEP_SECONDS = 2.0  # a quorum node declines this much later than the node of the slot before
REVEAL_POLL_SECONDS = 1.0  # a quorum job waiting to reveal (or a validator, its generator) looks again this often
# A node's part in a request (``EdgeNode._role``).
SINGLE, QUORUM, GENERATOR, VALIDATOR = "single", "quorum", "generator", "validator"
SEALING_ROLES = (QUORUM, VALIDATOR)  # they commit, then reveal
MAX_OUTPUT_DOCUMENT_BYTES = 16 << 20  # a validator fetches the generator's output document up to this
REJOIN_POLL_SECONDS = 2.0  # a node waiting out the coordinator's rejoin delay looks at the head this often
# The lease is renewed once no more than this fraction of it is left: with 30-block leases,
# every ~20 blocks, leaving 10 blocks for the renewal to land (retried meanwhile).
LEASE_RENEW_FRACTION = 1 / 3
LEASE_RETRY_SECONDS = 1.0
LEASE_RETRY_MAX_SECONDS = 8.0
# A drain sends its endLease (and the assignment of what it was drawn for) and waits this long at
# most for each receipt: a transaction in the pool takes effect when mined; the drain's time is
# for the jobs.
LEASE_END_WAIT_SECONDS = 0.2
_ACTIONS = {SUBMITTED: "result", COMMITTED: "commitment", REVEALED: "reveal", DECLINED: "decline"}
_REQUEST_ABI = "(uint256,bytes32,address,uint96,bytes32,uint64,uint64,address,address[])"
# One input per framework to run (and, for circuits, prove) once at start: the first request
# then costs what every later one does.
WARM_UP_INPUTS = {
    "joynet-int-mlp": {"pixels": [0] * 64, "salt": 1},
    "sentence-transformers": {"text": "warm up"},
    "causal-lm": {"text": "warm up", "max_tokens": 1},
}


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _hex(value: str | None) -> bytes:
    """A journaled hex field as bytes: set by the step before the one that sends it."""
    if value is None:
        raise ValueError("a job field is sent before the step that sets it")
    return bytes.fromhex(value.removeprefix("0x"))


def request_digest(request: Request) -> bytes:
    """What the marketplace keeps of an open request: keccak256(abi.encode(request))."""
    return keccak(
        abi_encode(
            [_REQUEST_ABI],
            [
                (
                    request.id,
                    request.modelId,
                    request.requester,
                    request.escrow,
                    request.inputCommitment,
                    request.deadline,
                    request.seedBlock,
                    request.coordinator,
                    list(request.nodes),
                )
            ],
        )
    )


class EdgeNode:
    def __init__(
        self,
        account: Any,
        models: Sequence[str],
        *,
        journal: str | JobJournal,
        capacity: int = 4,
        stake: int | None = None,
        store: Any = None,
        marketplace: ModelMarketplace | None = None,
        inference: InferenceNode | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        withdraw_threshold: int = 0,
        cache_dir: str | None = None,
        warm_up: bool = True,
        assign_delay: float = ASSIGN_GRACE_SECONDS,
        drain_seconds: float | None = None,
        channel_seed: str | None = None,
    ):
        """``account``: the operator's Ape account; ``models``: names of models registered on
        chain to serve; ``capacity``: concurrent tasks declared on chain; ``stake``: JOY wei to
        hold staked (default: minStake + capacity task bonds); ``store``: the ModelStore inputs
        and models come from (default ``open_store()``); ``withdraw_threshold``: fees (JOY wei)
        from which a settlement triggers a withdrawal (0: after every settlement); ``assign_delay``:
        seconds left to the requester's client to assign a request before this node does;
        ``drain_seconds``: how long a shutdown waits for in-flight jobs (None: until they end);
        ``channel_seed``: the BIP-39 mnemonic of the node's channel key, needed to serve a feeless
        model (its owner's open channel: the key is bound on chain and vouches on the stream)."""
        from joynet.storage import open_store

        if not models:
            raise EdgeNodeError("an edge node serves at least one model")
        if capacity < 1:
            raise EdgeNodeError(f"capacity must be at least 1, got {capacity}")
        self.account = account
        self.address = to_checksum_address(account.address)
        self.market = marketplace or ModelMarketplace(account=account)
        self.contract = self.market.contract
        self.coordinator = self.market.coordinator
        self.store = store if store is not None else open_store()
        self.inference = inference or InferenceNode(
            store=self.store,
            marketplace=self.market,
            cache_dir=cache_dir,
            max_input_bytes=max_input_bytes,
            iota_wallet_seed=channel_seed,
        )
        self.journal = journal if isinstance(journal, JobJournal) else JobJournal(journal)
        self.models = {model_key(name): name for name in models}
        self.capacity = capacity
        self.stake = stake
        self.withdraw_threshold = withdraw_threshold
        self.warm_up = warm_up
        self.assign_delay = assign_delay
        self.drain_seconds = drain_seconds
        self._slots = asyncio.Semaphore(capacity)
        self._tx_lock = asyncio.Lock()  # the node's sends go one by one; their receipts are awaited together
        self._tasks: set[asyncio.Task] = set()
        self._running: set[int] = set()  # request ids of the tasks in flight
        self._assigners: set[asyncio.Task] = set()  # assignment attempts in flight
        self._hurry = asyncio.Event()  # set by a drain: assignment attempts stop waiting their turn
        self._assigning: set[int] = set()  # their request ids
        # Of those, the ones the events showed assigned or closed meanwhile: no read needed to drop them.
        self._seen_assigned: set[int] = set()
        self._graced: dict[int, tuple[Request, float]] = {}  # those, with when their grace ends (monotonic)
        self._backlog: dict[int, Request] = {}  # requests nobody could assign yet (no node had room)
        self._room_freed = asyncio.Event()  # a request closed: nodes may have room again
        self._requested: dict[int, Any] = {}  # InferenceRequested events of served models, until assigned
        self._loaded: dict[bytes, LoadedModel] = {}  # served models by id, until their metadata changes
        self._wakeups: dict[int, asyncio.Event] = {}  # quorum jobs waiting to reveal, validators their generator
        self._tolerant: dict[bytes, bool] = {}  # served models' policies (fixed at registration)
        # The latest block (number, timestamp), when this node first saw it, and when it last read it.
        self._clock: tuple[int, int, float, float] | None = None
        self._collector: asyncio.Task | None = None  # the queued fee withdrawal, if any
        self._ready_results: list[tuple[tuple, asyncio.Future]] = []  # results waiting for a transaction
        self._result_sender: asyncio.Task | None = None  # sends them, several at once
        self._results_in_flight = 0  # result transactions sent, receipts not read yet
        self._receipt_waits: set[asyncio.Task] = set()  # the tasks awaiting their receipts
        self._collector_backing_off = False  # it failed and waits to try again
        self._lease: tuple[int, int] | None = None  # (leaseEnd, leaseBlocks) as last read or renewed
        self._renewer: asyncio.Task | None = None  # the queued lease renewal, if any
        self._draining = False  # drain() began: the lease is ended and not renewed again
        self._told_inactive = False  # the log said the node is inactive and its lease not renewed
        self.ready = asyncio.Event()  # set once join() is done: models loaded, node eligible
        self._channel_loops: set[asyncio.Task] = set()  # one per feeless model's channel served
        self._stop_channels = asyncio.Event()  # set by a drain: the loops answer what they hold, then end
        self.metrics = EdgeMetrics(in_flight=lambda: len(self._running))  # served by the agent's monitor

    # ---- chain access ----

    @property
    def provider(self):
        from ape import networks

        return networks.provider

    def _latest_block(self, fresh: bool = False) -> tuple[int, int, float]:
        """(number, timestamp, when this node first saw it) of the latest block, read at most once
        per LATEST_BLOCK_READ_SECONDS unless ``fresh``: every event and job asks for the head or
        the time, and under load one read each was a fifth of the node's CPU. A newer block seen
        in an event or reported by the bot (``_saw_block``) has it read at the next ask."""
        clock, now = self._clock, time.monotonic()
        if not fresh and clock is not None and now - clock[3] < LATEST_BLOCK_READ_SECONDS:
            return clock[:3]
        block = self.provider.make_request("eth_getBlockByNumber", ["latest", False])
        number, stamp = int(block["number"], 16), int(block["timestamp"], 16)
        first_seen = clock[2] if clock is not None and clock[:2] == (number, stamp) else now
        self._clock = (number, stamp, first_seen, now)
        return number, stamp, first_seen

    def _saw_block(self, number: int) -> None:
        """An event or the bot showed block ``number``: a head read before it is read again."""
        clock = self._clock
        if clock is not None and number > clock[0]:
            self._clock = (*clock[:3], float("-inf"))

    def chain_time(self) -> int:
        """The chain's time now, at least: the latest block's timestamp plus the time since this
        node first saw that block. A local chain mines only with transactions, so its latest block
        may be old; the next block's timestamp is no less than this (a deadline this says has
        passed has passed for the next transaction too)."""
        _, stamp, first_seen = self._latest_block()
        return int(stamp + time.monotonic() - first_seen)

    def _head(self, fresh: bool = False) -> int:
        return self._latest_block(fresh)[0]

    def _my_event_tx(self, job: Job, event: str) -> str | None:
        """The transaction of this node's ResultSubmitted / ResultCommitted / RequestDeclined for
        the job, if any."""
        logs = getattr(self.contract, event).range(
            job.block, self._head(fresh=True) + 1, search_topics={"requestId": job.request_id, "node": self.address}
        )
        tx = next((log.transaction_hash for log in logs), None)
        return tx if tx is None or isinstance(tx, str) else "0x" + bytes(tx).hex()

    async def _transact(self, method, *args, wait: float | None = RECEIPT_WAIT_SECONDS):
        """Sends (checked and signed under the node's send lock, which keeps the node's sends in
        the order its handlers made them) and waits ``wait`` seconds at most for the receipt
        (None: the network's acceptance timeout, for joining) outside the lock: the node has
        several transactions in flight, and one the chain is slow to mine
        (TransactionPendingError) is tended by the client's transaction manager while it is
        waited for."""
        async with self._tx_lock:
            tx_hash = await self.market.send(method, *args)
        return await self.market.wait_for_receipt(tx_hash, wait)

    # ---- joining the network ----

    async def join(self) -> None:
        """Binds the journal, registers and stakes when needed, serves the configured models
        within the capacity, and loads (warms up) each model."""
        from ape import chain

        self.journal.bind(self.address, self.contract.address, chain.chain_id)
        for name in self.models.values():
            try:
                model = self.market.get_model(name)
                runtime = await self.inference.runtime_of(name)  # never stake on a model this machine cannot run
            except (MarketplaceError, InferenceError) as error:
                raise EdgeNodeError(f"cannot serve {name!r}: {error}") from None
            if model.tolerant and not hasattr(runtime, "prefill"):
                # Its validators re-check answers with a prefill (InferenceNode.check_answer).
                raise EdgeNodeError(
                    f"cannot serve {name!r}: its policy is tolerant, and its runtime ({runtime.__name__}) "
                    "cannot re-check another node's answer"
                )
        self.record_pending_withdrawal()
        if self.journal.cursor is None:
            # A new journal: assignments can only be as old as the node's registration, which
            # the deployment's first block precedes.
            self.journal.cursor = max(self.market.start_block - 1, 0)
        await self._ensure_registered()
        for name in self.models.values():
            await self._load(name)
        for key, name in self.models.items():
            stream = bytes(self.market.get_model(name).iotaStreamId)
            if stream != bytes(32):
                await self._join_channel(key, name, "0x" + stream.hex())
        self._read_lease()
        if self.lease_due(self._head(fresh=True)):
            # Registration or reactivation started a lease, which loading may have used up; a
            # restart finds the lease of its last run ended. Renewed before serving.
            await self.renew_lease()
        self.ready.set()

    async def _ensure_registered(self) -> None:
        info = self.coordinator.nodeInfo(self.address)
        target = self.stake or self.coordinator.minStake() + self.capacity * self.coordinator.taskBond()
        keys = list(self.models)
        if not info.registered:
            await self._approve(target)
            await self._transact(self.coordinator.registerNode, target, self.capacity, keys, wait=None)
            self.metrics.stake.set(target / JOY_WEI)
            logger.info(
                "registered node %s: stake %s JOY, capacity %d, models %s",
                self.address,
                format_joy(target),
                self.capacity,
                ", ".join(self.models.values()),
            )
            return
        self.metrics.stake.set(info.stake / JOY_WEI)
        if info.stake < target:
            await self._approve(target - info.stake)
            await self._transact(self.coordinator.addStake, target - info.stake, wait=None)
            logger.info("added %s JOY of stake (now %s JOY)", format_joy(target - info.stake), format_joy(target))
        served = {bytes(key) for key in self.coordinator.modelsOf(self.address)}
        if not info.active or any(key not in served for key in keys):
            await self._await_rejoin()
        for key in keys:
            if key not in served:
                await self._transact(self.coordinator.serveModel, key, wait=None)
                logger.info("now serving %s", self.models[key])
        if info.capacity != self.capacity:
            await self._transact(self.coordinator.setCapacity, self.capacity, wait=None)
            logger.info("capacity set to %d (was %d)", self.capacity, info.capacity)
        if not self.coordinator.nodeInfo(self.address).active:
            await self._transact(self.coordinator.reactivate, wait=None)
            logger.info("node reactivated")
        stake = self.coordinator.nodeInfo(self.address).stake
        self.metrics.stake.set(stake / JOY_WEI)
        logger.info("node %s registered: stake %s JOY, capacity %d", self.address, format_joy(stake), self.capacity)

    async def _await_rejoin(self) -> None:
        """Waits until the node may join eligibility sets again: the coordinator refuses a node
        that left one (stopped serving a model, deactivated, evicted) for REJOIN_DELAY blocks,
        so that leaving buys no fresh draw of pending requests."""
        rejoinable = self.coordinator.rejoinableAt(self.address)
        if self._head(fresh=True) + 1 >= rejoinable:
            return
        logger.info(
            "this node left an eligibility set recently: it may rejoin from block %d (head %d); waiting",
            rejoinable,
            self._head(fresh=True),
        )
        last_report = time.monotonic()
        while self._head(fresh=True) + 1 < rejoinable:
            await asyncio.sleep(REJOIN_POLL_SECONDS)
            if time.monotonic() - last_report >= 30:
                logger.info("waiting to rejoin: %d blocks to go", rejoinable - self._head(fresh=True) - 1)
                last_report = time.monotonic()

    async def _approve(self, amount: int) -> None:
        balance = self.market.token.balanceOf(self.address)
        if balance < amount:
            raise EdgeNodeError(
                f"{self.address} holds {format_joy(balance)} JOY; staking needs {format_joy(amount)} JOY"
            )
        await self._transact(self.market.token.approve, self.coordinator, amount, wait=None)

    async def _load(self, name: str) -> None:
        started = time.perf_counter()
        loaded = self._loaded[model_key(name)] = await self.inference.load_model(name)
        warm_input = WARM_UP_INPUTS.get(loaded.package.framework) if self.warm_up else None
        if warm_input is not None:
            proving = bool(loaded.verification.get("circuitId"))
            await self.inference.execute_inference(
                name, warm_input, request_id=0 if proving else None, node=self.address if proving else None
            )
        logger.info(
            "model %s ready (%s, %s) in %.1f s",
            name,
            loaded.package.framework,
            loaded.cid,
            time.perf_counter() - started,
        )

    # ---- feeless models: the owner's open channel, which the network's nodes serve ----

    async def _join_channel(self, key: bytes, name: str, channel_id: str) -> None:
        """Binds this node's channel key to the feeless model on chain, vouches for the node with it
        on the model's channel and starts answering the requests assigned to it there."""
        from joynet.feeless.assignment import AssignmentBook
        from joynet.feeless.claims import NODE_KEY, Bindings, ChannelClaim

        bridge, bindings = self.market.bridge(), Bindings.registered(self.market, key)
        if bridge is None or bindings is None:
            raise EdgeNodeError(f"cannot serve the feeless model {name!r}: this deployment has no feeless bridge")
        if not self.inference.iota_wallet_seed:
            raise EdgeNodeError(
                f"cannot serve the feeless model {name!r} without a channel key: give the node a channel mnemonic"
            )
        handler = self.inference.iota_handler()
        await handler.ensure_subscribed(channel_id)
        if not handler.is_open(channel_id):
            raise EdgeNodeError(
                f"the channel of {name!r} ({channel_id}) is not open: only its author serves it, not the network"
            )
        channel_key = handler.identity.public_key
        if self.market.channel_key_of(key, self.address) != channel_key:
            await self._transact(bridge.bindChannelKey, key, channel_key)
            logger.info("bound channel key 0x%s to %s", channel_key.hex()[:16], name)
        vouch = ChannelClaim(NODE_KEY, key, self.address, bindings.chain_id, bridge.address)
        if (channel_key, vouch) not in handler.claims(channel_id):
            await handler.post_claim(channel_id, vouch)
        package = self._loaded[key].package
        failover = package.failover_seconds
        loop = asyncio.create_task(
            self.inference.serve_iota(
                channel_id,
                name,
                node_address=self.address,
                book=AssignmentBook(bindings),
                failover_seconds=failover,
                stop=self._stop_channels,
                on_answer=partial(self._on_channel_answer, channel_id, name),
                requester_cap=package.max_requests_per_requester,
            ),
            name=f"channel {name}",
        )
        loop.add_done_callback(self._channel_loop_ended)
        self._channel_loops.add(loop)
        logger.info("serving feeless %s on channel %s (failover after %.1f s)", name, channel_id[:18], failover)

    def _on_channel_answer(self, channel_id: str, name: str, request, error_kind: str | None) -> None:
        self.journal.add_channel_answer(request.request_id, channel_id, name, error_kind or "served")
        logger.info(
            "feeless %s: %s request %s",
            name,
            "served" if error_kind is None else f"declined ({error_kind})",
            request.request_id[:18],
        )

    def _channel_loop_ended(self, loop: asyncio.Task) -> None:
        self._channel_loops.discard(loop)
        if not loop.cancelled() and loop.exception() is not None:
            logger.error("%s stopped: %r", loop.get_name(), loop.exception())

    # ---- assignment ----

    async def on_requested(self, event) -> None:
        """Handles an InferenceRequested event: remembers it (its input URI is needed once nodes
        are assigned) and, for a model this node serves, sees that the request gets its nodes:
        the requester's client usually assigns them at once, so the node waits a moment, checks
        the chain, and assigns them itself only if nobody has."""
        if bytes(event.modelId) not in self.models:
            return
        self._saw_block(event.block_number)
        rid = event.requestId
        self._requested[rid] = event
        for old in [r for r, e in self._requested.items() if e.block_number < event.block_number - SEED_BLOCKS]:
            del self._requested[old]
        if rid in self._assigning or self.journal.get(rid) is not None:
            return
        if self._head() - event.block_number >= SEED_BLOCKS:  # its seed block hash is gone: nobody can assign it
            return
        self._start_assigning(Request.from_event(event))

    def _assign_delay(self, request: Request, grace: bool = True) -> float:
        """The grace left to the requester's client, plus this node's own offset for the request
        (spread over the nodes of the model, so that usually one of them, not all, sends it)."""
        draw = keccak(abi_encode(["uint256", "address"], [request.id, self.address]))
        offset = int.from_bytes(draw[:4], "big") / 2**32 * ASSIGN_SPREAD_SECONDS
        return (self.assign_delay if grace else 0.0) + offset

    def _unassigned(self, request: Request) -> bool:
        """True while the request is open and still has no nodes (its digest is the unassigned one)."""
        return bytes(self.market.read(self.contract.requestDigest, request.id)) == request_digest(request)

    def _due_for_assignment(self, request: Request) -> list[Request]:
        """The request and every other one this node is about to assign whose grace has ended,
        still unassigned: one assignNodesBatch shares the base cost of a transaction among them."""
        now, head = time.monotonic(), self._head()
        due = [
            other
            for other, graced_at in self._graced.values()
            if other.id != request.id and graced_at <= now and other.seedBlock <= head
        ]
        # Bounded: when no node has room, assignNodesBatch skips every entry, and a batch of
        # hundreds (a backlog under overload) took half a block's gas to assign nothing.
        due = [other for other in due if other.id not in self._seen_assigned]
        return [request] + [other for other in due[: MAX_ASSIGNMENTS_PER_TRANSACTION - 1] if self._unassigned(other)]

    def _drawn(self, request: Request) -> list[str] | None:
        """The nodes assignNodes would assign in the next block (the request's seed is known
        there from the block after the request's), or None if it cannot say (no eligible node,
        the request closed or assigned)."""
        try:
            return [
                to_checksum_address(node)
                for node in self.market.read(self.contract.drawnNodes, request, next_block=True)
            ]
        except Exception:  # noqa: BLE001 - a revert: the assignment path says why, if it matters
            return None

    def _take_drawn(self, request: Request) -> None:
        """Journals and serves a single-node request the draw gave this node: its result will
        assign it (submitResult of the unassigned request)."""
        rid = request.id
        requested = self._requested.pop(rid, None) or self._find_requested(rid, self._head(fresh=True))
        if requested is None or not self.journal.add(
            request,
            self.models.get(request.modelId, "0x" + request.modelId.hex()),
            requested.inputURI,
            requested.block_number,
        ):
            return
        job = self.journal.existing(rid)
        logger.info(
            "request %d: drawn for this node (%s, deadline in %d s); its result assigns it",
            rid,
            job.model,
            request.deadline - self.chain_time(),
        )
        self._spawn(job)

    async def _assign(self, request: Request, delay: bool = True) -> None:
        rid = request.id
        self._graced[rid] = (request, time.monotonic() + (self.assign_delay if delay else 0.0))
        try:
            drawn = await asyncio.to_thread(self._drawn, request)
            if drawn == [self.address]:
                self._backlog.pop(rid, None)
                self._take_drawn(request)
                return
            standby = DRAWN_NODE_STANDBY_SECONDS if drawn is not None and len(drawn) == 1 else 0.0
            # Batched with another assignment once its grace (and standby) ended, before its own offset.
            self._graced[rid] = (request, time.monotonic() + (self.assign_delay if delay else 0.0) + standby)
            with contextlib.suppress(TimeoutError):  # a drain cuts the wait short
                await asyncio.wait_for(self._hurry.wait(), self._assign_delay(request, grace=delay) + standby)
            if rid in self._seen_assigned or not self._unassigned(request):
                self._backlog.pop(rid, None)
                return
            async with self._tx_lock:
                # Checked again right before sending: the requester's or another node's may just have landed.
                if not self._unassigned(request):
                    self._backlog.pop(rid, None)
                    return
                batch = self._due_for_assignment(request)
                if len(batch) == 1:
                    tx_hash = await self.market.send(self.contract.assignNodes, request)
                else:
                    tx_hash = await self.market.send(self.contract.assignNodesBatch, batch)
            receipt = await self.market.wait_for_receipt(tx_hash, RECEIPT_WAIT_SECONDS)
            assigned = {event.requestId for event in receipt.decode_logs(self.contract.NodesAssigned)}
            for assigned_id in assigned:
                self._backlog.pop(assigned_id, None)
            if len(batch) == 1:
                logger.info(
                    "request %d: assigned its nodes (tx %s, gas %s)", rid, receipt.txn_hash, f"{receipt.gas_used:,}"
                )
            else:
                logger.info(
                    "requests %s: assigned their nodes in one transaction (tx %s, gas %s)",
                    ", ".join(map(str, sorted(assigned))),
                    receipt.txn_hash,
                    f"{receipt.gas_used:,}",
                )
            if rid not in assigned:  # the batch skipped it: no node has room now
                raise EdgeNodeError(f"request {rid} was skipped by assignNodesBatch")
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - losing the race is normal; anything else is logged
            try:
                lost = not self._unassigned(request)
            except Exception:  # noqa: BLE001 - the chain is unreachable: the next event will tell
                lost = False
            if lost:
                self._backlog.pop(rid, None)
                logger.debug("request %d: assigned by someone else meanwhile", rid)
            else:
                # Typically no node has room now: tried again when a request closes.
                if rid not in self._backlog:
                    logger.warning("request %d: cannot assign its nodes yet: %s", rid, _short(str(error)))
                self._backlog[rid] = request

    def retry_assignments(self) -> None:
        """Tries again the requests nobody could assign (no node had room), now that a request
        closed and freed some; forgets those past their deadline or their seed block's hash."""
        self._room_freed.set()  # drawn jobs waiting for room (``_claim``) try again too
        if not self._backlog:
            return
        head, now = self._head(), self.chain_time()
        for rid, request in list(self._backlog.items()):
            if head - request.seedBlock >= SEED_BLOCKS or now > request.deadline:
                del self._backlog[rid]
            elif rid not in self._assigning:
                self._start_assigning(request, delay=False)

    def _start_assigning(self, request: Request, delay: bool = True) -> None:
        rid = request.id
        self._assigning.add(rid)
        task = asyncio.create_task(self._assign(request, delay), name=f"assign-{rid}")
        self._assigners.add(task)

        def assigned(done: asyncio.Task) -> None:
            self._assigners.discard(done)
            self._assigning.discard(rid)
            self._seen_assigned.discard(rid)
            self._graced.pop(rid, None)

        task.add_done_callback(assigned)

    # ---- requests ----

    async def on_assigned(self, event) -> None:
        """Handles a NodesAssigned event: journals the assigned request and starts serving it when
        this node is among its nodes."""
        rid = event.requestId
        self._saw_block(event.block_number)
        if rid in self._assigning:
            self._seen_assigned.add(rid)
        if self.address not in {to_checksum_address(node) for node in event.nodes}:
            return
        job = self.journal.get(rid)
        if job is not None:
            if not job.request.nodes:  # a drawn job another node assigned (to this one) first
                self.journal.set_request(rid, job.request.assigned(event))
                job = self.journal.existing(rid)
            # Seen before: the blocks after the cursor are replayed after a restart or a failed poll.
            if job.state in UNFINISHED and rid not in self._running:
                self._spawn(job)
            return
        requested = self._requested.pop(rid, None) or self._find_requested(rid, event.block_number)
        if requested is None:
            logger.warning("request %d: assigned to this node, but its InferenceRequested event is not found", rid)
            return
        request = Request.from_event(requested, event)
        name = self.models.get(request.modelId, "0x" + request.modelId.hex())
        self.journal.add(request, name, requested.inputURI, requested.block_number)
        if self.market.status(rid) is not RequestStatus.Open:
            self.journal.update(rid, CLOSED, reason="closed before this node saw it")
            return
        logger.info(
            "request %d: assigned (%s, quorum %d, deadline in %d s)",
            rid,
            name,
            request.quorum,
            request.deadline - self.chain_time(),
        )
        self._spawn(self.journal.existing(rid))

    def _find_requested(self, request_id: int, assigned_block: int):
        """The request's InferenceRequested event, at most SEED_BLOCKS before its assignment."""
        events = list(
            self.contract.InferenceRequested.range(
                max(assigned_block - SEED_BLOCKS, 0), assigned_block + 1, search_topics={"requestId": request_id}
            )
        )
        return events[0] if events else None

    def on_committed(self, event) -> None:
        """Handles a ResultCommitted event: wakes this node's job waiting to reveal, if any."""
        if (wake := self._wakeups.get(event.requestId)) is not None:
            wake.set()

    def on_result_submitted(self, event) -> None:
        """Handles a ResultSubmitted event: wakes this node's validation waiting for its
        generator's result, if any."""
        self.on_committed(event)

    def on_outcome(self, request_id: int, outcome: str) -> bool:
        """Records how the chain closed a request (settled / refunded); True if it was ours."""
        if request_id in self._assigning:
            self._seen_assigned.add(request_id)
        job = self.journal.get(request_id)
        if job is None:
            return False
        if job.outcome is None:  # a poll that failed half-way replays its events: counted once
            self.metrics.jobs.labels(outcome).inc()
        self.journal.update(request_id, outcome=outcome)
        if (wake := self._wakeups.get(request_id)) is not None:
            wake.set()
        return True

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._serve(job), name=f"request-{job.request_id}")
        self._tasks.add(task)
        self._running.add(job.request_id)

        def served(done: asyncio.Task) -> None:
            self._tasks.discard(done)
            self._running.discard(job.request_id)

        task.add_done_callback(served)

    async def _serve(self, job: Job) -> None:
        async with self._slots:
            try:
                await self._work(job)
            except Exception as error:  # noqa: BLE001 - the node's own failure: journaled, the agent goes on
                logger.exception("request %d: failed", job.request_id)
                self.journal.update(job.request_id, FAILED, reason=_short(f"{type(error).__name__}: {error}"))
                self.metrics.failures.inc()

    def _role(self, job: Job) -> str:
        """This node's part in the job: SINGLE, QUORUM, or under a tolerant policy GENERATOR (the
        request's first node) or VALIDATOR."""
        request = job.request
        if request.quorum <= 1:
            return SINGLE
        tolerant = self._tolerant.get(request.modelId)
        if tolerant is None:
            tolerant = self._tolerant[request.modelId] = bool(
                self.market.read(self.contract.getModel, request.modelId).tolerant
            )
        if not tolerant:
            return QUORUM
        return GENERATOR if request.nodes[0] == self.address else VALIDATOR

    async def _work(self, job: Job) -> None:
        rid, role = job.request_id, self._role(job)
        if job.state in (ASSIGNED, RUNNING):
            self.journal.update(rid, RUNNING)
            try:
                commitment, output_uri, proof, summary = await self._compute_in_time(job, role)
            except _NothingToValidate as nothing:
                logger.info("request %d: %s", rid, nothing)
                self._finish(job, *(self._closed_state(job) or (EXPIRED, None)))
                return
            except InferenceError as error:
                reason = _short(str(error))
                logger.warning("request %d: declining: %s", rid, reason)
                self.journal.update(rid, DECLINING, reason=reason)
            except Exception as error:  # noqa: BLE001 - the node's own failure: refund rather than stay silent
                logger.exception("request %d: computing failed; declining", rid)
                self.journal.update(
                    rid, DECLINING, reason=f"this node failed to compute the result ({type(error).__name__})"
                )
            else:
                # Journaled before any transaction: a restart sends exactly this (a quorum job:
                # with this salt), or finds it on chain.
                fields = {
                    "output_commitment": "0x" + commitment.hex(),
                    "output_uri": output_uri,
                    "proof": "0x" + proof.hex(),
                }
                if role in SEALING_ROLES:
                    fields["salt"] = "0x" + os.urandom(32).hex()
                self.journal.update(rid, COMPUTED, **fields)
                logger.info("request %d: %s", rid, summary)
            job = self.journal.existing(rid)
        if job.state == COMPUTED:
            try:
                await (self._commit if role in SEALING_ROLES else self._submit)(job)
            except TransactionRefusedError as refused:
                # The chain refuses the result itself while the request is still ours to answer
                # (the proof does not verify, say): a decline refunds the requester now instead
                # of a silent expiry and a slash.
                reason = _short(f"the marketplace refuses this node's result: {refused.error}")
                logger.warning("request %d: declining: %s", rid, reason)
                self.journal.update(rid, DECLINING, reason=reason)
            current = self.journal.get(rid)
            if current is None:  # a drawn job that went to another node
                return
            job = current
        if job.state == COMMITTED:
            await self._wait_until_revealable(job)
            await self._reveal(job)
        elif job.state == DECLINING:
            await self._decline(job)

    async def _compute_in_time(self, job: Job, role: str) -> tuple[bytes, str, bytes, str]:
        """_compute (a validator: _validate), given up in time to still decline (or commit)
        before the deadline (a validator: before its votes close)."""
        margin = ANSWER_MARGIN_SECONDS + self._decline_turn(job)
        budget = self._commit_deadline(job, role) - self.chain_time() - margin
        if budget <= 0:
            raise InferenceError(f"the deadline is too close: {margin:g} s are needed to answer")
        try:
            return await asyncio.wait_for((self._validate if role == VALIDATOR else self._compute)(job), budget)
        except TimeoutError:
            self.metrics.missed_deadlines.inc()
            raise InferenceError(
                f"this node could not compute the result within the {int(budget)} s left before the deadline"
            ) from None

    async def _compute(self, job: Job) -> tuple[bytes, str, bytes, str]:
        request, started = job.request, time.perf_counter()
        if request.modelId not in self.models:
            raise InvalidInputError(f"this node no longer serves model {job.model}")
        raw = await fetch_input(self.store, job.input_uri, self.inference.max_input_bytes)
        loaded = await self._model_of(job)
        result = await self.inference.execute_loaded(loaded, raw, model_id=job.model)
        committed = result.input_commitment or document_commitment(raw)
        if committed != request.inputCommitment:
            raise InvalidInputError(
                f"the input document at {job.input_uri} commits to 0x{committed.hex()}, "
                f"not to the request's inputCommitment 0x{request.inputCommitment.hex()}"
            )
        proved = ""
        if result.verification.get("circuitId"):
            proof_started = time.perf_counter()
            result = await self.inference.execute_loaded(
                loaded, raw, request_id=request.id, node=self.address, model_id=job.model
            )
            proof_seconds = time.perf_counter() - proof_started
            self.metrics.proof_seconds.observe(proof_seconds)
            proved = f", proved in {proof_seconds:.2f} s"
        document = {
            "requestId": request.id,
            "model": job.model,
            "output": result.output,
            "outputCommitment": result.output_commitment_hex,
        }
        if isinstance(proof := result.extra.get("activationProof"), bytes):
            # A language model's answer: what validators re-check by a prefill (joynet.inference.toploc).
            document["activationProof"] = "0x" + proof.hex()
        output_uri = IPFS_SCHEME + await self.store.add_bytes(encode_document(document))
        summary = f"computed {_describe(result.output)}{proved} ({time.perf_counter() - started:.2f} s)"
        return result.output_commitment, output_uri, result.proof_calldata, summary

    async def _validate(self, job: Job) -> tuple[bytes, str, bytes, str]:
        """A validator's vote on its generator's result, as (vote, the generator's output URI,
        no proof, a summary): waits for the result, fetches the input and the output document,
        and re-checks the answer. The vote is the generator's output commitment to accept it,
        REJECTED_VOTE to reject it."""
        request, started = job.request, time.perf_counter()
        if request.modelId not in self.models:
            raise InvalidInputError(f"this node no longer serves model {job.model}")
        generated, output_uri = await self._generated(job)
        raw = await fetch_input(self.store, job.input_uri, self.inference.max_input_bytes)
        loaded = await self._model_of(job)
        committed = document_commitment(raw)
        if committed != request.inputCommitment:
            # The generator should have declined it: no answer to this request is right.
            return REJECTED_VOTE, output_uri, b"", "rejected: the input document is not the request's"
        try:
            document = json.loads(await fetch_input(self.store, output_uri, MAX_OUTPUT_DOCUMENT_BYTES))
        except (InvalidInputError, ValueError) as error:
            # What the requester cannot read is no answer either.
            return REJECTED_VOTE, output_uri, b"", _short(f"rejected: the generator's output document: {error}")
        verdict = await self.inference.check_answer_loaded(loaded, raw, document, generated)
        seconds = time.perf_counter() - started
        if verdict.accepted:
            return generated, output_uri, b"", f"accepted the generator's answer ({seconds:.2f} s)"
        return REJECTED_VOTE, output_uri, b"", _short(f"rejected the generator's answer: {'; '.join(verdict.reasons)}")

    async def _generated(self, job: Job) -> tuple[bytes, str]:
        """The generator's output commitment and output URI, once it has submitted them (waiting
        for its ResultSubmitted, or polling); _NothingToValidate once the deadline passed without,
        or the request closed."""
        rid, request = job.request_id, job.request

        def submitted() -> bool:
            if self.market.read(self.contract.submittedMask, rid) & 1:
                return True
            if self.market.status(rid) is not RequestStatus.Open:
                raise _NothingToValidate("closed before its generator submitted a result")
            if self.chain_time() > request.deadline:
                raise _NothingToValidate("its generator submitted no result in time: nothing to validate")
            return False

        await self._until(rid, submitted)
        generated = bytes(self.market.read(self.contract.resultOf, rid, 0))
        events = self.contract.ResultSubmitted.range(
            job.block, self._head(fresh=True) + 1, search_topics={"requestId": rid, "node": request.nodes[0]}
        )
        for event in events:
            return generated, event.outputURI
        raise EdgeNodeError(f"request {rid}: the generator's ResultSubmitted event is not found")

    async def _model_of(self, job: Job) -> LoadedModel:
        """The job's model, as the registry's metadata names it: read from the chain once, then
        kept until a ModelMetadataUpdated event (``on_metadata_updated``)."""
        loaded = self._loaded.get(job.request.modelId)
        if loaded is None:
            loaded = await self.inference.load_model(job.model)
            self._loaded[job.request.modelId] = loaded
        return loaded

    def on_metadata_updated(self, event) -> None:
        """Handles a ModelMetadataUpdated event: the model's next job reads its metadata again."""
        self._loaded.pop(bytes(event.modelId), None)

    # ---- what the chain says ----

    def _own_step(self, job: Job) -> tuple[str, str] | None:
        """This node's latest step for the job found on chain, as (state, tx hash): its decline,
        its result (single node: submitted; quorum: revealed) or its sealed result (committed).
        After a restart the last transaction may have been mined just before the process died."""
        if tx := self._my_event_tx(job, "RequestDeclined"):
            return DECLINED, tx
        role = self._role(job)
        if tx := self._my_event_tx(job, "ResultSubmitted"):
            return (REVEALED if role in SEALING_ROLES else SUBMITTED), tx
        if role in SEALING_ROLES and (tx := self._my_event_tx(job, "ResultCommitted")):
            return COMMITTED, tx
        return None

    def _closed_state(self, job: Job) -> tuple[str, None] | None:
        """CLOSED if the chain closed the request, EXPIRED if the time for the job's next step
        has passed (a reveal: the reveal window after the deadline), else None."""
        if self.market.status(job.request_id) is not RequestStatus.Open:
            return CLOSED, None
        role = self._role(job)
        limit = self._commit_deadline(job, role)
        if job.state == COMMITTED:
            limit += self._reveal_window()
        if self.chain_time() > limit:
            return EXPIRED, None
        return None

    # ---- transactions ----

    async def _submit(self, job: Job) -> None:
        def send(job: Job):
            return self._send(
                job,
                SUBMITTED,
                self.contract.submitResult,
                job.request,
                _hex(job.output_commitment),
                job.output_uri,
                _hex(job.proof),
            )

        if not job.request.nodes:  # drawn, not assigned: the result assigns it
            try:
                await send(job)
                return
            except Exception as refused:  # noqa: BLE001 - dry run or send refused: _claim reads the chain
                # The draw can move between the dry run and the send (another request took the
                # node's room): then the send itself reverts, which says no more than the dry run.
                reason = refused.error if isinstance(refused, TransactionRefusedError) else _short(str(refused))
                logger.info(
                    "request %d: the result cannot assign the request (%s); assigning it first",
                    job.request_id,
                    reason,
                )
            claimed = await self._claim(job)
            if claimed is None:
                return
            job = claimed
        try:
            await send(job)
        except TransactionRefusedError as refused:
            if refused.error not in ("ModelMarketplaceRequestMismatch", "ModelMarketplaceNotAssigned"):
                raise
            # The request on chain is not the one journaled (assigned meanwhile, by a peer after
            # the standby or by this node's own drain): read it back, and answer it if it is ours.
            assigned = self.market.get_request(job.request_id)
            if self.address not in assigned.nodes:
                logger.info("request %d: assigned to %s, not this node; dropped", job.request_id, assigned.nodes)
                self.journal.forget(job.request_id)
                return
            self.journal.set_request(job.request_id, assigned)
            await send(self.journal.existing(job.request_id))

    async def _claim(self, job: Job) -> Job | None:
        """A drawn job's request, assigned: by this node now if nobody has (the loads may have
        moved the draw since, or another node assigned it meanwhile). When no node has room for
        it yet, tries again whenever a request closes (or every few seconds) until its deadline.
        Returns the job as assigned to this node; None when the chain closed the request
        (journaled) or assigned it to another node (the job is forgotten: this node never held it)."""
        rid, request = job.request_id, job.request
        waiting = False
        while self._unassigned(request):
            try:
                await self._transact(self.contract.assignNodes, request)
                break
            except Exception as error:  # noqa: BLE001 - someone may have assigned it first: read the chain
                logger.debug("request %d: assignNodes failed: %s", rid, _short(str(error)))
            if not self._unassigned(request):
                break
            if self.chain_time() > request.deadline or self._head() - request.seedBlock >= SEED_BLOCKS:
                raise EdgeNodeError(f"request {rid} could not be assigned before its deadline")
            if not waiting:
                logger.info("request %d: no node has room for it yet; assigning it when a request closes", rid)
                waiting = True
            self._room_freed.clear()
            try:
                await asyncio.wait_for(self._room_freed.wait(), CLAIM_RETRY_SECONDS)
            except TimeoutError:
                pass
        if self.market.status(rid) is not RequestStatus.Open:
            self._finish(job, CLOSED, None)
            return None
        assigned = self.market.get_request(rid)
        if self.address not in assigned.nodes:
            logger.info(
                "request %d: assigned to %s, not this node (the draw moved with the loads); dropped",
                rid,
                ", ".join(assigned.nodes),
            )
            self.journal.forget(rid)
            return None
        self.journal.set_request(rid, assigned)
        return self.journal.get(rid)

    async def _commit(self, job: Job) -> None:
        sealed = seal_result(job.request_id, self.address, _hex(job.output_commitment), _hex(job.salt))
        await self._send(job, COMMITTED, self.contract.commitResult, job.request, sealed)

    def _reveal_window(self) -> int:
        return int(self.market.read(self.contract.revealWindow))

    def _commit_deadline(self, job: Job, role: str) -> int:
        """The last moment this node may send its answer (a validator: its sealed vote, which
        the chain takes until revealWindow after the deadline); the reveals close a revealWindow later."""
        return job.request.deadline + (self._reveal_window() if role == VALIDATOR else 0)

    async def _wait_until_revealable(self, job: Job) -> None:
        """Waits until every assigned node has committed, or the commitments closed (then the
        reveals are open to those who committed), or the request closed."""
        rid, request = job.request_id, job.request
        commit_deadline = self._commit_deadline(job, self._role(job))
        everyone = (1 << request.quorum) - 1
        logged = False

        def revealable() -> bool:
            nonlocal logged
            if self.market.status(rid) is not RequestStatus.Open:
                return True
            if (
                self.market.read(self.contract.submittedMask, rid) & everyone == everyone
                or self.chain_time() > commit_deadline
            ):
                return True
            if not logged:
                logger.info(
                    "request %d: waiting for the other nodes' commitments (or their end, in %d s) to reveal",
                    rid,
                    commit_deadline - self.chain_time(),
                )
                logged = True
            return False

        await self._until(rid, revealable)

    async def _until(self, rid: int, ready) -> None:
        """Waits until ``ready()`` (which may raise to give up), asked again at each event about
        request ``rid`` that wakes its job (``on_committed``, ``on_result_submitted``,
        ``on_outcome``) and at least every REVEAL_POLL_SECONDS."""
        wake = self._wakeups.setdefault(rid, asyncio.Event())
        try:
            while True:
                wake.clear()
                if ready():
                    return
                try:
                    await asyncio.wait_for(wake.wait(), REVEAL_POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            self._wakeups.pop(rid, None)

    async def _reveal(self, job: Job) -> None:
        await self._send(
            job,
            REVEALED,
            self.contract.revealResult,
            job.request,
            _hex(job.output_commitment),
            _hex(job.salt),
            job.output_uri,
            _hex(job.proof),
        )

    def _decline_turn(self, job: Job) -> float:
        nodes = job.request.nodes
        return nodes.index(self.address) * DECLINE_STEP_SECONDS if len(nodes) > 1 and self.address in nodes else 0.0

    async def _decline(self, job: Job) -> None:
        if not job.request.nodes:  # drawn, not assigned: only an assigned node may decline
            claimed = await self._claim(job)
            if claimed is None:
                return
            job = claimed
        if job.request.quorum > 1:
            # The nodes of a quorum usually refuse a bad input together, and the first decline
            # closes the request: each waits its turn (its slot), so that the others see it
            # closed instead of sending a decline that would revert.
            await asyncio.sleep(self._decline_turn(job))
        if (
            job.request.quorum > 1
            and self.market.status(job.request_id) is RequestStatus.Open
            and self.market.read(self.contract.submittedMask, job.request_id) != 0
        ):
            # The chain refuses a decline once a node has committed: the request goes on without us.
            logger.warning(
                "request %d: cannot decline (another node already committed): %s", job.request_id, job.reason
            )
            self.journal.update(
                job.request_id, FAILED, reason=_short(f"not declined, a node had committed: {job.reason}")
            )
            self.metrics.failures.inc()
            return
        await self._send(job, DECLINED, self.contract.declineRequest, job.request, job.reason)
        if (sent := self.journal.get(job.request_id)) is not None and sent.state == DECLINED:
            self.metrics.declines.inc()

    async def _send(self, job: Job, done: str, method, *args) -> None:
        rid = job.request_id
        closed = self._closed_state(job)
        if closed is not None:
            self._finish(job, *closed)
            return
        reverts = 0
        try:
            while True:
                try:
                    if done == SUBMITTED:
                        receipt = await self._submit_with_others(job, *args)
                    else:
                        receipt = await self._transact(method, *args)
                    break
                except TransactionPendingError as pending:
                    mined = await self._until_mined(job, done, pending)
                    if mined is not None:
                        receipt = mined
                        break
                    closed = self._closed_state(job)  # the request closed meanwhile
                    if closed is not None:
                        self._finish(job, *closed)
                        return
                except TransactionRevertedError as reverted:
                    # Mined and reverted: another transaction got in between its dry run and its
                    # block (a peer's assignment of one entry of a batch, say). The job is not
                    # lost for it: the chain is asked, and the result sent again if still due
                    # (its dry run then refuses it if it can no longer land).
                    own = self._own_step(job)
                    outcome = own if own is not None and own[0] == done else self._closed_state(job)
                    if outcome is not None or reverts >= MAX_REVERTED_SENDS:
                        raise
                    reverts += 1
                    logger.info("request %d: %s; sending it again", rid, _short(str(reverted)))
        except Exception as error:  # noqa: BLE001 - a revert or an RPC failure: ask the chain what happened
            own = self._own_step(job)
            outcome = own if own is not None and own[0] == done else self._closed_state(job)
            if outcome is None:
                raise
            logger.info(
                "request %d: the %s transaction failed (%s); the chain says %s",
                rid,
                _ACTIONS[done],
                _short(str(error)),
                outcome[0],
            )
            self._finish(job, *outcome)
            return
        fields = {"tx_hash": receipt.txn_hash}
        if done != COMMITTED:
            fields["seconds"] = time.time() - job.received_at
        self.journal.update(rid, done, **fields)
        logger.info(
            "request %d: %s (tx %s, gas %s%s)",
            rid,
            done,
            receipt.txn_hash,
            f"{receipt.gas_used:,}",
            f", {fields['seconds']:.2f} s after the assignment" if "seconds" in fields else "",
        )

    async def _until_mined(self, job: Job, done: str, pending: TransactionPendingError):
        """Waits for a sent transaction the chain has not mined yet (it may have stopped
        mining; the client's transaction manager broadcasts it again if the pool drops it and
        raises its fees if it is priced out): its receipt; None when the request closed or the
        time for this step passed meanwhile. Never a failure while the transaction can still land."""
        rid, tx_hash = job.request_id, pending.tx_hash
        logger.warning(
            "request %d: the %s transaction %s is not mined yet; waiting for it", rid, _ACTIONS[done], tx_hash
        )
        receipt = await self._mined(tx_hash, give_up=lambda: self._closed_state(job) is not None)
        if receipt is not None:
            logger.info("request %d: transaction %s mined after all", rid, tx_hash)
        return receipt

    async def _mined(self, tx_hash: str, give_up=None):
        """The receipt of a sent transaction, waited for while the transaction manager tends
        it; None once ``give_up()`` says to stop waiting (after one last look: the transaction
        may be what made it so)."""
        while True:
            try:
                return await self.market.wait_for_receipt(tx_hash, PENDING_POLL_SECONDS)
            except TransactionPendingError:
                pass
            if give_up is not None and give_up():
                try:
                    return await self.market.wait_for_receipt(tx_hash, PENDING_POLL_SECONDS)
                except TransactionPendingError:
                    return None

    async def _submit_with_others(self, job: Job, *args):
        """Sends the job's result (``args``: submitResult's) together with the results that
        became ready while the node's previous transaction was under way: one submitResults
        for all of them (at most MAX_RESULTS_PER_TRANSACTION), so that a node's throughput is
        not one result per block. Returns the receipt that carries this job's result. When the
        batch is refused (one entry's check fails: it is all or nothing), each result is sent
        alone, and gets its own answer."""
        ready = asyncio.get_running_loop().create_future()
        self._ready_results.append((args, ready))
        if self._result_sender is None or self._result_sender.done():
            self._result_sender = asyncio.create_task(self._send_ready_results(), name="submit-results")
        return await ready

    async def _send_ready_results(self) -> None:
        while self._ready_results:
            if self._results_in_flight:
                # A result transaction of ours is on its way: what becomes ready within the
                # window goes with the next one (its own transaction, not the next block).
                await asyncio.sleep(RESULT_BATCH_WINDOW_SECONDS)
            batch = self._ready_results[:MAX_RESULTS_PER_TRANSACTION]
            del self._ready_results[: len(batch)]
            if len(batch) > 1:
                try:
                    await self._submit_results(batch)
                    continue
                except TransactionRefusedError as refused:
                    # All or nothing: one entry refused (another node took its request meanwhile,
                    # say) refuses the batch. Each entry is dry-run alone (nothing sent), and the
                    # others go together without the refused ones, which get their refusal.
                    batch = await self._without_refused(batch, refused)
                except Exception as error:  # noqa: BLE001 - the RPC: each job's _send reads the chain
                    _answer_all(batch, error)
                    continue
                if len(batch) > 1:
                    try:
                        await self._submit_results(batch)
                        continue
                    except TransactionRefusedError:
                        pass  # refused again (the chain moved on meanwhile): each alone, below
                    except Exception as error:  # noqa: BLE001 - the RPC: each job's _send reads the chain
                        _answer_all(batch, error)
                        continue
            # One by one, each with its own answer: a refusal is never another entry's.
            for entry in batch:
                try:
                    await self._submit_results([entry])
                except Exception as error:  # noqa: BLE001 - the job's own _send reads the chain about it
                    _answer(entry[1], error=error)

    async def _submit_results(self, batch: list[tuple[tuple, asyncio.Future]]) -> None:
        """Sends ``batch``'s results (one submitResult, or one submitResults for several) and
        leaves its receipt to a task of its own, which answers every entry: the next results go
        out without waiting for this block. A refusal (dry run) raises here, nothing sent."""
        if len(batch) == 1:
            method, args = self.contract.submitResult, list(batch[0][0])
        else:
            method, args = self.contract.submitResults, [list(c) for c in zip(*(a for a, _ in batch), strict=True)]
        async with self._tx_lock:
            tx_hash = await self.market.send(method, *args)
        self._results_in_flight += 1
        task = asyncio.create_task(self._answer_when_mined(tx_hash, batch), name=f"results-{tx_hash[:10]}")
        self._receipt_waits.add(task)
        task.add_done_callback(self._receipt_waits.discard)

    async def _answer_when_mined(self, tx_hash: str, batch: list[tuple[tuple, asyncio.Future]]) -> None:
        try:
            receipt = await self.market.wait_for_receipt(tx_hash, RECEIPT_WAIT_SECONDS)
        except Exception as error:  # noqa: BLE001 - not mined in time (each job waits on), or reverted
            _answer_all(batch, error)
            return
        finally:
            self._results_in_flight -= 1
        if len(batch) > 1:
            logger.info("%d results in one transaction (tx %s)", len(batch), receipt.txn_hash)
        for _, ready in batch:
            _answer(ready, receipt)

    async def _without_refused(self, batch: list[tuple[tuple, asyncio.Future]], refused: TransactionRefusedError):
        """The entries of a refused batch that a submitResult of their own would not be refused
        for; the others are answered with their own refusal."""
        kept = []
        for args, ready in batch:
            try:
                await asyncio.to_thread(self.market.dry_run, self.contract.submitResult, *args)
                kept.append((args, ready))
            except Exception as error:  # noqa: BLE001 - its own refusal, for its job to handle
                _answer(ready, error=error)
        logger.info(
            "%d results: the batch was refused (%s); %d of them go without the %d refused",
            len(batch),
            refused.error,
            len(kept),
            len(batch) - len(kept),
        )
        return kept

    def _finish(self, job: Job, state: str, tx_hash: str | None) -> None:
        self.journal.update(job.request_id, state, tx_hash=tx_hash or job.tx_hash)
        if state in (SUBMITTED, REVEALED, COMMITTED):
            logger.info(
                "request %d: our %s is already on chain (tx %s); not sending it again",
                job.request_id,
                "sealed result" if state == COMMITTED else "result",
                tx_hash,
            )
        elif state == DECLINED:
            logger.info("request %d: our decline is already on chain (tx %s)", job.request_id, tx_hash)
        else:
            if state == EXPIRED:
                self.metrics.missed_deadlines.inc()
            logger.info(
                "request %d: %s; nothing to send",
                job.request_id,
                "closed by the chain" if state == CLOSED else "deadline passed",
            )

    # ---- restart ----

    async def reconcile(self) -> int:
        """Resumes the journal's unfinished jobs: a job whose last step (result, reveal or decline)
        is already on chain, or whose request closed or expired, is only recorded; a quorum job
        whose sealed result is on chain goes on to reveal it with the journaled salt; the others
        are resumed from where they stopped (a journaled result is sent as it is, not
        recomputed). Returns how many were resumed."""
        resumed = 0
        for job in self.journal.jobs(UNFINISHED):
            own = self._own_step(job)
            if own is not None and own[0] != COMMITTED:
                self._finish(job, *own)
                continue
            if own is not None and job.state != COMMITTED:
                self._finish(job, *own)
                job = self.journal.existing(job.request_id)
            closed = self._closed_state(job)
            if closed is not None:
                self._finish(job, *closed)
                continue
            logger.info("request %d: resuming from %s", job.request_id, job.state)
            self._spawn(job)
            resumed += 1
        return resumed

    # ---- fees ----

    async def collect_fees(self, minimum: int | None = None, wait: float | None = None) -> int:
        """Withdraws the node's balance in the marketplace (the fees credited to it) when it
        reaches ``minimum`` (default: the threshold); returns the amount withdrawn, as the
        receipt's BalanceWithdrawn event says (the balance may grow until the transaction runs).
        ``wait``: seconds to wait for the receipt at most (a shutdown's), else until it is mined.
        A withdrawal not mined by then is journaled as pending; the next start (or collection)
        records it from its receipt, so the journal's fees stay the chain's."""
        self.record_pending_withdrawal()
        if self.journal.meta(PENDING_WITHDRAWAL):
            return 0  # one is on its way: its receipt says what it withdrew
        minimum = self.withdraw_threshold if minimum is None else minimum
        balance = self.contract.balances(self.address)
        if balance == 0 or balance < minimum:
            return 0
        unmined: str | None = None
        try:
            receipt = await self._transact(
                self.contract.withdrawBalance, self.address, wait=RECEIPT_WAIT_SECONDS if wait is None else wait
            )
        except TransactionPendingError as pending:
            unmined = pending.tx_hash
        if unmined is not None:
            # Journaled as pending first: if the wait is cut short (a drain), the next start
            # records it from its receipt.
            self.journal.set_meta(PENDING_WITHDRAWAL, unmined)
            if wait is not None:
                logger.info("fee withdrawal %s sent, not mined yet: the next start records it", unmined)
                return 0
            receipt = await self._mined(unmined)
            self.journal.set_meta(PENDING_WITHDRAWAL, "")
        return self._record_withdrawal(receipt)

    def _record_withdrawal(self, receipt) -> int:
        amount = sum(event.amount for event in receipt.decode_logs(self.contract.BalanceWithdrawn))
        self.journal.add_withdrawal(receipt.txn_hash, amount)
        logger.info("collected %s JOY of fees (tx %s)", format_joy(amount), receipt.txn_hash)
        return amount

    def record_pending_withdrawal(self) -> None:
        """Journals the withdrawal a shutdown left unmined, once the chain says what became of it:
        mined (its amount, from the receipt), or unknown to the chain (dropped: nothing was
        withdrawn). One still in the pool stays pending."""
        tx_hash = self.journal.meta(PENDING_WITHDRAWAL)
        if not tx_hash:
            return
        if self.provider.make_request("eth_getTransactionReceipt", [tx_hash]) is not None:
            from ape import chain

            receipt = chain.get_receipt(tx_hash)
            if not receipt.failed:
                self._record_withdrawal(receipt)
        elif not self.market.dropped(tx_hash):
            return
        self.journal.set_meta(PENDING_WITHDRAWAL, "")

    def request_fee_collection(self) -> None:
        """Queues a fee withdrawal (``collect_fees`` at the threshold) as background work: the
        loop that reads the chain never waits on a side transaction. One runs at a time; a
        failed one is retried with a doubling delay, and said once in the log."""
        if self._collector is None or self._collector.done():
            self._collector = asyncio.create_task(self._collect_until_done(), name="collect-fees")

    async def _collect_until_done(self) -> None:
        def backing_off(waiting: bool) -> None:
            self._collector_backing_off = waiting

        await self._retried(
            self.collect_fees, "fee withdrawal", FEE_RETRY_SECONDS, FEE_RETRY_MAX_SECONDS, waiting=backing_off
        )

    async def _retried(self, attempt, what: str, delay: float, most: float, *, stop=None, waiting=None) -> None:
        """Awaits ``attempt()`` until it returns without raising, or ``stop()`` says to give up:
        after a failure it waits ``delay`` seconds, doubled each time up to ``most`` (telling
        ``waiting(True)``, then ``waiting(False)``). The first failure, and a success after it,
        are said once in the log."""
        told = False
        while stop is None or not stop():
            try:
                await attempt()
                if told:
                    logger.info("%s succeeded after retrying", what)
                return
            except Exception as error:  # noqa: BLE001 - an RPC failure or a refusal: tried again later
                if not told:
                    logger.warning("%s failed (%s); retrying in the background", what, _short(str(error)))
                    told = True
            if waiting is not None:
                waiting(True)
            try:
                await asyncio.sleep(delay)
            finally:
                if waiting is not None:
                    waiting(False)
            delay = min(delay * 2, most)

    # ---- the lease ----

    def _read_lease(self) -> tuple[int, int]:
        self._lease = (self.coordinator.leaseEnd(self.address), self.coordinator.leaseBlocks())
        return self._lease

    def lease_due(self, head: int) -> bool:
        """Whether the lease needs renewing, seen from ``head`` (the latest block): the blocks it
        still runs from the next one are at most ``LEASE_RENEW_FRACTION`` of a lease. Reads the
        chain the first time only; then the end this node last renewed to."""
        end, blocks = self._lease or self._read_lease()
        return end - (head + 1) <= blocks * LEASE_RENEW_FRACTION

    async def renew_lease(self) -> bool:
        """Renews the lease unless it no longer needs it (read from the chain first: a lease
        renewed elsewhere, or governance changed ``leaseBlocks``); returns whether it sent a
        renewal."""
        _, lease_blocks = self._read_lease()
        if not self.lease_due(self._head(fresh=True)):
            return False
        info = self.coordinator.nodeInfo(self.address)
        self.metrics.stake.set(info.stake / JOY_WEI)  # a slash shows here, at the latest a third of a lease later
        if not info.active:  # left assignment: nothing to renew
            if not self._told_inactive:
                logger.warning("the node is inactive (it left assignment): its lease is not renewed")
                self._told_inactive = True
            return False
        self._told_inactive = False
        receipt = await self._transact(self.coordinator.renewLease)
        (renewed,) = receipt.decode_logs(self.coordinator.LeaseRenewed)
        self._lease = (renewed.leaseEnd, lease_blocks)
        logger.info("lease renewed until block %d", renewed.leaseEnd)
        return True

    def on_block(self, head: int) -> None:
        """A new head: queues a lease renewal when one is due (not while draining)."""
        self._saw_block(head)
        if not self._draining and self.ready.is_set() and self.lease_due(head):
            self.request_lease_renewal()

    def request_lease_renewal(self) -> None:
        """Queues a lease renewal as background work, as a fee withdrawal is: one at a time, a
        failed one tried again after a doubling delay (at most ``LEASE_RETRY_MAX_SECONDS``: a
        lease runs out in blocks, not hours), said once in the log."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_until_done(), name="renew-lease")

    async def _renew_until_done(self) -> None:
        await self._retried(
            self.renew_lease, "lease renewal", LEASE_RETRY_SECONDS, LEASE_RETRY_MAX_SECONDS, stop=lambda: self._draining
        )

    async def _claim_drawn(self) -> None:
        """Assigns, in one transaction, the in-flight requests drawn for this node that its
        results were to assign: once its lease ends, the draw no longer gives them to it. (A
        request the draw now gives another node goes to that node, and the job is dropped.)"""
        drawn = []
        for rid in sorted(self._running):
            job = self.journal.get(rid)
            if job is not None and not job.request.nodes and self._unassigned(job.request):
                drawn.append(job.request)
        if not drawn:
            return
        try:  # sent ahead of the lease's end, which follows it in the node's nonce order
            receipt = await self._transact(self.contract.assignNodesBatch, drawn, wait=LEASE_END_WAIT_SECONDS)
        except TransactionPendingError:
            logger.info("requests %s: drawn for this node, assignment sent", ", ".join(str(r.id) for r in drawn))
            return
        assigned = sorted(event.requestId for event in receipt.decode_logs(self.contract.NodesAssigned))
        logger.info(
            "requests %s: drawn for this node, assigned before its lease ends (tx %s)",
            ", ".join(map(str, assigned)) or "none",
            receipt.txn_hash,
        )

    async def end_lease(self) -> bool:
        """Ends the lease at once if it runs (no new work is drawn for this node; no rejoin delay
        to come back); returns whether it sent the transaction. Stops renewals."""
        self._draining = True
        if self._renewer is not None and not self._renewer.done():
            self._renewer.cancel()
        end, lease_blocks = self._read_lease()
        if end <= self._head(fresh=True) + 1:
            return False  # not running in the next block already
        try:
            await self._transact(self.coordinator.endLease, wait=LEASE_END_WAIT_SECONDS)
        except TransactionRefusedError as error:  # it ran out meanwhile: nothing to end
            logger.info("lease not ended (%s)", error)
            return False
        except TransactionPendingError:
            logger.info("lease end sent (not mined yet): no new work is drawn for this node once it is")
            return True
        self._lease = (self._head(fresh=True), lease_blocks)
        logger.info("lease ended: no new work is drawn for this node")
        return True

    # ---- shutdown ----

    async def drain(self, timeout: float | None = None) -> float | None:
        """Ends the node's lease (once its assignment attempts are done and the requests it was
        drawn for are assigned), then finishes the in-flight jobs (SIGTERM), waiting at most
        ``timeout`` seconds (default: the node's ``drain_seconds``): no new work is taken
        meanwhile; what is left unfinished stays in the journal, which the next start resumes.
        Returns the seconds of ``timeout`` left (None without one), for what the shutdown does next."""
        timeout = self.drain_seconds if timeout is None else timeout
        deadline = None if timeout is None else time.monotonic() + timeout  # one bound for every wait below

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if self._tasks:  # told at once: the assigners below may take a few seconds
            logger.info("draining %d in-flight job(s) before exit", len(self._tasks))
        if self._assigners:  # told not to wait their turn (up to a standby's seconds): they act now
            self._hurry.set()
            await asyncio.wait(set(self._assigners), timeout=left())
            for task in self._assigners:  # the chain may not be mining: others assign those requests
                task.cancel()
        try:  # before the jobs are waited for, so that no new work is drawn for this node meanwhile
            await self._claim_drawn()
            await self.end_lease()
        except Exception as error:  # noqa: BLE001 - the lease then runs out by itself within leaseBlocks
            logger.warning("could not end the lease (%s); it runs out by itself", _short(str(error)))
        self._stop_channels.set()  # the feeless loops answer what they hold, then end
        if self._channel_loops:
            await asyncio.wait(set(self._channel_loops), timeout=left())
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=left())
            for task in pending:
                logger.warning(
                    "%s did not finish in %s s; the journal resumes it at the next start", task.get_name(), timeout
                )
                task.cancel()
        if self._collector is not None and not self._collector.done():
            # One being sent is let finish (its receipt is journaled; one still unmined was
            # journaled as pending); one waiting to be tried again is dropped: the shutdown
            # collects what is left.
            if not self._collector_backing_off:
                await asyncio.wait({self._collector}, timeout=left())
            self._collector.cancel()
        return left()

    async def close(self) -> None:
        for loop in self._channel_loops:
            loop.cancel()
        for task in self._receipt_waits:  # their jobs are done or journaled: the next start reads the chain
            task.cancel()
        await self.inference.close()
        self.journal.close()

    def status(self) -> dict:
        return node_status(self.market, self.address, self.journal, self.models.values())


def _answer_all(batch: list[tuple[tuple, asyncio.Future]], error: Exception) -> None:
    for _, ready in batch:
        _answer(ready, error=error)


def _answer(ready: asyncio.Future, receipt=None, error: Exception | None = None) -> None:
    """Tells a job waiting for its result's transaction (unless it stopped waiting: a drain's
    cancellation; the journal then resumes it, and finds the transaction on chain)."""
    if ready.done():
        return
    if error is not None:
        ready.set_exception(error)
    else:
        ready.set_result(receipt)


def _describe(output: dict) -> str:
    if "class" in output:
        return f"class {output['class']}"
    if "embedding" in output:
        return f"embedding of {len(output['embedding'])} int8"
    if "embeddings" in output:
        return f"{len(output['embeddings'])} embeddings"
    return "output"


def log_to_stderr(address: str) -> None:
    """The agent's own lines (its node, inference and event loop, at INFO) on stderr alone, each
    with the time and the node's address."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s edge {address[:8]} %(levelname)s %(message)s", "%H:%M:%S"))
    for name in ("joynet.edge", "joynet.inference", "joynet.bot"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(logging.INFO)
        log.propagate = False


def format_joy(wei: int) -> str:
    """JOY wei as whole JOY with two decimals."""
    return f"{wei / JOY_WEI:,.2f}"


def node_status(market: ModelMarketplace, address: str, journal: JobJournal | None, models=()) -> dict:
    """Stake, load, lease, jobs and fees of a node, from the chain (``node_state``) and (if given)
    its journal, and the runtimes installed where it runs (the frameworks of the models it can load)."""
    from joynet.inference.runtimes import registered_frameworks

    status = {
        **node_state(market, address, models),
        "runtimes": registered_frameworks(),
        "jobs": {},
        "outcomes": {},
        "fees_withdrawn": 0,
        "feeless": {},  # feeless requests answered on model channels, by outcome
        "recent": [],
    }
    if journal is not None:
        status["jobs"] = journal.counts()
        status["outcomes"] = journal.outcomes()
        status["fees_withdrawn"] = journal.withdrawn()
        status["feeless"] = journal.channel_outcomes()
        status["recent"] = [
            {
                "request": job.request_id,
                "model": job.model,
                "state": job.state,
                "outcome": job.outcome,
                "reason": job.reason,
                "seconds": job.seconds,
            }
            for job in journal.jobs(limit=10)
        ]
    return status


def format_status(status: dict) -> str:
    """A node's status (``node_status``) as the lines ``ape run edge_agent status`` prints: node,
    stake, load, lease, models, runtimes, fees, jobs, then the most recent jobs one a line."""
    activity = ("active" if status["active"] else "inactive") + ("" if status["registered"] else ", not registered")
    stake, bonded, unbonding = (format_joy(status[key]) for key in ("stake", "bonded", "unbonding"))
    load = f"{status['active_tasks']} / {status['capacity']} tasks, {status['missed_deadlines']} missed deadline(s) in a row"
    unwithdrawn, withdrawn = (format_joy(status[key]) for key in ("fees_unwithdrawn", "fees_withdrawn"))
    jobs = ", ".join(f"{count} {state}" for state, count in sorted(status["jobs"].items())) or "none"
    outcomes = ", ".join(f"{count} {name}" for name, count in sorted(status["outcomes"].items())) or "none"
    end = status["lease_end"]
    if status["lease_running"]:
        lease = f"until block {end} ({end - status['head']} blocks from the head): drawn for new work"
    else:
        lease = ("none" if end == 0 else f"ended at block {end}") + ": not drawn for new work"
    lines = [
        f"node            {status['node']}  ({activity})",
        f"stake           {stake} JOY ({bonded} bonded to open tasks, {unbonding} unbonding)",
        f"load            {load}",
        f"lease           {lease}",
        f"models          {', '.join(status['models']) or '-'}",
        f"runtimes        {', '.join(status['runtimes']) or '-'}",
        f"fees            {unwithdrawn} JOY to withdraw, {withdrawn} JOY withdrawn",
        f"jobs            {jobs} (requests {outcomes})",
    ]
    if status.get("feeless"):
        answers = ", ".join(f"{count} {outcome}" for outcome, count in sorted(status["feeless"].items()))
        lines.append(f"feeless         {answers} (requests answered on model channels)")
    for job in status["recent"]:
        took = f"{job['seconds']:.2f} s" if job["seconds"] is not None else ""
        reason = f"  {job['reason']}" if job["reason"] else ""
        lines.append(
            f"  #{job['request']:<6} {job['model']:<10} {job['state']:<10} {job['outcome'] or '':<9} {took:>8}{reason}"
        )
    return "\n".join(lines)
