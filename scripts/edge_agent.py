"""`ape run edge_agent [serve|status] [options]`: an edge node's agent (serve, the default) or its
status (stake, load, jobs, fees); the same command as ``joynet agent edge`` (agents/cli.py).

    ape run edge_agent --account-index 6 --model digits --model minilm --capacity 4 \
        --journal ~/.joynet/edge/node6.sqlite --metrics-port 9101
    ape run edge_agent status --account-index 6 --journal ~/.joynet/edge/node6.sqlite

Every option also reads an environment variable (shown by --help).
"""

from agents.cli import edge as cli

__all__ = ["cli"]
