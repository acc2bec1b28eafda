"""The commitments a digits-MLP proof binds, computed as the circuit computes them.

    pack(data)          = [int.from_bytes(data[i:i+31], "little") for i in 0, 31, 62, ...]
                          (31 bytes per element, so each is below 2**248 < r; the last may be shorter)
    pack_nibbles(n)     = [sum(n[i+k] * 16**k for k < 63) for i in 0, 63, 126, ...]
                          (63 nibbles per element, so each is below 2**252 < r; the last may be shorter)
    chain(elements)     = h = Poseidon(e[0..15]); then h = Poseidon(h, next <= 15 elements) until none are left
    weightsCommitment   = chain(pack_nibbles(model.weight_nibbles()))  (1,288 nibbles -> 21 elements -> 2 hashes)
    inputCommitment     = Poseidon(pack(pixels as 64 bytes) + [salt])  (3 elements + salt: Poseidon(4))
    output              = the class (0..9), which the proof's outputBinding public input carries
                          (class * 2**224 + requestId * 2**160 + node; see joynet.zk.prover)

Both packings are injective: every byte (nibble) is range-checked to 0..255 (0..15) in the
circuit, an element holds at most 248 (252) bits, below r > 2**253, so no element wraps around the
field, and the number of elements and their widths are fixed by the architecture.
Every commitment (and the output) is a field element below r, exposed on chain as a big-endian bytes32.
"""

import secrets

from joynet.zk.model import Inference, QuantizedMLP, check_pixels
from joynet.zk.poseidon import SNARK_SCALAR_FIELD, poseidon

BYTES_PER_ELEMENT = 31
NIBBLES_PER_ELEMENT = 63
CHAIN_ARITY = 16  # the widest circomlib Poseidon


def pack_bytes(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + BYTES_PER_ELEMENT], "little") for i in range(0, len(data), BYTES_PER_ELEMENT)]


def pack_nibbles(nibbles: list[int]) -> list[int]:
    return [
        sum(n << (4 * k) for k, n in enumerate(nibbles[i : i + NIBBLES_PER_ELEMENT]))
        for i in range(0, len(nibbles), NIBBLES_PER_ELEMENT)
    ]


def chain_chunks(count: int) -> list[int]:
    """How many new elements each Poseidon of the chain absorbs (the circuit uses the same split)."""
    chunks = [min(count, CHAIN_ARITY)]
    remaining = count - chunks[0]
    while remaining > 0:
        chunks.append(min(remaining, CHAIN_ARITY - 1))
        remaining -= chunks[-1]
    return chunks


def poseidon_chain(elements: list[int]) -> int:
    chunks = chain_chunks(len(elements))
    digest = poseidon(elements[: chunks[0]])
    start = chunks[0]
    for size in chunks[1:]:
        digest = poseidon([digest, *elements[start : start + size]])
        start += size
    return digest


def weights_commitment(model: QuantizedMLP) -> int:
    return poseidon_chain(pack_nibbles(model.weight_nibbles()))


def check_salt(salt: int) -> int:
    if not isinstance(salt, int) or isinstance(salt, bool) or not 0 <= salt < SNARK_SCALAR_FIELD:
        raise ValueError(f"salt must be an integer field element in [0, r), got {salt!r}")
    return salt


def byte_input_commitment(values, salt: int) -> int:
    """A generated circuit's input commitment: chain(pack(the input's values as bytes) + [salt]).
    ValueError or TypeError for a value that is not an integer 0..255 (no circuit takes it)."""
    if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise TypeError("input values must be integers")
    return poseidon_chain([*pack_bytes(bytes(values)), check_salt(salt)])


def random_salt() -> int:
    """A uniformly random field element: the input commitment must not be brute-forceable from
    the few possible 8x8 images."""
    return secrets.randbelow(SNARK_SCALAR_FIELD)


def input_commitment(pixels, salt: int) -> int:
    return poseidon([*pack_bytes(bytes(check_pixels(pixels))), check_salt(salt)])


def output_commitment(inference: Inference) -> int:
    """What a ZK result commits to on chain: the class itself. The circuit proves it is the argmax
    of the committed network's logits on the committed input; the logits stay off chain."""
    return inference.label


def to_bytes32(value: int) -> bytes:
    return value.to_bytes(32, "big")
