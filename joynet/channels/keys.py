"""Channel keys from the IOTA wallet mnemonic.

IOTA wallets derive Ed25519 keys with SLIP-10 from the BIP-39 seed along
``m/44'/4218'/account'/change'/index'`` (every level hardened: SLIP-10 ed25519 has no normal
derivation). The BIP-39 seed comes from trezor's ``mnemonic`` (which also checks the words and
the checksum) and the SLIP-10 walk from trezor's ``slip10``, with no IOTA software involved; the
tests check the walk against the SLIP-10 spec's vectors and, where ``iota-sdk`` is installed (the
``iota`` extra), the key, signature and address against what it derives from the same mnemonic.

The X25519 key used to receive keyloads is derived from the Ed25519 private key with HKDF
(a separate key per purpose rather than converting the signing key to Montgomery form).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from mnemonic import Mnemonic
from slip10 import HARDENED_INDEX, SLIP10, SLIP10DerivationError

IOTA_COIN_TYPE = 4218
HARDENED = HARDENED_INDEX
_EXCHANGE_KEY_INFO = b"JoyNet channel X25519 key v1"
_BIP39 = Mnemonic("english")


@dataclass(frozen=True)
class ExtendedKey:
    private_key: bytes
    chain_code: bytes


def slip10_derive(seed: bytes, path: list[int]) -> ExtendedKey:
    """The SLIP-10 ed25519 key at ``path`` (hardened indexes only) from a BIP-39 seed."""
    try:
        node = SLIP10.from_seed(seed, curve_name="ed25519").get_child_from_path(path)
    except SLIP10DerivationError as error:
        raise ValueError(f"SLIP-10 ed25519 derives hardened children only (index >= 2**31): {error}") from None
    return ExtendedKey(bytes(node.privkey), bytes(node.chaincode))


def iota_path(account: int = 0, index: int = 0, change: int = 0) -> list[int]:
    return [HARDENED | level for level in (44, IOTA_COIN_TYPE, account, change, index)]


def mnemonic_to_seed(mnemonic: str) -> bytes:
    """The BIP-39 seed (no passphrase) of an English mnemonic; ValueError for an unknown word, a
    wrong number of words or a bad checksum."""
    words = " ".join(mnemonic.split())
    if not _BIP39.check(words):
        raise ValueError("not a valid BIP-39 mnemonic: an unknown word, a wrong word count or a bad checksum")
    return Mnemonic.to_seed(words)


def channel_mnemonic(path: str | Path) -> str:
    """The mnemonic kept in the file ``path``; a new one (24 words, from the OS's randomness) is
    written there first, readable by its owner only, when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(_BIP39.generate(256) + "\n")
    words = path.read_text().strip()
    mnemonic_to_seed(words)  # a file damaged by hand fails here, with its reason
    return words


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

    def open_sealed(self, sealed: bytes, suite, info: bytes) -> bytes:
        """Opens what an HPKE ``suite`` (X25519 KEM) sealed to this identity's exchange key."""
        return suite.decrypt(sealed, self._exchange_key, info)

    def iota_address(self, bech32_hrp: str = "iota") -> str:
        """The Stardust Ed25519 address of the signing key (what the wallet shows); needs the
        ``iota`` extra (``iota-sdk``)."""
        try:
            from iota_sdk import HexStr, Utils
        except ImportError:
            raise RuntimeError("an IOTA address needs iota-sdk: pip install 'joynet[iota]'") from None

        return Utils.hex_public_key_to_bech32_address(HexStr("0x" + self.public_key.hex()), bech32_hrp)

    def __repr__(self) -> str:
        return f"ChannelIdentity({self.public_key.hex()[:16]}...)"
