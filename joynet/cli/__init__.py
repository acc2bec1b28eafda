"""The ``joynet`` command (click; progress and errors through rich, on stderr).

    joynet ipfs add [--cid-version 1] [--only-hash] FILE   prints the CID (as ``ipfs add -Q``)
    joynet ipfs cat CID                                    writes the file to stdout
    joynet model publish DIR                               prints the model metadata's CID
    joynet model register SOURCE --model-id ID ...         registers a published model on chain
    joynet model publish-builtin                           publishes the digits MLP and all-MiniLM-L6-v2;
                                                           prints {"digits": CID, "minilm": CID}
    joynet gateway --model ID --keys FILE [--deposit JOY]  serves OpenAI's API over the marketplace
    joynet agent edge|bridger|voter [OPTIONS]              runs an agent (--metrics-port: /healthz, /metrics)

Content goes to the embedded store ($JOYNET_IPFS_DIR, default ~/.joynet/ipfs) unless
``--api MULTIADDR`` (or $JOYNET_IPFS_API) names a Kubo RPC API. What a command prints on stdout
is its result alone; progress goes to stderr. Errors print one line on stderr and exit 1; a
command line that does not parse exits 2 with the usage.
"""

from __future__ import annotations

import sys

import click

from joynet.cli.agent import agent
from joynet.cli.gateway import gateway
from joynet.cli.ipfs import ipfs
from joynet.cli.model import model
from joynet.cli.output import CommandError, fail


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.pass_context
def joynet(context: click.Context) -> None:
    """JoyNet: a decentralized marketplace for AI model inference."""
    if context.invoked_subcommand is None:
        raise click.UsageError("missing command", context)


joynet.add_command(agent)
joynet.add_command(gateway)
joynet.add_command(ipfs)
joynet.add_command(model)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: the process's); returns the exit status."""
    try:
        joynet.main(args=argv, prog_name="joynet", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        return fail("interrupted")
    except CommandError as error:
        return fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
