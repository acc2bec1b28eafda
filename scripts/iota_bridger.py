"""`ape run iota_bridger`: one member of the IOTAValidator committee, checkpointing feeless
channels; the same command as ``joynet agent bridger`` (agents/cli.py).

    ape run iota_bridger --network ethereum:local:foundry --test-account 7
    ape run iota_bridger --network polygon:supernet:node --account bridger1 --metrics-port 9201
"""

from agents.cli import bridger as cli

__all__ = ["cli"]
