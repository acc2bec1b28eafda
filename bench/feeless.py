"""Feeless request -> verified answer over the local channel (the embedded ledger): a requester
with no EVM account asks on the model owner's open channel, which a staked node bound to the model
serves (the channel's assignment book gives it every request), and verifies the answer it gets
(the Groth16 proof with snarkjs for the ZK digits model; the output commitment for MiniLM). The
models are the built-in packages, published to an embedded store and registered at price 0 on
the bench's chain, each with its owner's open channel as its stream and the node's channel key
bound to it and vouching for it (the requester accepts answers only from such a node). MiniLM's
requests alternate with the same through the OpenAI-compatible gateway (``POST /v1/embeddings``),
which asks over the channel as the requester does: ``gateway.feeless_minilm_p50_s``."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench.gateway import feeless_answer_seconds, served_gateway
from joynet.chain.marketplace import ModelMarketplace, model_key

NODE_SEED = "abandon " * 11 + "about"  # BIP-39 test vectors: development wallets only
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"


def measure_feeless(marketplace_address: str, owner, operator, bridge, n: int = 20) -> dict[str, float]:
    """``feeless.<model>_p50_s`` and ``_p90_s``: request -> verified answer, after one warm-up.
    ``operator`` (a registered node) serves both models with its channel key bound in ``bridge``."""
    return asyncio.run(_measure(marketplace_address, owner, operator, bridge, n))


async def _measure(marketplace_address: str, owner, operator, bridge, n: int) -> dict[str, float]:
    from ape import chain

    from joynet.edge.inference_node import InferenceNode
    from joynet.feeless.assignment import AssignmentBook
    from joynet.feeless.claims import NODE_KEY, Bindings, ChannelClaim
    from joynet.feeless.handler import IOTAInferenceHandler
    from joynet.inference.runtimes.sentence_embedding import offline
    from joynet.models.builtin import publish_builtin_models
    from joynet.models.package import load_model_metadata
    from joynet.storage import EmbeddedStore
    from joynet.zk import random_salt
    from joynet.zk.digits import load_split

    offline()
    _, pixels, _, _ = load_split()
    inputs = {
        "digits": lambda i: {"pixels": [int(p) for p in pixels[i]], "salt": random_salt()},
        "minilm": lambda i: {"texts": [f"feeless request number {i} to a sentence embedding model"]},
    }
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="joynet-bench-feeless-") as work:
        # Channels of their own: the default ledger would hold an earlier run's channels (the same
        # keys and names), whose answered requests and claims the nodes would replay.
        ledger = mock.patch.dict(os.environ, {"JOYNET_CHANNEL_DB": str(Path(work) / "channels.sqlite3")})
        store = EmbeddedStore(Path(work) / "ipfs")
        cids = await publish_builtin_models(store)
        client = ModelMarketplace(contract_address=marketplace_address, account=owner)
        serving = InferenceNode(
            store=store, cache_dir=Path(work) / "node", iota_wallet_seed=NODE_SEED, marketplace=client
        )
        requesting = InferenceNode(
            store=store, cache_dir=Path(work) / "requester", iota_wallet_seed=REQUESTER_SEED, marketplace=client
        )
        ledger.start()
        owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_SEED)
        try:
            for name in ("digits", "minilm"):
                model = f"bench-feeless-{name}"
                metadata = await load_model_metadata(store, cids[name])
                channel_id = await owner_channel.create_model_channel(model, private=False, open=True)
                await client.register_model(
                    model,
                    f"ipfs://{cids[name]}",
                    price=0,
                    iota_stream_id=channel_id,
                    weights_commitment=metadata["weightsCommitment"],
                    quorum=1,
                    circuit_id=metadata["verification"].get("circuitId"),
                )
                client.coordinator.serveModel(model_key(model), sender=operator)
                handler = serving.iota_handler()
                bridge.bindChannelKey(model_key(model), handler.identity.public_key, sender=operator)
                claim = ChannelClaim(NODE_KEY, model_key(model), operator.address, chain.chain_id, bridge.address)
                await handler.ensure_subscribed(channel_id)
                await handler.post_claim(channel_id, claim)
                bindings = Bindings.registered(client, model)
                through_gateway = name == "minilm"  # the same requests, also through the gateway
                served = asyncio.create_task(
                    serving.serve_iota(
                        channel_id,
                        model,
                        node_address=operator.address,
                        max_requests=(n + 1) * (2 if through_gateway else 1),
                        book=AssignmentBook(bindings),
                    )
                )
                seconds, gateway_seconds = [], []
                async with served_gateway([model], client, store) as gateway:
                    for index in range(n + 1):
                        started = time.perf_counter()
                        answer = await requesting.execute_inference(model, inputs[name](index), use_iota=True)
                        if name == "digits" and not answer.proof_verified:
                            raise RuntimeError("a feeless digits answer came without a verified proof")
                        if index:  # the first loads the model on both sides
                            seconds.append(time.perf_counter() - started)
                        if through_gateway:
                            text = inputs[name](index)["texts"][0] + " (gateway)"
                            took = await feeless_answer_seconds(gateway, model, text)
                            if index:  # the first subscribes the gateway to the channel
                                gateway_seconds.append(took)
                await served
                results[f"feeless.{name}_p50_s"] = round(statistics.median(seconds), 3)
                results[f"feeless.{name}_p90_s"] = round(statistics.quantiles(seconds, n=10)[-1], 3)
                if through_gateway:
                    results[f"gateway.feeless_{name}_p50_s"] = round(statistics.median(gateway_seconds), 3)
        finally:
            owner_channel.close()
            await serving.close()
            await requesting.close()
            ledger.stop()
    return results
