"""The edge agent's job journal against the chain: a restarted EdgeNode resumes without losing or
duplicating a submission, a commitment or a reveal, whichever side of a transaction it died on;
and the node's part of the request lifecycle (assigning a request nobody assigned, declining in
time what it cannot compute). In-process EdgeNodes (the agent's own class) on the suite's anvil;
the crash is the journal left as a killed process leaves it."""

import asyncio
import json
import time

import pytest

from helpers.edge_agents import events_of, receipts_since, request_with_input
from joynet import JOY, ModelMarketplace
from joynet.edge import EdgeNode, EdgeNodeError, JobJournal, JournalError
from joynet.inference.inputs import digits_input
from joynet.edge import edge_node
from joynet.edge.journal import COMMITTED, COMPUTED, DECLINED, REVEALED, SUBMITTED
from joynet.edge.edge_node import request_digest
from joynet.chain.marketplace import Request, RequestStatus, model_key, seal_result
from joynet.models.builtin import publish_builtin_models
from joynet.storage import EmbeddedStore

run = asyncio.run
DIGITS = "journal-digits"
QUORUM = "journal-digits-quorum"  # the digits package registered with a quorum of 2 and no circuit
PIXELS = [0, 0, 5, 13, 9, 1, 0, 0] * 8
JOURNALED_SALT, PEER_SALT = bytes([7] * 32), bytes([9] * 32)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("journal-ipfs"))


@pytest.fixture(scope="module")
def digits_model(marketplace, coordinator, model_owner, store):
    """The digits model, twice (single node with its circuit; a quorum of 2 without). Names the
    session's ``coordinator`` so that it is set up before any module snapshot (``peer`` needs it;
    a session fixture first met later makes Ape rebase its snapshots)."""
    cid = run(publish_builtin_models(store))["digits"]
    metadata = json.loads(run(store.cat(cid)))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(DIGITS, f"ipfs://{cid}", price=5 * JOY, weights_commitment=metadata["weightsCommitment"],
                             quorum=1, circuit_id=metadata["verification"]["circuitId"]))
    run(owner.register_model(QUORUM, f"ipfs://{cid}", price=5 * JOY, weights_commitment=metadata["weightsCommitment"],
                             quorum=2))
    return cid


@pytest.fixture
def operator(accounts):
    return accounts[9]


@pytest.fixture
def peer(accounts, register_node, digits_model):
    """The other node of the quorum model (driven by the test itself)."""
    return register_node(accounts[8], [model_key(QUORUM)])


@pytest.fixture
def new_node(operator, marketplace, store, tmp_path):
    def build(**options):
        return EdgeNode(operator, [DIGITS, QUORUM], journal=tmp_path / "journal.sqlite", store=store, warm_up=False,
                        cache_dir=tmp_path / "models",
                        marketplace=ModelMarketplace(contract_address=marketplace.address, account=operator),
                        **options)

    return build


@pytest.fixture
def client(marketplace, requester, token):
    token.approve(marketplace, 100 * JOY, sender=requester)
    return ModelMarketplace(contract_address=marketplace.address, account=requester)


def _event(marketplace, name, request_id):
    (event,) = events_of(marketplace, name, 0, requestId=request_id)
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


async def until_idle(node):
    """Waits for the node's assignment attempts, then its in-flight jobs, as a drain does but
    without assigning what it was drawn for or ending its lease."""
    while node._assigners or node._tasks:
        await asyncio.gather(*node._assigners, *node._tasks, return_exceptions=True)
        await asyncio.sleep(0)  # their done-callbacks take them out of the sets


async def journal_result(node, marketplace, request_id, model):
    """What the agent journals before sending (the process then dies: nothing is sent)."""
    requested, assigned = (_event(marketplace, name, request_id) for name in ("InferenceRequested", "NodesAssigned"))
    request = Request.from_event(requested, assigned)
    node.journal.add(request, model, requested.inputURI, requested.block_number)
    commitment, output_uri, proof, _ = await node._compute(node.journal.get(request_id))
    salt = {"salt": "0x" + JOURNALED_SALT.hex()} if request.quorum > 1 else {}
    node.journal.update(request_id, COMPUTED, output_commitment="0x" + commitment.hex(), output_uri=output_uri,
                        proof="0x" + proof.hex(), **salt)
    return request, commitment


def test_restart__submission_mined_but_not_journaled__not_submitted_again(
        digits_model, new_node, client, store, marketplace, operator, chain):
    async def serve_once():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True, assign=True)
        await node.on_assigned(_event(marketplace, "NodesAssigned", request_id))
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
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True, assign=True)
        _, commitment = await journal_result(node, marketplace, request_id, DIGITS)
        await node.close()
        return request_id, commitment

    request_id, commitment = run(compute_then_die())
    assert client.status(request_id) is RequestStatus.Open

    resumed, job = run(restart(new_node, request_id))
    assert resumed == 1 and job.state == SUBMITTED
    (submitted,) = events_of(marketplace, "ResultSubmitted", 0, requestId=request_id, node=operator.address)
    assert bytes(submitted.outputCommitment) == commitment
    assert client.status(request_id) is RequestStatus.Settled


def serve_quorum_after_restart(commitment_mined, new_node, client, store, marketplace, operator, peer):
    """A quorum job journaled with its result and salt, its commitment sent or not before the
    crash; the peer commits meanwhile; the restarted node must commit once and reveal with the
    journaled salt. Returns the request, its output commitment and the job after the restart."""
    async def compute_then_die():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, QUORUM, digits_input(PIXELS), zk=True)
        request, commitment = await journal_result(node, marketplace, request_id, QUORUM)
        if commitment_mined:  # sent and mined, then killed before the journal said so
            await node._commit(node.journal.get(request_id))
            assert node.journal.get(request_id).state == COMMITTED
            node.journal.update(request_id, COMPUTED)
        await node.close()
        return request, commitment

    request, commitment = run(compute_then_die())
    assert set(request.nodes) == {operator.address, peer.address}
    marketplace.commitResult(request, seal_result(request.id, peer.address, commitment, PEER_SALT), sender=peer)

    resumed, job = run(restart(new_node, request.id))  # every node committed: it reveals at once
    assert resumed == 1
    return request, commitment, job


def assert_revealed_once_with_journaled_salt(request, commitment, job, marketplace, operator, peer, client):
    assert job.state == REVEALED and job.salt == "0x" + JOURNALED_SALT.hex()
    assert len(events_of(marketplace, "ResultCommitted", 0, requestId=request.id, node=operator.address)) == 1
    (revealed,) = events_of(marketplace, "ResultSubmitted", 0, requestId=request.id, node=operator.address)
    assert bytes(revealed.outputCommitment) == commitment
    # The reveal matched the sealed result of the journaled salt, or it would have reverted.
    assert marketplace.resultOf(request.id, request.nodes.index(operator.address)) == commitment
    marketplace.revealResult(request, commitment, PEER_SALT, "ipfs://peer", b"", sender=peer)
    assert client.status(request.id) is RequestStatus.Settled


def test_restart__quorum_commitment_mined_but_not_journaled__reveals_with_the_journaled_salt(
        digits_model, new_node, client, store, marketplace, operator, peer):
    request, commitment, job = serve_quorum_after_restart(True, new_node, client, store, marketplace, operator, peer)
    assert_revealed_once_with_journaled_salt(request, commitment, job, marketplace, operator, peer, client)


def test_restart__quorum_result_and_salt_journaled_but_not_committed__commits_then_reveals_with_that_salt(
        digits_model, new_node, client, store, marketplace, operator, peer):
    request, commitment, job = serve_quorum_after_restart(False, new_node, client, store, marketplace, operator, peer)
    assert_revealed_once_with_journaled_salt(request, commitment, job, marketplace, operator, peer, client)


def test_on_requested__quorum_request_nobody_assigned__node_assigns_after_its_grace(
        digits_model, new_node, client, store, marketplace, operator, peer, chain):
    async def scenario():
        node = new_node(assign_delay=0)
        await node.join()
        from joynet.inference.inputs import publish_input

        uri, commitment = await publish_input(store, digits_input(PIXELS), zk=True)
        request_id = await client.request_inference(QUORUM, commitment, uri, assign=False)
        requested = _event(marketplace, "InferenceRequested", request_id)
        assert marketplace.requestDigest(request_id) == request_digest(Request.from_event(requested))
        await node.on_requested(requested)
        await node.drain()  # waits for the assignment attempt
        await node.close()
        return request_id

    request_id = run(scenario())
    assigned = _event(marketplace, "NodesAssigned", request_id)
    assert chain.get_receipt(assigned.transaction_hash).sender == operator.address
    assert set(assigned.nodes) == {operator.address, peer.address}


def test_on_requested__several_quorum_requests_nobody_assigned__node_assigns_them_in_one_transaction(
        digits_model, new_node, client, store, marketplace, operator, peer, chain):
    async def scenario():
        node = new_node(assign_delay=0)
        await node.join()
        from joynet.inference.inputs import publish_input

        ids = []
        for pixel in range(3):
            uri, commitment = await publish_input(store, digits_input([pixel] * 64), zk=True)
            ids.append(await client.request_inference(QUORUM, commitment, uri, assign=False))
        for request_id in ids:
            await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await node.drain()  # waits for the assignment attempts
        assigned = [_event(marketplace, "NodesAssigned", request_id) for request_id in ids]
        await node.close()
        return assigned

    assigned = run(scenario())
    # One transaction, the node's own assignNodesBatch, assigned all three.
    (tx,) = {event.transaction_hash for event in assigned}
    receipt = chain.get_receipt(tx)
    assert receipt.sender == operator.address and receipt.method_called.name == "assignNodesBatch"
    assert all(set(event.nodes) == {operator.address, peer.address} for event in assigned)


def test_on_requested__drawn_for_this_node__served_and_its_result_assigns_it(
        digits_model, new_node, client, store, marketplace, operator, chain):
    async def scenario():
        node = new_node()
        await node.join()
        nonce = operator.nonce
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        assert client.get_request(request_id).nodes == []  # the client leaves a single-node request to its node
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await until_idle(node)  # served; a drain would first assign it, then end the node's lease
        sent = operator.nonce - nonce
        job = node.journal.get(request_id)
        await node.drain()
        await node.close()
        return request_id, job, sent

    request_id, job, sent = run(scenario())
    assert job.state == SUBMITTED and client.status(request_id) is RequestStatus.Settled
    # One transaction: the result, which assigned the request to this node and settled it.
    assert sent == 1
    assigned, submitted = (_event(marketplace, name, request_id) for name in ("NodesAssigned", "ResultSubmitted"))
    assert assigned.transaction_hash == submitted.transaction_hash == job.tx_hash
    assert list(assigned.nodes) == [operator.address]
    assert chain.get_receipt(job.tx_hash).method_called.name == "submitResult"


@pytest.fixture
def silent_peer(accounts, register_node, digits_model):
    """A second node of the single-node model, which never answers."""
    return register_node(accounts[7], [model_key(DIGITS)])


async def _request_drawn_for(client, store, node_address: str) -> int:
    """A fresh unassigned DIGITS request whose draw names ``node_address`` (each request's draw
    is an independent fair coin between two idle nodes: 30 tries miss with chance 1e-9)."""
    for pixel in range(30):
        request_id = await request_with_input(client, store, DIGITS, digits_input([pixel] * 64), zk=True)
        if client.drawn_nodes(request_id) == [node_address]:
            return request_id
    raise AssertionError(f"no request was drawn for {node_address}")


def test_on_requested__another_node_drawn_and_silent__assigned_to_it_after_the_standby(
        digits_model, new_node, client, store, marketplace, operator, silent_peer, chain, monkeypatch):
    monkeypatch.setattr(edge_node, "DRAWN_NODE_STANDBY_SECONDS", 0.5)

    async def scenario():
        node = new_node(assign_delay=0)
        await node.join()
        request_id = await _request_drawn_for(client, store, silent_peer.address)
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await node.drain()  # waits for the assignment attempt
        job = node.journal.get(request_id)
        await node.close()
        return request_id, job

    request_id, job = run(scenario())
    # The drawn node stayed silent: this one assigned it, to that node, which is now liable.
    assigned = _event(marketplace, "NodesAssigned", request_id)
    assert chain.get_receipt(assigned.transaction_hash).sender == operator.address
    assert list(assigned.nodes) == [silent_peer.address]
    assert job is None  # never this node's job


async def _journal_drawn_result(node, marketplace, request_id):
    """A drawn job journaled with its result, unassigned (the agent then died before sending)."""
    requested = _event(marketplace, "InferenceRequested", request_id)
    node.journal.add(Request.from_event(requested), DIGITS, requested.inputURI, requested.block_number)
    commitment, output_uri, proof, _ = await node._compute(node.journal.get(request_id))
    node.journal.update(request_id, COMPUTED, output_commitment="0x" + commitment.hex(), output_uri=output_uri,
                        proof="0x" + proof.hex())
    return commitment


def test_restart__drawn_job_the_draw_now_gives_another_node__assigned_to_it_and_dropped(
        digits_model, new_node, client, store, marketplace, operator, silent_peer, chain):
    # The node computed a request it took for its own, but by the time its result goes out the
    # draw names another node (the loads moved): its result would revert, so it assigns the
    # request (to that node) and forgets the job, without one reverted transaction.
    async def compute_then_die():
        node = new_node()
        await node.join()
        request_id = await _request_drawn_for(client, store, silent_peer.address)
        await _journal_drawn_result(node, marketplace, request_id)
        await node.close()
        return request_id

    request_id = run(compute_then_die())
    start = chain.blocks.height
    resumed, job = run(restart(new_node, request_id))
    assert resumed == 1 and job is None
    assigned = _event(marketplace, "NodesAssigned", request_id)
    assert list(assigned.nodes) == [silent_peer.address]
    assert chain.get_receipt(assigned.transaction_hash).sender == operator.address
    assert not events_of(marketplace, "ResultSubmitted", 0, requestId=request_id)
    failed = [receipt for receipt in receipts_since(chain, start + 1) if int(receipt["status"], 16) == 0]
    assert failed == []


def test_restart__drawn_job_assigned_meanwhile_to_this_node__submits_the_assigned_request(
        digits_model, new_node, client, store, marketplace, operator, chain):
    async def compute_then_die():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        commitment = await _journal_drawn_result(node, marketplace, request_id)
        await node.close()
        return request_id, commitment

    request_id, commitment = run(compute_then_die())
    run(client.assign_nodes(request_id))  # the requester's client assigned it while the node was down

    resumed, job = run(restart(new_node, request_id))
    assert resumed == 1 and job.state == SUBMITTED and job.request.nodes == [operator.address]
    (submitted,) = events_of(marketplace, "ResultSubmitted", 0, requestId=request_id)
    assert submitted.node == operator.address and bytes(submitted.outputCommitment) == commitment
    assert client.status(request_id) is RequestStatus.Settled


def test_restart__drawn_job_while_no_node_has_room__waits_then_submits_once_a_request_closes(
        digits_model, new_node, client, store, marketplace, operator, chain, monkeypatch):
    # The node took a drawn request and computed it, but another request filled its only slot
    # meanwhile: its result cannot assign the request, and nobody can assign it until room
    # frees. The job waits (nothing sent, not failed) and goes out once a request closes.
    monkeypatch.setattr(edge_node, "CLAIM_RETRY_SECONDS", 0.2)

    async def scenario():
        node = new_node(capacity=1)
        await node.join()
        # Both requested while the slot is free (a request nobody could take is refused).
        waiting = await request_with_input(client, store, DIGITS, digits_input([1] * 64), zk=True)
        busy = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        await client.assign_nodes(busy)  # the node's one slot
        commitment = await _journal_drawn_result(node, marketplace, waiting)
        start, nonce = chain.blocks.height, operator.nonce
        assert await node.reconcile() == 1
        await asyncio.sleep(1.0)  # several looks at the chain: still no room
        assert (operator.nonce, node.journal.get(waiting).state) == (nonce, COMPUTED)
        async with node._tx_lock:  # the node's own account frees the slot, as its decline would
            await node.market.decline_request(busy, "frees the slot")
        node.retry_assignments()  # what the agent does on each closed request
        await node.drain()
        job = node.journal.get(waiting)
        await node.close()
        return waiting, commitment, job, start

    waiting, commitment, job, start = run(scenario())
    assert job.state == SUBMITTED and client.status(waiting) is RequestStatus.Settled
    (submitted,) = events_of(marketplace, "ResultSubmitted", 0, requestId=waiting)
    assert submitted.node == operator.address and bytes(submitted.outputCommitment) == commitment
    failed = [receipt for receipt in receipts_since(chain, start + 1) if int(receipt["status"], 16) == 0]
    assert failed == []


def test_request_fee_collection__first_withdrawal_fails__retried_in_the_background_and_journaled_from_the_receipt(
        digits_model, new_node, client, store, marketplace, operator, monkeypatch):
    # The settlement handler only queues the withdrawal: a failing one (an RPC error here) must
    # not hold up the loop that reads the chain, nor be lost; what the journal says was
    # withdrawn is what the chain's BalanceWithdrawn events say.
    monkeypatch.setattr(edge_node, "FEE_RETRY_SECONDS", 0.1)

    async def scenario():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await node.drain()  # served and settled: the fees are the node's balance
        send, failures = node.market.send, []

        async def withdrawal_fails_once(method, *args):
            if method.abis[0].name == "withdrawBalance" and not failures:
                failures.append(method.abis[0].name)
                raise ConnectionError("the RPC endpoint is unreachable")
            return await send(method, *args)

        node.market.send = withdrawal_fails_once
        queued_at = time.monotonic()
        node.request_fee_collection()
        queued_in = time.monotonic() - queued_at
        await asyncio.wait_for(node._collector, 30)
        withdrawn = node.journal.withdrawn()
        await node.close()
        return withdrawn, failures, queued_in

    withdrawn, failures, queued_in = run(scenario())
    assert failures == ["withdrawBalance"] and queued_in < 0.05
    events = events_of(marketplace, "BalanceWithdrawn", 0, account=operator.address)
    assert withdrawn == sum(event.amount for event in events) == 5 * JOY * 70 // 100  # the node's share of the price
    assert marketplace.balances(operator) == 0


async def _computed_assigned_job(node, client, store, marketplace, pixel):
    """A DIGITS request assigned to ``node`` and its result journaled as computed, not sent."""
    request_id = await request_with_input(client, store, DIGITS, digits_input([pixel] * 64), zk=True)
    assigned = await client.assign_nodes(request_id)
    requested = _event(marketplace, "InferenceRequested", request_id)
    node.journal.add(assigned, DIGITS, requested.inputURI, requested.block_number)
    commitment, output_uri, proof, _ = await node._compute(node.journal.get(request_id))
    node.journal.update(request_id, COMPUTED, output_commitment="0x" + commitment.hex(),
                        output_uri=output_uri, proof="0x" + proof.hex())
    return node.journal.get(request_id)


@pytest.fixture
def slow_receipts(monkeypatch):
    """The node waits for a receipt half a second under its lock, then polls every 0.2 s."""
    monkeypatch.setattr(edge_node, "RECEIPT_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(edge_node, "PENDING_POLL_SECONDS", 0.2)


def _stop_mining(chain):
    chain.provider.make_request("evm_setAutomine", [False])


def _resume_mining(chain):
    chain.provider.make_request("evm_setAutomine", [True])
    chain.provider.make_request("evm_mine", [])


def test_submit__chain_stops_mining__job_waits_unfailed_and_lands_once_mining_resumes(
        digits_model, new_node, client, store, marketplace, operator, chain, slow_receipts):
    # A chain that stops mining while a result is out used to fail the job at the receipt
    # timeout (a final state, never retried): a computed result lost, and a slash to come.
    async def scenario():
        node = new_node()
        await node.join()
        job = await _computed_assigned_job(node, client, store, marketplace, 5)
        _stop_mining(chain)
        try:
            submitting = asyncio.create_task(node._submit(job))
            await asyncio.sleep(3.0)  # several receipt waits and polls
            while_stopped = (node.journal.get(job.request_id).state, submitting.done())
        finally:
            _resume_mining(chain)
        await asyncio.wait_for(submitting, 30)
        done = node.journal.get(job.request_id)
        await node.close()
        return while_stopped, done

    while_stopped, done = run(scenario())
    assert while_stopped == (COMPUTED, False)
    assert done.state == SUBMITTED and client.status(done.request_id) is RequestStatus.Settled
    assert len(events_of(marketplace, "ResultSubmitted", 0, requestId=done.request_id)) == 1


def test_submit__transaction_dropped_from_the_pool__sent_again_and_lands(
        digits_model, new_node, client, store, marketplace, operator, chain, slow_receipts):
    async def scenario():
        node = new_node()
        await node.join()
        job = await _computed_assigned_job(node, client, store, marketplace, 6)
        _stop_mining(chain)
        try:
            submitting = asyncio.create_task(node._submit(job))
            await asyncio.sleep(1.5)  # sent, not mined, waited for
            chain.provider.make_request("anvil_dropAllTransactions", [])
            await asyncio.sleep(1.0)  # the node sees it gone and sends it again
        finally:
            _resume_mining(chain)
        await asyncio.wait_for(submitting, 30)
        done = node.journal.get(job.request_id)
        await node.close()
        return done

    done = run(scenario())
    assert done.state == SUBMITTED and client.status(done.request_id) is RequestStatus.Settled
    assert len(events_of(marketplace, "ResultSubmitted", 0, requestId=done.request_id)) == 1


def test_drain__result_transaction_outstanding__ends_within_the_drain_time_and_the_restart_finds_it_landed(
        digits_model, new_node, client, store, marketplace, operator, chain, slow_receipts):
    # SIGTERM while the chain does not mine the node's result: the drain must not hang on the
    # receipt; the job stays in the journal, unfailed, and the next start settles its account.
    async def drain_while_stopped():
        node = new_node(drain_seconds=1.0)
        await node.join()
        job = await _computed_assigned_job(node, client, store, marketplace, 7)
        _stop_mining(chain)
        try:
            node._spawn(job)
            await asyncio.sleep(1.5)  # sent, not mined, waited for
            started = time.monotonic()
            await node.drain()
            drained_in = time.monotonic() - started
            left = node.journal.get(job.request_id).state
            await node.close()
        finally:
            _resume_mining(chain)
        return job.request_id, drained_in, left

    request_id, drained_in, left = run(drain_while_stopped())
    assert drained_in < 2.0 and left == COMPUTED
    # Mining resumed with the transaction still in the pool: the restart finds it mined and
    # sends nothing again.
    resumed, job = run(restart(new_node, request_id))
    assert resumed == 0 and job.state == SUBMITTED and client.status(request_id) is RequestStatus.Settled
    assert len(events_of(marketplace, "ResultSubmitted", 0, requestId=request_id)) == 1


def test_submit__results_ready_while_a_transaction_is_under_way__sent_together_in_one(
        digits_model, new_node, client, store, marketplace, operator, chain):
    # Results that become ready while the node's transaction lock is held go out in one
    # submitResults when it frees, not one block each.
    async def scenario():
        node = new_node()
        await node.join()
        jobs = [await _computed_assigned_job(node, client, store, marketplace, pixel) for pixel in (2, 3, 4)]
        nonce = operator.nonce
        async with node._tx_lock:  # a transaction of the node's under way
            submitting = [asyncio.create_task(node._submit(job)) for job in jobs]
            await asyncio.sleep(0.3)
        await asyncio.gather(*submitting)
        done = [node.journal.get(job.request_id) for job in jobs]
        await node.close()
        return done, operator.nonce - nonce

    done, sent = run(scenario())
    assert sent == 1 and {job.state for job in done} == {SUBMITTED} and len({job.tx_hash for job in done}) == 1
    receipt = chain.get_receipt(done[0].tx_hash)
    assert receipt.method_called.name == "submitResults"
    assert [e.requestId for e in receipt.decode_logs(marketplace.InferenceSettled)] == [j.request_id for j in done]


def test_submit__one_result_of_a_batch_refused__the_others_still_go_together(
        digits_model, new_node, client, store, marketplace, operator, chain):
    # submitResults is all or nothing: one entry that can no longer be submitted (here its
    # result landed meanwhile from another client of the same account; under load, a request
    # another node took after the standby) refuses the batch. The others must not fall back to
    # a transaction each (a block each, under load) but go together without it; the refused
    # one's job reads the chain and finds its result there.
    async def scenario():
        node = new_node()
        await node.join()
        jobs = [await _computed_assigned_job(node, client, store, marketplace, pixel) for pixel in (5, 6, 7)]
        landed = jobs[2]
        nonce = operator.nonce
        async with node._tx_lock:  # a transaction of the node's under way: the three queue up
            submitting = [asyncio.create_task(node._submit(job)) for job in jobs]
            await asyncio.sleep(0.3)
            other_client = ModelMarketplace(contract_address=marketplace.address, account=operator)
            direct = await other_client.transact(
                marketplace.submitResult,
                landed.request,
                edge_node._hex(landed.output_commitment),
                landed.output_uri,
                edge_node._hex(landed.proof),
            )
        await asyncio.gather(*submitting)
        done = [node.journal.get(job.request_id) for job in jobs]
        await node.close()
        return done, operator.nonce - nonce, direct.txn_hash

    done, sent, direct = run(scenario())
    assert sent == 2 and {job.state for job in done} == {SUBMITTED}  # the direct result, then one batch
    assert done[0].tx_hash == done[1].tx_hash != direct and done[2].tx_hash == direct
    receipt = chain.get_receipt(done[0].tx_hash)
    assert receipt.method_called.name == "submitResults"
    assert [e.requestId for e in receipt.decode_logs(marketplace.InferenceSettled)] == [j.request_id for j in done[:2]]


def test_join__node_left_its_sets_recently__waits_out_the_rejoin_delay_then_reactivates(
        digits_model, new_node, coordinator, operator, chain, monkeypatch):
    monkeypatch.setattr(edge_node, "REJOIN_POLL_SECONDS", 0.05)

    async def scenario():
        node = new_node()
        await node.join()
        await node.close()
        coordinator.deactivate(sender=operator)  # say, the operator paused it for maintenance
        rejoinable = coordinator.rejoinableAt(operator)
        node = new_node()
        joining = asyncio.create_task(node.join())
        await asyncio.sleep(0.5)
        # A reactivation now would be refused (NodeCoordinatorRejoinTooSoon): the agent waits.
        waited = not joining.done() and not coordinator.nodeInfo(operator).active
        chain.mine(rejoinable - chain.blocks.head.number - 1)  # its reactivation lands in `rejoinable`
        await asyncio.wait_for(joining, 30)
        await node.close()
        return waited, rejoinable

    waited, rejoinable = run(scenario())
    assert waited
    assert coordinator.nodeInfo(operator).active
    assert coordinator.isEligible(operator, model_key(DIGITS))
    (event,) = events_of(coordinator, "NodeReactivated", rejoinable, node=operator.address)
    assert event.block_number == rejoinable


def test_on_requested__requester_assigned_first__node_sends_nothing(
        digits_model, new_node, client, store, marketplace, coordinator, operator, chain):
    async def scenario():
        node = new_node(assign_delay=0)
        await node.join()
        nonce, start = operator.nonce, chain.blocks.height
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True,
                                              assign=True)  # the client assigns
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await node.drain()
        # Losing the race after the checks (another assignment landed in between) is quiet too:
        # the dry run reverts, nothing is mined, nothing is raised.
        answers = iter([True, True])
        node._unassigned = lambda request: next(answers, False)
        await node._assign(Request.from_event(_event(marketplace, "InferenceRequested", request_id)))
        sent = operator.nonce - nonce
        await node.close()
        return sent, start

    sent, start = run(scenario())
    # Nothing but the drain's end of its lease.
    assert sent == 1 and len(events_of(coordinator, "LeaseEnded", start + 1, node=operator.address)) == 1


def test_serve__result_not_computable_in_time__declined_before_the_deadline(
        digits_model, new_node, client, store, marketplace, operator, chain, monkeypatch):
    # Leave the node about 5 s of its 120 s to compute, and a computation that never ends.
    monkeypatch.setattr(edge_node, "ANSWER_MARGIN_SECONDS", 115)

    async def scenario():
        node = new_node()
        await node.join()

        async def stuck(job):
            await asyncio.sleep(3600)

        node._compute = stuck
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True,
                                              deadline_seconds=120, assign=True)
        await node.on_assigned(_event(marketplace, "NodesAssigned", request_id))
        await node.drain()
        job = node.journal.get(request_id)
        await node.close()
        return request_id, job

    request_id, job = run(scenario())
    assert job.state == DECLINED
    result = run(client.get_result(request_id, timeout=0))
    assert result.status is RequestStatus.Refunded and "could not compute the result" in result.refund_reason


def test_on_block__a_third_of_the_lease_left__renewed_in_the_background_before_it_runs_out(
        digits_model, new_node, coordinator, operator, chain):
    async def serve_blocks():
        node = new_node()
        await node.join()
        lease_blocks, end = coordinator.leaseBlocks(), coordinator.leaseEnd(operator)
        node.on_block(chain.blocks.height)  # a fresh lease: nothing to do
        assert node._renewer is None
        chain.mine(end - chain.blocks.height - 1 - lease_blocks // 3)  # a third left from the next block
        node.on_block(chain.blocks.height)
        await node._renewer
        node.on_block(chain.blocks.height)  # renewed: not due again
        assert node._renewer.done()
        await node.drain()
        await node.close()
        return lease_blocks, end

    lease_blocks, end = run(serve_blocks())
    (renewed,) = events_of(coordinator, "LeaseRenewed", end - lease_blocks + 1, node=operator.address)
    assert renewed.block_number < end and renewed.leaseEnd == renewed.block_number + lease_blocks


def test_drain__lease_running__ended_before_in_flight_jobs_finish_and_a_restart_renews_it(
        digits_model, new_node, coordinator, operator, chain):
    seen = []

    async def in_flight():  # stands for a job still running when the drain begins
        await asyncio.sleep(0.2)
        seen.append(coordinator.leaseRunning(operator))

    async def drain_then_restart():
        node = new_node()
        await node.join()
        assert coordinator.leaseRunning(operator)
        node._tasks.add(asyncio.create_task(in_flight()))
        await node.drain()
        await node.close()
        (ended,) = events_of(coordinator, "LeaseEnded", 0, node=operator.address)
        assert seen == [False]  # no new work was drawn for it while the job finished
        assert not coordinator.isEligible(operator, model_key(DIGITS))
        assert coordinator.nodeInfo(operator).active  # a pause: still in its sets, no rejoin delay
        chain.mine(coordinator.leaseBlocks())  # down for longer than a lease
        node = new_node()
        await node.join()
        assert coordinator.leaseRunning(operator) and coordinator.isEligible(operator, model_key(DIGITS))
        await node.drain()
        await node.close()
        return ended.block_number

    ended = run(drain_then_restart())
    renewals = events_of(coordinator, "LeaseRenewed", ended + 1, node=operator.address)
    assert len(renewals) == 1  # the restart renewed it once, before serving


def test_journal__assigned_request__round_trips_with_seed_block_coordinator_and_nodes(tmp_path):
    journal = JobJournal(tmp_path / "journal.sqlite")
    request = Request(3, b"\1" * 32, "0x" + "aa" * 20, 5 * JOY, b"\2" * 32, 1_700_000_060, 41, "0x" + "bb" * 20,
                      ["0x" + "cc" * 20, "0x" + "dd" * 20])
    assert journal.add(request, "m", "ipfs://x", 41) and not journal.add(request, "m", "ipfs://x", 41)
    journal.update(3, COMPUTED, salt="0x" + "ee" * 32)
    job = journal.get(3)
    assert job.request == request and job.salt == "0x" + "ee" * 32 and job.state == COMPUTED


def test_journal__bound_to_another_node__refused(tmp_path):
    journal = JobJournal(tmp_path / "journal.sqlite")
    journal.bind("0x" + "11" * 20, "0x" + "22" * 20, 31337)
    with pytest.raises(JournalError, match="belongs to node 0x1111"):
        journal.bind("0x" + "33" * 20, "0x" + "22" * 20, 31337)


def test_collect_fees__shutdown_wait_runs_out__journaled_pending_and_recorded_from_its_receipt_at_the_next_start(
        digits_model, new_node, client, store, marketplace, operator, chain):
    # A shutdown waits for its fee withdrawal a bounded time only: with the chain not mining it
    # used to hang on the receipt. What it sent must still reach the journal, exactly, once the
    # chain mined it: the next start reads the receipt.
    async def scenario():
        node = new_node()
        await node.join()
        request_id = await request_with_input(client, store, DIGITS, digits_input(PIXELS), zk=True)
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await node.drain()  # served and settled: the fees are the node's balance
        _stop_mining(chain)
        try:
            started = time.monotonic()
            withdrawn_now = await node.collect_fees(minimum=1, wait=0.5)
            waited = time.monotonic() - started
            pending = node.journal.meta(edge_node.PENDING_WITHDRAWAL)
        finally:
            _resume_mining(chain)
        await node.close()
        restarted = new_node()
        await restarted.join()
        after = restarted.journal.withdrawn(), restarted.journal.meta(edge_node.PENDING_WITHDRAWAL)
        await restarted.close()
        return withdrawn_now, waited, pending, after

    withdrawn_now, waited, pending, (journaled, still_pending) = run(scenario())
    assert withdrawn_now == 0 and waited < 5 and pending
    events = events_of(marketplace, "BalanceWithdrawn", 0, account=operator.address)
    last = events[-1].transaction_hash
    last = last if isinstance(last, str) else last.hex()
    assert last.lower().removeprefix("0x") == pending.lower().removeprefix("0x")  # the shutdown's
    assert journaled == sum(event.amount for event in events) == 5 * JOY * 70 // 100 and not still_pending


def test_on_assigned__request_assigned_while_this_node_waits_its_turn__dropped_without_a_read_or_a_send(
        digits_model, new_node, client, store, marketplace, operator, peer, chain):
    async def scenario():
        node = new_node(assign_delay=0.3)
        await node.join()
        reads = []
        node._unassigned = lambda request: reads.append(request.id) or True  # would assign it, if asked
        start = chain.blocks.height
        request_id = await request_with_input(client, store, QUORUM, digits_input(PIXELS), zk=False,
                                              assign=False)
        await node.on_requested(_event(marketplace, "InferenceRequested", request_id))
        await client.assign_nodes(request_id)  # the requester's assignment lands during the node's grace
        await node.on_assigned(_event(marketplace, "NodesAssigned", request_id))
        await asyncio.gather(*node._assigners)
        await node.close()
        return reads, start

    reads, start = run(scenario())
    # The node answers the request it is assigned (its job may send a decline meanwhile), but
    # sends no assignment of its own.
    methods = [chain.get_receipt(receipt["transactionHash"]).method_called.name
               for receipt in receipts_since(chain, start) if receipt["from"].lower() == operator.address.lower()]
    assert reads == [] and not {"assignNodes", "assignNodesBatch"} & set(methods)


def test_compute__model_metadata_updated__the_next_job_runs_the_package_the_new_metadata_names(
        digits_model, new_node, client, store, marketplace, model_owner):
    metadata = json.loads(run(store.cat(digits_model)))
    republished = run(store.add_bytes(json.dumps({**metadata, "version": "1.0.1"}).encode()))
    loads = []

    async def scenario():
        node = new_node()
        await node.join()
        load_model = node.inference.load_model

        async def counted(model_id, *args, **kwargs):
            loads.append(model_id)
            return await load_model(model_id, *args, **kwargs)

        node.inference.load_model = counted
        first = await _computed_assigned_job(node, client, store, marketplace, 1)
        second = await _computed_assigned_job(node, client, store, marketplace, 2)
        kept = (await node._model_of(second)).cid
        marketplace.updateMetadata(model_key(DIGITS), f"ipfs://{republished}", sender=model_owner)
        (updated,) = events_of(marketplace, "ModelMetadataUpdated", 0, modelId=model_key(DIGITS))
        node.on_metadata_updated(updated)
        third = await _computed_assigned_job(node, client, store, marketplace, 3)
        now = (await node._model_of(third)).cid
        await node.drain()
        await node.close()
        return first, kept, third, now

    first, kept, third, now = run(scenario())
    assert first.state == third.state == COMPUTED
    # Loaded at join and kept for every job; read again from the registry only once it changed.
    assert kept == digits_model and loads == [DIGITS] and now == republished


def test_join__tolerant_model_whose_runtime_cannot_recheck_answers__refused_before_staking(
        digits_model, marketplace, model_owner, operator, coordinator, store, tmp_path):
    # The digits package registered under the tolerant policy: its runtime has no prefill, so
    # this node could never validate another node's answer (nor its answers be validated).
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    metadata = json.loads(run(store.cat(digits_model)))
    run(owner.register_model("journal-digits-tolerant", f"ipfs://{digits_model}", price=5 * JOY, quorum=3,
                             tolerant=True, weights_commitment=metadata["weightsCommitment"]))
    before = coordinator.nodeInfo(operator)
    node = EdgeNode(operator, ["journal-digits-tolerant"], journal=tmp_path / "journal.sqlite", store=store,
                    warm_up=False, cache_dir=tmp_path / "models",
                    marketplace=ModelMarketplace(contract_address=marketplace.address, account=operator))
    with pytest.raises(EdgeNodeError, match="its policy is tolerant, and its runtime .* cannot re-check"):
        run(node.join())
    run(node.close())
    assert coordinator.nodeInfo(operator) == before
    assert model_key("journal-digits-tolerant") not in {bytes(key) for key in coordinator.modelsOf(operator)}
