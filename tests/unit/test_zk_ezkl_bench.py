"""bench.ezkl without running EZKL (a run takes a minute: `make bench` does it)."""

import sys

import pytest

from bench.ezkl import (
    EzklUnavailable, cnn_network, dequantized_weights, ezkl_available, measure_ezkl, measure_ezkl_cnn,
)
from joynet.zk.model import QuantizedMLP


def test_missing_ezkl_is_a_clean_skip(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ezkl", None)  # import ezkl now raises ImportError
    available, why = ezkl_available()
    assert not available and "ezkl" in why
    with pytest.raises(EzklUnavailable, match="ezkl"):
        measure_ezkl(tmp_path / "work")
    with pytest.raises(EzklUnavailable, match="ezkl"):
        measure_ezkl_cnn(tmp_path / "work")
    assert not (tmp_path / "work").exists()  # nothing was started


def test_dequantized_network_classifies_like_the_integer_model():
    from joynet.zk.digits import load_split

    model, weights = QuantizedMLP.load(), dequantized_weights()
    _, images, _, _ = load_split()
    agree = 0
    for image in images.tolist():
        hidden = [max(sum(w * p for w, p in zip(row, image)) + b, 0.0) for row, b in zip(weights["w1"], weights["b1"])]
        logits = [sum(w * h for w, h in zip(row, hidden)) + b for row, b in zip(weights["w2"], weights["b2"])]
        agree += logits.index(max(logits)) == model.forward(image).label
    # EZKL proves the network in real units, without the integer network's floor division
    # (a rescale by 2**SHIFT): a digit whose top two logits are within that rounding may flip.
    # With the committed int4 model that is 1 of the 450 held-out digits.
    assert agree >= 0.99 * len(images), f"{agree} of {len(images)}"


def test_dequantized_cnn__held_out_digits__classifies_like_the_integer_model():
    import json

    import torch

    from joynet.zk.digits import CNN_MODEL_DIR, load_split
    from joynet.zk.quantized import QuantizedModel

    model = QuantizedModel.load(CNN_MODEL_DIR / "model.json")
    scales = json.loads((CNN_MODEL_DIR / "manifest.json").read_text())["quantization"]["scales"]
    _, images, _, _ = load_split()
    with torch.no_grad():
        classes = cnn_network(model, scales).eval()(torch.tensor(images, dtype=torch.float32)).argmax(dim=1)
    agree = sum(int(c) == model.forward(image).label for c, image in zip(classes.tolist(), images.tolist(), strict=True))
    # Real units without the floor divisions: all 450 held-out digits agree with the committed model.
    assert agree >= 0.99 * len(images), f"{agree} of {len(images)}"
