"""An agent's ``/healthz`` and Prometheus ``/metrics``, served over HTTP from its own event loop.

Every agent (edge node, IOTA bridger, DAO voter) runs on :class:`joynet.chain.bot.Bot`, which
tells an :class:`AgentMonitor` what each poll saw: the chain's head, the last block whose events
the agent handled, or that the chain did not answer. The monitor keeps the chain metrics every
agent has; the agent's own metrics (jobs, proofs, checkpoints, votes) are registered by its
state object in the same registry (one registry per agent, never prometheus_client's global one,
so that several agents can live in one process)::

    monitor = AgentMonitor("edge_node", registry=node.registry, port=9101)
    bot.run(node, contract, cursor, monitor=monitor)    # serves http://0.0.0.0:9101/metrics

``/healthz`` answers 200 with a small JSON document while the agent polls the chain, and 503 with
the same document when it does not: before its first poll (``"starting"``), when its last poll
could not reach the chain (``"chain unreachable"``), or when no poll completed for
``stall_seconds`` (``"stalled"``).

The port comes from ``--metrics-port`` or ``$JOYNET_METRICS_PORT``; 0 or unset serves nothing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from joynet.errors import JoyNetError

logger = logging.getLogger("joynet.monitoring")

METRICS_PORT_ENV = "JOYNET_METRICS_PORT"
METRICS_HOST_ENV = "JOYNET_METRICS_HOST"
DEFAULT_METRICS_HOST = "0.0.0.0"  # noqa: S104 - a container's probe and Prometheus come from outside it
DEFAULT_STALL_SECONDS = 120.0


class MonitoringError(JoyNetError):
    """The health and metrics server cannot listen (its port is taken, say)."""


@dataclass
class Health:
    """What ``/healthz`` answers; ``healthy`` decides between 200 and 503."""

    agent: str
    status: str
    chain_reachable: bool
    head_block: int | None
    last_block_handled: int | None
    lag_blocks: int | None
    seconds_since_poll: float | None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        document = {
            "agent": self.agent,
            "up": True,
            "status": self.status,
            "chain_reachable": self.chain_reachable,
            "head_block": self.head_block,
            "last_block_handled": self.last_block_handled,
            "lag_blocks": self.lag_blocks,
            "seconds_since_poll": None if self.seconds_since_poll is None else round(self.seconds_since_poll, 3),
        }
        if self.error:
            document["error"] = self.error
        return document


class AgentMonitor:
    """One agent's chain metrics and health, and (with a ``port``) the HTTP server of both."""

    def __init__(
        self,
        agent: str,
        *,
        registry: CollectorRegistry | None = None,
        port: int | None = None,
        host: str = DEFAULT_METRICS_HOST,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
    ):
        """``registry``: the agent's own (its state object's metrics are in it), else a new one;
        ``port``: where to serve (None or 0: nowhere; the metrics are still kept);
        ``stall_seconds``: how long without a completed poll makes the agent unhealthy."""
        self.agent = agent
        self.registry = registry if registry is not None else CollectorRegistry()
        self.port = port or None
        self.host = host
        self.stall_seconds = stall_seconds
        self.head: int | None = None
        self.handled: int | None = None
        self.reachable = False
        self.last_error: str | None = None
        self._last_poll: float | None = None  # monotonic time of the last completed poll
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None  # the port actually listened on (port 0 is never asked for)
        self._head_gauge = Gauge("joynet_chain_head_block", "The chain's latest block number", registry=self.registry)
        self._handled_gauge = Gauge(
            "joynet_last_block_handled", "The last block whose events the agent handled", registry=self.registry
        )
        self._lag_gauge = Gauge(
            "joynet_chain_lag_blocks",
            "Blocks between the chain's head and the last one handled",
            registry=self.registry,
        )
        self._reachable_gauge = Gauge(
            "joynet_chain_reachable", "1 when the agent's last poll reached the chain, else 0", registry=self.registry
        )
        self._poll_failures = Counter(
            "joynet_poll_failures", "Polls of the chain that failed (retried)", registry=self.registry
        )
        self._last_poll_gauge = Gauge(
            "joynet_last_poll_timestamp_seconds", "Unix time of the last completed poll", registry=self.registry
        )

    # ---- what the bot reports ----

    def saw_head(self, head: int) -> None:
        """A poll read the chain's head."""
        self.head, self.reachable, self.last_error = head, True, None
        self._head_gauge.set(head)
        self._reachable_gauge.set(1)
        self._update_lag()

    def handled_through(self, block: int) -> None:
        """The agent handled every event up to ``block`` (its cursor)."""
        self.handled = block
        self._handled_gauge.set(block)
        self._update_lag()

    def poll_done(self) -> None:
        """A poll (events, blocks and ticks) completed."""
        self._last_poll = time.monotonic()
        self._last_poll_gauge.set_to_current_time()

    def chain_unreachable(self, error: BaseException) -> None:
        """Reading the chain's head failed: unreachable until a poll reads it again."""
        self.reachable = False
        self._reachable_gauge.set(0)
        self.last_error = _describe(error)

    def poll_failed(self, error: BaseException) -> None:
        """A poll raised (it is retried from the same cursor); polls that keep failing stall the agent."""
        self.last_error = _describe(error)
        self._poll_failures.inc()

    def _update_lag(self) -> None:
        if self.head is not None and self.handled is not None:
            self._lag_gauge.set(max(self.head - self.handled, 0))

    # ---- what the server answers ----

    def health(self) -> Health:
        since = None if self._last_poll is None else time.monotonic() - self._last_poll
        if not self.reachable and self.last_error is not None:
            status = "chain unreachable"
        elif since is None:
            status = "starting"
        elif since > self.stall_seconds:
            status = "stalled"
        else:
            status = "ok"
        lag = None if self.head is None or self.handled is None else max(self.head - self.handled, 0)
        return Health(self.agent, status, self.reachable, self.head, self.handled, lag, since, self.last_error)

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    async def start(self) -> None:
        """Serves ``/healthz`` and ``/metrics`` on ``host:port`` (nothing without a port)."""
        if self.port is None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self.stop()
            raise MonitoringError(
                f"cannot serve /healthz and /metrics on {self.host}:{self.port}: {error.strerror or error}"
            ) from None
        self.bound_port = self.port
        logger.info("%s: /healthz and /metrics on http://%s:%d", self.agent, self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        health = self.health()
        return web.json_response(health.to_json(), status=200 if health.healthy else 503, dumps=json.dumps)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics_text())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]
