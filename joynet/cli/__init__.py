"""The ``joynet`` command (click; progress and errors through rich, on stderr).

    joynet ipfs add [--cid-version 1] [--only-hash] FILE   prints the CID (as ``ipfs add -Q``)
    joynet ipfs cat CID                                    writes the file to stdout
    joynet model publish DIR                               prints the model metadata's CID
    joynet model register SOURCE --model-id ID ...         registers a published model on chain
    joynet model update MODEL [--price JOY] [--metadata SOURCE]
                                                           the owner changes its price or metadata
    joynet model deactivate MODEL                          the owner withdraws it for good
    joynet model publish-builtin                           publishes the digits MLP and all-MiniLM-L6-v2;
                                                           prints {"digits": CID, "minilm": CID}
    joynet request MODEL --input FILE | --text TEXT [--deposit JOY]
                                                           a paid inference from the deposited balance;
                                                           prints {"output": ..., "receipt": ...}
    joynet node status [ADDRESS] [--journal FILE] [--json] an edge node's stake, load, jobs and fees
    joynet credential issue MODEL HOLDER_DID               a model-access credential (a JWT) of a
                                                           private feeless model
    joynet credential revoke MODEL CREDENTIAL...           revokes credentials on the access channel
    joynet gov propose --description TEXT (--call "Contract.fn(args)" | --target T
        (--signature "fn(types)" ARGS... | --calldata 0x...))
    joynet gov vote PROPOSAL for|against|abstain           (and queue, execute, status [PROPOSAL])
    joynet gov propose-circuit CEREMONY_DIR --verifier ADDRESS
                                                           registers a verifier with its pinned transcript
    joynet ceremony init|contribute|beacon|verify|export   a multi-party trusted setup of a circuit
    joynet gateway --model ID --keys FILE [--deposit JOY]  serves OpenAI's API over the marketplace
    joynet agent edge|bridger|voter [OPTIONS]              runs an agent (--metrics-port: /healthz, /metrics)
    joynet circuit generate MODEL.json [--weights private|public] [-o DIR]
                                                           writes the Circom circuit of a quantized model

Content goes to the embedded store ($JOYNET_IPFS_DIR, default ~/.joynet/ipfs) unless
``--api MULTIADDR`` (or $JOYNET_IPFS_API) names a Kubo RPC API. The commands on chain take
``--network`` (an Ape network choice; default $JOYNET_NETWORK, else the local anvil) and
``--account`` (an Ape alias or test:N; default $JOYNET_ACCOUNT), and find the protocol in the
network's deployment file ($JOYNET_DEPLOYMENTS_DIR; default deployments/ in a checkout, else
$JOYNET_HOME/deployments). What a command prints
on stdout is its result alone (JSON where a script reads it); progress goes to stderr. Errors
print one line on stderr and exit 1; a command line that does not parse exits 2 with the usage.
"""

from __future__ import annotations

import sys

import click

from joynet.cli.agent import agent
from joynet.cli.ceremony import ceremony
from joynet.cli.circuit import circuit
from joynet.cli.credential import credential
from joynet.cli.gateway import gateway
from joynet.cli.gov import gov
from joynet.cli.ipfs import ipfs
from joynet.cli.model import model
from joynet.cli.node import node
from joynet.cli.output import CommandError, fail
from joynet.cli.request import request
from joynet.errors import JoyNetError


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.pass_context
def joynet(context: click.Context) -> None:
    """JoyNet: a decentralized marketplace for AI model inference."""
    if context.invoked_subcommand is None:
        raise click.UsageError("missing command", context)


joynet.add_command(circuit)
joynet.add_command(credential)
joynet.add_command(agent)
joynet.add_command(ceremony)
joynet.add_command(gateway)
joynet.add_command(gov)
joynet.add_command(ipfs)
joynet.add_command(model)
joynet.add_command(node)
joynet.add_command(request)


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
    except (CommandError, JoyNetError) as error:  # the project's own errors are one line, wherever raised
        return fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
