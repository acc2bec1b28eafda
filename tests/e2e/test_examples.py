"""The two examples of examples/ run as an operator runs them (plain Python with Ape, in a
subprocess) against the suite's chain with a deployment file, and print what they promise."""

import re
import subprocess
import sys

from helpers import PROJECT_ROOT
from helpers.ape_commands import ape_env
from joynet import model_key


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
