"""`ape run demo --short` (the CI variant of `make demo`) end to end, as a subprocess on an anvil
of its own: Ape starts it at a free port (APE_FOUNDRY_HOST) and stops it when the demo exits, so
the suite's chain and its snapshots are never touched by the demo's agents."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from helpers import PROJECT_ROOT

APE = str(Path(sys.executable).with_name("ape"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with_environment(marker: str) -> list[str]:
    """Command lines of the live processes whose environment mentions ``marker``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            if marker.encode() in (proc / "environ").read_bytes() and state != b"Z":  # zombies hold nothing
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError):
            continue
    return found


def test_demo__short_run_on_its_own_chain__settles_every_request_changes_the_royalty_and_stops_every_process(tmp_path):
    port = free_port()
    env = {**os.environ, "APE_FOUNDRY_HOST": f"http://127.0.0.1:{port}", "JOYNET_DEPLOYMENTS_DIR": str(tmp_path),
           "PYTHONUNBUFFERED": "1"}
    summary_path = tmp_path / "summary.json"
    process = subprocess.run(
        [APE, "run", "demo", "--short", "--workdir", str(tmp_path / "run"), "--summary-json", str(summary_path)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=360,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, output
    summary = json.loads(summary_path.read_text())

    models = summary["models"]
    assert {name: model["made"] for name, model in models.items()} == {"digits": 3, "minilm": 1, "digits-feeless": 1}
    for name, model in models.items():
        assert model["settled"] == model["made"] and model["checked"] == model["made"], (name, model)
    assert 0 < models["digits"]["proof_p50_s"] < 60 and all(m["latency_p50_s"] > 0 for m in models.values())

    assert summary["checkpoints"] and summary["usage"]["checkpointed"] == summary["usage"]["model"] == 1

    governance = summary["governance"]
    assert (governance["royalty_before_bps"], governance["royalty_after_bps"]) == (2000, 2500)
    assert governance["within_policy"] == {"state": "Executed", "voter": "For"}
    assert governance["outside_policy"] == {"state": "Defeated", "voter": "Against"}

    flows = summary["flows"]
    assert flows["refunded"] == 0 and flows["requester_paid"] == 3 * 5 * 10**18 + 6 * 10**18
    assert flows["requester_paid"] == sum(flows["nodes_earned"].values()) + flows["owner_royalty"] + flows["protocol_share"]
    assert flows["owner_royalty"] == 2 * 10**18 + 125 * 10**16 + 12 * 10**17  # 20 % of 5 + 5 + 6, then 25 % of 5

    assert [p["name"] for p in summary["processes"]] == ["edge-A", "edge-B", "edge-C", "bridger-1", "bridger-2", "voter"]
    assert all(p["exit"] == 0 for p in summary["processes"]), summary["processes"]
    assert summary["leftover_pids"] == []
    assert processes_with_environment(str(tmp_path)) == []  # no agent, prover worker or anvil outlived the demo
    for line in ("Summary (short run", "voter agent votes FOR", "voter agent votes AGAINST",
                 "executing now is refused", "6 started, 6 stopped"):
        assert line in output, f"missing {line!r} in:\n{output}"
