"""joynet.InferenceNode: both built-in models published to the store and loaded back from it (never
from a package path), deterministic outputs and commitments, and every refusal with a clear error."""

import asyncio
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from eth_hash.auto import keccak

from helpers import PROJECT_ROOT
from joynet import InferenceNode, InvalidInputError, ModelLoadError, PayloadTooLargeError
from joynet.inference import UnknownRuntimeError
from joynet.inference.runtimes.digits import DigitsMLPRuntime
from joynet.inference.runtimes.sentence_embedding import (
    SentenceEmbeddingRuntime, embedding_commitment, encode_quantized, quantize,
)
from joynet.models.package import publish_model
from joynet.models.builtin import minilm_source_dir, publish_builtin_models, write_digits_package, write_minilm_package
from joynet.storage import EmbeddedStore
from joynet.storage.cids import parse_cid
from joynet.zk import QuantizedMLP, input_commitment, output_commitment, to_bytes32
from joynet.zk.prover import output_binding
from joynet.zk.digits import load_split

run = asyncio.run
PROJECT = PROJECT_ROOT
SALT = 1234567890123456789
TEXTS = ["Hello world", "JoyNet pays edge nodes in JOY for verified inferences.", "a", "Ünïcödé text 🚀 too"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="module")
def store(workdir):
    return EmbeddedStore(workdir / "ipfs")


@pytest.fixture(scope="module")
def cids(store):
    return run(publish_builtin_models(store))


@pytest.fixture(scope="module")
def node(store, workdir, cids):
    node = InferenceNode(store=store, cache_dir=workdir / "models")
    yield node
    run(node.close())


@pytest.fixture(scope="module")
def reference_minilm(node):
    """sentence-transformers' own model, straight from the wheel: the reference, never the node's
    (on the node's device: CPU and GPU floats may differ in the last bit)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_source_dir()), device=node.device, local_files_only=True)


@pytest.fixture(scope="module")
def held_out():
    _, pixels, _, labels = load_split()
    return pixels.tolist(), labels.tolist()


def digit_input(pixels, salt=SALT):
    return {"pixels": pixels, "salt": str(salt)}


# ---- both models, from the store ----


def test_execute_inference__digits_held_out__equals_quantized_mlp(node, cids, held_out):
    model = QuantizedMLP.load()
    pixels, labels = held_out
    hits = 0
    for image, label in zip(pixels[:40], labels[:40]):
        result = run(node.execute_inference(cids["digits"], digit_input(image)))
        expected = model.forward(image)
        assert result.output == {"class": expected.label, "logits": list(expected.logits)}
        assert result.output_commitment == to_bytes32(output_commitment(expected))
        assert DigitsMLPRuntime.commitment_of(result.output) == result.output_commitment  # a requester's re-check
        assert result.input_commitment == to_bytes32(input_commitment(image, SALT))
        assert result.proof is None and result.proof_calldata == b""
        hits += expected.label == label
    assert hits >= 36  # the model's ~96 % held-out accuracy


def test_execute_inference__digits_package__loaded_from_store_not_package_path(node, cids):
    loaded = run(node.load_model(cids["digits"]))
    assert loaded.cid == cids["digits"]
    assert loaded.package.read("model.json") == (PROJECT / "circuits/digits/model.json").read_bytes()
    assert loaded.package.path("model.json").is_relative_to(node.cache_dir)
    assert loaded.verification["quorum"] == 1


def test_execute_inference__minilm_text__equals_quantized_sentence_transformers(node, cids, reference_minilm):
    for text in TEXTS:
        result = run(node.execute_inference(cids["minilm"], {"text": text}))
        expected = quantize(reference_minilm.encode([text], convert_to_numpy=True))
        assert result.output == {"embedding": expected[0].tolist()}
        assert result.output_commitment == keccak(encode_quantized(expected))
        assert SentenceEmbeddingRuntime.commitment_of(result.output) == result.output_commitment


def test_execute_inference__minilm_batch__equals_quantized_batch(node, cids, reference_minilm):
    result = run(node.execute_inference(cids["minilm"], {"texts": TEXTS}))
    expected = quantize(reference_minilm.encode(TEXTS, convert_to_numpy=True))
    assert result.output == {"embeddings": expected.tolist()}
    assert result.output_commitment == embedding_commitment(expected)
    assert SentenceEmbeddingRuntime.commitment_of(result.output) == result.output_commitment


@pytest.mark.parametrize("output", [
    {"embedding": [1, 2, 128]}, {"embeddings": [[1, 2], [3]]}, {"embeddings": []}, {"embedding": ["a", "b"]}, {},
])
def test_commitment_of__not_an_int8_embedding__value_error(output):
    with pytest.raises(ValueError, match="int8 embedding matrix"):
        SentenceEmbeddingRuntime.commitment_of(output)


@pytest.mark.parametrize("output", [{}, {"class": "seven"}, {"class": None}])
def test_commitment_of__not_a_digits_output__value_error(output):
    with pytest.raises(ValueError, match="not a classifier.s output"):
        DigitsMLPRuntime.commitment_of(output)


def test_execute_inference__minilm__loaded_from_store_cache_dir(node, cids, workdir):
    loaded = run(node.load_model(cids["minilm"]))
    assert loaded.runtime.directory == workdir / "models" / cids["minilm"]
    weights = (loaded.runtime.directory / "model.safetensors").read_bytes()
    assert "0x" + keccak(weights).hex() == loaded.package.weights_commitment
    assert not (loaded.runtime.directory / "model.safetensors").is_symlink()


def test_quantize__rule__round_half_even_times_127_clipped():
    values = np.array([[0.0, 1.0, -1.0, 0.5 / 127, 1.5 / 127, 2.0, -0.9999]], dtype=np.float32)
    assert quantize(values).tolist() == [[0, 127, -127, 0, 2, 127, -127]]
    assert encode_quantized(np.array([[1, -1]], dtype=np.int8)) == bytes([0, 0, 0, 1, 0, 0, 0, 2, 1, 255])


def test_execute_inference__minilm_in_two_processes__identical_commitment(store, workdir, cids, node):
    payload = json.dumps({"text": "Hello world"})
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    processes = [
        subprocess.Popen([sys.executable, str(PROJECT / "tests/helpers/inference_process.py"), str(store.directory),
                          str(workdir / f"process-{index}"), cids["minilm"], payload],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        for index in range(2)
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    local = run(node.execute_inference(cids["minilm"], {"text": "Hello world"}))
    assert outputs[0] == outputs[1]
    assert outputs[0]["commitment"] == local.output_commitment.hex()


def test_execute_inference__digits_with_request_and_node__proof_binds_same_output(node, cids, held_out):
    pixels = held_out[0][0]
    result = run(node.execute_inference(cids["digits"], digit_input(pixels), request_id=7, node="0x" + "42" * 20))
    assert result.proof is not None
    assert result.proof.output_commitment == result.output_commitment
    assert result.proof.input_commitment == result.input_commitment
    label = int.from_bytes(result.output_commitment, "big")
    assert result.proof.public_signals[2] == output_binding(label, 7, "0x" + "42" * 20)
    assert len(result.proof_calldata) == 8 * 32


def test_execute_inference__digits_proved__model_and_weights_commitment_computed_once(
        node, cids, held_out, monkeypatch):
    # A proven job reuses the runtime's forward pass and weights commitment for the circuit's
    # input: the model runs once before the witness, not once for the answer and again for the proof.
    from joynet.zk import commitments, model, prover

    forward, hashing, calls = model.QuantizedMLP.forward, commitments.weights_commitment, []
    run(node.load_model(cids["digits"]))  # loading hashes the weights once, to check the package

    def counted_forward(self, pixels):
        calls.append("forward")
        return forward(self, pixels)

    def counted_hashing(mlp):
        calls.append("weights")
        return hashing(mlp)

    monkeypatch.setattr(model.QuantizedMLP, "forward", counted_forward)
    monkeypatch.setattr(prover, "weights_commitment", counted_hashing)
    result = run(node.execute_inference(cids["digits"], digit_input(held_out[0][2]), request_id=9, node="0x" + "42" * 20))
    assert result.proof is not None and result.proof.output_commitment == result.output_commitment
    assert calls == ["forward"]


def test_execute_inference__embedding_during_a_proof__not_queued_behind_it(node, cids, held_out):
    # Each model has its own worker thread: a digits proof (seconds) in flight does not hold up
    # a MiniLM embedding (milliseconds) asked for after it.
    async def both():
        await node.load_model(cids["minilm"])
        proving = asyncio.create_task(node.execute_inference(
            cids["digits"], digit_input(held_out[0][1]), request_id=8, node="0x" + "42" * 20))
        await asyncio.sleep(0.2)  # the proof is under way
        embedding = await node.execute_inference(cids["minilm"], {"text": "not behind the proof"})
        overtaken = not proving.done()
        proved = await proving
        return embedding, overtaken, proved

    embedding, overtaken, proved = run(both())
    assert overtaken and proved.proof is not None and len(embedding.output["embedding"]) == 384


def test_execute_inference__raw_json_bytes__same_result_as_dict(node, cids, held_out):
    pixels = held_out[0][1]
    from_dict = run(node.execute_inference(cids["digits"], digit_input(pixels)))
    from_bytes = run(node.execute_inference(cids["digits"], json.dumps(digit_input(pixels)).encode()))
    assert from_bytes.output == from_dict.output and from_bytes.output_commitment == from_dict.output_commitment


# ---- the model id on chain ----


def test_execute_inference__chain_weights_commitment_differs__model_load_error(store, workdir, cids):
    chain = SimpleNamespace(get_model=lambda model_id: SimpleNamespace(
        metadataURI=f"ipfs://{cids['digits']}", weightsCommitment=b"\x01" * 32))
    node = InferenceNode(marketplace=chain, store=store, cache_dir=workdir / "models")
    with pytest.raises(ModelLoadError, match="the chain's weightsCommitment 0x0101.* differs from its metadata's"):
        run(node.execute_inference("digits", {"pixels": [0] * 64, "salt": 1}))


# ---- refusals: the store ----


def node_for(store, workdir, **kwargs):
    return InferenceNode(store=store, cache_dir=workdir / "models", **kwargs)


def test_load_model__tampered_block__model_load_error(tmp_path):
    store = EmbeddedStore(tmp_path / "ipfs")
    cid = run(publish_model(store, write_digits_package(tmp_path / "digits")))
    metadata = json.loads(run(store.cat(cid)))
    weights_cid = parse_cid(metadata["files"]["model.json"].removeprefix("ipfs://"))
    block = store.block_path(weights_cid)
    data = bytearray(block.read_bytes())
    data[len(data) // 2] ^= 0x01
    block.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=f"model {cid} cannot be loaded from the store: block .*: the data does not hash to its CID; refused"):
        run(node_for(store, tmp_path).load_model(cid))


def test_load_model__package_larger_than_the_node_takes__model_load_error_and_nothing_cached(
        tmp_path, store, cids, monkeypatch):
    monkeypatch.setenv("JOYNET_MAX_MODEL_BYTES", "1000000")  # MiniLM's files are about 90 MB
    node = InferenceNode(store=store, cache_dir=tmp_path / "small-node")
    assert node.max_model_bytes == 1_000_000
    with pytest.raises(ModelLoadError, match=r"^model \S+: its files are [\d,]+ bytes, more than the 1,000,000 bytes this node takes$"):
        run(node.load_model(cids["minilm"]))
    assert not [path for path in (tmp_path / "small-node").rglob("*") if path.is_file()]
    assert run(node.load_model(cids["digits"])).package.read("model.json")  # a small one still loads


def test_load_model__cid_not_in_store__model_load_error(store, workdir):
    absent = run(EmbeddedStore(workdir / "other").add_bytes(b"not published here"))
    with pytest.raises(ModelLoadError, match=f"model {absent} cannot be loaded from the store: .*not in the store"):
        run(node_for(store, workdir).execute_inference(absent, {"text": "x"}))


def test_load_model__malformed_cid__model_load_error(store, workdir):
    with pytest.raises(ModelLoadError, match="'ipfs://not-a-cid' is not a valid CID"):
        run(node_for(store, workdir).execute_inference("ipfs://not-a-cid", {"text": "x"}))


def test_load_model__cid_of_a_weights_file__model_load_error(store, workdir, cids):
    weights = json.loads(run(store.cat(cids["digits"])))["files"]["model.json"]
    with pytest.raises(ModelLoadError, match="has bad metadata"):
        run(node_for(store, workdir).load_model(weights))


def edited_digits(tmp_path, store, **changes):
    directory = write_digits_package(tmp_path / "digits")
    description = yaml.safe_load((directory / "model.yaml").read_text())
    (directory / "model.yaml").write_text(yaml.safe_dump({**description, **changes}))
    return run(publish_model(store, directory))


def test_load_model__unknown_framework__unknown_runtime_error(tmp_path, store):
    cid = edited_digits(tmp_path, store, framework="tensorflow")
    with pytest.raises(UnknownRuntimeError, match="no runtime for framework 'tensorflow'"):
        run(node_for(store, tmp_path).load_model(cid))


def test_load_model__weights_not_matching_commitment__model_load_error(tmp_path, store):
    cid = edited_digits(tmp_path, store, weightsCommitment="0x" + "ab" * 32)
    with pytest.raises(ModelLoadError, match="not to the weightsCommitment 0xabab"):
        run(node_for(store, tmp_path).load_model(cid))


def test_load_model__invalid_input_schema__model_load_error(tmp_path, store):
    cid = edited_digits(tmp_path, store, inputSchema={"type": "no-such-type"})
    with pytest.raises(ModelLoadError, match="inputSchema is not a valid JSON Schema"):
        run(node_for(store, tmp_path).load_model(cid))


def test_load_model__pickle_weights_in_sentence_package__refused(tmp_path, store):
    directory = write_minilm_package(tmp_path / "minilm")
    (directory / "pytorch_model.bin").write_bytes(b"a pickle would run code")
    cid = run(publish_model(store, directory))
    with pytest.raises(ModelLoadError, match="refusing files that could run code when loaded: pytorch_model.bin"):
        run(node_for(store, tmp_path).load_model(cid))


# ---- refusals: the input ----


@pytest.mark.parametrize("input_data, message", [
    ({"pixels": [0] * 63, "salt": 1}, r"input\['pixels'\]: .* is too short"),
    ({"pixels": [0] * 63 + [17], "salt": 1}, r"input\['pixels'\]\[63\]: 17 is greater than the maximum of 16"),
    ({"pixels": [0] * 63 + [1.5], "salt": 1}, r"input\['pixels'\]\[63\]: 1.5 is not of type 'integer'"),
    ({"pixels": [0] * 64}, r"input: 'salt' is a required property"),
    ({"pixels": [0] * 64, "salt": "0xzz"}, r"input\['salt'\]"),
    ({"pixels": [0] * 64, "salt": 1, "label": 3}, r"input: Additional properties are not allowed \('label'"),
    (["not", "an", "object"], r"input: .* is not of type 'object'"),
])
def test_execute_inference__digits_input_fails_schema__invalid_input_error(node, cids, input_data, message):
    with pytest.raises(InvalidInputError, match=f"input does not match the inputSchema of model {cids['digits']}: {message}"):
        run(node.execute_inference(cids["digits"], input_data))


def test_execute_inference__salt_outside_field__invalid_input_error(node, cids):
    with pytest.raises(InvalidInputError, match="salt must be an integer field element"):
        run(node.execute_inference(cids["digits"], {"pixels": [0] * 64, "salt": str(2**254)}))


@pytest.mark.parametrize("input_data", [{"text": ""}, {"text": "a", "texts": ["b"]}, {"texts": []}, {"texts": [3]}, {}])
def test_execute_inference__minilm_input_fails_schema__invalid_input_error(node, cids, input_data):
    with pytest.raises(InvalidInputError, match="input does not match the inputSchema"):
        run(node.execute_inference(cids["minilm"], input_data))


def test_execute_inference__malformed_json_bytes__invalid_input_error(node, cids):
    with pytest.raises(InvalidInputError, match="input is not a JSON document"):
        run(node.execute_inference(cids["minilm"], b'{"text": "unterminated'))


def test_execute_inference__oversized_payload__payload_too_large_error(store, workdir, cids):
    small = node_for(store, workdir, max_input_bytes=1_000)
    big = {"text": "x" * 2_000}
    with pytest.raises(PayloadTooLargeError, match="input payload is 2,011 bytes; this node accepts at most 1,000"):
        run(small.execute_inference(cids["minilm"], big))
    with pytest.raises(PayloadTooLargeError, match="at most 1,000"):
        run(small.execute_inference(cids["minilm"], json.dumps(big).encode()))
    assert issubclass(PayloadTooLargeError, InvalidInputError)  # an agent declines both alike


# ---- publishing ----


def test_publish_builtin_command__embedded_store__prints_the_functions_cids(tmp_path, monkeypatch, capsys, cids):
    from joynet.cli import main

    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))
    assert main(["model", "publish-builtin"]) == 0
    assert json.loads(capsys.readouterr().out) == cids


def test_model_publish_command__written_digits_package__same_cid_as_builtin(tmp_path, monkeypatch, capsys, cids):
    from joynet.cli import main

    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))
    assert main(["model", "publish", str(write_digits_package(tmp_path / "digits"))]) == 0
    assert capsys.readouterr().out.strip() == cids["digits"]


def test_measure_minilm_throughput__small_batch__reports_edge_figures():
    from bench.inference import measure_minilm_throughput, sample_texts

    figures = measure_minilm_throughput(n=8, rounds=1)
    assert set(figures) == {"edge.minilm_throughput_ratio", "edge.minilm_throughput_ratio_median_pair",
                            "edge.minilm_node_embeddings_per_s", "edge.minilm_bare_embeddings_per_s",
                            "edge.minilm_load_seconds"}
    assert all(value > 0 for value in figures.values())
    assert len(set(sample_texts(64))) == 64


def test_measure_onnx_throughput__small_batch__reports_onnx_figures():
    from bench.inference import measure_onnx_throughput

    figures = measure_onnx_throughput(n=8, rounds=1)
    assert set(figures) == {"onnx.throughput_ratio", "onnx.throughput_ratio_median_pair", "onnx.node_images_per_s",
                            "onnx.bare_images_per_s"}
    assert all(value > 0 for value in figures.values())
