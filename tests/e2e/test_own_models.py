"""A model owner's own models, end to end, without changing JoyNet.

An ONNX classifier JoyNet did not write (scikit-learn's logistic regression exported by
examples/onnx_digits_classifier.py) is published with `joynet model publish`, registered with
`joynet model register` (quorum 3, from its manifest), and served by three `ape run edge_agent`
processes: 20 paid requests settle, each by three agreeing nodes, with the outputs of a direct
onnxruntime run. A runtime plugin pip-installed from its own package (tests/fixtures/joynet-rot13)
is discovered by the agent that has it, which serves a paid request on it; an agent without it
refuses the model before it stakes anything.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ape import accounts
from eth_hash.auto import keccak

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import RequestStatus, model_key
from joynet.storage import EmbeddedStore
from helpers import PROJECT_ROOT
from helpers.ape_commands import run_ape
from helpers.edge_agents import EdgeAgent, agent_environment, events_of, request_with_input, wait_until_closed
from helpers.model_directory import DESCRIPTION

run = asyncio.run
ONNX_MODEL, ROT13_MODEL = "own-onnx-digits", "own-rot13"
ONNX_PRICE, ROT13_PRICE = 2 * JOY, 1 * JOY
REQUESTS = 20
PLUGIN_PACKAGE = PROJECT_ROOT / "tests" / "fixtures" / "joynet-rot13"
GREETING = b"Uryyb, "


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("own-ipfs"))


@pytest.fixture(scope="module")
def agent_env(deployment, store, tmp_path_factory, chain):
    return agent_environment(deployment, chain, store.directory, tmp_path_factory.mktemp("own-deployments"))


@pytest.fixture(scope="module")
def onnx_package(tmp_path_factory):
    import importlib.util

    spec = importlib.util.spec_from_file_location("onnx_digits_classifier",
                                                  PROJECT_ROOT / "examples" / "onnx_digits_classifier.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example.export(tmp_path_factory.mktemp("onnx-model"), quorum=3)


def pip_install_plugin(site: Path) -> Path:
    """`pip install joynet-rot13` into a directory of its own (put on the agent's PYTHONPATH),
    from a copy of its source: setuptools builds in the source tree."""
    source = site.parent / "joynet-rot13"
    shutil.copytree(PLUGIN_PACKAGE, source)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return site


def joynet_command(env: dict, *args: str) -> str:
    """`joynet ARGS` as a model owner runs it; its stdout (it must succeed)."""
    finished = subprocess.run([sys.executable, "-m", "joynet.cli", *args], env=env, capture_output=True, text=True,
                              cwd=PROJECT_ROOT, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip()


def publish_and_register(env: dict, directory: Path, model: str, price: int) -> dict:
    cid = joynet_command(env, "model", "publish", str(directory))
    registration = json.loads(joynet_command(env, "model", "register", cid, "--model-id", model,
                                             "--price", str(price / JOY), "--account", "test:4"))
    assert registration["metadataURI"] == f"ipfs://{cid}"
    return registration


def direct_onnxruntime(package_dir: Path, row: list[float]) -> dict:
    """The output a model owner's own onnxruntime gives, quantized as the manifest declares."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(package_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    label, probabilities = session.run(["label", "probabilities"], {"X": np.asarray([row], dtype=np.float32)})
    scale = yaml.safe_load((package_dir / "model.yaml").read_text())["quantization"]["outputs"]["probabilities"]
    return {"label": label.tolist(), "probabilities": np.rint(probabilities.astype(np.float64) * scale).astype(np.int64).tolist()}


def settled_outputs(client, store, sent: dict, agents, timeout: float) -> dict:
    wait_until_closed(client, list(sent), agents, timeout)
    outputs = {}
    for rid in sent:
        result = run(client.get_result(rid))
        assert result.status is RequestStatus.Settled, (rid, result.refund_reason)
        document = json.loads(run(store.cat(result.output_uri.removeprefix("ipfs://"))))
        assert document["requestId"] == rid
        outputs[rid] = document["output"]
    return outputs


def test_own_onnx_model__published_registered_and_served_by_three_agents__20_requests_settle_as_onnxruntime(
        agent_env, store, onnx_package, marketplace, token, requester, model_owner, chain, tmp_path):
    from sklearn.datasets import load_digits

    start_block = chain.blocks.height
    registration = publish_and_register(agent_env, onnx_package, ONNX_MODEL, ONNX_PRICE)
    model = marketplace.getModel(model_key(ONNX_MODEL))
    manifest = yaml.safe_load((onnx_package / "model.yaml").read_text())
    assert (model.owner, model.metadataURI, model.price, model.quorum) == (
        model_owner.address, registration["metadataURI"], ONNX_PRICE, 3)
    assert "0x" + bytes(model.weightsCommitment).hex() == manifest["weightsCommitment"]

    agents = [EdgeAgent.in_workdir(index, tmp_path, agent_env, [ONNX_MODEL]) for index in (6, 7, 8)]
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, 1_000 * JOY, sender=requester)
    try:
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.wait_ready()
        rows = (load_digits(return_X_y=True)[0][-REQUESTS:] / 16.0).round(4).tolist()
        sent = {run(request_with_input(client, store, ONNX_MODEL, {"X": [row]}, zk=False)): row for row in rows}
        outputs = settled_outputs(client, store, sent, agents, 300)
    finally:
        for agent in agents:
            agent.stop()
    for rid, row in sent.items():
        assert outputs[rid] == direct_onnxruntime(onnx_package, row), rid
        revealed = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
        assert len({event.node for event in revealed}) == 3
        assert len({bytes(event.outputCommitment) for event in revealed}) == 1  # bit for bit the same
    assert {node for rid in sent for node in client.get_request(rid).nodes} == {
        accounts.test_accounts[agent.index].address for agent in agents}


def test_runtime_plugin__installed_from_its_own_package__discovered_and_served_and_refused_without_it(
        agent_env, store, marketplace, coordinator, token, requester, tmp_path):
    plugin_site = pip_install_plugin(tmp_path / "site-packages")
    directory = tmp_path / "rot13-model"
    directory.mkdir()
    (directory / "greeting.txt").write_bytes(GREETING)
    (directory / "model.yaml").write_text(yaml.safe_dump({
        **DESCRIPTION, "name": "rot13-greeter", "framework": "rot13",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "outputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "weightsCommitment": "0x" + keccak(GREETING).hex(), "verification": {"quorum": 1, "circuitId": None},
    }))
    publish_and_register(agent_env, directory, ROT13_MODEL, ROT13_PRICE)

    # Without the plugin: refused before any stake moves.
    without = run_ape(["run", "edge_agent", "--account-index", "7", "--model", ROT13_MODEL,
                       "--journal", str(tmp_path / "without.sqlite")], agent_env, timeout=180)
    assert without.returncode != 0
    assert f"cannot serve {ROT13_MODEL!r}" in without.stderr + without.stdout
    assert "no runtime for framework 'rot13'" in without.stderr + without.stdout
    assert not coordinator.nodeInfo(accounts.test_accounts[7].address).registered

    # With it (pip-installed beside JoyNet): discovered, advertised and served.
    plugin_env = {**agent_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_site), agent_env.get("PYTHONPATH")]))}
    agent = EdgeAgent.in_workdir(6, tmp_path, plugin_env, [ROT13_MODEL])
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, 100 * JOY, sender=requester)
    try:
        agent.start()
        agent.wait_ready()
        rid = run(request_with_input(client, store, ROT13_MODEL, {"text": "Hello world"}, zk=False))
        outputs = settled_outputs(client, store, {rid: None}, [agent], 120)
        status = agent.status()
    finally:
        agent.stop()
    assert outputs[rid] == {"text": "Uryyb, Uryyb jbeyq"}
    assert status.returncode == 0, status.stderr
    assert "rot13" in json.loads(status.stdout)["runtimes"]
