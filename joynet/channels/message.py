"""The channel message and its one canonical encoding.

Wire format (version 2), every integer big-endian, no optional fields, nothing after the end:

    offset  size  field
         0     1  version            = 2 (1 wrapped keyloads by hand; its messages are refused)
         1     1  type               1 announce, 2 subscribe, 3 keyload, 4 packet
         2    32  channel id
        34     8  sequence           0 for the announcement, then +1 per message
        42    32  previous hash      message hash of sequence - 1 (32 zero bytes at sequence 0)
        74    32  sender             Ed25519 public key
       106     4  public length P
       110     P  public payload
     110+P     4  masked length M
     114+P     M  masked payload     empty, or keyload id (32) | nonce (12) | ChaCha20-Poly1305 ciphertext
   114+P+M    64  Ed25519 signature

The *body* is everything before the signature. The message hash (its id, what the next message
links to and what the bridge commits to) is ``sha256(body)``; the signature is Ed25519 over
``SIGNING_DOMAIN || message hash``. Leaving the signature out of the hash keeps the id fixed
whatever signature bytes accompany it, and the domain prefix keeps a channel signature from ever
being valid for anything else the same wallet key signs.

A length-prefixed binary layout was chosen over CBOR: every field has one encoding by
construction, so there is nothing to canonicalise and no dependency to pin.

Public payload per type (the masked payload is empty except for packets):

    announce   flags (1: bit 0 = private, bit 1 = open; not both) | author X25519 key (32) |
               channel name (UTF-8, 1..200)
    subscribe  subscriber X25519 key (32) | credential (opaque, may be empty)
    keyload    count (2) | count x (recipient Ed25519 key (32) | HPKE encapsulated key (32) | sealed channel key (48))
    packet     application bytes
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from joynet.channels.errors import InvalidMessageError, InvalidSignatureError

VERSION = 2
SIGNING_DOMAIN = b"JoyNet channel message v1\x00"
CHANNEL_ID_DOMAIN = b"JoyNet channel id v1\x00"
ZERO_HASH = bytes(32)
# Fits a Stardust tagged-data block (32 KiB with 8 parents) whole; larger inputs go to IPFS.
MAX_MESSAGE_BYTES = 32_000
MAX_CHANNEL_NAME_BYTES = 200
SIGNATURE_BYTES = 64
KEY_BYTES = 32
# HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305) of a 32-byte channel key: the 32-byte
# encapsulated key, then the key sealed with its 16-byte tag.
WRAPPED_KEY_BYTES = 32 + 32 + 16
NONCE_BYTES = 12

_HEADER = struct.Struct(">BB32sQ32s32s")
_LENGTH = struct.Struct(">I")
_COUNT = struct.Struct(">H")
PRIVATE_FLAG = 0x01
# An open channel lets every subscribed key publish (unmasked) packets without a keyload: the
# model channels that the network's nodes serve, whose author need not be online to admit anyone.
OPEN_FLAG = 0x02


class MessageType(IntEnum):
    ANNOUNCE = 1
    SUBSCRIBE = 2
    KEYLOAD = 3
    PACKET = 4


def derive_channel_id(author_public_key: bytes, name: str) -> bytes:
    """sha256(domain | author key | name): an author cannot announce a channel under another's key."""
    return hashlib.sha256(CHANNEL_ID_DOMAIN + author_public_key + name.encode()).digest()


@dataclass(frozen=True)
class Message:
    type: MessageType
    channel_id: bytes
    sequence: int
    previous: bytes
    sender: bytes
    public: bytes = b""
    masked: bytes = b""
    signature: bytes = b""
    version: int = VERSION
    hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "hash", hashlib.sha256(self.body()).digest())

    def header(self) -> bytes:
        """Every field before the masked payload: the AEAD binds the masked part to it."""
        fixed = _HEADER.pack(self.version, self.type, self.channel_id, self.sequence, self.previous, self.sender)
        return fixed + _LENGTH.pack(len(self.public)) + self.public

    def body(self) -> bytes:
        return self.header() + _LENGTH.pack(len(self.masked)) + self.masked

    def to_bytes(self) -> bytes:
        return self.body() + self.signature

    @property
    def id(self) -> str:
        return "0x" + self.hash.hex()

    def signing_payload(self) -> bytes:
        return SIGNING_DOMAIN + self.hash

    def verify_signature(self) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.sender).verify(self.signature, self.signing_payload())
        except (InvalidSignature, ValueError) as error:
            raise InvalidSignatureError(
                f"message {self.sequence} of channel {self.channel_id.hex()[:16]}: bad signature"
            ) from error

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        """Decode strictly: wrong lengths, unknown types or trailing bytes are refused."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise InvalidMessageError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        reader = _Reader(data)
        version, kind, channel_id, sequence, previous, sender = reader.unpack(_HEADER)
        if version != VERSION:
            raise InvalidMessageError(f"unsupported message version {version}")
        if kind not in MessageType._value2member_map_:
            raise InvalidMessageError(f"unknown message type {kind}")
        public = reader.take(reader.unpack(_LENGTH)[0])
        masked = reader.take(reader.unpack(_LENGTH)[0])
        signature = reader.take(SIGNATURE_BYTES)
        reader.expect_end()
        return cls(MessageType(kind), channel_id, sequence, previous, sender, public, masked, signature, version)

    def check_size(self) -> None:
        size = len(self.body()) + SIGNATURE_BYTES
        if size > MAX_MESSAGE_BYTES:
            raise InvalidMessageError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}; put large inputs on IPFS")


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise InvalidMessageError("truncated message")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple:
        return layout.unpack(self.take(layout.size))

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.offset)

    def expect_end(self) -> None:
        if self.offset != len(self.data):
            raise InvalidMessageError("trailing bytes after the message")


# ---- typed public payloads ----


@dataclass(frozen=True)
class Announcement:
    name: str
    private: bool
    author_exchange_key: bytes
    open: bool = False  # every subscriber may publish packets (a public channel only)

    def encode(self) -> bytes:
        name = self.name.encode()
        if not 0 < len(name) <= MAX_CHANNEL_NAME_BYTES:
            raise InvalidMessageError(f"a channel name has 1 to {MAX_CHANNEL_NAME_BYTES} UTF-8 bytes")
        if self.private and self.open:
            raise InvalidMessageError("a channel is private (keyloads admit writers) or open, not both")
        flags = (PRIVATE_FLAG if self.private else 0) | (OPEN_FLAG if self.open else 0)
        return bytes([flags]) + self.author_exchange_key + name

    @classmethod
    def decode(cls, public: bytes) -> Announcement:
        reader = _Reader(public)
        flags = reader.take(1)[0]
        if flags & ~(PRIVATE_FLAG | OPEN_FLAG) or flags == PRIVATE_FLAG | OPEN_FLAG:
            raise InvalidMessageError(f"unknown announcement flags {flags:#x}")
        exchange_key = reader.take(KEY_BYTES)
        try:
            name = reader.rest().decode()
        except UnicodeDecodeError as error:
            raise InvalidMessageError("channel name is not UTF-8") from error
        if not 0 < len(name.encode()) <= MAX_CHANNEL_NAME_BYTES:
            raise InvalidMessageError(f"a channel name has 1 to {MAX_CHANNEL_NAME_BYTES} UTF-8 bytes")
        return cls(name, bool(flags & PRIVATE_FLAG), exchange_key, bool(flags & OPEN_FLAG))


@dataclass(frozen=True)
class Subscription:
    exchange_key: bytes
    credential: bytes = b""

    def encode(self) -> bytes:
        return self.exchange_key + self.credential

    @classmethod
    def decode(cls, public: bytes) -> Subscription:
        reader = _Reader(public)
        return cls(reader.take(KEY_BYTES), reader.rest())


@dataclass(frozen=True)
class Keyload:
    wrapped_keys: dict[bytes, bytes]  # recipient Ed25519 key -> channel key sealed for it (HPKE)

    def encode(self) -> bytes:
        entries = b"".join(recipient + wrapped for recipient, wrapped in sorted(self.wrapped_keys.items()))
        return _COUNT.pack(len(self.wrapped_keys)) + entries

    @classmethod
    def decode(cls, public: bytes) -> Keyload:
        reader = _Reader(public)
        (count,) = reader.unpack(_COUNT)
        wrapped_keys: dict[bytes, bytes] = {}
        previous_recipient = b""
        for _ in range(count):
            recipient, wrapped = reader.take(KEY_BYTES), reader.take(WRAPPED_KEY_BYTES)
            # Sorted and unique, so that one keyload has exactly one encoding.
            if recipient <= previous_recipient:
                raise InvalidMessageError("keyload recipients must be sorted and unique")
            wrapped_keys[recipient] = wrapped
            previous_recipient = recipient
        reader.expect_end()
        if not wrapped_keys:
            raise InvalidMessageError("a keyload names at least one recipient")
        return cls(wrapped_keys)


@dataclass(frozen=True)
class MaskedPart:
    keyload_id: bytes
    nonce: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return self.keyload_id + self.nonce + self.ciphertext

    @classmethod
    def decode(cls, masked: bytes) -> MaskedPart:
        reader = _Reader(masked)
        keyload_id, nonce = reader.take(KEY_BYTES), reader.take(NONCE_BYTES)
        ciphertext = reader.rest()
        if len(ciphertext) < 16:
            raise InvalidMessageError("masked payload shorter than its authentication tag")
        return cls(keyload_id, nonce, ciphertext)
