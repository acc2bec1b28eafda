"""The errors of ``joynet.gateway``: each one is an HTTP answer in OpenAI's error format."""

from __future__ import annotations

from joynet.errors import JoyNetError


class GatewayError(JoyNetError, RuntimeError):
    """A request the gateway answers with an error: ``status`` (the HTTP status), ``type`` and
    ``code`` (OpenAI's ``error.type`` and ``error.code``), ``headers`` (e.g. ``Retry-After``) and,
    once something was sent on chain, the request's verification ``receipt``."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        receipt: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.receipt = receipt

    def body(self) -> dict:
        """The JSON body: ``{"error": {"message", "type", "code"}}``, and ``joynet`` (the receipt) if any."""
        body: dict = {"error": {"message": self.message, "type": self.type, "code": self.code}}
        if self.receipt is not None:
            body["joynet"] = self.receipt
        return body


class BadRequestError(GatewayError):
    """The request's body or input is not one the model takes (400): nothing was sent on chain."""

    status, type, code = 400, "invalid_request_error", "invalid_input"


class UnauthorizedError(GatewayError):
    """No ``Authorization: Bearer`` key, or one the gateway does not know (401)."""

    status, type, code = 401, "invalid_request_error", "invalid_api_key"


class SpendingLimitError(GatewayError):
    """The request would take a key's spending past its limit (402): nothing was sent on chain."""

    status, type, code = 402, "insufficient_quota", "spending_limit_reached"


class ModelNotFoundError(GatewayError):
    """A model the gateway does not expose, or that the chain has not registered (404)."""

    status, type, code = 404, "invalid_request_error", "model_not_found"


class RequestNotFoundError(GatewayError):
    """A request id the chain does not know (404)."""

    status, type, code = 404, "invalid_request_error", "request_not_found"


class RefundedError(GatewayError):
    """The request was refunded on chain (declined input, no majority...): 422 with the chain's
    reason and the receipt of the refund."""

    status, type, code = 422, "inference_refunded", "refunded"


class DeclinedError(GatewayError):
    """The node serving a feeless model declined the request over its channel (422, with its reason)."""

    status, type, code = 422, "inference_declined", "declined"


class UnverifiedOutputError(GatewayError):
    """The settled output does not check out against the chain's commitment (502)."""

    status, type, code = 502, "verification_error", "output_mismatch"


class NoCapacityError(GatewayError):
    """No node serving the model has room now, or the chain does not answer (503, ``Retry-After``)."""

    status, type, code = 503, "server_error", "no_capacity"


class SettlementTimeoutError(GatewayError):
    """The request was made but did not close in time (504); it goes on on chain, and
    ``GET /v1/requests/{id}`` follows it."""

    status, type, code = 504, "server_error", "settlement_timeout"
