"""Helpers of the edge-agent tests: real `ape run edge_agent` processes on the suite's anvil,
requests with published input documents, and the chain's record of what happened."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import PROJECT_ROOT

from joynet.edge import JobJournal
from joynet.inference.inputs import publish_input

APE = str(Path(sys.executable).with_name("ape"))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class AgentProcess:
    """One `ape run edge_agent` process; its log goes to a file the assertions read."""

    def __init__(self, index: int, workdir: Path, env: dict, models: list[str]):
        self.index, self.env, self.models = index, env, models
        self.journal_path = workdir / f"agent{index}.sqlite"
        self.log_path = workdir / f"agent{index}.log"
        self.cache_dir = workdir / f"cache{index}"
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def args(self, *extra) -> list[str]:
        models = [arg for name in self.models for arg in ("--model", name)]
        return [APE, "run", "edge_agent", *extra, "--account-index", str(self.index), *models,
                "--journal", str(self.journal_path)]

    def start(self) -> "AgentProcess":
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        # One torch thread per agent: three agents with a thread per core each starve anvil.
        env = {**self.env, "JOYNET_MODEL_CACHE": str(self.cache_dir), "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            self.args("--capacity", "8", "--withdraw-at", "0"), cwd=PROJECT_ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
        return self

    def log(self, whole: bool = False) -> str:
        text = self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""
        return text if whole else text[self._log_offset:]

    def wait_ready(self, timeout: float = 240) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"agent {self.index} exited with {self.process.returncode}:\n{self.log()}")
            return "listening for" in self.log()

        wait_for(ready, timeout, f"agent {self.index} to listen", interval=0.5)

    def job_state(self, request_id: int) -> str | None:
        if not self.journal_path.exists():
            return None
        journal = JobJournal(self.journal_path, readonly=True)
        try:
            job = journal.get(request_id)
            return job.state if job else None
        finally:
            journal.close()

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def status(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.args("status", "--json"), cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)


async def request_with_input(client, store, model: str, document: dict, *, zk: bool, deadline_seconds: int = 600,
                             assign: bool | None = None):
    """Publishes the input and requests, once enough nodes have room (as a patient requester
    would: a request no node can take reverts with NodeCoordinatorNoEligibleNode). ``assign``:
    as the client's (by default a single-node request is left to its drawn node)."""
    uri, commitment = await publish_input(store, document, zk=zk)
    wait_until_nodes_free(client, model)
    return await client.request_inference(model, commitment, uri, deadline_seconds=deadline_seconds, assign=assign)


def wait_until_nodes_free(client, model: str, timeout: float = 120) -> None:
    from joynet.chain.marketplace import model_key

    key, coordinator = model_key(model), client.coordinator
    quorum = client.get_model(model).quorum

    def free_nodes():
        nodes = [coordinator.eligibleNodeAt(key, i) for i in range(coordinator.eligibleNodes(key))]
        return sum(coordinator.isEligible(node, key) for node in nodes) >= quorum

    wait_for(free_nodes, timeout, f"{quorum} free node(s) for {model}", interval=0.2)


def events_of(contract, event_name: str, start_block: int, **topics) -> list:
    from ape import chain

    return list(getattr(contract, event_name).range(start_block, chain.blocks.height + 1, search_topics=topics or None))
