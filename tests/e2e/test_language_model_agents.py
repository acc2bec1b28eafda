"""SmolLM2-135M-Instruct end to end: published through the store like any other model, registered
under a quorum of 3, served by three `ape run edge_agent` processes sharing one machine's model
cache. The original design's example input {"text": "Hello world"} (as a chat prompt) and ten
more prompts, 32 tokens at most each, settle with the three nodes' token ids identical and equal
to a local run of the same package; every answer carries an activation proof, and a validator
re-running only the prefill accepts it.
"""

import asyncio
import json

import pytest
from ape import accounts

from joynet import JOY, ModelMarketplace
from joynet.chain.marketplace import RequestStatus, model_key
from joynet.edge import InferenceNode
from joynet.inference import toploc
from joynet.inference.runtimes.language_model import write_smollm2_package
from joynet.models.package import load_model_metadata, publish_model
from joynet.storage import EmbeddedStore
from helpers.edge_agents import EdgeAgent, agent_environment, events_of, request_with_input, wait_until_closed

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
def llm_cache(tmp_path_factory):
    """One machine's model cache, shared by the three agents (files by CID, the conversion by hash)."""
    return tmp_path_factory.mktemp("llm-cache")


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
