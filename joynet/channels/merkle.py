"""Merkle commitments to channel messages, in the form OpenZeppelin's ``MerkleProof`` checks.

A bridge checkpoint commits to the hashes of the messages since the previous checkpoint. Leaves
and nodes follow OpenZeppelin's ``MerkleProof.verify(proof, root, leaf)``:

  * leaf  = keccak256(message hash)                  Solidity: keccak256(abi.encodePacked(messageHash))
  * node  = keccak256(min(a, b) || max(a, b))        OpenZeppelin's commutative (sorted-pair) hash
  * a level with an odd count carries its last node up unchanged.

Hashing the 32-byte message hash once more for the leaf keeps leaves (32-byte preimages) distinct
from inner nodes (64-byte preimages), so no inner node can be passed off as a message.
"""

from __future__ import annotations

from eth_hash.auto import keccak

from joynet.channels.channel import ChannelReader
from joynet.channels.transport import ChannelTransport


def merkle_leaf(message_hash: bytes) -> bytes:
    return keccak(message_hash)


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


def _next_level(level: list[bytes]) -> list[bytes]:
    paired = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    return paired + ([level[-1]] if len(level) % 2 else [])


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    proof, level = [], list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level, index = _next_level(level), index // 2
    return proof


def verify_proof(proof: list[bytes], root: bytes, leaf: bytes) -> bool:
    """OpenZeppelin's ``MerkleProof.verify``: fold the proof with sorted-pair hashing."""
    computed = leaf
    for sibling in proof:
        computed = hash_pair(computed, sibling)
    return computed == root


def channel_message_hashes(
    transport: ChannelTransport, channel_id: bytes, first_sequence: int, last_sequence: int
) -> list[bytes]:
    """Hashes of messages ``first_sequence..last_sequence`` (inclusive), after verifying the chain."""
    if not 0 <= first_sequence <= last_sequence:
        raise ValueError(f"bad sequence range {first_sequence}..{last_sequence}")
    reader = ChannelReader(transport, channel_id)
    for message in reader.verified_messages():
        if message.sequence >= last_sequence:
            break
    hashes = reader.state.hashes
    if len(hashes) <= last_sequence:
        raise ValueError(f"channel has {len(hashes)} messages, fewer than sequence {last_sequence} needs")
    return hashes[first_sequence : last_sequence + 1]
