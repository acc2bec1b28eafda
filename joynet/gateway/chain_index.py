"""What the explorer shows, read from the chain: the marketplace's models and requests, the
coordinator's nodes, the DAO's proposals and the bridge's feeless checkpoints.

The history comes from events (``ModelRegistered``, ``InferenceRequested`` ... ``InferenceSettled``,
``ProposalCreated``, ``CheckpointAccepted``...), read through the clients' Ape contracts and kept in
memory: each ``refresh`` reads only the blocks mined since the last one. A chain that went back
(a reorganisation, or a local chain reverted to a snapshot) is seen by the hash of the last block
read, and the history is read again from the deployment's first block. What changes without an
event (a node's load and stake, a proposal's state) is read from the contracts when it is shown.

Every method blocks (Ape and web3 do): the explorer calls them on a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eth_utils import to_checksum_address

from joynet.chain.constants import ZERO32
from joynet.chain.dao import ModelGovernanceDAO, ProposalState, seconds_per_block, time_left
from joynet.chain.marketplace import ModelMarketplace, model_key, node_state

T = TypeVar("T")


def hex32(value: Any) -> str:
    return "0x" + bytes(value).hex()


def transaction_of(log: Any) -> str:
    tx_hash = log.transaction_hash
    return tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()


@dataclass
class ModelRecord:
    """A registered model: its registration, its price and metadata now, its requests' count and
    what its owner earned from them."""

    key: str
    name: str | None
    owner: str
    metadata_uri: str
    price: int
    quorum: int
    circuit_id: str | None
    tolerant: bool
    stream_id: str | None
    registered_block: int
    active: bool = True
    requests: int = 0
    settled: int = 0
    refunded: int = 0
    owner_earned: int = 0
    nodes_earned: int = 0

    @property
    def label(self) -> str:
        return self.name or self.key[:10] + "…"

    @property
    def policy(self) -> str:
        """How the chain verifies its results (as the gateway's receipts say it)."""
        if self.circuit_id:
            return "zk"
        if self.stream_id and self.price == 0:
            return "feeless"
        return "tolerant" if self.tolerant else "quorum"


@dataclass
class RequestRecord:
    """A request from its events: made, assigned, each node's result, declined, closed."""

    id: int
    model_key: str
    requester: str
    price: int
    input_commitment: str
    input_uri: str
    deadline: int
    block: int
    transaction: str
    requested_at: int
    status: str = "Open"
    nodes: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)  # {"node", "output_commitment", "output_uri"}
    committed: int = 0
    declined: list[dict] = field(default_factory=list)  # {"node", "reason"}
    output_commitment: str | None = None
    output_uri: str | None = None
    nodes_paid: int = 0
    owner_paid: int = 0
    protocol_paid: int = 0
    refund_amount: int = 0
    refund_reason: str | None = None
    closed_block: int | None = None
    closed_transaction: str | None = None
    closed_at: int | None = None

    @property
    def latency(self) -> int | None:
        """Seconds (block time) from the request's block to the block that closed it."""
        return None if self.closed_at is None else self.closed_at - self.requested_at

    @property
    def agreeing(self) -> list[str]:
        """The nodes whose result the request settled on (each was paid an equal part)."""
        if self.output_commitment is None:
            return []
        return list(dict.fromkeys(r["node"] for r in self.results if r["output_commitment"] == self.output_commitment))


@dataclass
class NodeRecord:
    """A node from its events: registered, deadlines missed, slashed, and what it earned."""

    address: str
    registered_block: int
    missed_deadlines: int = 0  # DeadlineMissed events, over its life
    slashed: int = 0
    earned: int = 0  # its part of settled requests' fees
    requests: int = 0


@dataclass
class ProposalRecord:
    id: int
    proposer: str
    description: str
    calls: list[tuple[str, int, str]]  # (target, value, calldata)
    vote_start: int
    vote_end: int
    block: int
    transaction: str
    votes: list[dict] = field(default_factory=list)  # {"voter", "support", "weight", "reason"}

    @property
    def title(self) -> str:
        return self.description.splitlines()[0] if self.description else ""


@dataclass
class CheckpointRecord:
    """A feeless stream's checkpoint the bridge accepted (signed by a threshold of bridgers)."""

    stream_id: str
    sequence: int
    head_hash: str
    messages_root: str
    inferences: int
    block: int
    transaction: str
    timestamp: int
    model_key: str | None = None
    paid: int = 0  # JOY the model's budget paid for it


SUPPORT = {0: "against", 1: "for", 2: "abstain"}


class ChainIndex:
    """The events of the marketplace, its coordinator, its feeless bridge and (if given) the DAO,
    kept up to date by ``refresh``. ``names``: model names to show for their keys (the chain
    keeps only the keccak-256 of a name)."""

    def __init__(self, marketplace: ModelMarketplace, dao: ModelGovernanceDAO | None = None, names: Iterable[str] = ()):
        self.marketplace = marketplace
        self.dao = dao
        self.names = {hex32(model_key(name)): name for name in names}
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.last_block = self.marketplace.start_block - 1
        self._last_hash: bytes | None = None
        self.models: dict[str, ModelRecord] = {}
        self.requests: dict[int, RequestRecord] = {}
        self.nodes: dict[str, NodeRecord] = {}
        self.proposals: dict[int, ProposalRecord] = {}
        self.checkpoints: list[CheckpointRecord] = []
        self.streams: dict[str, str] = {}  # stream id -> model key
        self._budget_spent: dict[tuple[str, str], int] = {}  # (transaction, model key) -> JOY paid
        self._timestamps: dict[int, int] = {}

    # ---- reading the chain ----

    def refresh(self) -> int:
        """Reads the events mined since the last refresh; returns the head block."""
        with self._lock:
            return self._refresh()

    def read(self, build: Callable[[ChainIndex], T]) -> tuple[int, T]:
        """Refreshes, then ``build(self)`` before any other refresh changes what it reads (pages
        are built on several threads at once); returns the head block and what ``build`` made."""
        with self._lock:
            return self._refresh(), build(self)

    def _refresh(self) -> int:
        from ape import chain

        head = chain.blocks.height
        if self._last_hash is not None and (
            head < self.last_block or bytes(chain.blocks[self.last_block].hash) != self._last_hash
        ):
            self._reset()  # the chain went back: what was read may never have happened
        if head > self.last_block:
            for log in self._logs(self.last_block + 1, head + 1):
                self._apply(log)
            self.last_block = head
            self._last_hash = bytes(chain.blocks[head].hash)
        return head

    def _sources(self) -> list[tuple[Any, list[str]]]:
        market = self.marketplace
        sources: list[tuple[Any, list[str]]] = [
            (
                market.contract,
                [
                    "ModelRegistered",
                    "ModelPriceUpdated",
                    "ModelMetadataUpdated",
                    "ModelDeactivated",
                    "InferenceRequested",
                    "NodesAssigned",
                    "ResultCommitted",
                    "ResultSubmitted",
                    "RequestDeclined",
                    "InferenceSettled",
                    "InferenceRefunded",
                ],
            ),
            (market.coordinator, ["NodeRegistered", "DeadlineMissed", "NodeSlashed"]),
        ]
        bridge = market.bridge()
        if bridge is not None:
            sources.append((bridge, ["StreamLinked", "CheckpointAccepted", "BudgetSpent"]))
        if self.dao is not None:
            sources.append((self.dao.contract, ["ProposalCreated", "VoteCast", "VoteCastWithParams"]))
        return sources

    def _logs(self, start: int, stop: int) -> list:
        logs = []
        for contract, events in self._sources():
            for name in events:
                logs.extend(getattr(contract, name).range(start, stop))
        return sorted(logs, key=lambda log: (log.block_number, log.log_index))

    def timestamp(self, block: int) -> int:
        from ape import chain

        if block not in self._timestamps:
            self._timestamps[block] = chain.blocks[block].timestamp
        return self._timestamps[block]

    # ---- folding the events ----

    def _apply(self, log: Any) -> None:
        handler = getattr(self, "_on_" + log.event_name, None)
        if handler is not None:
            handler(log)

    def _on_ModelRegistered(self, log: Any) -> None:
        key = hex32(log.modelId)
        circuit, stream = bytes(log.circuitId), bytes(log.iotaStreamId)
        self.models[key] = ModelRecord(
            key=key,
            name=self.names.get(key),
            owner=log.owner,
            metadata_uri=log.metadataURI,
            price=log.price,
            quorum=log.quorum,
            circuit_id=None if circuit == ZERO32 else hex32(circuit),
            tolerant=log.tolerant,
            stream_id=None if stream == ZERO32 else hex32(stream),
            registered_block=log.block_number,
        )

    def _on_ModelPriceUpdated(self, log: Any) -> None:
        if model := self.models.get(hex32(log.modelId)):
            model.price = log.newPrice

    def _on_ModelMetadataUpdated(self, log: Any) -> None:
        if model := self.models.get(hex32(log.modelId)):
            model.metadata_uri = log.metadataURI

    def _on_ModelDeactivated(self, log: Any) -> None:
        if model := self.models.get(hex32(log.modelId)):
            model.active = False

    def _on_InferenceRequested(self, log: Any) -> None:
        key = hex32(log.modelId)
        self.requests[log.requestId] = RequestRecord(
            id=log.requestId,
            model_key=key,
            requester=log.requester,
            price=log.price,
            input_commitment=hex32(log.inputCommitment),
            input_uri=log.inputURI,
            deadline=log.deadline,
            block=log.block_number,
            transaction=transaction_of(log),
            requested_at=self.timestamp(log.block_number),
        )
        if model := self.models.get(key):
            model.requests += 1

    def _on_NodesAssigned(self, log: Any) -> None:
        if request := self.requests.get(log.requestId):
            request.nodes = [to_checksum_address(node) for node in log.nodes]
            request.deadline = log.deadline
            for node in request.nodes:
                if record := self.nodes.get(node):
                    record.requests += 1

    def _on_ResultCommitted(self, log: Any) -> None:
        if request := self.requests.get(log.requestId):
            request.committed = log.committed

    def _on_ResultSubmitted(self, log: Any) -> None:
        if request := self.requests.get(log.requestId):
            node = to_checksum_address(log.node)
            if node not in request.nodes:  # a single node's result assigns it in the same transaction
                request.nodes.append(node)
                if record := self.nodes.get(node):
                    record.requests += 1
            request.results.append(
                {"node": node, "output_commitment": hex32(log.outputCommitment), "output_uri": log.outputURI}
            )

    def _on_RequestDeclined(self, log: Any) -> None:
        if request := self.requests.get(log.requestId):
            request.declined.append({"node": to_checksum_address(log.node), "reason": log.reason})

    def _closed(self, request: RequestRecord, log: Any, status: str) -> None:
        request.status = status
        request.closed_block = log.block_number
        request.closed_transaction = transaction_of(log)
        request.closed_at = self.timestamp(log.block_number)

    def _on_InferenceSettled(self, log: Any) -> None:
        request = self.requests.get(log.requestId)
        if request is None:
            return
        self._closed(request, log, "Settled")
        request.output_commitment = hex32(log.outputCommitment)
        request.output_uri = next(
            (r["output_uri"] for r in request.results if r["output_commitment"] == request.output_commitment), None
        )
        request.nodes_paid, request.owner_paid, request.protocol_paid = log.nodesPaid, log.ownerPaid, log.protocolPaid
        if model := self.models.get(request.model_key):
            model.settled += 1
            model.owner_earned += log.ownerPaid
            model.nodes_earned += log.nodesPaid
        agreeing = request.agreeing
        for node in agreeing:
            if record := self.nodes.get(node):
                record.earned += log.nodesPaid // len(agreeing)

    def _on_InferenceRefunded(self, log: Any) -> None:
        request = self.requests.get(log.requestId)
        if request is None:
            return
        self._closed(request, log, "Refunded")
        request.refund_amount, request.refund_reason = log.amount, log.reason
        if model := self.models.get(request.model_key):
            model.refunded += 1

    def _on_NodeRegistered(self, log: Any) -> None:
        node = to_checksum_address(log.node)
        self.nodes.setdefault(node, NodeRecord(node, log.block_number))

    def _on_DeadlineMissed(self, log: Any) -> None:
        if record := self.nodes.get(to_checksum_address(log.node)):
            record.missed_deadlines += 1

    def _on_NodeSlashed(self, log: Any) -> None:
        if record := self.nodes.get(to_checksum_address(log.node)):
            record.slashed += log.amount

    def _on_StreamLinked(self, log: Any) -> None:
        self.streams[hex32(log.streamId)] = hex32(log.modelId)

    def _on_CheckpointAccepted(self, log: Any) -> None:
        stream, transaction = hex32(log.streamId), transaction_of(log)
        model = self.streams.get(stream)
        self.checkpoints.append(
            CheckpointRecord(
                stream_id=stream,
                sequence=log.sequence,
                head_hash=hex32(log.headHash),
                messages_root=hex32(log.messagesRoot),
                inferences=log.inferences,
                block=log.block_number,
                transaction=transaction,
                timestamp=self.timestamp(log.block_number),
                model_key=model,
                paid=self._budget_spent.pop((transaction, model), 0) if model else 0,
            )
        )

    def _on_BudgetSpent(self, log: Any) -> None:
        # Emitted in the checkpoint's transaction, before CheckpointAccepted: kept until it comes.
        self._budget_spent[(transaction_of(log), hex32(log.modelId))] = log.spent

    def _on_ProposalCreated(self, log: Any) -> None:
        fields = log.event_arguments  # "values" read as an attribute could be a method's name
        self.proposals[log.proposalId] = ProposalRecord(
            id=log.proposalId,
            proposer=log.proposer,
            description=log.description or "",
            calls=[
                (target, value, hex32(data))
                for target, value, data in zip(fields["targets"], fields["values"], fields["calldatas"], strict=False)
            ],
            vote_start=log.voteStart,
            vote_end=log.voteEnd,
            block=log.block_number,
            transaction=transaction_of(log),
        )

    def _on_VoteCast(self, log: Any) -> None:
        if proposal := self.proposals.get(log.proposalId):
            proposal.votes.append(
                {
                    "voter": log.voter,
                    "support": SUPPORT.get(log.support, str(log.support)),
                    "weight": log.weight,
                    "reason": log.reason,
                }
            )

    _on_VoteCastWithParams = _on_VoteCast

    # ---- what changes without events ----

    def model_name(self, key: str | None) -> str:
        if key is None:
            return "?"
        model = self.models.get(key)
        return model.label if model else key[:10] + "…"

    def node_state(self, address: str) -> dict:
        """The node's stake, load, lease and unwithdrawn fees now (``joynet.chain.marketplace.node_state``)."""
        return node_state(self.marketplace, address, self.names.values())

    def proposal_state(self, proposal_id: int) -> dict:
        """The proposal's state, votes, quorum, what it waits for and its timelock ETA, now."""
        from ape import chain

        assert self.dao is not None
        contract = self.dao.contract
        state = self.dao.state(proposal_id)
        snapshot = contract.proposalSnapshot(proposal_id)
        eta = contract.proposalEta(proposal_id) if state in (ProposalState.Queued, ProposalState.Executed) else 0
        return {
            "state": state.name,
            "votes": self.dao.votes(proposal_id),
            "quorum": contract.quorum(snapshot) if snapshot < chain.blocks.height else None,
            "snapshot": snapshot,
            "deadline": contract.proposalDeadline(proposal_id),
            "eta": eta or None,
            "waiting": time_left(contract, proposal_id, seconds_per_block()),
        }
