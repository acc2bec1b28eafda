"""``joynet ceremony``: a multi-party phase-2 trusted setup of a Groth16 circuit, with a
transcript anyone can verify (``joynet.zk.ceremony``; snarkjs runs as a separate program).

    joynet ceremony init circuit.r1cs pot14_final.ptau -o ceremony
    joynet ceremony contribute ceremony --name alice       (then bob, carol, ... on their machines)
    joynet ceremony beacon ceremony --beacon 0x<block hash> --iterations 10
    joynet ceremony verify ceremony
    joynet ceremony export ceremony
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from joynet.cli.output import CommandError, stderr

ceremony_dir = click.argument("directory", metavar="CEREMONY_DIR", type=click.Path(path_type=Path))


def _echo(result) -> None:
    click.echo(json.dumps(result, indent=2))


def _checked(function, *args, **kwargs):
    """Runs a ceremony step, its progress on stderr (a status line on a terminal); its
    CeremonyError becomes the command's one-line error."""
    from joynet.zk.errors import CeremonyError

    try:
        with stderr.status("starting") as status:
            return function(*args, progress=lambda text: status.update(text), **kwargs)
    except CeremonyError as error:
        raise CommandError(str(error)) from None


@click.group()
def ceremony() -> None:
    """Trusted setup ceremonies: contributions, a beacon, and a transcript anyone can verify."""


@ceremony.command()
@click.argument("r1cs", type=click.Path(path_type=Path))
@click.argument("ptau", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "directory", required=True, type=click.Path(path_type=Path), help="the new ceremony directory"
)
def init(r1cs, ptau, directory) -> None:
    """Start a ceremony of the circuit R1CS with the powers of tau PTAU (contribution 0). Prints
    the transcript as JSON."""
    from joynet.zk.ceremony import init_ceremony

    _echo(_checked(init_ceremony, r1cs, ptau, directory))


@ceremony.command()
@ceremony_dir
@click.option("--name", required=True, help="who contributes (recorded in the zkey and the transcript)")
def contribute(directory, name) -> None:
    """Add a contribution with entropy from the operating system. Prints the new step as JSON
    (its contribution hash: keep it to check the final transcript)."""
    from joynet.zk.ceremony import contribute as add_contribution

    _echo(_checked(add_contribution, directory, name))


@ceremony.command()
@ceremony_dir
@click.option(
    "--beacon", required=True, metavar="HEX", help="a public random value fixed in advance, e.g. a future block hash"
)
@click.option(
    "--iterations", type=click.IntRange(10, 63), default=10, show_default=True, help="the beacon is hashed 2^N times"
)
def beacon(directory, beacon, iterations) -> None:
    """Close the ceremony with a contribution derived from a public random value. Prints the
    step as JSON."""
    from joynet.zk.ceremony import apply_beacon

    _echo(_checked(apply_beacon, directory, beacon, iterations))


@ceremony.command()
@ceremony_dir
@click.option(
    "--ptau", type=click.Path(path_type=Path), help="the powers of tau, if not at the path the transcript recorded"
)
def verify(directory, ptau) -> None:
    """Re-run snarkjs zkey verify on the final zkey and check every transcript entry against the
    contributions it carries. Prints the contributions and the circuit id as JSON; exits 1 with
    the reason on any mismatch."""
    from joynet.zk.ceremony import verify_ceremony

    result = _checked(verify_ceremony, directory, ptau)
    _echo(
        {
            "ok": True,
            "circuit_id": "0x" + result.circuit_id.hex(),
            "zkey_sha256": result.zkey_sha256,
            "transcript_sha256": result.digest,
            "contributions": [
                {"name": step["name"], "contribution_hash": step["contribution_hash"]} for step in result.contributions
            ],
        }
    )


@ceremony.command()
@ceremony_dir
@click.option(
    "--contract-name", default="Groth16Verifier", show_default=True, help="the Solidity verifier's contract name"
)
def export(directory, contract_name) -> None:
    """Write the verification key, the Solidity verifier and the transcript's digest into the
    ceremony directory (once it verifies). Prints their paths and the circuit id as JSON."""
    from joynet.zk.ceremony import export_ceremony

    _echo(_checked(export_ceremony, directory, contract_name=contract_name))
