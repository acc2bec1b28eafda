"""Runtime plugins, keyed by the model metadata's ``framework`` and found through the
``joynet.runtimes`` entry-point group (``base``). The built-in ones are entry points of JoyNet's
own distribution: ``joynet-int-mlp`` (the digits MLP, ZK policy), ``sentence-transformers``
(sentence embedders such as all-MiniLM-L6-v2, quorum policy), ``onnx`` (any ONNX model with
declared tensors and output quantization), ``causal-lm`` (a chat language model in one GGUF
file, such as SmolLM2-135M-Instruct) and ``joynet-zk`` (a quantized model with its generated
circuit and proving key, ZK policy)."""

from joynet.inference.runtimes.base import (
    ENTRY_POINT_GROUP,
    ModelRuntime,
    RuntimeContext,
    RuntimeOutput,
    register_runtime,
    registered_frameworks,
    runtime_for,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelRuntime",
    "RuntimeContext",
    "RuntimeOutput",
    "register_runtime",
    "registered_frameworks",
    "runtime_for",
]
