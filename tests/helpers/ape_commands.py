"""The environment of an `ape ...` subprocess against the suite's anvil and the tests' deployment
file, and a one-shot command in it (agents are run by joynet.processes.Agent)."""

import os
import subprocess
import sys
from pathlib import Path

from helpers import PROJECT_ROOT

APE = str(Path(sys.executable).with_name("ape"))


def ape_env(chain, deployments_dir: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "APE_FOUNDRY_HOST": chain.provider.uri,
        "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def run_ape(args, env, timeout=180) -> subprocess.CompletedProcess:
    """A one-shot `ape ...` command in ``env`` (a whole environment: see ape_env, or
    ``{**os.environ, ...}``); returns the finished process (stdout, stderr, returncode)."""
    return subprocess.run([APE, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
