"""The edge agent's job journal against the chain: a restarted EdgeNode resumes without losing or
duplicating a submission, whichever side of the transaction it died on. In-process EdgeNodes
(the agent's own class) on the suite's anvil; the crash is the journal left as a killed process
leaves it."""

import asyncio
import json

import pytest

from edge_agents import events_of, request_with_input
from joynet import JOY, ModelMarketplace
from joynet.edge import EdgeNode, JobJournal, JournalError, digits_input
from joynet.edge.journal import COMPUTED, SUBMITTED
from joynet.marketplace import Request, RequestStatus
from joynet.models import publish_builtin_models
from joynet.storage import EmbeddedStore

run = asyncio.run
DIGITS = "journal-digits"
PIXELS = [0, 0, 5, 13, 9, 1, 0, 0] * 8


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("journal-ipfs"))


@pytest.fixture(scope="module")
def digits_model(marketplace, model_owner, store):
    cid = run(publish_builtin_models(store))["digits"]
    metadata = json.loads(run(store.cat(cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(DIGITS, f"ipfs://{cid}", price=5 * JOY, weights_commitment=metadata["weightsCommitment"],
                             quorum=1, circuit_id=metadata["verification"]["circuitId"]))
    return cid


@pytest.fixture
def operator(accounts):
    return accounts[9]


@pytest.fixture
def new_node(operator, marketplace, store, tmp_path):
    def build():
        return EdgeNode(operator, [DIGITS], journal=tmp_path / "journal.sqlite", store=store, warm_up=False,
                        cache_dir=tmp_path / "models",
                        marketplace=ModelMarketplace(contract_address=marketplace.address, account=operator))

    return build


@pytest.fixture
def client(marketplace, requester, token):
    token.approve(marketplace, 100 * JOY, sender=requester)
    return ModelMarketplace(contract_address=marketplace.address, account=requester)


def _assignment(marketplace, chain, request_id):
    (event,) = events_of(marketplace, "InferenceRequested", chain.blocks.height - 5, requestId=request_id)
    return event


async def restart(new_node, request_id):
    """A restarted agent: joins, reconciles its journal with the chain, drains; returns the number
    of jobs it resumed and the request's job as the journal then says."""
    node = new_node()
    await node.join()
    resumed = await node.reconcile()
    await node.drain()
    job = node.journal.get(request_id)
    await node.close()
    return resumed, job


def test_restart__submission_mined_but_not_journaled__not_submitted_again(
        digits_model, new_node, client, store, marketplace, operator, chain):
    async def serve_once():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        await node.on_request(_assignment(marketplace, chain, request_id))
        await node.drain()
        await node.close()
        return request_id, node.journal.path

    request_id, journal_path = run(serve_once())
    journal = JobJournal(journal_path)
    assert journal.get(request_id).state == SUBMITTED
    journal.update(request_id, COMPUTED)  # killed after the transaction was mined, before the journal said so
    journal.close()

    resumed, job = run(restart(new_node, request_id))
    assert resumed == 0 and job.state == SUBMITTED and job.tx_hash
    assert len(events_of(marketplace, "ResultSubmitted", 0, requestId=request_id, node=operator.address)) == 1
    assert client.status(request_id) is RequestStatus.Settled


def test_restart__result_journaled_but_not_sent__journaled_result_submitted(
        digits_model, new_node, client, store, marketplace, operator, chain):
    async def compute_then_die():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        event = _assignment(marketplace, chain, request_id)
        request = Request.from_event(event)
        node.journal.add(request, DIGITS, event.inputURI, event.block_number)
        # What the agent journals before sending (the process then dies: nothing is sent).
        commitment, output_uri, proof, _ = await node._compute(node.journal.get(request_id))
        node.journal.update(request_id, COMPUTED, output_commitment="0x" + commitment.hex(), output_uri=output_uri,
                            proof="0x" + proof.hex())
        await node.close()
        return request_id, commitment

    request_id, commitment = run(compute_then_die())
    assert client.status(request_id) is RequestStatus.Open

    resumed, job = run(restart(new_node, request_id))
    assert resumed == 1 and job.state == SUBMITTED
    (submitted,) = events_of(marketplace, "ResultSubmitted", 0, requestId=request_id, node=operator.address)
    assert bytes(submitted.outputCommitment) == commitment
    assert client.status(request_id) is RequestStatus.Settled


def test_journal__bound_to_another_node__refused(tmp_path):
    journal = JobJournal(tmp_path / "journal.sqlite")
    journal.bind("0x" + "11" * 20, "0x" + "22" * 20, 31337)
    with pytest.raises(JournalError, match="belongs to node 0x1111"):
        journal.bind("0x" + "33" * 20, "0x" + "22" * 20, 31337)
