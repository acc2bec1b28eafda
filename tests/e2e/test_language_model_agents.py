"""SmolLM2-135M-Instruct end to end: published through the store like any other model, registered
under a quorum of 3, served by three `ape run edge_agent` processes sharing one machine's model
cache. The original design's example input {"text": "Hello world"} (as a chat prompt) and ten
more prompts, 32 tokens at most each, settle with the three nodes' token ids identical and equal
to a local run of the same package; every answer carries an activation proof, and a validator
re-running only the prefill accepts it.

Then the same model under the tolerant policy (one generator, two validators): two agents run it
one in bfloat16 and one on two threads, and this test's own node (float32, one thread) takes the
third seat. The agents' honest answers are accepted by validators on other settings and settle;
when this node is the generator it submits a continuation with one token altered, which both
agents reject on chain: refunded, and this node slashed.
"""

import asyncio
import json
import os

import pytest
from ape import accounts

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import RequestStatus, model_key, seal_result
from joynet.inference.inputs import encode_document
from joynet.edge import InferenceNode
from joynet.inference import toploc
from joynet.inference.runtimes.language_model import write_smollm2_package
from joynet.models.package import load_model_metadata, publish_model
from joynet.storage import EmbeddedStore
from helpers.edge_agents import (
    EdgeAgent, agent_environment, events_of, request_with_input, wait_for, wait_until_closed,
)

run = asyncio.run
MODEL, PRICE, MAX_TOKENS = "smollm2-chat", 1 * JOY, 32
PROMPTS = [
    "Hello world",
    "What is the capital of France?",
    "Name three primary colors.",
    "Write one sentence about the sea.",
    "What is 2 + 2?",
    "Give me a synonym for happy.",
    "Why is the sky blue?",
    "Translate 'thank you' into Spanish.",
    "What do bees make?",
    "Suggest a name for a cat.",
    "How many days are in a week?",
]


@pytest.fixture(scope="module")
def llm_store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("llm-ipfs"))


@pytest.fixture(scope="module")
def llm_cache(smollm2_cache):
    """One machine's model cache, shared by the three agents (files by CID, the conversion by
    hash) and the session's other SmolLM2 nodes."""
    return smollm2_cache


@pytest.fixture(scope="module")
def llm_env(deployment, llm_store, tmp_path_factory, chain):
    return agent_environment(deployment, chain, llm_store.directory, tmp_path_factory.mktemp("llm-deployments"))


def test_language_model__three_agents_quorum_3__eleven_chats_settle_identical_and_validate(
        llm_env, llm_store, llm_cache, marketplace, token, requester, model_owner, chain, tmp_path):
    start_block = chain.blocks.height
    package_dir = write_smollm2_package(tmp_path / "smollm2", maxNewTokens=MAX_TOKENS)
    metadata_cid = run(publish_model(llm_store, package_dir))
    metadata = run(load_model_metadata(llm_store, metadata_cid))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(MODEL, f"ipfs://{metadata_cid}", price=PRICE, quorum=3,
                             weights_commitment=metadata["weightsCommitment"]))

    # The reference: the same package from the store on this process (it converts the GGUF once,
    # into the cache the agents then share).
    reference = InferenceNode(store=llm_store, cache_dir=llm_cache)
    documents = [{"text": prompt, "max_tokens": MAX_TOKENS} for prompt in PROMPTS]
    expected = [run(reference.execute_inference(metadata_cid, document)) for document in documents]
    runtime = run(reference.load_model(metadata_cid)).runtime

    agents = [EdgeAgent.in_workdir(index, tmp_path, llm_env, [MODEL]) for index in (6, 7, 8)]
    for agent in agents:
        agent.env["JOYNET_MODEL_CACHE"] = str(llm_cache)
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, 100 * JOY, sender=requester)
    try:
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.wait_ready(300)
        sent = {run(request_with_input(client, llm_store, MODEL, document, zk=False)): i
                for i, document in enumerate(documents)}
        wait_until_closed(client, list(sent), agents, 400)
    finally:
        for agent in agents:
            agent.stop()

    for rid, i in sent.items():
        result = run(client.get_result(rid))
        assert result.status is RequestStatus.Settled, (PROMPTS[i], result.refund_reason)
        assert result.output_commitment == expected[i].output_commitment, PROMPTS[i]
        revealed = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
        assert len({event.node for event in revealed}) == 3
        assert {bytes(event.outputCommitment) for event in revealed} == {expected[i].output_commitment}
        document = json.loads(run(llm_store.cat(result.output_uri.removeprefix("ipfs://"))))
        assert document["output"] == expected[i].output
        assert len(document["output"]["tokens"]) <= MAX_TOKENS
        verdict = toploc.validate(runtime, documents[i], document["output"], bytes.fromhex(document["activationProof"][2:]))
        assert verdict.accepted, (PROMPTS[i], verdict.reasons)
    hello = expected[0].output
    assert hello["finish_reason"] == "stop" and hello["text"].strip()
    assert {node for rid in sent for node in client.get_request(rid).nodes} == {
        accounts.test_accounts[agent.index].address for agent in agents}
    run(reference.close())


TOLERANT_MODEL = "smollm2-tolerant"


def test_language_model__tolerant_policy__other_dtypes_and_threads_accepted_and_an_altered_answer_rejected(
        llm_env, llm_store, llm_cache, marketplace, coordinator, token, requester, model_owner, operators,
        register_node, chain, tmp_path):
    start_block = chain.blocks.height
    package_dir = write_smollm2_package(tmp_path / "smollm2", maxNewTokens=MAX_TOKENS)
    metadata_cid = run(publish_model(llm_store, package_dir))
    metadata = run(load_model_metadata(llm_store, metadata_cid))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(TOLERANT_MODEL, f"ipfs://{metadata_cid}", price=PRICE, quorum=3, tolerant=True,
                             weights_commitment=metadata["weightsCommitment"]))
    assert marketplace.getModel(model_key(TOLERANT_MODEL)).tolerant

    reference = InferenceNode(store=llm_store, cache_dir=llm_cache)  # this test's node: float32, one thread
    loaded = run(reference.load_model(metadata_cid))
    own = operators[3]
    register_node(own, [model_key(TOLERANT_MODEL)], capacity=8)
    agents = [EdgeAgent.in_workdir(index, tmp_path, llm_env, [TOLERANT_MODEL]) for index in (6, 7)]
    agents[0].env.update(JOYNET_MODEL_CACHE=str(llm_cache), JOYNET_LLM_THREADS="2", OMP_NUM_THREADS="2")
    agents[1].env.update(JOYNET_MODEL_CACHE=str(llm_cache), JOYNET_LLM_DTYPE="bfloat16")
    client = ModelMarketplace(contract_address=marketplace.address, account=requester)
    token.approve(marketplace, 100 * JOY, sender=requester)
    stake_before = coordinator.nodeInfo(own).stake
    outcomes = {}
    try:
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.wait_ready(300)
        # The generator's seat is drawn uniformly among the three: requests go on until this node
        # has generated at least once and validated twice (20 at most: (2/3)^20 ~ 0.03 % of
        # runs would never draw it as the generator).
        for attempt in range(20):
            prompt = PROMPTS[attempt % len(PROMPTS)]
            document = {"text": prompt, "max_tokens": MAX_TOKENS - attempt // len(PROMPTS)}
            rid = run(request_with_input(client, llm_store, TOLERANT_MODEL, document, zk=False))
            request = client.get_request(rid)
            role = "generator" if request.nodes[0] == own.address else "validator"
            if role == "generator":
                forge_answer(reference, loaded, llm_store, marketplace, request, document, own)
            else:
                validate_answer(reference, loaded, llm_store, marketplace, request, document, own)
            wait_until_closed(client, [rid], agents, 300)
            outcomes[rid] = (role, prompt)
            roles = [role for role, _ in outcomes.values()]
            if roles.count("generator") >= 1 and roles.count("validator") >= 2:
                break
    finally:
        for agent in agents:
            agent.stop()

    roles = [role for role, _ in outcomes.values()]
    assert "generator" in roles and "validator" in roles, roles
    forged = 0
    for rid, (role, prompt) in outcomes.items():
        result = run(client.get_result(rid))
        votes = events_of(marketplace, "ResultSubmitted", start_block, requestId=rid)
        if role == "validator":  # an agent generated, the other agent and this node validated
            assert result.status is RequestStatus.Settled, (prompt, result.refund_reason)
            assert len({event.node for event in votes}) == 3
            assert {bytes(event.outputCommitment) for event in votes} == {result.output_commitment}
        else:  # this node generated an altered continuation
            forged += 1
            assert result.status is RequestStatus.Refunded, prompt
            assert result.refund_reason == "the validators rejected the result"
    assert coordinator.nodeInfo(own).stake == stake_before - forged * coordinator.taskBond()
    # Both agents took part: each as a validator on settings other than the generator's.
    assert {node for rid in outcomes for node in client.get_request(rid).nodes} == {
        own.address, *(accounts.test_accounts[agent.index].address for agent in agents)}
    run(reference.close())


def forge_answer(reference, loaded, store, marketplace, request, document, node):
    """This node as a cheating generator: the honest answer with its middle token changed (the
    text decoded again, so that only a prefill can tell), under the honest activation proof."""
    honest = run(reference.execute_loaded(loaded, document))
    tokens = list(honest.output["tokens"])
    tokens[len(tokens) // 2] = (tokens[len(tokens) // 2] + 1) % loaded.runtime.vocabulary_size
    output = {**honest.output, "tokens": tokens, "text": loaded.runtime.decode(tokens)}
    commitment = loaded.runtime.commitment_of(output)
    answer = {"requestId": request.id, "model": TOLERANT_MODEL, "output": output,
              "outputCommitment": "0x" + commitment.hex(),
              "activationProof": "0x" + honest.extra["activationProof"].hex()}
    uri = "ipfs://" + run(store.add_bytes(encode_document(answer)))
    marketplace.submitResult(request, commitment, uri, b"", sender=node)


def validate_answer(reference, loaded, store, marketplace, request, document, node):
    """This node as an honest validator: waits for the generator's answer, checks it, commits its
    vote and reveals it once both validators have committed."""
    wait_for(lambda: marketplace.submittedMask(request.id) & 1, 120, "the generator's answer", interval=0.2)
    generated = bytes(marketplace.resultOf(request.id, 0))
    (submitted,) = events_of(marketplace, "ResultSubmitted", request.seedBlock, requestId=request.id,
                             node=request.nodes[0])
    answer = json.loads(run(store.cat(submitted.outputURI.removeprefix("ipfs://"))))
    verdict = run(reference.check_answer_loaded(loaded, encode_document(document), answer, generated))
    assert verdict.accepted, verdict.reasons  # an agent's honest answer, on another dtype or thread count
    salt = os.urandom(32)
    marketplace.commitResult(request, seal_result(request.id, node.address, generated, salt), sender=node)
    wait_for(lambda: marketplace.submittedMask(request.id) & 0b111 == 0b111, 120, "the other validator's vote",
             interval=0.2)
    marketplace.revealResult(request, generated, salt, submitted.outputURI, b"", sender=node)
