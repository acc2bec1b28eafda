"""Real `ape run iota_bridger` processes for the feeless tests."""

import subprocess
import sys
from pathlib import Path

from helpers import PROJECT_ROOT

APE = str(Path(sys.executable).with_name("ape"))


def run_bridgers(env, members):
    """Two (or more) bridger processes at once, each until the streams are checkpointed."""
    processes = [
        subprocess.Popen([APE, "run", "iota_bridger", "--test-account", str(member), "--until-caught-up",
                          "--poll-seconds", "0.5", "--max-seconds", "150"],
                         cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for member in members
    ]
    outputs = [process.communicate(timeout=240)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    print(*outputs, sep="\n")  # the bridgers' log: shown with -s, and by pytest on failure
    return "\n".join(outputs)
