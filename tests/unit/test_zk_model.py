"""The quantized digits MLP: accuracy on the held-out split, the integer forward pass's rules
(floor rescale, ReLU, first-maximum argmax), the model's int4 / int16 bounds, and the commitments."""

import hashlib
import json

import pytest

from joynet.zk import (
    SNARK_SCALAR_FIELD, Inference, ModelError, QuantizedMLP, input_commitment, output_commitment,
    pack_bytes, pack_nibbles, poseidon, to_bytes32, weights_commitment,
)
from joynet.zk.commitments import chain_chunks, poseidon_chain
from joynet.zk.digits import accuracy, load_split
from joynet.zk.model import DEFAULT_MODEL, MODEL_DIR

MANIFEST = json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def held_out():
    _, pixels, _, labels = load_split()
    return pixels, labels


def blank_model(**overrides) -> QuantizedMLP:
    """All-zero weights and biases, with the given fields replaced."""
    fields = {"w1": [[0] * 64 for _ in range(16)], "b1": [0] * 16, "w2": [[0] * 16 for _ in range(10)], "b2": [0] * 10}
    fields.update(overrides)
    return QuantizedMLP(w1=tuple(map(tuple, fields["w1"])), b1=tuple(fields["b1"]),
                        w2=tuple(map(tuple, fields["w2"])), b2=tuple(fields["b2"]))


def test_quantized_model__held_out_split__at_least_90_percent_accurate(model, held_out):
    measured = accuracy(model, *held_out)
    assert measured >= 0.90
    assert measured == MANIFEST["quantized_accuracy_held_out"]
    assert MANIFEST["float_accuracy_held_out"] >= 0.90


def test_model_file__committed__matches_manifest_hash(model):
    assert hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest() == MANIFEST["sha256"]["model.json"]
    assert "0x" + to_bytes32(weights_commitment(model)).hex() == MANIFEST["weights_commitment"]


@pytest.mark.parametrize("acc, hidden", [(0, 0), (3, 0), (4, 1), (7, 1), (8, 2), (1001, 250), (-1, 0), (-4, 0), (-5, 0)])
def test_hidden_layer__bias_only__floors_by_4_then_relu(acc, hidden):
    model = blank_model(b1=[acc] + [0] * 15)
    assert model.hidden_layer([0] * 64)[0] == hidden


def test_forward__hidden_times_weights__gives_logits():
    w1 = [[0] * 64 for _ in range(16)]
    w1[0][5] = 3  # acc1[0] = 3 * pixel 5 + 10
    w2 = [[0] * 16 for _ in range(10)]
    w2[7][0], w2[2][0] = -2, 5
    model = blank_model(w1=w1, b1=[-45] + [0] * 15, w2=w2, b2=[1, 0, 0, 0, 0, 0, 0, 0, 0, -4])
    pixels = [0] * 64
    pixels[5] = 16  # acc1 = 3 -> hidden 0
    assert model.forward(pixels) == Inference(label=0, logits=(1, 0, 0, 0, 0, 0, 0, 0, 0, -4))
    model = blank_model(w1=w1, b1=[-36] + [0] * 15, w2=w2, b2=[1, 0, 0, 0, 0, 0, 0, 0, 0, -4])
    pixels[5] = 16  # acc1 = 12 -> hidden 3
    assert model.forward(pixels) == Inference(label=2, logits=(1, 0, 15, 0, 0, 0, 0, -6, 0, -4))


def test_forward__tied_maximum__picks_lowest_index():
    assert blank_model(b2=[3, 9, 1, 9, 9, 0, 0, 0, 0, 9]).forward([0] * 64).label == 1


@pytest.mark.parametrize("pixels, message", [
    ([0] * 63, "expected 64 pixels"),
    ([0] * 65, "expected 64 pixels"),
    ([17] + [0] * 63, "pixel 0"),
    ([0] * 63 + [-1], "pixel 63"),
    ([0.5] + [0] * 63, "pixel 0"),
])
def test_forward__pixels_outside_the_image_format__raise(model, pixels, message):
    with pytest.raises(ModelError, match=message):
        model.forward(pixels)


@pytest.mark.parametrize("field, value", [("w1", 8), ("w1", -9), ("w2", 200), ("b1", 2**15), ("b2", -(2**15) - 1)])
def test_model__value_outside_int4_or_int16__is_rejected(field, value):
    shapes = {"w1": [[0] * 64 for _ in range(16)], "b1": [0] * 16, "w2": [[0] * 16 for _ in range(10)], "b2": [0] * 10}
    target = shapes[field]
    if isinstance(target[0], list):
        target[0][0] = value
    else:
        target[0] = value
    with pytest.raises(ModelError, match=field):
        blank_model(**{field: target})


def test_weight_nibbles__layout__offset_binary_little_endian():
    w1 = [[0] * 64 for _ in range(16)]
    w1[0][0], w1[0][1] = -8, 7
    model = blank_model(w1=w1, b1=[-2] + [0] * 15, b2=[0] * 9 + [0x1234])
    data = model.weight_nibbles()
    assert len(data) == 16 * 64 + 4 * 16 + 10 * 16 + 4 * 10 == 1288
    assert data[:3] == [0, 15, 8]
    assert data[1024:1028] == [0xE, 0xF, 0xF, 0x7]  # -2 + 2**15 = 0x7FFE
    assert data[-4:] == [0x4, 0x3, 0x2, 0x9]  # 0x1234 + 2**15 = 0x9234


def test_pack_nibbles__63_per_element__little_endian():
    nibbles = [i % 16 for i in range(130)]
    elements = pack_nibbles(nibbles)
    assert len(elements) == 3
    assert elements[0] == sum(n << (4 * k) for k, n in enumerate(nibbles[:63]))
    assert elements[2] == nibbles[126] + (nibbles[127] << 4) + (nibbles[128] << 8) + (nibbles[129] << 12)
    assert pack_nibbles([15] * 63) == [2**252 - 1] and 2**252 < SNARK_SCALAR_FIELD


def test_pack_bytes__31_per_element__little_endian():
    data = bytes(range(1, 63)) + b"\x07"
    elements = pack_bytes(data)
    assert elements == [int.from_bytes(data[:31], "little"), int.from_bytes(data[31:62], "little"), 7]
    assert all(e < 2**248 for e in elements)


def test_chain_chunks__twenty_one_elements__two_hashes():
    assert chain_chunks(21) == [16, 5]
    assert chain_chunks(40) == [16, 15, 9]
    assert chain_chunks(16) == [16]
    assert chain_chunks(3) == [3]


def test_weights_commitment__definition__poseidon_chain_of_packed_weights(model):
    elements = pack_nibbles(model.weight_nibbles())
    assert len(elements) == 21
    first = poseidon(elements[:16])
    assert weights_commitment(model) == poseidon([first, *elements[16:]]) == poseidon_chain(elements)


def test_weights_commitment__one_weight_changed__changes(model):
    w1 = [list(row) for row in model.w1]
    w1[3][7] += 1 if w1[3][7] < 7 else -1
    assert weights_commitment(blank_model(w1=w1, b1=model.b1, w2=model.w2, b2=model.b2)) != weights_commitment(model)


def test_input_commitment__salt__hides_and_binds(held_out):
    pixels = held_out[0][0].tolist()
    assert input_commitment(pixels, 1) != input_commitment(pixels, 2)
    assert input_commitment(pixels, 1) == poseidon([*pack_bytes(bytes(pixels)), 1])
    with pytest.raises(ValueError, match="salt"):
        input_commitment(pixels, SNARK_SCALAR_FIELD)


def test_output_commitment__any_logits__is_the_class():
    # The proof's outputBinding carries the class; the logits stay off chain.
    assert output_commitment(Inference(label=4, logits=(-1, 2, -3, 4, 5, 6, 7, 8, 9, 10))) == 4
    assert output_commitment(Inference(label=0, logits=(9, 2, -3, 4, 5, 6, 7, 8, 1, 0))) == 0
