"""`make setup` on a machine that lacks a prerequisite stops with one line saying what to install."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "toolchain" / "setup.sh"


@pytest.fixture
def bin_without(tmp_path):
    """A PATH holding the basic tools and the named prerequisites only (others are missing)."""

    def make(*present):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("dirname", *present):
            os.symlink(shutil.which(tool), bin_dir / tool)
        return str(bin_dir)

    return make


@pytest.mark.parametrize(
    "present, missing, advice",
    [
        ((), "python3", "install Python 3.11"),
        (("python3",), "node", "install Node.js 20 or newer"),
        (("python3", "node"), "npm", "install npm"),
    ],
)
def test_setup__missing_prerequisite__says_what_to_install(bin_without, present, missing, advice):
    path = bin_without(*present)
    process = subprocess.run(
        ["/bin/bash", str(SETUP)], env={"PATH": path, "HOME": os.environ.get("HOME", "/")},
        capture_output=True, text=True, timeout=60,
    )
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith(f"joynet setup: '{missing}' not found: {advice}")
