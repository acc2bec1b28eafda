"""Runs `ape run ...` in a subprocess against the suite's anvil and the tests' deployment file,
the way an operator runs an agent or a command next to a chain."""

import os
import subprocess
import sys
import threading
import time
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
    """A one-shot `ape ...` command; returns the finished process (stdout, stderr, returncode)."""
    return subprocess.run([APE, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


class AgentProcess:
    """A long-running `ape run <agent>`; its output is collected line by line as it comes."""

    def __init__(self, args, env):
        self.process = subprocess.Popen(
            [APE, *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90.0, step=None) -> str:
        """Waits until a line contains ``text`` (calling ``step()`` between looks); returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                raise AssertionError(f"the agent exited ({self.process.returncode}) before {text!r}:\n{self.output}")
            if step is not None:
                step()
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit status (the agent must stop on its own)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode
