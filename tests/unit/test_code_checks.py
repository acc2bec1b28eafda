"""`make lint`: the import layering (import-linter, contracts in pyproject.toml), lint and format
(ruff) and types (mypy) pass on the code, and the layering check does fail on an import that
breaks it.

Plain functions: no chain is needed. Each tool runs from the venv, as `make lint` runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT as ROOT

BIN = Path(sys.executable).parent


def run_tool(name: str, *args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    tool = BIN / name
    assert tool.exists(), f"{tool} is missing: `make setup` installs requirements-dev.txt"
    return subprocess.run([str(tool), *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=600)


def output(process: subprocess.CompletedProcess) -> str:
    return process.stdout + process.stderr


def test_lint_imports__project__contracts_kept():
    process = run_tool("lint-imports", "--no-cache")
    assert process.returncode == 0, output(process)


def test_ruff_check__library_agents_bench_and_scripts__no_finding():
    process = run_tool("ruff", "check", "--no-cache", "joynet", "agents", "bench", "scripts")
    assert process.returncode == 0, output(process)


def test_ruff_format__library_agents_bench_and_scripts__already_formatted():
    process = run_tool("ruff", "format", "--check", "--no-cache", "joynet", "agents", "bench", "scripts")
    assert process.returncode == 0, output(process)


def test_mypy__library__no_type_error():
    process = run_tool("mypy", "joynet")
    assert process.returncode == 0, output(process)


def copy_of_project(tmp_path: Path) -> Path:
    """The packages and the contracts alone, where an added import breaks nothing of the project."""
    for package in ("joynet", "bench", "agents"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(module: Path, statement: str) -> None:
    """Puts ``statement`` where the module's imports start: after its docstring and any
    ``from __future__`` import (which must come first)."""
    source = module.read_text()
    start = source.index('"""', source.index('"""') + 3) + 3
    future = "from __future__ import annotations\n"
    if future in source:
        start = source.index(future) + len(future)
    module.write_text(f"{source[:start]}\n{statement}\n{source[start:]}")


def lint_imports_in(copy: Path) -> subprocess.CompletedProcess:
    # The copy's packages, not the editable install's: PYTHONPATH comes first on sys.path.
    return run_tool("lint-imports", "--no-cache", cwd=copy, env={"PYTHONPATH": str(copy)})


def test_lint_imports__zk_imports_edge__layers_contract_broken(tmp_path):
    copy = copy_of_project(tmp_path)
    assert lint_imports_in(copy).returncode == 0, "the unmodified copy must pass for the attack to mean anything"
    add_import(copy / "joynet" / "zk" / "model.py", "import joynet.edge")
    process = lint_imports_in(copy)
    assert process.returncode != 0, output(process)
    assert "joynet's packages are layered BROKEN" in process.stdout, output(process)
    assert "joynet.zk.model -> joynet.edge" in process.stdout, output(process)


@pytest.mark.parametrize("forbidden", ["bench", "agents"])
def test_lint_imports__library_imports_bench_or_agents__forbidden_contract_broken(tmp_path, forbidden):
    copy = copy_of_project(tmp_path)
    add_import(copy / "joynet" / "storage" / "cids.py", f"import {forbidden}")
    process = lint_imports_in(copy)
    assert process.returncode != 0, output(process)
    assert "the library imports neither the agents nor the benchmarks BROKEN" in process.stdout, output(process)
    assert f"joynet.storage.cids -> {forbidden}" in process.stdout, output(process)
