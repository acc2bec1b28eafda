"""joynet.InferenceNode against the deployed marketplace: a model id registered on chain is
resolved to its metadataURI and loaded from the store."""

import asyncio
import json

import pytest

from joynet import JOY, InferenceNode, ModelMarketplace
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
