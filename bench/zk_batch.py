"""Batch verification of Groth16 proofs, from real transactions.

    gas.groth16_batch_verify_per_proof_n{16,64}      DigitsMLPBatchVerifier.verifyProofs of N distinct
                                                     proofs, execution gas (the transaction without its
                                                     21,000 base and its calldata) ÷ N
    gas.groth16_batch_verify_tx_per_proof_n{16,64}   the whole transaction ÷ N
    gas.groth16_batch_to_single_n{16,64}             the first ÷ gas.groth16_verify_execution
    gas.zk_round_trip_batch16_per_request            16 requests (from a balance) + one submitResults of
                                                     their 16 proven results by the drawn node, which
                                                     assigns them (one batch check), ÷ 16: an agent's path
    gas.zk_round_trip_batch16_assigned_first_per_request
                                                     the same with one assignNodesBatch before the results
    zk.batch_proofs_seconds                          proving the 64 distinct proofs (native prover, once)

The floor of the construction under EIP-1108 prices: each proof beyond the first costs one more
pairing (34,000) and two scalar multiplications (r_i·A_i and r_i·C_i, 6,000 each), 46,000 gas
before calldata; a batch adds the pairing call's 45,000, three pairings and five multiplications.
"""

import time

from ape import accounts, project

from bench.zk_prover import BENCH_NODE, calldata_gas
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request
from joynet.zk import (
    QuantizedMLP,
    ZKProver,
    circuit_id,
    decode_calldata,
    input_commitment,
    random_salt,
    to_bytes32,
    weights_commitment,
)
from joynet.zk.digits import load_split

BATCH_SIZES = (16, 64)
ROUND_TRIP_BATCH = 16


def _rows(proofs):
    return [[*a, *b[0], *b[1], *c] for a, b, c in (decode_calldata(p.calldata) for p in proofs)], [
        list(p.public_signals) for p in proofs
    ]


def measure_zk_batch(bench, operator) -> None:
    """The batch verifier's gas per proof at 16 and 64 proofs, and the amortized ZK round trip
    with 16 results settled by one submitResults; ``operator`` (a registered node) serves a model
    of its own so that every request of it is its own."""
    r, say = bench.results, bench.say
    model, (_, images, _, _) = QuantizedMLP.load(), load_split()
    sender = accounts.test_accounts[0]
    verifier = project.DigitsMLPBatchVerifier.at(bench.deployment.address("DigitsMLPBatchVerifier"))
    with ZKProver() as prover:
        started = time.monotonic()
        # Distinct bindings: request ids 1..64 of one node, each of its own digit and salt.
        proofs = [
            prover.prove(model, images[i % len(images)].tolist(), random_salt(), 1 + i, BENCH_NODE)
            for i in range(max(BATCH_SIZES))
        ]
        r["zk.batch_proofs_seconds"] = round(time.monotonic() - started, 3)
        say(f"{len(proofs)} distinct proofs made in {r['zk.batch_proofs_seconds']} s")
        # The single-proof figure beside them, from the same proofs (gas.groth16_verify_execution).
        single = project.DigitsMLPVerifier.at(bench.deployment.address("DigitsMLPVerifier"))
        single_args = proofs[0].verifier_args()
        receipt = single.invoke_transaction("verifyProof", *single_args, sender=sender)
        single_execution = (
            receipt.gas_used - 21_000 - calldata_gas(bytes(single.verifyProof.encode_input(*single_args)))
        )
        for size in BATCH_SIZES:
            args = _rows(proofs[:size])
            if not verifier.verifyProofs(*args):
                raise RuntimeError(f"the batch verifier refused {size} valid proofs")
            receipt = verifier.invoke_transaction("verifyProofs", *args, sender=sender)
            data = bytes(verifier.verifyProofs.encode_input(*args))
            execution = receipt.gas_used - 21_000 - calldata_gas(data)
            r[f"gas.groth16_batch_verify_per_proof_n{size}"] = execution // size
            r[f"gas.groth16_batch_verify_tx_per_proof_n{size}"] = receipt.gas_used // size
            r[f"gas.groth16_batch_to_single_n{size}"] = round(execution / size / single_execution, 3)
        measure_zk_round_trip_batch(bench, prover, model, images, operator)
    say("batch verification measured at " + ", ".join(map(str, BATCH_SIZES)) + " proofs")


def measure_zk_round_trip_batch(bench, prover, model, images, operator) -> None:
    """16 requests paid from a balance and one submitResults of the 16 proven results (one batch
    check through ProofOfInference), per request: assigned first by one assignNodesBatch, and
    submitted unassigned by their drawn node, which assigns them. A warm-up result first, as
    in the single round trips (a model's first settlement writes slots later ones update)."""
    model_id, _, _ = bench.model("zk-digits-batch", circuit=circuit_id(), weights=to_bytes32(weights_commitment(model)))
    bench.coordinator.serveModel(model_id, sender=operator)
    bench.deposit(1_000 * JOY)

    def requests(count):
        made = []
        for i in range(count):
            pixels, salt = images[i % len(images)].tolist(), random_salt()
            request, receipt = bench.request(
                model_id, input_commitment=to_bytes32(input_commitment(pixels, salt)), from_balance=True
            )
            made.append((request, receipt, pixels, salt))
        return made

    ((warm, _, pixels, salt),) = requests(1)
    warm, _ = bench.assign(warm)
    bench.submit(warm, operator.address, *_proven(prover, model, warm, pixels, salt, operator))

    # As the requester's client or another node would: one assignNodesBatch, then the results.
    made = requests(ROUND_TRIP_BATCH)
    assigned = bench.marketplace.assignNodesBatch([m[0] for m in made], sender=bench.requester)
    events = assigned.decode_logs(bench.marketplace.NodesAssigned)
    batch = [request.assigned(event) for (request, *_), event in zip(made, events, strict=True)]
    submitted = _submit_batch(bench, prover, model, operator, batch, made)
    total = sum(m[1].gas_used for m in made) + assigned.gas_used + submitted.gas_used
    bench.results[f"gas.zk_round_trip_batch{ROUND_TRIP_BATCH}_assigned_first_per_request"] = total // ROUND_TRIP_BATCH
    bench.results[f"gas.zk_submit_results_batch{ROUND_TRIP_BATCH}_per_result"] = submitted.gas_used // ROUND_TRIP_BATCH

    # As the drawn node's agent does: the unassigned requests' results, each assigning its request.
    made = requests(ROUND_TRIP_BATCH)
    for request, *_ in made:
        if list(bench.marketplace.drawnNodes(request, block_id="pending")) != [operator.address]:
            raise RuntimeError("the operator is not the drawn node of its own model's request")
    submitted = _submit_batch(bench, prover, model, operator, [m[0] for m in made], made)
    bench.trace(f"zk_batch{ROUND_TRIP_BATCH}.submit", submitted)
    total = sum(m[1].gas_used for m in made) + submitted.gas_used
    bench.results[f"gas.zk_round_trip_batch{ROUND_TRIP_BATCH}_per_request"] = total // ROUND_TRIP_BATCH
    bench.results[f"gas.zk_submit_assign_results_batch{ROUND_TRIP_BATCH}_per_result"] = (
        submitted.gas_used // ROUND_TRIP_BATCH
    )


def _submit_batch(bench, prover, model, operator, batch: list[Request], made):
    """One submitResults of ``operator``'s proven results for ``batch``; every one must settle."""
    proven = [
        _proven(prover, model, req, pixels, salt, operator)
        for req, (_, _, pixels, salt) in zip(batch, made, strict=True)
    ]
    submitted = bench.marketplace.submitResults(
        batch, [p[0] for p in proven], ["ipfs://out"] * len(batch), [p[1] for p in proven], sender=operator
    )
    if len(submitted.decode_logs(bench.marketplace.InferenceSettled)) != len(batch):
        raise RuntimeError("the batch of ZK results did not settle them all")
    return submitted


def _proven(prover, model, request: Request, pixels, salt, operator):
    """(output commitment, proof calldata) of ``operator``'s proof for ``request``."""
    proof = prover.prove(model, pixels, salt, request.id, operator.address)
    return proof.output_commitment, proof.calldata
