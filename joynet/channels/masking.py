"""Keyloads and masked payloads.

A keyload hands a fresh 32-byte channel key to chosen subscribers. The author draws one ephemeral
X25519 key per keyload; for each recipient, X25519(ephemeral, recipient's announced exchange key)
goes through HKDF-SHA256 (bound to the channel, the ephemeral key and the recipient) to a
one-time wrapping key, and ChaCha20-Poly1305 seals the channel key under it. Because each wrapping
key is used exactly once, the wrap uses a zero nonce.

A masked payload is ChaCha20-Poly1305 under the channel key of the keyload it names, with a random
96-bit nonce and the message header (everything but the masked part and the signature) as
associated data, so a masked part cannot be moved to another message.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from joynet.channels.errors import InvalidMessageError, MaskedPayloadAccessError
from joynet.channels.keys import ChannelIdentity, public_key_bytes
from joynet.channels.message import NONCE_BYTES, Keyload, MaskedPart

_WRAP_INFO = b"JoyNet keyload wrap v1\x00"
_ZERO_NONCE = bytes(NONCE_BYTES)


def _wrapping_key(shared_secret: bytes, channel_id: bytes, ephemeral_key: bytes, recipient: bytes) -> bytes:
    info = _WRAP_INFO + channel_id + ephemeral_key + recipient
    return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(shared_secret)


def new_keyload(channel_id: bytes, recipients: dict[bytes, bytes]) -> tuple[Keyload, bytes]:
    """A keyload for ``recipients`` (Ed25519 key -> X25519 key) and the channel key it carries."""
    channel_key = ChaCha20Poly1305.generate_key()
    ephemeral = X25519PrivateKey.generate()
    ephemeral_key = public_key_bytes(ephemeral)
    wrapped_keys = {}
    for recipient, exchange_key in recipients.items():
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(exchange_key))
        wrapping_key = _wrapping_key(shared, channel_id, ephemeral_key, recipient)
        wrapped_keys[recipient] = ChaCha20Poly1305(wrapping_key).encrypt(_ZERO_NONCE, channel_key, recipient)
    return Keyload(ephemeral_key, wrapped_keys), channel_key


def open_keyload(channel_id: bytes, keyload: Keyload, identity: ChannelIdentity) -> bytes | None:
    """The channel key if ``identity`` is a recipient, else None."""
    wrapped = keyload.wrapped_keys.get(identity.public_key)
    if wrapped is None:
        return None
    shared = identity.exchange(keyload.ephemeral_key)
    wrapping_key = _wrapping_key(shared, channel_id, keyload.ephemeral_key, identity.public_key)
    try:
        return ChaCha20Poly1305(wrapping_key).decrypt(_ZERO_NONCE, wrapped, identity.public_key)
    except InvalidTag:
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
