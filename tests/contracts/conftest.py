"""Fixtures of the zero-knowledge tests: a ZK model of the committed digits circuit, requests of
it with a salted input commitment, a held-out digit."""

import pytest
from eth_utils import keccak
from helpers.zk_requests import PRICE, SALT

from joynet.chain.marketplace import registration_commitment
from joynet.zk import circuit_id, input_commitment, to_bytes32, weights_commitment
from joynet.zk.digits import load_split


@pytest.fixture(scope="module")
def digit():
    """A held-out 8x8 image and its label."""
    _, pixels, _, labels = load_split()
    return pixels[3].tolist(), int(labels[3])


@pytest.fixture
def zk_model(marketplace, model_owner, model, operators, register_node):
    """Registers a ZK model (the committed circuit and weights); returns a function that does it
    for any quorum, weights commitment or circuit id."""

    def register(name="zk-digits", quorum=1, weights=None, circuit=None, nodes=1):
        model_id, salt = keccak(text=name), keccak(text=f"salt:{name}")
        marketplace.commitModelRegistration(registration_commitment(model_id, model_owner.address, salt), sender=model_owner)
        marketplace.registerModel(
            model_id,
            f"ipfs://bafy{name}",
            weights or to_bytes32(weights_commitment(model)),
            PRICE,
            (quorum, circuit or circuit_id(), 0, False),
            b"\0" * 32,
            salt,
            sender=model_owner,
        )
        for operator in operators[:nodes]:
            register_node(operator, [model_id])
        return model_id

    return register


@pytest.fixture
def by_address(operators):
    return {operator.address: operator for operator in operators}


@pytest.fixture
def zk_request(request_inference, digit):
    """Requests an inference of `model_id` on the digit with a salted input commitment."""

    def make(model_id, pixels=None, assign=True):
        pixels = pixels or digit[0]
        return request_inference(model_id, input_commitment=to_bytes32(input_commitment(pixels, SALT)),
                                 assign=assign)

    return make
