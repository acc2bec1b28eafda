"""A real proof from joynet.ZKProver, with either prover backend (native, snarkjs), verifies in
the deployed DigitsMLPVerifier (the snarkjs Solidity verifier exported by `make circuits`), with
the calldata decoded as ProofOfInference will decode it, and fails for a tampered proof and for every other public signal: another
output, other weights, another request, another node (the output binding
class * 2^224 + requestId * 2^160 + node)."""

import pytest

from bench.zk_prover import calldata_gas
from joynet import ZKProver
from joynet.zk import SNARK_SCALAR_FIELD, QuantizedMLP, decode_calldata, output_binding
from joynet.zk.digits import load_split
from joynet.zk.prover import BACKENDS

# The BN254 base field: negating a G1 point is (x, q - y).
BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583


@pytest.fixture(scope="module")
def verifier(project, deployer):
    return project.DigitsMLPVerifier.deploy(sender=deployer)


@pytest.fixture(scope="module", params=BACKENDS)
def proof(request, alice):
    """A proof from each prover backend (native: groth16py; snarkjs): every test below runs on both."""
    _, pixels, _, _ = load_split()
    with ZKProver(backend=request.param) as prover:
        return prover.prove(QuantizedMLP.load(), pixels[0].tolist(), salt=987654321, request_id=7, node=alice)


def verify(verifier, calldata, signals) -> bool:
    a, b, c = decode_calldata(calldata)
    return verifier.verifyProof(a, b, c, list(signals))


def with_signal(proof, index, value):
    signals = list(proof.public_signals)
    signals[index] = value
    return signals


def test_verify_proof__real_proof__accepted(verifier, proof, alice):
    assert proof.node == alice.address
    assert decode_calldata(proof.calldata) == proof.verifier_args()[:3]
    assert verify(verifier, proof.calldata, proof.public_signals) is True


def test_verify_proof__in_a_transaction__execution_within_215k_gas(verifier, proof, deployer):
    args = proof.verifier_args()
    receipt = verifier.invoke_transaction("verifyProof", *args, sender=deployer)
    assert not receipt.failed
    data = bytes(verifier.verifyProof.encode_input(*args))
    assert data[:4] == bytes.fromhex("11479fea") and len(data) == 4 + 11 * 32
    execution = receipt.gas_used - 21_000 - calldata_gas(data)
    # Four pairings (181,000) and three scalar multiplications with additions (3 x 6,150) are
    # 199,450 of it: the target counts execution gas.
    assert 199_450 < execution <= 215_000


def test_verify_proof__tampered_proof__rejected(verifier, proof):
    a, b, c = decode_calldata(proof.calldata)
    negated_a = [a[0], BASE_FIELD - a[1]]  # still a curve point, no longer the proof's
    assert verifier.verifyProof(negated_a, b, c, list(proof.public_signals)) is False
    flipped_c = [c[0] ^ 1, c[1]]  # not a curve point at all
    assert verifier.verifyProof(a, b, flipped_c, list(proof.public_signals)) is False


def test_verify_proof__another_class__rejected(verifier, proof):
    other = (proof.label + 1) % 10
    assert verify(verifier, proof.calldata, with_signal(proof, 2, output_binding(other, proof.request_id, proof.node))) is False


def test_verify_proof__other_weights_commitment__rejected(verifier, proof):
    assert verify(verifier, proof.calldata, with_signal(proof, 0, (proof.public_signals[0] + 1) % SNARK_SCALAR_FIELD)) is False


def test_verify_proof__other_input_commitment__rejected(verifier, proof):
    assert verify(verifier, proof.calldata, with_signal(proof, 1, (proof.public_signals[1] + 1) % SNARK_SCALAR_FIELD)) is False


def test_verify_proof__binding__class_times_2_224_plus_request_id_times_2_160_plus_node(proof, alice):
    expected = proof.label * 2**224 + 7 * 2**160 + int(alice.address, 16)
    assert proof.public_signals[2] == expected == output_binding(proof.label, 7, alice)


def test_verify_proof__another_request_id__rejected(verifier, proof):
    binding = output_binding(proof.label, proof.request_id + 1, proof.node)
    assert verify(verifier, proof.calldata, with_signal(proof, 2, binding)) is False


def test_verify_proof__another_node__rejected(verifier, proof):
    binding = output_binding(proof.label, proof.request_id, "0x" + "cd" * 20)
    assert verify(verifier, proof.calldata, with_signal(proof, 2, binding)) is False


def test_verify_proof__signal_not_below_r__rejected(verifier, proof):
    # The same binding plus r is the same field element: the verifier must refuse it, not wrap.
    assert verify(verifier, proof.calldata, with_signal(proof, 2, proof.public_signals[2] + SNARK_SCALAR_FIELD)) is False
