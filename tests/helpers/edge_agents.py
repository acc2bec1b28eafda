"""Helpers of the edge-agent tests: real `ape run edge_agent` processes on the suite's anvil,
requests with published input documents, and the chain's record of what happened."""

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.ape_commands import run_ape
from joynet.edge import JobJournal
from joynet.inference.inputs import publish_input
from joynet.processes import Agent


def agent_environment(deployment, chain, store_directory: Path, deployments_dir: Path) -> dict:
    """The environment of agent processes on the suite's anvil: the deployment saved where they
    look for it, the chain they join, the store they read models and inputs from."""
    deployment.save(deployments_dir / f"{chain.provider.network.name}.json")
    return {**os.environ, "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir), "APE_FOUNDRY_HOST": chain.provider.uri,
            "JOYNET_IPFS_DIR": str(store_directory), "PYTHONUNBUFFERED": "1"}


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class EdgeAgent(Agent):
    """One `ape run edge_agent` of the tests, its journal, log and model cache in a work folder
    (made by ``in_workdir``); ``job_state`` reads the journal, ``status`` runs `edge_agent status`."""

    index: int = 0
    journal_path: Path | None = None
    status_args: list[str] = field(default_factory=list)
    status_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def in_workdir(cls, index: int, workdir: Path, env: dict, models: list[str]) -> "EdgeAgent":
        journal_path = workdir / f"agent{index}.sqlite"
        models_args = [arg for name in models for arg in ("--model", name)]
        common = ["--account-index", str(index), *models_args, "--journal", str(journal_path)]
        # One torch thread per agent: three agents with a thread per core each starve anvil.
        agent_env = {**env, "JOYNET_MODEL_CACHE": str(workdir / f"cache{index}"), "OMP_NUM_THREADS": "1"}
        return cls(name=f"agent{index}", args=["edge_agent", "--capacity", "8", "--withdraw-at", "0", *common],
                   log_path=workdir / f"agent{index}.log", ready_text="listening for", env=agent_env, index=index,
                   journal_path=journal_path, status_args=["edge_agent", "status", "--json", *common], status_env=env)

    def job_state(self, request_id: int) -> str | None:
        if not self.journal_path.exists():
            return None
        journal = JobJournal(self.journal_path, readonly=True)
        try:
            job = journal.get(request_id)
            return job.state if job else None
        finally:
            journal.close()

    def status(self) -> subprocess.CompletedProcess:
        return run_ape(["run", *self.status_args], self.status_env, timeout=120)


async def request_with_input(client, store, model: str, document: dict, *, zk: bool, deadline_seconds: int = 600,
                             assign: bool | None = None):
    """Publishes the input and requests, once enough nodes have room (as a patient requester
    would: a request no node can take reverts with NodeCoordinatorNoEligibleNode). ``assign``:
    as the client's (by default a single-node request is left to its drawn node)."""
    uri, commitment = await publish_input(store, document, zk=zk)
    wait_until_nodes_free(client, model)
    return await client.request_inference(model, commitment, uri, deadline_seconds=deadline_seconds, assign=assign)


def wait_until_closed(client, request_ids, agents, timeout: float) -> None:
    """Waits until no request of ``request_ids`` is open, failing at once if an agent died."""
    from joynet.chain.marketplace import RequestStatus

    def closed():
        for agent in agents:
            agent.check_alive()
        return all(client.status(rid) is not RequestStatus.Open for rid in request_ids)

    wait_for(closed, timeout, f"{len(request_ids)} request(s) to close", interval=0.5)


def wait_until_nodes_free(client, model: str, timeout: float = 120) -> None:
    from joynet.chain.marketplace import model_key

    key, coordinator = model_key(model), client.coordinator
    quorum = client.get_model(model).quorum

    def free_nodes():
        nodes = [coordinator.eligibleNodeAt(key, i) for i in range(coordinator.eligibleNodes(key))]
        return sum(coordinator.isEligible(node, key) for node in nodes) >= quorum

    wait_for(free_nodes, timeout, f"{quorum} free node(s) for {model}", interval=0.2)


def receipts_since(chain, start_block: int) -> list[dict]:
    """The raw receipts of every transaction mined from ``start_block`` on."""
    return [receipt for n in range(start_block, chain.blocks.height + 1)
            for receipt in chain.provider.make_request("eth_getBlockReceipts", [hex(n)])]


def events_of(contract, event_name: str, start_block: int, **topics) -> list:
    from ape import chain

    return list(getattr(contract, event_name).range(start_block, chain.blocks.height + 1, search_topics=topics or None))
