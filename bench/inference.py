"""``edge.*`` figures of the inference runtime, for ``make bench``.

measure_minilm_throughput(n) publishes all-MiniLM-L6-v2 to a temporary embedded store, loads it
through an InferenceNode (from the store) and, on the same batch of n texts, times
``node.execute_inference(cid, {"texts": batch})`` (schema validation, the model, int8
quantization, the keccak commitment) against bare ``SentenceTransformer.encode(batch)`` of the
model loaded straight from the wheel. Rounds alternate between the two, and which goes first (the
cores are shared with other jobs); each side keeps its best round:

    edge.minilm_throughput_ratio          node embeddings/s ÷ bare embeddings/s (target >= 0.9)
    edge.minilm_throughput_ratio_median_pair  the median over rounds of bare time / node time of
                                          the two runs of the same round (adjacent, so they see
                                          similar contention)
    edge.minilm_node_embeddings_per_s
    edge.minilm_bare_embeddings_per_s
    edge.minilm_load_seconds              fetching the package from the store + loading it

measure_onnx_throughput(n) does the same for a model of one's own on the ``onnx`` runtime: the CNN
that examples/onnx_cnn_classifier.py trains and exports from PyTorch, published and loaded
through an InferenceNode, against a bare onnxruntime session on the same .onnx file with the
same settings (the thread count the package declares), on a batch of n held-out images. Both
sides start from the request's JSON document, as a node receives it from the store, and end with
the logits as numbers:

    onnx.throughput_ratio                 node images/s ÷ bare images/s (target >= 0.9)
    onnx.throughput_ratio_median_pair     as for MiniLM
    onnx.node_images_per_s, onnx.bare_images_per_s
"""

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SUBJECTS = (
    "The edge node",
    "A requester",
    "The DAO",
    "Every validator",
    "The model owner",
    "A bridger",
    "The marketplace",
    "Our committee",
)
VERBS = ("stakes", "proves", "settles", "publishes", "verifies", "embeds", "requests", "governs")
OBJECTS = (
    "a result on chain",
    "the quantized weights",
    "JOY for each inference",
    "a Groth16 proof",
    "the IOTA channel's checkpoint",
    "an embedding of this sentence",
    "the escrow before the deadline",
    "a new circuit through the timelock",
)


def sample_texts(n: int) -> list[str]:
    """n distinct, deterministic sentences of varied length."""
    texts = []
    for i in range(n):
        s, v, o = SUBJECTS[i % 8], VERBS[(i // 8) % 8], OBJECTS[(i * 3 + i // 64) % 8]
        texts.append(f"{s} {v} {o}" + (" and then waits for the next block." if i % 3 == 0 else ".") + f" #{i}")
    return texts


async def alternating_rounds(rounds: int, node_call, bare_call) -> tuple[float, float, list[float]]:
    """Times ``await node_call()`` against ``bare_call()`` over ``rounds`` rounds, alternating which
    goes first (the cores are shared with other jobs): (node's best, bare's best, each round's bare
    time ÷ node time)."""
    node_best = bare_best = float("inf")
    pair_ratios = []
    for round_ in range(rounds):
        times = {}
        for side in ("node", "bare") if round_ % 2 == 0 else ("bare", "node"):
            started = time.perf_counter()
            if side == "node":
                await node_call()
            else:
                bare_call()
            times[side] = time.perf_counter() - started
        node_best, bare_best = min(node_best, times["node"]), min(bare_best, times["bare"])
        pair_ratios.append(times["bare"] / times["node"])
    return node_best, bare_best, pair_ratios


def measure_minilm_throughput(n: int = 64, rounds: int = 10) -> dict[str, float]:
    return asyncio.run(_measure(n, rounds))


async def _measure(n: int, rounds: int) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    from joynet.edge.inference_node import InferenceNode
    from joynet.inference.runtimes.sentence_embedding import BATCH_SIZE, offline
    from joynet.models.builtin import minilm_source_dir, publish_builtin_models
    from joynet.storage import EmbeddedStore

    offline()
    texts = sample_texts(n)
    with tempfile.TemporaryDirectory(prefix="joynet-bench-") as work:
        store = EmbeddedStore(Path(work) / "ipfs")
        cid = (await publish_builtin_models(store))["minilm"]
        node = InferenceNode(store=store, cache_dir=Path(work) / "models", max_input_bytes=1 << 20)
        started = time.perf_counter()
        await node.load_model(cid)
        load_seconds = time.perf_counter() - started
        bare = SentenceTransformer(str(minilm_source_dir()), device=node.device, local_files_only=True)
        payload = {"texts": texts}
        await node.execute_inference(cid, payload)  # warm-up, both sides
        bare.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
        node_best, bare_best, pair_ratios = await alternating_rounds(
            rounds,
            lambda: node.execute_inference(cid, payload),
            lambda: bare.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False),
        )
        await node.close()
    return {
        "edge.minilm_throughput_ratio": round(bare_best / node_best, 3),
        "edge.minilm_throughput_ratio_median_pair": round(statistics.median(pair_ratios), 3),
        "edge.minilm_node_embeddings_per_s": round(n / node_best, 1),
        "edge.minilm_bare_embeddings_per_s": round(n / bare_best, 1),
        "edge.minilm_load_seconds": round(load_seconds, 2),
    }


def measure_onnx_throughput(n: int = 64, rounds: int = 10) -> dict[str, float]:
    return asyncio.run(_measure_onnx(n, rounds))


async def _measure_onnx(n: int, rounds: int) -> dict[str, float]:
    import importlib.util
    import json

    import numpy as np
    import onnxruntime
    import yaml

    from joynet.edge.inference_node import InferenceNode
    from joynet.models.package import publish_model
    from joynet.storage import EmbeddedStore

    spec = importlib.util.spec_from_file_location("onnx_cnn_classifier", EXAMPLES / "onnx_cnn_classifier.py")
    example = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(example)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="joynet-bench-") as work:
        package = example.export(Path(work) / "cnn")
        description = yaml.safe_load((package / "model.yaml").read_text())
        images = example.digits_images()[0][-n:].numpy()
        store = EmbeddedStore(Path(work) / "ipfs")
        cid = await publish_model(store, package)
        node = InferenceNode(store=store, cache_dir=Path(work) / "models", max_input_bytes=1 << 20)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = description["onnx"]["threads"]
        bare = onnxruntime.InferenceSession(str(package / "model.onnx"), options, providers=["CPUExecutionProvider"])
        payload = json.dumps({"image": images.tolist()}).encode()
        await node.execute_inference(cid, payload)  # warm-up, both sides
        bare.run(["logits"], {"image": images})

        def bare_run():
            document = json.loads(payload)
            (logits,) = bare.run(["logits"], {"image": np.asarray(document["image"], dtype=np.float32)})
            return logits.tolist()

        node_best, bare_best, pair_ratios = await alternating_rounds(
            rounds, lambda: node.execute_inference(cid, payload), bare_run
        )
        await node.close()
    return {
        "onnx.throughput_ratio": round(bare_best / node_best, 3),
        "onnx.throughput_ratio_median_pair": round(statistics.median(pair_ratios), 3),
        "onnx.node_images_per_s": round(n / node_best, 1),
        "onnx.bare_images_per_s": round(n / bare_best, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps({**measure_minilm_throughput(), **measure_onnx_throughput()}, indent=1))
