"""Input validation against a model's ``inputSchema`` (JSON Schema, Draft 2020-12, through the
``jsonschema`` package) and the node's payload size limit."""

import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from joynet.inference.errors import InvalidInputError, ModelLoadError, PayloadTooLargeError

MAX_REPORTED_PROBLEMS = 5
# The largest request input a node accepts by default (canonical JSON bytes); a node may set its own.
DEFAULT_MAX_INPUT_BYTES = 64 * 1024


def canonical_json(value) -> bytes:
    """The compact JSON encoding (keys sorted, no spaces) the size limit is measured on."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_payload(payload, max_bytes: int):
    """``payload`` as a Python value: a dict/list is measured by its canonical JSON encoding;
    bytes or str (a raw JSON document, e.g. fetched from an input URI) are measured before they
    are parsed. Raises PayloadTooLargeError / InvalidInputError."""
    if isinstance(payload, (bytes, bytearray, str)):
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
        _check_size(len(raw), max_bytes)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInputError(f"input is not a JSON document: {error}") from None
    try:
        size = len(canonical_json(payload))
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"input cannot be encoded as JSON: {error}") from None
    _check_size(size, max_bytes)
    return payload


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLargeError(f"input payload is {size:,} bytes; this node accepts at most {max_bytes:,}")


def compile_schema(schema: dict, model: str) -> Draft202012Validator:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ModelLoadError(f"model {model}: inputSchema is not a valid JSON Schema: {error.message}") from None
    return Draft202012Validator(schema)


def validate_input(validator: Draft202012Validator, value, model: str) -> None:
    """Raises InvalidInputError naming the first few violations (path and reason)."""
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return
    problems = [f"{_path(error)}: {_describe(error)}" for error in errors[:MAX_REPORTED_PROBLEMS]]
    more = f" (and {len(errors) - MAX_REPORTED_PROBLEMS} more)" if len(errors) > MAX_REPORTED_PROBLEMS else ""
    raise InvalidInputError(f"input does not match the inputSchema of model {model}: " + "; ".join(problems) + more)


def _path(error) -> str:
    return "input" + "".join(f"[{part!r}]" for part in error.absolute_path)


def _describe(error) -> str:
    """jsonschema's message, with a long input value replaced by a summary of it."""
    message, shown = error.message, repr(error.instance)
    if len(shown) > 60 and shown in message:
        message = message.replace(shown, _summary(error.instance))
    return message if len(message) <= 200 else message[:200] + "..."


def _summary(value) -> str:
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, dict):
        return f"an object with {len(value)} properties"
    return f"a {type(value).__name__}"
