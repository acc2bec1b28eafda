"""An IOTA-Streams-style authenticated channel: announce, subscribe, keyloads, signed packets.

See ``message`` for the wire format, ``state`` for the rules, ``channel`` for reading and writing,
``ledger`` (embedded SQLite) and ``iota`` (iota-sdk) for the transports, ``merkle`` for the
commitments the bridge puts on chain.
"""

from joynet.channels.channel import Channel, ChannelReader
from joynet.channels.errors import (
    BrokenLinkError,
    ChannelError,
    ChannelForkError,
    ChannelGapError,
    InvalidMessageError,
    InvalidSignatureError,
    IOTANodeUnavailable,
    MaskedPayloadAccessError,
    NotAuthorizedError,
    ReplayError,
    UnknownChannelError,
    WrongChannelError,
)
from joynet.channels.keys import ChannelIdentity
from joynet.channels.ledger import SQLiteLedger, default_ledger_path
from joynet.channels.message import Message, MessageType, derive_channel_id
from joynet.channels.state import ChannelState
from joynet.channels.transport import ChannelTransport

__all__ = [
    "BrokenLinkError",
    "Channel",
    "ChannelError",
    "ChannelForkError",
    "ChannelGapError",
    "ChannelIdentity",
    "ChannelReader",
    "ChannelState",
    "ChannelTransport",
    "IOTANodeUnavailable",
    "InvalidMessageError",
    "InvalidSignatureError",
    "MaskedPayloadAccessError",
    "Message",
    "MessageType",
    "NotAuthorizedError",
    "ReplayError",
    "SQLiteLedger",
    "UnknownChannelError",
    "WrongChannelError",
    "default_ledger_path",
    "derive_channel_id",
]
