"""Reading and writing a channel: the participant's side of the protocol.

``ChannelReader`` follows a channel on any transport and verifies every message with
``ChannelState`` (signature, link, order, authorisation); it opens the keyloads addressed to its
identity and with them the masked payloads.

``Channel`` adds writing. Writers share one linked sequence: a writer catches up, builds its
message on the head it saw (sequence + 1, previous = head hash), signs it and compare-and-appends.
If another writer got there first the transport refuses with ``ChannelForkError``; the writer
catches up and rebuilds on the new head. The ledger therefore orders concurrent writers and the
chain stays single and verifiable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from joynet.channels.errors import (
    ChannelError,
    ChannelForkError,
    InvalidMessageError,
    MaskedPayloadAccessError,
    NotAuthorizedError,
    ReplayError,
)
from joynet.channels.keys import ChannelIdentity
from joynet.channels.masking import mask, new_keyload, open_keyload, unmask
from joynet.channels.message import Announcement, MaskedPart, Message, MessageType, Subscription, derive_channel_id
from joynet.channels.state import ChannelState
from joynet.channels.transport import ChannelTransport

MAX_APPEND_ATTEMPTS = 1_000


class ChannelReader:
    def __init__(self, transport: ChannelTransport, channel_id: bytes, identity: ChannelIdentity | None = None):
        self.transport = transport
        self.identity = identity
        self.state = ChannelState(channel_id)
        self._channel_keys: dict[bytes, bytes] = {}  # keyload id -> channel key, for keyloads we received

    @property
    def channel_id(self) -> bytes:
        return self.state.channel_id

    def verified_messages(self) -> Iterator[Message]:
        """Yield each new message once it is verified and accepted; raise at the first bad one.

        A refused message is never skipped: the next call starts again from it.
        """
        for message in self.transport.read(self.channel_id, self.state.last_sequence + 1):
            self.state.apply(message)
            if message.type is MessageType.KEYLOAD and self.identity is not None:
                self._receive_keyload(message, self.identity)
            yield message

    def sync(self) -> list[Message]:
        return list(self.verified_messages())

    def _receive_keyload(self, message: Message, identity: ChannelIdentity) -> None:
        channel_key = open_keyload(self.channel_id, self.state.keyloads[message.hash], identity)
        if channel_key is not None:
            self._channel_keys[message.hash] = channel_key

    def channel_key(self, keyload_id: bytes) -> bytes | None:
        return self._channel_keys.get(keyload_id)

    def open_masked(self, message: Message) -> bytes:
        """The plaintext of ``message``'s masked payload; only keyload recipients can read it."""
        if not message.masked:
            raise InvalidMessageError(f"message {message.id} has no masked payload")
        part = MaskedPart.decode(message.masked)
        channel_key = self._channel_keys.get(part.keyload_id)
        if channel_key is None:
            reader = self.identity.public_key.hex()[:16] if self.identity else "an anonymous reader"
            raise MaskedPayloadAccessError(
                f"{reader} was not given the key of keyload 0x{part.keyload_id.hex()[:16]}: only subscribers "
                "the author admitted with that keyload can read this masked payload"
            )
        return unmask(channel_key, part, message.header())


class Channel:
    """One participant's handle on one channel: verified reading plus compare-and-append writing."""

    def __init__(self, transport: ChannelTransport, identity: ChannelIdentity, channel_id: bytes):
        self.transport = transport
        self.identity = identity
        self.reader = ChannelReader(transport, channel_id, identity)
        self._inbox: list[Message] = []

    @classmethod
    def create(
        cls, transport: ChannelTransport, identity: ChannelIdentity, name: str, private: bool = True, open: bool = False
    ) -> Channel:
        """Announce the channel ``name`` of ``identity``, or reopen it if it was announced before.
        ``open``: a public channel on which every subscriber may publish (see ``ChannelState``)."""
        channel = cls(transport, identity, derive_channel_id(identity.public_key, name))
        channel._sync()
        if channel.state.announcement is None:
            announcement = Announcement(name, private, identity.exchange_public_key, open)
            try:
                channel._publish(MessageType.ANNOUNCE, announcement.encode())
            except ReplayError:
                # Another process holding the same key announced the same channel between our
                # read and our append. Ed25519 signatures are deterministic, so its announcement is
                # byte for byte ours: the channel exists, which is all we wanted.
                pass
            channel._sync()
        return channel

    @property
    def channel_id(self) -> bytes:
        return self.reader.channel_id

    @property
    def state(self) -> ChannelState:
        return self.reader.state

    @property
    def is_author(self) -> bool:
        return self.state.author == self.identity.public_key

    @property
    def admitted(self) -> bool:
        return self.state.may_publish(self.identity.public_key)

    def receive(self) -> list[Message]:
        """Every message accepted since the last call, in order.

        If a bad message stops the sync, the good ones before it are returned first and the
        error is raised by the next call (and every call after, until the channel is repaired).
        """
        error = None
        try:
            self._sync()
        except ChannelError as refused:
            error = refused
        messages, self._inbox = self._inbox, []
        if error is not None and not messages:
            raise error
        return messages

    def open_masked(self, message: Message) -> bytes:
        return self.reader.open_masked(message)

    def subscribe(self, credential: bytes = b"") -> Message:
        """Ask the author for access; ``credential`` is for the author's admission policy."""
        return self._publish(
            MessageType.SUBSCRIBE, Subscription(self.identity.exchange_public_key, credential).encode()
        )

    def admit(self, subscribers: Iterable[bytes]) -> Message:
        """Author only: a keyload giving a fresh channel key to ``subscribers`` (and the author).

        The recipients become the channel's writers; anyone left out can read no later masked
        payload and write no further packet.
        """
        self._sync()
        recipients = {key: self.state.exchange_key_of(key) for key in {*subscribers, self.identity.public_key}}
        unknown = [key.hex()[:16] for key, exchange_key in recipients.items() if exchange_key is None]
        if unknown:
            raise NotAuthorizedError(f"cannot admit keys that never subscribed: {', '.join(unknown)}")
        keyload, _ = new_keyload(
            self.channel_id, {key: exchange_key for key, exchange_key in recipients.items() if exchange_key is not None}
        )
        return self._publish(MessageType.KEYLOAD, keyload.encode())

    def publish(self, public: bytes = b"", masked: bytes | None = None) -> Message:
        """A signed packet; ``masked`` is sealed under the latest keyload's key."""
        return self._publish(MessageType.PACKET, public, masked)

    def _sync(self) -> None:
        for message in self.reader.verified_messages():
            self._inbox.append(message)

    def _publish(self, kind: MessageType, public: bytes, masked: bytes | None = None) -> Message:
        for _ in range(MAX_APPEND_ATTEMPTS):
            self._sync()
            message = self._build(kind, public, masked)
            try:
                self.transport.append(message)
            except ChannelForkError:
                continue  # another writer took this sequence: catch up and rebuild on the new head
            return message
        raise ChannelForkError(
            f"no free position after {MAX_APPEND_ATTEMPTS} attempts on channel {self.channel_id.hex()}"
        )

    def _build(self, kind: MessageType, public: bytes, masked: bytes | None) -> Message:
        state = self.state
        message = Message(
            kind, self.channel_id, state.last_sequence + 1, state.head_hash, self.identity.public_key, public
        )
        if masked is not None:
            message = dataclasses.replace(message, masked=self._mask(message, masked))
        return dataclasses.replace(message, signature=self.identity.sign(message.signing_payload()))

    def _mask(self, message: Message, plaintext: bytes) -> bytes:
        keyload_id = self.state.latest_keyload_id
        channel_key = self.reader.channel_key(keyload_id) if keyload_id else None
        if keyload_id is None or channel_key is None:
            raise MaskedPayloadAccessError("this identity holds no key of the latest keyload: it was not admitted")
        return mask(channel_key, keyload_id, message.header(), plaintext)
