"""The edge agent as a validator under the tolerant policy, when its generator misbehaves: an
in-process EdgeNode (the agent's own class) serving SmolLM2 under a tolerant quorum of 2 on the
suite's anvil, its generator the test's own node. A generator that stays silent leaves the
validator nothing to do: it sends nothing, is not slashed, and the generator is. A generator
whose output document cannot be read is rejected: the validator is paid for its vote and the
generator slashed. (Honest answers, and an altered one, are in
tests/e2e/test_language_model_agents.py.)"""

import asyncio

import pytest

from helpers.edge_agents import events_of, request_with_input
from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import REJECTED_VOTE, Request, RequestStatus, model_key
from joynet.edge import EdgeNode
from joynet.edge.journal import EXPIRED, REVEALED
from joynet.inference.runtimes.language_model import write_smollm2_package
from joynet.models.package import load_model_metadata, publish_model
from joynet.storage import EmbeddedStore

run = asyncio.run
MODEL = "validator-smollm2"
PRICE = 4 * JOY


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("validator-ipfs"))


@pytest.fixture(scope="module")
def llm_cache(smollm2_cache):
    """The converted SmolLM2, made once for the session's nodes."""
    return smollm2_cache


@pytest.fixture(scope="module")
def tolerant_smollm2(marketplace, coordinator, model_owner, store, tmp_path_factory):
    """SmolLM2 registered under a tolerant quorum of 2: one generator, one validator. Names the
    session's ``coordinator`` so that it is set up before any module snapshot."""
    cid = run(publish_model(store, write_smollm2_package(tmp_path_factory.mktemp("package"), maxNewTokens=8)))
    metadata = run(load_model_metadata(store, cid))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(MODEL, f"ipfs://{cid}", price=PRICE, quorum=2, tolerant=True,
                             weights_commitment=metadata["weightsCommitment"]))
    return cid


@pytest.fixture
def validator(accounts):
    return accounts[9]


@pytest.fixture
def generator(accounts, register_node, tolerant_smollm2):
    """The other node of the model, driven by the test itself. Room for every request a test may
    make until the draw gives this node the generator's seat (each leaves both nodes busy)."""
    return register_node(accounts[8], [model_key(MODEL)], capacity=SEAT_ATTEMPTS)


@pytest.fixture
def new_node(validator, marketplace, store, llm_cache, tmp_path):
    def build():
        return EdgeNode(validator, [MODEL], journal=tmp_path / "journal.sqlite", store=store, warm_up=False,
                        cache_dir=llm_cache, capacity=SEAT_ATTEMPTS,
                        marketplace=ModelMarketplace(contract_address=marketplace.address, account=validator))

    return build


@pytest.fixture
def client(marketplace, requester, token):
    token.approve(marketplace, 100 * JOY, sender=requester)
    return ModelMarketplace(contract_address=marketplace.address, account=requester)


# Requests a test makes at most until the generator's seat (one of two, uniform) falls to the
# test's node: all of them miss with probability 2^-12.
SEAT_ATTEMPTS = 12


async def request_generated_by(client, store, marketplace, generator) -> tuple[Request, object]:
    """A request whose generator's seat the draw gave ``generator`` (the seat is uniform: tries
    until it does, leaving the others open); returns it and its NodesAssigned event."""
    for attempt in range(SEAT_ATTEMPTS):
        rid = await request_with_input(client, store, MODEL, {"text": f"Say hello ({attempt})", "max_tokens": 8},
                                       zk=False)
        (assigned,) = events_of(marketplace, "NodesAssigned", 0, requestId=rid)
        if assigned.nodes[0] == generator.address:
            return client.get_request(rid), assigned
    raise AssertionError("the draw never gave the generator's seat to the test's node")


async def until_idle(node):
    while node._tasks:
        await asyncio.gather(*node._tasks, return_exceptions=True)
        await asyncio.sleep(0)


def test_validator__generator_silent_past_the_deadline__sends_nothing_and_only_the_generator_is_slashed(
        tolerant_smollm2, generator, validator, new_node, client, store, marketplace, coordinator, chain, outsider):
    async def scenario():
        node = new_node()
        await node.join()
        stake = coordinator.nodeInfo(validator).stake
        request, assigned = await request_generated_by(client, store, marketplace, generator)
        await node.on_assigned(assigned)
        await asyncio.sleep(1.5)  # the validator waits for a result that never comes
        chain.pending_timestamp = request.deadline + 1
        chain.mine()
        await asyncio.wait_for(until_idle(node), 30)
        job = node.journal.get(request.id)
        await node.close()
        return request, job, stake

    request, job, stake = run(scenario())
    assert job.state == EXPIRED
    assert not events_of(marketplace, "ResultCommitted", 0, requestId=request.id)
    chain.pending_timestamp = request.deadline + 2 * marketplace.revealWindow() + 1
    receipt = marketplace.closeExpired(request, sender=outsider)
    (refunded,) = receipt.decode_logs(marketplace.InferenceRefunded)
    assert (refunded.amount, refunded.reason) == (PRICE, "no result was submitted")
    (missed,) = receipt.decode_logs(coordinator.DeadlineMissed)
    assert missed.node == generator.address
    assert coordinator.nodeInfo(validator).stake == stake


def test_validator__output_document_not_json__votes_to_reject_and_is_paid_for_it(
        tolerant_smollm2, generator, validator, new_node, client, store, marketplace, coordinator):
    async def scenario():
        node = new_node()
        await node.join()
        request, assigned = await request_generated_by(client, store, marketplace, generator)
        await node.on_assigned(assigned)
        garbled = "ipfs://" + await store.add_bytes(b"\x00 not a document")
        marketplace.submitResult(request, model_key("an answer"), garbled, b"", sender=generator)
        await asyncio.wait_for(until_idle(node), 60)
        job = node.journal.get(request.id)
        await node.close()
        return request, job

    stake, balance = coordinator.nodeInfo(generator).stake, marketplace.balances(validator)
    request, job = run(scenario())
    assert job.state == REVEALED and bytes.fromhex(job.output_commitment[2:]) == REJECTED_VOTE
    assert client.status(request.id) is RequestStatus.Refunded
    result = run(client.get_result(request.id, timeout=0))
    assert result.refund_reason == "the validators rejected the result"
    assert coordinator.nodeInfo(generator).stake == stake - coordinator.taskBond()
    assert marketplace.balances(validator) - balance == PRICE * marketplace.nodeShareBps() // 10_000 // 2
    # The vote revealed is the rejection, and the URI it names is the generator's document.
    (vote,) = events_of(marketplace, "ResultSubmitted", 0, requestId=request.id, node=validator.address)
    assert bytes(vote.outputCommitment) == REJECTED_VOTE and vote.outputURI.startswith("ipfs://")
