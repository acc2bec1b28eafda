"""The IOTA bridger's logic: checkpoints of feeless model channels, and the board where the
committee exchanges signatures. ``scripts/iota_bridger.py`` (``ape run iota_bridger``) runs it.

**What a checkpoint counts.** Every message of the stream since the last accepted checkpoint (the
chain's ``IOTAValidator.streamOf``: sequence and head) goes into the Merkle root; the usage is the
number of requests each node *served*, per node address, counting a response only when its signing
key vouched on the stream for the node it names and the chain binds that node to the key
(``joynet.feeless.claims.Bindings``) and it answers an earlier request packet of another key. A
request counts once, in the checkpoint holding its first answer, for the node the assignment rule
credits (``joynet.feeless.assignment``: the assigned node when it answered, else the first
answer, so a node answering out of turn gains nothing while the assigned node serves). The bridgers read only the public parts of packets, so
they need no key of a private channel. Every bridger computes the same checkpoint from the same
messages: usage is sorted by node address.

**Where signatures meet: the bridge board.** A public channel on the same ledger, named
``joynet-bridge-board``, whose author key is derived from the chain id and the validator's address
(:func:`board_identity`), so every bridger can open and write it without any setup. The board
needs no access control: each entry carries a checkpoint and an EIP-712 signature of it, which a
reader checks itself (recovered signer on the committee, digest of the checkpoint it recomputed
from the channel). A bridger co-signs a proposal only when it rebuilt exactly that checkpoint.

**Stream links.** A model owner asks for its stream's link (``StreamLinkRequested``); each
bridger links it only when the stream's author consented on the stream itself to exactly that
model and owner (``joynet.feeless.claims``): it then signs the ``StreamLink`` and posts the
signature on the board; the member that sees the threshold submits ``linkStream``. A request
naming a stream whose author consented to another model (a squatter's) is never signed.

**No double counting.** The only state is the chain's: a proposal counts only if it continues
from the stream's current head, and a checkpoint is submitted only while its previous head is
still the chain's. A restarted bridger reads the chain and the board again and carries on.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import prometheus_client
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from joynet.chain.constants import ZERO32
from joynet.chain.validator import (
    Checkpoint,
    StreamLink,
    Usage,
    checkpoint_typed_data,
    ordered_signatures,
    stream_link_typed_data,
)
from joynet.channels import Channel, ChannelIdentity, ChannelReader
from joynet.channels.merkle import merkle_leaf, merkle_root
from joynet.channels.transport import ChannelTransport
from joynet.feeless.assignment import AnswerCheck, AssignmentBook, accounting_of
from joynet.feeless.claims import Bindings, ConsentWatch
from joynet.feeless.errors import BridgeError

BOARD_CHANNEL = "joynet-bridge-board"
SIGNATURE_KIND = "checkpoint-signature"
LINK_SIGNATURE_KIND = "stream-link-signature"


def build_checkpoint(
    transport: ChannelTransport,
    stream_id: bytes,
    last_sequence: int,
    last_head: bytes,
    has_checkpoint: bool,
    up_to: int | None = None,
    *,
    bindings: Bindings,
    check: AnswerCheck | None = None,
) -> Checkpoint | None:
    """The next checkpoint of ``stream_id`` after the chain's (``last_sequence``, ``last_head``),
    covering messages up to ``up_to`` (default: the newest); None when it would credit nothing.
    ``bindings`` says which key may answer for which node of the stream's model; ``check``
    (``joynet.feeless.checks``) whether an answer checks out: one that does not earns nothing."""
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
    book = AssignmentBook(bindings)
    for message in messages[: last + 1]:
        book.observe(message)
    usage: Counter[str] = Counter()
    for assignment in book.requests.values():
        # A request counts in the checkpoint that holds its first answer (so once), for the node
        # the assignment rule credits among the answers up to this checkpoint's end.
        if not assignment.answers or assignment.answers[0].sequence < first:
            continue
        credited = assignment.credited(up_to=last, check=check)
        if credited is not None:
            usage[credited.node] += 1
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


def recover_signer(typed_data: dict, signature: bytes) -> str:
    """Who signed the EIP-712 message ``typed_data`` (a checkpoint's or a stream link's)."""
    return Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)


def link_to_json(link: StreamLink) -> dict:
    return {"streamId": "0x" + link.streamId.hex(), "modelId": "0x" + link.modelId.hex(), "modelOwner": link.modelOwner}


def link_from_json(document: dict) -> StreamLink:
    return StreamLink(
        bytes.fromhex(str(document["streamId"]).removeprefix("0x")),
        bytes.fromhex(str(document["modelId"]).removeprefix("0x")),
        to_checksum_address(document["modelOwner"]),
    )


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
        self._links: list[tuple[StreamLink, str, bytes]] = []

    def post(self, checkpoint: Checkpoint, signer: str, signature: bytes) -> None:
        self._post(SIGNATURE_KIND, {"checkpoint": checkpoint_to_json(checkpoint)}, signer, signature)

    def post_link(self, link: StreamLink, signer: str, signature: bytes) -> None:
        self._post(LINK_SIGNATURE_KIND, {"link": link_to_json(link)}, signer, signature)

    def proposals(self, stream_id: bytes, previous_head: bytes, is_member) -> list[Proposal]:
        """Proposals continuing from ``previous_head``, each with its valid members' signatures."""
        self._read()
        found: dict[Checkpoint, Proposal] = {}
        for checkpoint, signer, signature in self._entries:
            if checkpoint.streamId != stream_id or checkpoint.previousHead != previous_head or not is_member(signer):
                continue
            key = checkpoint._replace(usage=tuple(checkpoint.usage))
            found.setdefault(key, Proposal(checkpoint, {})).signatures[signer] = signature
        return list(found.values())

    def link_signatures(self, link: StreamLink, is_member) -> dict[str, bytes]:
        """The valid members' signatures of ``link`` posted so far, by signer."""
        self._read()
        return {signer: signature for entry, signer, signature in self._links if entry == link and is_member(signer)}

    def _post(self, kind: str, entry: dict, signer: str, signature: bytes) -> None:
        body = {"kind": kind, **entry, "signer": signer, "signature": "0x" + signature.hex()}
        self.channel.publish(public=json.dumps(body, separators=(",", ":")).encode())

    def _read(self) -> None:
        """Takes in the board's new entries, each with the signer its signature recovers to."""
        for message in self.reader.verified_messages():
            body = accounting_of(message)
            if not body or body.get("kind") not in (SIGNATURE_KIND, LINK_SIGNATURE_KIND):
                continue
            try:
                signature = bytes.fromhex(str(body["signature"]).removeprefix("0x"))
                if body["kind"] == SIGNATURE_KIND:
                    checkpoint = checkpoint_from_json(body["checkpoint"])
                    typed = checkpoint_typed_data(checkpoint, self.chain_id, self.validator)
                    signer = recover_signer(typed, signature)
                    self._entries.append((checkpoint, signer, signature))
                else:
                    link = link_from_json(body["link"])
                    signer = recover_signer(stream_link_typed_data(link, self.chain_id, self.validator), signature)
                    self._links.append((link, signer, signature))
            except (KeyError, TypeError, ValueError):
                continue  # not a well-formed signature entry: anyone can write the board


# ---- the bridger agent's decisions ----


class Bridger:
    """One committee member's state and decisions; ``agents/iota_bridger.py`` calls it from its
    handlers. ``validator`` is the IOTAValidator contract, ``signer`` an Ape account on its
    committee, ``ledger`` the channels' and the bridge board's ledger, ``say`` where it reports,
    ``checks_for(model_id)`` how a model's answers are checked before they are credited
    (``joynet.feeless.checks.model_answer_checks``; None: only who answered is checked)."""

    def __init__(
        self,
        validator,
        signer,
        ledger,
        chain_id: int,
        say=print,
        until_caught_up: bool = False,
        checks_for: Callable[[bytes], AnswerCheck] | None = None,
    ):
        self.validator, self.signer, self.ledger, self.chain_id, self.say = validator, signer, ledger, chain_id, say
        self.checks_for = checks_for  # model id -> how its answers are checked (joynet.feeless.checks)
        self.board = BridgeBoard(ledger, chain_id, validator.address)
        self.streams: set[bytes] = set()
        self.link_requests: dict[StreamLink, bool] = {}  # requested link -> said it waits for consent
        self._consents: dict[bytes, ConsentWatch] = {}  # stream id -> its author's consent, read incrementally
        self.until_caught_up = until_caught_up
        self.caught_up = False  # every followed stream checkpointed (with ``until_caught_up``: time to stop)
        self.metrics = BridgerMetrics(streams=lambda: len(self.streams))  # served by the agent's monitor

    def follow(self, linked) -> None:
        """A ``StreamLinked`` log: checkpoint that stream from now on."""
        stream_id = bytes(linked.streamId)
        self.streams.add(stream_id)
        self.say(f"following stream 0x{stream_id.hex()} (model 0x{bytes(linked.modelId).hex()[:16]}...)")

    def consider_link(self, requested) -> None:
        """A ``StreamLinkRequested`` log: link that stream once its author's consent is seen."""
        link = StreamLink(
            bytes(requested.streamId), bytes(requested.modelId), to_checksum_address(requested.modelOwner)
        )
        self.link_requests.setdefault(link, False)
        self.say(f"link of stream 0x{link.streamId.hex()[:16]}... to model 0x{link.modelId.hex()[:16]}... requested")

    def link_streams(self) -> bool:
        """One round over the requested links; True when none waits for signatures."""
        settled = True
        for link in list(self.link_requests):
            try:
                settled &= self.link_stream(link)
            except BridgeError as error:  # tried again next round; the other links go on
                self.say(str(error))
                settled = False
        return settled

    def link_stream(self, link: StreamLink) -> bool:
        """Sign ``link`` if the stream's author consented to exactly it, and submit it once the board
        holds the threshold; True when there is nothing more to do for it now."""
        validator, stream = self.validator, "0x" + link.streamId.hex()[:16] + "..."
        if validator.isStreamLinked(link.streamId):
            self._drop(link)
            return True
        watch = self._consents.get(link.streamId)
        if watch is None:
            watch = self._consents[link.streamId] = ConsentWatch(
                self.ledger, link.streamId, self.chain_id, validator.address
            )
        consent = watch.read()
        if consent is None:
            if not self.link_requests[link]:
                self.link_requests[link] = True
                self.say(f"stream {stream}: waiting for its author's consent to a link")
            return True
        if (consent.model_id, consent.account) != (link.modelId, link.modelOwner):
            self._drop(link)
            self.say(
                f"refused to link stream {stream} to model 0x{link.modelId.hex()[:16]}... of {link.modelOwner}: "
                f"its author consented to model 0x{consent.model_id.hex()[:16]}... of {consent.account}"
            )
            return True
        signatures = self.board.link_signatures(link, validator.isCommitteeMember)
        if self.signer.address not in signatures:
            signatures[self.signer.address] = self.sign(stream_link_typed_data(link, self.chain_id, validator.address))
            self.board.post_link(link, self.signer.address, signatures[self.signer.address])
            self.metrics.links_signed.inc()
            self.say(f"signed the link of stream {stream}: its author consented")
        if len(signatures) < validator.threshold():
            return False
        try:
            receipt = validator.linkStream(
                link.streamId, link.modelId, ordered_signatures(list(signatures.items())), sender=self.signer
            )
        except Exception as error:  # noqa: BLE001 - a race lost to another member is not fatal
            if validator.isStreamLinked(link.streamId):
                return True
            raise BridgeError(f"linkStream failed: {error}") from error
        self.metrics.links_submitted.inc()
        self.say(f"linked stream {stream} to model 0x{link.modelId.hex()[:16]}..., gas {receipt.gas_used:,}")
        return True

    def _drop(self, link: StreamLink) -> None:
        """Forgets a settled link request, and its stream's watch once no request names the stream."""
        del self.link_requests[link]
        if all(other.streamId != link.streamId for other in self.link_requests):
            self._consents.pop(link.streamId, None)

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

        @functools.cache  # one read per node and round
        def key_of_node(node: str) -> bytes | None:
            key = bytes(validator.channelKeyOf(state.modelId, node))
            return None if key == ZERO32 else key

        bindings = Bindings(bytes(state.modelId), self.chain_id, validator.address, key_of_node)
        check = self.checks_for(bytes(state.modelId)) if self.checks_for is not None else None

        try:
            mine = build_checkpoint(
                self.ledger, stream_id, state.sequence, head, has_checkpoint, bindings=bindings, check=check
            )
        except BridgeError as error:
            self.say(f"skipping: {error}")
            return True
        endorsed = False  # a pending proposal this member agrees with
        for proposal in self.board.proposals(stream_id, head, validator.isCommitteeMember):
            rebuilt = build_checkpoint(
                self.ledger,
                stream_id,
                state.sequence,
                head,
                has_checkpoint,
                up_to=proposal.checkpoint.sequence,
                bindings=bindings,
                check=check,
            )
            if rebuilt != proposal.checkpoint:
                continue  # not what the channel says: never sign it
            endorsed = True
            if signer.address not in proposal.signatures:
                proposal.signatures[signer.address] = self.sign_checkpoint(proposal.checkpoint)
                self.board.post(proposal.checkpoint, signer.address, proposal.signatures[signer.address])
                self.say(
                    f"co-signed checkpoint of 0x{stream_id.hex()[:16]}... up to sequence {proposal.checkpoint.sequence}"
                )
            if len(proposal.signatures) >= validator.threshold():
                self.submit(proposal)
                return False
        if mine is not None and not endorsed:  # a wrong proposal by another member blocks nothing
            self.board.post(mine, signer.address, self.sign_checkpoint(mine))
            self.say(
                f"proposed checkpoint of 0x{stream_id.hex()[:16]}... sequence {mine.sequence}, "
                f"{mine.inferences} inferences over {len(mine.usage)} node(s)"
            )
        return mine is None

    def sign_checkpoint(self, checkpoint: Checkpoint) -> bytes:
        self.metrics.checkpoints_signed.inc()
        return self.sign(checkpoint_typed_data(checkpoint, self.chain_id, self.validator.address))

    def sign(self, typed_data: dict) -> bytes:
        """This member's signature of the EIP-712 message ``typed_data``."""
        return self.signer.sign_message(encode_typed_data(full_message=typed_data)).encode_rsv()

    def submit(self, proposal) -> None:
        """Submits a proposal holding the threshold, unless another member already did."""
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
        self.metrics.checkpoints_submitted.inc()
        self.metrics.inferences_credited.inc(checkpoint.inferences)
        self.say(
            f"submitted checkpoint of 0x{checkpoint.streamId.hex()[:16]}... sequence {checkpoint.sequence}: "
            f"{checkpoint.inferences} inferences credited, gas {receipt.gas_used:,}"
        )


class BridgerMetrics:
    """A committee member's Prometheus counters, in a registry of their own (``registry``)."""

    def __init__(self, streams: Callable[[], int]):
        """``streams``: the number of streams followed, read at each scrape."""
        self.registry = prometheus_client.CollectorRegistry()
        self.checkpoints_signed = prometheus_client.Counter(
            "joynet_bridger_checkpoints_signed", "Checkpoints this member signed", registry=self.registry
        )
        self.checkpoints_submitted = prometheus_client.Counter(
            "joynet_bridger_checkpoints_submitted", "Checkpoints this member submitted on chain", registry=self.registry
        )
        self.inferences_credited = prometheus_client.Counter(
            "joynet_bridger_inferences_credited",
            "Feeless inferences credited by the checkpoints this member submitted",
            registry=self.registry,
        )
        self.links_signed = prometheus_client.Counter(
            "joynet_bridger_links_signed", "Stream links this member signed", registry=self.registry
        )
        self.links_submitted = prometheus_client.Counter(
            "joynet_bridger_links_submitted", "Stream links this member submitted on chain", registry=self.registry
        )
        self.streams = prometheus_client.Gauge(
            "joynet_bridger_streams_followed", "Linked streams followed", registry=self.registry
        )
        self.streams.set_function(streams)
