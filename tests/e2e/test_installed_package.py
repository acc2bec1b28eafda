"""joynet installed from its sources into a fresh virtualenv and run outside the checkout: the
installed copy is the one imported (not the checkout's), `joynet --help`, `joynet model publish`,
and `joynet agent edge` on the suite's anvil with its deployment under $JOYNET_HOME: it stakes and
joins, answers a paid digits request with a proof, serves /healthz and /metrics, reports its
status and drains on SIGTERM.

The virtualenv holds the joynet wheel alone; its dependencies come from this environment's
site-packages through a .pth line (whose own .pth files, the checkout's editable finder among
them, are not run), so that the test takes seconds instead of a full install.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ape import accounts
from helpers import PROJECT_ROOT
from helpers.edge_agents import request_with_input, wait_for
from helpers.ipfs_daemon import free_local_port
from helpers.metrics import metric_samples as samples

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import RequestStatus
from joynet.inference.inputs import digits_input
from joynet.models.builtin import write_digits_package
from joynet.models.package import publish_model
from joynet.storage import EmbeddedStore

run = asyncio.run
MODEL = "installed-digits"
OPERATOR = 6  # Ape's test account of the edge agent
SOURCES = ("pyproject.toml", "README.md", "joynet", "agents", "bench")


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtualenv with joynet installed from a wheel built from the checkout's sources."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "src"  # a copy: building in the checkout would leave build/ and egg-info there
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "wheel", source],
                   check=True, timeout=120)
    (wheel,) = (root / "wheel").glob("joynet-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root / "venv"], check=True, timeout=60)
    python = root / "venv" / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], check=True, timeout=120)
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "joynet-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root / "venv"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("joynet-home")


@pytest.fixture(scope="module")
def deployment_file(home, deployment, chain, marketplace, coordinator, model_owner, requester):
    """The suite's deployment, saved where an installed package looks: $JOYNET_HOME/deployments/.
    Both tests take it, so that the session's chain fixtures exist before this module's first
    snapshot (Ape would otherwise rebase the chain under the module)."""
    path = home / "deployments" / f"{chain.provider.network.name}.json"
    deployment.save(path)
    return path


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """The working directory of the installed commands: not the checkout."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def installed_env(home):
    """The installed commands' environment: none of the checkout's settings (no PYTHONPATH, no
    deployments or store directories), $JOYNET_HOME for everything."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "JOYNET_DEPLOYMENTS_DIR", "JOYNET_IPFS_DIR", "JOYNET_IPFS_API",
                           "JOYNET_MODEL_CACHE", "JOYNET_METRICS_PORT")}
    return {**env, "JOYNET_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def installed(venv, outside, env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([venv / "bin" / args[0], *args[1:]], cwd=outside, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def digits_cid(venv, outside, installed_env, tmp_path_factory):
    """`joynet model publish` of the digits package by the installed command: its metadata CID."""
    package = write_digits_package(tmp_path_factory.mktemp("digits-package"))
    published = installed(venv, outside, installed_env, "joynet", "model", "publish", str(package))
    assert published.returncode == 0, published.stderr
    return published.stdout.strip()


def test_installed_package__outside_the_checkout__the_installed_copy_publishes_a_model(
        venv, outside, installed_env, home, digits_cid, deployment_file, deployment, tmp_path):
    probe = installed(venv, outside, installed_env, "python", "-c", (
        "import json, joynet, agents; from joynet.paths import CHECKOUT; "
        "from joynet.chain.deployment_file import Deployment, deployment_path; "
        "from joynet.zk.prover import DEFAULT_CIRCUIT_DIR; path = deployment_path('local'); "
        "print(json.dumps([joynet.__file__, agents.__file__, str(CHECKOUT), str(path), "
        "Deployment.load(path).contracts, sorted(p.name for p in DEFAULT_CIRCUIT_DIR.iterdir())]))"))
    assert probe.returncode == 0, probe.stderr
    joynet_file, agents_file, checkout, found, contracts, circuit = json.loads(probe.stdout)
    assert Path(joynet_file).is_relative_to(venv) and Path(agents_file).is_relative_to(venv)
    assert checkout == "None" and found == str(deployment_file) and contracts == deployment.contracts
    assert circuit == ["digits_mlp.wasm", "digits_mlp.zkey", "manifest.json", "verification_key.json"]

    help_text = installed(venv, outside, installed_env, "joynet", "--help")
    assert help_text.returncode == 0 and "agent" in help_text.stdout and "model" in help_text.stdout
    agents_help = installed(venv, outside, installed_env, "joynet", "agent", "--help")
    assert [line.split()[0] for line in agents_help.stdout.split("Commands:")[1].splitlines() if line.strip()] == [
        "bridger", "edge", "voter"]

    # The same CID as the checkout's library computes, and the files in $JOYNET_HOME's store.
    reference = run(publish_model(EmbeddedStore(tmp_path / "reference"), write_digits_package(tmp_path / "digits")))
    assert digits_cid == reference
    assert json.loads(run(EmbeddedStore(home / "ipfs").cat(digits_cid)))["name"]


def test_installed_edge_agent__local_chain__joins_answers_a_request_and_serves_healthz_and_metrics(
        venv, outside, installed_env, home, digits_cid, deployment_file, chain, marketplace, model_owner, requester,
        coordinator):
    store = EmbeddedStore(home / "ipfs")
    metadata = json.loads(run(store.cat(digits_cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(MODEL, f"ipfs://{digits_cid}", price=5 * JOY,
                             weights_commitment=metadata["weightsCommitment"],
                             quorum=metadata["verification"]["quorum"], circuit_id=metadata["verification"]["circuitId"]))
    port = free_local_port()
    env = {**installed_env, "APE_FOUNDRY_HOST": chain.provider.uri, "OMP_NUM_THREADS": "1",
           "JOYNET_NODE_MODULES": str(PROJECT_ROOT / "node_modules")}
    common = ["--network", "ethereum:local:foundry", "--account-index", str(OPERATOR), "--model", MODEL]
    log_path = home / "agent.log"
    with log_path.open("wb") as log:
        agent = subprocess.Popen([venv / "bin" / "joynet", "agent", "edge", *common, "--metrics-port", str(port),
                                  "--withdraw-at", "0"], cwd=outside, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)

    def alive():
        assert agent.poll() is None, f"the agent exited with {agent.returncode}:\n{log_path.read_text()}"
        return True

    def get(path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        wait_for(lambda: alive() and "listening for" in log_path.read_text(), 240, "the installed agent to serve", interval=0.5)
        wait_for(lambda: get("/healthz")[0] == 200, 30, "a healthy agent", interval=0.2)
        health = json.loads(get("/healthz")[1])
        assert health["agent"] == "edge_node" and health["chain_reachable"] and health["lag_blocks"] <= 1

        client = ModelMarketplace(contract_address=marketplace.address, account=requester)
        request_id = run(request_with_input(client, store, MODEL, digits_input([4] * 64), zk=True))
        wait_for(lambda: alive() and client.status(request_id) is RequestStatus.Settled, 120,
                 "the request settled", interval=0.5)
        metrics = {}
        wait_for(lambda: metrics.update(samples(get("/metrics")[1])) or
                 metrics.get('joynet_edge_jobs_total{outcome="settled"}') == 1, 30, "the settlement counted")
        node = accounts.test_accounts[OPERATOR].address
        assert metrics["joynet_edge_stake_joy"] == coordinator.nodeInfo(node).stake / JOY > 0
        assert metrics["joynet_edge_proof_seconds_count"] == 1 and metrics["joynet_edge_proof_seconds_sum"] > 0
        assert metrics['joynet_edge_jobs_total{outcome="refunded"}'] == 0
        assert metrics["joynet_edge_jobs_in_flight"] == 0
        assert metrics["joynet_last_block_handled"] >= chain.blocks.height - 1

        status = installed(venv, outside, env, "joynet", "agent", "edge", "status", "--json", *common)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["node"] == node and report["registered"] and report["outcomes"] == {"settled": 1}, report
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
        try:
            code = agent.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            code = agent.wait()
        try:
            os.killpg(agent.pid, signal.SIGKILL)  # the prover worker, if it outlived the agent
        except ProcessLookupError:
            pass
    assert code == 0, log_path.read_text()
    assert "stopped: jobs" in log_path.read_text()
    with pytest.raises(OSError):  # the server went with the agent
        get("/healthz")

