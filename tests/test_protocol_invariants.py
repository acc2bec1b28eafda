"""Invariants of the marketplace core, checked with a Hypothesis state machine on a live chain.

The whole protocol is deployed as `ape run deploy` does it, every ownership already with the
timelock. Each example starts from a chain snapshot with a random bootstrap (1-3 models, 1-4
nodes, 0-3 requests, maybe a funded epoch), then runs random rules: register a model (quorum 1-3,
a few JOY), register a node (an operator, once; a subset of the models, capacity 1-3, 1,000-3,000
JOY), add stake, reactivate a node, request an inference (or, now and then, request a model that
too few eligible nodes serve: NodeCoordinatorNoEligibleNode, nothing moves), submit one result,
serve a request (every remaining node submits), decline, close an expired request (time moves
past its deadline), withdraw earnings, send the protocol's fees to the treasury, request an unstake, withdraw unstaked JOY (time moves past
the unbonding delay), advance an epoch, fund an epoch's ProofOfUse pool, claim an owner or node
reward. Outputs come from {A, B, C}, so quorum requests sometimes agree and sometimes do not.

A Python model follows every step (balances, earnings, stakes, bonds, unbonding, requests, usage,
pools), and after every step the chain must agree with it and with these invariants:

1. JOY is conserved: the genesis holders, the timelock, the marketplace, the coordinator,
   ProofOfUse and an outsider hold together totalSupply, which is still 10**9 JOY; each of them
   holds exactly what the model says.
2. Every contract holds exactly what it owes: the marketplace totalEscrow() + totalEarnings() +
   the protocol's share of settled fees (== protocolEarnings()), with totalEscrow the escrow of the
   model's open requests (and every account's earnings as modelled);
   the coordinator the sum over nodes of stake + unbonding; ProofOfUse what was funded minus what
   was paid (== outstandingRewards(), and every touched epoch's pool, paid-out and usage totals).
3. Every request ends exactly once: its status only moves Open -> Settled or Open -> Refunded and
   never changes afterwards; settled + refunded + open == requestCount(); an open request's stored
   digest is the hash of the request as made, a closed one's its final status; quorum requests
   keep the submission bits of the nodes that submitted while open.
4. No node exceeds its capacity; each node's activeTasks is the number of open requests it is
   assigned to (a quorum node that submitted stays bonded until the request closes); its bonded
   JOY is one task bond per open task and never exceeds its stake; the eligibility sets hold
   exactly the active nodes serving each model.
5. No bonded stake can leave: an unstake of more than stake - bonded reverts with
   NodeCoordinatorStakeBonded and changes nothing.

Assignment is checked too: quorum distinct nodes, each eligible and the least loaded (largest free
share of its capacity) of those left, as the coordinator scans sets of up to 8 nodes whole.

The model pins every block's timestamp (evm_setNextBlockTimestamp before each transaction), so
deadlines, unbonding and epoch boundaries are exact rather than subject to the wall clock.

Size: JOYNET_STATEFUL_EXAMPLES examples (default 200) of up to JOYNET_STATEFUL_STEPS steps
(default 8, the bootstrap being the first). Hypothesis ends some examples early, so the run counts
the steps it took and fails below JOYNET_STATEFUL_MIN_STEPS: `make test-long` runs 800 examples of
up to 20 steps and requires 10,000 (500 x 20 gave 7,772).
"""

import os
from dataclasses import dataclass, field
from fractions import Fraction

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chain_asserts import reverts_with
from joynet.deploy import JOY
from joynet.marketplace import Request

EXAMPLES = int(os.environ.get("JOYNET_STATEFUL_EXAMPLES", "200"))
STEPS = int(os.environ.get("JOYNET_STATEFUL_STEPS", "8"))
MIN_STEPS = int(os.environ.get("JOYNET_STATEFUL_MIN_STEPS", "0"))  # a run that took fewer steps fails

# As in test_invariants.py: chain-bound examples take milliseconds, so no deadline; no example
# database; no "explain" phase (it re-runs a failure under a line tracer, minutes through Ape).
CHAIN_SETTINGS = dict(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

GENESIS_SUPPLY = 10**9 * JOY
MAX_UINT256 = 2**256 - 1
ZERO32 = b"\0" * 32

# deploy-config.yaml, network `local`; the test checks the deployed contracts against it.
EXPECTED_PARAMETERS = {
    "minStake": 1_000 * JOY,
    "taskBond": 10 * JOY,
    "unbondingDelay": 60,
    "maxMissedDeadlines": 3,
    "slashBeneficiaryShareBps": 5_000,
    "shares": (7_000, 2_000, 1_000),
    "maxDeadlineWindow": 86_400,
    "epochLength": 3_600,
    "ownerShareBps": 3_000,
}
BPS = 10_000

MODEL_NAMES = ("digits", "minilm", "resnet", "whisper")
OWNER_INDICES = (4, 3, 6)  # genesis holders who publish models: model_owner, carol, an operator
OPERATOR_INDICES = (6, 7, 8, 9)  # the `operators` fixture
OUTPUTS = {name: keccak(text=f"output:{name}") for name in "ABC"}

OPEN, SETTLED, REFUNDED = 1, 2, 3
STATUS_NAMES = {0: "None", OPEN: "Open", SETTLED: "Settled", REFUNDED: "Refunded"}
OWNER_ROLE, NODE_ROLE = "owner", "node"

quorums = st.integers(1, 3)
prices = st.one_of(st.integers(1, 5).map(lambda joy: joy * JOY), st.integers(JOY, 5 * JOY))
owners = st.sampled_from(OWNER_INDICES)
capacities = st.integers(1, 3)
stakes = st.integers(1_000, 3_000).map(lambda joy: joy * JOY)
holder_index = st.integers(0, 9)
deadlines = st.integers(1, 2 * 3_600)  # seconds after the request; epochs last 3,600 s
fundings = st.one_of(st.integers(1, 1_000).map(lambda joy: joy * JOY), st.integers(1, 1_000 * JOY))
output_names = st.sampled_from(sorted(OUTPUTS))


def model_id(name):
    return keccak(text=name)


# ---- fast reads ----


class RawViews:
    """View calls as bare ``eth_call``s, one at a time (about 0.5 ms each; Ape's contract call
    wrapper costs ~3 ms) or many in one JSON-RPC batch (one HTTP round trip for all of them)."""

    def __init__(self, provider):
        self.provider = provider
        self._prepared = {}

    def _request(self, to, signature, args):
        if signature not in self._prepared:
            inner = signature[signature.index("(") + 1 : -1]
            self._prepared[signature] = (keccak(text=signature)[:4], [t for t in inner.split(",") if t])
        selector, arg_types = self._prepared[signature]
        data = selector + abi_encode(arg_types, list(args))
        return ("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])

    @staticmethod
    def _decode(result, returns):
        if not isinstance(result, (bytes, bytearray)):
            result = bytes.fromhex(result[2:] if result.startswith("0x") else result)
        values = abi_decode(list(returns), bytes(result))
        return values[0] if len(returns) == 1 else values

    def call(self, to, signature, *args, returns=("uint256",)):
        result = self.provider.make_request(*self._request(to, signature, args))
        return self._decode(result, returns)

    def batch(self, calls):
        """``calls``: (to, signature, args, returns) tuples; their decoded results, in order."""
        requests = [self._request(to, signature, args) for to, signature, args, _ in calls]
        web3_provider = self.provider.web3.provider
        if not hasattr(web3_provider, "make_batch_request"):
            return [self.call(to, sig, *args, returns=returns) for to, sig, args, returns in calls]
        responses = web3_provider.make_batch_request(requests)
        assert isinstance(responses, list) and len(responses) == len(calls), f"batch failed: {responses}"
        decoded = []
        for (to, signature, args, returns), response in zip(calls, responses):
            assert "error" not in response, f"{signature}{tuple(args)} at {to}: {response['error']}"
            decoded.append(self._decode(response["result"], returns))
        return decoded

    def block_timestamp(self, tag):
        block = self.provider.make_request("eth_getBlockByNumber", [tag, False])
        value = block["timestamp"]
        return int(value, 16) if isinstance(value, str) else int(value)


NODE_INFO = ("uint96", "uint96", "uint16", "uint16", "uint8", "bool", "bool")
REQUEST_ABI = "(uint256,bytes32,address,uint96,bytes32,uint64,address[])"  # ModelMarketplace.Request
EPOCH_INFO = ("uint128", "uint64", "uint64", "uint128", "uint16", "bool", "bool")


# ---- the model ----


@dataclass
class ModelState:
    name: str
    id: bytes
    owner: str
    quorum: int
    price: int


@dataclass
class NodeState:
    address: str
    stake: int
    capacity: int
    models: set
    bonded: int = 0
    active_tasks: int = 0
    missed: int = 0
    active: bool = True
    unbonding: int = 0
    ready_at: int = 0


@dataclass
class RequestState:
    id: int
    model: str
    model_id: bytes
    requester: str
    escrow: int
    input_commitment: bytes
    deadline: int
    nodes: list
    submitted: dict = field(default_factory=dict)  # node -> output commitment, in order
    status: int = OPEN

    @property
    def mask(self):
        """The marketplace's submission bits: kept for quorum requests while they are open."""
        if len(self.nodes) == 1 or self.status != OPEN:
            return 0
        return sum(1 << slot for slot, node in enumerate(self.nodes) if node in self.submitted)

    @property
    def on_chain(self):
        """The ModelMarketplace.Request the chain keeps the digest of."""
        return Request(
            self.id, self.model_id, self.requester, self.escrow, self.input_commitment, self.deadline, self.nodes
        )

    @property
    def digest(self):
        if self.status != OPEN:
            return self.status.to_bytes(32, "big")  # a closed request's slot keeps its final status
        return keccak(abi_encode([REQUEST_ABI], [tuple(self.on_chain)]))


@dataclass
class EpochState:
    pool: int = 0
    paid: int = 0
    inferences: int = 0
    node_tasks: int = 0


class Env:
    """What the machine needs from the fixtures, read once per test."""

    def __init__(self, chain, token, marketplace, coordinator, proof_of_use, timelock, holders, outsider):
        self.chain, self.token = chain, token
        self.marketplace, self.coordinator, self.proof_of_use = marketplace, coordinator, proof_of_use
        self.timelock, self.holders, self.outsider = timelock, holders, outsider
        self.views = RawViews(chain.provider)
        self.senders = {account.address: account for account in [*holders, outsider]}
        self.operators = [holders[index].address for index in OPERATOR_INDICES]
        # Everything that can hold JOY: the genesis holders, the treasury, the contracts, a stranger.
        self.joy_holders = [
            *(account.address for account in holders),
            timelock.address,
            marketplace.address,
            coordinator.address,
            proof_of_use.address,
            outsider.address,
        ]
        self.earners = [*(account.address for account in holders), timelock.address]
        # What the run covered, reported at its end: Hypothesis may end an example before
        # stateful_step_count steps, so examples x steps is only an upper bound.
        self.examples_run = self.checks_run = 0

        mk, co, pou = marketplace.address, coordinator.address, proof_of_use.address
        v = self.views
        self.params = {
            "minStake": v.call(co, "minStake()"),
            "taskBond": v.call(co, "taskBond()"),
            "unbondingDelay": v.call(co, "unbondingDelay()"),
            "maxMissedDeadlines": v.call(co, "maxMissedDeadlines()"),
            "slashBeneficiaryShareBps": v.call(co, "slashBeneficiaryShareBps()"),
            "shares": tuple(
                v.call(mk, f"{name}()") for name in ("nodeShareBps", "ownerShareBps", "protocolShareBps")
            ),
            "maxDeadlineWindow": v.call(mk, "maxDeadlineWindow()"),
            "epochLength": v.call(pou, "epochLength()"),
            "ownerShareBps": v.call(pou, "ownerShareBps()"),
        }
        self.genesis_time = v.call(pou, "genesisTime()")
        self.marketplace_treasury = v.call(mk, "treasury()", returns=("address",))
        self.coordinator_treasury = v.call(co, "treasury()", returns=("address",))


class ProtocolMachine(RuleBasedStateMachine):
    """Random use of the whole marketplace core, followed by a Python model of it."""

    def __init__(self, env):
        super().__init__()
        self.env = env
        self.views = env.views
        p = env.params
        self.min_stake, self.bond = p["minStake"], p["taskBond"]
        self.unbonding_delay, self.max_missed = p["unbondingDelay"], p["maxMissedDeadlines"]
        self.slash_share_bps = p["slashBeneficiaryShareBps"]
        self.node_bps, self.owner_bps, self.protocol_bps = p["shares"]
        self.epoch_length, self.pool_owner_bps = p["epochLength"], p["ownerShareBps"]
        self.mk, self.co, self.pou = env.marketplace.address, env.coordinator.address, env.proof_of_use.address
        self.treasury = to_checksum_address(env.marketplace_treasury)
        self.slash_treasury = to_checksum_address(env.coordinator_treasury)
        self.snapshot_id = None
        env.examples_run += 1

    # ---- bootstrap and reset ----

    @initialize(data=st.data())
    def bootstrap(self, data):
        """Snapshot, then a random starting population."""
        self.snapshot_id = self.env.chain.snapshot()
        # Every transaction's timestamp is pinned by the model, strictly increasing.
        self.clock = max(self.views.block_timestamp("pending"), self.views.block_timestamp("latest") + 1)
        token = self.env.token.address
        self.balances = {a: self.views.call(token, "balanceOf(address)", a) for a in self.env.joy_holders}
        self.models = {}  # name -> ModelState
        self.nodes = {}  # address -> NodeState
        self.requests = {}  # id -> RequestState
        self.earnings = {}  # address -> JOY credited in the marketplace
        self.protocol_earnings = 0  # the protocol's share of settled fees, held for the treasury
        self.epochs = {}  # epoch -> EpochState
        self.usage = {}  # (epoch, role, address) -> inferences (owner) or tasks (node)
        self.claimed = set()  # (epoch, role, address)
        self.funded = self.paid = 0
        self.seen_status = {}  # request id -> status last read from the chain
        self.chain_state = None  # (clock, what _chain read) for the invariants of one step

        # The population the rules start from (each part also has its own rule): 1-3 models,
        # 1-4 nodes serving some of them, 0-3 requests and maybe a funded epoch, so that even
        # short runs reach submissions, verdicts, timeouts and claims.
        models = st.lists(st.sampled_from(MODEL_NAMES), unique=True, min_size=1, max_size=3)
        for name in data.draw(models, label="models"):
            quorum, price = data.draw(quorums, label="quorum"), data.draw(prices, label="price")
            self._register_model(name, quorum, price, data.draw(owners, label="owner"))
        operators = st.lists(st.sampled_from(OPERATOR_INDICES), unique=True, min_size=1, max_size=4)
        for operator in data.draw(operators, label="nodes"):
            served = data.draw(self._served_models(), label="serves")
            capacity, stake = data.draw(capacities, label="capacity"), data.draw(stakes, label="stake")
            self._register_node(operator, capacity, stake, served)
        for _ in range(data.draw(st.integers(0, 3), label="requests")):
            if self._servable():
                name = data.draw(st.sampled_from(self._servable()), label="model")
                requester = data.draw(holder_index, label="requester")
                self._request(name, requester, data.draw(deadlines, label="deadline in"))
        if (amount := data.draw(st.one_of(st.none(), fundings), label="funding")) is not None:
            self._fund(data.draw(holder_index, label="funder"), 0, amount)

    def teardown(self):
        if self.snapshot_id is not None:
            self.env.chain.restore(self.snapshot_id)

    # ---- helpers ----

    def _send(self, method, *args, sender):
        """Sends a transaction in a block whose timestamp is ``self.clock``; returns the receipt."""
        self.env.chain.provider.make_request("evm_setNextBlockTimestamp", [self.clock])
        try:
            return method(*args, sender=self.env.senders[sender] if isinstance(sender, str) else sender)
        finally:
            self.tx_time = self.clock
            self.clock += 1

    def _move(self, source, target, amount):
        self.balances[source] -= amount
        self.balances[target] += amount

    def _epoch(self, timestamp):
        return (timestamp - self.env.genesis_time) // self.epoch_length

    def _holder(self, index):
        return self.env.holders[index].address

    def _eligible(self, model):
        return [
            node
            for node in self.nodes.values()
            if node.active
            and model.name in node.models
            and node.active_tasks < node.capacity
            and node.stake - node.bonded >= self.bond
        ]

    def _servable(self):
        return [name for name, model in sorted(self.models.items()) if len(self._eligible(model)) >= model.quorum]

    def _unservable(self):
        return [name for name, model in sorted(self.models.items()) if len(self._eligible(model)) < model.quorum]

    @staticmethod
    def _score(node):
        """The coordinator's load score: the free share of the node's capacity (stake does not
        weigh in). Exact, as the contract's 2**-32 fixed point orders every share correctly."""
        return Fraction(node.capacity - node.active_tasks, node.capacity)

    def _open(self):
        return [request for _, request in sorted(self.requests.items()) if request.status == OPEN]

    def _deactivate(self, node):
        node.active = False

    def _release(self, address):
        node = self.nodes[address]
        assert node.active_tasks > 0, f"model: release of {address} without an open task"
        bond = node.bonded // node.active_tasks
        node.bonded -= bond
        node.active_tasks -= 1
        node.missed = 0

    def _slash(self, address, beneficiary, missed_deadline):
        node = self.nodes[address]
        assert node.active_tasks > 0, f"model: slash of {address} without an open task"
        bond = node.bonded // node.active_tasks
        node.stake -= bond
        node.bonded -= bond
        node.active_tasks -= 1
        too_many = False
        if missed_deadline:
            node.missed = min(node.missed + 1, 255)
            too_many = node.missed >= self.max_missed
        if node.active and (too_many or node.stake < self.min_stake):
            self._deactivate(node)
        share = bond * self.slash_share_bps // BPS
        self._move(self.co, beneficiary, share)
        self._move(self.co, self.slash_treasury, bond - share)

    def _credit(self, address, amount):
        if amount:
            self.earnings[address] = self.earnings.get(address, 0) + amount

    def _refund(self, request):
        request.status = REFUNDED
        self._move(self.mk, request.requester, request.escrow)

    def _settle(self, request, accepted):
        model = self.models[request.model]
        dissenters = [node for node, output in request.submitted.items() if output != accepted]
        agreeing = [node for node in request.nodes if node not in dissenters]
        request.status = SETTLED
        fee = request.escrow
        nodes_paid = fee * self.node_bps // BPS
        owner_paid = fee * self.owner_bps // BPS
        per_node = nodes_paid // len(agreeing)
        protocol_paid = fee - per_node * len(agreeing) - owner_paid
        for node in agreeing:
            self._credit(node, per_node)
            self._release(node)
        self._credit(model.owner, owner_paid)
        self.protocol_earnings += protocol_paid
        for node in dissenters:
            self._slash(node, request.requester, False)
        epoch = self._epoch(self.tx_time)
        info = self.epochs.setdefault(epoch, EpochState())
        info.inferences += 1
        info.node_tasks += len(agreeing)
        key = (epoch, OWNER_ROLE, model.owner)
        self.usage[key] = self.usage.get(key, 0) + 1
        for node in agreeing:
            key = (epoch, NODE_ROLE, node)
            self.usage[key] = self.usage.get(key, 0) + 1
        note(f"request {request.id} settled on {accepted.hex()[:8]}: {len(agreeing)} paid, {len(dissenters)} slashed")

    def _judge(self, request):
        """ProofOfInference: quorum 1 accepts at once; k > 1 waits for all k, then needs a strict majority."""
        if len(request.submitted) < len(request.nodes):
            return
        outputs = list(request.submitted.values())
        best = max(outputs, key=outputs.count)
        if outputs.count(best) * 2 > len(outputs):
            self._settle(request, best)
        else:
            self._refund(request)
            for node in request.nodes:
                self._release(node)
            note(f"request {request.id} refunded: no majority")

    def _reward(self, epoch, role, address):
        usage = self.usage.get((epoch, role, address), 0)
        info = self.epochs.get(epoch, EpochState())
        if usage == 0 or (epoch, role, address) in self.claimed:
            return 0
        owners_part = info.pool * self.pool_owner_bps // BPS
        if role == OWNER_ROLE:
            return owners_part * usage // info.inferences
        return (info.pool - owners_part) * usage // info.node_tasks

    def _claimable(self):
        """(epoch, role, account) with a reward to claim: epochs that ended, or the current one,
        which claim_reward first waits out (no funding can come in between)."""
        current = self._epoch(self.clock)
        return [key for key in sorted(self.usage) if key[0] <= current and self._reward(*key) > 0]

    def _register_model(self, name, quorum, price, owner_index):
        owner = self._holder(owner_index)
        self._send(
            self.env.marketplace.registerModel,
            model_id(name),
            f"ipfs://bafy{name}metadata",
            keccak(text=f"weights:{name}"),
            price,
            (quorum, ZERO32),
            ZERO32,
            sender=owner,
        )
        self.models[name] = ModelState(name, model_id(name), owner, quorum, price)

    def _served_models(self):
        """All registered models (the usual node) or a random non-empty subset of them."""
        names = sorted(self.models)
        return st.one_of(st.just(names), st.lists(st.sampled_from(names), min_size=1, unique=True))

    def _register_node(self, operator_index, capacity, stake, served):
        address = self._holder(operator_index)
        models = [model_id(name) for name in served]
        self._send(self.env.coordinator.registerNode, stake, capacity, models, sender=address)
        self._move(address, self.co, stake)
        self.nodes[address] = NodeState(address, stake, capacity, set(served))

    # ---- rules: registry and stake ----

    @precondition(lambda self: len(self.models) < len(MODEL_NAMES))
    @rule(data=st.data(), quorum=quorums, price=prices, owner=owners)
    def register_model(self, data, quorum, price, owner):
        """A model not registered yet, from a small pool of names."""
        name = data.draw(st.sampled_from([n for n in MODEL_NAMES if n not in self.models]), label="name")
        self._register_model(name, quorum, price, owner)

    @precondition(lambda self: self.models and len(self.nodes) < len(OPERATOR_INDICES))
    @rule(data=st.data(), capacity=capacities, stake=stakes)
    def register_node(self, data, capacity, stake):
        """An operator that has no node yet registers one (each registers once)."""
        free = [i for i in OPERATOR_INDICES if self._holder(i) not in self.nodes]
        operator = data.draw(st.sampled_from(free), label="operator")
        served = data.draw(self._served_models(), label="serves")
        self._register_node(operator, capacity, stake, served)

    @precondition(lambda self: self.nodes)
    @rule(data=st.data(), amount=st.integers(1, 1_000).map(lambda joy: joy * JOY))
    def add_stake(self, data, amount):
        """More stake; an inactive node stays inactive until it reactivates."""
        address = data.draw(st.sampled_from(sorted(self.nodes)), label="node")
        self._send(self.env.coordinator.addStake, amount, sender=address)
        self._move(address, self.co, amount)
        self.nodes[address].stake += amount  # does not reactivate an inactive node

    @precondition(lambda self: any(not n.active and n.stake >= self.min_stake for n in self.nodes.values()))
    @rule(data=st.data())
    def reactivate(self, data):
        """A node deactivated by missed deadlines or a low stake, back at the minimum, rejoins."""
        candidates = sorted(a for a, n in self.nodes.items() if not n.active and n.stake >= self.min_stake)
        address = data.draw(st.sampled_from(candidates), label="node")
        self._send(self.env.coordinator.reactivate, sender=address)
        self.nodes[address].active, self.nodes[address].missed = True, 0

    # ---- rules: requests ----

    def _request(self, name, requester_index, deadline_in, from_balance=False):
        """Requests an inference of a model the model says can be served, and checks the assignment.
        ``from_balance``: paid from the requester's deposited balance (requestInferenceFromBalance)."""
        model, requester = self.models[name], self._holder(requester_index)
        eligible = {node.address: node for node in self._eligible(model)}
        scores = {address: self._score(node) for address, node in eligible.items()}
        request_id = len(self.requests) + 1
        deadline = self.clock + deadline_in
        input_commitment = keccak(text=f"input:{request_id}")
        receipt = self._send(
            self.env.marketplace.requestInferenceFromBalance if from_balance else self.env.marketplace.requestInference,
            model.id,
            input_commitment,
            "ipfs://bafyinput",
            model.price,
            deadline,
            sender=requester,
        )
        (event,) = receipt.decode_logs(self.env.marketplace.InferenceRequested)
        assert event.requestId == request_id, f"request id {event.requestId}, expected {request_id}"
        nodes = [to_checksum_address(address) for address in event.nodes]
        note(f"request {request_id} ({name}, quorum {model.quorum}) assigned to {nodes}")

        # Quorum distinct eligible nodes, each the least loaded of those left (sets of up to 8
        # nodes are scanned whole; ties may go either way).
        assert len(nodes) == model.quorum == len(set(nodes)), f"assigned {nodes} for quorum {model.quorum}"
        for index, address in enumerate(nodes):
            assert address in eligible, f"assigned {address}, which cannot take the task"
            best = max(score for a, score in scores.items() if a not in nodes[:index])
            assert scores[address] == best, f"assigned {address} (free share {scores[address]}) over one of {best}"
        for address in nodes:
            self.nodes[address].bonded += self.bond
            self.nodes[address].active_tasks += 1
        if from_balance:
            self.earnings[requester] -= model.price  # the JOY is in the marketplace already
        else:
            self._move(requester, self.mk, model.price)
        self.requests[request_id] = RequestState(
            request_id, name, model.id, requester, model.price, input_commitment, deadline, nodes
        )

    @rule(depositor=holder_index, other=st.one_of(st.none(), holder_index), amount=st.integers(1, 50).map(lambda joy: joy * JOY))
    def deposit(self, depositor, other, amount):
        """A holder prepays JOY into its own balance in the marketplace, or into another's."""
        account = self._holder(depositor if other is None else other)
        self._send(self.env.marketplace.deposit, account, amount, sender=self._holder(depositor))
        self._move(self._holder(depositor), self.mk, amount)
        self._credit(account, amount)

    @precondition(lambda self: self._servable())
    @rule(data=st.data(), deadline_in=deadlines)
    def request_from_balance(self, data, deadline_in):
        """Requests a servable model paid from a holder's balance: one that can pay if there is one
        (else any holder); with too small a balance it must revert and change nothing."""
        name = data.draw(st.sampled_from(self._servable()), label="model")
        model = self.models[name]
        holders = [self._holder(i) for i in range(10)]
        funded = [i for i, address in enumerate(holders) if self.earnings.get(address, 0) >= model.price]
        requester = data.draw(st.sampled_from(funded or list(range(10))), label="requester")
        if funded:
            self._request(name, requester, deadline_in, from_balance=True)
            return
        with reverts_with("ModelMarketplaceInsufficientBalance"):
            self._send(
                self.env.marketplace.requestInferenceFromBalance, model.id, keccak(text="input:unpaid"),
                "ipfs://bafyinput", model.price, self.clock + deadline_in, sender=holders[requester],
            )

    @precondition(lambda self: self._servable())
    @rule(data=st.data(), requester=holder_index, deadline_in=deadlines, probe=st.integers(0, 4))
    def request_inference(self, data, requester, deadline_in, probe):
        """Requests a model that enough eligible nodes serve; sometimes (probe 0) one that has
        fewer eligible nodes than its quorum instead, which must revert and move nothing."""
        unservable = self._unservable()
        if probe or not unservable:
            self._request(data.draw(st.sampled_from(self._servable()), label="model"), requester, deadline_in)
            return
        model = self.models[data.draw(st.sampled_from(unservable), label="model without free nodes")]
        with reverts_with("NodeCoordinatorNoEligibleNode"):
            self._send(
                self.env.marketplace.requestInference,
                model.id,
                keccak(text="input:refused"),
                "ipfs://bafyinput",
                model.price,
                self.clock + deadline_in,
                sender=self._holder(requester),
            )
        # The invariants compare every balance, stake, bond and requestCount with the model.

    def _submittable(self):
        return [
            (request.id, node)
            for request in self._open()
            if self.clock <= request.deadline
            for node in request.nodes
            if node not in request.submitted
        ]

    @precondition(lambda self: self._submittable())
    @rule(data=st.data(), output=output_names)
    def submit_result(self, data, output):
        """One assigned node that has not submitted yet submits, before the deadline."""
        request_id, node = data.draw(st.sampled_from(self._submittable()), label="request, node")
        request = self.requests[request_id]
        self._send(
            self.env.marketplace.submitResult, request.on_chain, OUTPUTS[output], "ipfs://bafyout", b"", sender=node
        )
        request.submitted[node] = OUTPUTS[output]
        self._judge(request)

    def _servable_requests(self):
        return sorted({request_id for request_id, _ in self._submittable()})

    @precondition(lambda self: self._submittable())
    @rule(data=st.data())
    def serve_request(self, data):
        """Every assigned node that has not submitted yet submits, one transaction each, until the
        verdict (quorum requests reach agreement or disagreement in one step)."""
        request = self.requests[data.draw(st.sampled_from(self._servable_requests()), label="request")]
        for node in [n for n in request.nodes if n not in request.submitted]:
            if request.status != OPEN or self.clock > request.deadline:
                break
            output = data.draw(output_names, label="output")
            self._send(
                self.env.marketplace.submitResult,
                request.on_chain,
                OUTPUTS[output],
                "ipfs://bafyout",
                b"",
                sender=node,
            )
            request.submitted[node] = OUTPUTS[output]
            self._judge(request)

    def _declinable(self):
        """Open requests a node may still decline: before the deadline, no result in yet."""
        return [r.id for r in self._open() if not r.submitted and self.clock <= r.deadline]

    @precondition(lambda self: self._declinable())
    @rule(data=st.data())
    def decline_request(self, data):
        """An assigned node declines before any result is in and before the deadline: refund,
        every node released, nobody slashed."""
        request = self.requests[data.draw(st.sampled_from(self._declinable()), label="request")]
        node = data.draw(st.sampled_from(request.nodes), label="node")
        self._send(self.env.marketplace.declineRequest, request.on_chain, "input fails the schema", sender=node)
        self._refund(request)
        for address in request.nodes:
            self._release(address)

    @precondition(lambda self: self._open())
    @rule(data=st.data(), late_by=st.integers(1, 120), closer=st.integers(0, 10))
    def close_expired(self, data, late_by, closer):
        """Moves time past the request's deadline (if needed) and closes it; anyone may."""
        request = self.requests[data.draw(st.sampled_from([r.id for r in self._open()]), label="request")]
        self.clock = max(self.clock, request.deadline + late_by)
        sender = self.env.outsider.address if closer == 10 else self._holder(closer)
        self._send(self.env.marketplace.closeExpired, request.on_chain, sender=sender)
        self._refund(request)
        for address in request.nodes:
            if address in request.submitted:
                self._release(address)
            else:
                self._slash(address, request.requester, True)

    @precondition(lambda self: any(self.earnings.values()))
    @rule(data=st.data(), caller=st.integers(0, 10))
    def withdraw_earnings(self, data, caller):
        """Anyone pays out an account's earnings to it."""
        account = data.draw(st.sampled_from(sorted(a for a, v in self.earnings.items() if v)), label="account")
        sender = self.env.outsider.address if caller == 10 else self._holder(caller)
        self._send(self.env.marketplace.withdrawEarnings, account, sender=sender)
        self._move(self.mk, account, self.earnings.pop(account))

    @precondition(lambda self: self.protocol_earnings)
    @rule(caller=st.integers(0, 10))
    def withdraw_protocol_earnings(self, caller):
        """Anyone sends the protocol's share of settled fees to the treasury."""
        sender = self.env.outsider.address if caller == 10 else self._holder(caller)
        self._send(self.env.marketplace.withdrawProtocolEarnings, sender=sender)
        self._move(self.mk, self.treasury, self.protocol_earnings)
        self.protocol_earnings = 0

    # ---- rules: unstaking ----

    @precondition(lambda self: any(n.stake for n in self.nodes.values()))
    @rule(data=st.data(), permille=st.integers(1, 1_000), beyond_free=st.integers(0, 3))
    def request_unstake(self, data, permille, beyond_free):
        """Unstakes part of a node's free stake. Sometimes (always, if nothing is free) asks for
        more than the free stake, up to all of it: invariant 5, the bonded part cannot leave, so
        that reverts with NodeCoordinatorStakeBonded and nothing moves."""
        address = data.draw(st.sampled_from(sorted(a for a, n in self.nodes.items() if n.stake)), label="node")
        node = self.nodes[address]
        free = node.stake - node.bonded
        if node.bonded and (beyond_free == 0 or free == 0):
            amount = free + 1 + (node.bonded - 1) * permille // 1_000  # in (free, stake]
            with reverts_with("NodeCoordinatorStakeBonded"):
                self._send(self.env.coordinator.requestUnstake, amount, sender=address)
            return
        amount = max(1, free * permille // 1_000)
        self._send(self.env.coordinator.requestUnstake, amount, sender=address)
        node.stake -= amount
        node.unbonding += amount
        node.ready_at = self.tx_time + self.unbonding_delay
        if node.active and node.stake < self.min_stake:
            self._deactivate(node)

    @precondition(lambda self: any(n.unbonding for n in self.nodes.values()))
    @rule(data=st.data(), wait=st.integers(0, 60))
    def withdraw_unstaked(self, data, wait):
        """Waits out the unbonding delay if needed (to the second, or later) and withdraws."""
        address = data.draw(st.sampled_from(sorted(a for a, n in self.nodes.items() if n.unbonding)), label="node")
        node = self.nodes[address]
        if self.clock < node.ready_at:
            self.clock = node.ready_at + wait
        self._send(self.env.coordinator.withdrawUnstaked, sender=address)
        self._move(self.co, address, node.unbonding)
        node.unbonding, node.ready_at = 0, 0

    # ---- rules: epochs and rewards ----

    @rule()
    def advance_epoch(self):
        """One epoch (3,600 s) passes; the next transaction is the first in the new time."""
        self.clock += self.epoch_length

    def _fund(self, funder_index, ahead, amount):
        funder = self._holder(funder_index)
        epoch = self._epoch(self.clock) + ahead
        self._send(self.env.proof_of_use.fundEpoch, epoch, amount, sender=funder)
        self._move(funder, self.pou, amount)
        self.epochs.setdefault(epoch, EpochState()).pool += amount
        self.funded += amount

    @rule(funder=holder_index, ahead=st.integers(0, 1), amount=fundings)
    def fund_epoch(self, funder, ahead, amount):
        """A genesis holder funds the pool of the current (or the next) epoch."""
        self._fund(funder, ahead, amount)

    @precondition(lambda self: self._claimable())
    @rule(data=st.data(), wait=st.integers(0, 60))
    def claim_reward(self, data, wait):
        """An owner or node claims its reward for an epoch, waiting for the epoch to end first
        if it has not (to the second, or later)."""
        epoch, role, account = data.draw(st.sampled_from(self._claimable()), label="epoch, role, account")
        if self._epoch(self.clock) <= epoch:
            self.clock = self.env.genesis_time + (epoch + 1) * self.epoch_length + wait
        amount = self._reward(epoch, role, account)
        pou = self.env.proof_of_use
        claim = pou.claimOwnerReward if role == OWNER_ROLE else pou.claimNodeReward
        self._send(claim, epoch, sender=account)
        self._move(self.pou, account, amount)
        self.epochs[epoch].paid += amount
        self.paid += amount
        self.claimed.add((epoch, role, account))

    # ---- invariants ----

    def _chain(self):
        """Everything the invariants read, in one batch of eth_calls per chain state."""
        if self.chain_state is not None and self.chain_state[0] == self.clock:
            return self.chain_state[1]
        token, mk, co, pou = self.env.token.address, self.mk, self.co, self.pou
        calls, keys = [], []

        def read(key, to, signature, *args, returns=("uint256",)):
            keys.append(key)
            calls.append((to, signature, args, returns))

        read("supply", token, "totalSupply()")
        for address in self.env.joy_holders:
            read(("balance", address), token, "balanceOf(address)", address)
        for name in ("totalEscrow", "totalEarnings", "protocolEarnings", "requestCount"):
            read(name, mk, f"{name}()")
        for address in self.env.earners:
            read(("earnings", address), mk, "earnings(address)", address)
        for request_id in self.requests:
            read(("status", request_id), mk, "requestStatus(uint256)", request_id, returns=("uint8",))
            read(("digest", request_id), mk, "requestDigest(uint256)", request_id, returns=("bytes32",))
            read(("mask", request_id), mk, "submittedMask(uint256)", request_id)
        for address in self.env.operators:
            read(("node", address), co, "nodeInfo(address)", address, returns=NODE_INFO)
            read(("unbonding", address), co, "unbondingOf(address)", address, returns=("uint256", "uint256"))
        for name, model in self.models.items():
            read(("eligible", name), co, "eligibleNodes(bytes32)", model.id)
        read("outstanding", pou, "outstandingRewards()")
        for epoch in self.epochs:
            read(("epoch", epoch), pou, "epochInfo(uint256)", epoch, returns=EPOCH_INFO)

        state = dict(zip(keys, self.views.batch(calls)))
        self.chain_state = (self.clock, state)
        return state

    @invariant()
    def joy_is_conserved(self):
        self.env.checks_run += 1  # the invariants run after every step, the bootstrap included
        chain = self._chain()
        on_chain = {address: chain["balance", address] for address in self.env.joy_holders}
        assert sum(on_chain.values()) == chain["supply"] == GENESIS_SUPPLY, (
            f"holders sum to {sum(on_chain.values())}, supply {chain['supply']}, genesis {GENESIS_SUPPLY}"
        )
        wrong = {a: (on_chain[a], self.balances[a]) for a in on_chain if on_chain[a] != self.balances[a]}
        assert not wrong, f"balances (chain, model) differ: {wrong}"

    @invariant()
    def contracts_hold_what_they_owe(self):
        chain = self._chain()
        total_escrow, total_earnings = chain["totalEscrow"], chain["totalEarnings"]
        protocol = chain["protocolEarnings"]
        assert protocol == self.protocol_earnings, f"protocolEarnings {protocol} != model {self.protocol_earnings}"
        assert chain["balance", self.mk] == total_escrow + total_earnings + self.protocol_earnings, (
            f"marketplace holds {chain['balance', self.mk]}, owes escrow {total_escrow} + earnings"
            f" {total_earnings} + protocol share {self.protocol_earnings}"
        )
        open_escrow = sum(r.escrow for r in self._open())
        assert total_escrow == open_escrow, f"totalEscrow {total_escrow} != escrow of the open requests {open_escrow}"
        assert total_earnings == sum(self.earnings.values()), (
            f"totalEarnings {total_earnings} != credited {sum(self.earnings.values())}"
        )
        wrong = {
            a: (chain["earnings", a], self.earnings.get(a, 0))
            for a in self.env.earners
            if chain["earnings", a] != self.earnings.get(a, 0)
        }
        assert not wrong, f"earnings (chain, model) differ: {wrong}"

        owed = 0
        for address in self.env.operators:
            stake = chain["node", address][0]
            unbonding, ready_at = chain["unbonding", address]
            owed += stake + unbonding
            node = self.nodes.get(address)
            expected = (node.unbonding, node.ready_at) if node else (0, 0)
            assert (unbonding, ready_at) == expected, f"unbonding of {address}: {(unbonding, ready_at)} != {expected}"
        assert chain["balance", self.co] == owed, (
            f"coordinator holds {chain['balance', self.co]}, owes stake + unbonding {owed}"
        )

        assert chain["balance", self.pou] == chain["outstanding"] == self.funded - self.paid, (
            f"ProofOfUse holds {chain['balance', self.pou]}, outstanding {chain['outstanding']},"
            f" funded - paid {self.funded - self.paid}"
        )
        for epoch, info in self.epochs.items():
            pool, inferences, tasks, paid, *_ = chain["epoch", epoch]
            assert (pool, paid, inferences, tasks) == (info.pool, info.paid, info.inferences, info.node_tasks), (
                f"epoch {epoch}: chain (pool, paid, inferences, tasks) {(pool, paid, inferences, tasks)}"
                f" != model {info}"
            )

    @invariant()
    def requests_end_exactly_once(self):
        chain = self._chain()
        tally = {OPEN: 0, SETTLED: 0, REFUNDED: 0}
        for request_id, request in self.requests.items():
            status, digest, mask = chain["status", request_id], chain["digest", request_id], chain["mask", request_id]
            before = self.seen_status.get(request_id, 0)
            allowed = {0: {OPEN}, OPEN: {OPEN, SETTLED, REFUNDED}, SETTLED: {SETTLED}, REFUNDED: {REFUNDED}}[before]
            assert status in allowed, (
                f"request {request_id} went {STATUS_NAMES[before]} -> {STATUS_NAMES.get(status, status)}"
            )
            self.seen_status[request_id] = status
            assert status == request.status, (
                f"request {request_id} is {STATUS_NAMES.get(status, status)},"
                f" model says {STATUS_NAMES[request.status]}"
            )
            assert (bytes(digest), mask) == (request.digest, request.mask), (
                f"request {request_id}: chain (digest, submitted mask) {(bytes(digest).hex(), mask)}"
                f" != model {(request.digest.hex(), request.mask)}"
            )
            tally[status] += 1
        count = chain["requestCount"]
        assert tally[SETTLED] + tally[REFUNDED] + tally[OPEN] == count == len(self.requests), (
            f"settled {tally[SETTLED]} + refunded {tally[REFUNDED]} + open {tally[OPEN]} vs requestCount {count}"
        )

    @invariant()
    def nodes_within_capacity_and_bonds(self):
        chain = self._chain()
        open_tasks = {}
        for request in self._open():
            for address in request.nodes:
                open_tasks[address] = open_tasks.get(address, 0) + 1
        for address in self.env.operators:
            stake, bonded, capacity, active_tasks, missed, active, registered = chain["node", address]
            node = self.nodes.get(address)
            if node is None:
                assert not registered and stake == bonded == active_tasks == 0, f"{address} is not registered"
                continue
            assert active_tasks <= capacity, f"{address} runs {active_tasks} tasks with capacity {capacity}"
            assert active_tasks == open_tasks.get(address, 0), (
                f"{address} has activeTasks {active_tasks} but {open_tasks.get(address, 0)} open assigned requests"
            )
            assert bonded == active_tasks * self.bond, f"{address} bonds {bonded} for {active_tasks} tasks"
            assert bonded <= stake, f"{address} bonds {bonded} of a stake of {stake}"
            on_chain = (stake, capacity, missed, active, registered)
            expected = (node.stake, node.capacity, node.missed, node.active, True)
            assert on_chain == expected, f"node {address}: chain {on_chain} != model {node}"
        for name in self.models:
            expected = sum(1 for n in self.nodes.values() if n.active and name in n.models)
            assert chain["eligible", name] == expected, (
                f"{name}: {chain['eligible', name]} nodes in the eligibility set, model says {expected}"
            )


def test_protocol__random_use__keeps_every_invariant(
    chain, token, marketplace, coordinator, proof_of_use, timelock, genesis_holders, outsider, capsys
):
    env = Env(chain, token, marketplace, coordinator, proof_of_use, timelock, genesis_holders, outsider)
    assert env.params == EXPECTED_PARAMETERS, f"deployed parameters {env.params} != {EXPECTED_PARAMETERS}"
    treasuries = {to_checksum_address(env.marketplace_treasury), to_checksum_address(env.coordinator_treasury)}
    assert treasuries == {timelock.address}, f"treasuries {treasuries}, timelock {timelock.address}"
    # One unlimited approval per holder and spender (OpenZeppelin never spends it down), before
    # any snapshot, so that each step is one transaction instead of approve + call.
    for holder in genesis_holders:
        for spender in (marketplace, coordinator, proof_of_use):
            token.approve(spender, MAX_UINT256, sender=holder)
    run_state_machine_as_test(
        lambda: ProtocolMachine(env),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, **CHAIN_SETTINGS),
    )
    with capsys.disabled():
        print(f"\nprotocol state machine: {env.checks_run} steps (bootstraps included), each followed by "
              f"every invariant, in {env.examples_run} examples")
    assert env.checks_run >= MIN_STEPS, f"{env.checks_run} steps, fewer than the {MIN_STEPS} asked for"


