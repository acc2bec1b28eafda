"""How the gateway describes a model's policy in ``GET /v1/models`` and in every receipt."""

import pytest

from joynet.chain.marketplace import model_key
from joynet.gateway.service import ExposedModel


def exposed(quorum=1, circuit_id=None, tolerant=False) -> ExposedModel:
    return ExposedModel(name="m", key=model_key("m"), owner="0x" + "11" * 20, price=1, quorum=quorum,
                        circuit_id=circuit_id, tolerant=tolerant, active=True, metadata_uri="ipfs://bafy",
                        metadata={"framework": "causal-lm"})


@pytest.mark.parametrize(
    "model, kind",
    [
        (exposed(circuit_id=b"\x01" * 32), "zk"),
        (exposed(quorum=3), "quorum"),
        (exposed(quorum=4, tolerant=True), "tolerant"),
    ],
)
def test_policy__registered_policy__named_with_its_quorum_and_circuit(model, kind):
    policy = model.policy()
    assert policy["kind"] == kind and policy["quorum"] == model.quorum
    assert policy["circuit_id"] == ("0x" + model.circuit_id.hex() if model.circuit_id else None)
