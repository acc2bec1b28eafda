"""`ape run edge_agent` end to end: three agents as separate processes on the suite's anvil.

One test carries the agents' whole life, because Ape reverts the chain after each test and the
agents' own transactions (registration, stake) would be reverted under them: 30 paid requests
across both models settle with the right results (MiniLM's quorum of 3 through commit and
reveal; each digits request assigned once, to the agent that answers it), a quorum
request its requester left unassigned is assigned by an agent, bad inputs are
declined and refunded, an agent killed with SIGKILL mid-task is slashed while the two others
reveal after the deadline and settle the request by majority, and restarted it submits nothing
twice; SIGTERM drains; the status command reports; an agent's transaction reverts only when it
loses a race to another account's (rarely: the agents dry-run every transaction just before sending).
A second test runs one agent of its own: SIGTERM while the chain does not mine and its result is
out, a bounded exit, and the result sent again by the restarted agent once the pool lost it.
"""

import asyncio
import json
import signal
import time

import pytest
from ape import accounts
from eth_utils import keccak

from joynet import JOY, ModelMarketplace
from joynet.inference.inputs import digits_input, document_commitment, encode_document, publish_input
from joynet.edge.journal import COMPUTED, REVEALED, RUNNING, SUBMITTED
from joynet.chain.marketplace import RequestStatus
from joynet.models.builtin import publish_builtin_models
from joynet.storage import EmbeddedStore
from joynet.storage.cids import parse_cid
from helpers.edge_agents import (EdgeAgent, agent_environment, events_of, receipts_since, request_with_input, wait_for,
                                 wait_until_nodes_free)

run = asyncio.run
DIGITS, MINILM = "edge-digits", "edge-minilm"
DIGITS_PRICE, MINILM_PRICE = 5 * JOY, 9 * JOY
TEXTS = [
    "Edge nodes stake JOY and serve models.", "The quick brown fox jumps over the lazy dog.",
    "Zero-knowledge proofs bind outputs to inputs.", "A requester pays into escrow.", "Hello world",
    "Quorum results must agree bit for bit.", "IPFS addresses content by its hash.",
    "Anvil mines a block per transaction.", "Sentence embeddings map text to vectors.",
    "Slashing punishes silent nodes.", "The DAO governs every parameter.", "Fees are split three ways.",
    "A journal survives a crash.", "Decline bad input with a reason.", "Thirty requests settle.",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The store the requester publishes to and the agents read from (the 'IPFS network')."""
    return EmbeddedStore(tmp_path_factory.mktemp("edge-ipfs"))


@pytest.fixture(scope="module")
def edge_models(marketplace, model_owner, store):
    cids = run(publish_builtin_models(store))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    for name, cid, price in ((DIGITS, cids["digits"], DIGITS_PRICE), (MINILM, cids["minilm"], MINILM_PRICE)):
        metadata = json.loads(run(store.cat(cid)))
        verification = metadata["verification"]
        run(owner.register_model(name, f"ipfs://{cid}", price=price, weights_commitment=metadata["weightsCommitment"],
                                 quorum=verification["quorum"], circuit_id=verification["circuitId"]))
    return cids


@pytest.fixture(scope="module")
def agent_env(deployment, store, tmp_path_factory, chain):
    return agent_environment(deployment, chain, store.directory, tmp_path_factory.mktemp("edge-deployments"))


@pytest.fixture(scope="module")
def expected():
    """The local references: the quantized digits model, and sentence-transformers loaded
    straight from the wheel with the int8 quantization of the model's metadata."""
    from sentence_transformers import SentenceTransformer

    from joynet.inference.runtimes.sentence_embedding import embedding_commitment, quantize
    from joynet.models.builtin import minilm_source_dir
    from joynet.zk import QuantizedMLP, output_commitment, to_bytes32

    digits_model = QuantizedMLP.load()
    embedder = SentenceTransformer(str(minilm_source_dir()), device="cpu", local_files_only=True)

    def digits(pixels):
        inference = digits_model.forward(pixels)
        return to_bytes32(output_commitment(inference)), {"class": inference.label, "logits": list(inference.logits)}

    def minilm(text):
        q = quantize(embedder.encode([text], batch_size=32))
        return embedding_commitment(q), {"embedding": q[0].tolist()}

    return {DIGITS: digits, MINILM: minilm}


def test_edge_agents__three_processes__serve_decline_and_survive_sigkill(
        edge_models, agent_env, store, expected, marketplace, coordinator, token, requester, chain, tmp_path):
    from joynet.zk.digits import load_split

    start_block = chain.blocks.height
    workdir = tmp_path
    agents = [EdgeAgent.in_workdir(index, workdir, agent_env, [DIGITS, MINILM]) for index in (6, 7, 8)]
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, 10_000 * JOY, sender=requester)
    try:
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.wait_ready()
        addresses = {agent.index: accounts.test_accounts[agent.index].address for agent in agents}

        # ---- 30 paid requests across both models ----
        images = load_split()[1][:15]  # two of them 0s: a result of class 0 is bytes32(0), settled like any other
        sent = {}  # request id -> (model, input)
        for image, text in zip(images, TEXTS):
            pixels = [int(p) for p in image]
            rid = run(request_with_input(client, store, DIGITS, digits_input(pixels), zk=True))
            sent[rid] = (DIGITS, pixels)
            rid = run(request_with_input(client, store, MINILM, {"text": text}, zk=False))
            sent[rid] = (MINILM, text)
        wait_or_explain(lambda: all(client.status(rid) is not RequestStatus.Open for rid in sent), 300,
                        "the 30 requests to close", client, sent, agents)
        for rid, (model, value) in sent.items():
            result = run(client.get_result(rid))
            assert result.status is RequestStatus.Settled, (rid, model, result.refund_reason)
            commitment, output = expected[model](value)
            assert result.output_commitment == commitment, (rid, model)
            document = json.loads(run(store.cat(result.output_uri.removeprefix("ipfs://"))))
            assert document["output"] == output and document["requestId"] == rid
        assert {node for rid in sent for node in client.get_request(rid).nodes} == set(addresses.values())
        for rid, (model, _) in sent.items():  # the quorum committed before anyone revealed
            committed = events_of(marketplace, "ResultCommitted", start_block, requestId=rid)
            revealed = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
            assert len(committed) == (3 if model == MINILM else 0) and len(revealed) == (3 if model == MINILM else 1)
            assert max(e.block_number for e in committed or revealed) <= min(e.block_number for e in revealed)

        # Single-node requests were left unassigned by the client: each was assigned once, to the
        # node that answered it: by the drawn agent's result, or first by an agent when the
        # burst's quorum assignments had taken the drawn node's room (which comes first depends
        # on timing here; tests/unit/test_edge_journal.py covers each path deterministically).
        for rid in (rid for rid, (model, _) in sent.items() if model == DIGITS):
            (assignment,) = events_of(marketplace, "NodesAssigned", start_block, requestId=rid)
            (submitted,) = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
            assert list(assignment.nodes) == [submitted.node]

        # ---- a request its requester does not assign: an agent serving the model does ----
        uri, commitment = run(publish_input(store, {"text": TEXTS[1]}, zk=False))
        wait_until_nodes_free(client, MINILM)
        unassigned = run(client.request_inference(MINILM, commitment, uri, assign=False))
        wait_for(lambda: client.status(unassigned) is RequestStatus.Settled, 120, "the unassigned request to settle", 0.5)
        (assignment,) = events_of(marketplace, "NodesAssigned", start_block, requestId=unassigned)
        assert chain.get_receipt(assignment.transaction_hash).sender in addresses.values()
        assert run(client.get_result(unassigned)).output_commitment == expected[MINILM](TEXTS[1])[0]

        # ---- bad input: declined with a reason the requester reads, escrow back, agents keep serving ----
        balance_before = token.balanceOf(requester)
        bad = {}
        malformed = {"pixels": [17] * 64, "salt": "0x1"}
        bad[run(request_with_input(client, store, DIGITS, malformed, zk=False))] = "inputSchema"
        missing_cid = "ipfs://" + run(store.add_bytes(b'{"text":"never stored"}', only_hash=True))
        wait_until_nodes_free(client, DIGITS)
        bad[run(client.request_inference(DIGITS, b"\1" * 32, missing_cid))] = "cannot be fetched"
        wait_until_nodes_free(client, DIGITS)
        bad[run(client.request_inference(DIGITS, b"\1" * 32, "ipfs://not-a-cid"))] = "not a valid CID"
        tampered_uri, tampered_commitment = run(_publish_and_tamper(store, {"text": "a tampered block"}))
        wait_until_nodes_free(client, MINILM)
        bad[run(client.request_inference(MINILM, tampered_commitment, tampered_uri))] = "does not hash to its CID"
        oversized = {"texts": ["x" * 8000] * 10}
        bad[run(request_with_input(client, store, MINILM, oversized, zk=False))] = "the most this node accepts"
        lying = {"text": "the commitment names another document"}
        uri = run(_publish(store, lying))
        wait_until_nodes_free(client, MINILM)
        bad[run(client.request_inference(MINILM, b"\2" * 32, uri))] = "not to the request's inputCommitment"
        good_after = run(request_with_input(client, store, MINILM, {"text": TEXTS[0]}, zk=False))
        wait_for(lambda: all(client.status(rid) is not RequestStatus.Open for rid in [*bad, good_after]), 120,
                 "the bad requests to be declined", interval=0.5)
        for rid, words in bad.items():
            result = run(client.get_result(rid))
            assert result.status is RequestStatus.Refunded and words in result.refund_reason, (rid, result)
        assert run(client.get_result(good_after)).output_commitment == expected[MINILM](TEXTS[0])[0]
        assert token.balanceOf(requester) == balance_before - MINILM_PRICE  # only the good one was paid
        # Every assigned agent declined; the first decline closed the request, the others saw it closed.

        # ---- SIGKILL mid-task: the two others commit, reveal after the deadline and win by majority ----
        victim = agents[0]
        heavy = {"texts": [" ".join(TEXTS) * 2 for _ in range(48)]}
        killed_rid = run(request_with_input(client, store, MINILM, heavy, zk=False, deadline_seconds=120))
        wait_for(lambda: victim.job_state(killed_rid) == RUNNING, 60, "the victim to start the heavy job", 0.01)
        victim.signal(signal.SIGKILL)
        victim.process.wait(10)
        victim_address = addresses[victim.index]
        survivors = [agent for agent in agents if agent is not victim]
        stake_before = coordinator.nodeInfo(victim_address).stake
        wait_for(lambda: len(events_of(marketplace, "ResultCommitted", start_block, requestId=killed_rid)) == 2, 120,
                 "the two surviving agents to commit", interval=0.5)
        assert not events_of(marketplace, "ResultSubmitted", start_block, requestId=killed_rid)  # not before the deadline
        killed = client.get_request(killed_rid)
        chain.pending_timestamp = killed.deadline + 1  # the deadline passes: the reveals open
        chain.mine()
        wait_for(lambda: all(agent.job_state(killed_rid) == REVEALED for agent in survivors), 60,
                 "the two surviving agents to reveal", interval=0.5)
        paid_before = token.balanceOf(requester)
        chain.pending_timestamp = killed.deadline + marketplace.revealWindow() + 1
        receipt = marketplace.closeExpired(killed, sender=requester)
        assert client.status(killed_rid) is RequestStatus.Settled
        revealed = events_of(marketplace, "ResultSubmitted", start_block, requestId=killed_rid)
        assert {e.node for e in revealed} == {addresses[a.index] for a in survivors}
        assert {bytes(e.outputCommitment) for e in revealed} == {run(client.get_result(killed_rid)).output_commitment}
        (slashed,) = receipt.decode_logs(coordinator.NodeSlashed)
        assert slashed.node == victim_address and slashed.amount == coordinator.taskBond()
        assert slashed.beneficiaryShare == 0  # every slash to the treasury
        assert coordinator.nodeInfo(victim_address).stake == stake_before - coordinator.taskBond()
        (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
        assert settled.nodesPaid == MINILM_PRICE * marketplace.nodeShareBps() // 10_000 // 2 * 2
        assert token.balanceOf(requester) == paid_before  # settled: nothing comes back

        # ---- restarted, it resumes from its journal and submits nothing twice ----
        submitted_before = events_of(marketplace, "ResultSubmitted", start_block, node=victim_address)
        victim.start()
        victim.wait_ready()
        assert f"request {killed_rid}: closed by the chain; nothing to send" in victim.log()
        assert victim.job_state(killed_rid) == "closed"
        after = [run(request_with_input(client, store, MINILM, {"text": text}, zk=False)) for text in TEXTS[:2]]
        wait_for(lambda: all(client.status(rid) is RequestStatus.Settled for rid in after), 120, "settlement", 0.5)
        submissions = events_of(marketplace, "ResultSubmitted", start_block)
        pairs = [(event.requestId, event.node) for event in submissions]
        assert len(pairs) == len(set(pairs)), "a node submitted a result twice"
        victim_now = [event for event in submissions if event.node == victim_address]
        assert len(victim_now) == len(submitted_before) + len(after)

        # ---- SIGTERM drains the in-flight job before exiting ----
        # The signal must arrive while the proof runs; on a loaded machine the job may finish
        # between the journal's poll and the signal, and then there is nothing to drain: such a
        # round is run again (the job is still checked), up to three times.
        drained = False
        for attempt, pixels in enumerate(images[:3]):
            drains_before = {agent.index: agent.log().count("draining 1 in-flight job(s) before exit")
                             for agent in agents}
            rid = run(request_with_input(client, store, DIGITS, {"pixels": [int(p) for p in pixels], "salt": "0x7"},
                                         zk=True))
            # Left unassigned by the client: the drawn agent journals it and starts proving.
            wait_for(lambda: any(agent.job_state(rid) is not None for agent in agents), 60, "the drawn agent", 0.01)
            draining = next(agent for agent in agents if agent.job_state(rid) is not None)
            node = addresses[draining.index]
            drains_before = drains_before[draining.index]
            draining.signal(signal.SIGTERM)
            assert draining.process.wait(60) == 0
            wait_for(lambda: client.status(rid) is RequestStatus.Settled, 60, "settlement", 0.5)
            assert draining.job_state(rid) == SUBMITTED  # drained or already done: never lost
            drained = draining.log().count("draining 1 in-flight job(s) before exit") > drains_before
            if drained:
                break
            draining.start()
            draining.wait_ready()
        assert drained, "SIGTERM never arrived while a job was in flight"

        # ---- status: stake, load, jobs, fees ----
        status_run = draining.status()
        assert status_run.returncode == 0, status_run.stderr
        status = json.loads(status_run.stdout)
        assert status["node"] == node and status["registered"] and status["stake"] >= coordinator.minStake()
        assert status["active_tasks"] == 0 and set(status["models"]) == {DIGITS, MINILM}
        assert {"joynet-int-mlp", "sentence-transformers"} <= set(status["runtimes"])
        assert status["jobs"]["submitted"] >= 1 and status["fees_withdrawn"] > 0
        assert status["fees_unwithdrawn"] == 0  # collected on shutdown
        assert not status["lease_running"] and status["lease_end"] <= status["head"]  # ended by the drain

        # ---- the agents checked before sending: what reverted lost a race, and rarely ----
        senders = {a.lower() for a in addresses.values()}
        sent_by_agents = [receipt for receipt in receipts_since(chain, start_block) if receipt["from"].lower() in senders]
        lost = [revert_error(chain, receipt["transactionHash"], marketplace, coordinator)
                for receipt in sent_by_agents if int(receipt["status"], 16) == 0]
        assert set(lost) <= RACE_LOSSES, lost
        assert len(lost) * 50 <= len(sent_by_agents), f"{len(lost)} of {len(sent_by_agents)} transactions reverted"
    finally:
        for agent in agents:
            agent.stop(60)


# Errors a transaction that passed its dry run meets when another account's transaction lands
# between the dry run and its own: a drawn result whose node lost its room to an assignment, an
# assignment that another node made first, a request that another transaction closed (settled or
# expired) first.
RACE_LOSSES = {"NodeCoordinatorNoEligibleNode", "ModelMarketplaceRequestMismatch", "ModelMarketplaceNotAssigned",
               "ModelMarketplaceRequestClosed"}


def revert_error(chain, tx_hash, *contracts) -> str:
    """The custom error a mined transaction reverted with (from its call trace), by name."""
    trace = chain.provider.make_request("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    selector = bytes.fromhex(trace.get("output", "0x")[2:10])
    names = {keccak(text=abi.selector)[:4]: abi.name for c in contracts for abi in c.contract_type.errors}
    return names.get(selector, f"undecoded {trace.get('output')!r}")


def wait_or_explain(predicate, timeout, what, client, request_ids, agents):
    """wait_for, but a timeout names the requests still open (assigned to whom, committed,
    revealed) and shows the end of each agent's log."""
    try:
        wait_for(predicate, timeout, what, interval=0.5)
    except AssertionError as error:
        open_ones = [rid for rid in request_ids if client.status(rid) is RequestStatus.Open]
        lines = [str(error)]
        for rid in open_ones:
            request = client.get_request(rid)
            mask = client.contract.submittedMask(rid)
            lines.append(f"request {rid}: nodes {request.nodes}, mask {mask:#x}")
        for agent in agents:
            lines.append(f"--- agent {agent.index}:\n" + "\n".join(agent.log(whole=True).splitlines()[-40:]))
        raise AssertionError("\n".join(lines)) from None


async def _publish(store, document) -> str:
    """An input document published without computing its commitment (the request names another)."""
    return "ipfs://" + await store.add_bytes(encode_document(document))


async def _publish_and_tamper(store, document):
    data = encode_document(document)
    cid = await store.add_bytes(data)
    path = store.block_path(parse_cid(cid))
    path.write_bytes(path.read_bytes().replace(b"tampered", b"TAMPERED"))
    return "ipfs://" + cid, document_commitment(data)


def test_edge_agent__sigterm_with_its_result_unmined__exits_within_the_drain_and_the_restart_lands_it(
        edge_models, agent_env, store, marketplace, requester, chain, tmp_path):
    # SIGTERM while the chain does not mine and the agent's result is out: the agent exits within
    # its drain time (it used to hang on the receipt), journals the job as computed, not failed;
    # the pool then loses the transaction, and the restarted agent sends the result again, once.
    drain_seconds = 5
    agent = EdgeAgent.in_workdir(6, tmp_path, agent_env, [DIGITS])
    agent.args += ["--drain-seconds", str(drain_seconds)]
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    start = chain.blocks.height
    agent.start()
    try:
        agent.wait_ready(240)
        request_id = run(request_with_input(client, store, DIGITS, digits_input([3] * 64), zk=True))
        chain.provider.make_request("evm_setAutomine", [False])
        try:
            wait_for(lambda: agent.job_state(request_id) == COMPUTED, 60, "the result computed")
            pending = lambda: int(chain.provider.make_request("txpool_status", [])["pending"], 16)  # noqa: E731
            wait_for(lambda: pending() > 0, 30, "the result sent")
            signalled = time.monotonic()
            agent.signal(signal.SIGTERM)
            wait_for(lambda: not agent.running(), drain_seconds + 30, "the agent to exit")
            exited_after = time.monotonic() - signalled
            assert agent.process.returncode == 0
            assert exited_after < drain_seconds + 10
            assert agent.job_state(request_id) == COMPUTED
            chain.provider.make_request("anvil_dropAllTransactions", [])
        finally:
            chain.provider.make_request("evm_setAutomine", [True])
            chain.provider.make_request("evm_mine", [])
        assert client.status(request_id) is RequestStatus.Open
        agent.start()
        agent.wait_ready(240)
        wait_for(lambda: client.status(request_id) is RequestStatus.Settled, 60, "the request settled")
        wait_for(lambda: agent.job_state(request_id) == SUBMITTED, 30, "the job journaled submitted")
        assert len(events_of(marketplace, "ResultSubmitted", start, requestId=request_id)) == 1
    finally:
        agent.stop()
