"""Checking a channel answer's proof of a model with a circuit of its own (a joynet-zk package,
here the digits CNN): the requester and the bridgers state the proof's public signals from the
request and the claimed answer (ZKCircuitRuntime.proof_statement) and check its pairing with the
package's verification key, fetched by its CID and refused unless it hashes to the circuit id the
metadata names, which must be the one the chain's registration names and one the DAO registered.

The attacks: a key file that is not the circuit's, metadata naming another circuit than the
chain, a circuit the DAO did not register, a proof checked against another circuit's key, a tampered proof, a proof stated for
another class, request, node or input."""

import asyncio
import json

import pytest

from joynet.feeless.checks import check_registered_circuit, circuit_verification_key
from joynet.feeless.errors import ProofRejectedError
from joynet.inference.runtimes.zk_circuit import VERIFICATION_KEY, ZKCircuitRuntime
from joynet.models.builtin import write_digits_package
from joynet.models.package import ModelPackage, load_model_metadata, publish_model
from joynet.models.zk_package import write_zk_package
from joynet.storage import EmbeddedStore
from joynet.zk import ZKProver
from joynet.zk.circuitgen import circuit_signals
from joynet.zk.digits import CNN_MODEL_DIR, load_split
from joynet.zk.quantized import QuantizedModel

CNN_CIRCUIT_DIR = CNN_MODEL_DIR.with_name("digits_cnn_circuit")
NODE = "0x00000000000000000000000000000000000000a1"
OTHER_NODE = "0x00000000000000000000000000000000000000b2"
SALT = 4242
REQUEST = 77

run = asyncio.run
# The session's contracts first: set up after this module's fixtures, they would be reverted with
# the module's snapshot and missing for the modules after it.
pytestmark = pytest.mark.usefixtures("chain", "deployment", "marketplace")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("circuit-keys-ipfs"))


@pytest.fixture(scope="module")
def cnn():
    return QuantizedModel.load(CNN_MODEL_DIR / "model.json")


@pytest.fixture(scope="module")
def cnn_package(store, tmp_path_factory) -> ModelPackage:
    """The digits CNN as a joynet-zk package in the store: its metadata only, as a requester or a
    bridger holds it."""
    directory = write_zk_package(tmp_path_factory.mktemp("cnn") / "package", CNN_MODEL_DIR / "model.json", CNN_CIRCUIT_DIR)
    cid = run(publish_model(store, directory))
    return ModelPackage(cid=cid, metadata=run(load_model_metadata(store, cid)), files={})


@pytest.fixture(scope="module")
def image():
    _, pixels, _, _ = load_split()
    return pixels[3].tolist()


@pytest.fixture(scope="module")
def cnn_proof(cnn, image):
    """A real proof of the CNN on ``image`` for REQUEST and NODE, as a channel answer carries it."""
    with ZKProver(CNN_CIRCUIT_DIR, backend="snarkjs") as prover:
        inference = cnn.forward(image)
        signals = circuit_signals(cnn, image, SALT, REQUEST, NODE, weights="public", inference=inference)
        proof = prover.prove_signals(signals, inference, REQUEST, NODE)
    return {"proof": proof.proof, "publicSignals": [str(s) for s in proof.public_signals], "class": inference.label}


@pytest.fixture(scope="module")
def verifier():
    with ZKProver(backend="snarkjs") as prover:  # the built-in digits circuit's worker
        yield prover


def with_file(package: ModelPackage, name: str, uri: str) -> ModelPackage:
    metadata = json.loads(json.dumps(package.metadata))
    metadata["files"][name] = uri
    return ModelPackage(cid=package.cid, metadata=metadata, files={})


def test_circuit_verification_key__joynet_zk_package__the_packages_key_for_its_circuit(store, cnn_package):
    key = run(circuit_verification_key(cnn_package, store))
    assert key == json.loads((CNN_CIRCUIT_DIR / "verification_key.json").read_text())
    assert key["nPublic"] == 3


def test_circuit_verification_key__digits_package__the_built_in_key(store, tmp_path):
    cid = run(publish_model(store, write_digits_package(tmp_path / "digits")))
    package = ModelPackage(cid=cid, metadata=run(load_model_metadata(store, cid)), files={})
    assert run(circuit_verification_key(package, store)) is None


def test_circuit_verification_key__key_file_of_another_circuit__rejected(store, cnn_package):
    digits_key = run(store.add_bytes((CNN_CIRCUIT_DIR.with_name("circuit") / "verification_key.json").read_bytes()))
    swapped = with_file(cnn_package, VERIFICATION_KEY, f"ipfs://{digits_key}")
    with pytest.raises(ProofRejectedError, match=f"its {VERIFICATION_KEY} is not circuit 0x"):
        run(circuit_verification_key(swapped, store))


def test_circuit_verification_key__no_key_file__rejected(store, cnn_package):
    metadata = json.loads(json.dumps(cnn_package.metadata))
    del metadata["files"][VERIFICATION_KEY]
    package = ModelPackage(cid=cnn_package.cid, metadata=metadata, files={})
    with pytest.raises(ProofRejectedError, match=f"has no {VERIFICATION_KEY} to check proofs with"):
        run(circuit_verification_key(package, store))


def test_check_registered_circuit__metadata_names_another_circuit_than_the_chain__rejected(cnn_package):
    named = bytes.fromhex(cnn_package.verification["circuitId"][2:])
    check_registered_circuit(cnn_package, named)  # the chain's: accepted
    for chain_circuit in (b"\0" * 32, bytes(31) + b"\1"):
        with pytest.raises(ProofRejectedError, match="its metadata names circuit"):
            check_registered_circuit(cnn_package, chain_circuit)


def test_check_registered_circuit__not_registered_by_the_dao__rejected(cnn_package, marketplace):
    from joynet.chain.marketplace import circuit_registered
    from joynet.zk import circuit_id

    named = bytes.fromhex(cnn_package.verification["circuitId"][2:])
    assert circuit_registered(marketplace, circuit_id())  # the digits circuit, registered at deployment
    assert not circuit_registered(marketplace, named)
    with pytest.raises(ProofRejectedError, match="is not one the DAO registered"):
        check_registered_circuit(cnn_package, named, lambda circuit: circuit_registered(marketplace, circuit))


def test_verify__cnn_proof__accepted_with_its_key_refused_with_the_digits_key(store, cnn_package, cnn_proof, verifier):
    key = run(circuit_verification_key(cnn_package, store))
    assert verifier.verify(cnn_proof["publicSignals"], cnn_proof["proof"], key)
    assert not verifier.verify(cnn_proof["publicSignals"], cnn_proof["proof"])  # the worker's own: digits


def test_verify__cnn_proof_tampered_or_signal_changed__refused(store, cnn_package, cnn_proof, verifier):
    key = run(circuit_verification_key(cnn_package, store))
    tampered = json.loads(json.dumps(cnn_proof["proof"]))
    tampered["pi_a"][0] = str(int(tampered["pi_a"][0]) + 1)
    assert not verifier.verify(cnn_proof["publicSignals"], tampered, key)
    signals = list(cnn_proof["publicSignals"])
    signals[2] = str(int(signals[2]) + 1)
    assert not verifier.verify(signals, cnn_proof["proof"], key)


def test_proof_statement__joynet_zk__the_proofs_signals_and_no_other_answer(cnn_package, cnn_proof, image):
    weights = cnn_package.weights_commitment
    document = {"input": image, "salt": str(SALT)}
    answer = {"class": cnn_proof["class"]}
    statement = ZKCircuitRuntime.proof_statement(weights, document, answer, REQUEST, NODE)
    assert list(statement) == ["weightsCommitment", "inputCommitment", "outputBinding"]
    assert [str(v) for v in statement.values()] == cnn_proof["publicSignals"]
    others = [
        (weights, document, {"class": (cnn_proof["class"] + 1) % 10}, REQUEST, NODE),
        (weights, document, answer, REQUEST + 1, NODE),
        (weights, document, answer, REQUEST, OTHER_NODE),
        (weights, {"input": image, "salt": str(SALT + 1)}, answer, REQUEST, NODE),
        (weights, {"input": [0] + image[1:], "salt": str(SALT)}, answer, REQUEST, NODE)
        if image[0] != 0
        else (weights, {"input": [1] + image[1:], "salt": str(SALT)}, answer, REQUEST, NODE),
    ]
    for args in others:
        assert [str(v) for v in ZKCircuitRuntime.proof_statement(*args).values()] != cnn_proof["publicSignals"]


@pytest.mark.parametrize("values", [[256], [-1], [1.5], ["7"], [True]])
def test_proof_statement__joynet_zk_input_no_circuit_takes__value_or_type_error(cnn_package, values):
    with pytest.raises((ValueError, TypeError)):
        ZKCircuitRuntime.proof_statement(cnn_package.weights_commitment, {"input": values, "salt": "1"}, {"class": 1}, 1, NODE)
