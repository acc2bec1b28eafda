"""The stream author's consent to link its stream to a model, and how the bridgers read it.

A model's stream id is only a name: anyone can register a feeless model naming someone else's
stream. So IOTAValidator links a stream to a model only when the committee attests (EIP-712
``StreamLink``) that the stream's *author* consented on the stream itself, with a public packet
signed by the channel's author key::

    {"kind": "stream-link", "modelId": "0x<bytes32>", "modelOwner": "0x<address>",
     "chainId": <int>, "validator": "0x<address>"}

The chain id and the validator's address say which deployment the consent is for, so a consent
cannot be replayed on another chain or another bridge. A stream belongs to one model: for a given
chain and validator, the author's *first* consent is the one that counts, and a later consent
naming another model is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address

from joynet.channels import ChannelReader, Message, MessageType
from joynet.channels.errors import ChannelError
from joynet.channels.transport import ChannelTransport

STREAM_LINK = "stream-link"


@dataclass(frozen=True)
class StreamLinkConsent:
    """What the stream's author consented to: carrying ``model_id`` of ``model_owner``."""

    model_id: bytes
    model_owner: str
    chain_id: int
    validator: str

    def to_public(self) -> bytes:
        """The consent packet's public part."""
        body = {
            "kind": STREAM_LINK,
            "modelId": "0x" + self.model_id.hex(),
            "modelOwner": to_checksum_address(self.model_owner),
            "chainId": self.chain_id,
            "validator": to_checksum_address(self.validator),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_message(cls, message: Message) -> StreamLinkConsent | None:
        """The consent a packet carries, or None if it carries none (or a malformed one)."""
        if message.type is not MessageType.PACKET or not message.public:
            return None
        try:
            body = json.loads(message.public)
            if not isinstance(body, dict) or body.get("kind") != STREAM_LINK:
                return None
            model_id = bytes.fromhex(str(body["modelId"]).removeprefix("0x"))
            owner, validator, chain_id = body["modelOwner"], body["validator"], body["chainId"]
        except (ValueError, KeyError):
            return None
        valid = (
            len(model_id) == 32
            and isinstance(chain_id, int)
            and not isinstance(chain_id, bool)
            and isinstance(owner, str)
            and isinstance(validator, str)
            and is_address(owner)
            and is_address(validator)
        )
        if not valid:
            return None
        return cls(model_id, to_checksum_address(owner), chain_id, to_checksum_address(validator))


def author_consent(
    transport: ChannelTransport, stream_id: bytes, chain_id: int, validator: str
) -> StreamLinkConsent | None:
    """The stream author's binding consent for this chain and validator: its first consent packet
    among the verified messages (a packet by any other writer is no consent). None while there is
    none. Reading stops at the first message that fails verification: what came before it stands."""
    reader = ChannelReader(transport, stream_id)
    messages: list[Message] = []
    try:
        messages.extend(reader.verified_messages())  # every signature, link and order verified
    except ChannelError:
        pass
    author, validator = reader.state.author, to_checksum_address(validator)
    for message in messages:
        if message.sender != author:
            continue
        consent = StreamLinkConsent.from_message(message)
        if consent is not None and consent.chain_id == chain_id and consent.validator == validator:
            return consent
    return None
