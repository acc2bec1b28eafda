"""The same digits network proven with EZKL (Halo2, KZG on BN254), for comparison in `make bench`.

measure_ezkl(workdir, deployer) returns

    zk.ezkl_prove_seconds   ezkl.prove of one held-out digit, median of PROOFS proofs (SRS, keys
                            and witness ready; what our zk.prove_seconds_p50 measures for Groth16)
    zk.ezkl_logrows         log2 of the Halo2 circuit's rows after calibration
    zk.ezkl_setup_seconds   key generation (ezkl.setup)
    gas.ezkl_verify         the generated Solidity verifier called in a real transaction with
                            ezkl's encoded calldata (21,000 base and calldata included)
    zk.ezkl_verifier_bytes  runtime code size of that verifier (the EVM limit is 24,576)

The network: the committed quantized model (circuits/digits/model.json) with its integer weights
dequantized by the scales in circuits/digits/manifest.json, taking the raw pixels 0..16:

    hidden = relu((w1 · pixels + b1) / s_acc1)          s_acc1 = scale of the integer accumulator
    logits = (w2 · hidden) / s_w2 + b2 / s_logits       ≈ integer logits / s_logits

that is the integer network of the circuit in real units, without its floor division (EZKL
quantizes to its own fixed point). Its class agrees with QuantizedMLP.forward on the held-out
digits (measure_ezkl checks the proven one). Input and output are public instances of the proof,
the weights are fixed in the circuit (the verifying key commits to them).

measure_ezkl_cnn(workdir) runs the same pipeline on the digits CNN (joynet/zk/digits_cnn_model,
dequantized by cnn_network with its manifest's scales) and proves in a child process
(`python -m bench.ezkl prove ...`) whose peak memory and CPU time it reports:

    zk.cnn_ezkl_logrows, zk.cnn_ezkl_setup_seconds, zk.cnn_ezkl_prove_seconds,
    zk.cnn_ezkl_prove_peak_memory_mb, zk.cnn_ezkl_prove_cpu_seconds

It takes about a minute on a quiet machine, 7 on a loaded one (a 2^17-row circuit, its local SRS
and keys); `make bench` runs it after the MLP's.

Everything is local: the SRS is generated with ezkl.gen_srs (insecure, like our one-contributor
ceremony; a production deployment would take a public KZG ceremony's SRS), nothing is downloaded.
Needs the optional packages ezkl and onnx (requirements.txt); without them measure_ezkl raises
EzklUnavailable, which bench/protocol.py reports as a skip.
"""

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from joynet.zk.digits import CNN_MODEL_DIR
from joynet.zk.model import MODEL_DIR, QuantizedMLP
from joynet.zk.quantized import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, QuantizedModel, ReLU

log = logging.getLogger("joynet.zk")

PROOFS = 3  # EZKL proofs are ~10 s each here: the median of three
CNN_PROOFS = 1
CALIBRATION_IMAGES = 8  # held-out digits used by calibrate_settings
MAX_LOGROWS = 18


class EzklUnavailable(RuntimeError):
    """ezkl (or onnx, which torch's ONNX export needs) is not installed."""


def ezkl_available() -> tuple[bool, str]:
    """(True, version) when ezkl and onnx import, else (False, why)."""
    try:
        import ezkl  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as error:
        return False, f"{error.name or error} is not installed (pip install -r requirements.txt)"
    from importlib.metadata import version

    return True, version("ezkl")


def dequantized_weights(model: QuantizedMLP | None = None) -> dict:
    """Float weights of the committed integer model (see the module docstring)."""
    model = model or QuantizedMLP.load()
    scales = json.loads((MODEL_DIR / "manifest.json").read_text())["quantization"]["scales"]
    acc1, w2, logits = scales["acc1"], scales["w2"], scales["logits"]
    return {
        "w1": [[w / acc1 for w in row] for row in model.w1],
        "b1": [b / acc1 for b in model.b1],
        "w2": [[w / w2 for w in row] for row in model.w2],
        "b2": [b / logits for b in model.b2],
    }


def export_onnx(path: Path, model: QuantizedMLP | None = None) -> None:
    """The dequantized network as ONNX, input shape (1, 64) of raw pixels."""
    import torch

    weights = dequantized_weights(model)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(weights["w1"]))
        net[0].bias.copy_(torch.tensor(weights["b1"]))
        net[2].weight.copy_(torch.tensor(weights["w2"]))
        net[2].bias.copy_(torch.tensor(weights["b2"]))
    _write_onnx(net, path)


def cnn_network(model: QuantizedModel, scales: dict[str, float]):
    """The digits CNN in real units as a torch module taking the raw pixels (1, 64): every
    integer activation divided by its scale (circuits/digits_cnn/train.py's `quantize`), without
    the integer network's floor divisions. The first layer takes the raw pixels, so its weights
    are divided by the accumulator's scale (the pixels' 16 times the weights'); the others by
    their weights' scale; every bias by its accumulator's scale."""
    import torch

    modules: list = [torch.nn.Unflatten(1, tuple(model.input_shape))]
    weighted = 0
    for layer in model.layers:
        if isinstance(layer, Dense | Conv2d):
            weighted += 1
            weight_scale = scales[f"weights{weighted}"]
            accumulator_scale = scales["input" if weighted == 1 else f"layer{weighted - 1}"] * weight_scale
            # The network's input is the integer pixels, every later layer's a real value.
            weights = layer.weights / (accumulator_scale if weighted == 1 else weight_scale)
            out_features, in_features = layer.weights.shape[:2]
            if isinstance(layer, Dense):
                module = torch.nn.Linear(in_features, out_features)
            else:
                module = torch.nn.Conv2d(in_features, out_features, layer.weights.shape[2], padding=layer.padding)
            with torch.no_grad():
                module.weight.copy_(torch.tensor(weights, dtype=torch.float32))
                module.bias.copy_(torch.tensor(layer.bias / accumulator_scale, dtype=torch.float32))
            modules.append(module)
        elif isinstance(layer, ReLU):
            modules.append(torch.nn.ReLU())
        elif isinstance(layer, AvgPool2d):
            modules.append(torch.nn.AvgPool2d(layer.size))
        elif isinstance(layer, MaxPool2d):
            modules.append(torch.nn.MaxPool2d(layer.size))
        elif isinstance(layer, Flatten):
            modules.append(torch.nn.Flatten())
    return torch.nn.Sequential(*modules)


def export_cnn_onnx(path: Path, model: QuantizedModel | None = None) -> None:
    """The dequantized digits CNN (cnn_network) as ONNX, input shape (1, 64) of raw pixels."""
    model = model or QuantizedModel.load(CNN_MODEL_DIR / "model.json")
    scales = json.loads((CNN_MODEL_DIR / "manifest.json").read_text())["quantization"]["scales"]
    _write_onnx(cnn_network(model, scales), path)


def _write_onnx(net, path: Path) -> None:
    import torch

    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        # dynamo=False: the TorchScript exporter needs only onnx (the dynamo one wants onnxscript).
        torch.onnx.export(
            net,
            (torch.zeros(1, 64),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            opset_version=17,
        )


def _data(path: Path, images) -> None:
    path.write_text(json.dumps({"input_data": [[float(p) for image in images for p in image]]}))


def _run(call, *args, **kwargs):
    """Calls an ezkl function inside an event loop: some (calibrate_settings,
    create_evm_verifier, ...) are coroutines in 23.x and need a running loop even to start."""
    import asyncio

    async def run():
        result = call(*args, **kwargs)
        return await result if hasattr(result, "__await__") else result

    return asyncio.run(run())


# ezkl 23.0.5 compiles the verifier it renders (for the ABI file) with solc 0.8.20, which it looks
# up through svm as ~/.svm/0.8.20/solc-0.8.20 and otherwise downloads.
EZKL_SVM_SOLC = "0.8.20"


@contextlib.contextmanager
def local_solc_home(workdir: Path):
    """For ezkl.create_evm_verifier: HOME points at `workdir/home`, whose .svm serves the project's
    solc (0.8.28, the solc-js shim py-solc-x uses) under the name ezkl asks for, so nothing is
    downloaded and the user's home is not touched. The verifier accepts any 0.8 compiler
    (`pragma solidity ^0.8.0`); the one deployed is compiled by compile_solidity, with 0.8.28."""
    import solcx

    binary = Path(solcx.install.get_executable(solcx.get_installed_solc_versions()[0]))
    svm = workdir / "home" / ".svm" / EZKL_SVM_SOLC
    svm.mkdir(parents=True, exist_ok=True)
    (svm / f"solc-{EZKL_SVM_SOLC}").unlink(missing_ok=True)
    (svm / f"solc-{EZKL_SVM_SOLC}").symlink_to(binary)
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(workdir / "home")
    try:
        yield
    finally:
        if saved is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = saved


def compile_solidity(source: Path) -> tuple[bytes, int]:
    """Compiles the generated verifier with the project's solc (py-solc-x over the solc-js shim,
    SOLCX_BINARY_PATH set by toolchain/joynet_env.py): (creation bytecode, runtime size)."""
    import solcx

    version = solcx.get_installed_solc_versions()[0]
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {source.name: {"content": source.read_text()}},
            "settings": {
                "optimizer": {"enabled": True, "runs": 1},
                "outputSelection": {"*": {"*": ["evm.bytecode.object", "evm.deployedBytecode.object"]}},
            },
        },
        solc_version=version,
        allow_paths=str(source.parent),
    )
    contracts = output["contracts"][source.name]
    # The verifier is the contract with the largest code (the file may hold helpers too).
    name = max(contracts, key=lambda n: len(contracts[n]["evm"]["deployedBytecode"]["object"]))
    evm = contracts[name]["evm"]
    return bytes.fromhex(evm["bytecode"]["object"]), len(evm["deployedBytecode"]["object"]) // 2


def _send(web3, sender: str, tx: dict) -> dict:
    tx_hash = web3.eth.send_transaction({"from": sender, **tx})
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt.status != 1:
        raise RuntimeError(f"transaction failed: {tx_hash.hex()}")
    return receipt


EZKL_FILES = (
    "network.onnx",
    "settings.json",
    "calibration.json",
    "input.json",
    "network.ezkl",
    "kzg.srs",
    "vk.key",
    "pk.key",
    "witness.json",
    "proof.json",
    "Verifier.sol",
    "Verifier.abi",
    "calldata.bin",
)


def measure_ezkl(workdir, deployer=None, *, web3=None, proofs: int = PROOFS) -> dict[str, float]:
    """Runs the whole EZKL pipeline on the digits MLP in `workdir` (an empty directory) and
    returns the figures.

    With `deployer` (an address or an Ape account, unlocked on the connected local chain) and
    `web3` (defaults to Ape's connected provider), also deploys the generated verifier and
    measures gas.ezkl_verify."""
    available, why = ezkl_available()
    if not available:
        raise EzklUnavailable(why)
    import ezkl

    model = QuantizedMLP.load()
    paths, figures = _prove_with_ezkl(
        Path(workdir), lambda path: export_onnx(path, model), model.forward, proofs=proofs, in_child=False
    )
    results = {
        "zk.ezkl_logrows": figures["logrows"],
        "zk.ezkl_setup_seconds": figures["setup_seconds"],
        "zk.ezkl_prove_seconds": figures["prove_seconds"],
    }
    if deployer is not None:
        results.update(_measure_verify_gas(ezkl, paths, deployer, web3))
    return results


def _prove_with_ezkl(work: Path, export, forward, *, proofs: int, in_child: bool) -> tuple[dict, dict]:
    """Exports the network (`export(path)` writes its ONNX, input = the flat pixels), calibrates,
    sets up and proves one held-out digit `proofs` times; checks that the proven class is
    `forward(pixels).label` and that the proof verifies. With `in_child` the proofs run in a child
    process, whose peak resident memory (VmHWM) is reported too. Returns (paths, figures)."""
    import ezkl

    from joynet.zk.digits import load_split

    work.mkdir(parents=True, exist_ok=True)
    paths = {name: str(work / name) for name in EZKL_FILES}
    _, images, _, _ = load_split()
    image = images[0].tolist()

    export(Path(paths["network.onnx"]))
    _data(Path(paths["input.json"]), [image])
    _data(Path(paths["calibration.json"]), images[1 : 1 + CALIBRATION_IMAGES].tolist())

    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = "public"
    run_args.output_visibility = "public"
    run_args.param_visibility = "fixed"
    if not ezkl.gen_settings(paths["network.onnx"], paths["settings.json"], py_run_args=run_args):
        raise RuntimeError("ezkl.gen_settings failed")
    started = time.monotonic()
    if not _run(
        ezkl.calibrate_settings,
        paths["calibration.json"],
        paths["network.onnx"],
        paths["settings.json"],
        "resources",
        max_logrows=MAX_LOGROWS,
    ):
        raise RuntimeError("ezkl.calibrate_settings failed")
    log.info("ezkl: calibrated in %.1f s", time.monotonic() - started)
    if not ezkl.compile_circuit(paths["network.onnx"], paths["network.ezkl"], paths["settings.json"]):
        raise RuntimeError("ezkl.compile_circuit failed")
    settings = json.loads(Path(paths["settings.json"]).read_text())
    logrows = settings["run_args"]["logrows"]

    started = time.monotonic()
    ezkl.gen_srs(paths["kzg.srs"], logrows)  # local, insecure SRS: nothing is downloaded
    srs_seconds = time.monotonic() - started
    started = time.monotonic()
    if not ezkl.setup(paths["network.ezkl"], paths["vk.key"], paths["pk.key"], srs_path=paths["kzg.srs"]):
        raise RuntimeError("ezkl.setup failed")
    setup_seconds = time.monotonic() - started
    log.info("ezkl: logrows %d, SRS %.1f s, setup %.1f s", logrows, srs_seconds, setup_seconds)

    witness = _run(
        ezkl.gen_witness,
        paths["input.json"],
        paths["network.ezkl"],
        paths["witness.json"],
        vk_path=paths["vk.key"],
        srs_path=paths["kzg.srs"],
    )
    outputs = [ezkl.felt_to_float(felt, settings["model_output_scales"][0]) for felt in witness["outputs"][0]]
    expected = forward(image).label
    if max(range(len(outputs)), key=lambda k: (outputs[k], -k)) != expected:
        raise RuntimeError(f"EZKL's network classifies the digit as {outputs}, the quantized model as {expected}")

    figures: dict = {"logrows": logrows, "setup_seconds": round(setup_seconds, 3)}
    if in_child:
        child = _prove_in_child(paths, proofs)
        prove_seconds = child["seconds"]
        figures["prove_peak_memory_mb"] = child["peak_memory_mb"]
        figures["prove_cpu_seconds"] = child["cpu_seconds"]
    else:
        prove_seconds = [_prove_once(paths) for _ in range(proofs)]
    figures["prove_seconds"] = round(statistics.median(prove_seconds), 3)
    if not ezkl.verify(paths["proof.json"], paths["settings.json"], paths["vk.key"], srs_path=paths["kzg.srs"]):
        raise RuntimeError("ezkl.verify rejected its own proof")
    return paths, figures


def _prove_once(paths: dict) -> float:
    """One ezkl.prove from the witness and the keys on disk; returns its seconds."""
    import ezkl

    started = time.monotonic()
    _run(
        ezkl.prove,
        paths["witness.json"],
        paths["network.ezkl"],
        paths["pk.key"],
        paths["proof.json"],
        srs_path=paths["kzg.srs"],
    )
    seconds = time.monotonic() - started
    log.info("ezkl: proof in %.1f s", seconds)
    return seconds


def peak_memory_mb(pid: int | str = "self") -> float:
    """The process's peak resident memory so far (Linux's VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def _prove_in_child(paths: dict, proofs: int) -> dict:
    """`proofs` proofs in a fresh Python process (python -m bench.ezkl prove ...), so that its
    peak memory is the prover's own: {"seconds": [each proof's], "peak_memory_mb": the process's
    peak, "cpu_seconds": its user + system CPU time, imports included (on a shared machine the
    wall time grows with the load, the CPU time much less)}."""
    command = [sys.executable, "-m", "bench.ezkl", "prove", json.dumps(paths), str(proofs)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    answer = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
    if answer.returncode != 0:
        raise RuntimeError(f"the EZKL prover process failed: {answer.stderr.strip()[-2000:]}")
    return json.loads(answer.stdout.strip().splitlines()[-1])


def measure_ezkl_cnn(workdir, *, proofs: int = CNN_PROOFS) -> dict[str, float]:
    """The same pipeline on the digits CNN (joynet/zk/digits_cnn_model): its integer weights
    dequantized by the manifest's scales, proven in a child process whose peak memory is
    measured. Raises EzklUnavailable without ezkl."""
    available, why = ezkl_available()
    if not available:
        raise EzklUnavailable(why)
    model = QuantizedModel.load(CNN_MODEL_DIR / "model.json")
    _, figures = _prove_with_ezkl(
        Path(workdir), lambda path: export_cnn_onnx(path, model), model.forward, proofs=proofs, in_child=True
    )
    return {
        "zk.cnn_ezkl_logrows": figures["logrows"],
        "zk.cnn_ezkl_setup_seconds": figures["setup_seconds"],
        "zk.cnn_ezkl_prove_seconds": figures["prove_seconds"],
        "zk.cnn_ezkl_prove_peak_memory_mb": figures["prove_peak_memory_mb"],
        "zk.cnn_ezkl_prove_cpu_seconds": figures["prove_cpu_seconds"],
    }


def _measure_verify_gas(ezkl, paths: dict, deployer, web3) -> dict[str, float]:
    if web3 is None:
        from ape import networks

        web3 = networks.provider.web3
    sender = getattr(deployer, "address", deployer)
    with local_solc_home(Path(paths["Verifier.sol"]).parent):
        if not _run(
            ezkl.create_evm_verifier,
            paths["vk.key"],
            paths["settings.json"],
            paths["Verifier.sol"],
            paths["Verifier.abi"],
            srs_path=paths["kzg.srs"],
        ):
            raise RuntimeError("ezkl.create_evm_verifier failed")
    creation, runtime_size = compile_solidity(Path(paths["Verifier.sol"]))
    log.info("ezkl: verifier runtime code %d bytes", runtime_size)
    receipt = _send(web3, sender, {"data": "0x" + creation.hex()})
    calldata = bytes(_run(ezkl.encode_evm_calldata, paths["proof.json"], paths["calldata.bin"]))
    verifier = receipt.contractAddress
    # The verifier returns true or reverts: check the answer with a call, then measure the transaction.
    answer = web3.eth.call({"from": sender, "to": verifier, "data": "0x" + calldata.hex()})
    if int.from_bytes(answer[-32:] or b"\0", "big") != 1:
        raise RuntimeError(f"the EZKL verifier did not accept the proof: {answer.hex()}")
    receipt = _send(web3, sender, {"to": verifier, "data": "0x" + calldata.hex()})
    return {"gas.ezkl_verify": receipt.gasUsed, "zk.ezkl_verifier_bytes": runtime_size}


if __name__ == "__main__":
    # The child process of _prove_in_child: python -m bench.ezkl prove '<paths as JSON>' <proofs>
    if len(sys.argv) != 4 or sys.argv[1] != "prove":
        raise SystemExit("usage: python -m bench.ezkl prove '<paths as JSON>' <proofs>")
    import resource

    child_paths = json.loads(sys.argv[2])
    seconds = [_prove_once(child_paths) for _ in range(int(sys.argv[3]))]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = round(usage.ru_utime + usage.ru_stime, 3)
    print(json.dumps({"seconds": seconds, "peak_memory_mb": peak_memory_mb(), "cpu_seconds": cpu}))
