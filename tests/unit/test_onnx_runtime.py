"""The `onnx` runtime on a model JoyNet did not write (examples/onnx_digits_classifier.py: a
scikit-learn classifier exported with skl2onnx), published to the store and run through
InferenceNode: outputs equal a direct onnxruntime run, quantized as the package declares;
bit-identical commitments with 1 and 2 threads; a tampered model, an undeclared float output and
a wrong input refused."""

import asyncio
import copy
import importlib.util

import numpy as np
import pytest
import yaml

from helpers import PROJECT_ROOT
from joynet.edge import InferenceNode
from joynet.inference.errors import InvalidInputError, ModelLoadError
from joynet.inference.runtimes import runtime_for
from joynet.models.package import publish_model
from joynet.storage import EmbeddedStore


def _example():
    spec = importlib.util.spec_from_file_location("onnx_digits_classifier", PROJECT_ROOT / "examples" / "onnx_digits_classifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory):
    return _example().export(tmp_path_factory.mktemp("onnx-model"))


@pytest.fixture(scope="module")
def images():
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    return (pixels[-40:] / 16.0).round(4).tolist(), labels[-40:].tolist()


def run_on_node(tmp_path, directory, documents):
    store = EmbeddedStore(tmp_path / "ipfs")

    async def scenario():
        cid = await publish_model(store, directory)
        node = InferenceNode(store=store, cache_dir=tmp_path / "cache")
        try:
            return [await node.execute_inference(cid, document) for document in documents]
        finally:
            await node.close()

    return asyncio.run(scenario())


def with_description(tmp_path, package_dir, change):
    """A copy of the package directory with its model.yaml changed by ``change(description)``."""
    target = tmp_path / "changed"
    target.mkdir()
    for path in package_dir.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    description = yaml.safe_load((package_dir / "model.yaml").read_text())
    change(description)
    (target / "model.yaml").write_text(yaml.safe_dump(description))
    return target


def test_execute_inference__exported_classifier__outputs_equal_a_direct_onnxruntime_run_quantized(
        package_dir, images, tmp_path):
    import onnxruntime

    rows, labels = images
    results = run_on_node(tmp_path, package_dir, [{"X": [row]} for row in rows])
    # The same request (one image) to a session of onnxruntime's defaults. (A batch of 40 in one
    # call is computed with other kernels: one probability of 40 x 10 then rounded the other way.)
    session = onnxruntime.InferenceSession(str(package_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    direct = [session.run(["label", "probabilities"], {"X": np.asarray([row], dtype=np.float32)}) for row in rows]
    scale = yaml.safe_load((package_dir / "model.yaml").read_text())["quantization"]["outputs"]["probabilities"]
    expected = [np.rint(probabilities.astype(np.float64) * scale).astype(np.int64)[0].tolist() for _, probabilities in direct]
    assert [result.output["label"][0] for result in results] == [int(label[0]) for label, _ in direct]
    assert [result.output["probabilities"][0] for result in results] == expected
    assert sum(int(result.output["label"][0] == y) for result, y in zip(results, labels)) >= 36  # >= 90 % right
    for result in results:  # what a requester recomputes from the answer
        assert runtime_for("onnx").commitment_of(result.output) == result.output_commitment


def test_execute_inference__one_and_two_threads__bit_identical_commitments(package_dir, images, tmp_path):
    rows, _ = images
    batch = [{"X": rows[i : i + 8]} for i in range(0, len(rows), 8)]
    two_threads = with_description(tmp_path, package_dir, lambda d: d["onnx"].update(threads=2))
    one = run_on_node(tmp_path / "one", package_dir, batch)
    two = run_on_node(tmp_path / "two", two_threads, batch)
    assert [r.output_commitment for r in one] == [r.output_commitment for r in two]


@pytest.mark.parametrize("change, error", [
    (lambda d: d.update(weightsCommitment="0x" + "00" * 32), "hashes to"),
    (lambda d: d.update(quantization="int8"), "declare quantization.outputs.probabilities"),
    (lambda d: d["onnx"].update(outputs=["label", "logits"]), "no output 'logits'"),
    (lambda d: d["onnx"]["inputs"]["X"].update(dtype="complex64"), "needs a dtype"),
    (lambda d: d.pop("onnx"), "needs an 'onnx' section"),
])
def test_load__package_that_cannot_be_run_deterministically__model_load_error(package_dir, tmp_path, change, error):
    changed = with_description(tmp_path, package_dir, change)
    with pytest.raises(ModelLoadError, match=error):
        run_on_node(tmp_path, changed, [{"X": [[0.0] * 64]}])


@pytest.mark.parametrize("document, error", [
    ({"X": [[0.0] * 63]}, "too short"),  # the package's schema refuses it before the runtime's shape check
    ({"X": [["a"] * 64]}, "not of type 'number'"),
])
def test_execute_inference__input_of_the_wrong_shape_or_type__invalid_input(package_dir, tmp_path, document, error):
    with pytest.raises(InvalidInputError, match=error):
        run_on_node(tmp_path, package_dir, [copy.deepcopy(document)])


def test_cnn_example__exported_from_pytorch__reproducible_accurate_and_served_as_onnxruntime_runs_it(tmp_path):
    import onnxruntime

    spec = importlib.util.spec_from_file_location("onnx_cnn_classifier", PROJECT_ROOT / "examples" / "onnx_cnn_classifier.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    first, second = example.export(tmp_path / "first"), example.export(tmp_path / "second")
    assert (first / "model.onnx").read_bytes() == (second / "model.onnx").read_bytes()  # the same weights commitment
    description = yaml.safe_load((first / "model.yaml").read_text())
    assert float(description["description"].rsplit(" ", 1)[1]) >= 0.9  # held-out accuracy

    images = example.digits_images()[0][-20:].numpy()
    results = run_on_node(tmp_path, first, [{"image": images[i : i + 4].tolist()} for i in range(0, 20, 4)])
    session = onnxruntime.InferenceSession(str(first / "model.onnx"), providers=["CPUExecutionProvider"])
    for i, result in zip(range(0, 20, 4), results):
        (logits,) = session.run(["logits"], {"image": images[i : i + 4]})
        assert result.output == {"logits": np.rint(logits.astype(np.float64) * example.LOGIT_SCALE).astype(np.int64).tolist()}
