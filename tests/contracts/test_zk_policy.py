"""The zero-knowledge policy on chain: a digit proven by joynet.ZKProver settles a request through
ProofOfInference.checkProof, ZKVerifier and the deployed DigitsMLPVerifier; a tampered proof, a
wrong output, a wrong weights commitment, a proof made for another request or by another node, and
a circuit the DAO did not register are each refused with nothing paid. A quorum ZK model checks
each node's proof when it reveals its committed result. Also the registry's governance."""

import pytest
from eth_utils import keccak
from helpers.chain_asserts import reverts_with
from helpers.zk_requests import PRICE, SALT

from joynet.chain.marketplace import seal_result
from joynet.zk import ZK_VERIFIER_LAYOUT, circuit_id, to_bytes32
from joynet.zk.digits import load_split


def submit(marketplace, request, proof, node, output=None):
    return marketplace.submitResult(
        request, output or proof.output_commitment, "ipfs://bafyout", proof.calldata, sender=node
    )


def refused(marketplace, token, judge, request, submit_call):
    """The submission reverts with ProofOfInferenceInvalidProof (raised by the judge, hence
    matched by its ABI), nothing moves and the request stays open."""
    balance = token.balanceOf(marketplace)
    with reverts_with("ProofOfInferenceInvalidProof", abi=judge):
        submit_call()
    assert marketplace.requestStatus(request.id) == 1
    assert token.balanceOf(marketplace) == balance and marketplace.totalBalances() == 0


def test_submit__valid_proof__settles_and_pays(marketplace, zk_model, zk_request, prover, model, digit, by_address):
    request, (node,), _ = zk_request(zk_model())
    pixels, label = digit
    proof = prover.prove(model, pixels, SALT, request.id, node)
    assert proof.label == label  # the held-out digit is classified correctly
    receipt = submit(marketplace, request, proof, by_address[node])
    assert marketplace.requestStatus(request.id) == 2  # Settled
    assert marketplace.balances(node) == PRICE * 70 // 100
    assert marketplace.InferenceSettled(request.id, proof.output_commitment, PRICE * 70 // 100, PRICE // 5, PRICE // 10) in receipt.events


def test_submit__tampered_proof__reverts(marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address):
    request, (node,), _ = zk_request(zk_model())
    proof = prover.prove(model, digit[0], SALT, request.id, node)
    tampered = bytearray(proof.calldata)
    tampered[255] ^= 1  # the last coordinate of c
    refused(marketplace, token, judge, request, lambda: marketplace.submitResult(
        request, proof.output_commitment, "ipfs://bafyout", bytes(tampered), sender=by_address[node]))


def test_submit__wrong_output__reverts(marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address):
    request, (node,), _ = zk_request(zk_model())
    proof = prover.prove(model, digit[0], SALT, request.id, node)
    another_class = ((proof.label + 1) % 10).to_bytes(32, "big")
    refused(marketplace, token, judge, request, lambda: submit(marketplace, request, proof, by_address[node], output=another_class))
    # An output of 2^29 or more has no binding: refused before the verifier is asked.
    too_wide = keccak(text="class 3")[:31].rjust(32, b"\0")
    refused(marketplace, token, judge, request, lambda: submit(marketplace, request, proof, by_address[node], output=too_wide))


def test_submit__valid_proof_of_class_zero__settles(marketplace, zk_model, zk_request, prover, model, by_address):
    _, pixels, _, labels = load_split()
    # A held-out 0 that the committed network classifies correctly: its result is the class
    # itself, bytes32(0), which the marketplace must take like any other output.
    zero = pixels[1].tolist()
    assert int(labels[1]) == 0
    request, (node,), _ = zk_request(zk_model(), pixels=zero)
    proof = prover.prove(model, zero, SALT, request.id, node)
    assert proof.label == 0 and proof.output_commitment == b"\0" * 32
    submit(marketplace, request, proof, by_address[node])
    assert marketplace.requestStatus(request.id) == 2


def test_submit__model_with_other_weights__reverts(marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address):
    # The same circuit, but the model registered another network's commitment: a proof of the
    # committed network says nothing about it.
    request, (node,), _ = zk_request(zk_model(weights=to_bytes32(12345)))
    proof = prover.prove(model, digit[0], SALT, request.id, node)
    refused(marketplace, token, judge, request, lambda: submit(marketplace, request, proof, by_address[node]))


def test_submit__proof_for_another_request__reverts(
    marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address
):
    model_id = zk_model()
    first, (node,), _ = zk_request(model_id)
    second, (second_node,), _ = zk_request(model_id)  # the same input, hence the same commitment
    assert node == second_node  # a single node serves the model
    proof = prover.prove(model, digit[0], SALT, first.id, node)
    refused(marketplace, token, judge, second, lambda: submit(marketplace, second, proof, by_address[node]))
    submit(marketplace, first, proof, by_address[node])  # where it belongs, it settles
    assert marketplace.requestStatus(first.id) == 2


def test_submit__proof_of_another_node__reverts(marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address):
    # Quorum 1, two requests served by two nodes: a proof binds the node that made it, so the
    # node assigned the second request cannot answer it with a proof made by another node.
    model_id = zk_model(nodes=2)
    first, (first_node,), _ = zk_request(model_id)
    second, (second_node,), _ = zk_request(model_id)
    assert first_node != second_node  # load-aware: the second request goes to the idle node
    proof = prover.prove(model, digit[0], SALT, second.id, first_node)
    refused(marketplace, token, judge, second, lambda: submit(marketplace, second, proof, by_address[second_node]))


# ---- quorum ZK models: every reveal carries its node's proof ----


def commit(marketplace, request, node, output, sender):
    salt = keccak(text=f"salt:{request.id}:{node}")
    marketplace.commitResult(request, seal_result(request.id, node, output, salt), sender=sender)
    return salt


def test_reveal__quorum_zk_each_with_its_own_proof__settles(
    marketplace, zk_model, zk_request, prover, model, digit, by_address
):
    request, nodes, _ = zk_request(zk_model(quorum=2, nodes=2))
    proofs = {node: prover.prove(model, digit[0], SALT, request.id, node) for node in nodes}
    salts = {node: commit(marketplace, request, node, proofs[node].output_commitment, by_address[node]) for node in nodes}
    for node in nodes:
        marketplace.revealResult(
            request, proofs[node].output_commitment, salts[node], "ipfs://bafyout", proofs[node].calldata,
            sender=by_address[node],
        )
    assert marketplace.requestStatus(request.id) == 2
    assert marketplace.balances(nodes[0]) == marketplace.balances(nodes[1]) == PRICE * 70 // 100 // 2


def test_reveal__quorum_zk_with_another_nodes_proof__reverts(
    marketplace, token, judge, zk_model, zk_request, prover, model, digit, by_address
):
    # Quorum 2: the second node commits to the right output (it saw the first's reveal
    # coming, or guessed it), but it has no proof of its own: the first's binds the first.
    request, nodes, _ = zk_request(zk_model(quorum=2, nodes=2))
    proof = prover.prove(model, digit[0], SALT, request.id, nodes[0])
    salts = {node: commit(marketplace, request, node, proof.output_commitment, by_address[node]) for node in nodes}
    refused(marketplace, token, judge, request, lambda: marketplace.revealResult(
        request, proof.output_commitment, salts[nodes[1]], "ipfs://bafyout", proof.calldata, sender=by_address[nodes[1]]))
    tampered = bytearray(proof.calldata)
    tampered[255] ^= 1
    refused(marketplace, token, judge, request, lambda: marketplace.revealResult(
        request, proof.output_commitment, salts[nodes[0]], "ipfs://bafyout", bytes(tampered), sender=by_address[nodes[0]]))
    assert marketplace.submittedMask(request.id) == 0b11  # both committed, neither revealed
    marketplace.revealResult(request, proof.output_commitment, salts[nodes[0]], "ipfs://bafyout", proof.calldata,
                             sender=by_address[nodes[0]])
    assert marketplace.submittedMask(request.id) == 0b11 | (0b01 << 16)


def test_submit__circuit_not_registered__reverts(
    marketplace, token, zk_verifier, zk_model, zk_request, prover, model, digit, by_address
):
    request, (node,), _ = zk_request(zk_model(circuit=keccak(text="digits, a setup the DAO never saw")))
    proof = prover.prove(model, digit[0], SALT, request.id, node)
    with reverts_with("ZKVerifierUnknownCircuit", abi=zk_verifier):
        submit(marketplace, request, proof, by_address[node])
    assert marketplace.requestStatus(request.id) == 1


def test_verify_inference__request_id_from_2_64__false(zk_verifier, model, prover, digit, alice):
    # The binding class * 2^224 + requestId * 2^160 + node only names requests below 2^64 and
    # outputs below 2^29 (so that it stays below 2^253 < r and never wraps around the field):
    # beyond, no proof counts.
    pixels, _ = digit
    proof = prover.prove(model, pixels, SALT, 5, alice)
    args = (circuit_id(), proof.weights_commitment, proof.input_commitment, proof.output_commitment)
    assert zk_verifier.verifyInference(*args, 5, alice, proof.calldata) is True
    assert zk_verifier.verifyInference(*args, 5 + 2**64, alice, proof.calldata) is False
    assert zk_verifier.verifyInference(*args, 6, alice, proof.calldata) is False
    assert zk_verifier.verifyInference(*args, 5, "0x" + "cd" * 20, proof.calldata) is False
    wrapped = (proof.label + 2**29).to_bytes(32, "big")  # same low bits, wider than the binding holds
    assert zk_verifier.verifyInference(*args[:3], wrapped, 5, alice, proof.calldata) is False
    assert zk_verifier.VERIFY_PROOF_SELECTOR() == keccak(text="verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[3])")[:4]


# ---- the registry ----


def test_deploy__digits_circuit__registered_with_its_verifier(zk_verifier, deployment, judge):
    circuit = zk_verifier.circuitOf(circuit_id())
    assert circuit.verifier == deployment.address("DigitsMLPVerifier")
    assert bytes(circuit.layout) == ZK_VERIFIER_LAYOUT
    assert zk_verifier.address == judge.address  # ProofOfInference is the registry


def test_register_circuit__not_from_timelock__reverts(zk_verifier, deployment, deployer, outsider):
    for caller in (deployer, outsider):
        with reverts_with("OwnableUnauthorizedAccount"):
            zk_verifier.registerCircuit(keccak(text="c"), deployment.address("DigitsMLPVerifier"), ZK_VERIFIER_LAYOUT, sender=caller)


def test_register_circuit__by_proposal__accepts_its_proofs(
    zk_verifier, deployment, governance, alice, bob, marketplace, zk_model, zk_request, prover, model, digit, by_address
):
    new_id = keccak(text="digits under a second name")
    calls = [(zk_verifier, zk_verifier.registerCircuit.encode_input(new_id, deployment.address("DigitsMLPVerifier"), ZK_VERIFIER_LAYOUT))]
    governance.enact(alice, calls, "Register a circuit", [(alice, 1), (bob, 1)])
    request, (node,), _ = zk_request(zk_model(circuit=new_id))
    submit(marketplace, request, prover.prove(model, digit[0], SALT, request.id, node), by_address[node])
    assert marketplace.requestStatus(request.id) == 2


def test_remove_circuit__by_proposal__refuses_its_proofs(
    zk_verifier, governance, alice, bob, marketplace, zk_model, zk_request, prover, model, digit, by_address
):
    governance.enact(alice, [(zk_verifier, zk_verifier.removeCircuit.encode_input(circuit_id()))], "Remove", [(alice, 1), (bob, 1)])
    request, (node,), _ = zk_request(zk_model())
    with reverts_with("ZKVerifierUnknownCircuit", abi=zk_verifier):
        submit(marketplace, request, prover.prove(model, digit[0], SALT, request.id, node), by_address[node])


@pytest.mark.parametrize(
    "case, error",
    [
        ("zero id", "ZKVerifierZeroCircuitId"),
        ("existing id", "ZKVerifierCircuitExists"),
        ("not a contract", "ZKVerifierNotAContract"),
        ("repeated signal", "ZKVerifierInvalidLayout"),
        ("unknown signal", "ZKVerifierInvalidLayout"),
    ],
)
def test_register_circuit__invalid__cannot_execute(zk_verifier, deployment, governance, alice, bob, dao, case, error):
    verifier = deployment.address("DigitsMLPVerifier")
    args = {
        "zero id": (b"\0" * 32, verifier, ZK_VERIFIER_LAYOUT),
        "existing id": (circuit_id(), verifier, ZK_VERIFIER_LAYOUT),
        "not a contract": (keccak(text="c"), "0x" + "12" * 20, ZK_VERIFIER_LAYOUT),
        "repeated signal": (keccak(text="c"), verifier, bytes([0, 1, 1])),
        "unknown signal": (keccak(text="c"), verifier, bytes([0, 1, 3])),
    }[case]
    proposal_id = governance.ready_to_execute(
        alice, [(zk_verifier, zk_verifier.registerCircuit.encode_input(*args))], f"Register: {case}", [(alice, 1), (bob, 1)]
    )
    with reverts_with(error):
        dao.execute(proposal_id, sender=alice)


def test_submit__unassigned_by_the_drawn_node__proof_checked_and_settled(
    marketplace, zk_model, zk_request, prover, model, digit, by_address, chain
):
    # The node drawn for an unassigned request proves for itself and submits: one transaction
    # assigns it, checks the proof and settles.
    model_id = zk_model(nodes=4)
    request, nodes, _ = zk_request(model_id, assign=False)
    assert nodes == []
    chain.mine()  # the request's seed is known from the next block on
    (drawn,) = marketplace.drawnNodes(request)
    proof = prover.prove(model, digit[0], SALT, request.id, drawn)

    receipt = submit(marketplace, request, proof, by_address[drawn])

    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.requestId == request.id and marketplace.requestStatus(request.id) == 2
