"""An IOTA-Streams-style authenticated channel: announce, subscribe, keyloads, signed packets.

See ``message`` for the wire format, ``state`` for the rules, ``channel`` for reading and writing,
``ledger`` (embedded SQLite), ``pubsub`` (IPFS pubsub, between machines) and ``iota`` (iota-sdk)
for the transports, ``merkle`` for the commitments the bridge puts on chain.
"""

import os

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

# The Kubo RPC API (multiaddr) whose pubsub carries this party's channels; unset: the embedded ledger.
CHANNEL_API_ENV = "JOYNET_CHANNEL_API"


def open_transport(api: str | None = None) -> ChannelTransport:
    """This party's channel transport: IPFS pubsub through the Kubo RPC API ``api`` (default
    ``$JOYNET_CHANNEL_API``) to reach other machines, else the embedded ledger (one machine)."""
    api = api or os.environ.get(CHANNEL_API_ENV)
    if api:
        from joynet.channels.pubsub import PubsubTransport  # aioipfs only when a daemon is used

        return PubsubTransport(api)
    return SQLiteLedger()


LEDGER_URL_SCHEME = "sqlite://"


def transport_for_node_url(node_url: str | None) -> ChannelTransport:
    """The transport an ``IOTAInferenceHandler``'s ``node_url`` names: ``sqlite:///path`` the
    embedded ledger at that path (``sqlite://`` alone: the default ledger), the local stand-in
    for an IOTA node that the tests and a single machine use; any other URL an IOTA node
    (``IOTATransport``); None this party's default (``open_transport``)."""
    if not node_url:
        return open_transport()
    if node_url.startswith(LEDGER_URL_SCHEME):
        return SQLiteLedger(node_url.removeprefix(LEDGER_URL_SCHEME) or None)
    from joynet.channels.iota import IOTATransport

    return IOTATransport(node_url)


__all__ = [
    "CHANNEL_API_ENV",
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
    "open_transport",
    "transport_for_node_url",
]
