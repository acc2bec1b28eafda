"""The input (signals) of a generated circuit for one inference."""

from __future__ import annotations

from joynet.zk.circuitgen.generator import WEIGHT_MODES, GenerationError
from joynet.zk.commitments import check_salt
from joynet.zk.poseidon import SNARK_SCALAR_FIELD
from joynet.zk.prover import PUBLIC_INPUTS, output_binding, request_binding


def _field(values):
    """Ints (nested lists of them) as decimal field elements, a negative v as r - |v|."""
    if isinstance(values, list | tuple):
        return [_field(v) for v in values]
    return str(int(values) % SNARK_SCALAR_FIELD)


def circuit_signals(
    model, values, salt: int, request_id: int, node, *, weights: str = "private", inference=None
) -> dict:
    """The witness generator's input for one inference of ``model`` (a QuantizedModel) on the
    input ``values`` (flat, C-H-W order) in the circuit ``generate(model, weights)`` made: the
    public inputs (commitments computed here), requestNode, the values, the salt and, with private
    weights, every weight and bias (``w1``, ``b1``, ``w2``, ... in the model's layer order).
    ``inference`` (the model's forward pass on ``values``) is not computed again when given."""
    if weights not in WEIGHT_MODES:
        raise GenerationError(f"weights must be one of {', '.join(WEIGHT_MODES)}, got {weights!r}")
    check_salt(salt)
    inference = model.forward(values) if inference is None else inference
    public = {
        "weightsCommitment": model.weights_commitment(),
        "inputCommitment": model.input_commitment(values, salt),
        "outputBinding": output_binding(inference.label, request_id, node),
    }
    signals = {name: _field(public[name]) for name in PUBLIC_INPUTS}
    signals["requestNode"] = _field(request_binding(request_id, node))
    if weights == "private":
        weighted = [layer for layer in model.to_dict()["layers"] if layer["type"] in ("dense", "conv2d")]
        for k, layer in enumerate(weighted, start=1):
            signals[f"w{k}"] = _field(layer["weights"])
            signals[f"b{k}"] = _field(layer["bias"])
    signals["pixels"] = _field(list(values))
    signals["salt"] = _field(salt)
    return signals
