"""The protocol's benchmark (`ape run bench`, `make bench`): gas from real transactions on a
fresh local chain, plus the feeless channel's throughput (`channel.messages_per_s`).

``run_benchmark(say, gas_only)`` deploys the protocol, measures, and writes bench/results.json
(a flat {"metric": number} object), bench/breakdown.json (where the gas of each measured
transaction went, from anvil's traces) and BENCHMARKS.md. A benchmark, not a test: it asserts
nothing, it measures.

Every step of the request lifecycle is its own transaction and its own figure (a registration
commitment and the registration; a request, the assignment of its nodes, then a result, or
commitments and reveals for a quorum); a round trip is the sum of its steps. Figures are the
steady state of a busy marketplace: each round trip is measured after warm-up round trips in
which every node served once in the same usage epoch (the first write of a balance, a counter
or an epoch's usage slot costs 20,000 gas more than every later one).

With ``gas_only`` it measures the gas, the ZK prover and the checkpoints only (no EZKL, edge
agents, channel or MiniLM throughput).
"""

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

from ape import accounts, chain, networks, project
from eth_utils import keccak, to_checksum_address

from bench.ezkl import EzklUnavailable, measure_ezkl, measure_ezkl_cnn
from bench.report import BREAKDOWN_PATH, MACHINE_PATH, RESULTS_PATH, write_benchmarks
from bench.zk_batch import measure_zk_batch
from bench.zk_prover import CnnCircuitUnavailable, calldata_gas, measure_cnn_zk, measure_zk
from joynet.chain.deploy import JOY, deploy_protocol, load_deploy_config
from joynet.chain.marketplace import Request, registration_commitment, seal_result
from joynet.chain.validator import (
    Checkpoint,
    StreamLink,
    Usage,
    ordered_signatures,
    sign_checkpoint,
    sign_stream_link,
)
from joynet.zk import QuantizedMLP, ZKProver, circuit_id, input_commitment, random_salt, to_bytes32, weights_commitment
from joynet.zk.digits import load_split

ZERO32 = b"\0" * 32
OUTPUT = b"\1" * 32
MEMORY_AGENT_ACCOUNT = 3  # a test account the other measurements leave alone (an edge agent of its own)
BATCH = 10
Say = Callable[[str], None]


class BenchError(Exception):
    """A benchmark that cannot run here, or whose set-up or measurement went wrong."""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


@dataclass
class Trip:
    """One round trip: the nodes that served it, the receipt of each step (in order) and the
    usage epoch in which it settled."""

    nodes: list[str]
    receipts: dict[str, Any] = field(default_factory=dict)
    epoch: int = -1

    @property
    def steps(self) -> dict[str, int]:
        return {step: receipt.gas_used for step, receipt in self.receipts.items()}

    @property
    def total(self) -> int:
        return sum(self.steps.values())


def gas_breakdown(receipt, names: dict[str, str]) -> dict[str, float]:
    """Where one transaction's gas went, from anvil's traces: the 21,000 base, the calldata,
    each contract called from the transaction's target (inclusive of what it calls), storage
    writes and reads, events, and the refund (cleared storage) taken off the total."""
    provider, web3 = networks.provider, networks.provider.web3
    tx_hash = receipt.txn_hash if isinstance(receipt.txn_hash, str) else receipt.txn_hash.hex()
    data = bytes(web3.eth.get_transaction(tx_hash)["input"])
    frames = provider.make_request("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    steps = provider.make_request(
        "debug_traceTransaction", [tx_hash, {"disableStorage": True, "disableMemory": True, "disableStack": True}]
    )["structLogs"]
    top = [step for step in steps if step["depth"] == 1]
    execution = top[0]["gas"] - top[-1]["gas"] + top[-1]["gasCost"]
    out = {"gas": receipt.gas_used, "base": 21_000, "calldata": calldata_gas(data), "calldata_bytes": len(data)}
    calls = 0
    for frame in frames.get("calls") or []:
        name = names.get(to_checksum_address(frame["to"]), frame["to"])
        out[f"call.{name}"] = out.get(f"call.{name}", 0) + int(frame["gasUsed"], 16)
        calls += int(frame["gasUsed"], 16)
    out["own"] = execution - calls
    for step in steps:
        op, cost = step["op"], step["gasCost"]
        kind = "sstore" if op == "SSTORE" else "sload" if op == "SLOAD" else "log" if op.startswith("LOG") else None
        if kind:
            out[kind] = out.get(kind, 0) + cost
            out[f"{kind}_count"] = out.get(f"{kind}_count", 0) + 1
        if op == "SSTORE" and cost >= 20_000:  # zero to nonzero: a fresh slot
            out["sstore_fresh"] = out.get("sstore_fresh", 0) + 1
    out["refund"] = out["base"] + out["calldata"] + execution - receipt.gas_used
    return out


class Bench:
    """The deployed protocol, the accounts that use it and the figures measured so far;
    ``say`` reports progress (and side figures that could not be had)."""

    def __init__(self, deployment, say: Say):
        self.deployment = deployment
        self.token = project.JoyToken.at(deployment.address("JoyToken"))
        self.coordinator = deployment.contract("NodeCoordinator")
        self.marketplace = deployment.contract("ModelMarketplace")
        self.usage = deployment.contract("ProofOfUse")
        self.bridge = deployment.contract("IOTAValidator")
        self.owner, self.requester = accounts.test_accounts[4], accounts.test_accounts[5]
        self.funder = accounts.test_accounts[1]
        self.say = say
        self.results: dict[str, float] = {}
        # Where each measured transaction's gas went, traced at once (anvil keeps the state
        # needed to trace only for recent blocks); contract names by address.
        self.breakdown: dict[str, dict[str, float]] = {}
        self.names = {address: name for name, address in deployment.contracts.items()}
        self.requests = 0
        self.operators = 0
        self.lease_holders: list = []  # the nodes registered with ``node``, whose leases ``request`` keeps
        self._epoch_clock = (self.usage.genesisTime(), self.usage.epochLength())

    def model(self, name, quorum=1, price=5 * JOY, circuit=ZERO32, weights=None, stream=ZERO32, tolerant=False):
        """Registers a model in its two steps; returns its id and the gas of each step."""
        model_id, salt = keccak(text=name), keccak(text=f"salt:{name}")
        commitment = registration_commitment(model_id, self.owner.address, salt)
        committed = self.marketplace.commitModelRegistration(commitment, sender=self.owner)
        registered = self.marketplace.registerModel(
            model_id,
            f"ipfs://bafy{name}",
            weights or keccak(text=name + "w"),
            price,
            (quorum, circuit, 0, tolerant),
            stream,
            salt,
            sender=self.owner,
        )
        return model_id, committed.gas_used, registered.gas_used

    def node(self, operator, model_ids, stake=2_000 * JOY, capacity=1_000):
        self.token.approve(self.coordinator, stake, sender=operator)
        self.lease_holders.append(operator)
        return self.coordinator.registerNode(stake, capacity, list(model_ids), sender=operator).gas_used

    def keep_leases(self) -> None:
        """Renews the lease of each node registered with ``node`` that has a third of it or less
        left, as its edge agent would: the measurements run for more blocks than a lease."""
        head, lease_blocks = chain.blocks.height, self.coordinator.leaseBlocks()
        for operator in self.lease_holders:
            if self.coordinator.leaseEnd(operator) - (head + 1) <= lease_blocks // 3:
                self.coordinator.renewLease(sender=operator)

    def renew_leases_in_bulk(self, nodes: list[str], per_block: int = 400) -> None:
        """Renews the leases of ``nodes`` (impersonated), ``per_block`` in a block, as the agents
        of a live network would: registered one by one, a large network outlasts a lease."""
        provider = networks.provider
        data = self.coordinator.renewLease.encode_input().to_0x_hex()
        provider.make_request("anvil_autoImpersonateAccount", [True])
        try:
            for start in range(0, len(nodes), per_block):
                provider.auto_mine = False
                try:
                    hashes = [
                        provider.make_request(
                            "eth_sendTransaction",
                            [{"from": node, "to": self.coordinator.address, "data": data, "gas": hex(100_000)}],
                        )
                        for node in nodes[start : start + per_block]
                    ]
                    provider.make_request("evm_mine", [])
                finally:
                    provider.auto_mine = True
                for tx_hash in hashes:
                    receipt = provider.make_request("eth_getTransactionReceipt", [tx_hash])
                    if receipt is None or int(receipt["status"], 16) != 1:
                        raise BenchError(f"a lease renewal failed: {tx_hash}")
        finally:
            provider.make_request("anvil_autoImpersonateAccount", [False])

    def bulk_register_nodes(self, model_id, count):
        """Registers ``count`` fresh nodes for ``model_id`` with raw eth_sendTransaction calls
        from impersonated addresses: Ape's own transaction path slows down as its history of
        accounts and receipts grows, which would make a thousand registrations take many minutes.
        The transactions are the same real ones; only the client-side bookkeeping is skipped."""
        web3 = networks.provider.web3
        networks.provider.make_request("anvil_autoImpersonateAccount", [True])
        stake = 2_000 * JOY
        started = time.monotonic()
        registered = []
        for index in range(count):
            self.operators += 1
            operator = to_checksum_address(keccak(text=f"bench-operator-{self.operators}")[:20])
            calls = [
                (self.funder.address, operator, 10**18, b""),
                (self.funder.address, self.token.address, 0, self.token.transfer.encode_input(operator, stake)),
                (operator, self.token.address, 0, self.token.approve.encode_input(self.coordinator, stake)),
                (
                    operator,
                    self.coordinator.address,
                    0,
                    self.coordinator.registerNode.encode_input(stake, 1_000, [model_id]),
                ),
            ]
            registered.append(operator)
            for sender, to, value, data in calls:
                tx_hash = web3.eth.send_transaction({"from": sender, "to": to, "value": value, "data": data})
                if web3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005).status != 1:
                    raise BenchError(f"bench set-up transaction failed: {tx_hash.hex()}")
            if (index + 1) % 250 == 0:
                self.say(f"  {index + 1}/{count} nodes registered ({time.monotonic() - started:.0f} s)")
        networks.provider.make_request("anvil_autoImpersonateAccount", [False])
        self.renew_leases_in_bulk(registered)

    def keep(self, name: str, trip: Trip) -> None:
        """Traces a measured round trip's transactions (see ``trace``)."""
        for step, receipt in trip.receipts.items():
            self.trace(f"{name}.{step}", receipt)

    def trace(self, name: str, receipt) -> None:
        """Adds the transaction's gas breakdown as ``name``; a tracing failure only loses it."""
        try:
            self.breakdown[name] = gas_breakdown(receipt, self.names)
        except Exception as why:  # noqa: BLE001  (a benchmark's side figure must not end the run)
            self.say(f"no gas breakdown of {name}: {why}")

    def epoch_of(self, receipt) -> int:
        genesis, length = self._epoch_clock
        return (chain.blocks[receipt.block_number].timestamp - genesis) // length

    def deposit(self, amount):
        """Funds the requester's balance in the marketplace (requestInferenceFromBalance)."""
        self.token.approve(self.marketplace, amount, sender=self.requester)
        self.marketplace.deposit(self.requester, amount, sender=self.requester)

    def request(self, model_id, price=5 * JOY, input_commitment=None, from_balance=False):
        """A request paid by a token transfer (approved just before, as a one-off requester
        does), or from the requester's deposited balance; returns the unassigned Request and
        its receipt. The nodes' leases are renewed first when due, as their agents would."""
        self.keep_leases()
        self.requests += 1
        if from_balance:
            if self.marketplace.balances(self.requester) < price:
                self.deposit(100 * price)
        else:
            self.token.approve(self.marketplace, price, sender=self.requester)
        send = self.marketplace.requestInferenceFromBalance if from_balance else self.marketplace.requestInference
        receipt = send(
            model_id,
            input_commitment or keccak(text=f"in{self.requests}"),
            "ipfs://in",
            price,
            chain.pending_timestamp + 600,
            sender=self.requester,
        )
        (event,) = receipt.decode_logs(self.marketplace.InferenceRequested)
        return Request.from_event(event), receipt

    def assign(self, request):
        """assignNodes, sent by the requester's client (anyone may) in the next block."""
        receipt = self.marketplace.assignNodes(request, sender=self.requester)
        (event,) = receipt.decode_logs(self.marketplace.NodesAssigned)
        return request.assigned(event), receipt

    def submit(self, request, node, output=OUTPUT, proof=b""):
        return self.marketplace.submitResult(request, output, "ipfs://out", proof, sender=accounts[node])

    def quorum1_trip(self, model_id, price=5 * JOY, from_balance=False, zk_input=None, assign=True) -> Trip:
        """Request, assignment and one node's result. For a ZK model, ``zk_input()`` returns the
        input's commitment and ``prove(request, node)`` -> (output commitment, proof). Without
        ``assign`` the node drawn for the request (drawnNodes, in the pending block) submits it
        unassigned, which assigns it with the result."""
        commitment, prove = zk_input() if zk_input is not None else (None, None)
        request, requested = self.request(model_id, price, commitment, from_balance)
        steps = {"request": requested}
        if assign:
            request, steps["assign"] = self.assign(request)
            (node,) = request.nodes
        else:
            (node,) = self.marketplace.drawnNodes(request, block_id="pending")
        output, proof = (OUTPUT, b"") if prove is None else prove(request, node)
        steps["submit"] = receipt = self.submit(request, node, output, proof)
        return Trip([node], steps, self.epoch_of(receipt))

    def quorum_trip(self, model_id, price) -> Trip:
        """Request, assignment, a commitment from each node, then each node's reveal (the last
        one judges and settles)."""
        request, requested = self.request(model_id, price)
        request, assigned = self.assign(request)
        steps = {"request": requested, "assign": assigned}
        salts = {node: keccak(text=f"salt:{request.id}:{node}") for node in request.nodes}
        for index, node in enumerate(request.nodes):
            sealed = seal_result(request.id, node, OUTPUT, salts[node])
            steps[f"commit{index + 1}"] = self.marketplace.commitResult(request, sealed, sender=accounts[node])
        for index, node in enumerate(request.nodes):
            steps[f"reveal{index + 1}"] = receipt = self.marketplace.revealResult(
                request, OUTPUT, salts[node], "ipfs://out", b"", sender=accounts[node]
            )
        return Trip(list(request.nodes), steps, self.epoch_of(receipt))

    def tolerant_trip(self, model_id, price) -> Trip:
        """Request, assignment, the generator's result, a sealed vote from each validator, then
        each validator's reveal (the last one judges and settles)."""
        request, requested = self.request(model_id, price)
        request, assigned = self.assign(request)
        generator, *validators = request.nodes
        steps = {"request": requested, "assign": assigned}
        steps["generate"] = self.submit(request, generator)
        salts = {node: keccak(text=f"salt:{request.id}:{node}") for node in validators}
        for index, node in enumerate(validators):
            sealed = seal_result(request.id, node, OUTPUT, salts[node])
            steps[f"vote{index + 1}"] = self.marketplace.commitResult(request, sealed, sender=accounts[node])
        for index, node in enumerate(validators):
            steps[f"reveal{index + 1}"] = receipt = self.marketplace.revealResult(
                request, OUTPUT, salts[node], "ipfs://out", b"", sender=accounts[node]
            )
        return Trip(list(request.nodes), steps, self.epoch_of(receipt))

    def steady(self, trip: Callable[[], Trip], nodes, *measured: Callable[[], Trip]) -> list[Trip]:
        """Warm-up round trips (``trip``) until each of ``nodes`` has served one in the current
        usage epoch, then the ``measured`` round trips, which must settle in that epoch too
        (else all again: a new epoch's usage slots are fresh)."""
        for _ in range(3):
            served, epoch = set(), None
            while not set(nodes) <= served:
                warm = trip()
                if warm.epoch != epoch:
                    served, epoch = set(), warm.epoch
                served.update(warm.nodes)
            trips = [measure() for measure in measured]
            if all(t.epoch == epoch for t in trips):
                return trips
        raise BenchError("the usage epoch changed during every measurement")


def run_benchmark(say: Say, gas_only: bool = False) -> tuple[dict[str, float], Path]:
    """Deploys the protocol on the local chain, measures it (all of it, or the gas, the ZK
    prover and the checkpoints with ``gas_only``), writes bench/results.json,
    bench/breakdown.json, bench/machine.txt and BENCHMARKS.md; returns the results and the
    report's path. ``say`` reports progress."""
    if not networks.provider.network.is_local:
        raise BenchError("the benchmark runs on a local chain only")
    # The machine is shared: the times measured scale with what else runs on it.
    load_at_start = round(os.getloadavg()[0], 2)
    deployment = deploy_protocol(
        accounts.test_accounts[0], load_deploy_config("local"), list(accounts.test_accounts)[:10]
    )
    bench = Bench(deployment, say)
    measure_protocol(bench, gas_only)
    BREAKDOWN_PATH.parent.mkdir(exist_ok=True)
    BREAKDOWN_PATH.write_text(json.dumps(bench.breakdown, indent=1) + "\n")
    if not gas_only:
        from bench.channels import measure_channel
        from bench.inference import measure_minilm_throughput, measure_onnx_throughput

        bench.results.update(measure_channel())
        say("feeless channel throughput measured (embedded ledger, signed and verified)")
        from bench.feeless import measure_feeless

        operator = accounts.test_accounts[6]  # a registered node (measure_protocol)
        bench.results.update(measure_feeless(bench.marketplace.address, bench.owner, operator, bench.bridge))
        say("feeless request -> verified answer measured (digits with a proof, MiniLM)")
        bench.results.update(measure_minilm_throughput(n=64))
        say("MiniLM throughput through InferenceNode vs bare sentence-transformers measured")
        bench.results.update(measure_onnx_throughput(n=256))
        say("a PyTorch-exported CNN through the onnx runtime vs bare onnxruntime measured")
        from bench.llm_validation import DEFAULT_OUTPUT as LLM_VALIDATION_PATH
        from bench.llm_validation import main as measure_llm_validation

        say("language model: the tolerant check's trials and the runtime against bare transformers (about 5 min)")
        bench.results.update(measure_llm_validation(["--output", str(LLM_VALIDATION_PATH)])["metrics"])
    bench.results["host.load_average_at_start"] = load_at_start
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(bench.results, indent=2, sort_keys=True) + "\n")
    MACHINE_PATH.write_text(machine() + "\n")
    return bench.results, write_benchmarks()


def measure_protocol(bench: Bench, gas_only: bool = False) -> None:
    """The protocol's figures into ``bench.results``: registrations, round trips at quorum 1
    and 3, batched assignment, timeouts, assignment at 10 and 1000 nodes, checkpoints, ZK; then,
    unless ``gas_only``, EZKL and the edge agents."""
    r, say = bench.results, bench.say
    operators = [accounts.test_accounts[i] for i in range(6, 10)]
    addresses = [op.address for op in operators]
    digits, r["gas.commit_model_registration"], r["gas.register_model_tx"] = bench.model("digits")
    r["gas.register_model"] = r["gas.commit_model_registration"] + r["gas.register_model_tx"]
    embedder, _, _ = bench.model("minilm", quorum=3, price=9 * JOY)
    chat, _, _ = bench.model("smollm2", quorum=3, price=9 * JOY, tolerant=True)
    gas = [bench.node(op, [digits, embedder, chat]) for op in operators]
    r["gas.register_node"] = gas[0]
    # An agent renews its node's lease when a third of it is left (the registration started it).
    renewed = bench.coordinator.renewLease(sender=operators[0])
    r["gas.renew_lease"] = renewed.gas_used
    bench.trace("renew_lease", renewed)
    say("models and nodes registered")

    # Quorum 1, paid by a token transfer.
    trip, direct = bench.steady(
        lambda: bench.quorum1_trip(digits),
        addresses,
        lambda: bench.quorum1_trip(digits),
        lambda: bench.quorum1_trip(digits, assign=False),
    )
    bench.keep("quorum1", trip)
    r["gas.request_paid"], r["gas.assign_nodes"], r["gas.submit_settle_quorum1"] = trip.steps.values()
    r["gas.round_trip_quorum1_assigned_first"] = trip.total
    # The drawn node answers the unassigned request: assignment, result and settlement in one.
    bench.keep("quorum1_direct", direct)
    r["gas.submit_assign_settle_quorum1"] = direct.steps["submit"]
    r["gas.round_trip_quorum1"] = direct.total

    # Quorum 3: commit and reveal.
    quorum3 = lambda: bench.quorum_trip(embedder, 9 * JOY)  # noqa: E731
    (trip,) = bench.steady(quorum3, addresses, quorum3)
    bench.keep("quorum3", trip)
    s = trip.steps
    r["gas.request_paid_quorum3"], r["gas.assign_nodes_quorum3"] = s["request"], s["assign"]
    r["gas.commit_result_first"], r["gas.commit_result"] = s["commit1"], s["commit2"]
    r["gas.commit_results_quorum3"] = s["commit1"] + s["commit2"] + s["commit3"]
    r["gas.reveal_result"], r["gas.reveal_and_settle_quorum3"] = s["reveal1"], s["reveal3"]
    r["gas.reveal_results_quorum3"] = s["reveal1"] + s["reveal2"] + s["reveal3"]
    r["gas.round_trip_quorum3"] = trip.total

    # Tolerant policy, quorum 3: one generator's result, two validators' votes.
    tolerant3 = lambda: bench.tolerant_trip(chat, 9 * JOY)  # noqa: E731
    (trip,) = bench.steady(tolerant3, addresses, tolerant3)
    bench.keep("tolerant3", trip)
    s = trip.steps
    r["gas.submit_generation"] = s["generate"]
    r["gas.reveal_and_settle_tolerant3"] = s["reveal2"]
    r["gas.round_trip_tolerant3"] = trip.total
    r["gas.tolerant3_to_quorum3"] = trip.total / r["gas.round_trip_quorum3"]
    say("round trips measured")

    # Assignment shared: an edge agent assigns the pending requests it sees in one transaction.
    measure_batched_assignment(bench, digits)
    # Results shared: a node submits the results it has ready in one transaction.
    measure_batched_submission(bench, operators[0])

    # Timeouts: an assigned request whose node stayed silent, and one nobody assigned.
    assigned, _ = bench.assign(bench.request(digits)[0])
    unassigned, _ = bench.request(digits)
    chain.pending_timestamp += 601
    closed = bench.marketplace.closeExpired(assigned, sender=bench.requester)
    r["gas.timeout_refund"] = closed.gas_used
    bench.trace("timeout.close", closed)
    closed = bench.marketplace.closeExpired(unassigned, sender=bench.requester)
    r["gas.timeout_refund_unassigned"] = closed.gas_used
    bench.trace("timeout_unassigned.close", closed)

    for size in (10, 1000):
        model_id, _, _ = bench.model(f"scale{size}")
        bench.bulk_register_nodes(model_id, size)
        # Warm-up round trip (the model's usage slot), settled so that every node is idle again:
        # both sizes are then measured alike, the first draw's node taking the task.
        bench.quorum1_trip(model_id)
        assigned = bench.assign(bench.request(model_id)[0])[1]
        r[f"gas.assign_{size}_nodes"] = assigned.gas_used
        bench.trace(f"assign_{size}_nodes.assign", assigned)
    say("assignment measured at 10 and 1000 nodes")
    measure_checkpoints(bench, operators)

    # Zero-knowledge: warm proofs of held-out digits and one verification on chain.
    verifier = project.DigitsMLPVerifier.deploy(sender=accounts.test_accounts[0])
    r.update(measure_zk(n=5, verifier=verifier, sender=accounts.test_accounts[0]))
    measure_zk_round_trip(bench, addresses)
    measure_zk_batch(bench, operators[0])
    say("zero-knowledge proofs measured")
    try:
        r.update(measure_cnn_zk(n=5))
        say("digits CNN proofs measured")
    except CnnCircuitUnavailable as why:
        say(f"digits CNN proofs skipped: {why}")
    if gas_only:
        return

    # The same quantized network proven with EZKL (Halo2), when the optional ezkl package is installed.
    with tempfile.TemporaryDirectory(prefix="joynet-ezkl-") as workdir:
        try:
            say("EZKL: proving the digits MLP with Halo2 (about a minute)")
            r.update(measure_ezkl(workdir, accounts.test_accounts[0]))
            say("EZKL measured")
        except EzklUnavailable as why:
            say(f"EZKL comparison skipped: {why}")
    # The same comparison on the CNN (a 2^17-row Halo2 circuit: about a minute on a quiet machine,
    # most of it the local SRS and the keys).
    with tempfile.TemporaryDirectory(prefix="joynet-ezkl-cnn-") as workdir:
        try:
            say("EZKL: proving the digits CNN with Halo2 (about a minute)")
            r.update(measure_ezkl_cnn(workdir))
            say("EZKL on the CNN measured")
        except EzklUnavailable as why:
            say(f"EZKL comparison on the CNN skipped: {why}")
    measure_edge_agents(bench)


def measure_batched_assignment(bench: Bench, model_id) -> None:
    """assignNodesBatch of BATCH pending quorum-1 requests, per request; the round trips with
    the assignment shared that way (the request and the result as measured alone). The requests
    are then served, so that the nodes are idle again."""
    r = bench.results
    pending = [bench.request(model_id)[0] for _ in range(BATCH)]
    receipt = bench.marketplace.assignNodesBatch(pending, sender=bench.requester)
    bench.trace(f"assign_batch{BATCH}.assign", receipt)
    assigned = receipt.decode_logs(bench.marketplace.NodesAssigned)
    if len(assigned) != BATCH:
        raise BenchError(f"the batch assigned {len(assigned)} of {BATCH} requests")
    r[f"gas.assign_nodes_batch{BATCH}"] = receipt.gas_used
    r[f"gas.assign_nodes_batch{BATCH}_per_request"] = share = receipt.gas_used // BATCH
    r["gas.round_trip_quorum1_batched"] = r["gas.request_paid"] + share + r["gas.submit_settle_quorum1"]
    for request, event in zip(pending, assigned, strict=False):
        request = request.assigned(event)
        bench.submit(request, request.nodes[0])
    bench.say(f"assignment measured in a batch of {BATCH}")


SUBMIT_BATCHES = (1, 8, 32)


def measure_batched_submission(bench: Bench, operator) -> None:
    """submitResults of 1, 8 and 32 assigned results of one node, per result. A model that only
    ``operator`` serves makes every request its own."""
    r = bench.results
    model_id, _, _ = bench.model("batched-results")
    bench.coordinator.serveModel(model_id, sender=operator)
    # Warm-up: the model's first settlement writes slots that later ones only update, as in the
    # round trips measured above (whose figure the batch of one is compared with).
    bench.submit(bench.assign(bench.request(model_id)[0])[0], operator.address)
    for size in SUBMIT_BATCHES:
        requests = [bench.assign(bench.request(model_id)[0])[0] for _ in range(size)]
        receipt = bench.marketplace.submitResults(
            requests, [OUTPUT] * size, ["ipfs://out"] * size, [b""] * size, sender=operator
        )
        if len(receipt.decode_logs(bench.marketplace.InferenceSettled)) != size:
            raise BenchError(f"a batch of {size} results did not settle them all")
        r[f"gas.submit_results_batch{size}_per_result"] = receipt.gas_used // size
    bench.say(f"result submission measured in batches of {', '.join(map(str, SUBMIT_BATCHES))}")


def measure_zk_round_trip(bench: Bench, nodes) -> None:
    """Request + assignment + proven result + settlement of the digits model under the ZK
    policy (the deployed DigitsMLPVerifier through ProofOfInference's circuit registry), in the
    steady state. gas.round_trip_zk pays the request from a deposited balance, as a requester
    with a prepaid balance (a Chainlink Functions subscription, an Infernet wallet) does;
    gas.round_trip_zk_transfer pays it with a token transfer."""
    model, (_, images, _, _) = QuantizedMLP.load(), load_split()
    model_id, _, _ = bench.model("zk-digits", circuit=circuit_id(), weights=to_bytes32(weights_commitment(model)))
    for node in nodes:
        bench.coordinator.serveModel(model_id, sender=accounts[node])
    bench.deposit(1_000 * JOY)

    with ZKProver() as prover:
        digits = cycle(image.tolist() for image in images)

        def inputs():
            pixels, salt = next(digits), random_salt()

            def prove(request, node):
                proof = prover.prove(model, pixels, salt, request.id, node)
                return proof.output_commitment, proof.calldata

            return to_bytes32(input_commitment(pixels, salt)), prove

        transfer = lambda: bench.quorum1_trip(model_id, zk_input=inputs)  # noqa: E731
        balance = lambda: bench.quorum1_trip(model_id, from_balance=True, zk_input=inputs)  # noqa: E731
        direct = lambda: bench.quorum1_trip(model_id, from_balance=True, zk_input=inputs, assign=False)  # noqa: E731
        paid, prepaid, prepaid_direct = bench.steady(transfer, nodes, transfer, balance, direct)
    bench.keep("zk", prepaid)
    bench.keep("zk_direct", prepaid_direct)
    r = bench.results
    r["gas.round_trip_zk_transfer"] = paid.total
    r["gas.request_from_balance"], r["gas.assign_nodes_zk"], r["gas.submit_settle_zk"] = prepaid.steps.values()
    r["gas.round_trip_zk_assigned_first"] = prepaid.total
    r["gas.submit_assign_settle_zk"] = prepaid_direct.steps["submit"]
    r["gas.round_trip_zk"] = prepaid_direct.total
    if f"gas.assign_nodes_batch{BATCH}_per_request" in r:
        r["gas.round_trip_zk_batched"] = (
            r["gas.request_from_balance"] + r[f"gas.assign_nodes_batch{BATCH}_per_request"] + r["gas.submit_settle_zk"]
        )


def measure_checkpoints(bench: Bench, operators) -> None:
    """Gas of IOTAValidator checkpoints signed by two of the three local bridgers: one feeless
    inference, then a batch of 1,000 served by the four nodes (one usage entry per node), each paid
    from the model's budget (the sponsored accounting); beside it, the same checkpoints of a model
    without a budget (counted, nothing paid), the accounting before budgets."""
    r, bridgers = bench.results, [accounts.test_accounts[i] for i in (7, 8)]

    def linked(name):
        stream = keccak(text=f"bench-stream {name}")
        model_id, _, _ = bench.model(name, price=0, weights=keccak(text="w"), stream=stream)
        for operator in operators:
            bench.coordinator.serveModel(model_id, sender=operator)
            bench.bridge.bindChannelKey(model_id, keccak(text=f"{name} key of {operator.address}"), sender=operator)
        link = StreamLink(stream, model_id, bench.owner.address)
        signed = [sign_stream_link(b.private_key, link, chain.chain_id, bench.bridge.address) for b in bridgers]
        receipt = bench.bridge.linkStream(stream, model_id, ordered_signatures(signed), sender=bridgers[0])
        return stream, model_id, receipt.gas_used

    def checkpoints(stream):
        head, sequence = ZERO32, 0

        def checkpoint(counts):
            nonlocal head, sequence
            sequence += sum(counts)
            new_head = keccak(text=f"head {sequence}")
            usage = [Usage(op.address, count) for op, count in zip(operators, counts, strict=False)]
            cp = Checkpoint(stream, sequence, head, new_head, keccak(text=f"root {sequence}"), usage)
            signed = [sign_checkpoint(b.private_key, cp, chain.chain_id, bench.bridge.address) for b in bridgers]
            head = new_head
            return bench.bridge.submitCheckpoint(cp, ordered_signatures(signed), sender=bridgers[0]).gas_used

        checkpoint([1, 1, 1, 1])  # warm-up: the stream's and the nodes' first usage (and earnings) slots
        return checkpoint([1]), checkpoint([250, 250, 250, 250])

    stream, model_id, r["gas.link_stream"] = linked("feeless")
    budget = 10_000 * JOY
    bench.token.approve(bench.bridge, budget, sender=bench.owner)
    r["gas.fund_budget"] = bench.bridge.fundBudget(model_id, budget, sender=bench.owner).gas_used
    bench.bridge.setFeelessRate(model_id, JOY, sender=bench.owner)
    r["gas.checkpoint_batch_1"], r["gas.checkpoint_batch_1000"] = checkpoints(stream)
    r["gas.feeless_per_inference_batch1000"] = r["gas.checkpoint_batch_1000"] / 1000
    unpaid_stream, _, _ = linked("feeless-unfunded")
    r["gas.checkpoint_batch_1_unpaid"], r["gas.checkpoint_batch_1000_unpaid"] = checkpoints(unpaid_stream)
    r["gas.feeless_per_inference_batch1000_unpaid"] = r["gas.checkpoint_batch_1000_unpaid"] / 1000
    bench.say("checkpoints measured")


def measure_edge_agents(bench: Bench) -> None:
    """Request -> settled through real edge agents (bench.edge): digits with a proof,
    MiniLM with a quorum of 3, and proven inferences per minute of one node."""
    from bench.edge import measure_edge_e2e

    say = bench.say
    say("edge agents: three EdgeNodes serving both models (about a minute)")
    try:
        bench.results.update(
            measure_edge_e2e(bench.funder, bench.owner, bench.requester, bench.marketplace.address, say=say)
        )
    except Exception as why:  # noqa: BLE001  (the figures measured so far are still written)
        say(f"edge agents NOT measured: {type(why).__name__}: {why}")
    from bench.agent_memory import measure_agent_memory

    say("agent memory: one `ape run edge_agent` serving the four kinds of model")
    try:
        bench.results.update(
            measure_agent_memory(bench.deployment, bench.owner, bench.requester, MEMORY_AGENT_ACCOUNT, say=say)
        )
    except Exception as why:  # noqa: BLE001
        say(f"agent memory NOT measured: {type(why).__name__}: {why}")
