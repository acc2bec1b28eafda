"""``IOTAInferenceHandler``: feeless requests and responses over a JoyNet channel.

The original design's API over our Streams-style channel. By default a model's channel is its
owner's open one, which the network's nodes serve (below). On a private channel
(``create_model_channel(name, private=True)``) a model's node is the channel's author: a requester
subscribes, is admitted by the author's next keyload, then posts requests; the node reads them
and posts responses, as masked payloads that only admitted participants can read.

The handler only carries messages: running the model is the edge node's job.
Payloads are JSON: ``{"kind": "request", "model_id", "input"}`` and
``{"kind": "response", "request_id", "node", "output", "proof", "error", "error_kind"}``: a declined
request's answer has no output and proof, the human message in ``error`` and why, as data, in
``error_kind`` (a ``joynet.feeless.errors.ErrorKind`` value). On an author-served channel a
requester accepts a response only from the channel's author, so another admitted requester cannot
answer in the node's place. On an *open* channel (the model owner's, which the network's nodes
serve: ``joynet.feeless.assignment``) every subscriber may post, so every party reads every request
and keeps every response, and the caller says which answers count (``wait_response(accept=)``).

A subscriber the author's admission policy refuses gets a public, author-signed
``{"kind": "refusal", "subscriber", "credential", "reason"}`` (``credential``: the SHA-256 of the
credential it presented), so its ``send_request`` fails at once with the reason
(``AdmissionRefusedError``) instead of waiting out its timeout. The refusal names the credential
it judged: a later subscription with another credential is judged afresh.

On a private channel the masked part carries the whole payload and the public part only what the
bridgers count usage with: ``{"kind": "request"}`` and ``{"kind": "response", "request_id",
"node", "served"}`` (the node's EVM address, which ProofOfUse credits, and whether it served or
declined). Inputs, outputs and proofs stay masked, so the bridgers need no key of the channel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joynet.channels import (
    Channel,
    ChannelIdentity,
    ChannelReader,
    MaskedPayloadAccessError,
    Message,
    MessageType,
    transport_for_node_url,
)
from joynet.channels.errors import AdmissionRefusedError, NotAuthorizedError
from joynet.channels.transport import ChannelTransport
from joynet.feeless.claims import STREAM_LINK, ChannelClaim

logger = logging.getLogger("joynet.feeless")

# (subscriber's Ed25519 key, its credential) -> admit? A policy refuses by returning False or, to
# tell the subscriber why, by raising AdmissionRefusedError(reason).
AdmissionPolicy = Callable[[bytes, bytes], bool]
REQUEST, RESPONSE, REFUSAL = "request", "response", "refusal"
REFUSED_WITHOUT_REASON = "refused by the channel's admission policy"


def admit_everyone(subscriber: bytes, credential: bytes) -> bool:
    return True


def credential_digest(credential: bytes) -> str:
    """How a refusal names the credential it judged, without repeating it."""
    return "0x" + hashlib.sha256(credential).hexdigest()


@dataclass(frozen=True)
class IOTAInferenceRequest:
    request_id: str
    channel_id: str
    model_id: str
    input: Any
    requester: str  # hex Ed25519 key
    sequence: int


@dataclass(frozen=True)
class IOTAInferenceResponse:
    response_id: str
    request_id: str
    channel_id: str
    output: Any
    proof: Any
    responder: str  # hex Ed25519 key
    sequence: int
    node: str | None = None  # the EVM address the node is credited under
    error: str | None = None  # why the node declined (then output and proof are None), for people
    error_kind: str | None = None  # the kind of that refusal (an ErrorKind value, or a newer one)


@dataclass
class _Session:
    channel: Channel
    pending_requests: OrderedDict[str, IOTAInferenceRequest] = field(default_factory=OrderedDict)
    responses: dict[str, list[IOTAInferenceResponse]] = field(default_factory=dict)  # by request id, in order
    observers: list[Callable[[Message], None]] = field(default_factory=list)
    # (subscriber, credential) pairs the admission policy has judged: a subscriber refused once is
    # judged again when it subscribes with another credential
    considered: set[tuple[bytes, bytes]] = field(default_factory=set)
    presented: bytes | None = None  # the credential of our own latest subscription
    refusal: str | None = None  # why the author refused that subscription
    claims: list[tuple[bytes, ChannelClaim]] = field(default_factory=list)  # (signing key, claim) seen


def _json_bytes(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _channel_bytes(channel_id: str | bytes) -> bytes:
    return channel_id if isinstance(channel_id, bytes) else bytes.fromhex(channel_id.removeprefix("0x"))


class IOTAInferenceHandler:
    """One participant (requester, node or both) on any number of model channels.

    ``wallet_seed`` is the IOTA wallet's BIP-39 mnemonic; the channel key is the wallet's Ed25519
    key at ``m/44'/4218'/account'/0'/address_index'``. ``node_url``: an IOTA node
    (``http(s)://...``), or the embedded ledger as ``sqlite:///path/to/channels.sqlite3`` (the
    local stand-in for a node: ``joynet.channels.transport_for_node_url``). Without ``node_url``
    (and without an explicit ``transport``) messages go over IPFS pubsub through the Kubo RPC API
    ``$JOYNET_CHANNEL_API`` when it is set (parties on other machines: ``joynet.channels.pubsub``),
    else to the embedded SQLite ledger at ``$JOYNET_CHANNEL_DB`` (default
    ``~/.local/share/joynet/channels.sqlite3``), which every process on the machine shares.
    """

    def __init__(
        self,
        node_url: str | None = None,
        wallet_seed: str | None = None,
        transport: ChannelTransport | None = None,
        account: int = 0,
        address_index: int = 0,
        admission: AdmissionPolicy = admit_everyone,
    ):
        if not wallet_seed:
            raise ValueError("wallet_seed (the IOTA wallet's BIP-39 mnemonic) is required")
        self.identity = ChannelIdentity.from_mnemonic(wallet_seed, account, address_index)
        self._owns_transport = transport is None
        self.transport = transport or transport_for_node_url(node_url)
        self.admission = admission
        self._sessions: dict[bytes, _Session] = {}

    def close(self) -> None:
        """Closes the transport this handler opened itself (a pubsub transport's connections and
        temporary replica); a transport passed in is its owner's to close."""
        close = getattr(self.transport, "close", None)
        if self._owns_transport and close is not None:
            close()

    @property
    def public_key(self) -> str:
        return "0x" + self.identity.public_key.hex()

    # ---- node / model owner side ----

    async def create_model_channel(self, model_name: str, private: bool = False, open: bool | None = None) -> str:
        """Announce (or reopen) this identity's channel for ``model_name``; returns its id (bytes32 hex),
        the stream id a feeless model is registered with. By default the model owner's channel:
        public and open (``open`` defaults to ``not private``), any subscriber may post on it and
        the network's staked nodes serve it. ``private=True``: a channel only its author serves,
        whose requests and answers are masked to the subscribers it admits."""
        if open is None:
            open = not private
        channel = Channel.create(self.transport, self.identity, model_name, private, open)
        self._sessions.setdefault(channel.channel_id, _Session(channel))
        return "0x" + channel.channel_id.hex()

    async def post_claim(self, channel_id: str | bytes, claim: ChannelClaim) -> str:
        """A public packet in which this identity's key vouches for ``claim``
        (``joynet.feeless.claims``): the author's consent to link the stream to a model, or a node's
        proof that this is its channel key. Returns the packet's message id."""
        session = self._session(channel_id)
        self._pump(session)
        if claim.kind == STREAM_LINK and not session.channel.is_author:
            raise NotAuthorizedError("only the channel's author can consent to link its stream to a model")
        return session.channel.publish(public=claim.to_public()).id

    def watch(self, channel_id: str | bytes, observer: Callable[[Message], None]) -> None:
        """Calls ``observer`` with every verified message of the channel, in order: those already
        read now, the others as they arrive (an ``AssignmentBook.observe``)."""
        session = self._session(channel_id)
        seen = session.channel.state.last_sequence
        for message in ChannelReader(self.transport, session.channel.channel_id).sync()[: seen + 1]:  # verified
            observer(message)
        session.observers.append(observer)

    def claims(self, channel_id: str | bytes) -> list[tuple[bytes, ChannelClaim]]:
        """(signing key, claim) of every claim seen on the channel so far."""
        session = self._session(channel_id)
        self._pump(session)
        return list(session.claims)

    async def admit_pending(self, channel_id: str | bytes) -> list[str]:
        """Author only: one keyload admitting every new subscriber the admission policy accepts."""
        session = self._session(channel_id)
        self._pump(session)
        state = session.channel.state
        newcomers = [
            (key, subscription.credential)
            for key, subscription in state.subscribers.items()
            if key not in state.writers and (key, subscription.credential) not in session.considered
        ]
        session.considered.update(newcomers)
        accepted = []
        for key, credential in newcomers:
            reason = self._refusal_reason(key, credential)
            if reason is None:
                accepted.append(key)
            else:
                refusal = {
                    "kind": REFUSAL,
                    "subscriber": "0x" + key.hex(),
                    "credential": credential_digest(credential),
                    "reason": reason,
                }
                session.channel.publish(public=_json_bytes(refusal))
        if accepted:
            session.channel.admit(set(state.writers) | set(accepted))
        return ["0x" + key.hex() for key in accepted]

    def _refusal_reason(self, key: bytes, credential: bytes) -> str | None:
        """None when the admission policy admits ``key``, else why not. A policy that fails on a
        subscription (whatever a subscriber sent) refuses that one subscriber, with the failure
        as the reason: the other subscribers of the batch are still judged, and the node serves on."""
        try:
            return None if self.admission(key, credential) else REFUSED_WITHOUT_REASON
        except AdmissionRefusedError as refused:
            return str(refused) or REFUSED_WITHOUT_REASON
        except Exception as error:  # noqa: BLE001 - a policy's bug must not stop the serving loop
            logger.warning("admission policy failed on subscriber 0x%s: %r", key.hex(), error)
            return f"{REFUSED_WITHOUT_REASON}: it could not judge this subscription ({type(error).__name__})"

    async def next_request(self, channel_id: str | bytes, timeout: float | None = None) -> IOTAInferenceRequest:
        """The oldest unanswered request; admits pending subscribers while it waits."""
        session = self._session(channel_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump(session)
            if session.channel.is_author:
                await self.admit_pending(channel_id)
            if session.pending_requests:
                return session.pending_requests.popitem(last=False)[1]
            await self._wait(session, deadline, "a request")

    async def send_response(
        self,
        channel_id: str | bytes,
        request_id: str,
        output: Any,
        proof: Any = None,
        node: str | None = None,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> str:
        """Answer ``request_id``: an output (and proof), or ``error`` saying why it was declined and
        ``error_kind`` (an ``ErrorKind``) the kind of refusal the requester raises by. ``node`` is
        the EVM address credited for the inference (public, for the bridgers)."""
        accounting = {"kind": RESPONSE, "request_id": request_id, "node": node, "served": error is None}
        body = {**accounting, "output": output, "proof": proof, "error": error, "error_kind": error_kind}
        return self._post(self._session(channel_id), body, accounting).id

    def credential_of(self, channel_id: str | bytes, subscriber: str | bytes) -> bytes:
        """The credential ``subscriber`` (hex or raw Ed25519 key) presented when it subscribed."""
        key = _channel_bytes(subscriber)
        subscription = self._session(channel_id).channel.state.subscribers.get(key)
        return subscription.credential if subscription else b""

    # ---- requester side ----

    async def subscribe(self, channel_id: str | bytes, credential: bytes = b"") -> str:
        """Ask the channel's author for access (``credential`` goes to its admission policy)."""
        session = self._session(channel_id)
        message = session.channel.subscribe(credential)
        session.presented, session.refusal = credential, None
        return message.id

    async def ensure_subscribed(self, channel_id: str | bytes, credential: bytes = b"") -> None:
        """Subscribes unless this key's latest subscription to the channel carried ``credential``
        (a restarted node does not subscribe again)."""
        session = self._session(channel_id)
        self._pump(session)
        subscription = session.channel.state.subscribers.get(self.identity.public_key)
        if session.channel.is_author or (subscription is not None and subscription.credential == credential):
            return
        await self.subscribe(channel_id, credential)

    async def send_request(self, channel_id: str | bytes, model_id: str, input_data: Any, timeout: float = 30.0) -> str:
        """Post a request once the author has admitted us; returns the request id (message hash).
        ``AdmissionRefusedError`` (with the author's reason) if the author refused us instead."""
        session = self._session(channel_id)
        deadline = time.monotonic() + timeout
        self._pump(session)
        while not session.channel.admitted:
            if session.refusal is not None:
                raise AdmissionRefusedError(
                    f"the author of channel 0x{session.channel.channel_id.hex()} refused us: {session.refusal}"
                )
            await self._wait(session, deadline, "admission by the channel's author")
            self._pump(session)
        body = {"kind": REQUEST, "model_id": model_id, "input": input_data}
        return self._post(session, body, {"kind": REQUEST}).id

    async def wait_response(
        self,
        channel_id: str | bytes,
        request_id: str,
        timeout: float = 30.0,
        accept: Callable[[IOTAInferenceResponse], bool] | None = None,
    ) -> IOTAInferenceResponse:
        """The first response to ``request_id`` that ``accept`` takes (default: the first)."""
        session = self._session(channel_id)
        deadline = time.monotonic() + timeout
        looked_at = 0
        while True:
            self._pump(session)
            responses = session.responses.get(request_id, [])
            for response in responses[looked_at:]:
                if accept is None or accept(response):
                    return response
            looked_at = len(responses)
            await self._wait(session, deadline, f"the response to {request_id}")

    def poll(self, channel_id: str | bytes) -> None:
        """Reads the channel's new messages now (queues requests, files responses, tells watchers)."""
        self._pump(self._session(channel_id))

    def is_author(self, channel_id: str | bytes) -> bool:
        """Whether this identity announced the channel (its author needs no subscription)."""
        session = self._session(channel_id)
        self._pump(session)
        return session.channel.is_author

    def is_open(self, channel_id: str | bytes) -> bool:
        """Whether the channel is open (any subscriber posts; the network's nodes serve it)."""
        session = self._session(channel_id)
        self._pump(session)
        return session.channel.state.announcement is not None and session.channel.state.open

    # ---- plumbing ----

    def _session(self, channel_id: str | bytes) -> _Session:
        key = _channel_bytes(channel_id)
        if key not in self._sessions:
            self._sessions[key] = _Session(Channel(self.transport, self.identity, key))
        return self._sessions[key]

    def _post(self, session: _Session, body: dict, accounting: dict) -> Message:
        """``body`` masked on a private channel (with ``accounting`` public), else in the clear."""
        if session.channel.state.private:
            return session.channel.publish(public=_json_bytes(accounting), masked=_json_bytes(body))
        return session.channel.publish(public=_json_bytes(body))

    async def _wait(self, session: _Session, deadline: float | None, what: str) -> None:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"timed out waiting for {what} on channel 0x{session.channel.channel_id.hex()}")
        await self.transport.wait_for(session.channel.channel_id, session.channel.state.last_sequence, remaining)

    def _pump(self, session: _Session) -> None:
        """Take in every newly verified message: queue requests, file responses, keep claims."""
        channel = session.channel
        for message in channel.receive():
            for observe in session.observers:
                observe(message)
            claim = ChannelClaim.from_message(message)
            if claim is not None:
                session.claims.append((message.sender, claim))
                continue
            body = self._packet_body(channel, message)
            if body is None:
                continue
            if body.get("kind") == REQUEST and (channel.is_author or channel.state.open):
                request = IOTAInferenceRequest(
                    message.id,
                    "0x" + channel.channel_id.hex(),
                    str(body.get("model_id")),
                    body.get("input"),
                    "0x" + message.sender.hex(),
                    message.sequence,
                )
                session.pending_requests[request.request_id] = request
            elif body.get("kind") == RESPONSE and (message.sender == channel.state.author or channel.state.open):
                response = IOTAInferenceResponse(
                    message.id,
                    str(body.get("request_id")),
                    "0x" + channel.channel_id.hex(),
                    body.get("output"),
                    body.get("proof"),
                    "0x" + message.sender.hex(),
                    message.sequence,
                    body.get("node"),
                    body.get("error"),
                    _text_or_none(body.get("error_kind")),
                )
                session.responses.setdefault(response.request_id, []).append(response)
                if not channel.state.open:
                    # A node that restarts replays its channel: requests it already answered are done.
                    # (On an open channel anyone may post a response: the assignment book judges them.)
                    session.pending_requests.pop(response.request_id, None)
            elif (
                body.get("kind") == REFUSAL
                and message.sender == channel.state.author
                and self._refuses_us(session, body)
            ):
                session.refusal = str(body.get("reason") or REFUSED_WITHOUT_REASON)

    def _refuses_us(self, session: _Session, refusal: dict) -> bool:
        """Whether ``refusal`` judged our own latest subscription (our key and that credential)."""
        return (
            session.presented is not None
            and refusal.get("subscriber") == "0x" + self.identity.public_key.hex()
            and refusal.get("credential") == credential_digest(session.presented)
        )

    def _packet_body(self, channel: Channel, message: Message) -> dict | None:
        """The JSON body of a packet we may read; None for everything else."""
        if message.type is not MessageType.PACKET:
            return None
        try:
            raw = channel.open_masked(message) if message.masked else message.public
            body = json.loads(raw)
        except (MaskedPayloadAccessError, ValueError):
            return None  # sealed before we were admitted, or not a JoyNet inference payload
        return body if isinstance(body, dict) else None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def circuit_request_id(request_id: str) -> int:
    """The request id a channel answer's proof binds: the first 8 bytes of the request message's
    hash (a channel request id is a 32-byte hash; the circuit binds a request id below 2**64)."""
    return int.from_bytes(bytes.fromhex(request_id.removeprefix("0x"))[:8], "big")


def proof_document(proof) -> dict | None:
    """A ``joynet.zk.ZKProof`` as it travels in a channel answer (snarkjs JSON + public signals)."""
    if proof is None:
        return None
    return {"proof": proof.proof, "publicSignals": [str(signal) for signal in proof.public_signals]}
