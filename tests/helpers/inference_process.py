"""Run by test_inference_node in a fresh process: loads a model from an embedded store directory
through a new InferenceNode (its own cache directory) and prints the output commitment.

    python tests/helpers/inference_process.py STORE_DIR CACHE_DIR CID JSON_INPUT
"""

import asyncio
import json
import sys

from joynet.edge import InferenceNode
from joynet.storage import EmbeddedStore


async def main(store_dir, cache_dir, cid, payload):
    async with InferenceNode(store=EmbeddedStore(store_dir), cache_dir=cache_dir) as node:
        result = await node.execute_inference(cid, json.loads(payload))
    print(json.dumps({"commitment": result.output_commitment.hex(), "output": result.output}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
