"""Keyloads and masked payloads.

A keyload hands a fresh 32-byte channel key to chosen subscribers, sealed for each with HPKE
(RFC 9180, base mode; DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, as
``cryptography`` implements it) to the X25519 key the recipient announced. The HPKE ``info``
binds each sealed key to its channel and its recipient, so an entry cannot be moved to another
channel or recipient.

A masked payload is ChaCha20-Poly1305 under the channel key of the keyload it names, with a random
96-bit nonce and the message header (everything but the masked part and the signature) as
associated data, so a masked part cannot be moved to another message.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from joynet.channels.errors import InvalidMessageError, MaskedPayloadAccessError
from joynet.channels.keys import ChannelIdentity
from joynet.channels.message import NONCE_BYTES, Keyload, MaskedPart

_WRAP_INFO = b"JoyNet keyload v2\x00"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _info(channel_id: bytes, recipient: bytes) -> bytes:
    return _WRAP_INFO + channel_id + recipient


def new_keyload(channel_id: bytes, recipients: dict[bytes, bytes]) -> tuple[Keyload, bytes]:
    """A keyload for ``recipients`` (Ed25519 key -> X25519 key) and the channel key it carries."""
    channel_key = ChaCha20Poly1305.generate_key()
    wrapped_keys = {
        recipient: _SUITE.encrypt(
            channel_key, X25519PublicKey.from_public_bytes(exchange_key), _info(channel_id, recipient)
        )
        for recipient, exchange_key in recipients.items()
    }
    return Keyload(wrapped_keys), channel_key


def open_keyload(channel_id: bytes, keyload: Keyload, identity: ChannelIdentity) -> bytes | None:
    """The channel key if ``identity`` is a recipient, else None."""
    wrapped = keyload.wrapped_keys.get(identity.public_key)
    if wrapped is None:
        return None
    try:
        return identity.open_sealed(wrapped, _SUITE, _info(channel_id, identity.public_key))
    except (InvalidTag, ValueError):
        raise InvalidMessageError("keyload entry does not open with this identity's exchange key") from None


def mask(channel_key: bytes, keyload_id: bytes, header: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return MaskedPart(keyload_id, nonce, ChaCha20Poly1305(channel_key).encrypt(nonce, plaintext, header)).encode()


def unmask(channel_key: bytes, part: MaskedPart, header: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(channel_key).decrypt(part.nonce, part.ciphertext, header)
    except InvalidTag:
        raise MaskedPayloadAccessError(
            "masked payload does not decrypt: tampered, or sealed under another key"
        ) from None
