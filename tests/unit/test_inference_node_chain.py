"""joynet.InferenceNode against the deployed marketplace: a model id registered on chain is
resolved to its metadataURI and loaded from the store."""

import asyncio
import json

import pytest

from joynet import JOY, InferenceNode, ModelMarketplace
from eth_utils import keccak

from joynet.chain.marketplace import model_key
from joynet.feeless.claims import NODE_KEY, ChannelClaim
from joynet.inference import ModelNotRegisteredError
from joynet.models.builtin import publish_builtin_models
from joynet.storage import EmbeddedStore

run = asyncio.run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("edge-chain") / "ipfs")


@pytest.fixture(scope="module")
def cids(store):
    return run(publish_builtin_models(store))


def test_execute_inference__registered_model_id__loads_metadata_uri_from_marketplace(
        marketplace, model_owner, store, cids, tmp_path):
    weights_commitment = json.loads(run(store.cat(cids["minilm"])))["weightsCommitment"]
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(model_id="mymodel", metadata=f"ipfs://{cids['minilm']}", price=JOY,
                             weights_commitment=weights_commitment, quorum=3))
    node = InferenceNode(web3_provider=None, contract_address=marketplace.address, iota_node_url=None,
                         iota_wallet_seed=None, store=store, cache_dir=tmp_path / "models")
    result = run(node.execute_inference(model_id="mymodel", input_data={"text": "Hello world"}, use_iota=False))
    assert result.model_cid == cids["minilm"] and len(result.output["embedding"]) == 384
    assert result.verification == {"quorum": 3, "circuitId": None}
    run(node.close())


def test_execute_inference__unregistered_model_id__model_not_registered_error(marketplace, store, tmp_path):
    node = InferenceNode(contract_address=marketplace.address, store=store, cache_dir=tmp_path / "models")
    with pytest.raises(ModelNotRegisteredError, match="no model 'nosuchmodel' is registered"):
        run(node.execute_inference("nosuchmodel", {"text": "x"}))


NODE_SEED = "abandon " * 11 + "about"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def test_execute_inference__feeless_answer_from_a_key_not_bound_to_its_node__rejected_until_bound(
        marketplace, deployment, model_owner, operators, register_node, store, cids, tmp_path, chain, monkeypatch):
    """The requester accepts a feeless answer only when its signing key is bound on chain to the
    node it names (IOTAValidator.bindChannelKey) and vouched for that node on the channel."""
    from joynet.feeless.errors import ProofRejectedError

    # A ledger of its own: the channel's id and the claims are the same in every run on a local
    # chain (same keys, same deployment addresses), so a shared ledger would hold an earlier run's.
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "channels.sqlite3"))

    bridge = deployment.contract("IOTAValidator")
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    serving = InferenceNode(contract_address=marketplace.address, store=store, cache_dir=tmp_path / "node",
                            iota_wallet_seed=NODE_SEED)
    requesting = InferenceNode(contract_address=marketplace.address, store=store, cache_dir=tmp_path / "req",
                               iota_wallet_seed=REQUESTER_SEED)
    channel_id = run(serving.open_model_channel("bound-minilm"))
    weights_commitment = json.loads(run(store.cat(cids["minilm"])))["weightsCommitment"]
    run(owner.register_model(model_id="bound-minilm", metadata=f"ipfs://{cids['minilm']}", price=0,
                             iota_stream_id=channel_id, weights_commitment=weights_commitment))
    node, other = operators[0], operators[1]
    model = model_key("bound-minilm")
    register_node(node, [model])

    def ask(text):
        async def scenario():
            served = asyncio.create_task(serving.serve_iota(channel_id, "bound-minilm", node_address=node.address,
                                                            max_requests=1))
            try:
                return await requesting.execute_inference("bound-minilm", {"text": text}, use_iota=True, timeout=60)
            finally:
                await served

        return run(scenario())

    key, handler = serving.iota_handler().identity.public_key, serving.iota_handler()
    with pytest.raises(ProofRejectedError, match="not the bound channel key of the node it names"):
        ask("nobody bound the key")
    bridge.bindChannelKey(model, key, sender=node)
    with pytest.raises(ProofRejectedError, match="not the bound channel key"):
        ask("bound on chain, but the key has not vouched for the node on the stream")
    claim = ChannelClaim(NODE_KEY, model, other.address, chain.chain_id, bridge.address)
    run(handler.post_claim(channel_id, claim))
    with pytest.raises(ProofRejectedError, match="not the bound channel key"):
        ask("the key vouched for another node than the answer names")
    run(handler.post_claim(channel_id, ChannelClaim(NODE_KEY, model, node.address, chain.chain_id, bridge.address)))
    bridge.bindChannelKey(model, keccak(text="a key the node does not hold"), sender=node)
    with pytest.raises(ProofRejectedError, match="not the bound channel key"):
        ask("the node bound another key on chain since")
    bridge.bindChannelKey(model, key, sender=node)
    assert len(ask("bound on chain and vouched on the stream").output["embedding"]) == 384
    run(serving.close())
    run(requesting.close())
