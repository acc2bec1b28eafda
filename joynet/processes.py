"""Agents as separate processes: started, watched until ready, and always stopped.

``ape run demo`` starts three edge agents, two bridgers and a voter with :class:`AgentSupervisor`.
Each agent runs as ``ape run <script> ...`` in its own session (so a Ctrl-C in the terminal
reaches only the demo, which then stops them in order), with its output in a log file, and gets
SIGTERM from the kernel should the demo die without stopping it. Stopping sends SIGTERM (the
agents drain and exit), waits, then kills whatever is left of the agent's process group (its
Node prover worker included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from joynet.chain.deployment_file import PROJECT_ROOT

APE = str(Path(sys.executable).with_name("ape"))
TAIL_LINES = 15


class AgentError(RuntimeError):
    """An agent exited, or did not get ready in time; the message names it and its log."""


@dataclass
class Agent:
    """One ``ape run`` agent process; ``ready_text`` is the log line that says it is serving."""

    name: str
    args: list[str]
    log_path: Path
    ready_text: str
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after: float | None = None
    exit_code: int | None = None
    extra: dict = field(default_factory=dict)
    log_offset: int = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        """Starts the process (again, after a stop: the log file goes on, ``log`` reads this run's part)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.ready_after = self.exit_code = None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [APE, "run", *self.args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()

    def log(self, whole: bool = False) -> str:
        """What this run wrote (every run's output with ``whole``)."""
        data = self.log_path.read_bytes() if self.log_path.exists() else b""
        return (data if whole else data[self.log_offset :]).decode(errors="replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(f"    | {line}" for line in self.log().splitlines()[-lines:]) or "    | (empty)"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if self.process is not None and not self.running():
            raise AgentError(
                f"{self.name} (pid {self.pid}) exited with code {self.process.returncode}; its log is {self.log_path}"
            )

    def is_ready(self) -> bool:
        self.check_alive()
        if self.ready_after is None and self.ready_text in self.log():
            self.ready_after = time.monotonic() - self.started_at
        return self.ready_after is not None

    def wait_for(
        self, text: str, timeout: float = 90.0, step: Callable[[], None] | None = None, interval: float = 0.2
    ) -> str:
        """Waits until a line of this run's log contains ``text`` (calling ``step()`` between looks);
        returns that line. Raises AgentError if the agent exits first or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            line = next((line for line in self.log().splitlines() if text in line), None)
            if line is not None:
                return line
            try:
                self.check_alive()
            except AgentError as error:
                raise AgentError(f"{error} before {text!r}:\n{self.log()}") from None
            if time.monotonic() > deadline:
                raise AgentError(f"no {text!r} from {self.name} within {timeout:.0f} s:\n{self.log()}")
            if step is not None:
                step()
            time.sleep(interval)

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Waits for this run's ready line (``ready_text``)."""
        self.wait_for(self.ready_text, timeout, interval=0.5)
        self.ready_after = time.monotonic() - self.started_at

    def signal(self, signum: int) -> None:
        if self.process is None:
            raise AgentError(f"{self.name} was never started")
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, up to ``timeout`` for the agent to drain, then SIGKILL to whatever is left of its
        process group; returns the exit code (None if it never started)."""
        if self.running():
            self.signal(signal.SIGTERM)
        self.reap(time.monotonic() + timeout)
        return self.exit_code

    def reap(self, deadline: float) -> bool:
        """Waits until ``deadline`` for the exit (then sets ``exit_code``) and kills what is left of
        the process group; True if the agent itself had to be killed."""
        process = self.process
        if process is None:
            return False
        killed = False
        try:
            self.exit_code = process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            self.exit_code, killed = process.wait(), True
        _kill_group(process.pid)  # helpers it left behind (its group outlives it)
        return killed


class AgentSupervisor:
    """The agents of one run. ``report(text)`` prints progress; ``alert(text)`` prints a failure's
    detail (an agent's log tail) before the one-line error is raised."""

    def __init__(self, report: Callable[[str], None], alert: Callable[[str], None]):
        self.agents: list[Agent] = []
        self.report, self.alert = report, alert

    def start(self, agent: Agent) -> Agent:
        agent.start()
        self.agents.append(agent)
        self.report(f"started {agent.name:<10} pid {agent.pid:<7} ape run {' '.join(agent.args)}")
        return agent

    def wait_ready(self, timeout: float, progress_every: float = 30.0) -> None:
        """Waits until every agent printed its ready line; an exit or the timeout raises AgentError
        naming the agent, after its log tail is shown."""
        deadline, next_progress = time.monotonic() + timeout, time.monotonic() + progress_every
        waiting = list(self.agents)
        while waiting:
            for agent in list(waiting):
                try:
                    ready = agent.is_ready()
                except AgentError:
                    self.alert(f"{agent.name} died while starting; the end of {agent.log_path}:\n{agent.tail()}")
                    raise
                if ready:
                    waiting.remove(agent)
                    self.report(f"{agent.name:<10} ready after {agent.ready_after:.1f} s")
            if not waiting:
                return
            now = time.monotonic()
            if now > deadline:
                for agent in waiting:
                    self.alert(
                        f"{agent.name} is not ready after {timeout:.0f} s; the end of {agent.log_path}:\n{agent.tail()}"
                    )
                names = ", ".join(agent.name for agent in waiting)
                raise AgentError(f"{names} not ready within {timeout:.0f} s (no {waiting[0].ready_text!r} in the log)")
            if now > next_progress:
                self.report(f"still starting: {', '.join(agent.name for agent in waiting)}")
                next_progress = now + progress_every
            time.sleep(0.25)

    def find(self, name: str | None) -> Agent | None:
        return next((agent for agent in self.agents if agent.name == name), None)

    def check_alive(self) -> None:
        """Raises AgentError (after showing its log tail) if an agent has died."""
        for agent in self.agents:
            try:
                agent.check_alive()
            except AgentError:
                self.alert(f"{agent.name} died; the end of {agent.log_path}:\n{agent.tail()}")
                raise

    def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM to every agent at once, up to ``timeout`` for them to drain, then SIGKILL to
        whatever is left of each agent's process group."""
        for agent in self.agents:
            if agent.process is not None and agent.running():
                agent.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for agent in self.agents:
            if agent.process is None:
                continue
            if agent.reap(deadline):
                self.alert(f"{agent.name} (pid {agent.pid}) did not stop within {timeout:.0f} s of SIGTERM: killed")
            self.report(f"stopped {agent.name:<10} pid {agent.pid:<7} exit {agent.exit_code}")
        deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def leftovers(self) -> list[int]:
        """Pids still alive (zombies aside) in the agents' process groups: empty after stop_all."""
        groups = {agent.pid for agent in self.agents if agent.pid}
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")"
                state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if int(pgrp) in groups and state != "Z":
                alive.append(int(stat.parent.name))
        return alive


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies (even by SIGKILL), as Ape does
    for the anvil it starts. Linux only; elsewhere the supervisor's own stop is all there is."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
