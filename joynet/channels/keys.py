"""Channel keys from the IOTA wallet mnemonic.

IOTA wallets derive Ed25519 keys with SLIP-10 from the BIP-39 seed along
``m/44'/4218'/account'/change'/index'`` (every level hardened: SLIP-10 ed25519 has no normal
derivation). iota-sdk validates the mnemonic and computes the BIP-39 seed, but never hands out a
private key, so the SLIP-10 walk is done here with hmac/hashlib; the tests check it against the
SLIP-10 spec's vectors and against the public key and signature iota-sdk produces for the same path.

The X25519 key used to receive keyloads is derived from the Ed25519 private key with HKDF
(a separate key per purpose rather than converting the signing key to Montgomery form).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

IOTA_COIN_TYPE = 4218
HARDENED = 0x8000_0000
_SLIP10_ED25519_CURVE = b"ed25519 seed"
_EXCHANGE_KEY_INFO = b"JoyNet channel X25519 key v1"


@dataclass(frozen=True)
class ExtendedKey:
    private_key: bytes
    chain_code: bytes


def slip10_master(seed: bytes) -> ExtendedKey:
    digest = hmac.new(_SLIP10_ED25519_CURVE, seed, hashlib.sha512).digest()
    return ExtendedKey(digest[:32], digest[32:])


def slip10_child(parent: ExtendedKey, index: int) -> ExtendedKey:
    """Hardened child (the only kind SLIP-10 defines for ed25519)."""
    if index < HARDENED:
        raise ValueError("SLIP-10 ed25519 derives hardened children only (index >= 2**31)")
    data = b"\x00" + parent.private_key + index.to_bytes(4, "big")
    digest = hmac.new(parent.chain_code, data, hashlib.sha512).digest()
    return ExtendedKey(digest[:32], digest[32:])


def slip10_derive(seed: bytes, path: list[int]) -> ExtendedKey:
    key = slip10_master(seed)
    for index in path:
        key = slip10_child(key, index)
    return key


def iota_path(account: int = 0, index: int = 0, change: int = 0) -> list[int]:
    return [HARDENED | level for level in (44, IOTA_COIN_TYPE, account, change, index)]


def mnemonic_to_seed(mnemonic: str) -> bytes:
    """BIP-39 seed; iota-sdk refuses a mnemonic with an unknown word or a bad checksum."""
    from iota_sdk import Utils
    from iota_sdk.utils import UtilsError

    try:
        return bytes.fromhex(Utils.mnemonic_to_hex_seed(" ".join(mnemonic.split()))[2:])
    except UtilsError as error:
        raise ValueError(f"not a valid BIP-39 mnemonic: {error}") from None


def public_key_bytes(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class ChannelIdentity:
    """A participant's Ed25519 signing key and X25519 key-exchange key."""

    def __init__(self, ed25519_private: bytes):
        self._signing_key = Ed25519PrivateKey.from_private_bytes(ed25519_private)
        exchange_secret = HKDF(hashes.SHA256(), 32, salt=None, info=_EXCHANGE_KEY_INFO).derive(ed25519_private)
        self._exchange_key = X25519PrivateKey.from_private_bytes(exchange_secret)
        self.public_key = public_key_bytes(self._signing_key)
        self.exchange_public_key = public_key_bytes(self._exchange_key)

    @classmethod
    def from_mnemonic(cls, mnemonic: str, account: int = 0, index: int = 0) -> ChannelIdentity:
        return cls(slip10_derive(mnemonic_to_seed(mnemonic), iota_path(account, index)).private_key)

    @classmethod
    def generate(cls) -> ChannelIdentity:
        return cls(os.urandom(32))

    def sign(self, data: bytes) -> bytes:
        return self._signing_key.sign(data)

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key itself, for a library that signs with it (the JOSE credentials)."""
        return self._signing_key

    def exchange(self, peer_public_key: bytes) -> bytes:
        return self._exchange_key.exchange(X25519PublicKey.from_public_bytes(peer_public_key))

    def iota_address(self, bech32_hrp: str = "iota") -> str:
        """The Stardust Ed25519 address of the signing key (what the wallet shows)."""
        from iota_sdk import HexStr, Utils

        return Utils.hex_public_key_to_bech32_address(HexStr("0x" + self.public_key.hex()), bech32_hrp)

    def __repr__(self) -> str:
        return f"ChannelIdentity({self.public_key.hex()[:16]}...)"
