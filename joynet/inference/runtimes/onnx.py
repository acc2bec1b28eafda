"""The ``onnx`` runtime: any ONNX model with declared tensor inputs and outputs, run with
onnxruntime on the CPU so that independent nodes agree bit for bit under a quorum.

The package's metadata says how, in an ``onnx`` section and in ``quantization``::

    "framework": "onnx",
    "onnx": {"model": "model.onnx", "threads": 1,
             "inputs": {"X": {"dtype": "float32", "shape": [-1, 64]}},
             "outputs": ["label", "probabilities"]},
    "quantization": {"outputs": {"probabilities": 1000000}},
    "weightsCommitment": "0x<keccak256 of model.onnx>"

An input document maps each declared input to a nested list (``{"X": [[...64 numbers]]}``);
``-1`` in a shape is any size. Determinism: a fixed number of intra-op threads (1 unless the
package says otherwise), one inter-op thread, sequential execution and onnxruntime's
deterministic compute. Every floating-point output must have a scale in
``quantization.outputs``: it is returned as ``round(value * scale)`` integers, so that the last
bits a different CPU or thread count may change do not reach the commitment. Integer outputs are
returned as they are. The output commitment is keccak256 of the output document's canonical JSON
(keys sorted, no spaces), which a requester recomputes from the answer (``commitment_of``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from eth_hash.auto import keccak

from joynet.inference.errors import InvalidInputError, ModelLoadError
from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput
from joynet.inference.schema import canonical_json

FRAMEWORK = "onnx"
DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
}
MAX_THREADS = 64


class OnnxRuntime(ModelRuntime):
    framework = FRAMEWORK  # the name of its entry point (pyproject.toml)

    def __init__(self, package, context):
        super().__init__(package, context)
        config, cid = package.metadata.get("onnx"), package.cid
        if not isinstance(config, dict):
            raise ModelLoadError(
                f"model {cid}: an onnx model's metadata needs an 'onnx' section (model, inputs, outputs)"
            )
        model_file = config.get("model")
        if model_file not in package.files:
            raise ModelLoadError(f"model {cid}: onnx.model names {model_file!r}, which is not a file of the package")
        actual, declared = package.keccak(model_file), package.weights_commitment.lower()
        if actual != declared:
            raise ModelLoadError(
                f"model {cid}: {model_file} hashes to {actual}, not to the weightsCommitment {declared} its metadata declares"
            )
        self.inputs = self._declared_inputs(config.get("inputs"), cid)
        threads = config.get("threads", 1)
        if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
            raise ModelLoadError(f"model {cid}: onnx.threads must be an integer from 1 to {MAX_THREADS}")
        self.session = _session(package.path(model_file), threads, cid)
        graph_outputs = {output.name: output.type for output in self.session.get_outputs()}
        self.outputs = config.get("outputs") or list(graph_outputs)
        missing = [name for name in self.outputs if name not in graph_outputs]
        if missing:
            raise ModelLoadError(
                f"model {cid}: the graph has no output {missing[0]!r} (it has {sorted(graph_outputs)})"
            )
        quantization = package.metadata.get("quantization")
        scales = quantization.get("outputs", {}) if isinstance(quantization, dict) else {}
        self.scales: dict[str, float] = {}
        for name in self.outputs:
            if "float" in graph_outputs[name] or "double" in graph_outputs[name]:
                scale = scales.get(name)
                if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
                    raise ModelLoadError(
                        f"model {cid}: output {name!r} is {graph_outputs[name]}: declare quantization.outputs.{name} "
                        "(a positive scale), so that nodes agree bit for bit"
                    )
                self.scales[name] = float(scale)

    @staticmethod
    def _declared_inputs(inputs: Any, cid: str) -> dict[str, tuple[Any, list[int]]]:
        if not isinstance(inputs, dict) or not inputs:
            raise ModelLoadError(f"model {cid}: onnx.inputs must map each input to its dtype and shape")
        declared = {}
        for name, spec in inputs.items():
            dtype = DTYPES.get(str(spec.get("dtype"))) if isinstance(spec, dict) else None
            shape = spec.get("shape") if isinstance(spec, dict) else None
            if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= -1 for d in shape):
                raise ModelLoadError(
                    f"model {cid}: onnx.inputs.{name} needs a dtype ({', '.join(DTYPES)}) and a shape of sizes (-1: any)"
                )
            declared[name] = (dtype, shape)
        return declared

    def _feeds(self, input_data: dict) -> dict[str, np.ndarray]:
        feeds = {}
        for name, (dtype, shape) in self.inputs.items():
            if name not in input_data:
                raise InvalidInputError(f"the input has no {name!r}")
            try:
                array = np.asarray(input_data[name], dtype=dtype)
            except (ValueError, TypeError) as error:
                raise InvalidInputError(f"input {name!r} is not a {np.dtype(dtype).name} tensor: {error}") from None
            if array.ndim != len(shape) or any(
                want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)
            ):
                raise InvalidInputError(f"input {name!r} has shape {list(array.shape)}, not {shape}")
            feeds[name] = array
        return feeds

    def run(self, input_data, *, request_id=None, node=None) -> RuntimeOutput:
        try:
            results = self.session.run(self.outputs, self._feeds(input_data))
        except InvalidInputError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime's errors for an input the graph refuses
            raise InvalidInputError(f"the model refused the input: {error}") from None
        output = {name: self._quantized(name, value) for name, value in zip(self.outputs, results, strict=True)}
        return RuntimeOutput(output, keccak(canonical_json(output)))

    def _quantized(self, name: str, value) -> Any:
        array = np.asarray(value)
        if name in self.scales:
            return np.rint(array.astype(np.float64) * self.scales[name]).astype(np.int64).tolist()
        return array.tolist()

    @classmethod
    def commitment_of(cls, output: dict) -> bytes | None:
        if not isinstance(output, dict):
            raise ValueError("an onnx model's output is an object of named tensors")
        return keccak(canonical_json(output))


def _session(model_file: Path, threads: int, cid: str):
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(f"model {cid}: the onnx runtime needs onnxruntime (pip install onnxruntime)") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.use_deterministic_compute = True
    try:
        return onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - any loader failure is the package's
        raise ModelLoadError(f"model {cid}: onnxruntime cannot load it: {error}") from None
