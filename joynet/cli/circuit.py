"""``joynet circuit``: Circom circuits generated from quantized models."""

import json
from pathlib import Path

import click
import yaml

from joynet.cli.output import CommandError, stderr
from joynet.zk.circuitgen import WEIGHT_MODES, generate
from joynet.zk.errors import ModelError
from joynet.zk.quantized import QuantizedModel


@click.group()
def circuit() -> None:
    """Circom circuits generated from quantized models."""


@circuit.command(name="generate")
@click.argument("model_file", metavar="MODEL.json", type=click.Path(path_type=Path))
@click.option(
    "--weights",
    type=click.Choice(WEIGHT_MODES),
    default="private",
    show_default=True,
    help="private: weights are private signals, range-checked and hashed in the circuit; "
    "public: weights are constants of the circuit (the model is public)",
)
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="directory for the circuit",
)
@click.option("--name", help="the circuit's file name without .circom (default: the model's name)")
def generate_command(model_file, weights, directory, name) -> None:
    """Write the Circom circuit proving one inference of MODEL.json (joynet-quantized-model/1);
    print {"circuit": path, "weights": mode, "weightsCommitment": hex}. Build it with
    `circuits/build.sh --source PATH --out DIR --verifier NAME|none [--ptau FILE --power N]`."""
    try:
        model = QuantizedModel.load(model_file)
        generated = generate(model, weights)
    except ModelError as error:
        message = str(error)
        raise CommandError(message if str(model_file) in message else f"{model_file}: {message}") from None
    stem = name or generated.name.replace("-", "_") or "model"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.circom"
    path.write_text(generated.source)
    stderr.print(f"wrote {path} ({weights} weights, {len(generated.source):,} bytes)")
    click.echo(
        json.dumps(
            {"circuit": str(path), "weights": weights, "weightsCommitment": f"0x{model.weights_commitment():064x}"}
        )
    )


@circuit.command(name="package")
@click.argument("model_file", metavar="MODEL.json", type=click.Path(path_type=Path))
@click.argument("circuit_dir", metavar="CIRCUIT_DIR", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "directory", type=click.Path(path_type=Path), required=True, help="the package directory"
)
@click.option("--version", "version", default="1.0.0", show_default=True, help="the model's version")
@click.option("--license", "license_name", default="MIT", show_default=True, help="the model's licence")
def package_command(model_file, circuit_dir, directory, version, license_name) -> None:
    """Lay out MODEL.json and the circuit built in CIRCUIT_DIR (circuits/build.sh --out) as a
    joynet-zk model package that `joynet model publish DIR` publishes; print {"package": DIR,
    "weightsCommitment": hex, "circuitId": hex}."""
    from joynet.models.errors import ModelPackageError
    from joynet.models.zk_package import write_zk_package

    try:
        write_zk_package(directory, model_file, circuit_dir, version=version, license=license_name)
    except (ModelPackageError, OSError) as error:
        raise CommandError(str(error)) from None
    metadata = yaml.safe_load((directory / "model.yaml").read_text())
    stderr.print(f"wrote the package {directory} (framework {metadata['framework']})")
    click.echo(
        json.dumps(
            {
                "package": str(directory),
                "weightsCommitment": metadata["weightsCommitment"],
                "circuitId": metadata["verification"]["circuitId"],
            }
        )
    )
