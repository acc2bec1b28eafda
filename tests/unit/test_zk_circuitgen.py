"""The circuit generator: its circuits compute what the quantized reference computes, and reject
witnesses that cheat on a rescale, a pooling maximum, the argmax, the weights' range or their
commitment. Small generated circuits are compiled once per session (circom2 --O2, no trusted
setup); their witnesses come from the wasm, which checks every constraint."""

import json
import random

import pytest
from helpers.circuits import PROJECT_ROOT, compile_circuit, signed

from joynet.cli import main
from joynet.zk.circuitgen import GenerationError, generate
from joynet.zk.circuitgen.signals import circuit_signals
from joynet.zk.model import QuantizedMLP
from joynet.zk.prover import ZKProver, circuit_input, output_binding
from joynet.zk.quantized import QuantizedModel, from_digits_mlp

NODE = "0x" + "42" * 20
CNN_MODEL = PROJECT_ROOT / "joynet" / "zk" / "digits_cnn_model" / "model.json"
SALT = 987654321


def _random_array(rng: random.Random, bits: int, *shape: int, spread: int | None = None):
    if not shape:
        limit = spread if spread is not None else 1 << (bits - 1)
        return rng.randint(-limit, min(limit, (1 << (bits - 1)) - 1))
    return [_random_array(rng, bits, *shape[1:], spread=spread) for _ in range(shape[0])]


def _weighted(rng, kind, shape, weight_bits, bias_bits, shift, *, bias_spread=None, **extra) -> dict:
    """A dense or conv2d layer with random weights of `shape` and random biases."""
    weights = _random_array(rng, weight_bits, *shape)
    bias = _random_array(rng, bias_bits, shape[0], spread=bias_spread)
    return {"type": kind, "weight_bits": weight_bits, "bias_bits": bias_bits, "shift": shift,
            "weights": weights, "bias": bias, **extra}  # fmt: skip


def _model(name: str, shape: list[int], maximum: int, layers: list[dict]) -> QuantizedModel:
    return QuantizedModel.from_dict(
        {
            "format": "joynet-quantized-model/1",
            "name": name,
            "input": {"shape": shape, "max": maximum},
            "layers": layers,
        }
    )


def tiny_cnn(seed: int = 22) -> QuantizedModel:
    """conv(1->2, 3x3, padding 1), maxpool 2, relu (on its own), conv(2->2, 1x1), avgpool 2 +
    relu (fused), dense(2->3) with a rescale."""
    rng = random.Random(seed)
    return _model("tiny-cnn", [1, 4, 4], 15, [
        _weighted(rng, "conv2d", (2, 1, 3, 3), 8, 8, 4, bias_spread=8, padding=1),
        {"type": "maxpool2d", "size": 2},
        {"type": "relu"},
        _weighted(rng, "conv2d", (2, 2, 1, 1), 8, 8, 3, bias_spread=8),
        {"type": "avgpool2d", "size": 2},
        {"type": "relu"},
        {"type": "flatten"},
        _weighted(rng, "dense", (3, 2), 4, 12, 1, bias_spread=4),
        {"type": "argmax"},
    ])  # fmt: skip


def tiny_mlp(seed: int = 9) -> QuantizedModel:
    """Inputs 0..200 (neither 2^k nor 2^k - 1), dense + relu with shift 0, dense with a signed
    rescale (no relu)."""
    rng = random.Random(seed)
    return _model("tiny-mlp", [6], 200, [
        _weighted(rng, "dense", (4, 6), 8, 8, 0),
        {"type": "relu"},
        _weighted(rng, "dense", (3, 4), 4, 8, 2),
        {"type": "argmax"},
    ])  # fmt: skip


MODELS = {"tiny-cnn": tiny_cnn, "tiny-mlp": tiny_mlp}

# Cheating witness generators: the same constraints (a `<--` hint is not a constraint), other
# values. Each replaces one hint of the shared templates.
CHEATS = {
    # quotient + 1 and remainder - 2^shift still satisfy in = quotient * 2^shift + remainder
    "rescale": [
        ("biasedQuotient <-- (in + offset) \\ (1 << shift);", "biasedQuotient <-- (in + offset) \\ (1 << shift) + 1;"),
        ("remainder <-- (in + offset) % (1 << shift);", "remainder <-- (in + offset) % (1 << shift) - (1 << shift);"),
    ],
    # the window's first value instead of its maximum: still one of the window's values
    "maxpool": [("    out <-- best;", "    out <-- in[0];")],
    # the next index instead of the maximum's, claimed in the output binding
    "argmax": [("selected[i] <-- i == best ? 1 : 0;", "selected[i] <-- i == (best + 1) % n ? 1 : 0;")],
}


@pytest.fixture(scope="session")
def compiled_circuit(tmp_path_factory):
    """compiled_circuit(model name, weight mode, cheat=None): compiled once per session."""
    cache = {}

    def compile_once(name: str, weights: str, cheat: str | None = None):
        key = (name, weights, cheat)
        if key not in cache:
            source = generate(MODELS[name](), weights).source
            for old, new in CHEATS.get(cheat, []) if cheat else []:
                assert old in source, old
                source = source.replace(old, new)
            cache[key] = compile_circuit(source, tmp_path_factory.mktemp(f"{name}-{weights}-{cheat or 'honest'}"))
        return cache[key]

    return compile_once


def _inputs(model: QuantizedModel, count: int, seed: int = 7) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(0, model.input_max) for _ in range(model.input_size)] for _ in range(count)]


def _with_label(signals: dict, label: int, request_id: int) -> dict:
    return {**signals, "outputBinding": str(output_binding(label, request_id, NODE))}


def test_generate__digits_mlp_private__is_the_committed_circuit():
    model = from_digits_mlp(QuantizedMLP.load())
    committed = (PROJECT_ROOT / "circuits" / "digits_mlp.circom").read_text()
    assert generate(model, "private").source == committed


def test_generate__digits_cnn_public__is_the_committed_circuit():
    committed = (PROJECT_ROOT / "circuits" / "digits_cnn.circom").read_text()
    assert generate(QuantizedModel.load(CNN_MODEL), "public").source == committed


def test_prove_signals__digits_cnn_committed_artefacts__proof_of_the_reference_label_verifies():
    model = QuantizedModel.load(CNN_MODEL)
    values = [(7 * i) % 17 for i in range(64)]
    inference = model.forward(values)
    signals = circuit_signals(model, values, SALT, 4, NODE, weights="public", inference=inference)
    with ZKProver(PROJECT_ROOT / "joynet" / "zk" / "digits_cnn_circuit") as prover:  # names from its manifest
        proof = prover.prove_signals(signals, inference, 4, NODE)
        assert prover.verify(proof.public_signals, proof.proof)
    assert proof.label == inference.label
    assert proof.public_signals[0] == model.weights_commitment()


def test_circuit_signals__digits_mlp__equal_the_provers_input():
    mlp = QuantizedMLP.load()
    pixels = [(7 * i) % 17 for i in range(64)]
    generated = circuit_signals(from_digits_mlp(mlp), pixels, SALT, 5, NODE)
    assert generated == circuit_input(mlp, pixels, SALT, 5, NODE)


def test_generate__public_weights__pin_the_commitment_and_declare_no_weight_inputs():
    model = tiny_cnn()
    source = generate(model, "public").source
    assert f"weightsCommitment === {model.weights_commitment()};" in source
    assert "signal input w1" not in source
    assert "signal input w1" in generate(model, "private").source
    assert "w1" not in circuit_signals(model, _inputs(model, 1)[0], SALT, 1, NODE, weights="public")


@pytest.mark.parametrize("name, weights", [("tiny-cnn", "private"), ("tiny-cnn", "public"), ("tiny-mlp", "private")])
def test_generated_circuit__random_inputs__label_and_maximum_logit_agree_with_the_reference(
    compiled_circuit, name, weights
):
    model = MODELS[name]()
    circuit = compiled_circuit(name, weights)
    inputs = _inputs(model, 12)
    inferences = [model.forward(values) for values in inputs]
    assert len({inference.label for inference in inferences}) > 1  # the inputs exercise the argmax
    honest = [circuit_signals(model, v, SALT, 3, NODE, weights=weights) for v in inputs]
    classes = model.classes
    claims = [
        _with_label(s, (i.label + k) % classes, 3)
        for s, i in zip(honest, inferences, strict=True)
        for k in range(1, classes)
    ]
    results = circuit.witnesses(honest + claims)
    for inference, witness in zip(inferences, results[: len(honest)], strict=True):
        assert not isinstance(witness, str), witness
        picked = [witness[circuit.wires[f"main.label.picked[{k}]"]] for k in range(classes)]
        assert signed(picked[inference.label]) == max(inference.logits)
        assert all(p == 0 for k, p in enumerate(picked) if k != inference.label)
    # Every other label: the circuit's constraints reject the claim.
    assert all(isinstance(result, str) and "Assert Failed" in result for result in results[len(honest) :])


def test_generated_circuit__private_weights__hidden_activations_agree_with_the_trace(compiled_circuit):
    model = tiny_mlp()
    circuit = compiled_circuit("tiny-mlp", "private")
    for values in _inputs(model, 6, seed=11):
        (witness,) = circuit.witnesses([circuit_signals(model, values, SALT, 3, NODE)])
        hidden = [witness[circuit.wires[f"main.rescale1[{o}].out"]] for o in range(4)]
        assert hidden == [int(v) for v in model.trace(values)[1]]


@pytest.mark.parametrize("cheat", ["rescale", "maxpool"])
def test_witness__cheating_hint__range_check_fails(compiled_circuit, cheat):
    model = tiny_cnn()
    circuit = compiled_circuit("tiny-cnn", "private", cheat)
    results = circuit.witnesses([circuit_signals(model, v, SALT, 3, NODE) for v in _inputs(model, 4)])
    assert all(isinstance(r, str) and "Num2Bits" in r for r in results), results


def test_witness__argmax_cheat_claiming_another_label__range_check_fails(compiled_circuit):
    model = tiny_cnn()
    circuit = compiled_circuit("tiny-cnn", "private", "argmax")
    inputs = _inputs(model, 4)
    claims = [
        _with_label(circuit_signals(model, v, SALT, 3, NODE), (model.forward(v).label + 1) % model.classes, 3)
        for v in inputs
    ]
    results = circuit.witnesses(claims)
    assert all(isinstance(r, str) and "Num2Bits" in r for r in results), results


def test_witness__weight_outside_its_bits__fails(compiled_circuit):
    model = tiny_cnn()
    circuit = compiled_circuit("tiny-cnn", "private")
    signals = circuit_signals(model, _inputs(model, 1)[0], SALT, 3, NODE)
    signals["w1"][0][0][0][0] = "128"  # an 8-bit weight is -128..127
    (result,) = circuit.witnesses([signals])
    assert isinstance(result, str) and "Num2Bits" in result


@pytest.mark.parametrize("weights", ["private", "public"])
def test_witness__wrong_weights_commitment__fails(compiled_circuit, weights):
    model = tiny_cnn()
    circuit = compiled_circuit("tiny-cnn", weights)
    signals = circuit_signals(model, _inputs(model, 1)[0], SALT, 3, NODE, weights=weights)
    other = tiny_cnn(seed=99)
    wrong = {**signals, "weightsCommitment": str(other.weights_commitment())}
    if weights == "private":  # the other model's own weights under its commitment pass
        honest_other = circuit_signals(other, _inputs(model, 1)[0], SALT, 3, NODE)
        assert not isinstance(circuit.witnesses([honest_other])[0], str)
    (result,) = circuit.witnesses([wrong])
    assert isinstance(result, str) and "Assert Failed" in result


def test_witness__input_above_its_maximum__fails(compiled_circuit):
    model = tiny_mlp()
    circuit = compiled_circuit("tiny-mlp", "private")
    signals = circuit_signals(model, [0] * 6, SALT, 3, NODE)
    signals["pixels"][2] = "201"  # inputs are 0..200
    (result,) = circuit.witnesses([signals])
    assert isinstance(result, str) and "Num2Bits" in result


def test_generate__relu__fused_with_a_rescale_or_on_its_own():
    source = generate(tiny_cnn(), "private").source
    assert "relu2[o] = RescaleReLU(0, " in source  # after the max pool: a rescale by 2^0
    assert "avgpool4[o] = RescaleReLU(2, " in source  # fused with the average pool's division
    assert "relu5" not in source


def test_generate__unknown_weight_mode__is_refused():
    with pytest.raises(GenerationError, match="weights must be one of private, public"):
        generate(tiny_mlp(), "secret")  # type: ignore[arg-type]


def test_cli_circuit_generate__digits_model__prints_the_committed_circuit_and_commitment(tmp_path, capsys):
    model = from_digits_mlp(QuantizedMLP.load())
    model.save(tmp_path / "digits.json")
    assert main(["circuit", "generate", str(tmp_path / "digits.json"), "-o", str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "circuit": str(tmp_path / "out" / "digits_mlp.circom"),
        "weights": "private",
        "weightsCommitment": f"0x{model.weights_commitment():064x}",
    }
    assert (tmp_path / "out" / "digits_mlp.circom").read_text() == (
        PROJECT_ROOT / "circuits" / "digits_mlp.circom"
    ).read_text()


def test_cli_circuit_generate__not_a_model__one_line_error(tmp_path, capsys):
    (tmp_path / "model.json").write_text('{"format": "onnx"}')
    assert main(["circuit", "generate", str(tmp_path / "model.json"), "--weights", "public"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"joynet: error: {tmp_path / 'model.json'}: not a quantized model: format is 'onnx', expected 'joynet-quantized-model/1'\n"
    )
