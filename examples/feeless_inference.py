"""Example: register a feeless model and serve an inference over its channel.

The original design's first example. A model owner publishes the digits MLP to the model store,
registers it at price 0 with the stream id of its channel, and asks the bridgers to link the
stream in IOTAValidator (so they can checkpoint its usage) once the channel's author consented. A requester with no EVM account at all
subscribes to the channel and sends a request; the edge node reads it, runs the model resolved
from its on-chain metadata (InferenceNode) and answers on the channel.

Run it against a chain where `ape run deploy` ran (local chains: test account 4 owns the model):

    .venv/bin/ape run deploy
    .venv/bin/python examples/feeless_inference.py [--network ethereum:local:foundry] [--account test:4]

The channel is the embedded ledger ($JOYNET_CHANNEL_DB, shared by every process on the machine);
set IOTA_NODE_URL to post to an IOTA (Stardust) node instead.
"""

import argparse
import asyncio
import os
import tempfile
import time

from ape import networks

# Development wallets (BIP-39 test vectors): never hold anything of value with them.
NODE_WALLET = "abandon " * 11 + "about"
REQUESTER_WALLET = "legal winner thank year wave sausage worth useful legal winner thank yellow"


async def main(account_spec: str) -> None:
    from joynet import (
        IOTAInferenceHandler,
        InferenceNode,
        ModelMarketplace,
        load_deployment,
        load_model_metadata,
        model_key,
        open_store,
        publish_model,
    )
    from joynet.chain.accounts import signing_account
    from joynet.feeless.claims import STREAM_LINK, ChannelClaim
    from joynet.models.builtin import write_digits_package
    from joynet.zk import random_salt
    from joynet.zk.digits import load_split

    owner = signing_account(account_spec)
    deployment = load_deployment()
    iota_node_url = os.environ.get("IOTA_NODE_URL")

    # 1. The model owner publishes the model's files and metadata to the store.
    store = open_store()
    with tempfile.TemporaryDirectory() as staging:
        metadata_cid = await publish_model(store, write_digits_package(staging))
    metadata = await load_model_metadata(store, metadata_cid)
    print(f"published {metadata['name']} {metadata['version']}: metadata ipfs://{metadata_cid}")

    # 2. The edge node opens the model's channel; its id is the model's IOTA stream id.
    model_name = f"digits-feeless-{int(time.time())}"
    node_channel = IOTAInferenceHandler(node_url=iota_node_url, wallet_seed=NODE_WALLET)
    channel_id = await node_channel.create_model_channel(model_name, private=True)
    print(f"channel {channel_id} announced by node key {node_channel.public_key}")

    # 3. Register the model at price 0 with its stream, and link the stream for the bridgers.
    marketplace = ModelMarketplace(account=owner)
    await marketplace.register_model(
        model_id=model_name,
        metadata=f"ipfs://{metadata_cid}",
        price=0,
        iota_stream_id=channel_id,
        weights_commitment=metadata["weightsCommitment"],
    )
    model = marketplace.get_model(model_name)
    print(f"registered {model_name}: price {model.price}, stream {'0x' + bytes(model.iotaStreamId).hex()}")
    #    The channel's author consents on the stream to carry this model of this owner; the owner
    #    asks the bridgers (`ape run iota_bridger`), who link it once they saw that consent.
    from ape import chain

    validator = deployment.contract("IOTAValidator")
    consent = ChannelClaim(STREAM_LINK, model_key(model_name), owner.address, chain.chain_id, validator.address)
    await node_channel.post_claim(channel_id, consent)
    validator.requestStreamLink(channel_id, model_key(model_name), sender=owner)
    print("stream link requested: the bridgers link it once they see the author's consent on the stream")

    # 4. The node serves one request: the model comes from its on-chain metadata, verified.
    inference_node = InferenceNode(store=store)

    async def serve_one():
        request = await node_channel.next_request(channel_id, timeout=60)
        result = await inference_node.execute_inference(request.model_id, request.input)
        await node_channel.send_response(
            channel_id, request.request_id, result.output, proof={"outputCommitment": result.output_commitment_hex}
        )
        print(f"node answered request {request.request_id[:18]}... from {request.requester[:18]}...")

    # 5. The requester: an IOTA wallet and no EVM account, so no transaction and no fee.
    requester = IOTAInferenceHandler(node_url=iota_node_url, wallet_seed=REQUESTER_WALLET)
    _, digits, _, labels = load_split()
    image = {"pixels": [int(p) for p in digits[0]], "salt": random_salt()}  # salt: the input commitment's

    async def ask():
        await requester.subscribe(channel_id)
        request_id = await requester.send_request(channel_id, model_name, image)
        return await requester.wait_response(channel_id, request_id, timeout=60)

    response, _ = await asyncio.gather(ask(), serve_one())
    await inference_node.close()
    print(f"response over the channel: class {response.output['class']} (the image is a {int(labels[0])})")
    print(f"output commitment {response.proof['outputCommitment']}")
    print("the requester sent no transaction: feeless")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="ethereum:local:foundry")
    parser.add_argument(
        "--account", default="test:4", help="the model owner: test:N on a local chain, or an Ape account alias"
    )
    args = parser.parse_args()
    with networks.parse_network_choice(args.network):
        asyncio.run(main(args.account))
