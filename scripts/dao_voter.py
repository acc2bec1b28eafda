"""`ape run dao_voter [--policy agents/voter-policy.yaml] [--account test:6|ALIAS]`: the DAO voter
agent; the same command as ``joynet agent voter`` (agents/cli.py). Runs until SIGTERM or Ctrl-C.
"""

from agents.cli import voter as cli

__all__ = ["cli"]
