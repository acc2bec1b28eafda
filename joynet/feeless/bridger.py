"""The IOTA bridger's logic: checkpoints of feeless model channels, and the board where the
committee exchanges signatures. ``scripts/iota_bridger.py`` (``ape run iota_bridger``) runs it.

**What a checkpoint counts.** Every message of the stream since the last accepted checkpoint (the
chain's ``IOTAValidator.streamOf``: sequence and head) goes into the Merkle root; the usage is the
number of requests the channel's author (the edge node) *served*, per node address, counting a
response only when it answers an earlier request packet of another sender and is the first answer
to it. The bridgers read only the public accounting part of packets (``joynet.feeless.handler``), so
they need no key of a private channel. Every bridger computes the same checkpoint from the same
messages: usage is sorted by node address.

**Where signatures meet: the bridge board.** A public channel on the same ledger, named
``joynet-bridge-board``, whose author key is derived from the chain id and the validator's address
(:func:`board_identity`), so every bridger can open and write it without any setup. The board
needs no access control: each entry carries a checkpoint and an EIP-712 signature of it, which a
reader checks itself (recovered signer on the committee, digest of the checkpoint it recomputed
from the channel). A bridger co-signs a proposal only when it rebuilt exactly that checkpoint.

**No double counting.** The only state is the chain's: a proposal counts only if it continues
from the stream's current head, and a checkpoint is submitted only while its previous head is
still the chain's. A restarted bridger reads the chain and the board again and carries on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_address, to_checksum_address

from joynet.chain.constants import ZERO32
from joynet.chain.validator import Checkpoint, Usage, checkpoint_typed_data
from joynet.channels import Channel, ChannelIdentity, ChannelReader, Message, MessageType
from joynet.channels.merkle import merkle_leaf, merkle_root
from joynet.channels.transport import ChannelTransport
from joynet.feeless.errors import BridgeError

BOARD_CHANNEL = "joynet-bridge-board"
SIGNATURE_KIND = "checkpoint-signature"


def accounting_of(message: Message) -> dict | None:
    """The public JSON of a packet (a request's or response's accounting part), else None."""
    if message.type is not MessageType.PACKET or not message.public:
        return None
    try:
        body = json.loads(message.public)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def build_checkpoint(
    transport: ChannelTransport,
    stream_id: bytes,
    last_sequence: int,
    last_head: bytes,
    has_checkpoint: bool,
    up_to: int | None = None,
) -> Checkpoint | None:
    """The next checkpoint of ``stream_id`` after the chain's (``last_sequence``, ``last_head``),
    covering messages up to ``up_to`` (default: the newest); None when it would credit nothing."""
    reader = ChannelReader(transport, stream_id)
    messages = reader.sync()  # every signature, link and order verified
    hashes = reader.state.hashes
    if has_checkpoint and (last_sequence >= len(hashes) or hashes[last_sequence] != last_head):
        raise BridgeError(
            f"stream 0x{stream_id.hex()}: the checkpointed head (sequence {last_sequence}) is not in the channel"
        )
    first = last_sequence + 1 if has_checkpoint else 0
    last = len(hashes) - 1 if up_to is None else up_to
    if last < first or last >= len(hashes):
        return None
    author = reader.state.author
    requests: set[str] = set()
    answered: set[str] = set()
    usage: Counter[str] = Counter()
    for message in messages[: last + 1]:
        body = accounting_of(message)
        if body is None:
            continue
        if body.get("kind") == "request" and message.sender != author:
            requests.add(message.id)
        elif body.get("kind") == "response" and message.sender == author:
            request_id, node = body.get("request_id"), body.get("node")
            if request_id in requests and request_id not in answered and body.get("served") and is_address(node or ""):
                answered.add(request_id)
                if message.sequence >= first:
                    usage[to_checksum_address(node)] += 1
    if not usage:
        return None
    root = merkle_root([merkle_leaf(digest) for digest in hashes[first : last + 1]])
    entries = [Usage(node, count) for node, count in sorted(usage.items(), key=lambda item: int(item[0], 16))]
    return Checkpoint(stream_id, last, last_head if has_checkpoint else ZERO32, hashes[last], root, entries)


def board_identity(chain_id: int, validator: str) -> ChannelIdentity:
    """The bridge board's author key: public by design (see the module docstring)."""
    seed = f"JoyNet bridge board v1:{chain_id}:{to_checksum_address(validator)}".encode()
    return ChannelIdentity(hashlib.sha256(seed).digest())


def checkpoint_to_json(checkpoint: Checkpoint) -> dict:
    return {
        "streamId": "0x" + checkpoint.streamId.hex(),
        "sequence": checkpoint.sequence,
        "previousHead": "0x" + checkpoint.previousHead.hex(),
        "headHash": "0x" + checkpoint.headHash.hex(),
        "messagesRoot": "0x" + checkpoint.messagesRoot.hex(),
        "usage": [[entry.node, entry.count] for entry in checkpoint.usage],
    }


def checkpoint_from_json(document: dict) -> Checkpoint:
    def b32(key):
        return bytes.fromhex(document[key].removeprefix("0x"))

    return Checkpoint(
        b32("streamId"),
        int(document["sequence"]),
        b32("previousHead"),
        b32("headHash"),
        b32("messagesRoot"),
        [Usage(to_checksum_address(node), int(count)) for node, count in document["usage"]],
    )


def recover_signer(checkpoint: Checkpoint, signature: bytes, chain_id: int, validator: str) -> str:
    typed = encode_typed_data(full_message=checkpoint_typed_data(checkpoint, chain_id, validator))
    return Account.recover_message(typed, signature=signature)


@dataclass
class Proposal:
    checkpoint: Checkpoint
    signatures: dict[str, bytes]  # signer address -> signature, each recovered and checked


class BridgeBoard:
    """The shared place where the committee's signatures meet (one per chain and validator)."""

    def __init__(self, transport: ChannelTransport, chain_id: int, validator: str):
        self.chain_id, self.validator = chain_id, to_checksum_address(validator)
        self.channel = Channel.create(transport, board_identity(chain_id, validator), BOARD_CHANNEL, private=False)
        self.reader = ChannelReader(transport, self.channel.channel_id)
        self._entries: list[tuple[Checkpoint, str, bytes]] = []

    def post(self, checkpoint: Checkpoint, signer: str, signature: bytes) -> None:
        body = {
            "kind": SIGNATURE_KIND,
            "checkpoint": checkpoint_to_json(checkpoint),
            "signer": signer,
            "signature": "0x" + signature.hex(),
        }
        self.channel.publish(public=json.dumps(body, separators=(",", ":")).encode())

    def proposals(self, stream_id: bytes, previous_head: bytes, is_member) -> list[Proposal]:
        """Proposals continuing from ``previous_head``, each with its valid members' signatures."""
        for message in self.reader.verified_messages():
            body = accounting_of(message)
            if not body or body.get("kind") != SIGNATURE_KIND:
                continue
            try:
                checkpoint = checkpoint_from_json(body["checkpoint"])
                signature = bytes.fromhex(str(body["signature"]).removeprefix("0x"))
                signer = recover_signer(checkpoint, signature, self.chain_id, self.validator)
            except (KeyError, TypeError, ValueError):
                continue  # not a well-formed signature entry: anyone can write the board
            self._entries.append((checkpoint, signer, signature))
        found: dict[Checkpoint, Proposal] = {}
        for checkpoint, signer, signature in self._entries:
            if checkpoint.streamId != stream_id or checkpoint.previousHead != previous_head or not is_member(signer):
                continue
            key = checkpoint._replace(usage=tuple(checkpoint.usage))
            found.setdefault(key, Proposal(checkpoint, {})).signatures[signer] = signature
        return list(found.values())


# ---- the bridger agent's decisions ----


class Bridger:
    """One committee member's state and decisions; ``agents/iota_bridger.py`` calls it from its
    handlers. ``validator`` is the IOTAValidator contract, ``signer`` an Ape account on its
    committee, ``ledger`` the channels' and the bridge board's ledger, ``say`` where it reports."""

    def __init__(self, validator, signer, ledger, chain_id: int, say=print, until_caught_up: bool = False):
        self.validator, self.signer, self.ledger, self.chain_id, self.say = validator, signer, ledger, chain_id, say
        self.board = BridgeBoard(ledger, chain_id, validator.address)
        self.streams: set[bytes] = set()
        self.until_caught_up = until_caught_up
        self.caught_up = False  # every followed stream checkpointed (with ``until_caught_up``: time to stop)

    def follow(self, linked) -> None:
        """A ``StreamLinked`` log: checkpoint that stream from now on."""
        stream_id = bytes(linked.streamId)
        self.streams.add(stream_id)
        self.say(f"following stream 0x{stream_id.hex()} (model 0x{bytes(linked.modelId).hex()[:16]}...)")

    def checkpoint_streams(self) -> bool:
        """One round over every followed stream; True when none has anything left to checkpoint."""
        caught_up = bool(self.streams)
        for stream_id in sorted(self.streams):
            caught_up &= self.checkpoint_stream(stream_id)
        self.caught_up = caught_up
        return caught_up

    def checkpoint_stream(self, stream_id: bytes) -> bool:
        """One round for one stream: co-sign the board's proposals this member rebuilt identically
        from the channel, submit one that holds the threshold, else propose its own; True when
        there is nothing left to checkpoint."""
        validator, signer = self.validator, self.signer
        state = validator.streamOf(stream_id)
        head, has_checkpoint = bytes(state.head), state.checkpoints > 0
        try:
            mine = build_checkpoint(self.ledger, stream_id, state.sequence, head, has_checkpoint)
        except BridgeError as error:
            self.say(f"skipping: {error}")
            return True
        endorsed = False  # a pending proposal this member agrees with
        for proposal in self.board.proposals(stream_id, head, validator.isCommitteeMember):
            rebuilt = build_checkpoint(
                self.ledger, stream_id, state.sequence, head, has_checkpoint, up_to=proposal.checkpoint.sequence
            )
            if rebuilt != proposal.checkpoint:
                continue  # not what the channel says: never sign it
            endorsed = True
            if signer.address not in proposal.signatures:
                proposal.signatures[signer.address] = self.sign(proposal.checkpoint)
                self.board.post(proposal.checkpoint, signer.address, proposal.signatures[signer.address])
                self.say(
                    f"co-signed checkpoint of 0x{stream_id.hex()[:16]}... up to sequence {proposal.checkpoint.sequence}"
                )
            if len(proposal.signatures) >= validator.threshold():
                self.submit(proposal)
                return False
        if mine is not None and not endorsed:  # a wrong proposal by another member blocks nothing
            self.board.post(mine, signer.address, self.sign(mine))
            self.say(
                f"proposed checkpoint of 0x{stream_id.hex()[:16]}... sequence {mine.sequence}, "
                f"{mine.inferences} inferences over {len(mine.usage)} node(s)"
            )
        return mine is None

    def sign(self, checkpoint: Checkpoint) -> bytes:
        typed = encode_typed_data(full_message=checkpoint_typed_data(checkpoint, self.chain_id, self.validator.address))
        return self.signer.sign_message(typed).encode_rsv()

    def submit(self, proposal) -> None:
        """Submits a proposal holding the threshold, unless another member already did."""
        from joynet.chain.validator import ordered_signatures

        checkpoint, validator = proposal.checkpoint, self.validator
        if bytes(validator.streamOf(checkpoint.streamId).head) != checkpoint.previousHead:
            return  # another member submitted it first: the chain moved on
        signatures = ordered_signatures(list(proposal.signatures.items()))
        try:
            receipt = validator.submitCheckpoint(checkpoint, signatures, sender=self.signer)
        except Exception as error:  # noqa: BLE001 - a race lost to another member is not fatal
            if bytes(validator.streamOf(checkpoint.streamId).head) == checkpoint.headHash:
                return
            raise BridgeError(f"submitCheckpoint failed: {error}") from error
        self.say(
            f"submitted checkpoint of 0x{checkpoint.streamId.hex()[:16]}... sequence {checkpoint.sequence}: "
            f"{checkpoint.inferences} inferences credited, gas {receipt.gas_used:,}"
        )
