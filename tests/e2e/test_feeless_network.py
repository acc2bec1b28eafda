"""A feeless model served by the network, end to end on Anvil: the model owner announces an open
channel and links it; three `ape run edge_agent --model <feeless model>` processes stake, bind their
channel keys and vouch on the stream; 30 requests (14 over pubsub) from a requester with no EVM
account are all answered and verified (Groth16, snarkjs), each by the node the channel assigns;
SIGKILL of the node assigned to a request in flight: the next node answers it after the model's
failover time; two `ape run iota_bridger` checkpoint the stream, paying each node from the
owner's budget for what the channel credits it; JOY is conserved. Over both transports: the
embedded ledger (one machine), and IPFS pubsub with each party on its own daemon (five js-ipfs
peers: the requester and owner, each agent, the bridgers), the transport between machines."""

import asyncio
import json
import os
import signal
import time

import pytest
import yaml
from ape import accounts

from helpers.bridgers import run_bridgers
from helpers.edge_agents import EdgeAgent, wait_for
from helpers.ipfs_daemon import running_ipfs_peers
from joynet import InferenceNode, ModelMarketplace
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key, registration_commitment
from joynet.channels import ChannelReader, open_transport
from joynet.feeless.assignment import AssignmentBook
from joynet.feeless.claims import STREAM_LINK, Bindings, ChannelClaim
from joynet.feeless.handler import IOTAInferenceHandler
from joynet.models.builtin import write_digits_package
from joynet.models.package import load_model_package, publish_model
from joynet.storage import EmbeddedStore
from joynet.zk.digits import load_split


OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
MODEL = "network-digits"
BUDGET, RATE = 100 * JOY, JOY
FAILOVER = 3.0
AGENT_ACCOUNTS = (1, 2, 3)  # not the bridgers' (7, 8, 9): each process sends from its own account
# (requests before the one whose node is killed, all of them): each position of a channel over
# pubsub settles in a second, so the daemons' run is shorter; both keep every node busy before
# and after the kill.
REQUESTS = {"ledger": (19, 30), "ipfs-pubsub": (10, 14)}


@pytest.fixture(params=["ledger", "ipfs-pubsub"])
def channel_apis(request, tmp_path):
    """None: every party on the embedded ledger; else the Kubo RPC API of each party's daemon:
    the test (owner, requester), the three agents, the bridgers."""
    if request.param == "ledger":
        yield None
        return
    with running_ipfs_peers(tmp_path / "daemons", 5) as apis:
        yield {"test": apis[0], "agents": apis[1:4], "bridgers": apis[4]}


@pytest.fixture
def network_env(tmp_path, monkeypatch, deployment, chain, channel_apis):
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))
    monkeypatch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    monkeypatch.setenv("JOYNET_IPFS_DIR", str(tmp_path / "ipfs"))
    if channel_apis:
        monkeypatch.setenv("JOYNET_CHANNEL_API", channel_apis["test"])
    deployment.save(tmp_path / "deployments" / f"{chain.provider.network.name}.json")
    return {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri}


def party_env(env, channel_apis, party, index=0):
    """``env`` with the channel API of ``party`` (its own daemon), when on pubsub."""
    if not channel_apis:
        return env
    api = channel_apis[party][index] if party == "agents" else channel_apis[party]
    return {**env, "JOYNET_CHANNEL_API": api}


def publish_with_failover(store, directory):
    package = write_digits_package(directory)
    description = package / "model.yaml"
    document = yaml.safe_load(description.read_text())
    document["serving"] = {"failoverSeconds": FAILOVER}
    description.write_text(yaml.safe_dump(document))
    return asyncio.run(publish_model(store, package))


def test_feeless_network__three_edge_agents_one_killed__every_request_answered_and_each_node_paid(
    network_env, channel_apis, tmp_path, chain, deployment, marketplace, token, model_owner,
):
    bridge = deployment.contract("IOTAValidator")
    store = EmbeddedStore(tmp_path / "ipfs")
    cid = publish_with_failover(store, tmp_path / "pkg")
    package = asyncio.run(load_model_package(store, cid, tmp_path / "cache"))
    key = model_key(MODEL)

    # The owner announces the model's open channel, registers the price-0 model with it as stream,
    # consents on the stream to carry it, asks the bridgers to link it and funds its budget.
    owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_SEED)
    channel_id = asyncio.run(owner_channel.create_model_channel(MODEL, private=False, open=True))
    stream = bytes.fromhex(channel_id[2:])
    salt = model_key(f"salt:{MODEL}")
    marketplace.commitModelRegistration(registration_commitment(key, model_owner.address, salt), sender=model_owner)
    circuit = bytes.fromhex(package.verification["circuitId"][2:])
    marketplace.registerModel(key, f"ipfs://{cid}", bytes.fromhex(package.weights_commitment[2:]), 0,
                              (1, circuit, 0, False), stream, salt, sender=model_owner)
    consent = ChannelClaim(STREAM_LINK, key, model_owner.address, chain.chain_id, bridge.address)
    asyncio.run(owner_channel.post_claim(channel_id, consent))
    bridge.requestStreamLink(stream, key, sender=model_owner)
    token.approve(bridge, BUDGET, sender=model_owner)
    bridge.fundBudget(key, BUDGET, sender=model_owner)
    bridge.setFeelessRate(key, RATE, sender=model_owner)

    agents = [EdgeAgent.in_workdir(index, tmp_path, party_env(network_env, channel_apis, "agents", i), [MODEL])
              for i, index in enumerate(AGENT_ACCOUNTS)]
    addresses = {agent.index: accounts.test_accounts[agent.index].address for agent in agents}
    bindings = Bindings.registered(ModelMarketplace(contract_address=marketplace.address), MODEL)

    ledger = open_transport()  # the test's view of the channel (its own replica on pubsub)

    def book():
        book = AssignmentBook(bindings)
        for message in ChannelReader(ledger, stream).sync():
            book.observe(message)
        return book

    try:
        for agent in agents:  # operators join one after another
            agent.start()
            agent.wait_ready()
        try:
            wait_for(lambda: len(book().serving) == 3, 60, "the three nodes vouching on the stream")
        except AssertionError:
            messages = ChannelReader(ledger, stream).sync()
            raise AssertionError(f"serving {book().serving}; the channel as seen here: "
                                 f"{[(m.sequence, m.type.name, m.public[:60]) for m in messages]}") from None
        for agent in agents:
            assert "serving feeless network-digits" in agent.log(), agent.log()

        # A requester with no EVM account: it reads the chain, posts on the channel, checks the answers.
        client = ModelMarketplace(contract_address=marketplace.address)
        requesting = InferenceNode(store=store, cache_dir=tmp_path / "requester", marketplace=client,
                                   iota_wallet_seed=REQUESTER_SEED)
        _, pixels, _, _ = load_split()
        before_kill, total = REQUESTS["ledger" if channel_apis is None else "ipfs-pubsub"]
        inputs = [{"pixels": row, "salt": str(7000 + i)} for i, row in enumerate(pixels.tolist()[:total])]

        async def requests(values):
            return await asyncio.gather(*[requesting.execute_inference(MODEL, value, use_iota=True, timeout=90)
                                          for value in values])

        results = asyncio.run(requests(inputs[:1]))
        for start in range(1, before_kill, 3):
            results += asyncio.run(requests(inputs[start:start + 3]))

        # SIGKILL of the node assigned to a request in flight: the next in line answers it.
        async def killed_in_flight(value):
            before = set(book().requests)
            task = asyncio.create_task(requesting.execute_inference(MODEL, value, use_iota=True, timeout=90))
            started = time.monotonic()
            while not (set(book().requests) - before):
                await asyncio.sleep(0.01)
            (request_id,) = set(book().requests) - before
            assignee = book().order(request_id)[0]
            victim = next(agent for agent in agents if addresses[agent.index] == assignee)
            victim.signal(signal.SIGKILL)
            result = await task
            return request_id, victim, result, time.monotonic() - started

        request_id, victim, result, seconds = asyncio.run(killed_in_flight(inputs[before_kill]))
        results.append(result)
        answered_by = book().requests[request_id].credited()
        assert answered_by is not None and answered_by.node != addresses[victim.index]
        assert answered_by.node == book().order(request_id)[1]
        assert FAILOVER <= seconds <= FAILOVER + 30, seconds
        victim.process.wait(timeout=10)

        for start in range(before_kill + 1, total, 3):
            results += asyncio.run(requests(inputs[start:start + 3]))
        asyncio.run(requesting.close())
        assert len(results) == total and all(result.proof_verified for result in results)

        # The bridgers link the owner's stream and checkpoint it: each node is paid for what the
        # channel credits it, from the owner's budget.
        final = book()
        credited = {}
        for assignment in final.requests.values():
            answer = assignment.credited()
            assert answer is not None, assignment
            credited[answer.node] = credited.get(answer.node, 0) + 1
        assert sum(credited.values()) == total and len(credited) == 3
        joy_before = token.balanceOf(bridge)
        run_bridgers(party_env(network_env, channel_apis, "bridgers"), [7, 8])
        assert bridge.streamOf(stream).modelId == key
        cut = RATE * marketplace.protocolShareBps() // 10_000
        for node, count in credited.items():
            assert bridge.earningsOf(key, node) == count * (RATE - cut), node
        assert bridge.budgetOf(key).balance == BUDGET - total * RATE
        # JOY conserved: the budget's spending stays in the bridge as the nodes' and protocol's earnings.
        assert token.balanceOf(bridge) == joy_before
        for agent in agents:
            if agent is not victim:
                assert agent.stop() == 0, agent.log()  # SIGTERM: the feeless loop ends, the agent drains
        # `edge_agent status` reports what each surviving agent answered on the channel (its journal)
        survivor = next(agent for agent in agents if agent is not victim)
        status = survivor.status()
        assert status.returncode == 0, status.stderr
        answered = json.loads(status.stdout)["feeless"]
        mine = sum(1 for a in final.requests.values() for answer in a.answers
                   if answer.node == addresses[survivor.index])
        assert answered.get("served", 0) == mine > 0, (answered, mine)
    finally:
        for agent in agents:
            if agent.running():
                agent.signal(signal.SIGKILL)
        owner_channel.close()
        if hasattr(ledger, "api"):
            ledger.close()
