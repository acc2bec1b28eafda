"""joynet.ZKProver off chain: the circuit's witness equals the Python forward pass bit for bit,
the circuit refuses inputs that break its constraints, proofs verify locally and only for their
own public signals, and bad arguments fail before any proving."""

import json

import pytest

import joynet.zk.prover as prover_module
from helpers import PROJECT_ROOT
from joynet import ZKProofError, ZKProver
from joynet.zk import (
    PUBLIC_INPUTS, SNARK_SCALAR_FIELD, circuit_input, input_commitment, output_binding, request_binding,
)
from joynet.zk.digits import load_split
from joynet.zk.model import MODEL_DIR
from joynet.zk.prover import DEFAULT_CIRCUIT_DIR

NODE = "0x" + "ab" * 20
MANIFEST = json.loads((DEFAULT_CIRCUIT_DIR / "manifest.json").read_text())


def signed(value: int) -> int:
    """A field element read as the signed integer it encodes."""
    value %= SNARK_SCALAR_FIELD
    return value - SNARK_SCALAR_FIELD if value > SNARK_SCALAR_FIELD // 2 else value


@pytest.fixture(scope="module")
def one_of_each_digit():
    """The first held-out image of each class 0..9."""
    _, pixels, _, labels = load_split()
    return [pixels[list(labels).index(digit)].tolist() for digit in range(10)]


@pytest.fixture(scope="module")
def proof(prover, model, one_of_each_digit):
    return prover.prove(model, one_of_each_digit[3], salt=12345, request_id=42, node=NODE)


def test_witness__every_held_out_digit__equals_python_forward_pass(prover, model):
    """All 450 held-out images: the circuit's hidden layer, logits and class are the quantized
    Python model's, bit for bit (one warm prover; the witness alone, no proof)."""
    _, pixels, _, _ = load_split()
    wires = MANIFEST["witness_wires"]
    template = circuit_input(model, pixels[0].tolist(), 7, 1, NODE)
    for image in pixels.tolist():
        inference = model.forward(image)
        # The circuit checks the commitments too: only the input- and output-dependent ones change.
        signals = {**template, "pixels": [str(p) for p in image],
                   "inputCommitment": str(input_commitment(image, 7)),
                   "outputBinding": str(output_binding(inference.label, 1, NODE))}
        witness = prover.witness(signals)
        assert [witness[wire] for wire in wires["hidden"]] == model.hidden_layer(image)
        logits = tuple(signed(witness[b] + sum(witness[w] for w in row)) for b, row in zip(wires["b2"], wires["products2"]))
        assert logits == inference.logits
        assert witness[wires["outputBinding"]] >> 224 == inference.label
    assert len(pixels) == 450


def test_witness__output_binding_of_another_class__refused_by_circuit(prover, model, one_of_each_digit):
    signals = circuit_input(model, one_of_each_digit[0], 7, 1, NODE)
    inference = model.forward(one_of_each_digit[0])
    assert int(signals["outputBinding"]) == output_binding(inference.label, 1, NODE)
    lie = output_binding((inference.label + 1) % 10, 1, NODE)
    with pytest.raises(ZKProofError, match="Assert Failed"):
        prover.witness({**signals, "outputBinding": str(lie)})


def test_witness__class_moved_into_request_node__refused_by_circuit(prover, model, one_of_each_digit):
    # The chain computes outputBinding = c' * 2^224 + requestNode for a claimed class c'. A prover
    # whose network gives c can balance the sum with requestNode + (c' - c) * 2^224 (mod r); the
    # 224-bit range check on requestNode must refuse that, for c' above and below c.
    signals = circuit_input(model, one_of_each_digit[0], 7, 1, NODE)
    label = model.forward(one_of_each_digit[0]).label
    for claimed in ((label + 1) % 10, (label + 9) % 10):
        binding = output_binding(claimed, 1, NODE)
        balanced = (binding - label * 2**224) % SNARK_SCALAR_FIELD
        with pytest.raises(ZKProofError, match="Assert Failed"):
            prover.witness({**signals, "outputBinding": str(binding), "requestNode": str(balanced)})


@pytest.mark.parametrize("signal, value", [("pixels", 17), ("w1", 128)])
def test_witness__value_outside_its_range__refused_by_circuit(prover, model, one_of_each_digit, signal, value):
    signals = circuit_input(model, one_of_each_digit[0], 7, 1, NODE)
    if signal == "pixels":
        signals["pixels"] = [str(value)] + signals["pixels"][1:]
    else:
        signals["w1"] = [[str(value)] + signals["w1"][0][1:]] + signals["w1"][1:]
    with pytest.raises(ZKProofError, match="Assert Failed"):
        prover.witness(signals)


def test_prove__digit__returns_output_commitments_and_public_signals_in_order(proof, model, one_of_each_digit):
    assert PUBLIC_INPUTS == ("weightsCommitment", "inputCommitment", "outputBinding")
    assert (proof.label, proof.logits) == (3, model.forward(one_of_each_digit[3]).logits)
    assert proof.output_commitment == (3).to_bytes(32, "big")
    assert proof.public_signals == (
        int.from_bytes(proof.weights_commitment, "big"), int.from_bytes(proof.input_commitment, "big"),
        3 * 2**224 + 42 * 2**160 + int(NODE, 16))
    assert proof.public_signals[2] == output_binding(3, 42, NODE)
    assert "0x" + proof.weights_commitment.hex() == json.loads(
        (MODEL_DIR / "manifest.json").read_text())["weights_commitment"]
    assert len(proof.calldata) == 8 * 32


def test_verify__own_signals__true_and_any_other_signal__false(prover, proof):
    assert prover.verify(proof.public_signals, proof.proof)
    for index in range(len(PUBLIC_INPUTS)):
        altered = list(proof.public_signals)
        altered[index] = (altered[index] + 1) % SNARK_SCALAR_FIELD
        assert not prover.verify(altered, proof.proof), PUBLIC_INPUTS[index]


def test_verification_key__every_public_input__has_a_nonzero_point():
    vkey = json.loads((DEFAULT_CIRCUIT_DIR / "verification_key.json").read_text())
    assert vkey["nPublic"] == 3
    assert all(point != ["0", "1", "0"] for point in vkey["IC"])


@pytest.mark.parametrize("change, message", [
    ({"pixels": [0] * 63}, "64 pixels"),
    ({"pixels": [16] * 63 + [17]}, "pixel 63"),
    ({"salt": SNARK_SCALAR_FIELD}, "salt"),
    ({"salt": -1}, "salt"),
    ({"request_id": -1}, "request_id"),
    ({"request_id": SNARK_SCALAR_FIELD}, "request_id"),
    ({"request_id": 2**64}, "request_id"),
    ({"node": "0x1234"}, "address"),
    ({"node": 5}, "address"),
])
def test_prove__bad_argument__raises_value_error(prover, model, change, message):
    arguments = {"pixels": [0] * 64, "salt": 1, "request_id": 1, "node": NODE, **change}
    with pytest.raises(ValueError, match=message):
        prover.prove(model, **arguments)


def test_prover__missing_artefacts__raises(tmp_path):
    with pytest.raises(ZKProofError, match="digits_mlp.zkey"):
        ZKProver(circuit_dir=tmp_path)


def test_prover__verification_key_of_another_setup__refuses_to_start(tmp_path):
    for name in ("digits_mlp.wasm", "digits_mlp.zkey"):
        (tmp_path / name).symlink_to(DEFAULT_CIRCUIT_DIR / name)
    vkey = json.loads((DEFAULT_CIRCUIT_DIR / "verification_key.json").read_text())
    vkey["vk_delta_2"] = vkey["vk_gamma_2"]
    (tmp_path / "verification_key.json").write_text(json.dumps(vkey))
    with pytest.raises(ZKProofError, match="does not match the verification key"):
        ZKProver(circuit_dir=tmp_path)


def test_close__then_prove__raises_and_worker_is_gone(model):
    prover = ZKProver(backend="snarkjs")
    prover.close()
    assert prover._worker.process.poll() == 0
    with pytest.raises(ZKProofError, match="not running"):
        prover.prove(model, [0] * 64, 1, 1, NODE)


def test_worker__outside_the_checkout__finds_snarkjs_through_joynet_node_modules_or_names_the_variable(
        proof, tmp_path, monkeypatch):
    # The worker as an installed package has it: no node_modules above its directory.
    worker = tmp_path / "site-packages" / "prover_worker.js"
    worker.parent.mkdir()
    worker.write_text((PROJECT_ROOT / "joynet" / "zk" / "prover_worker.js").read_text())
    monkeypatch.setattr(prover_module, "WORKER", worker)
    monkeypatch.setenv("JOYNET_NODE_MODULES", str(tmp_path / "empty"))
    with pytest.raises(ZKProofError, match=r"set \$JOYNET_NODE_MODULES to a node_modules directory holding snarkjs"):
        ZKProver()
    monkeypatch.setenv("JOYNET_NODE_MODULES", str(PROJECT_ROOT / "node_modules"))
    with ZKProver() as installed:
        assert installed.verify(proof.public_signals, proof.proof)
