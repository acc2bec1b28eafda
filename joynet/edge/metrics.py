"""An edge node's Prometheus metrics (served by :class:`joynet.monitoring.AgentMonitor`)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# How the chain closes a request this node worked on (a declined request is refunded).
JOB_OUTCOMES = ("settled", "refunded")
# A digits proof takes about a second on an idle core and several on a busy machine.
PROOF_SECONDS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class EdgeMetrics:
    """The node's counters and gauges, in a registry of their own (``registry``)."""

    def __init__(self, in_flight: Callable[[], int]):
        """``in_flight``: the number of jobs the node is working on, read at each scrape."""
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "joynet_edge_jobs", "Jobs of this node by how the chain closed them", ["outcome"], registry=self.registry
        )
        for outcome in JOB_OUTCOMES:  # every series exists from the start, at 0
            self.jobs.labels(outcome)
        self.declines = Counter("joynet_edge_declines", "Requests this node declined on chain", registry=self.registry)
        self.failures = Counter(
            "joynet_edge_job_failures",
            "Jobs this node failed on its side (journaled as failed)",
            registry=self.registry,
        )
        self.proof_seconds = Histogram(
            "joynet_edge_proof_seconds",
            "Seconds to prove an inference (zero-knowledge models)",
            buckets=PROOF_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.stake = Gauge("joynet_edge_stake_joy", "JOY the node has staked (as last read)", registry=self.registry)
        self.missed_deadlines = Counter(
            "joynet_edge_missed_deadlines",
            "Jobs this node could not answer before their deadline",
            registry=self.registry,
        )
        self.queue_depth = Gauge("joynet_edge_jobs_in_flight", "Jobs the node is working on", registry=self.registry)
        self.queue_depth.set_function(in_flight)
