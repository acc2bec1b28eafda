"""OpenAI's API formats, both ways: an OpenAI request body becomes a model's input document, and
a checked output document becomes an OpenAI answer (list of models, embeddings, chat completion
and its stream chunks). No chain, no store: only shapes.

Embeddings: a sentence-transformers model's output is int8 (``q``, see
``joynet.inference.runtimes.sentence_embedding``); each float the gateway answers is ``q / 127``,
the quantized value brought back to the embedding's scale. The official SDK asks for
``encoding_format="base64"`` unless told otherwise: those are the same values as float32,
little-endian, base64-encoded.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from joynet.gateway.errors import BadRequestError
from joynet.inference.runtimes.sentence_embedding import INT8_SCALE

OWNED_BY = "joynet"
CHAT_ROLES = ("system", "user", "assistant")
# OpenAI's newer name for the system role.
ROLE_ALIASES = {"developer": "system"}
# Characters per streamed piece of a settled answer.
STREAM_PIECE_CHARS = 16


def model_entry(name: str, created: int, joynet: dict) -> dict:
    """One entry of ``GET /v1/models``."""
    return {"id": name, "object": "model", "created": created, "owned_by": OWNED_BY, "joynet": joynet}


def model_list(entries: list[dict]) -> dict:
    return {"object": "list", "data": entries}


# ---- embeddings ----


def embedding_texts(body: dict) -> list[str]:
    """The texts of an embeddings request (``input``: a string or a list of strings)."""
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) and text for text in texts):
        raise BadRequestError("'input' must be a non-empty string or a non-empty list of non-empty strings")
    if body.get("dimensions") is not None:
        raise BadRequestError("'dimensions' is not supported: the model's embedding size is what the nodes agree on")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise BadRequestError("'encoding_format' must be 'float' or 'base64'")
    return texts


def dequantize(rows: list[list[int]]) -> np.ndarray:
    """The int8 embedding rows as floats: ``q / 127`` (float64)."""
    return np.asarray(rows, dtype=np.float64) / INT8_SCALE


def embeddings_response(model: str, output: dict, encoding_format: str, receipt: dict) -> dict:
    rows = output.get("embeddings") or [output["embedding"]]
    values = dequantize(rows)
    data = []
    for index, row in enumerate(values):
        embedding: Any = (
            base64.b64encode(row.astype("<f4").tobytes()).decode() if encoding_format == "base64" else row.tolist()
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        # The nodes do not report token counts; the chain settles per request, not per token.
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
        "joynet": receipt,
    }


# ---- chat completions ----


def chat_input(body: dict) -> dict:
    """The causal-lm input document of a chat completions request: its messages (text content
    only) and ``max_tokens`` (or ``max_completion_tokens``)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty list")
    document_messages = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{index}] must be an object with a role and a content")
        role = message.get("role")
        role = ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
        if role not in CHAT_ROLES:
            raise BadRequestError(f"messages[{index}].role must be one of {', '.join(CHAT_ROLES)} (or developer)")
        document_messages.append({"role": role, "content": _text_content(message.get("content"), index)})
    document: dict = {"messages": document_messages}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadRequestError("'max_tokens' must be a positive integer")
        document["max_tokens"] = limit
    if body.get("n", 1) != 1:
        raise BadRequestError("'n' must be 1: one request on chain gives one answer")
    return document


def _text_content(content: Any, index: int) -> str:
    """A message's content: a string, or a list of text parts (joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content
    ):
        return "".join(part["text"] for part in content)
    raise BadRequestError(f"messages[{index}].content must be a string or a list of text parts")


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_completion(model: str, output: dict, receipt: dict, created: int | None = None) -> dict:
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": output["text"]},
                "finish_reason": output["finish_reason"],
            }
        ],
        "usage": _usage(output),
        "joynet": receipt,
    }


def _usage(output: dict) -> dict:
    completion = len(output.get("tokens", []))
    return {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion}


def chat_chunks(model: str, output: dict, receipt: dict) -> Iterator[dict]:
    """The settled answer as a stream of ``chat.completion.chunk`` objects: the role, the text in
    pieces, then the finish reason with the receipt (and the usage)."""
    identity = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish_reason: str | None = None, **extra: Any) -> dict:
        return {**identity, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}

    yield chunk({"role": "assistant", "content": ""})
    text = output["text"]
    for start in range(0, len(text), STREAM_PIECE_CHARS):
        yield chunk({"content": text[start : start + STREAM_PIECE_CHARS]})
    yield chunk({}, output["finish_reason"], usage=_usage(output), joynet=receipt)


def sse(data: dict | str) -> bytes:
    """One Server-Sent Event: ``data: <JSON>\\n\\n`` (or ``data: [DONE]``)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


DONE = "[DONE]"
