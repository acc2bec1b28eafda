"""The HTTP gateway: an OpenAI-compatible API in front of the marketplace, so that OpenAI's own
clients (the ``openai`` SDK, or anything that speaks its HTTP API) use JoyNet.

The gateway is a requester: it deposits JOY on chain once and pays each of its users' requests
from that balance, publishes their inputs to the store the nodes read, waits for the request to
settle, checks the output document against the commitment the chain settled, and answers in
OpenAI's format with a verification receipt (``joynet``) anyone can check on chain. Its users
authenticate with API keys of its own, each with a spending limit (``keys``).

    app = create_app(GatewaySettings(models=["minilm"]), marketplace, store, KeyLedger.from_file("keys.yaml"))
    web.run_app(app, host="127.0.0.1", port=8080)

``joynet gateway`` runs it from the command line.
"""

from joynet.gateway.app import create_app
from joynet.gateway.errors import GatewayError
from joynet.gateway.keys import ApiKey, KeyLedger, load_keys
from joynet.gateway.service import GatewaySettings, InferenceService

__all__ = ["ApiKey", "GatewayError", "GatewaySettings", "InferenceService", "KeyLedger", "create_app", "load_keys"]
