"""What a channel's public messages establish, and the rules every new message must meet.

``ChannelState.apply`` is the single place where a message is judged. The embedded ledger runs it
before it appends, and every reader runs it again on what it reads (a reader trusts no transport).
It checks, in order: the channel id, the signature, replay, the position (fork or gap), the link
to the previous hash, then the rules of the message's type. It changes nothing unless every check
passes, so a refused message leaves the state exactly as it was.

Several writers share one linked sequence: sequence n+1 must link to the hash of sequence n.
Who may write what:
  * announce  - sequence 0 only, by the key the channel id is derived from;
  * subscribe - anyone but the author (a later subscribe of the same key replaces its exchange key);
  * keyload   - the author only, to subscribed keys (and the author itself);
  * packet    - the author, and the recipients of the latest keyload (the admitted writers);
                a masked part must be sealed under the latest keyload's key. On an *open* channel
                (announcement flag) every subscribed key may also publish unmasked packets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from joynet.channels.errors import (
    BrokenLinkError,
    ChannelForkError,
    ChannelGapError,
    InvalidMessageError,
    NotAuthorizedError,
    ReplayError,
    UnknownChannelError,
    WrongChannelError,
)
from joynet.channels.message import (
    ZERO_HASH,
    Announcement,
    Keyload,
    MaskedPart,
    Message,
    MessageType,
    Subscription,
    derive_channel_id,
)


@dataclass
class ChannelState:
    channel_id: bytes
    announcement: Announcement | None = None
    author: bytes | None = None
    subscribers: dict[bytes, Subscription] = field(default_factory=dict)
    keyloads: dict[bytes, Keyload] = field(default_factory=dict)
    latest_keyload_id: bytes | None = None
    hashes: list[bytes] = field(default_factory=list)  # message hash by sequence
    _sequence_of: dict[bytes, int] = field(default_factory=dict, repr=False)

    @property
    def last_sequence(self) -> int:
        return len(self.hashes) - 1

    @property
    def head_hash(self) -> bytes:
        return self.hashes[-1] if self.hashes else ZERO_HASH

    @property
    def private(self) -> bool:
        return self.require_announced().private

    @property
    def writers(self) -> frozenset[bytes]:
        """Keys that may publish packets: the author and the latest keyload's recipients."""
        admitted = self.keyloads[self.latest_keyload_id].wrapped_keys if self.latest_keyload_id else {}
        return frozenset(admitted) | ({self.author} if self.author else frozenset())

    @property
    def open(self) -> bool:
        return self.require_announced().open

    def may_publish(self, key: bytes) -> bool:
        """Whether ``key`` may publish (unmasked) packets: a writer, or any subscriber of an open channel."""
        return key in self.writers or (self.announcement is not None and self.open and key in self.subscribers)

    def require_announced(self) -> Announcement:
        if self.announcement is None:
            raise UnknownChannelError(f"channel {self.channel_id.hex()} has not been announced")
        return self.announcement

    def exchange_key_of(self, key: bytes) -> bytes | None:
        if key == self.author:
            return self.require_announced().author_exchange_key
        subscription = self.subscribers.get(key)
        return subscription.exchange_key if subscription else None

    def apply(self, message: Message) -> None:
        """Accept ``message`` as the next one, or raise a ChannelError and change nothing."""
        if message.channel_id != self.channel_id:
            raise WrongChannelError(
                f"message of channel {message.channel_id.hex()[:16]} offered to {self.channel_id.hex()[:16]}"
            )
        message.verify_signature()
        self._check_position(message)
        update = self._RULES[message.type](self, message)
        update()
        self._sequence_of[message.hash] = message.sequence
        self.hashes.append(message.hash)

    def _check_position(self, message: Message) -> None:
        if message.hash in self._sequence_of:
            raise ReplayError(
                f"message {message.id} was already accepted at sequence {self._sequence_of[message.hash]}"
            )
        expected = self.last_sequence + 1
        if message.sequence < expected:
            raise ChannelForkError(
                f"sequence {message.sequence} is already taken by {self.hashes[message.sequence].hex()[:16]}: "
                f"message {message.id} would fork the channel"
            )
        if message.sequence > expected:
            raise ChannelGapError(expected, message.sequence)
        if message.previous != self.head_hash:
            raise BrokenLinkError(
                f"message {message.sequence} links to {message.previous.hex()[:16]}, not to the head {self.head_hash.hex()[:16]}"
            )

    # Each rule checks one message type and returns the state change to make once all checks passed.

    def _announce(self, message: Message):
        if message.sequence != 0:
            raise InvalidMessageError("only sequence 0 may announce the channel")
        announcement = Announcement.decode(message.public)
        if derive_channel_id(message.sender, announcement.name) != self.channel_id:
            raise NotAuthorizedError("the announcement's key and name do not derive this channel id")
        self._expect_unmasked(message)

        def update():
            self.announcement, self.author = announcement, message.sender

        return update

    def _subscribe(self, message: Message):
        self._require_body_of_channel(message)
        if message.sender == self.author:
            raise InvalidMessageError("the author does not subscribe to its own channel")
        subscription = Subscription.decode(message.public)
        self._expect_unmasked(message)
        return lambda: self.subscribers.__setitem__(message.sender, subscription)

    def _keyload(self, message: Message):
        self._require_body_of_channel(message)
        if message.sender != self.author:
            raise NotAuthorizedError("only the channel's author issues keyloads")
        keyload = Keyload.decode(message.public)
        unknown = [key.hex()[:16] for key in keyload.wrapped_keys if self.exchange_key_of(key) is None]
        if unknown:
            raise NotAuthorizedError(f"keyload names keys that never subscribed: {', '.join(unknown)}")
        self._expect_unmasked(message)

        def update():
            self.keyloads[message.hash] = keyload
            self.latest_keyload_id = message.hash

        return update

    def _packet(self, message: Message):
        self._require_body_of_channel(message)
        if not self.may_publish(message.sender):
            raise NotAuthorizedError(f"{message.sender.hex()[:16]} was not admitted to write on this channel")
        if message.masked:
            if message.sender not in self.writers:
                raise NotAuthorizedError("only the keyload's recipients seal masked payloads")
            keyload_id = MaskedPart.decode(message.masked).keyload_id
            if keyload_id != self.latest_keyload_id:
                raise InvalidMessageError("a masked payload must be sealed under the latest keyload's key")
        return lambda: None

    def _require_body_of_channel(self, message: Message) -> None:
        # Sequence 0 is always the announcement, so any later message finds the channel announced.
        if message.sequence == 0:
            raise InvalidMessageError("a channel starts with its announcement at sequence 0")

    @staticmethod
    def _expect_unmasked(message: Message) -> None:
        if message.masked:
            raise InvalidMessageError(f"a {message.type.name.lower()} message has no masked payload")

    _RULES = {
        MessageType.ANNOUNCE: _announce,
        MessageType.SUBSCRIBE: _subscribe,
        MessageType.KEYLOAD: _keyload,
        MessageType.PACKET: _packet,
    }
