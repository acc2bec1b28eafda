"""The tolerant check of a language model's answer (the TOPLOC method, arXiv 2501.16007).

One node generates; a validator re-runs only the prefill (one forward pass over the prompt and the
claimed tokens, far cheaper than generating them) and compares what it computes with what the node
committed to, within thresholds that absorb the last-bit differences of another CPU, thread count
or floating-point type, but not another model, prompt or continuation.

**The activation proof** (generator side). The final-layer hidden states (after the last norm, the
vectors the output head reads) of every position of prompt + generated tokens, rounded to
bfloat16, are cut into blocks of ``block_tokens`` (32) positions from the first. Of each block
(flattened) the ``top_k`` (128) values of largest magnitude are kept, as points (flat index,
bfloat16 bits) through which a polynomial modulo the prime 65,497 is interpolated; the block's
proof is that polynomial's coefficients: 2 bytes of modulus (the largest number <= 65,497 under
which the block's indices stay distinct) then ``top_k`` coefficients of 2 bytes, big-endian. The
proof is the blocks' proofs concatenated (258 bytes per block with k = 128). A block's proof is
PyPI ``toploc`` 0.1.6's ``ProofPoly`` format byte for byte; the blocks differ from toploc's layout
(the whole prompt as one block, then blocks of generated positions): blocks of positions anchored
at the first one also catch a prompt of another length (every block then holds other positions),
which toploc's layout lets through when the answer is alike. Measured on SmolLM2 with the prompts
of bench/llm_validation.py: answers to a prompt one token longer or shorter went from 17-45
exponent mismatches (toploc's layout) to 89-114 (this one); honest answers stayed alike (at worst
11 and 10).

**The check** (validator side, :func:`validate`): the output must be one the runtime could have
produced (token ids in the vocabulary, no end-of-sequence token but the last, ``finish_reason``
``stop`` exactly when the last token ends the sequence and ``length`` exactly when the limit was
reached, ``text`` the decoding of the tokens). One prefill over the prompt (rebuilt from the input
with the model's chat template) and the claimed tokens then gives (1) every block's top-k values,
which the claimed polynomial must reproduce: the bfloat16 exponents may differ at no more than
``max_exponent_mismatches`` of the k points, and where they agree the mantissas (7 bits) may differ
by at most ``max_mantissa_error_mean`` on average and ``max_mantissa_error_median`` at the median;
(2) every claimed token's logit, which must be within ``max_logit_gap`` of the largest one at its
position (greedy decoding takes the largest; the gap tolerates near-ties that another machine
breaks the other way). The activations alone do not say that the tokens were the greedy ones: a node
could prove the activations of any continuation it likes, hence (2).

Why not PyPI ``toploc`` itself: its wheel's compiled extension (which every function of the package
imports, ``toploc.C.csrc.poly``) was built against an older torch and does not load with the pinned
torch 2.13 (``undefined symbol ... TensorBase14const_data_ptr``), and building it from the source
distribution needs a C++ toolchain and torch's headers at install time on every node. The algorithm
is small, so it is written here with numpy, in toploc's proof format: compiled from toploc 0.1.6's
own sources against torch 2.13 once, toploc's ``build_proofs_bytes`` gave byte-identical proofs and
its verification the same figures; the unit tests pin proofs and figures that toploc's own code
computed on fixed blocks.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from joynet.inference.runtimes.language_model import LanguageModelRuntime

PRIME = 65497  # toploc's modulus, a prime below 2**16: coefficients fit 2 bytes
EXPONENT_MASK, EXPONENT_SHIFT, MANTISSA_MASK = 0x7F80, 7, 0x007F  # bfloat16: 1 sign, 8 exponent, 7 mantissa
DEFAULT_BLOCK_TOKENS = 32
DEFAULT_TOP_K = 128


@dataclass(frozen=True)
class ProofSettings:
    block_tokens: int = DEFAULT_BLOCK_TOKENS  # generated positions per block
    top_k: int = DEFAULT_TOP_K  # values kept per block

    @property
    def block_bytes(self) -> int:
        return 2 + 2 * self.top_k


@dataclass(frozen=True)
class Thresholds:
    """Acceptance bounds; each figure measures an error (accepted at or below the bound).

    Calibrated on SmolLM2-135M-Instruct (bench/llm_validation.py, 32-token answers to 11 prompts):
    honest answers re-checked with another thread count or with bfloat16 against float32 reached at
    worst 10 exponent mismatches, a mantissa error mean of 3.1 and median of 2, a logit gap of 0.26;
    the same model with 2 % weight noise never fell below a mean of 6.7 and a median of 4, its int8
    quantization below 63 mismatches, a token changed at random above a gap of 13."""

    max_exponent_mismatches: int = 20  # of top_k points per block
    max_mantissa_error_mean: float = 5.0  # bfloat16 mantissa units (0..127)
    max_mantissa_error_median: float = 3.0
    max_logit_gap: float = 1.0  # how far below the largest logit a claimed token's may be

    @classmethod
    def from_metadata(cls, section: Any) -> Thresholds:
        """``{"maxExponentMismatches", "maxMantissaErrorMean", "maxMantissaErrorMedian",
        "maxLogitGap"}``, each optional; ValueError for anything else."""
        if section is None:
            return cls()
        names = {
            "maxExponentMismatches": "max_exponent_mismatches",
            "maxMantissaErrorMean": "max_mantissa_error_mean",
            "maxMantissaErrorMedian": "max_mantissa_error_median",
            "maxLogitGap": "max_logit_gap",
        }
        if not isinstance(section, dict) or not set(section) <= set(names):
            raise ValueError(f"thresholds must be an object of {', '.join(names)}")
        values: dict[str, Any] = {}
        for key, value in section.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            values[names[key]] = value
        return cls(**values)


@dataclass(frozen=True)
class BlockCheck:
    """One block's comparison (toploc's VerificationResult)."""

    exponent_mismatches: int
    mantissa_error_mean: float
    mantissa_error_median: float

    def within(self, thresholds: Thresholds) -> bool:
        return (
            self.exponent_mismatches <= thresholds.max_exponent_mismatches
            and self.mantissa_error_mean <= thresholds.max_mantissa_error_mean
            and self.mantissa_error_median <= thresholds.max_mantissa_error_median
        )


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: list[str]  # why not, empty when accepted
    blocks: list[BlockCheck] = field(default_factory=list)
    max_logit_gap: float | None = None  # None when the prefill was not reached
    seconds: float = 0.0  # the prefill and the comparison

    @property
    def max_exponent_mismatches(self) -> int | None:
        return max((block.exponent_mismatches for block in self.blocks), default=None)

    @property
    def max_mantissa_error_mean(self) -> float | None:
        return max((block.mantissa_error_mean for block in self.blocks), default=None)

    @property
    def max_mantissa_error_median(self) -> float | None:
        return max((block.mantissa_error_median for block in self.blocks), default=None)

    def figures(self) -> dict:
        """The measured figures, JSON-ready."""
        return {
            "accepted": self.accepted,
            "reasons": self.reasons,
            "max_exponent_mismatches": self.max_exponent_mismatches,
            "max_mantissa_error_mean": self.max_mantissa_error_mean,
            "max_mantissa_error_median": self.max_mantissa_error_median,
            "max_logit_gap": self.max_logit_gap,
            "seconds": self.seconds,
        }


# ---- toploc's polynomial proofs, in numpy ----


def _inverse(values: np.ndarray) -> np.ndarray:
    """Modular inverses modulo PRIME (Fermat), element-wise."""
    result, base, exponent = np.ones_like(values), values % PRIME, PRIME - 2
    while exponent:
        if exponent & 1:
            result = result * base % PRIME
        base = base * base % PRIME
        exponent >>= 1
    return result


def injective_modulus(indices: np.ndarray) -> int:
    """The largest m <= PRIME under which the indices stay distinct (toploc's choice)."""
    for modulus in range(PRIME, 0, -1):
        if np.unique(indices % modulus).size == indices.size:
            return modulus
    raise ValueError("no injective modulus")  # pragma: no cover - indices are distinct


def interpolate(x: np.ndarray, y: np.ndarray) -> list[int]:
    """The coefficients (ascending) of the polynomial through (x_i, y_i) modulo PRIME: Newton's
    divided differences, then expanded, as toploc computes them."""
    x, n = x.astype(np.int64) % PRIME, x.size
    differences = y.astype(np.int64) % PRIME
    for k in range(1, n):
        step = (differences[k:] - differences[k - 1 : -1]) % PRIME
        differences[k:] = step * _inverse(x[k:] - x[: n - k]) % PRIME
    coefficients = np.zeros(n, dtype=np.int64)
    factor = np.zeros(n + 1, dtype=np.int64)  # (x - x_0)...(x - x_{i-1}), ascending
    factor[0] = 1
    for i in range(n):
        coefficients[: i + 1] = (coefficients[: i + 1] + differences[i] * factor[: i + 1]) % PRIME
        shifted = np.zeros_like(factor)
        shifted[1 : i + 2] = factor[: i + 1]
        factor = (shifted + factor * (-x[i] % PRIME)) % PRIME
    return coefficients.tolist()


def evaluate(coefficients: list[int], x: np.ndarray) -> np.ndarray:
    """The polynomial at each x (Horner, modulo PRIME)."""
    x = x.astype(np.int64) % PRIME
    result = np.full(x.shape, coefficients[-1], dtype=np.int64)
    for coefficient in reversed(coefficients[:-1]):
        result = (result * x + coefficient) % PRIME
    return result


def _bits(values: torch.Tensor) -> np.ndarray:
    """The bfloat16 bit patterns (uint16 as int64)."""
    import torch

    return values.to(torch.bfloat16).view(torch.int16).numpy().astype(np.int64) & 0xFFFF


def block_proof(block: torch.Tensor, top_k: int) -> bytes:
    """toploc's proof of one block: its top-k values by magnitude as a polynomial."""
    flat = block.reshape(-1)
    indices = flat.abs().topk(top_k).indices
    x = indices.numpy().astype(np.int64)
    modulus = injective_modulus(x)
    coefficients = interpolate(x % modulus, _bits(flat[indices]))
    return modulus.to_bytes(2, "big") + b"".join(c.to_bytes(2, "big") for c in coefficients)


def check_block(block: torch.Tensor, proof: bytes, top_k: int) -> BlockCheck:
    """toploc's verification of one block against one block proof."""
    flat = block.reshape(-1)
    indices = flat.abs().topk(top_k).indices
    modulus = int.from_bytes(proof[:2], "big")
    coefficients = [int.from_bytes(proof[i : i + 2], "big") for i in range(2, len(proof) - 1, 2)]
    if modulus == 0 or not coefficients:
        return BlockCheck(top_k, float(2**64), float(2**64))
    claimed = evaluate(coefficients, indices.numpy().astype(np.int64) % modulus)
    actual = _bits(flat[indices])
    exponents_differ = (claimed & EXPONENT_MASK) >> EXPONENT_SHIFT != (actual & EXPONENT_MASK) >> EXPONENT_SHIFT
    errors = np.abs((claimed & MANTISSA_MASK) - (actual & MANTISSA_MASK))[~exponents_differ].tolist()
    if not errors:
        return BlockCheck(int(exponents_differ.sum()), float(2**64), float(2**64))
    return BlockCheck(int(exponents_differ.sum()), float(statistics.mean(errors)), float(statistics.median(errors)))


def blocks_of(states: torch.Tensor, settings: ProofSettings) -> list[torch.Tensor]:
    """The hidden states (positions x hidden size) cut into the proof's blocks of ``block_tokens``
    positions (the last one shorter)."""
    return [states[start : start + settings.block_tokens] for start in range(0, states.shape[0], settings.block_tokens)]


def build_proof(states: torch.Tensor, settings: ProofSettings = ProofSettings()) -> bytes:
    """The activation proof of these hidden states (every position of prompt + tokens)."""
    return b"".join(block_proof(block, settings.top_k) for block in blocks_of(states, settings))


def split_proof(proof: bytes, settings: ProofSettings) -> list[bytes]:
    """The block proofs of a proof; ValueError when it is not a whole number of blocks."""
    size = settings.block_bytes
    if not isinstance(proof, (bytes, bytearray)) or not proof or len(proof) % size:
        raise ValueError(f"an activation proof is a non-empty sequence of {size}-byte blocks")
    return [bytes(proof[i : i + size]) for i in range(0, len(proof), size)]


def compare(states: torch.Tensor, proof: bytes, settings: ProofSettings = ProofSettings()) -> list[BlockCheck]:
    """Each block of ``states`` checked against the claimed proof's; ValueError when the proof
    does not have one block per block of states."""
    blocks, claimed = blocks_of(states, settings), split_proof(proof, settings)
    if len(blocks) != len(claimed):
        raise ValueError(f"the proof has {len(claimed)} blocks where the answer has {len(blocks)}")
    return [check_block(block, block_proof, settings.top_k) for block, block_proof in zip(blocks, claimed, strict=True)]


# ---- the model-level API ----


def activation_proof(runtime: LanguageModelRuntime, prompt_ids: list[int], token_ids: list[int]) -> bytes:
    """The activation proof of ``token_ids`` after ``prompt_ids``, from one prefill (what
    ``runtime.run`` computes during generation, up to the last bits)."""
    states = runtime.hidden_states(list(prompt_ids) + list(token_ids))
    return build_proof(states, runtime.proof_settings)


def validate(
    runtime: LanguageModelRuntime,
    input_data: dict,
    output: dict,
    proof: bytes,
    thresholds: Thresholds | None = None,
) -> Verdict:
    """Accepts or rejects the claimed ``output`` of ``input_data`` with its activation ``proof``
    (see the module's docstring), re-running only the prefill on ``runtime``. Raises
    InvalidInputError for an input the runtime would refuse (then there is no answer to check)."""
    thresholds = thresholds or runtime.thresholds
    prompt_ids, limit = runtime.prompt_ids(input_data), runtime.token_limit(input_data)
    problems = runtime.output_problems(output, limit)
    if problems:
        return Verdict(False, problems)
    try:
        split_proof(proof, runtime.proof_settings)
    except ValueError as error:
        return Verdict(False, [str(error)])
    tokens = list(output["tokens"])
    started = time.perf_counter()
    states, logits = runtime.prefill(prompt_ids + tokens, logits_from=len(prompt_ids) - 1)
    try:
        checks = compare(states, proof, runtime.proof_settings)
    except ValueError as error:
        return Verdict(False, [str(error)])
    gaps = (logits.max(dim=-1).values - logits[range(len(tokens)), tokens]).tolist()
    seconds = time.perf_counter() - started
    reasons = [
        f"block {i}: {check.exponent_mismatches} exponent mismatches, mantissa error mean "
        f"{check.mantissa_error_mean:.2f} median {check.mantissa_error_median:.1f}"
        for i, check in enumerate(checks)
        if not check.within(thresholds)
    ]
    worst = max(gaps)
    if worst > thresholds.max_logit_gap:
        position = gaps.index(worst)
        reasons.append(f"token {position} ({tokens[position]}) is {worst:.3f} below the largest logit: not greedy")
    return Verdict(not reasons, reasons, checks, worst, seconds)
