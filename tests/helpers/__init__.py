"""Helpers of the test suite: importable from every test folder as ``helpers.<module>``."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
