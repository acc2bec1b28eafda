"""Merkle commitments to channel messages, checked with OpenZeppelin's MerkleProof rules."""

import hashlib

import pytest
from eth_hash.auto import keccak

from joynet.channels import Channel, ChannelIdentity, SQLiteLedger
from joynet.channels.merkle import channel_message_hashes, merkle_leaf, merkle_proof, merkle_root, verify_proof


def sorted_pair(a, b):
    return keccak(min(a, b) + max(a, b))


@pytest.fixture
def leaves():
    return [merkle_leaf(hashlib.sha256(bytes([i])).digest()) for i in range(5)]


def test_merkle_root__five_leaves__matches_the_tree_computed_by_hand(leaves):
    a, b, c, d, e = leaves
    # level 1: (a,b) (c,d) e carried; level 2: (ab,cd) e carried; root: (abcd, e)
    expected = sorted_pair(sorted_pair(sorted_pair(a, b), sorted_pair(c, d)), e)
    assert merkle_root(leaves) == expected


def test_merkle_leaf__message_hash__is_keccak_of_the_32_bytes():
    message_hash = bytes(range(32))
    assert merkle_leaf(message_hash) == keccak(message_hash)


def test_merkle_root__single_leaf__is_the_leaf(leaves):
    assert merkle_root(leaves[:1]) == leaves[0]


def test_merkle_proof__every_leaf__verifies_with_openzeppelin_rules(leaves):
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        assert verify_proof(merkle_proof(leaves, index), root, leaf)
    a, b, c, d, e = leaves
    assert merkle_proof(leaves, 2) == [d, sorted_pair(a, b), e]
    assert merkle_proof(leaves, 4) == [sorted_pair(sorted_pair(a, b), sorted_pair(c, d))]


def test_verify_proof__wrong_leaf_or_tampered_sibling__rejected(leaves):
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, 1)
    assert not verify_proof(proof, root, merkle_leaf(b"\0" * 32))
    assert not verify_proof([bytes(32)] + proof[1:], root, leaves[1])
    assert not verify_proof(proof, root, sorted_pair(leaves[0], leaves[1]))  # an inner node is no leaf


def test_merkle_root__no_leaves__refused():
    with pytest.raises(ValueError):
        merkle_root([])


def test_channel_message_hashes__range__hashes_of_the_verified_messages(tmp_path):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    channel = Channel.create(ledger, ChannelIdentity.generate(), "bridged")
    for i in range(5):
        channel.publish(public=bytes([i]))
    stored = ledger.read(channel.channel_id)
    hashes = channel_message_hashes(ledger, channel.channel_id, 2, 4)
    assert hashes == [m.hash for m in stored[2:5]]
    leaves = [merkle_leaf(h) for h in hashes]
    assert verify_proof(merkle_proof(leaves, 1), merkle_root(leaves), merkle_leaf(stored[3].hash))
    with pytest.raises(ValueError):
        channel_message_hashes(ledger, channel.channel_id, 2, 9)
