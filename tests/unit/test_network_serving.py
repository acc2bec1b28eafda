"""A model owner's open channel served by the network: every party derives the same assignment of
each request from the channel alone (by load, ties by the head the request follows), a node that
stops serving is failed over and then passed over, and bridgers credit the assigned node's answer,
else the first. The attacks: a requester grinding its payload to pick its node, a node answering
out of turn, a subscriber posting junk answers, a key the chain does not bind answering."""

import asyncio
import time
from collections import Counter

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from joynet import IOTAInferenceHandler
from joynet.channels import ChannelReader, SQLiteLedger
from joynet.chain.constants import ZERO32
from joynet.feeless.assignment import AssignmentBook
from joynet.feeless.bridger import build_checkpoint
from joynet.feeless.claims import NODE_KEY, Bindings, ChannelClaim

CHAIN_ID, VALIDATOR = 31337, to_checksum_address("0x" + "11" * 20)
MODEL_ID = b"\x07" * 32
NODES = [to_checksum_address("0x" + f"{i:02x}" * 20) for i in (0xA1, 0xB2, 0xC3)]


def seed(index: int) -> str:
    return Mnemonic("english").to_mnemonic(bytes([index]) * 16)


@pytest.fixture
def ledger(tmp_path):
    ledger = SQLiteLedger(tmp_path / "channels.sqlite3")
    yield ledger
    ledger.close()


class Network:
    """An owner's open channel, three nodes bound on "chain" (a table) that vouched on the stream,
    two requesters and an outsider (subscribed, never bound)."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.owner = IOTAInferenceHandler(wallet_seed=seed(1), transport=ledger)
        self.nodes = [IOTAInferenceHandler(wallet_seed=seed(10 + i), transport=ledger) for i in range(3)]
        self.requesters = [IOTAInferenceHandler(wallet_seed=seed(20 + i), transport=ledger) for i in range(2)]
        self.outsider = IOTAInferenceHandler(wallet_seed=seed(30), transport=ledger)
        self.bound = {node: handler.identity.public_key for node, handler in zip(NODES, self.nodes, strict=True)}
        self.channel_id = ""

    async def open(self):
        self.channel_id = await self.owner.create_model_channel("served", private=False, open=True)
        for handler in [*self.nodes, *self.requesters, self.outsider]:
            await handler.subscribe(self.channel_id)
        for node, handler in zip(NODES, self.nodes, strict=True):
            await handler.post_claim(self.channel_id, ChannelClaim(NODE_KEY, MODEL_ID, node, CHAIN_ID, VALIDATOR))
        return self

    def bindings(self):
        return Bindings(MODEL_ID, CHAIN_ID, VALIDATOR, self.bound.get)

    def book(self):
        book = AssignmentBook(self.bindings())
        for message in ChannelReader(self.ledger, bytes.fromhex(self.channel_id[2:])).sync():
            book.observe(message)
        return book

    async def request(self, payload, requester=0):
        return await self.requesters[requester].send_request(self.channel_id, "served", payload)

    async def answer(self, request_id, node_index, served=True, as_node=None):
        handler = self.nodes[node_index] if node_index is not None else self.outsider
        node = as_node or NODES[node_index]
        error = None if served else "declined"
        await handler.send_response(self.channel_id, request_id, None if error else {"y": 1}, node=node, error=error)

    def checkpoint(self):
        stream = bytes.fromhex(self.channel_id[2:])
        return build_checkpoint(self.ledger, stream, 0, ZERO32, has_checkpoint=False, bindings=self.bindings())


def run(coroutine):
    return asyncio.run(coroutine)


def network(ledger):
    return run(Network(ledger).open())


def counted(checkpoint):
    return dict((entry.node, entry.count) for entry in checkpoint.usage) if checkpoint else {}


def test_assignment__every_request_answered_by_its_assignee__load_spread_over_all_nodes(ledger):
    net = network(ledger)

    async def traffic():
        for i in range(12):
            request_id = await net.request({"x": i})
            assignee = net.book().order(request_id)[0]
            await net.answer(request_id, NODES.index(assignee))

    run(traffic())
    book = net.book()
    assignees = Counter(assignment.assignee for assignment in book.requests.values())
    assert set(assignees) == set(NODES)  # ties broken by the head: every node gets work
    assert all(assignment.order and len(assignment.order) == 3 for assignment in book.requests.values())
    assert counted(net.checkpoint()) == dict(assignees)


def test_assignment__two_parties_reading_the_channel__same_order_for_every_request(ledger):
    net = network(ledger)

    async def traffic():
        for i in range(6):
            await net.request({"x": i}, requester=i % 2)

    run(traffic())
    first, second = net.book(), net.book()
    assert [a.order for a in first.requests.values()] == [a.order for a in second.requests.values()]


def test_assignment__open_requests__next_request_goes_to_a_node_without_load(ledger):
    net = network(ledger)

    async def traffic():
        return [await net.request({"x": i}) for i in range(3)]

    requests = run(traffic())
    book = net.book()
    # nobody answered: each of the three requests went to a different node (load 0 first)
    assert sorted(book.order(request_id)[0] for request_id in requests) == sorted(NODES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.dictionaries(st.text(max_size=5), st.integers()), min_size=2, max_size=6))
def test_assignment__requester_grinding_its_payload__cannot_choose_the_node(tmp_path_factory, payloads):
    """Whatever a requester puts in its request, a request following a given head gets one order."""
    orders = set()
    for payload in payloads:
        ledger = SQLiteLedger(tmp_path_factory.mktemp("grind") / "channels.sqlite3")
        net = network(ledger)
        request_id = run(net.request(payload))
        orders.add(net.book().order(request_id))
        ledger.close()
    assert len(orders) == 1


def test_assignment__node_that_stopped__failed_over_then_passed_over(ledger):
    net = network(ledger)
    stopped = None

    async def traffic():
        nonlocal stopped
        first = await net.request({"x": 0})
        order = net.book().order(first)
        stopped = order[0]
        await net.answer(first, NODES.index(order[1]))  # failover: the next node answers
        later = []
        for i in range(1, 8):
            request_id = await net.request({"x": i})
            later.append(request_id)
            await net.answer(request_id, NODES.index(net.book().order(request_id)[0]))
        return later

    later = run(traffic())
    book = net.book()
    assert stopped not in {book.order(request_id)[0] for request_id in later[:4]}
    usage = counted(net.checkpoint())
    assert stopped not in usage and sum(usage.values()) == 8


@pytest.mark.parametrize(
    "answers, credited_rank",
    [
        pytest.param([(1, True), (0, True)], 0, id="out-of-turn answer before the assignee: the assignee"),
        pytest.param([(2, True), (1, True)], 2, id="assignee silent: the first other answer, once"),
        pytest.param([(0, False), (1, True)], None, id="assignee declined: nobody"),
    ],
)
def test_credit__answers_in_this_order__the_assignment_rule_credits(ledger, answers, credited_rank):
    net = network(ledger)

    async def traffic():
        request_id = await net.request({"x": 0})
        order = net.book().order(request_id)
        for rank, served in answers:
            await net.answer(request_id, NODES.index(order[rank]), served=served)
        return order

    order = run(traffic())
    assert counted(net.checkpoint()) == ({} if credited_rank is None else {order[credited_rank]: 1})


def test_answers__junk_from_an_unbound_subscriber_or_a_key_naming_another_node__neither_answer_nor_credit(ledger):
    net = network(ledger)

    async def traffic():
        request_id = await net.request({"x": 0})
        assignee = net.book().order(request_id)[0]
        await net.answer(request_id, None, as_node=assignee)  # the outsider names the assignee
        other = next(index for index, node in enumerate(NODES) if node != assignee)
        await net.answer(request_id, other, as_node=assignee)  # a bound key naming another node
        return request_id

    request_id = run(traffic())
    assert not net.book().requests[request_id].answered  # the assignee still owes it; failover still runs
    assert net.checkpoint() is None


def test_assignment__node_unbound_on_chain__never_assigned(ledger):
    net = network(ledger)
    gone = NODES[1]
    del net.bound[gone]
    request_id = run(net.request({"x": 0}))
    assert set(net.book().order(request_id)) == set(NODES) - {gone}


# ---- real nodes: the digits model (Groth16) served by the network, one node stopped ----


@pytest.fixture(scope="module")
def digits_package(tmp_path_factory):
    from joynet.models.builtin import write_digits_package
    from joynet.models.package import publish_model
    from joynet.storage import EmbeddedStore
    from joynet.zk.digits import load_split

    store = EmbeddedStore(tmp_path_factory.mktemp("ipfs"))
    cid = run(publish_model(store, write_digits_package(tmp_path_factory.mktemp("pkg") / "digits")))
    _, pixels, _, _ = load_split()
    return store, cid, [{"pixels": row, "salt": "1234567"} for row in pixels.tolist()[:4]]


def test_serve__assigned_node_stopped__next_node_answers_after_the_failover_time_and_is_credited(
    digits_package, tmp_path, monkeypatch
):
    from joynet import InferenceNode
    from joynet.feeless.requester import request_over_channel
    from joynet.models.package import ModelPackage
    import json
    import time

    store, cid, inputs = digits_package
    ledger_path = tmp_path / "channels.sqlite3"
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(ledger_path))
    ledger = SQLiteLedger(ledger_path)
    net = network(ledger)
    failover = 2.5  # above a digits proof's time on two cores, so one fallback answers

    async def scenario():
        # node 0 is bound and vouched on the stream, but its process is gone; nodes 1 and 2 serve
        serving = [
            InferenceNode(store=store, cache_dir=tmp_path / f"node{i}", iota_wallet_seed=seed(10 + i)) for i in (1, 2)
        ]
        stop = asyncio.Event()
        loops = [
            asyncio.create_task(
                node.serve_iota(
                    net.channel_id, cid, node_address=NODES[i], book=AssignmentBook(net.bindings()),
                    failover_seconds=failover, stop=stop,
                )
            )
            for node, i in zip(serving, (1, 2), strict=True)
        ]
        requester = InferenceNode(store=store, cache_dir=tmp_path / "requester", iota_wallet_seed=seed(20))
        package = ModelPackage(cid=cid, metadata=json.loads(await store.cat(cid)), files={})
        answers = []
        for value in inputs:
            started = time.monotonic()
            answer = await request_over_channel(
                net.requesters[0], package, net.channel_id, cid, value, timeout=60,
                verify_pairing=requester._verify_pairing, bindings=net.bindings(),
            )
            answers.append((answer, time.monotonic() - started))
        stop.set()
        served = await asyncio.gather(*loops)
        for node in [*serving, requester]:
            await node.close()
        return answers, served

    answers, served = run(scenario())
    book = net.book()
    # a fallback whose turn came before an earlier fallback's answer (a cold model load) answers
    # too: the requester takes the first that checks out, the bridgers credit one
    assert all(answer.proof_verified for answer, _ in answers) and sum(served) >= len(inputs)
    stopped = [
        (answer, seconds) for answer, seconds in answers if book.requests[answer.request_id].assignee == NODES[0]
    ]
    assert stopped, "the stopped node was never assigned: the scenario shows no failover"
    for answer, seconds in stopped:
        credited = book.requests[answer.request_id].credited()
        assert credited.node == book.order(answer.request_id)[1] and seconds >= failover
    usage = counted(net.checkpoint())
    assert NODES[0] not in usage and sum(usage.values()) == len(inputs)


def test_credit__assignee_answers_with_the_proof_of_another_request__bridgers_credit_the_next_checked_answer(
    digits_package, tmp_path
):
    """A lazy assigned node copies an earlier answer (output and proof) instead of running the model:
    without the check it would be paid; the bridgers' check refuses it and credits the honest node."""
    from joynet import InferenceNode
    from joynet.feeless.checks import answer_check
    from joynet.feeless.handler import circuit_request_id, proof_document
    from joynet.models.package import ModelPackage
    from joynet.zk import ZKProver
    import json

    store, cid, inputs = digits_package
    net = network(SQLiteLedger(tmp_path / "channels.sqlite3"))
    honest = InferenceNode(store=store, cache_dir=tmp_path / "honest")

    async def answer_honestly(request_id, node):
        result = await honest.execute_inference(cid, inputs[0 if request_id == first else 1],
                                                request_id=circuit_request_id(request_id), node=node)
        output = {**result.output, "outputCommitment": result.output_commitment_hex}
        return output, proof_document(result.proof)

    async def traffic():
        nonlocal first
        first = await net.requesters[0].send_request(net.channel_id, cid, inputs[0])
        assignee = net.book().order(first)[0]
        output, proof = await answer_honestly(first, assignee)
        await net.nodes[NODES.index(assignee)].send_response(net.channel_id, first, output, proof, node=assignee)
        second = await net.requesters[0].send_request(net.channel_id, cid, inputs[1])
        lazy, fallback, _ = net.book().order(second)
        # the lazy node sends the first answer again (its proof binds the first request and input)
        await net.nodes[NODES.index(lazy)].send_response(net.channel_id, second, output, proof, node=lazy)
        output, proof = await answer_honestly(second, fallback)
        await net.nodes[NODES.index(fallback)].send_response(net.channel_id, second, output, proof, node=fallback)
        await honest.close()
        return assignee, lazy, fallback

    first = None
    first_node, lazy, fallback = run(traffic())
    package = ModelPackage(cid=cid, metadata=json.loads(run(store.cat(cid))), files={})
    stream = bytes.fromhex(net.channel_id[2:])
    unchecked = counted(net.checkpoint())
    with ZKProver() as prover:
        check = answer_check(package, prover.verify)
        checked = build_checkpoint(net.ledger, stream, 0, ZERO32, has_checkpoint=False, bindings=net.bindings(),
                                   check=check)
    expected_unchecked, expected_checked = Counter([first_node, lazy]), Counter([first_node, fallback])
    assert unchecked == dict(expected_unchecked)  # the copy would be paid without the check
    assert counted(checked) == dict(expected_checked)


@pytest.mark.parametrize("junk", [{}, "junk", {"pi_a": ["x"]}, {"pi_a": ["1", "2"], "pi_b": [], "pi_c": None}])
def test_credit__assignee_answers_with_a_malformed_proof__checks_refuse_it_and_credit_the_next_answer(
    digits_package, tmp_path, junk
):
    """The assigned node answers with the right public signals and a proof snarkjs cannot even
    read: the bridgers' check must refuse it as any proof that does not verify (not stop on it,
    which would leave every node of the channel unpaid) and credit the node after it; a
    requester sets it aside the same way."""
    from joynet import InferenceNode
    from joynet.feeless.checks import answer_check
    from joynet.feeless.handler import circuit_request_id, proof_document
    from joynet.models.package import ModelPackage
    from joynet.zk import ZKProver
    import json

    store, cid, inputs = digits_package
    net = network(SQLiteLedger(tmp_path / "channels.sqlite3"))
    honest = InferenceNode(store=store, cache_dir=tmp_path / "honest")

    async def answer_honestly(request_id, node):
        result = await honest.execute_inference(cid, inputs[0], request_id=circuit_request_id(request_id), node=node)
        output = {**result.output, "outputCommitment": result.output_commitment_hex}
        return output, proof_document(result.proof)

    async def traffic():
        request = await net.requesters[0].send_request(net.channel_id, cid, inputs[0])
        assignee, fallback, _ = net.book().order(request)
        output, proof = await answer_honestly(request, assignee)
        await net.nodes[NODES.index(assignee)].send_response(
            net.channel_id, request, output, {**proof, "proof": junk}, node=assignee)
        output, proof = await answer_honestly(request, fallback)
        await net.nodes[NODES.index(fallback)].send_response(net.channel_id, request, output, proof, node=fallback)
        await honest.close()
        return assignee, fallback

    assignee, fallback = run(traffic())
    package = ModelPackage(cid=cid, metadata=json.loads(run(store.cat(cid))), files={})
    stream = bytes.fromhex(net.channel_id[2:])
    with ZKProver(backend="snarkjs") as prover:
        assert prover.verify([1, 2, 3], junk) is False
        checked = build_checkpoint(net.ledger, stream, 0, ZERO32, has_checkpoint=False, bindings=net.bindings(),
                                   check=answer_check(package, prover.verify))
    assert counted(checked) == {fallback: 1}


def test_cap__requester_beyond_the_models_cap__declined_by_its_node_and_a_rogue_answer_never_credited(
    tmp_path, monkeypatch
):
    """serving.maxRequestsPerRequester = 2: the third request of one key is declined (access
    denied) by the node serving it; a node that serves it anyway is not credited by the bridgers'
    check, while another requester is still served."""
    import json

    import yaml

    from joynet import InferenceNode
    from joynet.feeless.checks import answer_check
    from joynet.feeless.errors import AccessDeniedError
    from joynet.feeless.handler import circuit_request_id, proof_document
    from joynet.feeless.requester import request_over_channel
    from joynet.models.builtin import write_digits_package
    from joynet.models.package import ModelPackage, publish_model
    from joynet.storage import EmbeddedStore
    from joynet.zk import ZKProver
    from joynet.zk.digits import load_split

    store = EmbeddedStore(tmp_path / "ipfs")
    directory = write_digits_package(tmp_path / "pkg")
    description = yaml.safe_load((directory / "model.yaml").read_text())
    description["serving"] = {"maxRequestsPerRequester": 2, "failoverSeconds": 30}
    (directory / "model.yaml").write_text(yaml.safe_dump(description))
    cid = run(publish_model(store, directory))
    package = ModelPackage(cid=cid, metadata=json.loads(run(store.cat(cid))), files={})
    assert package.max_requests_per_requester == 2
    pixels = load_split()[1].tolist()
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))  # the node's own handler's
    net = network(SQLiteLedger(tmp_path / "channels.sqlite3"))
    del net.bound[NODES[1]], net.bound[NODES[2]]  # one serving node: every request is its own

    async def scenario():
        node = InferenceNode(store=store, cache_dir=tmp_path / "node", iota_wallet_seed=seed(10))
        stop = asyncio.Event()
        loop = asyncio.create_task(node.serve_iota(
            net.channel_id, cid, node_address=NODES[0], book=AssignmentBook(net.bindings()), stop=stop,
            failover_seconds=package.failover_seconds, requester_cap=package.max_requests_per_requester))
        with ZKProver() as prover:
            async def verify(signals, proof):
                return prover.verify(signals, proof)

            async def ask(requester, i):
                return await request_over_channel(
                    net.requesters[requester], package, net.channel_id, cid, {"pixels": pixels[i], "salt": str(i)},
                    timeout=60, verify_pairing=verify, bindings=net.bindings())

            served = [await ask(0, 0), await ask(0, 1)]
            with pytest.raises(AccessDeniedError, match="used up its 2 request"):
                await ask(0, 2)
            served.append(await ask(1, 3))
        # the node serves the third request anyway, with a valid proof: the bridgers do not pay it
        third = [a for a in net.book().requests.values() if a.requester_count == 3][0]
        result = await node.execute_inference(cid, {"pixels": pixels[2], "salt": "2"},
                                              request_id=circuit_request_id(third.request_id), node=NODES[0])
        await net.nodes[0].send_response(net.channel_id, third.request_id,
                                         {**result.output, "outputCommitment": result.output_commitment_hex},
                                         proof_document(result.proof), node=NODES[0])
        stop.set()
        await loop
        await node.close()
        return served

    served = run(scenario())
    assert all(answer.proof_verified for answer in served)
    stream = bytes.fromhex(net.channel_id[2:])
    with ZKProver() as prover:
        checked = build_checkpoint(net.ledger, stream, 0, ZERO32, has_checkpoint=False, bindings=net.bindings(),
                                   check=answer_check(package, prover.verify))
    assert counted(checked) == {NODES[0]: 3}  # two of the first requester's, one of the second's


def test_requester__no_node_serves_yet__waits_for_a_bound_node_before_it_posts(ledger):
    # A request is assigned among the nodes serving when it arrives: one posted before any serves
    # (a model just registered, its agents still starting) would never be answered.
    from joynet.feeless.requester import wait_for_serving_node

    owner = IOTAInferenceHandler(wallet_seed=seed(1), transport=ledger)
    node, outsider = (IOTAInferenceHandler(wallet_seed=seed(s), transport=ledger) for s in (10, 30))
    requester = IOTAInferenceHandler(wallet_seed=seed(20), transport=ledger)
    bindings = Bindings(MODEL_ID, CHAIN_ID, VALIDATOR, {NODES[0]: node.identity.public_key}.get)

    async def scenario():
        channel_id = await owner.create_model_channel("served")  # the owner's channel: open by default
        for handler in (node, outsider, requester):
            await handler.subscribe(channel_id)
        assert requester.is_open(channel_id) and not requester.is_author(channel_id)
        assert IOTAInferenceHandler(wallet_seed=seed(1), transport=ledger).is_author(channel_id)  # the owner, again
        # a key the chain does not bind, vouching for the bound node, serves nothing
        await outsider.post_claim(channel_id, ChannelClaim(NODE_KEY, MODEL_ID, NODES[0], CHAIN_ID, VALIDATOR))
        with pytest.raises(TimeoutError, match="no node serves channel"):
            await wait_for_serving_node(requester, channel_id, bindings, time.monotonic() + 0.5)

        async def vouch_later():
            await asyncio.sleep(0.5)
            await node.post_claim(channel_id, ChannelClaim(NODE_KEY, MODEL_ID, NODES[0], CHAIN_ID, VALIDATOR))

        started = time.monotonic()
        await asyncio.gather(
            wait_for_serving_node(requester, channel_id, bindings, started + 10), vouch_later())
        return time.monotonic() - started

    assert 0.5 <= run(scenario()) < 5
