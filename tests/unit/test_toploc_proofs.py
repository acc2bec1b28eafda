"""joynet.inference.toploc without a model: block proofs byte-identical to PyPI toploc 0.1.6's
(reference values computed by toploc's own code, built from its sources against the pinned torch),
the same verification figures, the polynomial through its points, and malformed proofs and
thresholds refused."""

import hashlib
import random

import numpy as np
import pytest
import torch

from joynet.inference.toploc import (
    PRIME,
    ProofSettings,
    Thresholds,
    block_proof,
    blocks_of,
    build_proof,
    check_block,
    compare,
    evaluate,
    interpolate,
    split_proof,
)


def reference_block(positions: int, width: int, top_k: int, salt: int) -> torch.Tensor:
    """Small values everywhere, top_k distinct large ones at scattered places (no ties at the top)."""
    count = positions * width
    flat = ((torch.arange(count, dtype=torch.float64) * 7919 + salt) % 10007) / 10007 - 0.5
    for j in range(top_k):
        flat[(j * 7919 + salt) % count] = (-1) ** j * (1 + j / 8)
    return flat.view(positions, width).to(torch.bfloat16)


def jittered(block: torch.Tensor) -> torch.Tensor:
    scale = 1 + ((torch.arange(block.numel(), dtype=torch.float64).view(block.shape) % 13) - 6) / 300
    return (block.double() * scale).to(torch.bfloat16)


def test_block_proof__toploc_reference_blocks__byte_identical():
    small = block_proof(reference_block(5, 16, 4, salt=1), top_k=4)
    assert small.hex() == "ffd9bf9056d6ea003ecc"  # toploc: ProofPoly.from_points_tensor(...).to_bytes()
    large = block_proof(reference_block(40, 576, 128, salt=2), top_k=128)
    assert len(large) == ProofSettings().block_bytes == 258
    assert hashlib.sha256(large).hexdigest() == "c29bf0872bec4b6633c1e247d1028e8d4284c3751d5960e12985110f19d75710"


@pytest.mark.parametrize("shape, top_k, salt, expected", [
    ((5, 16), 4, 1, (1, 10 / 3, 3.0)),  # toploc's verify_proofs_bytes on the same blocks
    ((40, 576), 128, 2, (4, 243 / 124, 2.0)),
])
def test_check_block__jittered_reference_block__toploc_verification_figures(shape, top_k, salt, expected):
    block = reference_block(*shape, top_k, salt)
    check = check_block(jittered(block), block_proof(block, top_k), top_k)
    assert (check.exponent_mismatches, check.mantissa_error_mean, check.mantissa_error_median) == pytest.approx(expected)


def test_check_block__the_block_itself__no_error():
    block = reference_block(40, 576, 128, salt=3)
    check = check_block(block, block_proof(block, 128), 128)
    assert (check.exponent_mismatches, check.mantissa_error_mean, check.mantissa_error_median) == (0, 0.0, 0.0)


def test_interpolate__random_points__polynomial_through_every_point():
    rng = random.Random(7)
    x = np.array(rng.sample(range(PRIME), 128), dtype=np.int64)
    y = np.array([rng.randrange(1 << 16) for _ in range(128)], dtype=np.int64)
    coefficients = interpolate(x, y)
    assert len(coefficients) == 128 and all(0 <= c < PRIME for c in coefficients)
    assert evaluate(coefficients, x).tolist() == (y % PRIME).tolist()


def test_build_proof__70_positions__three_blocks_of_32_32_6():
    states = torch.randn(70, 576, generator=torch.Generator().manual_seed(1))
    settings = ProofSettings(block_tokens=32, top_k=128)
    assert [block.shape[0] for block in blocks_of(states, settings)] == [32, 32, 6]
    proof = build_proof(states, settings)
    assert len(split_proof(proof, settings)) == 3
    assert all(check.exponent_mismatches == 0 for check in compare(states, proof, settings))


@pytest.mark.parametrize("proof", [b"", b"\x00" * 257, "ff" * 258])
def test_split_proof__not_whole_blocks__value_error(proof):
    with pytest.raises(ValueError, match="258-byte blocks"):
        split_proof(proof, ProofSettings())


def test_compare__proof_of_another_length__value_error():
    states = torch.randn(40, 576, generator=torch.Generator().manual_seed(2))
    proof = build_proof(states[:20])
    with pytest.raises(ValueError, match="1 blocks where the answer has 2"):
        compare(states, proof)


@pytest.mark.parametrize("section", [{"maxExponentMismatches": -1}, {"maxLogitGap": "1"}, {"other": 1}, []])
def test_thresholds_from_metadata__malformed__value_error(section):
    with pytest.raises(ValueError):
        Thresholds.from_metadata(section)


def test_thresholds_from_metadata__partial__defaults_for_the_rest():
    thresholds = Thresholds.from_metadata({"maxMantissaErrorMean": 7})
    assert thresholds.max_mantissa_error_mean == 7
    assert thresholds.max_exponent_mismatches == Thresholds().max_exponent_mismatches
