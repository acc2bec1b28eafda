"""``joynet.EdgeNode``: an edge node operator's agent, from assignment on chain to a paid result.

    node = EdgeNode(account, models=["digits", "minilm"], capacity=4, journal="edge.sqlite")
    await node.join()                 # register and stake when needed, serve the models, warm up
    await node.reconcile()            # resume the journal's unfinished jobs (after a restart)
    await node.on_request(event)      # an InferenceRequested event: journal it, serve it if ours
    await node.drain()                # finish in-flight jobs, collect fees, close

``scripts/edge_agent.py`` wires these to chain events (``ape run edge_agent``). For each request
assigned to it the node fetches the input document (``joynet.edge.inputs``: every block verified,
size-limited), runs it with :class:`joynet.InferenceNode` (schema check, the model loaded from the
store by its on-chain metadataURI), checks the request's inputCommitment against the document,
proves ZK models with :class:`joynet.ZKProver`, publishes the output document to the store,
journals the result and only then submits it. An input it cannot serve is declined with a reason
the requester can read (the escrow goes back at once); the node keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Sequence

from eth_utils import keccak, to_checksum_address

from joynet.edge.inputs import document_commitment, encode_document, fetch_input
from joynet.edge.journal import (
    ASSIGNED, CLOSED, COMPUTED, DECLINED, DECLINING, EXPIRED, FAILED, RUNNING, SUBMITTED, UNFINISHED, Job,
    JobJournal,
)
from joynet.inference import DEFAULT_MAX_INPUT_BYTES, InferenceError, InferenceNode, InvalidInputError
from joynet.marketplace import MarketplaceError, ModelMarketplace, Request, RequestStatus, model_key
from joynet.model_package import IPFS_SCHEME

logger = logging.getLogger("joynet.edge")

MAX_REASON_CHARS = 300  # a decline reason is stored in an event: readable, not a stack trace
# One input per framework to run (and, for circuits, prove) once at start: the first request
# then costs what every later one does.
WARM_UP_INPUTS = {
    "joynet-int-mlp": {"pixels": [0] * 64, "salt": 1},
    "sentence-transformers": {"text": "warm up"},
}


class EdgeNodeError(RuntimeError):
    """A configuration the node cannot start with (unknown model, too little JOY...)."""


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _topic(value: int | str) -> str:
    if isinstance(value, str):  # an address
        return "0x" + value.lower().removeprefix("0x").rjust(64, "0")
    return "0x" + value.to_bytes(32, "big").hex()


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
    ):
        """``account``: the operator's Ape account; ``models``: names of models registered on
        chain to serve; ``capacity``: concurrent tasks declared on chain; ``stake``: JOY wei to
        hold staked (default: minStake + capacity task bonds); ``store``: the ModelStore inputs
        and models come from (default ``open_store()``); ``withdraw_threshold``: earnings (JOY wei)
        from which a settlement triggers a withdrawal (0: after every settlement)."""
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
        self.inference = inference or InferenceNode(store=self.store, marketplace=self.market, cache_dir=cache_dir,
                                                    max_input_bytes=max_input_bytes)
        self.journal = journal if isinstance(journal, JobJournal) else JobJournal(journal)
        self.models = {model_key(name): name for name in models}
        self.capacity = capacity
        self.stake = stake
        self.withdraw_threshold = withdraw_threshold
        self.warm_up = warm_up
        self._slots = asyncio.Semaphore(capacity)
        self._tx_lock = asyncio.Lock()  # one nonce sequence: the node's transactions go one by one
        self._tasks: set[asyncio.Task] = set()
        self._running: set[int] = set()  # request ids of the tasks in flight
        self.ready = asyncio.Event()  # set once join() is done: models loaded, node eligible

    # ---- chain access ----

    @property
    def provider(self):
        from ape import networks

        return networks.provider

    def chain_time(self) -> int:
        return int(self.provider.make_request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def _my_event_tx(self, job: Job, event: str) -> str | None:
        """The transaction of this node's ResultSubmitted / RequestDeclined for the job, if any."""
        selector = getattr(self.contract, event).abi.selector
        logs = self.provider.make_request("eth_getLogs", [{
            "address": self.contract.address, "fromBlock": hex(job.block), "toBlock": "latest",
            "topics": ["0x" + keccak(text=selector).hex(), _topic(job.request_id), _topic(self.address)],
        }])
        return logs[0]["transactionHash"] if logs else None

    async def _transact(self, method, *args):
        async with self._tx_lock:
            return await asyncio.to_thread(method, *args, sender=self.account)

    # ---- joining the network ----

    async def join(self) -> None:
        """Binds the journal, registers and stakes when needed, serves the configured models
        within the capacity, and loads (warms up) each model."""
        from ape import chain

        self.journal.bind(self.address, self.contract.address, chain.chain_id)
        for name in self.models.values():
            try:
                self.market.get_model(name)
            except MarketplaceError as error:
                raise EdgeNodeError(f"cannot serve {name!r}: {error}") from None
        if self.journal.cursor is None:
            # A new journal: assignments can only be as old as the node's registration, which
            # the deployment's first block precedes.
            self.journal.cursor = max(self.market.start_block - 1, 0)
        await self._ensure_registered()
        for name in self.models.values():
            await self._load(name)
        self.ready.set()

    async def _ensure_registered(self) -> None:
        info = self.coordinator.nodeInfo(self.address)
        target = self.stake or self.coordinator.minStake() + self.capacity * self.coordinator.taskBond()
        keys = list(self.models)
        if not info.registered:
            await self._approve(target)
            await self._transact(self.coordinator.registerNode, target, self.capacity, keys)
            logger.info("registered node %s: stake %s JOY, capacity %d, models %s", self.address, format_joy(target),
                        self.capacity, ", ".join(self.models.values()))
            return
        if info.stake < target:
            await self._approve(target - info.stake)
            await self._transact(self.coordinator.addStake, target - info.stake)
            logger.info("added %s JOY of stake (now %s JOY)", format_joy(target - info.stake), format_joy(target))
        served = {bytes(key) for key in self.coordinator.modelsOf(self.address)}
        for key in keys:
            if key not in served:
                await self._transact(self.coordinator.serveModel, key)
                logger.info("now serving %s", self.models[key])
        if info.capacity != self.capacity:
            await self._transact(self.coordinator.setCapacity, self.capacity)
            logger.info("capacity set to %d (was %d)", self.capacity, info.capacity)
        if not self.coordinator.nodeInfo(self.address).active:
            await self._transact(self.coordinator.reactivate)
            logger.info("node reactivated")
        logger.info("node %s registered: stake %s JOY, capacity %d", self.address,
                    format_joy(self.coordinator.nodeInfo(self.address).stake), self.capacity)

    async def _approve(self, amount: int) -> None:
        balance = self.market.token.balanceOf(self.address)
        if balance < amount:
            raise EdgeNodeError(f"{self.address} holds {format_joy(balance)} JOY; staking needs {format_joy(amount)} JOY")
        await self._transact(self.market.token.approve, self.coordinator, amount)

    async def _load(self, name: str) -> None:
        started = time.perf_counter()
        loaded = await self.inference.load_model(name)
        warm_input = WARM_UP_INPUTS.get(loaded.package.framework) if self.warm_up else None
        if warm_input is not None:
            proving = bool(loaded.verification.get("circuitId"))
            await self.inference.execute_inference(name, warm_input, request_id=0 if proving else None,
                                                   node=self.address if proving else None)
        logger.info("model %s ready (%s, %s) in %.1f s", name, loaded.package.framework, loaded.cid,
                    time.perf_counter() - started)

    # ---- requests ----

    async def on_request(self, event) -> None:
        """Handles an InferenceRequested event: journals it and starts serving it when this node
        is among the assigned ones."""
        request = Request.from_event(event)
        if self.address not in {to_checksum_address(node) for node in request.nodes}:
            return
        name = self.models.get(request.modelId, "0x" + request.modelId.hex())
        if not self.journal.add(request, name, event.inputURI, event.block_number):
            # Seen before: the blocks after the cursor are replayed after a restart or a failed poll.
            job = self.journal.get(request.id)
            if job.state in UNFINISHED and request.id not in self._running:
                self._spawn(job)
            return
        if self.market.status(request.id) is not RequestStatus.Open:
            self.journal.update(request.id, CLOSED, reason="closed before this node saw it")
            return
        logger.info("request %d: assigned (%s, quorum %d, deadline in %d s)", request.id, name, request.quorum,
                    request.deadline - self.chain_time())
        self._spawn(self.journal.get(request.id))

    def on_outcome(self, request_id: int, outcome: str) -> bool:
        """Records how the chain closed a request (settled / refunded); True if it was ours."""
        if self.journal.get(request_id) is None:
            return False
        self.journal.update(request_id, outcome=outcome)
        return True

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._serve(job), name=f"request-{job.request_id}")
        self._tasks.add(task)
        self._running.add(job.request_id)
        task.add_done_callback(lambda done: (self._tasks.discard(done), self._running.discard(job.request_id)))

    async def _serve(self, job: Job) -> None:
        async with self._slots:
            try:
                await self._work(job)
            except Exception as error:  # noqa: BLE001 - the node's own failure: journaled, the agent goes on
                logger.exception("request %d: failed", job.request_id)
                self.journal.update(job.request_id, FAILED, reason=_short(f"{type(error).__name__}: {error}"))

    async def _work(self, job: Job) -> None:
        rid = job.request_id
        if job.state in (ASSIGNED, RUNNING):
            self.journal.update(rid, RUNNING)
            try:
                commitment, output_uri, proof, summary = await self._compute(job)
            except InferenceError as error:
                reason = _short(str(error))
                logger.warning("request %d: declining: %s", rid, reason)
                self.journal.update(rid, DECLINING, reason=reason)
            else:
                # Journaled before the transaction: a restart resubmits exactly this, or finds it on chain.
                self.journal.update(rid, COMPUTED, output_commitment="0x" + commitment.hex(), output_uri=output_uri,
                                    proof="0x" + proof.hex())
                logger.info("request %d: %s", rid, summary)
            job = self.journal.get(rid)
        if job.state == COMPUTED:
            await self._submit(job)
        elif job.state == DECLINING:
            await self._decline(job)

    async def _compute(self, job: Job) -> tuple[bytes, str, bytes, str]:
        request, started = job.request, time.perf_counter()
        if request.modelId not in self.models:
            raise InvalidInputError(f"this node no longer serves model {job.model}")
        raw = await fetch_input(self.store, job.input_uri, self.inference.max_input_bytes)
        result = await self.inference.execute_inference(job.model, raw)
        committed = result.input_commitment or document_commitment(raw)
        if committed != request.inputCommitment:
            raise InvalidInputError(
                f"the input document at {job.input_uri} commits to 0x{committed.hex()}, "
                f"not to the request's inputCommitment 0x{request.inputCommitment.hex()}")
        proved = ""
        if result.verification.get("circuitId"):
            proof_started = time.perf_counter()
            result = await self.inference.execute_inference(job.model, raw, request_id=request.id, node=self.address)
            proved = f", proved in {time.perf_counter() - proof_started:.2f} s"
        document = {"requestId": request.id, "model": job.model, "output": result.output,
                    "outputCommitment": result.output_commitment_hex}
        output_uri = IPFS_SCHEME + await self.store.add_bytes(encode_document(document))
        summary = f"computed {_describe(result.output)}{proved} ({time.perf_counter() - started:.2f} s)"
        return result.output_commitment, output_uri, result.proof_calldata, summary

    def _closed_state(self, job: Job, *, look_for_own: bool) -> tuple[str, str | None] | None:
        """The final state the chain already decided for the job, or None if it is still ours to
        act on. ``look_for_own``: also look for this node's own submission or decline (after a
        restart: the transaction may have been mined just before the process died)."""
        if look_for_own:
            if tx := self._my_event_tx(job, "ResultSubmitted"):
                return SUBMITTED, tx
            if tx := self._my_event_tx(job, "RequestDeclined"):
                return DECLINED, tx
        status = self.market.status(job.request_id)
        if status is not RequestStatus.Open:
            return CLOSED, None
        if self.chain_time() >= job.request.deadline:
            return EXPIRED, None
        return None

    async def _submit(self, job: Job) -> None:
        await self._send(job, SUBMITTED, self.contract.submitResult, job.request,
                         bytes.fromhex(job.output_commitment[2:]), job.output_uri, bytes.fromhex(job.proof[2:]))

    async def _decline(self, job: Job) -> None:
        await self._send(job, DECLINED, self.contract.declineRequest, job.request, job.reason)

    async def _send(self, job: Job, done: str, method, *args) -> None:
        rid = job.request_id
        closed = self._closed_state(job, look_for_own=False)
        if closed is not None:
            self._finish(job, *closed)
            return
        try:
            receipt = await self._transact(method, *args)
        except Exception as error:  # noqa: BLE001 - a revert or an RPC failure: ask the chain what happened
            closed = self._closed_state(job, look_for_own=True)
            if closed is None:
                raise
            logger.info("request %d: the %s transaction failed (%s); the chain says %s", rid,
                        "result" if done == SUBMITTED else "decline", _short(str(error)), closed[0])
            self._finish(job, *closed)
            return
        seconds = time.time() - job.received_at
        self.journal.update(rid, done, tx_hash=receipt.txn_hash, seconds=seconds)
        logger.info("request %d: %s (tx %s, gas %s, %.2f s after the assignment)", rid,
                    "submitted" if done == SUBMITTED else "declined", receipt.txn_hash, f"{receipt.gas_used:,}", seconds)

    def _finish(self, job: Job, state: str, tx_hash: str | None) -> None:
        self.journal.update(job.request_id, state, tx_hash=tx_hash or job.tx_hash)
        if state == SUBMITTED:
            logger.info("request %d: our result is already on chain (tx %s); not submitting it again",
                        job.request_id, tx_hash)
        elif state == DECLINED:
            logger.info("request %d: our decline is already on chain (tx %s)", job.request_id, tx_hash)
        else:
            logger.info("request %d: %s; nothing to send", job.request_id,
                        "closed by the chain" if state == CLOSED else "deadline passed")

    # ---- restart ----

    async def reconcile(self) -> int:
        """Resumes the journal's unfinished jobs: a job whose submission (or decline) is already
        on chain, or whose request closed or expired, is only recorded; the others are resumed
        from where they stopped (a journaled result is sent as it is, not recomputed). Returns
        how many were resumed."""
        resumed = 0
        for job in self.journal.jobs(UNFINISHED):
            closed = self._closed_state(job, look_for_own=True)
            if closed is not None:
                self._finish(job, *closed)
                continue
            logger.info("request %d: resuming from %s", job.request_id, job.state)
            self._spawn(job)
            resumed += 1
        return resumed

    # ---- fees ----

    async def collect_fees(self, minimum: int | None = None) -> int:
        """Withdraws the node's earnings when they reach ``minimum`` (default: the threshold);
        returns the amount withdrawn."""
        minimum = self.withdraw_threshold if minimum is None else minimum
        amount = self.contract.earnings(self.address)
        if amount == 0 or amount < minimum:
            return 0
        receipt = await self._transact(self.contract.withdrawEarnings, self.address)
        self.journal.add_withdrawal(receipt.txn_hash, amount)
        logger.info("collected %s JOY of fees (tx %s)", format_joy(amount), receipt.txn_hash)
        return amount

    # ---- shutdown ----

    async def drain(self, timeout: float | None = None) -> None:
        """Finishes the in-flight jobs (SIGTERM): no new work is taken meanwhile."""
        if self._tasks:
            logger.info("draining %d in-flight job(s) before exit", len(self._tasks))
            done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                logger.warning("%s did not finish in %s s; the journal resumes it at the next start", task.get_name(),
                               timeout)
                task.cancel()

    async def close(self) -> None:
        await self.inference.close()
        self.journal.close()

    def status(self) -> dict:
        return node_status(self.market, self.address, self.journal, self.models.values())


def _describe(output: dict) -> str:
    if "class" in output:
        return f"class {output['class']}"
    if "embedding" in output:
        return f"embedding of {len(output['embedding'])} int8"
    if "embeddings" in output:
        return f"{len(output['embeddings'])} embeddings"
    return "output"


def format_joy(wei: int) -> str:
    """JOY wei as whole JOY with two decimals."""
    from joynet.deploy import JOY

    return f"{wei / JOY:,.2f}"


def node_status(market: ModelMarketplace, address: str, journal: JobJournal | None, models=()) -> dict:
    """Stake, load, jobs and earnings of a node, from the chain and (if given) its journal."""
    info = market.coordinator.nodeInfo(address)
    names = {model_key(name): name for name in models}
    served = [names.get(bytes(key), "0x" + bytes(key).hex()) for key in market.coordinator.modelsOf(address)]
    unbonding, ready_at = market.coordinator.unbondingOf(address)
    status = {
        "node": address,
        "registered": info.registered,
        "active": info.active,
        "stake": info.stake,
        "bonded": info.bonded,
        "unbonding": unbonding,
        "capacity": info.capacity,
        "active_tasks": info.activeTasks,
        "load": info.activeTasks / info.capacity if info.capacity else 0.0,
        "missed_deadlines": info.missedDeadlines,
        "models": served,
        "earnings_unwithdrawn": market.contract.earnings(address),
        "jobs": {},
        "outcomes": {},
        "earnings_withdrawn": 0,
        "recent": [],
    }
    if journal is not None:
        status["jobs"] = journal.counts()
        status["outcomes"] = journal.outcomes()
        status["earnings_withdrawn"] = journal.withdrawn()
        status["recent"] = [
            {"request": job.request_id, "model": job.model, "state": job.state, "outcome": job.outcome,
             "reason": job.reason, "seconds": job.seconds}
            for job in journal.jobs(limit=10)
        ]
    return status
