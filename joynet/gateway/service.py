"""What the gateway does on chain and in the store, whatever the HTTP route: read the models it
exposes, make a paid request from its deposited balance, wait for the request to close, fetch the
output document and check it against the chain, and say how it was verified (the receipt). A
feeless model (price 0, a stream on chain) is asked over its owner's channel instead: nothing is
sent on chain, and the answer counts only from a node the chain binds to its signing key.

Every chain call goes through Ape, on a worker thread (``asyncio.to_thread``): Ape and web3 block,
and the gateway's event loop serves other users meanwhile. Reads that decide whether to send at all
(the model, the nodes with room) are bounded by ``chain_timeout``: a chain that does not answer is
a 503, never a hung request. A request once sent is never abandoned by the gateway: if it does not
close within ``settle_timeout`` the answer is a 504 naming it, and ``GET /v1/requests/{id}``
follows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from joynet.chain.constants import ZERO32
from joynet.chain.errors import MarketplaceError, TransactionRefusedError
from joynet.chain.marketplace import InferenceResult, ModelMarketplace, RequestStatus, model_key
from joynet.channels.errors import ChannelError
from joynet.errors import JoyNetError
from joynet.feeless.checks import check_registered_circuit, circuit_verification_key
from joynet.feeless.claims import Bindings
from joynet.feeless.errors import AccessDeniedError, ProofRejectedError
from joynet.feeless.requester import ChannelAnswer, request_over_channel, wait_for_serving_node
from joynet.gateway.errors import (
    BadRequestError,
    DeclinedError,
    GatewayError,
    ModelNotFoundError,
    NoCapacityError,
    RefundedError,
    RequestNotFoundError,
    SettlementTimeoutError,
    UnverifiedOutputError,
)
from joynet.gateway.keys import ApiKey, KeyLedger
from joynet.inference.errors import InferenceError, InvalidInputError, OutputMismatchError
from joynet.inference.inputs import publish_input
from joynet.inference.outputs import fetch_output
from joynet.inference.schema import DEFAULT_MAX_INPUT_BYTES, compile_schema, decode_payload, validate_input
from joynet.models.errors import ModelPackageError
from joynet.models.package import ModelPackage, load_model_metadata
from joynet.storage import ModelStore, StoreError

logger = logging.getLogger("joynet.gateway")

T = TypeVar("T")

# Seconds a client is told to wait before trying again when no node has room.
RETRY_AFTER_SECONDS = 5
# Seconds a feeless request waits for a node serving its model's channel before the answer is a 503.
FEELESS_SERVING_WAIT = 1.0
# The error the coordinator reverts with when no node serving a model has room.
NO_ELIGIBLE_NODE = "NodeCoordinatorNoEligibleNode"


@dataclass
class GatewaySettings:
    """``models``: the model ids (names registered on chain) the gateway exposes.
    ``settle_timeout``: seconds a request may take to close before the answer is a 504.
    ``chain_timeout``: seconds the reads before a request may take before the answer is a 503.
    ``max_input_bytes``: the largest input document accepted (canonical JSON).
    ``channel_seed``: the BIP-39 mnemonic of the gateway's channel key, with which it asks feeless
    models (default: a new key each time the gateway starts; feeless channels admit anyone)."""

    models: list[str]
    settle_timeout: float = 120.0
    chain_timeout: float = 1.5
    poll_seconds: float = 0.1
    retry_after: int = RETRY_AFTER_SECONDS
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    channel_seed: str | None = None


@dataclass
class ExposedModel:
    """A model as the registry on chain and its metadata in the store describe it."""

    name: str
    key: bytes
    owner: str
    price: int
    quorum: int
    circuit_id: bytes | None
    tolerant: bool
    active: bool
    metadata_uri: str
    metadata: dict
    stream: bytes | None = None  # the channel of a model served feeless (its iotaStreamId)
    weights_commitment: bytes = ZERO32
    validator: Any = field(default=None, repr=False)  # the compiled inputSchema, if the metadata has one

    @property
    def framework(self) -> str | None:
        return self.metadata.get("framework")

    @property
    def feeless(self) -> bool:
        """Asked over its owner's channel (price 0 and a stream on chain), not paid on chain."""
        return self.price == 0 and self.stream is not None

    @property
    def channel_id(self) -> str | None:
        return "0x" + self.stream.hex() if self.stream is not None else None

    @property
    def zk(self) -> bool:
        """Verified by a circuit: its input commitment is the circuit's (Poseidon, salted)."""
        return self.circuit_id is not None

    def policy(self) -> dict:
        """How the chain checks this model's results: a zero-knowledge proof of the named circuit,
        a quorum of k distinct nodes agreeing on the output's commitment, or (tolerant) one node
        generating and the k - 1 others re-checking its answer and voting."""
        return {
            "kind": "zk" if self.zk else "tolerant" if self.tolerant else "quorum",
            "quorum": self.quorum,
            "circuit_id": "0x" + self.circuit_id.hex() if self.circuit_id else None,
        }

    def describe(self) -> dict:
        """The JoyNet fields of the model's entry in ``GET /v1/models``."""
        return {
            "key": "0x" + self.key.hex(),
            "owner": self.owner,
            "price_wei": str(self.price),
            "policy": self.policy(),
            "mode": "feeless" if self.feeless else "paid",
            "channel_id": self.channel_id,
            "active": self.active,
            "metadata_uri": self.metadata_uri,
            "framework": self.framework,
            "runtime": self.metadata.get("name"),
            "description": self.metadata.get("description"),
            "input_schema": self.metadata.get("inputSchema"),
        }


@dataclass
class Submitted:
    """A request just made: its id and its published input."""

    request_id: int
    input_uri: str
    input_commitment: bytes


@dataclass
class Settlement:
    """A request answered with an output that checked out: the output and its receipt.
    ``request_id``: the request's id on chain, or a feeless request's message id on its channel."""

    model: ExposedModel
    request_id: int | str
    output: dict
    receipt: dict


class InferenceService:
    """The gateway's side of the marketplace: one requester account (``marketplace.account``)
    that pays every request from its deposited balance, and the store the nodes read."""

    def __init__(self, marketplace: ModelMarketplace, store: ModelStore, settings: GatewaySettings):
        self.marketplace = marketplace
        self.store = store
        self.settings = settings
        self._metadata: dict[str, dict] = {}  # metadata URI -> document (content-addressed: never stale)
        self._validators: dict[str, Any] = {}
        self._names = {model_key(name): name for name in settings.models}
        self._chain_id: int | None = None
        self._channel: Any = None  # the gateway's IOTAInferenceHandler, made on the first feeless request
        self._prover: Any = None  # snarkjs, for feeless ZK answers' proofs
        self._proving = asyncio.Lock()

    def close(self) -> None:
        """Closes the gateway's channel transport, if it opened one."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # ---- reading ----

    async def chain(self, call: Callable[..., T], *args: Any, bounded: bool = True) -> T:
        """``call(*args)`` on a worker thread; with ``bounded``, a NoCapacityError when the chain
        takes longer than ``chain_timeout``."""
        work = asyncio.to_thread(call, *args)
        if not bounded:
            return await work
        try:
            return await asyncio.wait_for(work, self.settings.chain_timeout)
        except TimeoutError:
            raise NoCapacityError(
                f"the chain did not answer within {self.settings.chain_timeout} s: try again later",
                code="chain_unavailable",
                headers=self.retry_headers(),
            ) from None

    def retry_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.retry_after)}

    async def model(self, name: str) -> ExposedModel:
        """The exposed model ``name`` as registered now; ModelNotFoundError for any other."""
        if not isinstance(name, str) or name not in self.settings.models:
            raise ModelNotFoundError(f"the model {name!r} does not exist here: GET /v1/models lists the models")
        try:
            entry = await self.chain(self.marketplace.get_model, name)
        except MarketplaceError:
            raise ModelNotFoundError(f"the model {name!r} is not registered on this chain") from None
        uri = entry.metadataURI
        metadata = self._metadata.get(uri)
        if metadata is None:
            try:
                metadata = await load_model_metadata(self.store, uri)
            except (StoreError, ModelPackageError) as error:
                raise GatewayError(f"the metadata of model {name!r} ({uri}) cannot be read: {error}") from None
            self._metadata[uri] = metadata
            if isinstance(metadata.get("inputSchema"), dict):
                self._validators[uri] = compile_schema(metadata["inputSchema"], name)
        circuit = bytes(entry.circuitId)
        stream = bytes(entry.iotaStreamId)
        return ExposedModel(
            name=name,
            key=model_key(name),
            owner=entry.owner,
            price=int(entry.price),
            quorum=int(entry.quorum),
            circuit_id=None if circuit == ZERO32 else circuit,
            tolerant=bool(entry.tolerant),
            active=bool(entry.active),
            metadata_uri=uri,
            metadata=metadata,
            validator=self._validators.get(uri),
            stream=None if stream == ZERO32 else stream,
            weights_commitment=bytes(entry.weightsCommitment),
        )

    async def models(self) -> list[ExposedModel]:
        """Every exposed model the chain has registered (one not registered is left out)."""
        found = []
        for name in self.settings.models:
            try:
                found.append(await self.model(name))
            except ModelNotFoundError:
                logger.warning("model %r is exposed but not registered on this chain", name)
        return found

    async def chain_id(self) -> int:
        if self._chain_id is None:
            from ape import chain

            self._chain_id = chain_id = await self.chain(lambda: chain.chain_id)
            return chain_id
        return self._chain_id

    # ---- requesting ----

    def check_input(self, model: ExposedModel, document: Any) -> dict:
        """The input document, if the model takes it (its size, and its metadata's inputSchema);
        BadRequestError otherwise. Nothing is published before it passes."""
        if not isinstance(document, dict):
            raise BadRequestError(f"the input of model {model.name!r} must be a JSON object")
        try:
            decode_payload(document, self.settings.max_input_bytes)
            if model.validator is not None:
                validate_input(model.validator, document, model.name)
        except InvalidInputError as error:
            raise BadRequestError(str(error)) from None
        return document

    async def infer(self, model: ExposedModel, document: dict, key: ApiKey, ledger: KeyLedger) -> Settlement:
        """Requests an inference of ``model`` on ``document`` and returns it once answered and
        checked: paid from the gateway's balance and charged to ``key``, or over the model's
        channel for a feeless model."""
        self.check_input(model, document)
        if model.feeless:  # no capacity on chain to check: ask_channel looks for a serving node
            return await self.ask_channel(model, document)
        ledger.reserve(key, model.price)  # refused (402) before anything is read, published or sent
        charged: bool | None = False  # None: the request was made and may still be charged
        try:
            submitted = await self.submit(model, document)
            charged = None
            result = await self.closed(submitted.request_id, model)
            charged = False  # refunded, or settled with an output that does not check out: not the user's cost
            settled = await self.settlement(model, result, submitted)
            charged = True
            return settled
        finally:
            if charged is not None:
                ledger.settle(key, model.price, charged)

    async def submit(self, model: ExposedModel, document: dict) -> Submitted:
        """Checks that enough nodes have room for the model, publishes the input (which the caller
        has checked: ``check_input``) and requests an inference of ``model`` on it, paid from the
        account's balance."""
        await self.check_capacity(model)
        try:
            input_uri, commitment = await publish_input(self.store, document, zk=model.zk)
        except StoreError as error:
            raise GatewayError(f"the input cannot be published to the store: {error}") from None
        request_id = await self._request(model, input_uri, commitment)
        return Submitted(request_id, input_uri, commitment)

    async def settlement(self, model: ExposedModel, result: InferenceResult, submitted: Submitted) -> Settlement:
        """The closed request's output, fetched from the store and checked against the chain
        (``fetch_output``), with its receipt; RefundedError for a refunded request,
        UnverifiedOutputError for an output that does not check out (each with the receipt)."""
        receipt = await self.receipt(
            result, model, input_uri=submitted.input_uri, input_commitment=submitted.input_commitment
        )
        if result.status is RequestStatus.Refunded:
            raise RefundedError(
                f"request {result.request_id} was refunded on chain: {result.refund_reason}", receipt=receipt
            )
        try:
            output = await fetch_output(self.store, result, framework=model.framework)
        except (OutputMismatchError, StoreError) as error:
            raise UnverifiedOutputError(str(error), receipt=receipt) from None
        return Settlement(model, result.request_id, output, receipt)

    async def check_capacity(self, model: ExposedModel) -> None:
        """NoCapacityError (503) unless enough nodes serving ``model`` have room now: a request
        made while they are all busy would wait on chain for one, and the user with it."""
        room, serving = await self.chain(self.marketplace.nodes_with_room, model.name, model.quorum)
        if room < model.quorum:
            raise self.no_capacity(model, room, serving)

    def no_capacity(self, model: ExposedModel, room: int, serving: int | None = None) -> NoCapacityError:
        serving_now = "no node serves it" if serving == 0 else f"{room} of the nodes serving it have room now"
        return NoCapacityError(
            f"model {model.name!r} needs {model.quorum} node(s) with room and {serving_now}: "
            f"nothing was sent; try again in {self.settings.retry_after} s",
            headers=self.retry_headers(),
        )

    async def _request(self, model: ExposedModel, input_uri: str, commitment: bytes) -> int:
        try:
            # The client reads and waits for its transaction's receipt with blocking calls: on a
            # worker thread (with a loop of its own), the gateway's loop serves the others meanwhile.
            request = self.marketplace.request_inference(
                model.name, commitment, input_uri, max_price=model.price, from_balance=True
            )
            return await asyncio.to_thread(asyncio.run, request)
        except TransactionRefusedError as error:
            if error.error == NO_ELIGIBLE_NODE:
                raise self.no_capacity(model, 0) from None
            raise GatewayError(f"the request for model {model.name!r} was refused on chain: {error}") from None
        except MarketplaceError as error:
            message = str(error)
            if "serve it now" in message:
                raise NoCapacityError(message, headers=self.retry_headers()) from None
            if "deposit first" in message:
                raise NoCapacityError(
                    f"the gateway's balance on chain cannot pay for this request ({message})",
                    code="gateway_balance_low",
                    headers=self.retry_headers(),
                ) from None
            raise GatewayError(message) from None
        except JoyNetError as error:  # a transaction left pending or reverted by another's: nothing settled
            raise GatewayError(f"the request for model {model.name!r} did not go through: {error}") from None

    async def closed(
        self, request_id: int, model: ExposedModel, on_assigned: Callable[[list[str]], None] | None = None
    ) -> InferenceResult:
        """The request's outcome once it is settled or refunded (polled on a worker thread).
        ``on_assigned``: called once with the request's nodes when they are assigned while it is
        still open (a single-node request is usually assigned and settled by one transaction)."""
        deadline = time.monotonic() + self.settings.settle_timeout
        while True:
            status = await self.chain(self.marketplace.status, request_id, bounded=False)
            if status is not RequestStatus.Open:
                return await self.chain(self.marketplace.outcome, request_id, bounded=False)
            if on_assigned is not None:
                open_now = await self.chain(self.marketplace.outcome, request_id, bounded=False)
                if open_now.nodes:
                    on_assigned(open_now.nodes)
                    on_assigned = None
            if time.monotonic() > deadline:
                open_result = InferenceResult(request_id, status)
                raise SettlementTimeoutError(
                    f"request {request_id} is still open after {self.settings.settle_timeout:.0f} s: "
                    f"follow it at /v1/requests/{request_id}",
                    receipt=await self.receipt(open_result, model),
                )
            await asyncio.sleep(self.settings.poll_seconds)

    # ---- feeless ----

    def channel(self) -> Any:
        """The gateway's participant on the channels (its key: ``channel_seed``, else a new one)."""
        if self._channel is None:
            from mnemonic import Mnemonic

            from joynet.feeless.handler import IOTAInferenceHandler

            seed = self.settings.channel_seed or Mnemonic("english").generate(128)
            self._channel = IOTAInferenceHandler(wallet_seed=seed)
        return self._channel

    async def ask_channel(self, model: ExposedModel, document: dict) -> Settlement:
        """Asks a feeless model over its owner's channel and returns the answer once it checks
        out: signed by the key the chain binds to the node it names, with an output that commits
        to what it says (and, for a ZK model, a Groth16 proof snarkjs accepts here)."""
        channel_id = model.channel_id
        assert channel_id is not None
        package = ModelPackage(cid=model.metadata_uri.removeprefix("ipfs://"), metadata=model.metadata, files={})
        if package.weights_commitment.lower() != "0x" + model.weights_commitment.hex():
            raise GatewayError(f"model {model.name!r}: its metadata's weightsCommitment differs from the chain's")
        try:
            await self.chain(
                check_registered_circuit, package, model.circuit_id or ZERO32, self.marketplace.circuit_registered
            )
            verification_key = await circuit_verification_key(package, self.store)
        except ProofRejectedError as error:
            raise GatewayError(f"model {model.name!r}: its answers cannot be checked here: {error}") from None
        handler = self.channel()
        try:
            await handler.ensure_subscribed(channel_id)
        except ChannelError as error:  # e.g. a stream no channel announced on this transport
            raise NoCapacityError(
                f"no node serves model {model.name!r}: its channel {channel_id} cannot be read here ({error}); "
                f"nothing was sent; try again in {self.settings.retry_after} s",
                headers=self.retry_headers(),
            ) from None
        try:
            bindings = await self.chain(Bindings.registered, self.marketplace, model.name, bounded=False)
            if bindings is not None:
                await self._serving_node(model, channel_id, handler, bindings)
            answer = await request_over_channel(
                handler,
                package,
                channel_id,
                model.name,
                document,
                timeout=self.settings.settle_timeout,
                verify_pairing=lambda public_signals, proof: self._verify_pairing(
                    public_signals, proof, verification_key
                ),
                bindings=bindings,
            )
        except TimeoutError:
            raise SettlementTimeoutError(
                f"no node answered model {model.name!r} on its channel {channel_id} within "
                f"{self.settings.settle_timeout:.0f} s; nothing was charged",
                headers=self.retry_headers(),
            ) from None
        except InvalidInputError as error:
            raise BadRequestError(f"the node declined the input: {error}") from None
        except ProofRejectedError as error:
            raise UnverifiedOutputError(str(error)) from None
        except AccessDeniedError as error:
            raise GatewayError(f"the channel of model {model.name!r} refused the gateway: {error}") from None
        except InferenceError as error:
            raise DeclinedError(str(error)) from None
        return Settlement(model, answer.request_id, answer.output, await self.channel_receipt(model, answer))

    async def _serving_node(self, model: ExposedModel, channel_id: str, handler: Any, bindings: Bindings) -> None:
        """NoCapacityError (503) unless a node the chain binds to the model vouched on its channel
        within ``FEELESS_SERVING_WAIT`` s: a request is assigned among the nodes serving when it
        arrives, so one sent while none serves would wait for nobody."""
        try:
            await wait_for_serving_node(handler, channel_id, bindings, time.monotonic() + FEELESS_SERVING_WAIT)
        except TimeoutError:
            raise NoCapacityError(
                f"no node serves model {model.name!r} on its channel {channel_id} now: nothing was sent; "
                f"try again in {self.settings.retry_after} s",
                headers=self.retry_headers(),
            ) from None

    async def _verify_pairing(self, public_signals: list, proof: dict, verification_key: dict | None = None) -> bool:
        """snarkjs's Groth16 check of a feeless answer's proof (with the model package's key, or
        the built-in digits circuit's when None), on a worker thread."""
        async with self._proving:
            if self._prover is None:
                from joynet.zk import groth16_verifier

                self._prover = await asyncio.to_thread(groth16_verifier)
            return await asyncio.to_thread(self._prover.verify, public_signals, proof, verification_key)

    async def channel_receipt(self, model: ExposedModel, answer: ChannelAnswer) -> dict:
        """How a feeless answer was verified: the channel and the request's message id on it, the
        node the answer names and the key that signed it (the chain binds one to the other: the
        feeless bridge's ``channelKeyOf``), the output's commitment, and the proof when checked.
        It is settled on chain later, in a checkpoint of the channel by the bridgers."""
        return {
            "request_id": answer.request_id,
            "status": "Answered",
            "mode": "feeless",
            "chain_id": await self.chain_id(),
            "marketplace": self.marketplace.address,
            "model": model.name,
            "policy": model.policy(),
            "price_wei": "0",
            "channel_id": model.channel_id,
            "transaction_hash": None,
            "block_number": None,
            "nodes": [answer.node] if answer.node else [],
            "responder_key": answer.responder,
            "output_commitment": "0x" + answer.output_commitment.hex(),
            "proof_verified": answer.proof_verified,
        }

    # ---- receipts ----

    async def receipt(
        self,
        result: InferenceResult,
        model: ExposedModel | None,
        input_uri: str | None = None,
        input_commitment: bytes | None = None,
    ) -> dict:
        """How the request was verified, for anyone to check on chain: its id and status, the
        transaction and block that closed it, the model's policy, the nodes, the output's
        commitment and URI (or the refund's reason)."""
        return {
            "request_id": result.request_id,
            "status": result.status.name,
            "mode": "paid",
            "chain_id": await self.chain_id(),
            "marketplace": self.marketplace.address,
            "model": model.name if model else None,
            "policy": model.policy() if model else None,
            "price_wei": str(model.price) if model else None,
            "transaction_hash": result.transaction_hash,
            "block_number": result.block_number,
            "nodes": list(result.nodes),
            "input_uri": input_uri,
            "input_commitment": "0x" + input_commitment.hex() if input_commitment else None,
            "output_commitment": "0x" + result.output_commitment.hex() if result.output_commitment else None,
            "output_uri": result.output_uri,
            "refund_reason": result.refund_reason,
        }

    async def request_status(self, request_id: int) -> dict:
        """Any request's status and receipt, as the chain records it now."""
        try:
            result = await self.chain(self.marketplace.outcome, request_id, bounded=False)
            request = await self.chain(self.marketplace.get_request, request_id, bounded=False)
        except MarketplaceError:
            raise RequestNotFoundError(f"there is no request {request_id} on this chain") from None
        name = self._names.get(request.modelId)
        model = await self.model(name) if name is not None else None
        receipt = await self.receipt(result, model)
        if model is None:
            receipt["model_key"] = "0x" + request.modelId.hex()
        receipt["input_commitment"] = "0x" + request.inputCommitment.hex()
        return receipt
