"""Example: the original design's feeless inference, as it is written there.

The model owner opens the model's channel (its IOTA stream), registers a text model at price 0
with that stream, and asks for an embedding of "Hello world" over the channel: the edge nodes
that serve the model on the owner's channel answer, and nobody pays a fee. Every setting comes
from the environment:

    IOTA_NODE_URL              an IOTA node, or sqlite:///path/to/channels.sqlite3: the embedded
                               ledger the edge agents on this machine share ($JOYNET_CHANNEL_DB)
    IOTA_WALLET_SEED           the model owner's IOTA wallet mnemonic (its channel key)
    POLYGON_SUPERNET_RPC       the chain's JSON-RPC URL
    MODEL_MARKETPLACE_ADDRESS  the ModelMarketplace (deployments/<network>.json)
    JOYNET_ACCOUNT             the Ape account that signs: an alias, or test:N on a local chain
    MODEL_METADATA_CID         the text model's metadata CID (`joynet model publish-builtin`
                               prints all-MiniLM-L6-v2's)

Edge agents serve the model once it is registered (`ape run edge_agent --model mymodel`, on the
same chain, store and channel ledger); the request waits until one serves. The model name is the
design's, "mymodel": on a chain where it is registered already, use a fresh chain.

    .venv/bin/python examples/feeless_text_model.py
"""

import asyncio
import json
import os

from joynet import InferenceNode, IOTAInferenceHandler, ModelMarketplace


async def main() -> None:
    iota = IOTAInferenceHandler(node_url=os.getenv("IOTA_NODE_URL"), wallet_seed=os.getenv("IOTA_WALLET_SEED"))
    channel_id = await iota.create_model_channel("mymodel")  # the model owner's channel
    marketplace = ModelMarketplace(
        web3_provider=os.getenv("POLYGON_SUPERNET_RPC"), contract_address=os.getenv("MODEL_MARKETPLACE_ADDRESS")
    )
    await marketplace.register_model(
        model_id="mymodel", metadata=f"ipfs://{os.getenv('MODEL_METADATA_CID')}", price=0, iota_stream_id=channel_id
    )
    print(f"registered mymodel at price 0 on stream {channel_id}")
    node = InferenceNode(
        web3_provider=os.getenv("POLYGON_SUPERNET_RPC"),
        contract_address=os.getenv("MODEL_MARKETPLACE_ADDRESS"),
        iota_node_url=os.getenv("IOTA_NODE_URL"),
        iota_wallet_seed=os.getenv("IOTA_WALLET_SEED"),
    )
    result = await node.execute_inference(model_id="mymodel", input_data={"text": "Hello world"}, use_iota=True)
    print(f"output commitment {result.output_commitment_hex}")
    print(json.dumps(result.output))
    await node.close()
    iota.close()


if __name__ == "__main__":
    asyncio.run(main())
