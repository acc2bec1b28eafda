"""``joynet.ModelMarketplace``: the marketplace client with the original design's async API.

    marketplace = ModelMarketplace(web3_provider="http://127.0.0.1:8545", account=owner)
    await marketplace.register_model(model_id="mymodel", metadata="ipfs://...", price=5 * JOY)
    request_id = await marketplace.request_inference("mymodel", input_commitment, "ipfs://input")
    result = await marketplace.get_result(request_id)   # waits for settlement or refund

A request's life on chain: the request pays into escrow; from the next block anyone assigns its
nodes (``assign_nodes``; ``request_inference`` does it for a quorum model), seeded by the request
block's hash. A single-node request is usually left unassigned: the node the draw names
(``drawn_nodes``) submits its result (``submit_result``), which assigns it in the same
transaction; the other nodes assign it only if that node stays silent. The k nodes of a quorum first commit
to a sealed result (``commit_result``) and reveal it once all have committed
(``reveal_result``). Node-side calls (``register_node``, ``decline_request``, ``close_expired``,
``withdraw_balance``) are here too. Model ids are names; on chain a model is keyed by the
keccak-256 of its name (:func:`model_key`), registered in two steps (a commitment, then the
registration from a later block) so that nobody can front-run the name. Everything goes through
Ape: the connected provider (or the one ``web3_provider`` names) and an Ape account.
Transactions run in a worker thread.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from joynet.chain.constants import ZERO32, ZERO_ADDRESS, is_local_chain
from joynet.chain.contract_types import container
from joynet.chain.deployment_file import load_deployment
from joynet.chain.errors import MarketplaceError, TransactionRefusedError
from joynet.chain.signing import SigningClient

logger = logging.getLogger("joynet.chain.marketplace")


class Request(NamedTuple):
    """ModelMarketplace.Request: what the chain committed to when the request was made and its
    nodes were assigned. The chain keeps only its digest, so assigning, submitting, declining and
    closing pass it back; it is rebuilt from the InferenceRequested event (its block is the seed
    block) and, once assigned, the NodesAssigned event (the nodes and the deadline)."""

    id: int
    modelId: bytes
    requester: str
    escrow: int
    inputCommitment: bytes
    deadline: int
    seedBlock: int
    coordinator: str
    nodes: list[str]

    @classmethod
    def from_event(cls, event, assigned=None) -> Request:
        """From an InferenceRequested event, and the request's NodesAssigned event if any."""
        request = cls(
            event.requestId,
            bytes(event.modelId),
            event.requester,
            event.price,
            bytes(event.inputCommitment),
            event.deadline,
            event.block_number,
            event.coordinator,
            [],
        )
        return request.assigned(assigned) if assigned is not None else request

    def assigned(self, event) -> Request:
        """This request as its NodesAssigned event left it."""
        return self._replace(deadline=event.deadline, nodes=[to_checksum_address(n) for n in event.nodes])

    @property
    def quorum(self) -> int:
        return len(self.nodes)


class RequestStatus(enum.IntEnum):
    """ModelMarketplace.Status, by name."""

    Unknown = 0
    Open = 1
    Settled = 2
    Refunded = 3


# The vote a validator of a tolerant request reveals to reject the generator's result (to accept
# it, the generator's output commitment; any other value rejects too).
REJECTED_VOTE = keccak(text="joynet.tolerant.reject")


def seal_result(request_id: int, node: str, output_commitment: bytes, salt: bytes) -> bytes:
    """The sealed result a quorum node commits to (ModelMarketplace.sealResult)."""
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32", "bytes32"],
            [request_id, to_checksum_address(node), output_commitment, salt],
        )
    )


def registration_commitment(model: bytes, owner: str, salt: bytes) -> bytes:
    """What a model owner commits to before registering (ModelMarketplace.commitModelRegistration)."""
    return keccak(abi_encode(["bytes32", "address", "bytes32"], [model, to_checksum_address(owner), salt]))


def model_key(model_id: str | bytes) -> bytes:
    """The on-chain 32-byte key of a model: keccak-256 of its name (32 raw bytes pass through)."""
    if isinstance(model_id, bytes):
        if len(model_id) != 32:
            raise MarketplaceError(f"a raw model key is 32 bytes, got {len(model_id)}")
        return model_id
    if not model_id:
        raise MarketplaceError("a model id must not be empty")
    return keccak(text=model_id)


def _bytes32(value: bytes | str | None, name: str) -> bytes:
    if value is None:
        return ZERO32
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 32:
        raise MarketplaceError(f"{name} must be 32 bytes, got {len(value)}")
    return bytes(value)


@dataclass
class InferenceResult:
    """The outcome of a request, as the chain recorded it."""

    request_id: int
    status: RequestStatus
    output_commitment: bytes | None = None
    output_uri: str | None = None
    nodes: list[str] = field(default_factory=list)
    refund_reason: str | None = None
    # The transaction that closed the request (settled or refunded it) and its block: where
    # anyone checks the outcome on chain.
    transaction_hash: str | None = None
    block_number: int | None = None


def circuit_registered(marketplace, circuit_id: bytes) -> bool:
    """Whether ``circuit_id`` is a circuit the DAO registered in the ProofOfInference of
    ``marketplace`` (a ModelMarketplaceV2 contract): its ``circuitOf`` reverts for any other."""
    from ape.exceptions import ContractLogicError

    registry = container("ProofOfInference").at(marketplace.proofOfInference())
    try:
        registry.circuitOf(bytes(circuit_id))
    except ContractLogicError:
        return False
    return True


class ModelMarketplace(SigningClient):
    """Client of the deployed ModelMarketplaceV2 (and the NodeCoordinator it uses)."""

    error_type = MarketplaceError

    def __init__(self, web3_provider: str | None = None, contract_address: str | None = None, account: Any = None):
        """``web3_provider``: an RPC URL to connect Ape to when no provider is connected yet;
        ``contract_address``: the marketplace (default: from the deployment file);
        ``account``: the Ape account that signs transactions."""
        from ape import networks

        self._provider_context = None
        if web3_provider and not networks.active_provider:
            self._provider_context = networks.parse_network_choice(web3_provider)
            self._provider_context.__enter__()
        deployment = None
        if contract_address is None:
            deployment = load_deployment()
            contract_address = deployment.address("ModelMarketplace")
        self.contract = container("ModelMarketplaceV2").at(contract_address)
        self.coordinator = container("NodeCoordinator").at(self.contract.coordinator())
        self.token = container("JoyToken").at(self.contract.joy())
        super().__init__(account)
        self.start_block = deployment.start_block if deployment else 0
        self._validator: Any = None  # the feeless bridge, looked up when first needed

    def close(self) -> None:
        """Disconnects the provider this client connected (if it connected one)."""
        if self._provider_context is not None:
            self._provider_context.__exit__(None, None, None)
            self._provider_context = None

    @property
    def address(self) -> str:
        return self.contract.address

    # ---- model owners ----

    async def register_model(
        self,
        model_id: str | bytes,
        metadata: str,
        price: int = 0,
        iota_stream_id: bytes | str | None = None,
        weights_commitment: bytes | str | None = None,
        quorum: int = 1,
        circuit_id: bytes | str | None = None,
        response_window: int = 0,
        tolerant: bool = False,
    ) -> bytes:
        """Registers a model; returns its on-chain key. ``price`` in JOY wei; 0 needs a stream.
        ``response_window``: the seconds its nodes need at least (0: the network's minimum).
        ``tolerant``: the first of the ``quorum`` nodes generates and the others validate its
        result (``quorum`` >= 2, no circuit) instead of all agreeing bit for bit.
        Two transactions: a commitment to (key, owner, a random salt), then the registration
        from a later block, so that nobody who sees the registration can take the name first."""
        if not metadata.startswith("ipfs://"):
            raise MarketplaceError(f"metadata must be an ipfs:// URI, got {metadata!r}")
        if price == 0 and iota_stream_id is None:
            raise MarketplaceError("a free model must name its IOTA stream (iota_stream_id)")
        key = model_key(model_id)
        if self.contract.getModel(key).owner != ZERO_ADDRESS:
            raise MarketplaceError(f"model {model_id!r} is already registered")
        # Every argument is checked before the commitment is sent: a bad one found afterwards
        # would leave a spent commitment transaction and no registration.
        policy = (quorum, _bytes32(circuit_id, "circuit_id"), response_window, tolerant)
        weights = _bytes32(weights_commitment, "weights_commitment")
        stream = _bytes32(iota_stream_id, "iota_stream_id")
        salt = os.urandom(32)
        await self._send(self.contract.commitModelRegistration, registration_commitment(key, self._sender(), salt))
        await self._next_block()
        await self._send(self.contract.registerModel, key, metadata, weights, price, policy, stream, salt)
        return key

    async def update_price(self, model_id: str | bytes, price: int) -> Any:
        """Changes the model's price (JOY wei; 0 only for a feeless model). Its owner only."""
        self.owned_model(model_id)
        return await self._send(self.contract.updatePrice, model_key(model_id), price)

    async def update_metadata(self, model_id: str | bytes, metadata: str) -> Any:
        """Points the model at new metadata (an ipfs:// URI). Its owner only; the weights
        commitment and the verification policy stay those it was registered with."""
        if not metadata.startswith("ipfs://") or len(metadata) <= len("ipfs://"):
            raise MarketplaceError(f"metadata must be an ipfs:// URI, got {metadata!r}")
        self.owned_model(model_id)
        return await self._send(self.contract.updateMetadata, model_key(model_id), metadata)

    async def deactivate_model(self, model_id: str | bytes) -> Any:
        """Withdraws the model from the marketplace for good (open requests still complete). Its
        owner only."""
        if not self.owned_model(model_id).active:
            raise MarketplaceError(f"model {model_id!r} is already deactivated")
        return await self._send(self.contract.deactivateModel, model_key(model_id))

    def owned_model(self, model_id: str | bytes):
        """The registered model, if this client's account owns it; MarketplaceError otherwise
        (checked before anything is sent: the contract would refuse anyone else)."""
        model = self.get_model(model_id)
        if model.owner != self._sender():
            raise MarketplaceError(
                f"model {model_id!r} belongs to {model.owner}, not to {self._sender()}: sign with its owner's account"
            )
        return model

    def get_model(self, model_id: str | bytes):
        model = self.read(self.contract.getModel, model_key(model_id))
        if model.owner == ZERO_ADDRESS:
            raise MarketplaceError(f"no model {model_id!r} is registered")
        return model

    def circuit_registered(self, circuit_id: bytes) -> bool:
        """Whether the DAO registered ``circuit_id`` in ProofOfInference (see circuit_registered)."""
        return circuit_registered(self.contract, circuit_id)

    def bridge(self):
        """The marketplace's feeless bridge (IOTAValidator, ``ProofOfUse.bridge``), or None."""
        if self._validator is None:
            bridge = self.read(container("ProofOfUse").at(self.read(self.contract.proofOfUse)).bridge)
            if bridge == ZERO_ADDRESS:
                return None
            self._validator = container("IOTAValidator").at(bridge)
        return self._validator

    def channel_key_of(self, model_id: str | bytes, node: str) -> bytes | None:
        """The channel key ``node`` bound for the feeless model ``model_id`` in the bridge, or None."""
        bridge = self.bridge()
        key = bytes(self.read(bridge.channelKeyOf, model_key(model_id), node)) if bridge is not None else ZERO32
        return None if key == ZERO32 else key

    # ---- requesters ----

    async def request_inference(
        self,
        model_id: str | bytes,
        input_commitment: bytes | str,
        input_uri: str,
        max_price: int | None = None,
        deadline_seconds: int = 600,
        from_balance: bool = False,
        assign: bool | None = None,
    ) -> int:
        """Pays the model's price into escrow (approving it if needed) and asks for an inference;
        returns the request id. ``max_price`` defaults to the current price. With
        ``from_balance`` the price comes from the caller's deposited balance (see deposit) and no
        token moves. With ``assign`` the client also assigns the request's nodes from the next
        block, unless a node did it first. By default it does so for a quorum model only: a
        single-node request is assigned by its drawn node's result, which saves the requester
        the assignment's transaction (about 50,000 gas less in all). A model with fewer nodes
        serving it than its quorum is refused before anything is sent (MarketplaceError). When
        its nodes are busy (none has room to be assigned yet), the default leaves the open
        request to the edge agents (they assign it once a request closes) and returns its id;
        ``assign=True`` raises MarketplaceError naming the request."""
        from ape import chain

        model = self.get_model(model_id)
        max_price = model.price if max_price is None else max_price
        if model.price > max_price:
            raise MarketplaceError(f"the price is {model.price} wei, above max_price {max_price}")
        serving = self.read(self.coordinator.eligibleNodes, model_key(model_id))
        if serving < model.quorum:  # busy nodes take it later; no node at all never would
            raise MarketplaceError(
                f"model {model_id!r} needs {model.quorum} node(s) and {serving} serve it now: nothing was sent"
            )
        if from_balance:
            balance = self.read(self.contract.balances, self._sender())
            if balance < model.price:
                raise MarketplaceError(f"the balance is {balance} wei, below the price {model.price}: deposit first")
        elif self.read(self.token.allowance, self._sender(), self.contract.address) < model.price:
            await self._send(self.token.approve, self.contract, max_price)
        deadline = chain.pending_timestamp + deadline_seconds
        receipt = await self._send(
            self.contract.requestInferenceFromBalance if from_balance else self.contract.requestInference,
            model_key(model_id),
            _bytes32(input_commitment, "input_commitment"),
            input_uri,
            max_price,
            deadline,
        )
        (event,) = receipt.decode_logs(self.contract.InferenceRequested)
        if assign or (assign is None and model.quorum > 1):
            try:
                await self.assign_nodes(Request.from_event(event))
            except TransactionRefusedError as error:  # the request stands: say which, or leave it to the agents
                if error.error != "NodeCoordinatorNoEligibleNode":
                    raise
                if assign:
                    raise MarketplaceError(
                        f"request {event.requestId} was made, but no node has room to be assigned yet: "
                        "assign it later (assign_nodes) or let the edge agents assign it"
                    ) from error
                logger.warning("request %d: no node has room yet; the edge agents assign it later", event.requestId)
        return event.requestId

    async def assign_nodes_batch(self, requests: Sequence[int | Request]) -> list[Request]:
        """Assigns several requests' nodes in one transaction (assignNodesBatch, which skips any
        that cannot be assigned now); returns the requests as they stand afterwards."""
        pending = [request for request in map(self._request, requests) if not request.nodes]
        if pending:
            await self._next_block(after=max(request.seedBlock for request in pending))
            await self._send(self.contract.assignNodesBatch, pending)
        return [self.get_request(self._request(request).id) for request in requests]

    async def assign_nodes(self, request: int | Request) -> Request:
        """Assigns the request's nodes (from the block after the request's); returns the request
        as assigned. A request some node assigned meanwhile is only read back."""
        request = self._request(request)
        if request.nodes:
            return request
        await self._next_block(after=request.seedBlock)
        try:
            receipt = await self._send(self.contract.assignNodes, request)
        except TransactionRefusedError:  # a node may have assigned it first
            assigned = self.get_request(request.id)
            if assigned.nodes or self.status(request.id) is not RequestStatus.Open:
                return assigned
            raise
        (event,) = receipt.decode_logs(self.contract.NodesAssigned)
        return request.assigned(event)

    def nodes_with_room(self, model_id: str | bytes, enough: int | None = None) -> tuple[int, int]:
        """(nodes with room, nodes serving): how many of the nodes serving ``model_id`` could be
        assigned a request now (``isEligible``: below capacity, free stake for a bond, a running
        lease), and how many serve it at all. With ``enough``, counting stops once that many have
        room. A request made while none has room waits for one (the agents assign it later)."""
        key = model_key(model_id)
        serving = self.read(self.coordinator.eligibleNodes, key)
        room = 0
        for index in range(serving):
            node = self.read(self.coordinator.eligibleNodeAt, key, index)
            room += bool(self.read(self.coordinator.isEligible, node, key))
            if enough is not None and room >= enough:
                break
        return room, serving

    def drawn_nodes(self, request: int | Request) -> list[str]:
        """The nodes ``assign_nodes`` would assign to the unassigned request now (as the next
        block sees it: the request's seed is known from the block after it). A single node's
        draw follows the nodes' loads, so it holds until they change."""
        return [
            to_checksum_address(node)
            for node in self.read(self.contract.drawnNodes, self._request(request), next_block=True)
        ]

    def status(self, request_id: int) -> RequestStatus:
        return RequestStatus(self.read(self.contract.requestStatus, request_id))

    def get_request(self, request_id: int) -> Request:
        """The request as it was made and assigned (from its InferenceRequested and NodesAssigned
        events)."""
        from ape import chain

        stop = chain.blocks.height + 1
        topics = {"requestId": request_id}
        events = list(self.contract.InferenceRequested.range(self.start_block, stop, search_topics=topics))
        if not events:
            raise MarketplaceError(f"there is no request {request_id}")
        assigned = list(self.contract.NodesAssigned.range(events[0].block_number, stop, search_topics=topics))
        return Request.from_event(events[0], assigned[0] if assigned else None)

    async def get_result(
        self, request_id: int, timeout: float | None = 60.0, poll_seconds: float = 0.5
    ) -> InferenceResult:
        """Waits until the request is settled or refunded and returns its outcome."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status(request_id)) is RequestStatus.Open:
            if deadline is not None and time.monotonic() > deadline:
                raise MarketplaceError(f"request {request_id} is still open after {timeout} s")
            await asyncio.sleep(poll_seconds)
        if status is RequestStatus.Unknown:
            raise MarketplaceError(f"there is no request {request_id}")
        return self._outcome(request_id, status)

    def outcome(self, request_id: int) -> InferenceResult:
        """The request's outcome as the chain records it now, without waiting: its status, and
        once closed its commitment, output URI, refund reason and closing transaction. For a
        caller that polls on its own terms (from a worker thread, say)."""
        status = self.status(request_id)
        if status is RequestStatus.Unknown:
            raise MarketplaceError(f"there is no request {request_id}")
        if status is RequestStatus.Open:
            return InferenceResult(request_id, status, nodes=self.get_request(request_id).nodes)
        return self._outcome(request_id, status)

    # ---- node operators ----

    async def register_node(self, stake: int, capacity: int, models: Sequence[str | bytes]) -> None:
        """Approves ``stake`` JOY and registers the account as a node serving ``models``."""
        await self._send(self.token.approve, self.coordinator, stake)
        await self._send(self.coordinator.registerNode, stake, capacity, [model_key(m) for m in models])

    async def renew_lease(self) -> Any:
        """Renews the node's lease: it can be drawn for the next ``leaseBlocks`` blocks (the
        account must be an active node)."""
        return await self._send(self.coordinator.renewLease)

    async def end_lease(self) -> Any:
        """Ends the node's lease at once (a graceful pause: no new work until renewed, no
        rejoin delay); open tasks continue."""
        return await self._send(self.coordinator.endLease)

    def lease_blocks_left(self, node: str | None = None) -> int:
        """Blocks from the next one in which ``node`` (default: this account) can still be
        drawn before its lease runs out (0: its lease does not run in the next block)."""
        from ape import chain

        return max(self.coordinator.leaseEnd(node or self._sender()) - (chain.blocks.height + 1), 0)

    async def submit_result(
        self, request: int | Request, output_commitment: bytes | str, output_uri: str, proof: bytes = b""
    ) -> Any:
        """Submits the result of a single-node request (a :class:`Request` or its id): one
        assigned to this node, or one still unassigned whose draw names it (``drawn_nodes``),
        which the result then assigns."""
        return await self._send(
            self.contract.submitResult,
            self._request(request),
            _bytes32(output_commitment, "output_commitment"),
            output_uri,
            proof,
        )

    async def submit_results(self, results: Sequence[tuple[int | Request, bytes | str, str, bytes]]) -> Any:
        """Submits several results of single-node requests in one transaction (submitResults):
        each ``(request, output_commitment, output_uri, proof)`` as ``submit_result`` takes them.
        All or nothing: one refused entry refuses the batch (TransactionRefusedError naming it)."""
        requests, commitments, uris, proofs = [], [], [], []
        for request, output_commitment, output_uri, proof in results:
            requests.append(self._request(request))
            commitments.append(_bytes32(output_commitment, "output_commitment"))
            uris.append(output_uri)
            proofs.append(proof)
        return await self._send(self.contract.submitResults, requests, commitments, uris, proofs)

    async def commit_result(self, request: int | Request, output_commitment: bytes | str, salt: bytes) -> Any:
        """Commits to the sealed result of a quorum request; keep ``salt`` to reveal it."""
        request = self._request(request)
        sealed = seal_result(
            request.id, self._sender(), _bytes32(output_commitment, "output_commitment"), _bytes32(salt, "salt")
        )
        return await self._send(self.contract.commitResult, request, sealed)

    async def reveal_result(
        self, request: int | Request, output_commitment: bytes | str, salt: bytes, output_uri: str, proof: bytes = b""
    ) -> Any:
        """Reveals a committed result of a quorum request (once every node committed, or after
        the deadline)."""
        return await self._send(
            self.contract.revealResult,
            self._request(request),
            _bytes32(output_commitment, "output_commitment"),
            _bytes32(salt, "salt"),
            output_uri,
            proof,
        )

    async def decline_request(self, request: int | Request, reason: str) -> Any:
        """Declines a request assigned to this node (the escrow goes back at once). A node drawn
        for a single-node request nobody assigned yet assigns it first: only an assigned node
        may decline."""
        return await self._send(self.contract.declineRequest, await self.assign_nodes(request), reason)

    async def close_expired(self, request: int | Request) -> Any:
        return await self._send(self.contract.closeExpired, self._request(request))

    async def deposit(self, amount: int, account: str | None = None) -> Any:
        """Moves ``amount`` JOY wei from the caller into ``account``'s balance (the caller's by
        default), from which request_inference(from_balance=True) pays."""
        if amount <= 0:
            raise MarketplaceError(f"the deposit must be positive, got {amount}")
        if self.token.allowance(self._sender(), self.contract) < amount:
            await self._send(self.token.approve, self.contract, amount)
        return await self._send(self.contract.deposit, account or self._sender(), amount)

    async def withdraw_balance(self, account: str | None = None) -> Any:
        """Withdraws the JOY held for ``account`` (the caller's own by default; another account's
        only if it approved the caller as its operator)."""
        return await self._send(self.contract.withdrawBalance, account or self._sender())

    async def set_operator(self, operator: str, approved: bool = True) -> Any:
        """Allows (or no longer allows) ``operator`` to withdraw the caller's balance to it."""
        return await self._send(self.contract.setOperator, operator, approved)

    # ---- internals ----

    def _request(self, request: int | Request) -> Request:
        return request if isinstance(request, Request) else self.get_request(request)

    async def _next_block(self, after: int | None = None, timeout: float = 120.0) -> None:
        """Waits until the chain is past block ``after`` (default: the current block), so that
        the next transaction lands in a later block. A local chain that mines on demand moves
        by itself with the next transaction."""
        from ape import chain

        target = chain.blocks.height if after is None else after
        if _mines_on_demand():
            return
        deadline = time.monotonic() + timeout
        while chain.blocks.height <= target:
            if time.monotonic() > deadline:
                raise MarketplaceError(f"the chain did not pass block {target} within {timeout} s")
            await asyncio.sleep(0.5)

    def _outcome(self, request_id: int, status: RequestStatus) -> InferenceResult:
        from ape import chain

        result = InferenceResult(request_id, status, nodes=self.get_request(request_id).nodes)
        stop = chain.blocks.height
        if status is RequestStatus.Settled:
            (settled,) = self.contract.InferenceSettled.range(
                self.start_block, stop + 1, search_topics={"requestId": request_id}
            )
            result.output_commitment = bytes(settled.outputCommitment)
            result.transaction_hash, result.block_number = _transaction_of(settled), settled.block_number
            for submitted in self.contract.ResultSubmitted.range(
                self.start_block, stop + 1, search_topics={"requestId": request_id}
            ):
                if bytes(submitted.outputCommitment) == result.output_commitment:
                    result.output_uri = submitted.outputURI
                    break
        else:
            (refunded,) = self.contract.InferenceRefunded.range(
                self.start_block, stop + 1, search_topics={"requestId": request_id}
            )
            result.refund_reason = refunded.reason
            result.transaction_hash, result.block_number = _transaction_of(refunded), refunded.block_number
        return result


def node_state(market: ModelMarketplace, address: str, models=()) -> dict:
    """A node as the chain records it now: registration, stake (bonded to open tasks, unbonding),
    capacity and load, missed deadlines in a row, lease, the models it serves (by name when
    ``models`` names them) and the fees credited to it not yet withdrawn."""
    from ape import chain

    info = market.coordinator.nodeInfo(address)
    names = {model_key(name): name for name in models}
    served = [names.get(bytes(key), "0x" + bytes(key).hex()) for key in market.coordinator.modelsOf(address)]
    unbonding, _ready_at = market.coordinator.unbondingOf(address)
    return {
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
        "head": chain.blocks.height,
        "lease_end": market.coordinator.leaseEnd(address),  # drawn for new work while the head is below it
        "lease_running": market.coordinator.leaseRunning(address),
        "models": served,
        "fees_unwithdrawn": market.contract.balances(address),
    }


def _transaction_of(event) -> str:
    """The 0x hash of the transaction that emitted ``event`` (an Ape contract log)."""
    tx_hash = event.transaction_hash
    return tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()


def _mines_on_demand() -> bool:
    """True for a local development chain that mines a block per transaction (anvil's automine):
    the next transaction is always in a later block."""
    from ape import chain

    return is_local_chain(chain.chain_id)
