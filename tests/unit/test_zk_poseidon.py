"""joynet.zk.poseidon equals circomlibjs's Poseidon (its default and its reference
implementation), and the weights commitment's chain equals the same chain built in circomlibjs.
The vectors come from running circomlibjs (tests/helpers/poseidon_circomlibjs.js) in this test."""

import json
import random
import subprocess

import pytest

from helpers import PROJECT_ROOT
from joynet.zk import SNARK_SCALAR_FIELD, QuantizedMLP, pack_nibbles, poseidon, weights_commitment
from joynet.zk.commitments import poseidon_chain
from joynet.zk.poseidon import supported_arities

VECTORS_SCRIPT = PROJECT_ROOT / "tests" / "helpers" / "poseidon_circomlibjs.js"
R = SNARK_SCALAR_FIELD


def circomlibjs(hashes, chains):
    request = {"hashes": [[str(x) for x in case] for case in hashes],
               "chains": [[str(x) for x in chain] for chain in chains]}
    result = subprocess.run(["node", str(VECTORS_SCRIPT)], input=json.dumps(request), capture_output=True,
                            text=True, check=True, cwd=VECTORS_SCRIPT.parents[2], timeout=120)
    answer = json.loads(result.stdout)
    return ([int(x) for x in answer["wasm"]], [int(x) for x in answer["reference"]],
            [int(x) for x in answer["chains"]])


@pytest.fixture(scope="module")
def cases():
    rng = random.Random(2024)
    hashes = []
    for arity in supported_arities():
        hashes += [list(range(1, arity + 1)), [0] * arity, [R - 1] * arity, [rng.randrange(R) for _ in range(arity)]]
    model = QuantizedMLP.load()
    chains = [pack_nibbles(model.weight_nibbles()), [rng.randrange(R) for _ in range(16)], [rng.randrange(R) for _ in range(31)]]
    return hashes, chains


@pytest.fixture(scope="module")
def vectors(cases):
    return circomlibjs(*cases)


def test_poseidon__known_vector__matches_circomlib():
    # circomlib's own test vector for Poseidon([1, 2]).
    assert poseidon([1, 2]) == 0x115CC0F5E7D690413DF64C6B9662E9CF2A3617F2743245519E19607A4417189A


def test_poseidon__every_supported_arity__equals_circomlibjs(cases, vectors):
    hashes, _ = cases
    wasm, reference, _ = vectors
    assert {len(case) for case in hashes} == set(range(1, 17))  # every Poseidon(n) of circomlib
    ours = [poseidon(case) for case in hashes]
    assert ours == wasm
    assert ours == reference


def test_weights_commitment__chain__equals_circomlibjs_chain(cases, vectors):
    _, chains = cases
    *_, theirs = vectors
    assert weights_commitment(QuantizedMLP.load()) == theirs[0]
    assert [poseidon_chain(chain) for chain in chains] == theirs


@pytest.mark.parametrize("inputs, message", [([1, R], "field element"), ([-1, 2], "field element"), ([1] * 17, "not supported"), ([], "not supported")])
def test_poseidon__bad_inputs__raise(inputs, message):
    with pytest.raises(ValueError, match=message):
        poseidon(inputs)
