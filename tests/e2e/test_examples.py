"""The examples of examples/ run as an operator runs them (plain Python with Ape, in a
subprocess) against the suite's chain with a deployment file, and print what they promise. The
original design's two examples run as written there, configured by the environment only: the
feeless one answered by an edge agent serving its model on the owner's channel, the governance
one carried from proposal to execution while the chain moves on as a real one does."""

import asyncio
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PROJECT_ROOT
from helpers.ape_commands import ape_env
from helpers.edge_agents import EdgeAgent, wait_for

from joynet import InferenceNode, model_key
from joynet.chain.constants import ZERO_ADDRESS
from joynet.models.builtin import write_minilm_package
from joynet.models.package import publish_model
from joynet.storage import EmbeddedStore

OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
AGENT_ACCOUNT = 5  # neither the model owner's (4) nor the bridgers' (7, 8, 9)


def run_example(name, chain, tmp_path):
    env = ape_env(chain, tmp_path, JOYNET_CHANNEL_DB=str(tmp_path / "channels.sqlite3"), JOYNET_IPFS_DIR=str(tmp_path / "ipfs"))
    process = subprocess.run(
        [sys.executable, f"examples/{name}.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


def test_example_feeless_inference__on_a_deployed_chain__answers_over_the_channel(chain, deployment, tmp_path, marketplace):
    deployment.save(tmp_path / "local.json")
    out = run_example("feeless_inference", chain, tmp_path)
    name = re.search(r"registered (digits-feeless-\d+): price 0, stream (0x[0-9a-f]{64})", out)
    assert name, out
    assert re.search(rf"channel {name.group(2)} announced", out)
    assert "stream link requested" in out
    label = re.search(r"response over the channel: class (\d) \(the image is a (\d)\)", out)
    assert label and label.group(1) == label.group(2), out
    assert "the requester sent no transaction: feeless" in out
    assert marketplace.isFeeless(model_key(name.group(1)))


def test_example_governance_proposal__on_a_deployed_chain__executes_the_royalty_change(chain, deployment, tmp_path, marketplace):
    deployment.save(tmp_path / "local.json")
    out = run_example("governance_proposal", chain, tmp_path)
    assert "proposed 0x" in out and "royalty 2000 -> 2500 bps; state Pending" in out
    assert "voted: for 100,000,000 JOY, against 0 JOY" in out
    assert "voting closed: Succeeded" in out
    assert "queued in the timelock for 60 s: Queued" in out
    assert "executed: fee shares node/owner/protocol now 6500/2500/1000 bps" in out
    assert marketplace.ownerShareBps() == 2500


def start_example(name, env):
    return subprocess.Popen([sys.executable, f"examples/{name}.py"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(example, timeout):
    try:
        out, err = example.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        example.kill()
        out, err = example.communicate()
        raise AssertionError(f"the example did not finish in {timeout} s:\n{out}{err}") from None
    assert example.returncode == 0, out + err
    return out


def test_design_governance_example__as_the_chain_moves_on__hands_the_marketplace_to_the_new_governance(
        chain, deployment, marketplace, token, timelock, alice, accounts, tmp_path):
    token.invoke_transaction("delegate", alice, sender=alice)  # the proposer's JOY counts from its proposal on
    new_governance = accounts[6].address
    example = start_example("governance_handover", ape_env(
        chain, tmp_path, POLYGON_SUPERNET_RPC=chain.provider.uri, MODEL_MARKETPLACE_ADDRESS=marketplace.address,
        MODEL_GOVERNANCE_DAO_ADDRESS=deployment.address("ModelGovernanceDAO"), NEW_GOVERNANCE_ADDRESS=new_governance,
        JOYNET_ACCOUNT=f"test:{[a.address for a in accounts].index(alice.address)}"))
    try:
        deadline = time.monotonic() + 120
        while example.poll() is None and time.monotonic() < deadline:
            # A block every 0.1 s, each 15 s of chain time later: the voting delay and period
            # pass in a few seconds, the timelock's minute in about one.
            chain.provider.make_request("evm_increaseTime", [15])
            chain.provider.make_request("evm_mine", [])
            time.sleep(0.1)
        out = finished(example, 10)
    finally:
        if example.poll() is None:
            example.kill()
    assert re.search(r"proposed 0x[0-9a-f]+\nvoted for\nqueued: executable from \d+\n", out), out
    assert f"executed: the marketplace's governance is now {new_governance}" in out
    assert marketplace.owner() == new_governance and timelock.address != new_governance


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    """all-MiniLM-L6-v2 published to a store of its own: (store directory, metadata CID)."""
    directory = tmp_path_factory.mktemp("design-store")
    package = write_minilm_package(tmp_path_factory.mktemp("minilm-package"), 1)
    return directory, asyncio.run(publish_model(EmbeddedStore(directory), package))


def test_design_feeless_example__an_edge_agent_serves_mymodel__prints_the_local_embedding(
        chain, deployment, marketplace, tmp_path, text_model):
    store_dir, cid = text_model
    ledger = tmp_path / "channels.sqlite3"
    deployment.save(tmp_path / f"{chain.provider.network.name}.json")  # for the agent
    common = {"JOYNET_IPFS_DIR": str(store_dir), "JOYNET_CHANNEL_DB": str(ledger)}
    example = start_example("feeless_text_model", ape_env(
        chain, tmp_path, **common, IOTA_NODE_URL=f"sqlite://{ledger}", IOTA_WALLET_SEED=OWNER_SEED,
        POLYGON_SUPERNET_RPC=chain.provider.uri, MODEL_MARKETPLACE_ADDRESS=marketplace.address,
        JOYNET_ACCOUNT="test:4", MODEL_METADATA_CID=cid, JOYNET_MODEL_CACHE=str(tmp_path / "requester")))
    agent = EdgeAgent.in_workdir(AGENT_ACCOUNT, tmp_path, ape_env(chain, tmp_path, **common), ["mymodel"])

    async def run_locally():
        node = InferenceNode(store=EmbeddedStore(store_dir), cache_dir=tmp_path / "local")
        try:
            return await node.execute_inference(f"ipfs://{cid}", {"text": "Hello world"})
        finally:
            await node.close()

    with ThreadPoolExecutor(1) as local_run:  # the reference embedding, on the core the agent leaves free
        local = local_run.submit(asyncio.run, run_locally())
        try:
            # The operator starts serving once the owner registered the model; the example's
            # request waits for a serving node.
            wait_for(lambda: example.poll() is not None
                     or marketplace.getModel(model_key("mymodel")).owner != ZERO_ADDRESS, 120, "mymodel's registration")
            agent.start()
            out = finished(example, 180)
        finally:
            if example.poll() is None:
                example.kill()
            if agent.running():
                agent.stop()
        local = local.result()
    assert "registered mymodel at price 0 on stream 0x" in out
    assert marketplace.isFeeless(model_key("mymodel"))
    assert "serving feeless mymodel" in agent.log(), agent.log()
    printed = json.loads(out.strip().splitlines()[-1])
    assert printed == local.output and len(printed["embedding"]) == 384
    assert f"output commitment {local.output_commitment_hex}" in out
