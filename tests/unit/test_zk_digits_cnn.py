"""The digits CNN (joynet/zk/digits_cnn_model): the committed file is a valid quantized model of at
least 50,000 parameters, its held-out accuracy, hash and constraint estimate are the manifest's,
and the training script's steps are deterministic (a full retrain takes a minute or two: the
manifest's sha256 was checked by two runs, see circuits/digits_cnn/train.py)."""

import hashlib
import importlib.util
import json

import pytest

from joynet.zk.digits import CNN_MODEL_DIR, accuracy, load_split
from joynet.zk.quantized import QuantizedModel

TRAIN_SCRIPT = CNN_MODEL_DIR.parents[2] / "circuits" / "digits_cnn" / "train.py"
MANIFEST = json.loads((CNN_MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def cnn() -> QuantizedModel:
    return QuantizedModel.load(CNN_MODEL_DIR / "model.json")


@pytest.fixture(scope="module")
def training():
    """circuits/digits_cnn/train.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("digits_cnn_train", TRAIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cnn_model__committed_file__validates_with_at_least_50k_parameters_and_matches_its_hash(cnn):
    assert cnn.parameter_count == MANIFEST["parameters"] >= 50_000
    assert cnn.input_shape == (1, 8, 8) and cnn.input_max == 16 and cnn.classes == 10
    data = (CNN_MODEL_DIR / "model.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == MANIFEST["sha256"]["model.json"]
    assert "0x" + cnn.weights_commitment().to_bytes(32, "big").hex() == MANIFEST["weights_commitment"]


def test_cnn_model__held_out_split__accuracy_is_the_manifest_and_at_least_95_percent(cnn):
    _, pixels, _, labels = load_split()
    measured = accuracy(cnn, pixels, labels)
    assert measured == MANIFEST["quantized_accuracy_held_out"] >= 0.95
    assert MANIFEST["float_accuracy_held_out"] >= 0.95


def test_cnn_model__public_weights__estimated_below_the_ceremony_power(cnn, training):
    estimate = training.estimate_constraints(cnn)
    assert estimate == MANIFEST["estimated_constraints"]
    assert estimate["total"] < 2**16
    # The last dense layer (shift 0, no ReLU) is linear in the circuit and costs nothing.
    last_dense = max(index for index, layer in enumerate(cnn.layers) if layer.type == "dense")
    assert f"{last_dense}:dense" not in estimate


def test_fit_commitment__chain_of_any_length__model_unchanged(training):
    # 40x10 int4 weights and 40 int4 biases: 440 nibbles, 7 elements, a Poseidon of 7 inputs,
    # which has constants like every width of circomlib's: nothing to widen.
    dense = {"type": "dense", "weight_bits": 4, "bias_bits": 4, "shift": 0,
             "weights": [[1] * 10] * 40, "bias": [0] * 40}  # fmt: skip
    model = {"format": "joynet-quantized-model/1", "name": "t", "input": {"shape": [10], "max": 16},
             "layers": [dense, {"type": "argmax"}]}  # fmt: skip
    QuantizedModel.from_dict(model).weights_commitment()
    assert training.fit_commitment(model) == model


@pytest.fixture
def torch_settings_restored():
    """train() sets torch to one thread and deterministic algorithms: put both back after the test."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_cnn_training__two_short_runs__identical_weights(training, monkeypatch, torch_settings_restored):
    monkeypatch.setattr(training, "EPOCHS", 2)
    x_train, _, y_train, _ = load_split()
    first, second = (training.quantize(training.train(x_train[:64], y_train[:64]))[0] for _ in range(2))
    assert first == second
    assert QuantizedModel.from_dict(first).parameter_count == MANIFEST["parameters"]


def test_cnn_bench__no_circuit_artefacts__skipped_with_the_reason(tmp_path, monkeypatch):
    from bench.zk_prover import CnnCircuitUnavailable, measure_cnn_zk

    monkeypatch.setenv("JOYNET_CNN_CIRCUIT_DIR", str(tmp_path))
    with pytest.raises(CnnCircuitUnavailable, match=f"no CNN circuit in {tmp_path}"):
        measure_cnn_zk(1)
    (tmp_path / "manifest.json").write_text('{"constraints": 1}')  # a manifest, but no keys
    with pytest.raises(CnnCircuitUnavailable, match="cannot be proven: .* names no circuit"):
        measure_cnn_zk(1)
