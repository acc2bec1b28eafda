"""Several results in one transaction (submitResults): each entry passes every check
submitResult makes, and the batch is all or nothing, so a node never takes a refused result for
a landed one. The attacks: an entry for another node's request, the same request twice, arrays
that do not line up, an entry past its deadline."""

import pytest

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY

PRICE = 5 * JOY
OPEN, SETTLED = 1, 2


@pytest.fixture
def solo(register_model, register_node, operators):
    """A model that one node serves (``operators[0]``): every request of it is that node's."""
    model_id = register_model("solo", price=PRICE)
    register_node(operators[0], [model_id], capacity=8)
    return model_id


def _outputs(count):
    return [bytes([i + 1]) * 32 for i in range(count)]


def _submit(marketplace, requests, node, outputs=None, uris=None, proofs=None):
    count = len(requests)
    return marketplace.submitResults(
        requests,
        outputs if outputs is not None else _outputs(count),
        uris if uris is not None else [f"ipfs://bafyout{i}" for i in range(count)],
        proofs if proofs is not None else [b""] * count,
        sender=node,
    )


def test_submit_results__three_assigned_results__each_settled_as_by_submit_result(
    marketplace, request_inference, solo, operators, model_owner
):
    node = operators[0]
    requests = [request_inference(solo)[0] for _ in range(3)]
    before = marketplace.balances(node), marketplace.balances(model_owner)

    receipt = _submit(marketplace, requests, node)

    submitted = receipt.decode_logs(marketplace.ResultSubmitted)
    settled = receipt.decode_logs(marketplace.InferenceSettled)
    assert [(e.requestId, e.node) for e in submitted] == [(r.id, node.address) for r in requests]
    assert [e.requestId for e in settled] == [r.id for r in requests]
    assert [bytes(e.outputCommitment) for e in settled] == _outputs(3)
    assert all(marketplace.requestStatus(r.id) == SETTLED for r in requests)
    assert marketplace.balances(node) - before[0] == sum(e.nodesPaid for e in settled) == 3 * PRICE * 70 // 100
    assert marketplace.balances(model_owner) - before[1] == sum(e.ownerPaid for e in settled)


def test_submit_results__unassigned_entries_drawn_for_the_sender__assigned_and_settled(
    marketplace, request_inference, solo, operators, chain
):
    node = operators[0]
    requests = [request_inference(solo, assign=False)[0] for _ in range(2)]
    chain.mine()  # the requests' seeds are known from the next block

    receipt = _submit(marketplace, requests, node)

    assert [e.requestId for e in receipt.decode_logs(marketplace.NodesAssigned)] == [r.id for r in requests]
    assert all(marketplace.requestStatus(r.id) == SETTLED for r in requests)


def test_submit_results__one_entry_is_another_nodes_request__whole_batch_reverts(
    marketplace, request_inference, register_model, register_node, solo, operators
):
    # A node slipping another node's request into a batch of its own, to take its fee.
    node, other = operators[0], operators[1]
    theirs_model = register_model("theirs", price=PRICE)
    register_node(other, [theirs_model])
    mine, theirs = request_inference(solo)[0], request_inference(theirs_model)[0]

    with reverts_with("ModelMarketplaceNotAssigned", requestId=theirs.id, caller=node.address):
        _submit(marketplace, [mine, theirs], node)

    assert marketplace.requestStatus(mine.id) == marketplace.requestStatus(theirs.id) == OPEN


def test_submit_results__same_request_twice__whole_batch_reverts(marketplace, request_inference, solo, operators):
    # Paid twice for one result: the first entry closes the request, the second is refused.
    request = request_inference(solo)[0]

    with reverts_with("ModelMarketplaceRequestClosed", requestId=request.id):
        _submit(marketplace, [request, request], operators[0])

    assert marketplace.requestStatus(request.id) == OPEN


def test_submit_results__an_entry_past_its_deadline__whole_batch_reverts(
    marketplace, request_inference, solo, operators, chain
):
    late = request_inference(solo, deadline_in=120)[0]
    chain.pending_timestamp = late.deadline + 1
    fresh = request_inference(solo)[0]

    with reverts_with("ModelMarketplaceDeadlinePassed", requestId=late.id):
        _submit(marketplace, [fresh, late], operators[0])

    assert marketplace.requestStatus(fresh.id) == marketplace.requestStatus(late.id) == OPEN


@pytest.mark.parametrize("short", ["outputs", "uris", "proofs"])
def test_submit_results__arrays_of_different_lengths__reverts_length_mismatch(
    marketplace, request_inference, solo, operators, short
):
    requests = [request_inference(solo)[0] for _ in range(2)]
    arrays = {"outputs": _outputs(2), "uris": ["ipfs://a", "ipfs://b"], "proofs": [b"", b""]}
    arrays[short] = arrays[short][:1]

    with reverts_with("ModelMarketplaceBatchLengthMismatch", requests=2):
        _submit(marketplace, requests, operators[0], **arrays)

    assert all(marketplace.requestStatus(r.id) == OPEN for r in requests)
