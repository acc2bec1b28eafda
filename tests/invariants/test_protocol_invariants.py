"""Invariants of the marketplace core, checked with a Hypothesis state machine on a live chain,
against honest users and adversarial actors.

The whole protocol is deployed as `ape run deploy` does it, every ownership already with the
timelock. Each example starts from a chain snapshot with a random bootstrap (1-3 models, 3-4
nodes, maybe the two attackers below, 0-3 requests, some assigned at once, maybe a funded epoch),
then runs random rules.

Honest rules: register a model (commitment, then registration from the next block; quorum 1-3,
a few JOY, a response window of its own or the network's; now and then a squatter tries to
register the committed id in between: ModelMarketplaceRegistrationNotCommitted), register a node
(an operator, once; a subset of the public models, capacity 1-3, 1,000-3,000 JOY), add stake,
reactivate, renew the leases that are due (as the agents do) or end or renew one node's lease,
deposit (into one's own balance or another's), request an inference paid by transfer
or from a balance (now and then first with a deadline below the earliest or above the latest
allowed: ModelMarketplaceInvalidDeadline; mostly assigned by someone in the next block, as the
client does), assign a request's nodes (anyone, from a later block; or several requests in one
assignNodesBatch, which skips those already assigned, closed or unassignable), serve the oldest
servable request (honest answers; by request id, some quorum requests get a withholder or a
dissenter, and every other unassigned single-node request is answered by its drawn node, whose
result assigns it), serve a random request (assigned if need be, or a single-node one answered
unassigned by its drawn node or, refused, by another; the single node submits; each quorum
node commits, mostly honestly, now and then as a dissenter, a withholder, a copier or absent;
then the revealers reveal, a copier tries to reveal what it copied, and the request may be closed
once its reveal window is over), commit or reveal a quorum result one at a time, decline (before
any commit), close an expired request (time moves past its deadline, plus the reveal window for
a quorum; unassigned requests too), let 257 blocks pass (unassigned requests lose their seed),
set an operator, withdraw a marketplace balance (by the account or an operator it approved; anyone else:
ModelMarketplaceNotAuthorized), send the protocol's fees to the treasury, request an unstake
(beyond the free stake: NodeCoordinatorStakeBonded), withdraw unstaked JOY, advance an epoch
(once no request is running), fund an epoch's ProofOfUse pool (dust to 1,000 JOY), claim an owner
or node reward, and misuse (a wrong call that must revert with its error and move nothing).
Every assignment's draw is predicted exactly and checked (too few eligible nodes:
NodeCoordinatorNoEligibleNode, nothing moves; a seed block more than 256 blocks back:
ModelMarketplaceSeedNotAvailable). Outputs come from {A, B, C, zero} (zero is an output like any
other), honest nodes answering A.

Adversarial actors (two fresh accounts with 20,000 JOY each, and behaviours any node may adopt):
- The STEERER requests and runs a node serving every public model. It first asks for a deadline
  below the earliest allowed (ModelMarketplaceInvalidDeadline); now and then its attacker
  contract (contracts/test/AssignmentSteerer.sol) tries to request and assign in one transaction
  (ModelMarketplaceSeedNotAvailable: the seed block's hash does not exist yet); then it requests
  with exactly the earliest deadline and assigns through the contract's assignIfDrawn, which
  reverts the whole assignment (AssignmentSteererNotDrawn) unless its own node is drawn. A draw
  it dislikes it holds back and tries again later (the load, hence the draw, changes), or
  re-rolls at once: its node stops serving the model and serves it again, which changes the
  model's eligibility set, so that the hash of that later block seeds the draw; anyone else may
  assign the request meanwhile.
- The WASH TRADER owns a private model (quorum 1) that only its own node serves, requests it from
  its own deposited balance, submits with its node (up to three trades a step, often in an epoch
  whose pool a genesis holder funded first), and collects every ProofOfUse reward its trades
  earned.
- DISSENTERS, COPIERS and WITHHOLDERS: any assigned quorum node may commit and reveal another
  output, commit a copy of another node's sealed result (it cannot reveal it: the seal binds the
  node, so revealing the other node's output and salt reverts with
  ModelMarketplaceRevealMismatch, and it ends silent), commit and never reveal, or never commit.

A Python model follows every step (token balances, marketplace balances and where they came from, stakes, bonds,
unbonding, eligibility sets in their on-chain order, requests with their commitments and
reveals, usage weights, pools, every account's gifts and income), and after every step the chain
must agree with it and with these invariants:

1. JOY is conserved: the genesis holders, the attackers and the steerer's contract, the
   timelock, the marketplace, the coordinator, ProofOfUse and an outsider hold together
   totalSupply, still 10**9 JOY; each holds exactly what the model says.
2. Every contract holds exactly what it owes: the marketplace totalEscrow() + totalBalances() +
   protocolEarnings(), with totalEscrow the escrow of the open requests (assigned or not) and
   every account's balance as modelled; the coordinator the sum over nodes of stake + unbonding;
   ProofOfUse what was funded minus what was paid (== outstandingRewards(), and every touched
   epoch's pool, paid-out and weight totals, and every model's per-epoch inference count).
3. Every request ends exactly once: its status only moves Open -> Settled or Open -> Refunded and
   never changes afterwards; exactly one InferenceSettled or InferenceRefunded event was emitted
   for each closed request and none for an open one; settled + refunded + open == requestCount();
   an open request's digest is the hash of the request as made and assigned, a closed one's its
   final status; the commit/reveal mask and every committed slot's sealed result (then revealed
   output) are as modelled while open and cleared once closed.
4. No node exceeds its capacity; each node's activeTasks is the number of open requests it is
   assigned to; its bonded JOY is one task bond per open task and never exceeds its stake; each
   eligibility set holds exactly the active nodes serving the model, in the order the contract's
   swap-and-pop set keeps them (the order the draw depends on), and eligibleChangedAt is the
   block of its last change.
5. No bonded stake can leave: an unstake of more than stake - bonded reverts with
   NodeCoordinatorStakeBonded and changes nothing.
6. Every slash goes to the treasury: each NodeSlashed event names no beneficiary and pays it
   nothing, and the slashes of a step are exactly the modelled ones.
7. No node earns without an accepted result: the node part of every account's marketplace
   balance equals what the InferenceSettled events paid to the nodes whose ResultSubmitted
   output (submitted at quorum 1, revealed at quorum k) was the accepted one, split evenly among
   them; and each account's balance is exactly deposits in + node part + owner part -
   withdrawals - spent on requests.
8. Nobody profits from the protocol, attackers included. For every account a, with its whole
   wealth W(a) = wallet + marketplace balance + stake + unbonding read from the chain:

       W(a) <= start(a) + gifts_in(a) - gifts_out(a) + income_from_others(a) - P(a) / 10

   gifts_in: JOY others deposited into a's balance; gifts_out: JOY a deposited into others'
   balances or gave to a pool; income_from_others: fee parts credited to a (node or owner) by
   requests that others made, plus, of each reward a claimed, at most the cap on the weight that
   others' settlements gave it (weight x 10^9 x role share x 9,000 / 10,000^2); P(a): the
   protocol parts of the fees of a's own settled requests. Why it is sound: a's own settled
   request costs its escrow F and returns at most the owner part and one node part, so a loses
   at least the protocol part v; it adds at most floor(v / 10^9) owner weight and
   floor(v / 10^9) / n node weight, whose rewards are capped at 27 % and 63 % of v (REWARD_CAP_BPS
   9,000 x the pool's 30/70 split), so it nets at most -v / 10; refunds give back at most the
   escrow (no majority with reveals: 30 %), slashes only take, stake and unbonding are a's own
   JOY. So a pure requester (no node, no model: income_from_others is 0) never holds more than it
   started with plus gifts, and the steerer and the wash trader (requester + node, requester +
   node + owner) lose at least a tenth of the protocol part of each of their own settled
   requests, rewards included. The bound is tight: a wash trader whose rewards reach the cap
   loses exactly a tenth (the run reports the least fraction each attacker lost).

Assignment is checked exactly: quorum distinct nodes, each eligible (its lease running in the
draw's block) and the least loaded (largest
free share of its capacity) of those left, and precisely the nodes the coordinator's full scan of
sets of up to 8 nodes draws from keccak(blockhash(seed block), id), the seed block being the
request's block or, if later, the last block in which the model's eligibility set changed (the
model follows eligibleChangedAt); the deadline becomes max(deadline, now + response window).

The model pins every block's timestamp (evm_setNextBlockTimestamp before each transaction, from
the snapshot's block on), so deadlines, windows, unbonding and epoch boundaries are exact rather
than subject to the wall clock; anvil mines one block per transaction, so any later rule is "a
later block". Transactions go straight to anvil (eth_sendTransaction: it holds the genesis
holders' keys and impersonates the generated accounts), each with a gas limit that folds in a
hash of the example's history, so that a replayed example (Hypothesis replays while shrinking)
is the same chain block for block, seeds included.

Size: JOYNET_STATEFUL_EXAMPLES examples (default 120) of up to JOYNET_STATEFUL_STEPS steps
(default 10, the bootstrap being the first). Hypothesis ends some examples early, so the run counts
the steps it took and fails below JOYNET_STATEFUL_MIN_STEPS: `make test-long` runs 800 examples of
up to 20 steps and requires 10,000. The run prints its step count and what the attackers and the
protocol did (settlements, slashes, held-back draws, refused copies, capped rewards...).
"""

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from ape.exceptions import ContractLogicError

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from helpers.chain_asserts import reverts_with
from helpers.draw_model import predict_draw
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, registration_commitment, seal_result

EXAMPLES = int(os.environ.get("JOYNET_STATEFUL_EXAMPLES", "120"))
STEPS = int(os.environ.get("JOYNET_STATEFUL_STEPS", "10"))
MIN_STEPS = int(os.environ.get("JOYNET_STATEFUL_MIN_STEPS", "0"))  # a run that took fewer steps fails

GENESIS_SUPPLY = 10**9 * JOY
MAX_UINT256 = 2**256 - 1
ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20

# deploy-config.yaml, network `local`; the test checks the deployed contracts against it.
EXPECTED_PARAMETERS = {
    "minStake": 1_000 * JOY,
    "taskBond": 10 * JOY,
    "unbondingDelay": 60,
    "maxMissedDeadlines": 3,
    "slashBeneficiaryShareBps": 0,
    "leaseBlocks": 120,
    "shares": (7_000, 2_000, 1_000),
    "maxDeadlineWindow": 86_400,
    "minResponseWindow": 60,
    "revealWindow": 60,
    "epochLength": 3_600,
    "ownerShareBps": 3_000,
}
BPS = 10_000
WEIGHT_UNIT = 10**9  # ProofOfUse.WEIGHT_UNIT
REWARD_CAP_BPS = 9_000  # ProofOfUse.REWARD_CAP_BPS
REJOIN_DELAY = 256  # NodeCoordinator.REJOIN_DELAY, in blocks
BLOCKHASH_DEPTH = 256
TX_TIMEOUT = 120  # seconds, as ape-config.yaml gives Ape on a starved machine
TX_GAS = 3_000_000  # every transaction's gas limit (a quorum-3 reveal that settles uses < 500,000)

MODEL_NAMES = ("digits", "minilm", "resnet", "whisper")
WASH_MODEL = "washmodel"  # the wash trader's private model
OWNER_INDICES = (4, 3, 6)  # genesis holders who publish models: model_owner, carol, an operator
OPERATOR_INDICES = (6, 7, 8, 9)  # the `operators` fixture
ADVERSARY_JOY = 20_000 * JOY
STEERER_CONTRACT_JOY = 100 * JOY
# Any value is an output, zero included (a ZK model's class 0).
OUTPUTS = {**{name: keccak(text=f"output:{name}") for name in "ABC"}, "zero": ZERO32}

OPEN, SETTLED, REFUNDED = 1, 2, 3
STATUS_NAMES = {0: "None", OPEN: "Open", SETTLED: "Settled", REFUNDED: "Refunded"}
OWNER_ROLE, NODE_ROLE = "owner", "node"
REVEALED_OFFSET = 16

quorums = st.sampled_from([1, 2, 3, 3])  # quorum 3 is where majorities can leave a node out
prices = st.one_of(st.integers(1, 5).map(lambda joy: joy * JOY), st.integers(JOY, 5 * JOY))
owners = st.sampled_from(OWNER_INDICES)
capacities = st.integers(1, 3)
stakes = st.integers(1_000, 3_000).map(lambda joy: joy * JOY)
holder_index = st.integers(0, 9)
caller_index = st.integers(0, 10)  # 10: the outsider, who holds no JOY
# A model's own response window: 0 (the network's), one below the network's minimum (which then
# applies), or longer ones.
model_windows = st.sampled_from([0, 0, 30, 90, 600])
# Seconds of deadline beyond the earliest allowed; often none (the earliest deadline).
deadline_slack = st.one_of(st.just(0), st.integers(0, 2 * 3_600))
# Pools from dust (pro-rata rewards below the cap) to 1,000 JOY (rewards at the cap).
fundings = st.one_of(
    st.integers(1, 1_000).map(lambda joy: joy * JOY), st.integers(1, 1_000 * JOY), st.integers(1, 10**16)
)
# Honest nodes mostly agree (A, the request's answer); B, C and zero make dissent and split votes.
output_names = st.sampled_from(["A", "A", "A", "B", "C", "zero"])
WRONG_OUTPUTS = ["B", "C", "zero"]
# What an assigned quorum node does in serve_request: the honest answer, another one, the honest
# answer never revealed, a copy of another node's seal, or nothing.
BEHAVIOURS = ["honest"] * 4 + ["dissent", "withhold", "copy", "absent"]


def model_id(name):
    return keccak(text=name)


def as_bytes(value):
    """Bytes from a JSON-RPC hex string (or bytes already)."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def word(value):
    return int.from_bytes(value, "big")


TOPICS = {
    name: keccak(text=signature)
    for name, signature in {
        "InferenceRequested": "InferenceRequested(uint256,bytes32,address,bytes32,string,uint256,uint64,address)",
        "NodesAssigned": "NodesAssigned(uint256,uint64,address[])",
        "ResultCommitted": "ResultCommitted(uint256,address,uint256)",
        "ResultSubmitted": "ResultSubmitted(uint256,address,bytes32,string)",
        "InferenceSettled": "InferenceSettled(uint256,bytes32,uint256,uint256,uint256)",
        "InferenceRefunded": "InferenceRefunded(uint256,address,uint256,string)",
        "NodeSlashed": "NodeSlashed(address,uint256,address,uint256)",
    }.items()
}


def decode_logs(receipt, address, name):
    """The raw logs of one event emitted by ``address`` in ``receipt``, as (topics, data) with
    topics as bytes (the event's own topic first) and data as bytes: parsing them by hand is
    ~100x cheaper than Ape's decoder, and every rule reads a few."""
    found = []
    for log in receipt.logs:
        if to_checksum_address(log["address"]) != address:
            continue
        topics = [as_bytes(topic) for topic in log["topics"]]
        if topics and topics[0] == TOPICS[name]:
            found.append((topics, as_bytes(log["data"])))
    return found


# ---- fast reads ----


class RawViews:
    """View calls as bare ``eth_call``s, one at a time (about 0.5 ms each; Ape's contract call
    wrapper costs ~3 ms) or many in one JSON-RPC batch (one HTTP round trip for all of them)."""

    def __init__(self, provider):
        self.provider = provider
        self._prepared = {}

    def calldata(self, signature, args):
        if signature not in self._prepared:
            inner = signature[signature.index("(") + 1 : -1]
            self._prepared[signature] = (keccak(text=signature)[:4], _split_types(inner))
        selector, arg_types = self._prepared[signature]
        return selector + abi_encode(arg_types, list(args))

    def _request(self, to, signature, args):
        return ("eth_call", [{"to": to, "data": "0x" + self.calldata(signature, args).hex()}, "latest"])

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

    def block(self, tag):
        return self.provider.make_request("eth_getBlockByNumber", [tag, False])

    def block_timestamp(self, tag):
        value = self.block(tag)["timestamp"]
        return int(value, 16) if isinstance(value, str) else int(value)

    def block_number(self):
        value = self.provider.make_request("eth_blockNumber", [])
        return int(value, 16) if isinstance(value, str) else int(value)

    def block_hash(self, number):
        return as_bytes(self.block(hex(number))["hash"])


def _split_types(inner):
    """Splits a signature's argument list at its top-level commas (tuples stay whole)."""
    types, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            types.append(inner[start:index])
            start = index + 1
    if inner[start:]:
        types.append(inner[start:])
    return types


REQUEST_ABI = "(uint256,bytes32,address,uint96,bytes32,uint64,uint64,address,address[])"  # ModelMarketplace.Request

# The functions the machine sends, by name: their argument types.
SIGNATURES = {
    # ModelMarketplace
    "commitModelRegistration": "(bytes32)",
    "registerModel": "(bytes32,string,bytes32,uint96,(uint8,bytes32,uint32,bool),bytes32,bytes32)",
    "requestInference": "(bytes32,bytes32,string,uint256,uint64)",
    "requestInferenceFromBalance": "(bytes32,bytes32,string,uint256,uint64)",
    "deposit": "(address,uint256)",
    "assignNodes": f"({REQUEST_ABI})",
    "assignNodesBatch": f"({REQUEST_ABI}[])",
    "submitResult": f"({REQUEST_ABI},bytes32,string,bytes)",
    "commitResult": f"({REQUEST_ABI},bytes32)",
    "revealResult": f"({REQUEST_ABI},bytes32,bytes32,string,bytes)",
    "declineRequest": f"({REQUEST_ABI},string)",
    "closeExpired": f"({REQUEST_ABI})",
    "setOperator": "(address,bool)",
    "withdrawBalance": "(address)",
    "withdrawProtocolEarnings": "()",
    # NodeCoordinator
    "registerNode": "(uint96,uint16,bytes32[])",
    "addStake": "(uint96)",
    "reactivate": "()",
    "renewLease": "()",
    "endLease": "()",
    "serveModel": "(bytes32)",
    "stopServingModel": "(bytes32)",
    "requestUnstake": "(uint96)",
    "withdrawUnstaked": "()",
    # AssignmentSteerer (contracts/test), the steerer's attacker contract
    "assignIfDrawn": f"({REQUEST_ABI},address)",
    "requestAndAssign": "(bytes32,uint64)",
    # ProofOfUse
    "fundEpoch": "(uint256,uint256)",
    "claimOwnerReward": "(uint256)",
    "claimNodeReward": "(uint256)",
}


class Receipt(NamedTuple):
    logs: list  # raw JSON-RPC logs
    block_number: int


NODE_INFO = ("uint96", "uint96", "uint16", "uint16", "uint8", "bool", "bool")
EPOCH_INFO = ("uint128", "uint64", "uint64", "uint128", "uint16", "bool", "bool")


# ---- the model ----


@dataclass
class ModelState:
    name: str
    id: bytes
    owner: str
    quorum: int
    price: int
    window: int  # the response window its nodes get: max(its own, the network's minimum)


@dataclass
class NodeState:
    address: str
    stake: int
    capacity: int
    models: list  # model names, in the order the node registered them
    bonded: int = 0
    active_tasks: int = 0
    missed: int = 0
    active: bool = True
    unbonding: int = 0
    ready_at: int = 0
    left_at: int = 0  # the last block in which it left an eligibility set
    lease_end: int = 0  # the first block in which its lease no longer runs


@dataclass
class RequestState:
    id: int
    model: str
    model_id: bytes
    requester: str
    escrow: int
    input_commitment: bytes
    deadline: int
    seed_block: int
    coordinator: str
    nodes: list = field(default_factory=list)  # empty until assigned
    commits: dict = field(default_factory=dict)  # node -> sealed result (quorum)
    secrets: dict = field(default_factory=dict)  # node -> (output, salt): the nodes able to reveal
    withheld: set = field(default_factory=set)  # nodes that committed and will never reveal
    copied: dict = field(default_factory=dict)  # copier node -> the node whose seal it copied
    revealed: dict = field(default_factory=dict)  # node -> output submitted (quorum 1) or revealed
    status: int = OPEN
    closings: int = 0  # InferenceSettled / InferenceRefunded events seen for it
    chain_results: dict = field(default_factory=dict)  # node -> output, from ResultSubmitted events
    chain_settlement: tuple = None  # (accepted output, nodesPaid), from InferenceSettled

    @property
    def quorum(self):
        return len(self.nodes)

    @property
    def mask(self):
        """The marketplace's commit/reveal bits: kept for quorum requests while they are open."""
        if len(self.nodes) < 2 or self.status != OPEN:
            return 0
        bits = 0
        for slot, node in enumerate(self.nodes):
            bits |= (node in self.commits) << slot
            bits |= (node in self.revealed) << (slot + REVEALED_OFFSET)
        return bits

    def slot_value(self, slot):
        """resultOf(id, slot): the sealed result, then the revealed output; cleared at closing."""
        node = self.nodes[slot]
        if self.status != OPEN or len(self.nodes) < 2:
            return ZERO32
        return self.revealed.get(node) or self.commits.get(node) or ZERO32

    @property
    def on_chain(self):
        """The ModelMarketplace.Request the chain keeps the digest of."""
        return Request(
            self.id, self.model_id, self.requester, self.escrow, self.input_commitment, self.deadline,
            self.seed_block, self.coordinator, list(self.nodes),
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
    owner_weight: int = 0
    node_weight: int = 0


class Env:
    """What the machine needs from the fixtures, read once per test."""

    def __init__(self, chain, token, marketplace, coordinator, proof_of_use, timelock, holders, outsider, adversaries,
                 steerer_contract):
        self.chain, self.token = chain, token
        self.marketplace, self.coordinator, self.proof_of_use = marketplace, coordinator, proof_of_use
        self.timelock, self.holders, self.outsider = timelock, holders, outsider
        self.steerer, self.washer = adversaries
        self.steerer_contract = steerer_contract
        self.views = RawViews(chain.provider)
        self.rpc = chain.provider.web3.provider
        self.operators = [holders[index].address for index in OPERATOR_INDICES]
        self.node_candidates = [*self.operators, self.steerer.address, self.washer.address]
        # Every account whose wealth the machine bounds (invariant 8): everyone but the treasury.
        self.players = [*(account.address for account in holders), self.steerer.address, self.washer.address,
                        outsider.address]
        # Everything that can hold JOY: the players, the treasury and the contracts.
        self.joy_holders = [*self.players, timelock.address, marketplace.address, coordinator.address,
                            proof_of_use.address, steerer_contract.address]
        self.earners = [*self.players, timelock.address]
        # What the run covered, reported at its end: Hypothesis may end an example before
        # stateful_step_count steps, so examples x steps is only an upper bound.
        self.examples_run = self.checks_run = 0
        self.stats = {}

        mk, co, pou = marketplace.address, coordinator.address, proof_of_use.address
        v = self.views
        self.params = {
            "minStake": v.call(co, "minStake()"),
            "taskBond": v.call(co, "taskBond()"),
            "unbondingDelay": v.call(co, "unbondingDelay()"),
            "maxMissedDeadlines": v.call(co, "maxMissedDeadlines()"),
            "slashBeneficiaryShareBps": v.call(co, "slashBeneficiaryShareBps()"),
            "leaseBlocks": v.call(co, "leaseBlocks()"),
            "shares": tuple(
                v.call(mk, f"{name}()") for name in ("nodeShareBps", "ownerShareBps", "protocolShareBps")
            ),
            "maxDeadlineWindow": v.call(mk, "maxDeadlineWindow()"),
            "minResponseWindow": v.call(mk, "minResponseWindow()"),
            "revealWindow": v.call(mk, "revealWindow()"),
            "epochLength": v.call(pou, "epochLength()"),
            "ownerShareBps": v.call(pou, "ownerShareBps()"),
        }
        self.genesis_time = v.call(pou, "genesisTime()")
        self.marketplace_treasury = v.call(mk, "treasury()", returns=("address",))
        self.coordinator_treasury = v.call(co, "treasury()", returns=("address",))

    def count(self, name, amount=1):
        self.stats[name] = self.stats.get(name, 0) + amount


class ProtocolMachine(RuleBasedStateMachine):
    """Random use of the whole marketplace core by honest and adversarial actors, followed by a
    Python model of it."""

    def __init__(self, env):
        super().__init__()
        self.env = env
        self.views = env.views
        p = env.params
        self.min_stake, self.bond = p["minStake"], p["taskBond"]
        self.unbonding_delay, self.max_missed = p["unbondingDelay"], p["maxMissedDeadlines"]
        self.node_bps, self.owner_bps, self.protocol_bps = p["shares"]
        self.max_deadline_window, self.min_window = p["maxDeadlineWindow"], p["minResponseWindow"]
        self.reveal_window = p["revealWindow"]
        self.lease_blocks = p["leaseBlocks"]
        self.draw_block = None  # the block of the draws the model predicts (None: the next one)
        self.epoch_length, self.pool_owner_bps = p["epochLength"], p["ownerShareBps"]
        self.mk, self.co, self.pou = env.marketplace.address, env.coordinator.address, env.proof_of_use.address
        self.treasury = to_checksum_address(env.marketplace_treasury)
        self.slash_treasury = to_checksum_address(env.coordinator_treasury)
        self.steerer, self.washer = env.steerer.address, env.washer.address
        self.snapshot_id = None
        env.examples_run += 1

    # ---- bootstrap and reset ----

    @initialize(data=st.data())
    def bootstrap(self, data):
        """Snapshot, then a random starting population."""
        # A raw snapshot, checked when restored (Ape's chain.restore ignores a failed evm_revert).
        self.snapshot_id = self.env.rpc.make_request("evm_snapshot", [])["result"]
        assert self.views.call(self.mk, "requestCount()") == 0, "the chain did not start this example fresh"
        # Every transaction's timestamp is pinned by the model, strictly increasing from the
        # snapshot's block (not the wall clock), so that every replay of an example is the same.
        self.clock = self.views.block_timestamp("latest") + 1
        self.block = self.views.block_number()  # the latest block (each transaction mines the next)
        self.history = b""  # hash of the transactions sent in this example (see _send)
        token = self.env.token.address
        self.balances = {a: self.views.call(token, "balanceOf(address)", a) for a in self.env.joy_holders}
        self.start_wealth = {a: self.balances[a] for a in self.env.players}  # no stake nor marketplace balance yet
        self.models = {}  # name -> ModelState
        self.nodes = {}  # address -> NodeState
        self.eligible = {}  # model name -> active nodes serving it, in the contract's set order
        self.set_changed = {}  # model name -> the last block in which its eligibility set changed
        self.requests = {}  # id -> RequestState
        self.held = {}  # address -> JOY the marketplace holds for it (its balances(address))
        self.ledger = {kind: {} for kind in ("deposit", NODE_ROLE, OWNER_ROLE, "withdrawn", "spent")}
        self.operator_approvals = set()  # (account, operator)
        self.protocol_earnings = 0  # the protocol's share of settled fees (and kept refunds)
        self.epochs = {}  # epoch -> EpochState
        self.usage = {}  # (epoch, role, address) -> weight in WEIGHT_UNITs
        self.usage_from_others = {}  # (epoch, role, address) -> the part of it others' requests gave
        self.model_usage = {}  # (epoch, model name) -> settled inferences
        self.claimed = set()  # (epoch, role, address)
        self.funded = self.paid = 0
        # Invariant 8: JOY given and received outside the protocol's own flows, honest income.
        self.gifts_in, self.gifts_out = {}, {}
        self.income_from_others = {}  # address -> Fraction
        self.own_protocol_parts = {}  # requester -> protocol parts of its settled requests
        self.expected_slashes = []  # nodes the model slashed in the current step
        self.seen_status = {}  # request id -> status last read from the chain
        self.chain_state = None  # what _chain read for the invariants of this step
        self.wash_ready = self.steerer_ready = False
        self.block_hashes = {}  # seed block -> its hash
        self.held_back = set()  # the steerer's requests whose first draw it did not like

        # The population the rules start from (each part also has its own rule): 1-3 models,
        # 3-4 nodes serving some of them, the attackers (often), 0-3 requests (some assigned)
        # and maybe a funded epoch, so that even short runs reach verdicts, timeouts and claims.
        names = st.lists(st.sampled_from(MODEL_NAMES), unique=True, min_size=1, max_size=3)
        for name in data.draw(names, label="models"):
            quorum, price = data.draw(quorums, label="quorum"), data.draw(prices, label="price")
            owner, window = self._holder(data.draw(owners, label="owner")), data.draw(model_windows, label="window")
            self._register_model(name, quorum, price, owner, window)
        operators = st.lists(st.sampled_from(OPERATOR_INDICES), unique=True, min_size=3, max_size=4)
        for operator in data.draw(operators, label="nodes"):
            served = data.draw(self._served_models(), label="serves")
            capacity, stake = data.draw(capacities, label="capacity"), data.draw(stakes, label="stake")
            self._register_node(self._holder(operator), capacity, stake, served)
        if data.draw(st.booleans(), label="steerer"):
            capacity, stake = data.draw(capacities, label="steerer capacity"), data.draw(stakes, label="steerer stake")
            self._setup_steerer(capacity, stake)
        if data.draw(st.booleans(), label="wash trader"):
            self._setup_washer(data.draw(prices, label="wash price"), data.draw(stakes, label="wash stake"))
        for _ in range(data.draw(st.integers(0, 3), label="requests")):
            name = data.draw(st.sampled_from(self._public_models()), label="model")
            requester = self._holder(data.draw(holder_index, label="requester"))
            request = self._request(name, requester, data.draw(deadline_slack, label="slack"))
            if data.draw(st.integers(0, 2), label="assign"):
                self._assign(request, self.env.outsider.address)
        if (amount := data.draw(st.one_of(st.none(), fundings), label="funding")) is not None:
            self._fund(self._holder(data.draw(holder_index, label="funder")), 0, amount)

    def teardown(self):
        if self.snapshot_id is not None:
            reverted = self.env.rpc.make_request("evm_revert", [self.snapshot_id])
            assert reverted.get("result") is True, f"evm_revert({self.snapshot_id}): {reverted}"

    # ---- helpers ----

    def _send(self, to, function, *args, sender):
        """Sends ``function`` of the contract at ``to`` from ``sender`` in a block whose timestamp
        is ``self.clock``; returns the receipt, or raises the revert as a ContractLogicError
        carrying the error data (which ``_reverts`` matches by selector).

        Straight eth_sendTransaction to anvil, which holds the genesis holders' keys and
        impersonates the generated accounts: Ape's transaction path (signing in pure Python,
        validation, a trace for every revert) made the run four times slower, and it sends
        thousands."""
        rpc = self.env.rpc
        rpc.make_request("evm_setNextBlockTimestamp", [self.clock])
        self.chain_state = None
        try:
            data = "0x" + self.views.calldata(f"{function}{SIGNATURES[function]}", args).hex()
            # Examples start from the same snapshot, and anvil still answers for the hash of a
            # transaction that a restored snapshot undid, and answers eth_sendTransaction before
            # mining: the same transaction in another example once returned that example's
            # receipt. So the receipt counts only once it is from the block this transaction
            # makes, and the gas limit folds in a hash of the example's history (transactions,
            # time, empty blocks), which keeps every replay of the same draws identical (its
            # blocks, hence its seeds, too) and gives different histories different hashes. A gas
            # limit also spares anvil an estimate; a reverting call mines with status 0.
            block = self.block + 1
            context = self.clock.to_bytes(8, "big") + block.to_bytes(8, "big")
            self.history = keccak(self.history + context + bytes.fromhex(sender[2:] + to[2:] + data[2:]))
            gas = TX_GAS + word(self.history) % 1_000_000
            transaction = {"from": sender, "to": to, "data": data, "gas": hex(gas)}
            response = rpc.make_request("eth_sendTransaction", [transaction])
            if "error" in response:
                error = response["error"]
                revert = error.get("data") if isinstance(error.get("data"), str) else error.get("message")
                raise ContractLogicError(revert_message=revert, set_ape_traceback=False)
            receipt, waited = None, 0.0
            while receipt is None or int(receipt["blockNumber"], 16) != block:
                receipt = rpc.make_request("eth_getTransactionReceipt", [response["result"]])["result"]
                if receipt is None or int(receipt["blockNumber"], 16) != block:
                    assert waited < TX_TIMEOUT, f"{function}: no receipt from block {block} after {TX_TIMEOUT} s"
                    time.sleep(0.002)
                    waited += 0.002
            self.block = block
            timestamp = receipt.get("blockTimestamp", self.clock)
            timestamp = int(timestamp, 16) if isinstance(timestamp, str) else timestamp
            assert timestamp == self.clock, f"{function}: a receipt from another block ({timestamp}, not {self.clock})"
            if int(receipt["status"], 16) != 1:
                # anvil mines a reverting transaction; its trace holds the revert data.
                trace = rpc.make_request("debug_traceTransaction", [response["result"], {"tracer": "callTracer"}])
                raise ContractLogicError(revert_message=trace["result"].get("output") or str(trace),
                                         set_ape_traceback=False)
            self.tx_block = block
            return Receipt(receipt["logs"], block)
        finally:
            self.tx_time = self.clock
            self.clock += 1

    def _reverts(self, error):
        """reverts_with(error), matched by selector in the ABI of the contract that declares it."""
        for prefix, contract in (("NodeCoordinator", self.env.coordinator),
                                 ("AssignmentSteerer", self.env.steerer_contract)):
            if error.startswith(prefix):
                return reverts_with(error, abi=contract)
        return reverts_with(error, abi=self.env.marketplace)

    def _move(self, source, target, amount):
        self.balances[source] -= amount
        self.balances[target] += amount

    def _add(self, table, key, amount):
        table[key] = table.get(key, 0) + amount

    def _epoch(self, timestamp):
        return (timestamp - self.env.genesis_time) // self.epoch_length

    def _holder(self, index):
        return self.env.holders[index].address

    def _caller(self, index):
        return self.env.outsider.address if index == 10 else self._holder(index)

    def _public_models(self):
        return [name for name in sorted(self.models) if name != WASH_MODEL]

    def _free_score(self, address, picked=()):
        """NodeCoordinator._score: 0 if the node cannot take a task now, else its free share of
        capacity in units of 2**-32 (an idle node scores IDLE_SCORE)."""
        node = self.nodes[address]
        if address in picked or not node.active or node.active_tasks >= node.capacity:
            return 0
        if node.stake - node.bonded < self.bond:
            return 0
        if (self.block + 1 if self.draw_block is None else self.draw_block) >= node.lease_end:
            return 0  # its lease does not run in the draw's block
        return ((node.capacity - node.active_tasks) << 32) // node.capacity

    def _open(self):
        return [request for _, request in sorted(self.requests.items()) if request.status == OPEN]

    # eligibility sets: EnumerableSet.AddressSet appends, and removes by moving the last entry
    # into the removed one's place.

    def _join_set(self, name, address):
        members = self.eligible.setdefault(name, [])
        if address not in members:
            members.append(address)
            self.set_changed[name] = self.tx_block

    def _leave_set(self, name, address):
        members = self.eligible[name]
        index = members.index(address)
        last = members.pop()
        if index < len(members):
            members[index] = last
        self.set_changed[name] = self.tx_block
        self.nodes[address].left_at = self.tx_block

    def _rejoin_refused(self, node):
        """Whether the node's next transaction may not join a set: it left one less than
        REJOIN_DELAY blocks before that transaction's block."""
        return node.left_at != 0 and self.block + 1 < node.left_at + REJOIN_DELAY

    def _join_sets(self, node):
        for name in node.models:
            self._join_set(name, node.address)

    def _deactivate(self, node):
        node.active = False
        for name in node.models:
            self._leave_set(name, node.address)

    def _stop_serving(self, address, name):
        self._send(self.co, "stopServingModel", model_id(name), sender=address)
        node = self.nodes[address]
        node.models.remove(name)
        if node.active:
            self._leave_set(name, address)

    def _serve(self, address, name):
        """serveModel; returns whether it was accepted (an active node that left a set less
        than REJOIN_DELAY blocks ago is refused)."""
        node = self.nodes[address]
        if node.active and self._rejoin_refused(node):
            with self._reverts("NodeCoordinatorRejoinTooSoon"):
                self._send(self.co, "serveModel", model_id(name), sender=address)
            return False
        self._send(self.co, "serveModel", model_id(name), sender=address)
        node.models.append(name)
        if node.active:
            self._join_set(name, address)
        return True

    def _release(self, address):
        node = self.nodes[address]
        assert node.active_tasks > 0, f"model: release of {address} without an open task"
        bond = node.bonded // node.active_tasks
        node.bonded -= bond
        node.active_tasks -= 1
        node.missed = 0

    def _slash(self, address, missed_deadline):
        """Every slash goes to the treasury (the marketplace names no beneficiary)."""
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
        self._move(self.co, self.slash_treasury, bond)
        self.expected_slashes.append((address, bond))
        self.env.count("slashes")

    def _credit(self, address, amount, kind, payer=None):
        """Credits a marketplace balance: a deposit, or a node's or owner's part of a fee paid by
        ``payer``; what others pay is income for invariant 8."""
        if not amount:
            return
        self._add(self.held, address, amount)
        self._add(self.ledger[kind], address, amount)
        if kind != "deposit" and payer != address:
            self._add(self.income_from_others, address, Fraction(amount))

    def _refund(self, request, amount):
        request.status = REFUNDED
        self._move(self.mk, request.requester, amount)
        self.protocol_earnings += request.escrow - amount  # kept: the nodes' share of a refund

    def _settle(self, request, accepted, agreeing):
        model = self.models[request.model]
        request.status = SETTLED
        fee = request.escrow
        owner_paid = fee * self.owner_bps // BPS
        per_node = fee * self.node_bps // BPS // len(agreeing)
        protocol_paid = fee - per_node * len(agreeing) - owner_paid
        for node in agreeing:
            assert request.revealed.get(node) == accepted, f"model: pays {node}, whose result was not accepted"
            self._credit(node, per_node, NODE_ROLE, request.requester)
            self._release(node)
        self._credit(model.owner, owner_paid, OWNER_ROLE, request.requester)
        self.protocol_earnings += protocol_paid
        self._add(self.own_protocol_parts, request.requester, protocol_paid)
        # ProofOfUse.recordUsage(model, owner, agreeing, protocol_paid): weights in WEIGHT_UNITs.
        epoch = self._epoch(self.tx_time)
        self._add(self.model_usage, (epoch, request.model), 1)
        owner_weight = protocol_paid // WEIGHT_UNIT
        node_weight = owner_weight // len(agreeing)
        if owner_weight:
            info = self.epochs.setdefault(epoch, EpochState())
            info.owner_weight += owner_weight
            info.node_weight += node_weight * len(agreeing)
            self._weigh((epoch, OWNER_ROLE, model.owner), owner_weight, request.requester)
        if node_weight:
            for node in agreeing:
                self._weigh((epoch, NODE_ROLE, node), node_weight, request.requester)
        self.env.count(f"settled at quorum {len(request.nodes)}")
        note(f"request {request.id} settled on {accepted.hex()[:8]}: {len(agreeing)} paid {per_node} each")

    def _weigh(self, key, weight, payer):
        self._add(self.usage, key, weight)
        if key[2] != payer:
            self._add(self.usage_from_others, key, weight)

    def _judge(self, request):
        """_judge of a quorum request on its reveals: a strict majority of the k assigned nodes
        settles (dissenters and the silent slashed); else the silent are slashed, revealers
        released, and the requester refunded all (nothing revealed) or all but the nodes' share."""
        k = len(request.nodes)
        outputs = [request.revealed.get(node) for node in request.nodes]
        votes = {}
        for output in outputs:
            if output is not None:
                votes[output] = votes.get(output, 0) + 1
        accepted = next((o for o, n in votes.items() if n * 2 > k), None)
        if accepted is not None:
            for node, output in zip(request.nodes, outputs):
                if output != accepted:
                    self._slash(node, output is None)
                    self.env.count("quorum settled over a silent node" if output is None else
                                   "quorum settled over a dissenter")
            self._settle(request, accepted, [n for n, o in zip(request.nodes, outputs) if o == accepted])
            return
        for node, output in zip(request.nodes, outputs):
            if output is None:
                self._slash(node, True)
            else:
                self._release(node)
        kept = request.escrow * self.node_bps // BPS if votes else 0
        self._refund(request, request.escrow - kept)
        self.env.count("no majority, some revealed" if votes else "no majority, none revealed")
        note(f"request {request.id} refunded without a majority ({len(request.revealed)} revealed)")

    def _reward(self, epoch, role, address):
        usage = self.usage.get((epoch, role, address), 0)
        info = self.epochs.get(epoch, EpochState())
        if usage == 0 or (epoch, role, address) in self.claimed:
            return 0
        owners_part = info.pool * self.pool_owner_bps // BPS
        if role == OWNER_ROLE:
            pro_rata = owners_part * usage // info.owner_weight
        else:
            pro_rata = (info.pool - owners_part) * usage // info.node_weight
        return min(pro_rata, self._cap(epoch, role, address))

    def _cap(self, epoch, role, address):
        share = self.pool_owner_bps if role == OWNER_ROLE else BPS - self.pool_owner_bps
        return self.usage.get((epoch, role, address), 0) * WEIGHT_UNIT * share * REWARD_CAP_BPS // (BPS * BPS)

    def _reward_cap_per_unit(self, role):
        share = self.pool_owner_bps if role == OWNER_ROLE else BPS - self.pool_owner_bps
        return Fraction(WEIGHT_UNIT * share * REWARD_CAP_BPS, BPS * BPS)

    def _claimable(self):
        """(epoch, role, account) with a reward to claim: epochs that ended, or the current one,
        which claim_reward first waits out (no funding can come in between)."""
        current = self._epoch(self.clock)
        return [key for key in sorted(self.usage) if key[0] <= current and self._reward(*key) > 0]

    # ---- events ----

    def _record_results(self, receipt):
        for topics, data in decode_logs(receipt, self.mk, "ResultSubmitted"):
            request = self.requests[word(topics[1])]
            request.chain_results[to_checksum_address(topics[2][12:])] = data[:32]

    def _record_closings(self, receipt):
        """Counts the closing events of each request and checks this step's slashes: each one
        the model expected, all of it to the treasury, none to a beneficiary (invariant 6)."""
        for topics, data in decode_logs(receipt, self.mk, "InferenceSettled"):
            request = self.requests[word(topics[1])]
            request.closings += 1
            request.chain_settlement = (data[:32], word(data[32:64]))
        for topics, _ in decode_logs(receipt, self.mk, "InferenceRefunded"):
            self.requests[word(topics[1])].closings += 1
        slashes = []
        for topics, data in decode_logs(receipt, self.co, "NodeSlashed"):
            beneficiary, share = to_checksum_address(topics[2][12:]), word(data[32:64])
            assert beneficiary == ZERO_ADDRESS and share == 0, f"a slash paid {share} to {beneficiary}"
            slashes.append((to_checksum_address(topics[1][12:]), word(data[:32])))
        assert sorted(slashes) == sorted(self.expected_slashes), (
            f"slashed on chain {slashes}, model {self.expected_slashes}"
        )
        self.expected_slashes = []

    # ---- registry ----

    def _register_model(self, name, quorum, price, owner, window, squatter=None):
        """Commits to the model id, then registers it from the next block (a squatter who saw
        the id first fails: it has no commitment of its own)."""
        key, salt = model_id(name), keccak(text=f"salt:{name}")
        self._send(self.mk, "commitModelRegistration", registration_commitment(key, owner, salt), sender=owner)
        args = (key, f"ipfs://bafy{name}metadata", keccak(text=f"weights:{name}"), price, (quorum, ZERO32, window, False),
                ZERO32, salt)
        if squatter is not None:
            with self._reverts("ModelMarketplaceRegistrationNotCommitted"):
                self._send(self.mk, "registerModel", *args, sender=squatter)
        self._send(self.mk, "registerModel", *args, sender=owner)
        self.models[name] = ModelState(name, key, owner, quorum, price, max(window, self.min_window))
        self.eligible.setdefault(name, [])

    def _served_models(self):
        """All public models (the usual node, two times in three) or a random non-empty subset."""
        names = self._public_models()
        return st.one_of(st.just(names), st.just(names), st.lists(st.sampled_from(names), min_size=1, unique=True))

    def _register_node(self, address, capacity, stake, served):
        self._send(self.co, "registerNode", stake, capacity, [model_id(n) for n in served], sender=address)
        self._move(address, self.co, stake)
        node = self.nodes[address] = NodeState(address, stake, capacity, list(served))
        node.lease_end = self.tx_block + self.lease_blocks
        self._join_sets(node)

    def _setup_steerer(self, capacity, stake):
        self._register_node(self.steerer, capacity, stake, self._public_models())
        self.steerer_ready = True

    def _setup_washer(self, price, stake):
        self._register_model(WASH_MODEL, 1, price, self.washer, 0)
        self._register_node(self.washer, 1, stake, [WASH_MODEL])
        self.wash_ready = True

    # ---- requests ----

    def _request(self, name, requester, slack, from_balance=False):
        """Requests an inference with a deadline ``slack`` seconds after the earliest allowed;
        nobody is assigned yet."""
        model = self.models[name]
        request_id = len(self.requests) + 1
        deadline = self.clock + model.window + slack
        input_commitment = keccak(text=f"input:{request_id}")
        receipt = self._send(
            self.mk, "requestInferenceFromBalance" if from_balance else "requestInference",
            model.id, input_commitment, "ipfs://bafyinput", model.price, deadline, sender=requester,
        )
        ((topics, _),) = decode_logs(receipt, self.mk, "InferenceRequested")
        assert word(topics[1]) == request_id, f"request id {word(topics[1])}, expected {request_id}"
        if from_balance:
            self.held[requester] -= model.price  # the JOY is in the marketplace already
            self._add(self.ledger["spent"], requester, model.price)
        else:
            self._move(requester, self.mk, model.price)
        request = self.requests[request_id] = RequestState(
            request_id, name, model.id, requester, model.price, input_commitment, deadline, receipt.block_number,
            self.co,
        )
        note(f"request {request_id} ({name}, quorum {model.quorum}) by {requester}, deadline {deadline}")
        return request

    def _try_bad_deadline(self, name, requester, too_late, by):
        """A deadline below the earliest allowed (or above the latest) reverts, moving nothing."""
        model = self.models[name]
        deadline = self.clock + (self.max_deadline_window + by if too_late else model.window - by)
        with self._reverts("ModelMarketplaceInvalidDeadline"):
            self._send(self.mk, "requestInference", model.id, keccak(text="input:refused"),
                       "ipfs://bafyinput", model.price, deadline, sender=requester)

    def _seed_block(self, request):
        """The block whose hash seeds the draw: the request's, or the last one in which the
        model's eligibility set changed if later (a reshuffle after the seed was known draws anew)."""
        return max(request.seed_block, self.set_changed.get(request.model, 0))

    def _predict_draw(self, request):
        """The nodes NodeCoordinator.assign picks for the request now (draw_model), or None."""
        model = self.models[request.model]
        members = self.eligible.get(request.model, [])
        if len(members) < model.quorum:
            return None
        seed_block = self._seed_block(request)
        if seed_block not in self.block_hashes:
            self.block_hashes[seed_block] = self.views.block_hash(seed_block)
        seed = word(keccak(abi_encode(["bytes32", "uint256"], [self.block_hashes[seed_block], request.id])))
        return predict_draw(members, model.quorum, seed, self._free_score)

    def _seed_available(self, request):
        # The next transaction is mined in the next block; blockhash covers the 256 before it.
        return self.block + 1 - BLOCKHASH_DEPTH <= self._seed_block(request)

    def _assign(self, request, sender, target=None):
        """assignNodes by ``sender``: the exact predicted draw, or the predicted revert. With a
        ``target``, through the attacker contract's assignIfDrawn, which reverts the whole
        assignment (AssignmentSteererNotDrawn) unless ``target`` is drawn."""
        if target is None:
            call = (self.mk, "assignNodes", request.on_chain)
        else:
            call = (self.env.steerer_contract.address, "assignIfDrawn", request.on_chain, target)
        if not self._seed_available(request):
            with self._reverts("ModelMarketplaceSeedNotAvailable"):
                self._send(*call, sender=sender)
            self.env.count("seed gone")
            return False
        predicted = self._predict_draw(request)
        if predicted is None:
            with self._reverts("NodeCoordinatorNoEligibleNode"):
                self._send(*call, sender=sender)
            self.env.count("no eligible node")
            return False
        if target is not None and target not in predicted:
            with self._reverts("AssignmentSteererNotDrawn"):
                self._send(*call, sender=sender)
            return False
        scores = {address: self._free_score(address) for address in self.eligible[request.model]}
        receipt = self._send(*call, sender=sender)
        (log,) = decode_logs(receipt, self.mk, "NodesAssigned")
        self._assigned(request, log, predicted, scores, sender)
        return True

    def _assigned(self, request, log, predicted, scores, sender):
        """Checks a NodesAssigned event against the model's draw and applies it."""
        model = self.models[request.model]
        topics, data = log
        deadline, nodes = abi_decode(["uint64", "address[]"], data)
        nodes = [to_checksum_address(a) for a in nodes]
        assert word(topics[1]) == request.id, f"NodesAssigned for request {word(topics[1])}, not {request.id}"
        # Quorum distinct eligible nodes (a single node: the least loaded; a quorum's seats: any,
        # at random), and exactly the predicted draw; the deadline leaves the nodes at least the
        # response window.
        assert len(nodes) == model.quorum == len(set(nodes)), f"assigned {nodes} for quorum {model.quorum}"
        for index, address in enumerate(nodes):
            assert scores.get(address), f"assigned {address}, which cannot take the task"
            best = max(score for a, score in scores.items() if a not in nodes[:index])
            assert model.quorum > 1 or scores[address] == best, f"assigned {address} (score {scores[address]}) over one of {best}"
        assert nodes == predicted, f"assigned {nodes}, the draw predicts {predicted}"
        expected_deadline = max(request.deadline, self.tx_time + model.window)
        if self.tx_time > request.deadline:
            # Nothing stops a late assignment: the request was closable for a full refund.
            self.env.count("assigned after the requester's deadline")
        assert deadline == expected_deadline, f"deadline {deadline}, expected {expected_deadline}"
        for address in nodes:
            self.nodes[address].bonded += self.bond
            self.nodes[address].active_tasks += 1
        request.nodes, request.deadline = nodes, deadline
        self.env.count(f"assigned at quorum {len(nodes)}")
        note(f"request {request.id} assigned to {nodes} by {sender}, deadline {deadline}")

    def _assign_batch(self, requests, sender):
        """assignNodesBatch: each request assigned as alone, in order (each draw sees the loads
        the earlier ones left), and the ones that cannot be assigned now skipped: already
        assigned (earlier in the batch too), closed, seed gone, too few eligible nodes."""
        structs = [request.on_chain for request in requests]  # as the sender saw them
        available = [self._seed_available(request) for request in requests]
        receipt = self._send(self.mk, "assignNodesBatch", structs, sender=sender)
        logs = decode_logs(receipt, self.mk, "NodesAssigned")
        self.draw_block = self.block  # the batch's draws ran in its block, now the latest
        try:
            self._check_batch(requests, structs, available, logs, sender)
        finally:
            self.draw_block = None

    def _check_batch(self, requests, structs, available, logs, sender):
        for request, struct, seed in zip(requests, structs, available):
            if request.status != OPEN or request.nodes or not seed:
                self.env.count("batch entries skipped")
                continue
            predicted = self._predict_draw(request)
            if predicted is None:
                self.env.count("batch entries skipped")
                continue
            assert logs, f"the batch did not assign request {request.id}: the draw predicts {predicted}"
            scores = {address: self._free_score(address) for address in self.eligible[request.model]}
            self._assigned(request, logs.pop(0), predicted, scores, sender)
            self.env.count("assigned in a batch")
        assert not logs, f"the batch assigned more than the model: {logs}"

    def _submit(self, request, node, output):
        """Quorum 1: the assigned node submits; the result is accepted at once."""
        receipt = self._send(self.mk, "submitResult", request.on_chain, output, "ipfs://bafyout", b"",
                             sender=node)
        request.revealed[node] = output
        self._settle(request, output, [node])
        self._record_results(receipt)
        self._record_closings(receipt)

    def _submit_unassigned(self, request, sender, output):
        """Quorum 1, unassigned: ``sender`` answers directly. The result is accepted only from
        the node the draw names now (the draw assignNodes would make), and then assigns the
        request (its deadline unchanged), announces it and settles it in one transaction;
        anyone else, a seed not known, no eligible node or a passed deadline is refused."""
        call = (self.mk, "submitResult", request.on_chain, output, "ipfs://bafyout", b"")
        predicted = self._predict_draw(request) if self._seed_available(request) else None
        if not self._seed_available(request):
            expected = "ModelMarketplaceSeedNotAvailable"
        elif predicted is None:
            expected = "NodeCoordinatorNoEligibleNode"
        elif predicted != [sender]:
            expected = "ModelMarketplaceNotAssigned"
        elif self.clock > request.deadline:
            expected = "ModelMarketplaceDeadlinePassed"
        else:
            expected = None
        if expected is not None:
            with self._reverts(expected):
                self._send(*call, sender=sender)
            self.env.count(f"unassigned results refused: {expected}")
            return False
        receipt = self._send(*call, sender=sender)
        (log,) = decode_logs(receipt, self.mk, "NodesAssigned")
        deadline, nodes = abi_decode(["uint64", "address[]"], log[1])
        assert [to_checksum_address(a) for a in nodes] == [sender], f"assigned {nodes}, the draw predicts {predicted}"
        assert deadline == request.deadline, f"a result that assigns moved the deadline to {deadline}"
        self.nodes[sender].bonded += self.bond
        self.nodes[sender].active_tasks += 1
        request.nodes = [sender]
        request.revealed[sender] = output
        self._settle(request, output, [sender])
        self._record_results(receipt)
        self._record_closings(receipt)
        self.env.count("answered unassigned by the drawn node")
        return True

    def _commit(self, request, node, output=None, copy_of=None, withhold=False):
        """A quorum node commits: its own sealed result (it can reveal it), or a copy of
        another node's seal (it cannot)."""
        if copy_of is None:
            salt = keccak(text=f"salt:{request.id}:{node}:{len(request.commits)}")
            sealed = seal_result(request.id, node, output, salt)
        else:
            sealed = request.commits[copy_of]
        receipt = self._send(self.mk, "commitResult", request.on_chain, sealed, sender=node)
        ((topics, data),) = decode_logs(receipt, self.mk, "ResultCommitted")
        request.commits[node] = sealed
        assert word(data) == len(request.commits), f"ResultCommitted counts {word(data)} commitments"
        if copy_of is None:
            request.secrets[node] = (output, salt)
            if withhold:
                request.withheld.add(node)
        else:
            request.copied[node] = copy_of

    def _reveal_opens(self, request):
        """When reveals open: now if every node committed, else after the deadline."""
        return self.clock if len(request.commits) == len(request.nodes) else max(self.clock, request.deadline + 1)

    def _reveal(self, request, node):
        output, salt = request.secrets[node]
        receipt = self._send(self.mk, "revealResult", request.on_chain, output, salt, "ipfs://bafyout", b"",
                             sender=node)
        request.revealed[node] = output
        if len(request.revealed) == len(request.nodes):
            self._judge(request)
        self._record_results(receipt)
        self._record_closings(receipt)

    def _close(self, request, sender):
        receipt = self._send(self.mk, "closeExpired", request.on_chain, sender=sender)
        if not request.nodes:
            self._refund(request, request.escrow)  # nobody was assigned: nobody is slashed
            self.env.count("unassigned requests closed")
        elif len(request.nodes) == 1:
            self._refund(request, request.escrow)
            self._slash(request.nodes[0], True)
        else:
            self._judge(request)
        self._record_closings(receipt)

    def _closable_after(self, request):
        return request.deadline + (self.reveal_window if len(request.nodes) > 1 else 0)

    # ---- rules: registry and stake ----

    @precondition(lambda self: len(self.models) - self.wash_ready < len(MODEL_NAMES))
    @rule(data=st.data(), quorum=quorums, price=prices, owner=owners, window=model_windows, squat=st.integers(0, 3))
    def register_model(self, data, quorum, price, owner, window, squat):
        """A model not registered yet; now and then a squatter (someone else) tries to register
        the id between the owner's commitment and registration."""
        name = data.draw(st.sampled_from([n for n in MODEL_NAMES if n not in self.models]), label="name")
        squatter = self._holder((owner + 1) % 10) if squat == 0 else None
        self._register_model(name, quorum, price, self._holder(owner), window, squatter)

    @precondition(
        lambda self: self._public_models() and any(self._holder(i) not in self.nodes for i in OPERATOR_INDICES)
    )
    @rule(data=st.data(), capacity=capacities, stake=stakes)
    def register_node(self, data, capacity, stake):
        """An operator that has no node yet registers one (each registers once)."""
        free = [i for i in OPERATOR_INDICES if self._holder(i) not in self.nodes]
        operator = data.draw(st.sampled_from(free), label="operator")
        self._register_node(self._holder(operator), capacity, stake, data.draw(self._served_models(), label="serves"))

    @precondition(lambda self: self.nodes)
    @rule(data=st.data(), amount=st.integers(1, 1_000).map(lambda joy: joy * JOY))
    def add_stake(self, data, amount):
        """More stake; an inactive node stays inactive until it reactivates."""
        address = data.draw(st.sampled_from(sorted(self.nodes)), label="node")
        self._send(self.co, "addStake", amount, sender=address)
        self._move(address, self.co, amount)
        self.nodes[address].stake += amount  # does not reactivate an inactive node

    @precondition(lambda self: any(not n.active and n.stake >= self.min_stake for n in self.nodes.values()))
    @rule(data=st.data())
    def reactivate(self, data):
        """A node deactivated by missed deadlines or a low stake, back at the minimum, rejoins."""
        candidates = sorted(a for a, n in self.nodes.items() if not n.active and n.stake >= self.min_stake)
        address = data.draw(st.sampled_from(candidates), label="node")
        node = self.nodes[address]
        if self._rejoin_refused(node):
            with self._reverts("NodeCoordinatorRejoinTooSoon"):
                self._send(self.co, "reactivate", sender=address)
            self.env.count("rejoin refused")
            return
        self._send(self.co, "reactivate", sender=address)
        node.active, node.missed = True, 0
        node.lease_end = self.tx_block + self.lease_blocks
        self._join_sets(node)

    @precondition(lambda self: self.nodes)
    @rule(data=st.data(), action=st.sampled_from(["renew due", "renew due", "end", "renew"]))
    def lease(self, data, action):
        """The nodes' agents renew the leases that have a third or less left; or one node ends its
        lease (a drain) or renews it early. Neither changes an eligibility set."""
        if action == "renew due":
            for address, node in sorted(self.nodes.items()):
                if node.active and node.lease_end - (self.block + 1) <= self.lease_blocks // 3:
                    self._send(self.co, "renewLease", sender=address)
                    node.lease_end = self.tx_block + self.lease_blocks
                    self.env.count("lease renewed")
            return
        address = data.draw(st.sampled_from(sorted(self.nodes)), label="node")
        node = self.nodes[address]
        if action == "end":
            if self.block + 1 >= node.lease_end:
                with self._reverts("NodeCoordinatorLeaseNotRunning"):
                    self._send(self.co, "endLease", sender=address)
                return
            self._send(self.co, "endLease", sender=address)
            node.lease_end = self.tx_block
            self.env.count("lease ended")
        elif not node.active:
            with self._reverts("NodeCoordinatorNotActive"):
                self._send(self.co, "renewLease", sender=address)
        else:
            self._send(self.co, "renewLease", sender=address)
            node.lease_end = self.tx_block + self.lease_blocks

    # ---- rules: requests ----

    @rule(
        depositor=holder_index,
        other=st.one_of(st.none(), holder_index),
        amount=st.integers(1, 50).map(lambda joy: joy * JOY),
    )
    def deposit(self, depositor, other, amount):
        """A holder prepays JOY into its own balance in the marketplace, or into another's (a gift)."""
        source = self._holder(depositor)
        account = self._holder(depositor if other is None else other)
        self._send(self.mk, "deposit", account, amount, sender=source)
        self._move(source, self.mk, amount)
        self._credit(account, amount, "deposit")
        if account != source:
            self._add(self.gifts_out, source, amount)
            self._add(self.gifts_in, account, amount)

    # Hypothesis draws the first valid rule in its order (by number of arguments, then by name)
    # far more often than any other. serve_oldest_request (no argument) comes first; requesting
    # is what everything else needs, so this rule takes a single argument and draws the rest
    # itself, which puts it first among the rules that are nearly always valid.
    @precondition(lambda self: self._public_models())
    @rule(data=st.data())
    def request_inference(self, data):
        """Requests a public model (servable or not); sometimes (probe 0 or 1) first with a
        deadline below the earliest or beyond the latest allowed. Mostly someone assigns it in
        the next block, as the requester's client does by default."""
        requester, slack = data.draw(holder_index, label="requester"), data.draw(deadline_slack, label="slack")
        probe, by = data.draw(st.integers(0, 5), label="probe"), data.draw(st.integers(1, 60), label="by")
        assigner = data.draw(st.one_of(st.none(), caller_index, caller_index), label="assigner")
        name = data.draw(st.sampled_from(self._public_models()), label="model")
        if probe <= 1:
            self._try_bad_deadline(name, self._holder(requester), probe == 1, by)
        request = self._request(name, self._holder(requester), slack)
        if assigner is not None:
            self._assign(request, self._caller(assigner))

    @precondition(lambda self: self._public_models())
    @rule(data=st.data(), slack=deadline_slack, assigner=st.one_of(st.none(), caller_index, caller_index))
    def request_from_balance(self, data, slack, assigner):
        """Requests a public model paid from a holder's balance: one that can pay if there is one
        (else any holder); with too small a balance it must revert and change nothing."""
        name = data.draw(st.sampled_from(self._public_models()), label="model")
        model = self.models[name]
        funded = [i for i in range(10) if self.held.get(self._holder(i), 0) >= model.price]
        requester = self._holder(data.draw(st.sampled_from(funded or list(range(10))), label="requester"))
        if funded:
            request = self._request(name, requester, slack, from_balance=True)
            if assigner is not None:
                self._assign(request, self._caller(assigner))
            return
        with self._reverts("ModelMarketplaceInsufficientBalance"):
            self._send(self.mk, "requestInferenceFromBalance", model.id, keccak(text="input:unpaid"),
                       "ipfs://bafyinput", model.price, self.clock + model.window + slack, sender=requester)

    def _unassigned(self):
        return [r.id for r in self._open() if not r.nodes]

    @precondition(lambda self: self._unassigned())
    @rule(data=st.data(), caller=caller_index)
    def assign_nodes(self, data, caller):
        """Anyone assigns an unassigned request (the steerer's too): the predicted draw, or the
        predicted revert (too few eligible nodes, or a seed older than 256 blocks)."""
        request = self.requests[data.draw(st.sampled_from(self._unassigned()), label="request")]
        self._assign(request, self._caller(caller))

    @precondition(lambda self: self._unassigned())
    @rule(data=st.data(), caller=caller_index, extra=st.integers(0, 2))
    def assign_batch(self, data, caller, extra):
        """Anyone assigns several requests in one transaction (assignNodesBatch, as an edge agent
        assigns every pending request it sees); the batch may also name a request twice, or
        requests assigned or closed meanwhile: those are skipped, the others assigned."""
        ids = data.draw(st.lists(st.sampled_from(self._unassigned()), min_size=1, max_size=4), label="requests")
        others = sorted(set(self.requests) - set(ids))
        if extra and others:
            ids += data.draw(st.lists(st.sampled_from(others), max_size=extra), label="assigned or closed")
        self._assign_batch([self.requests[i] for i in ids], self._caller(caller))

    def _submittable(self):
        return [
            (r.id, r.nodes[0]) for r in self._open() if len(r.nodes) == 1 and self.clock <= r.deadline
        ]

    def _committable(self):
        return [
            (r.id, node)
            for r in self._open()
            if len(r.nodes) > 1 and self.clock <= r.deadline
            for node in r.nodes
            if node not in r.commits
        ]

    @precondition(lambda self: self._committable())
    @rule(data=st.data(), output=output_names, behaviour=st.sampled_from(["honest", "honest", "withhold", "copy"]))
    def commit_result(self, data, output, behaviour):
        """An assigned quorum node commits before the deadline: honestly (it will reveal), as a
        withholder (it never reveals), or as a copier of another node's seal (it cannot reveal)."""
        request_id, node = data.draw(st.sampled_from(self._committable()), label="request, node")
        request = self.requests[request_id]
        sources = [n for n in request.commits if n != node]
        if behaviour == "copy" and sources:
            source = data.draw(st.sampled_from(sources), label="copies")
            self._commit(request, node, copy_of=source)
            self.env.count("copied commitments")
        else:
            self._commit(request, node, OUTPUTS[output], withhold=behaviour == "withhold")

    def _revealable(self):
        return [
            (r.id, node)
            for r in self._open()
            if len(r.nodes) > 1
            for node in r.secrets
            if node not in r.revealed and node not in r.withheld and self._reveal_opens(r) <= self._closable_after(r)
        ]

    @precondition(lambda self: self._revealable())
    @rule(data=st.data(), wait=st.integers(0, 30))
    def reveal_result(self, data, wait):
        """A node that committed reveals: at once if every node committed, else after the
        deadline (time moves there if needed), until the reveal window closes."""
        request_id, node = data.draw(st.sampled_from(self._revealable()), label="request, node")
        request = self.requests[request_id]
        opens = self._reveal_opens(request)
        if opens > self.clock:
            self.clock = min(opens + wait, self._closable_after(request))
        self._reveal(request, node)

    def _copier_attempts(self):
        return [
            (r.id, node)
            for r in self._open()
            for node, source in r.copied.items()
            if source in r.revealed and source in r.secrets and node not in r.revealed
            and self.clock <= self._closable_after(r)
        ]

    def _copier_reveals(self, request, node):
        """A copier tries to reveal the output and salt the node it copied revealed: the seal
        binds the node, so it reverts with ModelMarketplaceRevealMismatch; the copier stays silent."""
        output, salt = request.secrets[request.copied[node]]
        with self._reverts("ModelMarketplaceRevealMismatch"):
            self._send(self.mk, "revealResult", request.on_chain, output, salt, "ipfs://bafyout", b"",
                       sender=node)
        self.env.count("copier reveals refused")

    def _servable_requests(self):
        assignable = [r.id for r in self._open() if not r.nodes and self._predict_draw(r) is not None]
        return sorted({request_id for request_id, _ in self._submittable() + self._committable()} | set(assignable))

    @precondition(lambda self: self._servable_requests())
    @rule(data=st.data(), assigner=caller_index, close=st.booleans(), closer=caller_index)
    def serve_request(self, data, assigner, close, closer):
        """A request runs its course, one transaction each: someone assigns it if nobody has; the
        single node submits; each quorum node commits (mostly honestly; now and then it commits
        and will withhold its reveal, copies another node's seal, or stays away), then each one
        able to reveal reveals (after the deadline if some node committed nothing), which judges
        the request once all k have revealed; a copier tries to reveal what it copied. If silent
        nodes left it open, time may move past its reveal window and anyone closes it."""
        request = self.requests[data.draw(st.sampled_from(self._servable_requests()), label="request")]
        if not request.nodes and self.models[request.model].quorum == 1 and data.draw(st.booleans(), label="direct"):
            # A node answers the unassigned request: the drawn one (its result assigns it), or
            # now and then another node, which is refused (then someone assigns as usual).
            drawn = self._predict_draw(request) if self._seed_available(request) else None
            others = sorted(address for address in self.nodes if not drawn or address != drawn[0])
            choices = ([drawn[0]] if drawn else []) + ([data.draw(st.sampled_from(others), label="other")] if others else [])
            sender = choices[0] if len(choices) == 1 else data.draw(st.sampled_from(choices), label="submitter")
            if self._submit_unassigned(request, sender, OUTPUTS[data.draw(output_names, label="output")]):
                return
        if len(request.nodes) == 1:
            self._submit(request, request.nodes[0], OUTPUTS[data.draw(output_names, label="output")])
            return
        for node in [n for n in request.nodes if n not in request.commits]:
            if self.clock > request.deadline:
                break
            behaviour = data.draw(st.sampled_from(BEHAVIOURS), label="behaviour")
            sources = [n for n in request.commits if n != node]
            if behaviour == "copy" and sources:
                self._commit(request, node, copy_of=data.draw(st.sampled_from(sources), label="copies"))
                self.env.count("copied commitments")
            elif behaviour == "dissent":
                self._commit(request, node, OUTPUTS[data.draw(st.sampled_from(WRONG_OUTPUTS), label="output")])
            elif behaviour != "absent":
                # Honest nodes compute the same (deterministic, quantized) output.
                self._commit(request, node, OUTPUTS["A"], withhold=behaviour == "withhold")
        self._reveal_all(request)
        for request_id, node in self._copier_attempts():
            if request_id == request.id:
                self._copier_reveals(request, node)
        if close and request.status == OPEN:
            self.clock = max(self.clock, self._closable_after(request) + 1)
            self._close(request, self._caller(closer))

    def _reveal_all(self, request):
        """Every node able to reveal does (once reveals open), which judges the request once all
        k have revealed."""
        for node in [n for n in request.nodes if n in request.secrets and n not in request.withheld]:
            if request.status != OPEN or node in request.revealed:
                continue
            self.clock = self._reveal_opens(request)
            if self.clock > self._closable_after(request):
                break
            self._reveal(request, node)

    @precondition(lambda self: self._servable_requests())
    @rule()
    def serve_oldest_request(self):
        """The oldest request that can still be served is served: assigned by anyone if nobody
        has, then every node that has not yet answers with the request's answer (A), except, by
        the request's id, the last node of every fourth quorum request, which withholds its
        reveal (the request is then closed once its reveal window is over), and of every fourth
        other one, which dissents: so verdicts over silent and dissenting nodes come up in every
        run, not only when serve_request draws them. Every other single-node request nobody
        assigned is answered by its drawn node directly: its result assigns it."""
        request = self.requests[self._servable_requests()[0]]
        drawn = self._predict_draw(request) if not request.nodes and self._seed_available(request) else None
        if drawn and len(drawn) == 1 and request.id % 2 == 0 and self.clock <= request.deadline:
            # Every other single-node request is answered unassigned by its drawn node, as the
            # edge agent does: the result assigns it.
            assert self._submit_unassigned(request, drawn[0], OUTPUTS["A"])
            return
        if not request.nodes and not self._assign(request, self.env.outsider.address):
            return
        if len(request.nodes) == 1:
            self._submit(request, request.nodes[0], OUTPUTS["A"])
            return
        last = request.nodes[-1]
        for node in [n for n in request.nodes if n not in request.commits]:
            if self.clock > request.deadline:
                break
            dissent = node == last and request.id % 4 == 1
            self._commit(request, node, OUTPUTS["B" if dissent else "A"], withhold=node == last and request.id % 4 == 0)
        self._reveal_all(request)
        if request.status == OPEN and request.withheld:
            self.clock = max(self.clock, self._closable_after(request) + 1)
            self._close(request, self.env.outsider.address)

    def _declinable(self):
        """Assigned open requests a node may still decline: before the deadline, no commit yet."""
        return [r.id for r in self._open() if r.nodes and not r.commits and self.clock <= r.deadline]

    @precondition(lambda self: self._declinable())
    @rule(data=st.data())
    def decline_request(self, data):
        """An assigned node declines before any commitment and before the deadline: refund,
        every node released, nobody slashed."""
        request = self.requests[data.draw(st.sampled_from(self._declinable()), label="request")]
        node = data.draw(st.sampled_from(request.nodes), label="node")
        receipt = self._send(self.mk, "declineRequest", request.on_chain, "input fails the schema", sender=node)
        self._refund(request, request.escrow)
        for address in request.nodes:
            self._release(address)
        self._record_closings(receipt)

    @precondition(lambda self: self._open())
    @rule(data=st.data(), late_by=st.integers(1, 120), closer=caller_index)
    def close_expired(self, data, late_by, closer):
        """Moves time past the request's deadline (plus the reveal window for a quorum) if needed
        and closes it; anyone may. Unassigned: refund; one node: refund and slash; a quorum:
        judged on its reveals."""
        request = self.requests[data.draw(st.sampled_from([r.id for r in self._open()]), label="request")]
        self.clock = max(self.clock, self._closable_after(request) + late_by)
        self._close(request, self._caller(closer))

    @precondition(lambda self: self._unassigned())
    @rule(blocks=st.integers(BLOCKHASH_DEPTH + 1, BLOCKHASH_DEPTH + 20))
    def blocks_pass(self, blocks):
        """Many blocks pass at once (one second apart): unassigned requests older than 256
        blocks lose their seed and can only be closed, with a full refund, once expired."""
        self.env.chain.provider.make_request("evm_setNextBlockTimestamp", [self.clock])
        self.env.chain.provider.make_request("anvil_mine", [hex(blocks), hex(1)])
        self.chain_state = None
        self.block += blocks
        assert self.views.block_number() == self.block, f"mined to block {self.views.block_number()}, not {self.block}"
        self.clock = self.views.block_timestamp("latest") + 1

    @precondition(lambda self: self._open())
    @rule(data=st.data(), kind=st.integers(0, 6), caller=caller_index)
    def misuse(self, data, kind, caller):
        """A call that must revert with its named error and move nothing (the invariants compare
        every balance, bond and digest with the model afterwards)."""
        request = self.requests[data.draw(st.sampled_from([r.id for r in self._open()]), label="request")]
        req = request.on_chain
        candidates = (self._caller(caller), self._holder(0), self.env.outsider.address)
        strangers = [a for a in candidates if a not in request.nodes]
        if not request.nodes and self.models[request.model].quorum > 1:
            # Nobody may submit, commit or decline a quorum request before assignment.
            with self._reverts("ModelMarketplaceNotAssignedYet"):
                self._send(self.mk, "submitResult", req, OUTPUTS["A"], "ipfs://bafyout", b"", sender=strangers[0])
        elif not request.nodes:
            # A single-node request: nobody but the node the draw names may answer it unassigned.
            seed = self._seed_available(request)
            drawn = self._predict_draw(request) if seed else None
            sender = next(a for a in strangers if not drawn or a != drawn[0])
            error = ("ModelMarketplaceSeedNotAvailable" if not seed else
                     "NodeCoordinatorNoEligibleNode" if drawn is None else "ModelMarketplaceNotAssigned")
            with self._reverts(error):
                self._send(self.mk, "submitResult", req, OUTPUTS["A"], "ipfs://bafyout", b"", sender=sender)
            self.env.count(f"unassigned results refused: {error}")
        elif kind == 0:
            with self._reverts("ModelMarketplaceAlreadyAssigned"):
                self._send(self.mk, "assignNodes", req, sender=self._caller(caller))
        elif kind == 1:
            with self._reverts("ModelMarketplaceNotAssigned"):
                self._send(self.mk, "declineRequest", req, "not mine", sender=strangers[0])
        elif kind == 2 and self.clock <= self._closable_after(request):
            with self._reverts("ModelMarketplaceDeadlineNotPassed"):
                self._send(self.mk, "closeExpired", req, sender=self._caller(caller))
        elif kind == 3 and len(request.nodes) > 1:
            with self._reverts("ModelMarketplaceCommitRequired"):
                self._send(self.mk, "submitResult", req, OUTPUTS["A"], "ipfs://bafyout", b"", sender=request.nodes[0])
        elif kind == 4 and len(request.nodes) > 1 and request.commits and self.clock <= request.deadline:
            # A quorum node cannot cancel a request once a result is committed.
            node = data.draw(st.sampled_from(request.nodes), label="node")
            with self._reverts("ModelMarketplaceResultsSubmitted"):
                self._send(self.mk, "declineRequest", req, "too late", sender=node)
        elif kind == 5 and len(request.nodes) > 1 and request.commits:
            node = data.draw(st.sampled_from(sorted(request.commits)), label="node")
            late = self.clock > request.deadline
            error = "ModelMarketplaceDeadlinePassed" if late else "ModelMarketplaceAlreadySubmitted"
            with self._reverts(error):
                self._send(self.mk, "commitResult", req, keccak(text="again"), sender=node)
        elif kind == 6 and len(request.nodes) == 1 and self.clock > request.deadline:
            with self._reverts("ModelMarketplaceDeadlinePassed"):
                self._send(self.mk, "submitResult", req, OUTPUTS["A"], "ipfs://bafyout", b"", sender=request.nodes[0])
        else:
            with self._reverts("ModelMarketplaceRequestMismatch"):
                self._send(self.mk, "closeExpired", req._replace(escrow=req.escrow + 1), sender=self._caller(caller))

    # ---- rules: the attackers ----

    @precondition(lambda self: not self.steerer_ready and self._public_models())
    @rule(capacity=capacities, stake=stakes)
    def steerer_registers(self, capacity, stake):
        """The steerer runs a node serving every public model."""
        self._setup_steerer(capacity, stake)

    @precondition(lambda self: not self.wash_ready)
    @rule(price=prices, stake=stakes)
    def wash_trader_registers(self, price, stake):
        """The wash trader registers its private model (quorum 1) and a node serving only it."""
        self._setup_washer(price, stake)

    def _steer(self, request, reroll):
        """Assigns the steerer's request through its attacker contract (AssignmentSteerer), which
        reverts unless the steerer's own node is drawn; the request waits otherwise. With
        ``reroll``, a draw it dislikes is drawn again if it can: its node stops serving the model
        and serves it again (two transactions), which changes the model's eligibility set, so
        that the next block's draw is seeded by the hash of that change's block. The rejoin is
        refused for REJOIN_DELAY blocks after the leave (the draw was re-rolled without it); once
        they passed, its node serves the model again, which re-rolls the draw too."""
        if self._assign(request, self.steerer, target=self.steerer):
            self.env.count("steerer assigned its own node")
            if request.id in self.held_back:
                self.env.count("steerer got its node after holding back")
            return
        self.env.count("steerer held back a draw")
        self.held_back.add(request.id)
        node = self.nodes[self.steerer]
        if reroll and node.active:
            if request.model in node.models:
                self._stop_serving(self.steerer, request.model)
            if not self._serve(self.steerer, request.model):
                self.env.count("steerer's rejoin refused")
                return
            self.env.count("steerer re-rolled a draw")
            if self._assign(request, self.steerer, target=self.steerer):
                self.env.count("steerer got its node by re-rolling")

    @precondition(lambda self: self.steerer_ready and self._public_models())
    @rule(data=st.data(), by=st.integers(1, 60), slack=deadline_slack, at_once=st.integers(0, 3),
          reroll=st.booleans())
    def steerer_requests(self, data, by, slack, at_once, reroll):
        """The steerer first tries again to steer the requests it held back (the load may have
        changed since). Then it asks for a deadline below the earliest (refused); now and then
        its contract tries to request and assign in one transaction (refused: the seed block's
        hash does not exist yet; nothing moves); then it requests with exactly the earliest
        deadline (or a little later) and tries to steer the assignment to its own node,
        re-rolling a draw it dislikes if ``reroll``."""
        for request in [r for r in self._open() if r.requester == self.steerer and not r.nodes]:
            self._steer(request, reroll)
        name = data.draw(st.sampled_from(self._public_models()), label="model")
        self._try_bad_deadline(name, self.steerer, False, by)
        if at_once == 0:
            with self._reverts("ModelMarketplaceSeedNotAvailable"):
                self._send(self.env.steerer_contract.address, "requestAndAssign", self.models[name].id,
                           self.clock + self.models[name].window, sender=self.steerer)
        request = self._request(name, self.steerer, data.draw(st.sampled_from([0, 0, slack]), label="slack"))
        self._steer(request, reroll)

    @precondition(lambda self: self.wash_ready)
    @rule(data=st.data(), trades=st.integers(1, 3), refill=st.integers(1, 20), pool=st.one_of(st.none(), fundings))
    def wash_trade(self, data, trades, refill, pool):
        """The wash trader pays its own model from its own balance (depositing first if short),
        assigns, and serves it with its own node, up to three times in a row; often the epoch
        has a pool someone else (a genesis holder, as the DAO would) funded first, for it to win.
        It first collects what its trades of ended epochs earned."""
        model = self.models[WASH_MODEL]
        for epoch, role, account in self._wash_claims():
            if epoch < self._epoch(self.clock):
                self._claim(epoch, role, account, 0)
        if pool is not None:
            self._fund(self._holder(1), 0, pool)
        for _ in range(trades):
            if self.held.get(self.washer, 0) < model.price:
                amount = model.price * refill
                self._send(self.mk, "deposit", self.washer, amount, sender=self.washer)
                self._move(self.washer, self.mk, amount)
                self._credit(self.washer, amount, "deposit")
            request = self._request(WASH_MODEL, self.washer, 0, from_balance=True)
            if not self._assign(request, self.washer):
                return  # its node is busy or out: the request waits to be closed, refunded
            self._submit(request, request.nodes[0], OUTPUTS[data.draw(output_names, label="output")])
            self.env.count("wash trades settled")

    def _wash_claims(self):
        return [key for key in self._claimable() if key[2] == self.washer]

    @precondition(lambda self: self._wash_claims())
    @rule(wait=st.integers(0, 60))
    def wash_trader_claims(self, wait):
        """The wash trader collects every reward its trades earned (waiting out the epochs)."""
        for epoch, role, account in self._wash_claims():
            self._claim(epoch, role, account, wait)

    # ---- rules: balances ----

    @rule(account=holder_index, operator=caller_index, approved=st.booleans())
    def set_operator(self, account, operator, approved):
        """An account allows (or disallows) another to withdraw its balance for it."""
        account, operator = self._holder(account), self._caller(operator)
        self._send(self.mk, "setOperator", operator, approved, sender=account)
        (self.operator_approvals.add if approved else self.operator_approvals.discard)((account, operator))

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), who=st.integers(0, 2), caller=caller_index)
    def withdraw_balance(self, data, who, caller):
        """An account's balance is paid out to it, by itself (who 0) or an operator it approved
        (who 1, if any); anyone else (who 2) is refused with ModelMarketplaceNotAuthorized."""
        account = data.draw(st.sampled_from(sorted(a for a, v in self.held.items() if v)), label="account")
        operators = sorted(o for a, o in self.operator_approvals if a == account)
        sender = self._caller(caller)
        if who == 2 and sender != account and (account, sender) not in self.operator_approvals:
            with self._reverts("ModelMarketplaceNotAuthorized"):
                self._send(self.mk, "withdrawBalance", account, sender=sender)
            return
        sender = operators[caller % len(operators)] if who == 1 and operators else account
        self._send(self.mk, "withdrawBalance", account, sender=sender)
        amount = self.held.pop(account)
        self._move(self.mk, account, amount)
        self._add(self.ledger["withdrawn"], account, amount)

    @precondition(lambda self: self.protocol_earnings)
    @rule(caller=caller_index)
    def withdraw_protocol_earnings(self, caller):
        """Anyone sends the protocol's share of settled fees to the treasury."""
        self._send(self.mk, "withdrawProtocolEarnings", sender=self._caller(caller))
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
            with self._reverts("NodeCoordinatorStakeBonded"):
                self._send(self.co, "requestUnstake", amount, sender=address)
            return
        amount = max(1, free * permille // 1_000)
        self._send(self.co, "requestUnstake", amount, sender=address)
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
        self._send(self.co, "withdrawUnstaked", sender=address)
        self._move(self.co, address, node.unbonding)
        node.unbonding, node.ready_at = 0, 0

    # ---- rules: epochs and rewards ----

    # An epoch passing under running requests would expire them all: it waits until none is
    # running (the rules that need time to pass for a request, such as close_expired, move it).
    @precondition(lambda self: all(self.clock > self._closable_after(r) for r in self._open()))
    @rule(epochs=st.integers(1, 2), seconds=st.integers(0, 59))
    def advance_epoch(self, epochs, seconds):
        """One epoch (3,600 s) passes, or two, and some seconds."""
        self.clock += self.epoch_length * epochs + seconds

    def _fund(self, funder, ahead, amount):
        epoch = self._epoch(self.clock) + ahead
        self._send(self.pou, "fundEpoch", epoch, amount, sender=funder)
        self._move(funder, self.pou, amount)
        self.epochs.setdefault(epoch, EpochState()).pool += amount
        self.funded += amount
        self._add(self.gifts_out, funder, amount)

    @rule(funder=st.integers(0, 11), ahead=st.integers(0, 1), amount=fundings)
    def fund_epoch(self, funder, ahead, amount):
        """A genesis holder, or an attacker (10: the steerer, 11: the wash trader, who would like
        to win its own pool back), funds the pool of the current (or the next) epoch."""
        source = {10: self.steerer, 11: self.washer}.get(funder) or self._holder(funder)
        if min(amount, self.balances[source]):
            self._fund(source, ahead, min(amount, self.balances[source]))

    @precondition(lambda self: self._claimable())
    @rule(data=st.data(), wait=st.integers(0, 60))
    def claim_reward(self, data, wait):
        """An owner or node claims its reward for an epoch, waiting for the epoch to end first
        if it has not (to the second, or later)."""
        epoch, role, account = data.draw(st.sampled_from(self._claimable()), label="epoch, role, account")
        self._claim(epoch, role, account, wait)

    def _claim(self, epoch, role, account, wait):
        if self._epoch(self.clock) <= epoch:
            self.clock = self.env.genesis_time + (epoch + 1) * self.epoch_length + wait
        amount = self._reward(epoch, role, account)
        self._send(self.pou, "claimOwnerReward" if role == OWNER_ROLE else "claimNodeReward", epoch, sender=account)
        self._move(self.pou, account, amount)
        self.env.count("rewards claimed")
        if amount == self._cap(epoch, role, account):
            self.env.count("rewards at the cap")
        self.epochs[epoch].paid += amount
        self.paid += amount
        self.claimed.add((epoch, role, account))
        # Invariant 8: of this reward, what others' settlements could have earned (the cap on
        # their weight) is income; the rest is the account's own doing.
        others = self.usage_from_others.get((epoch, role, account), 0) * self._reward_cap_per_unit(role)
        self._add(self.income_from_others, account, min(Fraction(amount), others))

    # ---- invariants ----

    def _chain(self):
        """Everything the invariants read, in one batch of eth_calls per chain state."""
        if self.chain_state is not None:
            return self.chain_state
        token, mk, co, pou = self.env.token.address, self.mk, self.co, self.pou
        calls, keys = [], []

        def read(key, to, signature, *args, returns=("uint256",)):
            keys.append(key)
            calls.append((to, signature, args, returns))

        read("supply", token, "totalSupply()")
        for address in self.env.joy_holders:
            read(("balance", address), token, "balanceOf(address)", address)
        for name in ("totalEscrow", "totalBalances", "protocolEarnings", "requestCount"):
            read(name, mk, f"{name}()")
        for address in self.env.earners:
            read(("held", address), mk, "balances(address)", address)
        for request_id, request in self.requests.items():
            read(("status", request_id), mk, "requestStatus(uint256)", request_id, returns=("uint8",))
            read(("digest", request_id), mk, "requestDigest(uint256)", request_id, returns=("bytes32",))
            read(("mask", request_id), mk, "submittedMask(uint256)", request_id)
            for slot in range(len(request.nodes)):
                read(("result", request_id, slot), mk, "resultOf(uint256,uint256)", request_id, slot,
                     returns=("bytes32",))
        for address in self.env.node_candidates:
            read(("node", address), co, "nodeInfo(address)", address, returns=NODE_INFO)
            read(("lease", address), co, "leaseEnd(address)", address)
            read(("unbonding", address), co, "unbondingOf(address)", address, returns=("uint256", "uint256"))
        for name, model in self.models.items():
            read(("eligible", name), co, "eligibleNodes(bytes32)", model.id)
            read(("changed", name), co, "eligibleChangedAt(bytes32)", model.id)
            for index in range(len(self.eligible.get(name, []))):
                read(("eligible", name, index), co, "eligibleNodeAt(bytes32,uint256)", model.id, index,
                     returns=("address",))
        read("outstanding", pou, "outstandingRewards()")
        for epoch in self.epochs:
            read(("epoch", epoch), pou, "epochInfo(uint256)", epoch, returns=EPOCH_INFO)
        for epoch, name in self.model_usage:
            read(("model usage", epoch, name), pou, "modelUsage(uint256,bytes32)", epoch, self.models[name].id)

        state = dict(zip(keys, self.views.batch(calls)))
        self.chain_state = state
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
        total_escrow, total_held = chain["totalEscrow"], chain["totalBalances"]
        protocol = chain["protocolEarnings"]
        assert protocol == self.protocol_earnings, f"protocolEarnings {protocol} != model {self.protocol_earnings}"
        assert chain["balance", self.mk] == total_escrow + total_held + self.protocol_earnings, (
            f"marketplace holds {chain['balance', self.mk]}, owes escrow {total_escrow} + balances"
            f" {total_held} + protocol share {self.protocol_earnings}"
        )
        open_escrow = sum(r.escrow for r in self._open())
        assert total_escrow == open_escrow, f"totalEscrow {total_escrow} != escrow of the open requests {open_escrow}"
        assert total_held == sum(self.held.values()), (
            f"totalBalances {total_held} != credited {sum(self.held.values())}"
        )
        wrong = {
            a: (chain["held", a], self.held.get(a, 0))
            for a in self.env.earners
            if chain["held", a] != self.held.get(a, 0)
        }
        assert not wrong, f"balances (chain, model) differ: {wrong}"

        owed = 0
        for address in self.env.node_candidates:
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
            pool, owner_weight, node_weight, paid, *_ = chain["epoch", epoch]
            expected = (info.pool, info.paid, info.owner_weight, info.node_weight)
            assert (pool, paid, owner_weight, node_weight) == expected, (
                f"epoch {epoch}: chain (pool, paid, owner weight, node weight)"
                f" {(pool, paid, owner_weight, node_weight)} != model {info}"
            )
        for (epoch, name), count in self.model_usage.items():
            assert chain["model usage", epoch, name] == count, (
                f"modelUsage({epoch}, {name}) {chain['model usage', epoch, name]} != {count}"
            )

    @invariant()
    def requests_end_exactly_once(self):
        chain = self._chain()
        tally = {OPEN: 0, SETTLED: 0, REFUNDED: 0}
        for request_id, request in self.requests.items():
            status, digest, mask = chain["status", request_id], chain["digest", request_id], chain["mask", request_id]
            before = self.seen_status.get(request_id, 0)
            # A request first seen closed was made and closed within one step (a wash trade).
            anything = {OPEN, SETTLED, REFUNDED}
            allowed = {OPEN: anything, SETTLED: {SETTLED}, REFUNDED: {REFUNDED}}.get(before, anything)
            assert status in allowed, (
                f"request {request_id} went {STATUS_NAMES[before]} -> {STATUS_NAMES.get(status, status)}"
            )
            self.seen_status[request_id] = status
            assert status == request.status, (
                f"request {request_id} is {STATUS_NAMES.get(status, status)},"
                f" model says {STATUS_NAMES[request.status]}"
            )
            assert request.closings == (status != OPEN), (
                f"request {request_id} ({STATUS_NAMES[status]}) emitted {request.closings} closing events"
            )
            assert (bytes(digest), mask) == (request.digest, request.mask), (
                f"request {request_id}: chain (digest, mask) {(bytes(digest).hex(), hex(mask))}"
                f" != model {(request.digest.hex(), hex(request.mask))}"
            )
            for slot in range(len(request.nodes)):
                value = bytes(chain["result", request_id, slot])
                assert value == request.slot_value(slot), (
                    f"request {request_id} slot {slot}: resultOf {value.hex()}"
                    f" != model {request.slot_value(slot).hex()}"
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
        for address in self.env.node_candidates:
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
            assert chain["lease", address] == node.lease_end, f"{address}: lease ends at {chain['lease', address]}"
        for name in self.models:
            members = self.eligible.get(name, [])
            expected = [a for a, n in self.nodes.items() if n.active and name in n.models]
            assert sorted(members) == sorted(expected), f"model: eligibility of {name} {members} != {expected}"
            order = [to_checksum_address(chain["eligible", name, i]) for i in range(len(members))]
            assert chain["eligible", name] == len(members) and order == members, (
                f"{name}: eligibility set {chain['eligible', name]} nodes {order}, model {members}"
            )
            changed = self.set_changed.get(name, 0)
            assert chain["changed", name] == changed, f"{name}: set changed at {chain['changed', name]}, not {changed}"

    @invariant()
    def nodes_earn_only_accepted_results(self):
        """Invariant 7: node income is explained by accepted results, as the events tell it."""
        explained = {}
        for request in self.requests.values():
            if request.status != SETTLED:
                continue
            assert request.chain_settlement is not None, f"request {request.id} settled without InferenceSettled"
            accepted, nodes_paid = request.chain_settlement
            producers = [n for n, output in request.chain_results.items() if output == accepted]
            assert producers and set(producers) <= set(request.nodes), (
                f"request {request.id} settled on {accepted.hex()} that no assigned node submitted"
            )
            assert nodes_paid % len(producers) == 0
            for node in producers:
                self._add(explained, node, nodes_paid // len(producers))
        for address in self.env.earners:
            node_part = self.ledger[NODE_ROLE].get(address, 0)
            assert node_part == explained.get(address, 0), (
                f"{address} earned {node_part} as a node; accepted results explain {explained.get(address, 0)}"
            )
            parts = {kind: self.ledger[kind].get(address, 0) for kind in self.ledger}
            balance = parts["deposit"] + parts[NODE_ROLE] + parts[OWNER_ROLE] - parts["withdrawn"] - parts["spent"]
            assert balance == self.held.get(address, 0), (
                f"balance of {address} {self.held.get(address)} != {parts}"
            )

    @invariant()
    def nobody_profits_from_the_protocol(self):
        """Invariant 8 (see the module notes), on the wealth the chain reports."""
        chain = self._chain()
        owners = {model.owner for model in self.models.values()}
        for address in self.env.players:
            stake = chain["node", address][0] if address in self.env.node_candidates else 0
            unbonding = chain["unbonding", address][0] if address in self.env.node_candidates else 0
            wealth = chain["balance", address] + chain["held", address] + stake + unbonding
            others = self.income_from_others.get(address, Fraction(0))
            if address not in self.nodes and address not in owners:
                assert others == 0, f"model: {address} has neither node nor model but income {others}"
            bound = (self.start_wealth[address] + self.gifts_in.get(address, 0) - self.gifts_out.get(address, 0)
                     + others - Fraction(self.own_protocol_parts.get(address, 0), 10))
            if address in (self.washer, self.steerer) and self.own_protocol_parts.get(address):
                # How much of its own requests' protocol parts the attacker lost, net of rewards:
                # at least a tenth (reported at the end of the run).
                lost = bound + Fraction(self.own_protocol_parts[address], 10) - wealth
                ratio = float(lost / self.own_protocol_parts[address])
                who = "wash trader" if address == self.washer else "steerer"
                label = f"least net loss / own protocol parts ({who})"
                self.env.stats[label] = round(min(self.env.stats.get(label, ratio), ratio), 4)
            assert wealth <= bound, (
                f"{address} holds {wealth}, more than its bound {float(bound):.0f} (start"
                f" {self.start_wealth[address]}, gifts in {self.gifts_in.get(address, 0)} / out"
                f" {self.gifts_out.get(address, 0)}, income from others {float(others):.0f}, own protocol parts"
                f" {self.own_protocol_parts.get(address, 0)})"
            )


def test_protocol__random_use__keeps_every_invariant(
    accounts, project, chain, token, marketplace, coordinator, proof_of_use, timelock, genesis_holders, outsider,
    capsys,
):
    # The two attackers: fresh accounts with gas and 20,000 JOY each (from a holder who has 50M).
    adversaries = [accounts.generate_test_account() for _ in range(2)]
    for adversary in adversaries:
        genesis_holders[0].transfer(adversary, "10 ether")
        token.transfer(adversary, ADVERSARY_JOY, sender=genesis_holders[1])
    # The steerer's attacker contract, deployed by the steerer (a fresh account, so that no other
    # test's deployment ever lands at its address), with JOY to pay the requests it tries to
    # make and assign in one transaction.
    steerer_contract = adversaries[0].deploy(project.AssignmentSteerer, marketplace, token)
    token.transfer(steerer_contract, STEERER_CONTRACT_JOY, sender=genesis_holders[1])
    env = Env(chain, token, marketplace, coordinator, proof_of_use, timelock, genesis_holders, outsider, adversaries,
              steerer_contract)
    assert env.params == EXPECTED_PARAMETERS, f"deployed parameters {env.params} != {EXPECTED_PARAMETERS}"
    treasuries = {to_checksum_address(env.marketplace_treasury), to_checksum_address(env.coordinator_treasury)}
    assert treasuries == {timelock.address}, f"treasuries {treasuries}, timelock {timelock.address}"
    # One unlimited approval per holder and spender (OpenZeppelin never spends it down), before
    # any snapshot, so that each step is one transaction instead of approve + call.
    for holder in [*genesis_holders, *adversaries]:
        for spender in (marketplace, coordinator, proof_of_use):
            token.approve(spender, MAX_UINT256, sender=holder)
    # anvil sends for the generated accounts as it does for the genesis holders (see _send).
    generated = [outsider.address, *(adversary.address for adversary in adversaries)]
    for address in generated:
        chain.provider.make_request("anvil_impersonateAccount", [address])
    try:
        run_state_machine_as_test(
            lambda: ProtocolMachine(env),
            settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS),
        )
    finally:
        for address in generated:
            chain.provider.make_request("anvil_stopImpersonatingAccount", [address])
    with capsys.disabled():
        print(f"\nprotocol state machine: {env.checks_run} steps (bootstraps included), each followed by "
              f"every invariant, in {env.examples_run} examples; {env.stats}")
    assert env.checks_run >= MIN_STEPS, f"{env.checks_run} steps, fewer than the {MIN_STEPS} asked for"
