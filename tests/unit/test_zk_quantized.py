"""The quantized model format: its forward pass against PyTorch, its bounds against every value
it computes, the digits MLP's commitments, and its refusals."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from joynet.zk.commitments import input_commitment, weights_commitment
from joynet.zk.digits import load_split
from joynet.zk.errors import ModelError
from joynet.zk.model import QuantizedMLP
from joynet.zk.quantized import FORMAT, QuantizedModel, from_digits_mlp


def small_cnn(seed: int = 0, pool: str = "maxpool2d") -> QuantizedModel:
    """1x6x6 inputs 0..15 -> conv 3x3 pad 1 (3 channels) -> relu -> pool 2 -> flatten -> dense 10."""
    rng = np.random.default_rng(seed)
    return QuantizedModel.from_dict(
        {
            "format": FORMAT,
            "name": "small-cnn",
            "input": {"shape": [1, 6, 6], "max": 15},
            "layers": [
                {
                    "type": "conv2d",
                    "weight_bits": 8,
                    "bias_bits": 16,
                    "shift": 4,
                    "padding": 1,
                    "weights": rng.integers(-128, 128, (3, 1, 3, 3)).tolist(),
                    "bias": rng.integers(-2000, 2000, 3).tolist(),
                },
                {"type": "relu"},
                {"type": pool, "size": 2},
                {"type": "flatten"},
                {
                    "type": "dense",
                    "weight_bits": 4,
                    "bias_bits": 12,
                    "shift": 1,
                    "weights": rng.integers(-8, 8, (10, 27)).tolist(),
                    "bias": rng.integers(-2048, 2048, 10).tolist(),
                },
                {"type": "argmax"},
            ],
        }
    )


def torch_forward(model: QuantizedModel, values) -> list[int]:
    """The same computation in float64 PyTorch (exact for these magnitudes), floors made explicit."""
    conv, _, pool, _, dense, _ = model.layers
    x = torch.tensor(np.asarray(values, dtype=np.float64).reshape(1, *model.input_shape))
    x = torch.nn.functional.conv2d(
        x, torch.tensor(conv.weights, dtype=torch.float64), torch.tensor(conv.bias, dtype=torch.float64), padding=1
    )
    x = torch.relu(torch.floor(x / 2**conv.shift))
    if pool.type == "maxpool2d":
        x = torch.nn.functional.max_pool2d(x, pool.size)
    else:
        x = torch.floor(torch.nn.functional.avg_pool2d(x, pool.size))
    x = x.reshape(-1)
    x = torch.tensor(dense.bias, dtype=torch.float64) + torch.tensor(dense.weights, dtype=torch.float64) @ x
    return [int(v) for v in torch.floor(x / 2**dense.shift)]


def test_from_digits_mlp__committed_model__same_forward_pass_and_commitments():
    mlp = QuantizedMLP.load()
    model = from_digits_mlp(mlp)
    _, test_pixels, _, _ = load_split()

    assert model.weights_commitment() == weights_commitment(mlp)
    assert model.input_commitment(test_pixels[0], 12345) == input_commitment(test_pixels[0].tolist(), 12345)
    for image in test_pixels.tolist():
        assert model.forward(image).logits == mlp.forward(image).logits
    assert model.parameter_count == 1210


def test_from_digits_mlp__private_bounds__are_the_circuits_bounds():
    bounds = from_digits_mlp(QuantizedMLP.load()).bounds("private")

    # 64 pixels of 0..16 times int4 weights plus an int16 bias: [-40,960, 39,935] before the shift.
    assert (int(bounds[0].acc_low.min()), int(bounds[0].acc_high.max())) == (-40_960, 39_935)
    assert (int(bounds[0].low.min()), int(bounds[0].high.max())) == (-10_240, 9_983)


@pytest.mark.parametrize("pool", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward__small_cnn__equals_pytorch(seed, pool):
    model = small_cnn(seed, pool)
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        values = rng.integers(0, 16, 36).tolist()
        inference = model.forward(values)
        assert list(inference.logits) == torch_forward(model, values)
        assert inference.label == int(np.argmax(inference.logits))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), mode=st.sampled_from(["private", "public"]), data=st.data())
def test_bounds__any_input__every_value_inside(seed, mode, data):
    model = small_cnn(seed % 8, "maxpool2d" if seed % 2 else "avgpool2d")
    values = data.draw(st.lists(st.integers(0, 15), min_size=36, max_size=36))
    for output, bounds in zip(model.trace(values), model.bounds(mode), strict=True):
        assert (output >= bounds.low.astype(np.int64)).all()
        assert (output <= bounds.high.astype(np.int64)).all()


def test_bounds__public_weights__tighter_than_private():
    model = small_cnn()
    private, public = model.bounds("private"), model.bounds("public")
    assert public[0].acc_bits < private[0].acc_bits
    assert public[-1].bits <= private[-1].bits


def test_to_dict__round_trip__same_model_and_commitment(tmp_path):
    model = small_cnn(3)
    model.save(tmp_path / "model.json")
    loaded = QuantizedModel.load(tmp_path / "model.json")
    assert loaded.to_dict() == model.to_dict()
    assert loaded.weights_commitment() == model.weights_commitment()


def test_weights_commitment__one_weight_changed__differs():
    data = small_cnn().to_dict()
    before = QuantizedModel.from_dict(data).weights_commitment()
    data["layers"][0]["weights"][0][0][0][0] ^= 1
    assert QuantizedModel.from_dict(data).weights_commitment() != before


def _broken(change) -> dict:
    data = small_cnn().to_dict()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="onnx"), "not a quantized model"),
        (lambda d: d["layers"].pop(), "last layer must be argmax"),
        (lambda d: d["layers"].insert(1, {"type": "argmax"}), "exactly once"),
        (lambda d: d["layers"][0].update(weight_bits=6), "multiple of 4"),
        (lambda d: d["layers"][0]["weights"][0][0][0].__setitem__(0, 128), "outside"),
        (lambda d: d["layers"][4]["weights"].pop(), "biases"),
        (lambda d: [row.pop() for row in d["layers"][4]["weights"]], "takes 26 inputs"),
        (lambda d: d["layers"][4]["weights"][0].pop(), "2-dimensional"),
        (lambda d: d["layers"].__setitem__(2, {"type": "maxpool2d", "size": 4}), "does not divide"),
        (lambda d: d["layers"].__setitem__(2, {"type": "avgpool2d", "size": 3}), "power of two"),
        (lambda d: d["layers"].__setitem__(1, {"type": "softmax"}), "unknown type"),
        (lambda d: d["layers"][0].pop("bias"), "lacks 'bias'"),
        (lambda d: d["input"].update(max=256), "committed as bytes"),
        (lambda d: d["layers"][0]["weights"][0][0][0].__setitem__(0, 1.5), "not an integer"),
        (lambda d: d["layers"].pop(3), "flatten first"),
    ],
)
def test_from_dict__malformed_model__model_error_says_what(change, message):
    with pytest.raises(ModelError, match=message):
        QuantizedModel.from_dict(_broken(change))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0] * 35, "expected 36"),
        ([0] * 35 + [16], "from 0 to 15"),
        ([0] * 35 + [-1], "from 0 to 15"),
        ([0] * 35 + [0.5], "0.5"),
    ],
)
def test_forward__bad_input__model_error(values, message):
    with pytest.raises(ModelError, match=message):
        small_cnn().forward(values)
