"""Generates the Solidity batch verifier of a Groth16 circuit from its snarkjs verification key.

snarkjs exports a verifier that checks one proof with four pairings. The batch verifier this
module writes (template ``templates/batch_verifier.sol.j2``; the construction and its soundness
argument are in the contract's NatSpec and in docs/zero-knowledge.md) checks N proofs of the same
circuit with N + 3 pairings. ``make circuits`` regenerates it after exporting the snarkjs verifier;
a test checks that the committed contract is this module's output for the committed key.

Usage: ``python -m joynet.zk.batch_verifier VERIFICATION_KEY OUTPUT.sol [--name CONTRACT]``
"""

import json
from pathlib import Path

import click
import jinja2

from joynet.zk.prover import DEFAULT_CIRCUIT_DIR

TEMPLATE = Path(__file__).with_name("templates") / "batch_verifier.sol.j2"
DEFAULT_NAME = "DigitsMLPBatchVerifier"
DEFAULT_KEY = DEFAULT_CIRCUIT_DIR / "verification_key.json"
# The BN254 scalar field (r) and base field (q), as in every snarkjs verifier.
SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617
BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583


def _g2(point: list[list[str]]) -> list[str]:
    """A G2 point in the precompile's order: x imaginary, x real, y imaginary, y real."""
    return [point[0][1], point[0][0], point[1][1], point[1][0]]


def render_batch_verifier(key: dict, name: str = DEFAULT_NAME, source: str = "verification_key.json") -> str:
    """The Solidity source of the batch verifier for the snarkjs Groth16 verification key ``key``."""
    if key.get("protocol") != "groth16" or key.get("curve") != "bn128":
        raise ValueError("only snarkjs Groth16 keys on bn128 have a batch verifier")
    n_public = int(key["nPublic"])
    if len(key["IC"]) != n_public + 1:
        raise ValueError(f"the key has {len(key['IC'])} IC points for {n_public} public signals")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Solidity source, not HTML
    )
    return environment.get_template(TEMPLATE.name).render(
        name=name,
        source=source,
        n_public=n_public,
        r=SCALAR_FIELD,
        q=BASE_FIELD,
        alpha=key["vk_alpha_1"][:2],
        beta=_g2(key["vk_beta_2"]),
        gamma=_g2(key["vk_gamma_2"]),
        delta=_g2(key["vk_delta_2"]),
        ic=[point[:2] for point in key["IC"]],
    )


@click.command()
@click.argument("verification_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="The contract's name.")
def main(verification_key: Path, output: Path, name: str) -> None:
    """Writes the batch verifier of VERIFICATION_KEY (snarkjs JSON) to OUTPUT."""
    key = json.loads(verification_key.read_text())
    output.write_text(render_batch_verifier(key, name, source=f"the snarkjs key {verification_key.name}"))
    click.echo(str(output))


if __name__ == "__main__":
    main()
