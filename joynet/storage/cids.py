"""CIDs of blocks: computing them, parsing them, and checking a block against its CID.

CID parsing and formatting come from py-cid (already pinned through ethpm-types); hashing is
sha2-256, kubo's default and the only function this store accepts, so every block can be
re-hashed on read.
"""

import hashlib
from typing import TypeAlias

import cid as pycid

from joynet.storage.errors import CIDMismatchError, InvalidCIDError

DAG_PB = "dag-pb"
RAW = "raw"

_SHA2_256 = 0x12
_SHA2_256_LENGTH = 32

CID: TypeAlias = pycid.CIDv0 | pycid.CIDv1


def sha2_256_multihash(data: bytes) -> bytes:
    return bytes([_SHA2_256, _SHA2_256_LENGTH]) + hashlib.sha256(data).digest()


def cid_of_block(data: bytes, codec: str, cid_version: int) -> CID:
    return pycid.make_cid(cid_version, codec, sha2_256_multihash(data))


def cid_text(cid: CID) -> str:
    """The form kubo prints: base58btc for CIDv0, base32 for CIDv1."""
    return str(cid) if cid.version == 0 else cid.encode("base32").decode("ascii")


def parse_cid(text: str) -> CID:
    """A CID from its text form (any multibase py-cid knows); raises InvalidCIDError."""
    try:
        parsed = pycid.from_string(text.strip())
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidCIDError(f"not a valid CID: {text!r} ({error})") from None
    if parsed.multihash[:2] != bytes([_SHA2_256, _SHA2_256_LENGTH]):
        raise InvalidCIDError(f"{text}: only sha2-256 CIDs can be verified by this store")
    return parsed


def cid_from_bytes(binary: bytes) -> CID:
    """A CID from its binary form, as dag-pb links hold it (py-cid's from_bytes would read a
    binary CIDv0 as base58 text)."""
    if binary[:2] == bytes([_SHA2_256, _SHA2_256_LENGTH]):
        return pycid.make_cid(0, DAG_PB, binary)
    return pycid.from_bytes(binary)


def verify_block(cid: CID, data: bytes) -> bytes:
    """Returns ``data`` if it hashes to ``cid``; raises CIDMismatchError otherwise."""
    if sha2_256_multihash(data) != cid.multihash:
        raise CIDMismatchError(f"block {cid_text(cid)}: the data does not hash to its CID; refused")
    return data
