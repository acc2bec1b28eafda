"""``edge.agent_peak_rss_mb``: the memory of one ``ape run edge_agent`` serving every kind of model.

``measure_agent_memory(deployment, owner, requester, operator_index)`` publishes the four models
to a fresh embedded store (the digits MLP with its circuit, MiniLM, the PyTorch CNN of
examples/onnx_cnn_classifier.py on the onnx runtime, SmolLM2-135M-Instruct on the causal-lm
runtime), registers them (quorum 1), starts one agent process that serves all four on the
connected local chain, sends one request to each, waits until all four settled, and samples the
resident memory of the agent and of its children (the snarkjs prover worker) every 0.2 s:

    edge.agent_peak_rss_mb        the largest sum of the agent's and its children's resident memory
    edge.agent_python_peak_rss_mb the agent process alone, its own high-water mark (VmHWM)
    edge.agent_ready_seconds      start -> serving: stake, every model fetched, loaded and warmed up
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil

from joynet.chain.deploy import JOY
from joynet.chain.marketplace import ModelMarketplace, RequestStatus
from joynet.inference.inputs import digits_input, publish_input
from joynet.inference.runtimes.language_model import write_smollm2_package
from joynet.models.builtin import publish_builtin_models
from joynet.models.package import load_model_metadata, publish_model
from joynet.processes import Agent
from joynet.storage import EmbeddedStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAMPLE_SECONDS = 0.2


class PeakMemory(threading.Thread):
    """Samples the resident memory of a process and its children until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(_rss(member) for member in tree))
            except psutil.NoSuchProcess:
                return

    def own_high_water_mark(self) -> int:
        """VmHWM of the process itself, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def measure_agent_memory(deployment, owner, requester, operator_index: int, say=print) -> dict:
    from ape import chain

    with tempfile.TemporaryDirectory(prefix="joynet-agent-memory-") as work:
        workdir = Path(work)
        deployment.save(workdir / "deployments" / f"{chain.provider.network.name}.json")
        store = EmbeddedStore(workdir / "ipfs")
        models = asyncio.run(_register_models(store, deployment, owner, workdir))
        env = {
            **os.environ,
            "APE_FOUNDRY_HOST": chain.provider.uri,
            "JOYNET_DEPLOYMENTS_DIR": str(workdir / "deployments"),
            "JOYNET_IPFS_DIR": str(store.directory),
            "JOYNET_MODEL_CACHE": str(workdir / "cache"),
            "PYTHONUNBUFFERED": "1",
        }
        model_args = [argument for name in models for argument in ("--model", name)]
        agent = Agent(
            name="memory-agent",
            args=[
                "edge_agent",
                "--account-index",
                str(operator_index),
                *model_args,
                "--journal",
                str(workdir / "journal.sqlite"),
                "--capacity",
                "4",
            ],
            log_path=workdir / "agent.log",
            ready_text="listening for",
            env=env,
        )
        agent.start()
        sampler = PeakMemory(agent.pid)
        sampler.start()
        try:
            agent.wait_ready(600)
            ready_seconds = time.monotonic() - agent.started_at
            say(f"agent memory: one agent serving {len(models)} models, ready in {ready_seconds:.0f} s")
            asyncio.run(_one_request_each(store, deployment, requester, models))
            high_water = sampler.own_high_water_mark()
        finally:
            sampler.done.set()
            agent.stop(60)
        sampler.join()
    return {
        "edge.agent_peak_rss_mb": round(sampler.peak / 1e6, 1),
        "edge.agent_python_peak_rss_mb": round(high_water / 1e6, 1),
        "edge.agent_ready_seconds": round(ready_seconds, 1),
    }


async def _register_models(store, deployment, owner, workdir: Path) -> dict[str, tuple[str, dict]]:
    """Publishes and registers the four models; {name: (kind, an input)}."""
    spec = importlib.util.spec_from_file_location("onnx_cnn_classifier", EXAMPLES / "onnx_cnn_classifier.py")
    cnn = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(cnn)  # type: ignore[union-attr]
    cids = await publish_builtin_models(store)
    cids["cnn"] = await publish_model(store, cnn.export(workdir / "cnn", quorum=1))
    cids["llm"] = await publish_model(store, write_smollm2_package(workdir / "smollm2", maxNewTokens=32))
    from joynet.zk.digits import load_split

    inputs = {
        "digits": digits_input([int(p) for p in load_split()[1][0]]),
        "minilm": {"text": "Hello world"},
        "cnn": {"image": cnn.digits_images()[0][-4:].numpy().tolist()},
        "llm": {"text": "Hello world", "max_tokens": 32},
    }
    client = ModelMarketplace(contract_address=deployment.address("ModelMarketplace"), account=owner)
    suffix, models = str(int(time.time())), {}
    for kind, cid in cids.items():
        metadata = await load_model_metadata(store, cid)
        name = f"memory-{kind}-{suffix}"
        await client.register_model(
            name,
            f"ipfs://{cid}",
            price=1 * JOY,
            weights_commitment=metadata["weightsCommitment"],
            quorum=1,
            circuit_id=metadata["verification"].get("circuitId"),
        )
        models[name] = (kind, inputs[kind])
    return models


async def _one_request_each(store, deployment, requester, models: dict) -> None:
    client = ModelMarketplace(contract_address=deployment.address("ModelMarketplace"), account=requester)
    requests = []
    for name, (kind, document) in models.items():
        uri, commitment = await publish_input(store, document, zk=kind == "digits")
        requests.append(await client.request_inference(name, commitment, uri))
    deadline = time.monotonic() + 300
    while any(client.status(rid) is RequestStatus.Open for rid in requests):
        if time.monotonic() > deadline:
            raise TimeoutError("the agent did not settle one request of each model within 300 s")
        await asyncio.sleep(0.2)
    refunded = [rid for rid in requests if client.status(rid) is not RequestStatus.Settled]
    if refunded:
        raise RuntimeError(f"requests {refunded} were not settled")
