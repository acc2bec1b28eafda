"""Checkpoints and stream links of feeless channels as the IOTAValidator contract accepts them.

A bridger signs a :class:`Checkpoint` or a :class:`StreamLink` with EIP-712 (domain "JoyNet
IOTAValidator", version "1", the chain id and the validator's address); the contract takes the
signatures of at least its threshold of distinct committee members, ordered by signer address
(:func:`ordered_signatures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from eth_account import Account

from joynet.chain.eip712 import sign_typed, typed_message


class Usage(NamedTuple):
    """Inferences ``node`` served on the stream since the previous checkpoint."""

    node: str
    # The contract struct's field name; it shadows tuple.count, which nothing here calls.
    count: int  # type: ignore[assignment]


class Checkpoint(NamedTuple):
    """IOTAValidator.Checkpoint: field names and order as in the contract."""

    streamId: bytes
    sequence: int
    previousHead: bytes
    headHash: bytes
    messagesRoot: bytes
    # A list as built; a tuple where the checkpoint must be hashable (a dict key).
    usage: Sequence[Usage]

    @property
    def inferences(self) -> int:
        return sum(entry.count for entry in self.usage)


CHECKPOINT_TYPES = {
    "Checkpoint": [
        {"name": "streamId", "type": "bytes32"},
        {"name": "sequence", "type": "uint64"},
        {"name": "previousHead", "type": "bytes32"},
        {"name": "headHash", "type": "bytes32"},
        {"name": "messagesRoot", "type": "bytes32"},
        {"name": "usage", "type": "Usage[]"},
    ],
    "Usage": [{"name": "node", "type": "address"}, {"name": "count", "type": "uint64"}],
}


def checkpoint_typed_data(checkpoint: Checkpoint, chain_id: int, validator: str) -> dict:
    """The EIP-712 message a bridger signs for ``checkpoint``."""
    message = {
        **checkpoint._asdict(),
        "usage": [{"node": entry.node, "count": entry.count} for entry in checkpoint.usage],
    }
    domain = ("JoyNet IOTAValidator", "1", chain_id, validator)
    return typed_message("Checkpoint", CHECKPOINT_TYPES, domain, message)


class StreamLink(NamedTuple):
    """IOTAValidator's StreamLink: the committee's attestation that the stream's author consented
    to carry ``modelId`` of ``modelOwner``."""

    streamId: bytes
    modelId: bytes
    modelOwner: str


STREAM_LINK_TYPES = {
    "StreamLink": [
        {"name": "streamId", "type": "bytes32"},
        {"name": "modelId", "type": "bytes32"},
        {"name": "modelOwner", "type": "address"},
    ]
}


def stream_link_typed_data(link: StreamLink, chain_id: int, validator: str) -> dict:
    """The EIP-712 message a bridger signs to link a stream."""
    domain = ("JoyNet IOTAValidator", "1", chain_id, validator)
    return typed_message("StreamLink", STREAM_LINK_TYPES, domain, link._asdict())


def sign_stream_link(private_key, link: StreamLink, chain_id: int, validator: str) -> tuple[str, bytes]:
    """(signer address, 65-byte signature) of ``link`` by ``private_key``."""
    signed = sign_typed(private_key, stream_link_typed_data(link, chain_id, validator))
    return Account.from_key(private_key).address, bytes(signed.signature)


def sign_checkpoint(private_key, checkpoint: Checkpoint, chain_id: int, validator: str) -> tuple[str, bytes]:
    """(signer address, 65-byte signature) of ``checkpoint`` by ``private_key``."""
    signed = sign_typed(private_key, checkpoint_typed_data(checkpoint, chain_id, validator))
    return Account.from_key(private_key).address, bytes(signed.signature)


def ordered_signatures(signed: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """The signatures ordered by signer address, as IOTAValidator.submitCheckpoint requires
    (the order is how it sees that no member signed twice)."""
    return [signature for _, signature in sorted(signed, key=lambda pair: int(pair[0], 16))]
