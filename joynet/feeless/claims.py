"""What a channel key vouches for on a model's stream, and who may answer for a feeless model.

A claim is a public packet whose signing key vouches for an account on one deployment (chain id
and IOTAValidator), so it cannot be replayed on another chain or bridge::

    {"kind": "stream-link" | "node-key", "modelId": "0x<bytes32>", "account": "0x<address>",
     "chainId": <int>, "validator": "0x<address>"}

``stream-link``: the stream's *author* consents to carry ``modelId`` of the model owner
``account``. A stream id is only a name (anyone can register a feeless model naming someone else's
stream), so the bridgers link a stream only to the model its author consented to; a stream belongs
to one model: for a given deployment the author's *first* consent counts, later ones are ignored.

``node-key``: the signing key is the channel key of the node ``account`` for ``modelId``. The
chain binds keys to nodes (``IOTAValidator.bindChannelKey``) but cannot check an Ed25519 key's
possession; this packet, which only the key's holder can sign, does. An answer counts as served by
the node it names only when the chain binds that node to the answer's key *and* the key vouched
for that node on the stream (:meth:`Bindings.credits`): bridgers credit nothing else, requesters
accept nothing else, and a node that binds another's key gains nothing and blocks nobody.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from eth_utils import is_address, to_checksum_address

from joynet.channels import ChannelReader, Message, MessageType
from joynet.channels.errors import ChannelError
from joynet.channels.transport import ChannelTransport

STREAM_LINK, NODE_KEY = "stream-link", "node-key"


@dataclass(frozen=True)
class ChannelClaim:
    """What the key that signs the packet vouches for (see the module docstring)."""

    kind: str
    model_id: bytes
    account: str
    chain_id: int
    validator: str

    def to_public(self) -> bytes:
        """The claim packet's public part."""
        body = {
            "kind": self.kind,
            "modelId": "0x" + self.model_id.hex(),
            "account": to_checksum_address(self.account),
            "chainId": self.chain_id,
            "validator": to_checksum_address(self.validator),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_message(cls, message: Message) -> ChannelClaim | None:
        """The claim a packet carries, or None if it carries none (or a malformed one)."""
        if message.type is not MessageType.PACKET or not message.public:
            return None
        try:
            body = json.loads(message.public)
            if not isinstance(body, dict) or body.get("kind") not in (STREAM_LINK, NODE_KEY):
                return None
            model_id = bytes.fromhex(str(body["modelId"]).removeprefix("0x"))
            account, validator, chain_id = body["account"], body["validator"], body["chainId"]
        except (ValueError, KeyError):
            return None
        valid = (
            len(model_id) == 32
            and isinstance(chain_id, int)
            and not isinstance(chain_id, bool)
            and isinstance(account, str)
            and isinstance(validator, str)
            and is_address(account)
            and is_address(validator)
        )
        if not valid:
            return None
        return cls(body["kind"], model_id, to_checksum_address(account), chain_id, to_checksum_address(validator))


def claims_in(messages: Iterable[Message]) -> list[tuple[bytes, ChannelClaim]]:
    """(signing key, claim) of every claim among ``messages``, in order."""
    found = []
    for message in messages:
        claim = ChannelClaim.from_message(message)
        if claim is not None:
            found.append((message.sender, claim))
    return found


class ConsentWatch:
    """Follows one stream for its author's binding ``stream-link`` consent on one deployment (its
    first), reading on each call only the messages it has not read yet, and none once it has it.
    Reading stops at a message that fails verification: what came before it stands, and the next
    call starts again from it."""

    def __init__(self, transport: ChannelTransport, stream_id: bytes, chain_id: int, validator: str):
        self.reader = ChannelReader(transport, stream_id)
        self.chain_id, self.validator = chain_id, to_checksum_address(validator)
        self.consent: ChannelClaim | None = None

    def read(self) -> ChannelClaim | None:
        """The consent, or None while the stream holds none."""
        if self.consent is not None:
            return self.consent
        wanted = (STREAM_LINK, self.chain_id, self.validator)
        try:
            for message in self.reader.verified_messages():  # every signature, link and order verified
                claim = ChannelClaim.from_message(message) if message.sender == self.reader.state.author else None
                if claim is not None and (claim.kind, claim.chain_id, claim.validator) == wanted:
                    self.consent = claim
                    break
        except ChannelError:
            pass
        return self.consent


@dataclass(frozen=True)
class Bindings:
    """Who may answer for the feeless model ``model_id`` on one deployment: ``key_of_node(node)``
    is the channel key the chain binds to ``node`` for the model (``IOTAValidator.channelKeyOf``),
    or None."""

    model_id: bytes
    chain_id: int
    validator: str
    key_of_node: Callable[[str], bytes | None]

    def vouched(self, claims: Iterable[tuple[bytes, ChannelClaim]]) -> set[tuple[bytes, str]]:
        """(key, node) of the ``node-key`` claims for this model and deployment among ``claims``
        ((signing key, claim) pairs: :func:`claims_in`)."""
        validator = to_checksum_address(self.validator)
        return {
            (key, claim.account)
            for key, claim in claims
            if (claim.kind, claim.model_id, claim.chain_id, claim.validator)
            == (NODE_KEY, self.model_id, self.chain_id, validator)
        }

    @classmethod
    def registered(cls, marketplace, model_id: str | bytes) -> Bindings | None:
        """The chain's bindings of a model registered through ``marketplace`` (a
        ``joynet.chain.marketplace.ModelMarketplace``), read from its feeless bridge; None when the
        deployment has no bridge."""
        from ape import chain

        from joynet.chain.marketplace import model_key

        bridge = marketplace.bridge()
        if bridge is None:
            return None
        return cls(model_key(model_id), chain.chain_id, bridge.address, partial(marketplace.channel_key_of, model_id))

    def credits(self, key: bytes, node: str, vouched: set[tuple[bytes, str]]) -> bool:
        """Whether an answer signed by ``key`` counts as served by ``node``: the key vouched for the
        node on the stream, and the chain binds the node to the key."""
        node = to_checksum_address(node)
        return (key, node) in vouched and self.key_of_node(node) == key
