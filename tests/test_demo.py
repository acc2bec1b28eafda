"""`ape run demo` (what `make demo` runs) end to end, as a subprocess on the suite's chain."""

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_demo__on_a_local_chain__carries_a_governance_change_through_the_timelock(chain, tmp_path, project):
    env = {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri, "JOYNET_DEPLOYMENTS_DIR": str(tmp_path)}
    ape = str(Path(sys.executable).with_name("ape"))
    process = subprocess.run(
        [ape, "run", "demo"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    for expected in (
        "deployer is timelock admin: False",
        "after the voting delay (1 block): Active",
        "quorum was 40,000,000 JOY: Succeeded",
        "executing now is refused: proposal",
        "state Executed; quorum is now 5 %",
        "Summary",
    ):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    deployed = json.loads((tmp_path / "local.json").read_text())
    assert project.ModelGovernanceDAO.at(deployed["contracts"]["ModelGovernanceDAO"]).quorumNumerator() == 5
