"""The IOTA transport: channel messages as tagged-data blocks on an IOTA (Stardust) network.

Each channel message travels whole as the data of a tagged-data payload whose tag is
``b"JOYNET1" + channel id``; a tagged-data block moves no funds, so posting costs no fee.
Building that payload and block, its bytes, keys, addresses and signatures need no node and are
tested here. Posting and following need a node (``node_url`` or ``$IOTA_NODE_URL``): no IOTA node
is reachable from this machine or from CI, so this class is the test double boundary of the
suite — without a node every network operation raises ``IOTANodeUnavailable`` before trying to
connect.

What the tangle does not give: compare-and-append. ``append`` checks the head this transport has
seen before posting, but two writers can still post the same sequence; readers then report a
``ChannelForkError`` rather than choose. Nor does a Stardust node index tagged data by tag: a
reader follows new blocks through the node's MQTT topic ``blocks/tagged-data/<tag>``, so
history from before it started needs an indexer (a missing message surfaces as a gap).
"""

from __future__ import annotations

import json
import os
import threading

from joynet.channels.errors import ChannelForkError, InvalidMessageError, IOTANodeUnavailable
from joynet.channels.message import Message
from joynet.channels.transport import ChannelTransport

TAG_PREFIX = b"JOYNET1"
# Stardust's protocol version; the block's parents and nonce are filled in by the node when posting.
STARDUST_PROTOCOL_VERSION = 2
TAGGED_DATA_PAYLOAD_TYPE = 5


def channel_tag(channel_id: bytes) -> bytes:
    return TAG_PREFIX + channel_id


def tagged_data_payload(message: Message):
    """The iota-sdk TaggedDataPayload that carries ``message``."""
    from iota_sdk import HexStr, TaggedDataPayload

    message.check_size()
    return TaggedDataPayload(tag=HexStr(_hex(channel_tag(message.channel_id))), data=HexStr(_hex(message.to_bytes())))


def block_with_message(message: Message, parents: list[str]):
    """An unposted Stardust block carrying ``message`` (the node would choose ``parents``)."""
    from iota_sdk import Block, HexStr

    return Block(
        protocolVersion=STARDUST_PROTOCOL_VERSION,
        parents=[HexStr(p) for p in parents],
        nonce="0",
        payload=tagged_data_payload(message),
    )


def message_from_payload(payload, channel_id: bytes) -> Message:
    """The channel message inside a tagged-data payload of ``channel_id``'s tag."""
    if payload is None or payload.type != TAGGED_DATA_PAYLOAD_TYPE:
        raise InvalidMessageError("not a tagged-data payload")
    if bytes.fromhex(payload.tag[2:]) != channel_tag(channel_id):
        raise InvalidMessageError("tagged-data payload of another channel")
    return Message.from_bytes(bytes.fromhex(payload.data[2:]))


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class IOTATransport(ChannelTransport):
    def __init__(self, node_url: str | None = None):
        self.node_url = node_url or os.environ.get("IOTA_NODE_URL") or None
        self._client = None
        self._received: dict[bytes, list[Message]] = {}
        self._lock = threading.Lock()

    def _node(self):
        if self.node_url is None:
            raise IOTANodeUnavailable(
                "the IOTA transport needs a node: pass node_url= or set IOTA_NODE_URL "
                "(no IOTA node is reachable here; use the embedded SQLite ledger instead)"
            )
        if self._client is None:
            from iota_sdk import Client

            self._client = Client(nodes=[self.node_url])
        return self._client

    def append(self, message: Message) -> None:
        client = self._node()
        self.follow_channel(message.channel_id)
        if message.sequence != self.head_sequence(message.channel_id) + 1:
            raise ChannelForkError(f"sequence {message.sequence} is not next after the head this transport has seen")
        payload = tagged_data_payload(message)
        client.build_and_post_block(tag=payload.tag, data=payload.data)

    def follow_channel(self, channel_id: bytes) -> None:
        """Start collecting the channel's blocks from the node's event stream (once)."""
        client = self._node()
        with self._lock:
            if channel_id in self._received:
                return
            self._received[channel_id] = []
        client.listen_mqtt([f"blocks/tagged-data/{_hex(channel_tag(channel_id))}"], self._on_event(channel_id))

    def _on_event(self, channel_id: bytes):
        from iota_sdk import Block

        def handle(event: str) -> None:
            # iota-sdk hands an MQTT event over as JSON {"topic", "payload"}, the payload being the block.
            block_json = json.loads(event)["payload"]
            try:
                block = Block.from_dict(json.loads(block_json) if isinstance(block_json, str) else block_json)
                message = message_from_payload(block.payload, channel_id)
            except (InvalidMessageError, KeyError, TypeError, ValueError):
                return  # anybody can post under any tag: what is not a channel message is not ours
            with self._lock:
                self._received[channel_id].append(message)

        return handle

    def read(self, channel_id: bytes, from_sequence: int = 0) -> list[Message]:
        self.follow_channel(channel_id)
        with self._lock:
            received = list(self._received[channel_id])
        # Duplicates at one sequence stay in: the reader reports them as a fork.
        return sorted((message for message in received if message.sequence >= from_sequence), key=lambda m: m.sequence)

    def head_sequence(self, channel_id: bytes) -> int:
        self.follow_channel(channel_id)
        with self._lock:
            return max((message.sequence for message in self._received[channel_id]), default=-1)
