"""``joynet agent edge|bridger|voter``: the agents, run from an installed package.

The commands themselves are the ``agents`` package's (``agents/cli.py``), which the library does
not import: they are found through the ``joynet.agents`` entry points (pyproject.toml), as model
runtimes are, and imported only when one is run (they load Ape and its plugins).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

AGENTS_GROUP = "joynet.agents"


class AgentCommands(click.Group):
    """The subcommands the ``joynet.agents`` entry points name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(point.name for point in entry_points(group=AGENTS_GROUP))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        point = next((point for point in entry_points(group=AGENTS_GROUP) if point.name == cmd_name), None)
        return None if point is None else point.load()


@click.group(cls=AgentCommands)
def agent() -> None:
    """Run an agent (edge node, IOTA bridger, DAO voter) on a chain with a deployment.

    Each takes --network (an Ape network choice, e.g. ethereum:local:foundry) and --metrics-port
    (/healthz and Prometheus /metrics); see docs/operations.md.
    """
