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
import time
import warnings
from pathlib import Path

from joynet.zk.model import MODEL_DIR, QuantizedMLP

log = logging.getLogger("joynet.zk")

PROOFS = 3  # EZKL proofs are ~10 s each here: the median of three
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


def measure_ezkl(workdir, deployer=None, *, web3=None, proofs: int = PROOFS) -> dict[str, float]:
    """Runs the whole EZKL pipeline in `workdir` (an empty directory) and returns the figures.

    With `deployer` (an address or an Ape account, unlocked on the connected local chain) and
    `web3` (defaults to Ape's connected provider), also deploys the generated verifier and
    measures gas.ezkl_verify."""
    available, why = ezkl_available()
    if not available:
        raise EzklUnavailable(why)
    import ezkl

    from joynet.zk.digits import load_split

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    paths = {
        name: str(work / name)
        for name in (
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
    }
    model = QuantizedMLP.load()
    _, images, _, _ = load_split()
    image = images[0].tolist()

    export_onnx(Path(paths["network.onnx"]), model)
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
    expected = model.forward(image).label
    if max(range(10), key=lambda k: (outputs[k], -k)) != expected:
        raise RuntimeError(f"EZKL's network classifies the digit as {outputs}, the quantized model as {expected}")

    prove_seconds = []
    for _ in range(proofs):
        started = time.monotonic()
        _run(
            ezkl.prove,
            paths["witness.json"],
            paths["network.ezkl"],
            paths["pk.key"],
            paths["proof.json"],
            srs_path=paths["kzg.srs"],
        )
        prove_seconds.append(time.monotonic() - started)
        log.info("ezkl: proof in %.1f s", prove_seconds[-1])
    if not ezkl.verify(paths["proof.json"], paths["settings.json"], paths["vk.key"], srs_path=paths["kzg.srs"]):
        raise RuntimeError("ezkl.verify rejected its own proof")

    results = {
        "zk.ezkl_logrows": logrows,
        "zk.ezkl_setup_seconds": round(setup_seconds, 3),
        "zk.ezkl_prove_seconds": round(statistics.median(prove_seconds), 3),
    }
    if deployer is not None:
        results.update(_measure_verify_gas(ezkl, paths, deployer, web3))
    return results


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
