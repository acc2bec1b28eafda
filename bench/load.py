"""The load benchmark (``make load``, ``ape run load``): paid requests from several requester
accounts against real ``ape run edge_agent`` processes, on anvil mining a block every
``block_seconds`` (a production-like chain: interval mining, many transactions per block).

``run_load(plan, workdir, say)`` deploys the protocol on the connected local chain, publishes and
registers MiniLM at quorum 1 (and the digits model, ZK-verified), switches anvil from automine
to interval mining, starts the agents, publishes every input, then sends the requests as fast
as the requesters' clients allow (``in_flight`` outstanding per account: several transactions in
flight from one account) and watches the chain until every request is closed. It returns

- ``settled_per_min``: requests settled per minute, first request sent -> last one settled;
- ``p50_s`` / ``p90_s``: request sent -> its InferenceSettled event seen, per model;
- ``blocks_to_settle``: how many requests settled 1, 2, ... blocks after the block that took them;
- ``agent_cpu_ms_per_job``: the agents' CPU time (user + system, their processes and children,
  from psutil) over the load, divided by the jobs they served;
- the correctness checks: every request closed exactly once and settled, each output commitment
  equal to a local run of the same model package on the same input, JOY conserved (the parties'
  wallets and marketplace balances plus the contracts' holdings, before and after).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from joynet.chain.deploy import JOY, deploy_protocol, load_deploy_config
from joynet.chain.deployment_file import deployment_path
from joynet.chain.marketplace import ModelMarketplace
from joynet.processes import Agent, AgentSupervisor

MINILM, DIGITS = "load-minilm", "load-digits"
PRICES = {MINILM: 2 * JOY, DIGITS: 3 * JOY}
# Ape's test accounts: who is who in the load.
DEPLOYER, OWNER = 0, 7
AGENTS = (1, 2, 3)
REQUESTERS = (4, 5, 6)


class LoadError(RuntimeError):
    """The load could not run, or a correctness check failed."""


@dataclass
class LoadPlan:
    minilm: int = 1000
    digits: int = 0
    block_seconds: int = 2
    capacity: int = 64  # each agent's declared capacity (open tasks it accepts)
    # Requests a requester account keeps open (sent, not yet settled), as a client awaiting its
    # results does: 3 x 40 stays below the agents' declared capacity (3 x 64), so the load
    # measures service, not a backlog that no node has room for.
    in_flight: int = 40
    # False: each requester sends all of its requests without waiting for any to close (the
    # fault run, whose requests must all be out, and fit the agents' capacity, when it stops the
    # chain).
    closed_loop: bool = True
    settle_timeout: float = 900.0
    agent_start_timeout: float = 300.0
    # The fault run: once every request is sent, the chain stops mining for this long (0: no
    # fault). Meanwhile the pool is emptied, one agent gets SIGTERM with its receipts outstanding
    # (restarted once mining resumes) and the base fee spikes for the first block after.
    stop_mining_s: float = 0.0
    drain_seconds: float = 20.0
    # Requests sent per second in all (the requesters pace their sends; 0: as fast as they can).
    requests_per_s: float = 0.0
    # The crash run: this long after the first request, one agent is SIGKILLed; it is restarted
    # once its lease has run out and ``restart_after_blocks`` more blocks are mined (0: no crash).
    kill_after_s: float = 0.0
    restart_after_blocks: int = 3
    # The nodes' lease: the supernet's (a block every 2 s), not the local chain's default, which
    # counts automine's one-transaction blocks.
    lease_blocks: int = 30


def sentence(i: int) -> str:
    subjects = ("An edge node", "The requester", "A model owner", "The DAO", "A bridger", "The verifier")
    verbs = ("stakes", "answers", "checks", "pays for", "proves", "settles")
    objects = ("an embedding", "a digit", "the checkpoint", "its fee", "a request", "the result")
    return f"{subjects[i % 6]} {verbs[(i // 6) % 6]} {objects[(i // 36) % 6]} number {i}."


class Watcher(threading.Thread):
    """Reads the marketplace's closing events every ``interval`` seconds: when each request was
    first seen settled or refunded (monotonic), and how many times each was closed."""

    def __init__(self, marketplace, start_block: int, interval: float = 0.25):
        super().__init__(name="load-watcher", daemon=True)
        self.marketplace, self.cursor, self.interval = marketplace, start_block, interval
        self.settled: dict[int, float] = {}
        self.settled_in: dict[int, int] = {}  # the block of each request's settlement
        self.refunded: dict[int, str] = {}
        self.closings: Counter[int] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        from ape import chain

        while not self.stopping.is_set():
            head = chain.blocks.height
            if head >= self.cursor:
                seen = time.monotonic()
                for log in self.marketplace.InferenceSettled.range(self.cursor, head + 1):
                    self.settled.setdefault(log.requestId, seen)
                    self.settled_in.setdefault(log.requestId, log.block_number)
                    self.closings[log.requestId] += 1
                for log in self.marketplace.InferenceRefunded.range(self.cursor, head + 1):
                    self.refunded[log.requestId] = log.reason
                    self.closings[log.requestId] += 1
                self.cursor = head + 1
            self.stopping.wait(self.interval)


def _cpu_seconds(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _anvil_pid(uri: str) -> int | None:
    import psutil

    port = uri.rsplit(":", 1)[-1].rstrip("/")
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "anvil" and port in (process.info["cmdline"] or []):
            return process.pid
    return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(plan: LoadPlan, workdir: Path, say: Callable[[str], None]) -> dict:
    from ape import accounts, networks

    from joynet.models.builtin import publish_builtin_models
    from joynet.storage import EmbeddedStore

    test_accounts = accounts.test_accounts
    provider = networks.provider
    say(f"anvil at {provider.uri}; deploying")
    config = load_deploy_config(provider.network.name)
    config = replace(config, nodes=replace(config.nodes, lease_blocks=plan.lease_blocks))
    deployment = deploy_protocol(test_accounts[DEPLOYER], config, list(test_accounts))
    deployment_file = deployment_path(provider.network.name)
    deployment.save(deployment_file)
    marketplace, token = deployment.contract("ModelMarketplace"), deployment.contract("JoyToken")
    coordinator = deployment.contract("NodeCoordinator")

    store = EmbeddedStore(workdir / "ipfs")
    cids = asyncio.run(publish_builtin_models(store, minilm_quorum=1))
    owner = ModelMarketplace(contract_address=marketplace.address, account=test_accounts[OWNER])
    for name, key in ((MINILM, "minilm"), (DIGITS, "digits")):
        description = json.loads(asyncio.run(store.cat(cids[key])))
        asyncio.run(
            owner.register_model(
                name,
                f"ipfs://{cids[key]}",
                price=PRICES[name],
                weights_commitment=description["weightsCommitment"],
                quorum=description["verification"]["quorum"],
                circuit_id=description["verification"]["circuitId"],
            )
        )
    # From here on, a block every block_seconds whatever the transactions: many per block.
    provider.make_request("evm_setAutomine", [False])
    provider.make_request("evm_setIntervalMining", [plan.block_seconds])
    say(f"models registered; anvil now mines a block every {plan.block_seconds} s")

    supervisor = AgentSupervisor(report=say, alert=say)
    env = {
        **os.environ,
        "APE_FOUNDRY_HOST": provider.uri,
        "JOYNET_DEPLOYMENTS_DIR": str(deployment_file.parent),
        "JOYNET_IPFS_DIR": str(store.directory),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",  # one torch thread per agent: three agents share 2 cores with anvil
    }
    try:
        for index in AGENTS:
            supervisor.start(
                Agent(
                    f"agent{index}",
                    [
                        "edge_agent",
                        "--account-index",
                        str(index),
                        "--model",
                        MINILM,
                        "--model",
                        DIGITS,
                        "--capacity",
                        str(plan.capacity),
                        "--journal",
                        str(workdir / f"agent{index}.sqlite"),
                        "--drain-seconds",
                        str(plan.drain_seconds),
                        "--withdraw-at",
                        "20",
                    ],
                    workdir / f"agent{index}.log",
                    "listening for",
                    {**env, "JOYNET_MODEL_CACHE": str(workdir / f"cache{index}")},
                )
            )
        supervisor.wait_ready(plan.agent_start_timeout)
        return _measure(plan, workdir, say, supervisor, deployment, marketplace, token, coordinator, store, cids)
    finally:
        supervisor.stop_all()
        provider.make_request("evm_setIntervalMining", [0])
        provider.make_request("evm_setAutomine", [True])


def _measure(plan, workdir, say, supervisor, deployment, marketplace, token, coordinator, store, cids) -> dict:
    from ape import accounts, chain

    from joynet.inference.inputs import digits_input, publish_input
    from joynet.zk.digits import load_split

    test_accounts = accounts.test_accounts
    # The inputs, published before the clock starts: (model, document, zk).
    jobs: list[tuple[str, dict, bool]] = [(MINILM, {"text": sentence(i)}, False) for i in range(plan.minilm)]
    if plan.digits:
        _, pixels, _, _ = load_split()
        rows = [[int(p) for p in row] for row in pixels.tolist()]
        digits = [(DIGITS, digits_input(rows[i % len(rows)]), True) for i in range(plan.digits)]
        step = max(1, len(jobs) // len(digits))  # spread through the load
        for n, job in enumerate(digits):
            jobs.insert(min(len(jobs), n * (step + 1)), job)
    published = [asyncio.run(publish_input(store, document, zk=zk)) for _, document, zk in jobs]
    say(f"{len(jobs)} inputs published ({plan.minilm} MiniLM, {plan.digits} digits)")

    requesters = [ModelMarketplace(contract_address=marketplace.address, account=test_accounts[i]) for i in REQUESTERS]
    for client in requesters:  # one approval each, before the clock starts
        asyncio.run(client.transact(token.approve, marketplace, 2**255, wait=60))
    # Every wallet the load moves JOY between: the parties', and the contracts' (the marketplace
    # holds the escrows and every party's balance in it).
    holders = [test_accounts[i].address for i in (*AGENTS, *REQUESTERS, OWNER)] + [
        deployment.contract(name).address
        for name in ("ModelMarketplace", "NodeCoordinator", "TimelockController", "ProofOfUse")
    ]

    def joy_held() -> int:
        return sum(token.balanceOf(address) for address in holders)

    joy_before = joy_held()
    from ape import networks

    anvil = _anvil_pid(networks.provider.uri)
    cpu_before = {agent.name: _cpu_seconds(agent.pid) for agent in supervisor.agents}
    others_before = {"anvil": _cpu_seconds(anvil) if anvil else 0.0, "requesters": _cpu_seconds(os.getpid())}
    watcher = Watcher(marketplace, chain.blocks.height + 1)
    watcher.start()
    sent_at: dict[int, float] = {}
    model_of: dict[int, str] = {}
    input_of: dict[int, int] = {}

    async def requester(client: ModelMarketplace, indices: list[int]) -> None:
        outstanding = asyncio.Semaphore(plan.in_flight)

        async def one(index: int) -> None:
            if plan.requests_per_s:  # paced: request ``index`` goes out index / rate seconds in
                await asyncio.sleep(max(0.0, paced_from + index / plan.requests_per_s - time.monotonic()))
            async with outstanding:
                model = jobs[index][0]
                uri, commitment = published[index]
                started = time.monotonic()
                request_id = await client.request_inference(model, commitment, uri, deadline_seconds=1800)
                sent_at[request_id], model_of[request_id], input_of[request_id] = started, model, index
                while plan.closed_loop and request_id not in watcher.closings:  # open until seen closed
                    await asyncio.sleep(0.1)

        await asyncio.gather(*(one(index) for index in indices))

    crash: dict = {}

    async def load() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32))
        shares = [list(range(len(jobs)))[k :: len(requesters)] for k in range(len(requesters))]
        crashing = [_crash_and_restart(plan, supervisor, coordinator, say, crash)] if plan.kill_after_s else []
        await asyncio.gather(
            *(requester(client, share) for client, share in zip(requesters, shares, strict=True)), *crashing
        )

    started = paced_from = time.monotonic()
    asyncio.run(load())
    sending_s = time.monotonic() - started
    say(f"{len(sent_at)} requests sent in {sending_s:.1f} s; waiting for the last to close")
    fault = _stop_mining(plan, supervisor, say) if plan.stop_mining_s else {}
    deadline = time.monotonic() + plan.settle_timeout
    last_report = time.monotonic()
    while len(watcher.closings) < len(sent_at):
        supervisor.check_alive()
        if time.monotonic() > deadline:
            raise LoadError(f"{len(sent_at) - len(watcher.closings)} requests still open after {plan.settle_timeout} s")
        if time.monotonic() - last_report > 15:
            say(f"  {len(watcher.settled)} settled, {len(watcher.refunded)} refunded of {len(sent_at)}")
            last_report = time.monotonic()
        time.sleep(0.25)
    watcher.stopping.set()
    watcher.join()
    cpu_after = {agent.name: _cpu_seconds(agent.pid) for agent in supervisor.agents}
    others_after = {"anvil": _cpu_seconds(anvil) if anvil else 0.0, "requesters": _cpu_seconds(os.getpid())}
    first, last = min(sent_at.values()), max(watcher.settled.values(), default=started)
    served = Counter(
        log.node
        for log in marketplace.ResultSubmitted.range(deployment.start_block, chain.blocks.height + 1)
        if log.requestId in sent_at
    )
    jobs_served = sum(served.values())
    requested_in = {
        log.requestId: log.block_number
        for log in marketplace.InferenceRequested.range(deployment.start_block, chain.blocks.height + 1)
        if log.requestId in sent_at
    }
    blocks_to_settle = Counter(
        block - requested_in[request_id]
        for request_id, block in watcher.settled_in.items()
        if request_id in requested_in
    )
    latencies: dict[str, list[float]] = {MINILM: [], DIGITS: []}
    for request_id, seen in watcher.settled.items():
        latencies[model_of[request_id]].append(seen - sent_at[request_id])
    cpu_s = sum(cpu_after[name] - cpu_before[name] for name in cpu_after)
    figures = {
        "requests": len(sent_at),
        "settled": len(watcher.settled),
        "refunded": len(watcher.refunded),
        "load_s": round(sending_s, 1),  # first request sent -> last one closed (requesters keep in_flight open)
        "settled_per_min": round(len(watcher.settled) / (last - first) * 60, 1),
        # (not with a fault or a crash: the restarted agent is another process)
        "agent_cpu_ms_per_job": None
        if plan.stop_mining_s or plan.kill_after_s
        else round(cpu_s / max(1, jobs_served) * 1000, 1),
        "jobs_per_agent": {address: count for address, count in served.items()},
        # how many requests settled k blocks after the block that took them (1: the very next)
        "blocks_to_settle": {str(k): blocks_to_settle[k] for k in sorted(blocks_to_settle)},
        # CPU seconds over the load, per party (the requesters' clients share the benchmark's process)
        "cpu_s": {
            "agents": round(cpu_s, 1),
            **{name: round(others_after[name] - others_before[name], 1) for name in others_after},
            "wall": round(last - first, 1),
        },
    }
    for model, values in latencies.items():
        if values:
            figures[f"{model}_p50_s"] = round(statistics.median(values), 2)
            figures[f"{model}_p90_s"] = round(_percentile(values, 0.9) or 0.0, 2)
    figures.update(fault)
    if crash:
        figures.update(_after_the_crash(crash, marketplace, deployment, say))
    if fault:
        figures.update(_after_the_fault(workdir, deployment, coordinator, marketplace, supervisor, say))
    say(json.dumps(figures))
    say("checking: every request closed once, outputs equal local runs, JOY conserved")
    twice = [request_id for request_id, count in watcher.closings.items() if count != 1]
    if twice or watcher.refunded:
        raise LoadError(f"closed more than once: {twice[:10]}; refunded: {list(watcher.refunded.items())[:10]}")
    joy_after = joy_held()
    if joy_after != joy_before:
        raise LoadError(f"JOY not conserved: {joy_before} before, {joy_after} after")
    figures["outputs_checked"] = _check_outputs(marketplace, store, cids, jobs, input_of, workdir)
    return figures


def _stop_mining(plan: LoadPlan, supervisor: AgentSupervisor, say) -> dict:
    """The fault: no block for ``plan.stop_mining_s`` seconds while the agents have results
    queued and out; the pool emptied halfway; one agent stopped by SIGTERM with receipts
    outstanding; a base-fee spike in the first block after. Returns what it measured."""
    import signal

    from ape import networks

    provider = networks.provider
    provider.make_request("evm_setIntervalMining", [0])
    stopped_at = time.monotonic()
    say(f"the chain stops mining for {plan.stop_mining_s:.0f} s")
    victim = supervisor.agents[0]
    time.sleep(min(5.0, plan.stop_mining_s / 4))
    victim.signal(signal.SIGTERM)
    signalled = time.monotonic()
    while victim.running() and time.monotonic() - signalled < plan.drain_seconds + 30:
        time.sleep(0.1)
    exit_s = time.monotonic() - signalled
    code = victim.process.returncode if victim.process else None
    if victim.running():  # never two agents on one journal: the figure says it overran
        victim.stop(timeout=0)
    say(f"{victim.name}: SIGTERM with its transactions unmined; exited after {exit_s:.1f} s (exit {code})")
    time.sleep(max(0.0, stopped_at + plan.stop_mining_s / 2 - time.monotonic()))
    pooled = provider.make_request("txpool_status", [])
    provider.make_request("anvil_dropAllTransactions", [])
    say(f"the pool emptied ({int(pooled['pending'], 16)} pending transactions dropped)")
    time.sleep(max(0.0, stopped_at + plan.stop_mining_s - time.monotonic()))
    base_fee = int(provider.make_request("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    spike = max(base_fee, 10**9) * 50
    provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
    provider.make_request("evm_setIntervalMining", [plan.block_seconds])
    say(f"mining resumes; the next block's base fee is {spike / 1e9:.0f} gwei; {victim.name} restarts")
    victim.start()
    victim.wait_ready(plan.agent_start_timeout)
    return {
        "fault.stop_mining_s": plan.stop_mining_s,
        "fault.sigterm_exit_s": round(exit_s, 1),
        "fault.sigterm_exit_code": code,
        "fault.dropped_from_pool": int(pooled["pending"], 16),
        "fault.base_fee_spike_gwei": spike // 10**9,
    }


async def _crash_and_restart(plan: LoadPlan, supervisor: AgentSupervisor, coordinator, say, crash: dict) -> None:
    """The crash, during the load: one agent SIGKILLed (nothing drained, nothing said to the
    chain), left dead until its lease has run out and a few more blocks are mined, restarted on
    the same journal. Fills ``crash`` with the blocks it saw."""
    import signal

    from ape import accounts, chain

    victim = supervisor.agents[1]
    address = accounts.test_accounts[AGENTS[1]].address
    await asyncio.sleep(plan.kill_after_s)
    victim.signal(signal.SIGKILL)
    await asyncio.to_thread(victim.process.wait)
    killed_at, lease_end = chain.blocks.height, coordinator.leaseEnd(address)
    say(f"{victim.name}: SIGKILL at block {killed_at}; its lease runs until block {lease_end}")
    while chain.blocks.height < lease_end + plan.restart_after_blocks:
        await asyncio.sleep(0.5)
    restarted_at = chain.blocks.height
    say(f"{victim.name}: restarted at block {restarted_at}")
    victim.start()
    await asyncio.to_thread(victim.wait_ready, plan.agent_start_timeout)
    crash.update(victim=victim, address=address, killed_at=killed_at, lease_end=lease_end, restarted_at=restarted_at)


def _after_the_crash(crash: dict, marketplace, deployment, say) -> dict:
    """What the crash run must show: the dead node was assigned nothing after its lease ran out
    (the liveness bound: ``leaseBlocks`` from its last renewal), and its restart resumed its
    journal's jobs and served what was assigned to it while it was down."""
    import re

    from ape import chain

    address, killed_at, lease_end = crash["address"], crash["killed_at"], crash["lease_end"]
    while_dead = [
        log.block_number
        for log in marketplace.NodesAssigned.range(killed_at + 1, crash["restarted_at"] + 1)
        if address in log.nodes
    ]
    served_after = sum(
        1
        for log in marketplace.ResultSubmitted.range(crash["restarted_at"] + 1, chain.blocks.height + 1)
        if log.node == address
    )
    resumed = re.search(r"resumed (\d+) unfinished job", crash["victim"].log())
    figures = {
        "crash.lease_blocks": deployment.contract("NodeCoordinator").leaseBlocks(),
        "crash.killed_at_block": killed_at,
        "crash.lease_end_block": lease_end,
        "crash.restarted_at_block": crash["restarted_at"],
        "crash.assigned_while_dead": len(while_dead),
        "crash.last_assigned_blocks_after_kill": max(while_dead) - killed_at if while_dead else None,
        "crash.resumed_from_journal": int(resumed.group(1)) if resumed else 0,
        "crash.served_after_restart": served_after,
    }
    late = [block for block in while_dead if block > lease_end]
    if late:
        raise LoadError(f"the killed node was assigned work after its lease ended (block {lease_end}): blocks {late}")
    say(
        f"after the crash: {len(while_dead)} assignments to the dead node, the last "
        f"{figures['crash.last_assigned_blocks_after_kill']} blocks after the kill (lease end: "
        f"{lease_end - killed_at} blocks after); the restart resumed {figures['crash.resumed_from_journal']} "
        f"job(s) and served {served_after}"
    )
    return figures


def _after_the_fault(workdir: Path, deployment, coordinator, marketplace, supervisor, say) -> dict:
    """What the fault run must show once every request closed: no job journaled failed, no
    node slashed, each journal's withdrawn fees equal to the chain's BalanceWithdrawn events."""
    from ape import accounts, chain

    from joynet.edge import JobJournal

    supervisor.stop_all()  # the final fee withdrawals land, and the journals are complete
    failed, journaled, withdrawn = 0, 0, 0
    for index in AGENTS:
        journal = JobJournal(workdir / f"agent{index}.sqlite", readonly=True)
        try:
            failed += journal.counts().get("failed", 0)
            journaled += journal.withdrawn()
        finally:
            journal.close()
        address = accounts.test_accounts[index].address
        withdrawn += sum(
            log.amount
            for log in marketplace.BalanceWithdrawn.range(deployment.start_block, chain.blocks.height + 1)
            if log.account == address
        )
    slashed = len(list(coordinator.NodeSlashed.range(deployment.start_block, chain.blocks.height + 1)))
    if failed or slashed or journaled != withdrawn:
        raise LoadError(
            f"after the fault: {failed} jobs journaled failed, {slashed} slashes, journals say "
            f"{journaled} wei withdrawn and the chain {withdrawn}"
        )
    say(f"after the fault: no job failed, nothing slashed, journals' fees = the chain's ({withdrawn / 1e18:.1f} JOY)")
    return {"fault.jobs_failed": failed, "fault.slashes": slashed, "fault.fees_withdrawn_joy": withdrawn / 10**18}


def _check_outputs(marketplace, store, cids, jobs, input_of, workdir) -> int:
    """Each settled output commitment against a local run of the same package on the same input."""
    from ape import chain

    from joynet.edge import InferenceNode

    node = InferenceNode(store=store, cache_dir=workdir / "reference")
    package = {MINILM: cids["minilm"], DIGITS: cids["digits"]}
    checked = 0
    try:
        for log in marketplace.InferenceSettled.range(0, chain.blocks.height + 1):
            if log.requestId not in input_of:
                continue
            model, document, _ = jobs[input_of[log.requestId]]
            local = asyncio.run(node.execute_inference(package[model], document))
            if local.output_commitment != bytes(log.outputCommitment):
                raise LoadError(f"request {log.requestId} ({model}): the settled output differs from a local run")
            checked += 1
    finally:
        asyncio.run(node.close())
    return checked
