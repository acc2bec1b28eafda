"""The edge node agent: one handler per marketplace event, each calling an :class:`EdgeNode`.

``joynet agent edge`` / ``ape run edge_agent`` (``agents/cli.py``) runs ``bot`` with an ``EdgeNode``
built from its options, following the marketplace from the node's journal cursor; the benchmark runs
it in-process (``bot.serve(node, node.contract, node.journal, stop=event)``).
"""

from joynet.chain.bot import Bot
from joynet.edge.edge_node import EdgeNode, format_joy, logger

# A shutdown waits this long at most for its fee withdrawal, and no longer than the drain's time
# left (a chain that does not mine leaves it pending; the next start journals it from its receipt).
SHUTDOWN_FEE_WAIT_SECONDS = 5.0

bot = Bot("edge_node")


@bot.on_startup()
async def join_network(node: EdgeNode):
    """Register and stake when needed, load the models, resume the journal's unfinished jobs."""
    await node.join()
    resumed = await node.reconcile()
    if resumed:
        logger.info("resumed %d unfinished job(s) from the journal", resumed)


@bot.on_block()
async def keep_lease(node: EdgeNode, height: int):
    """A new head: renew the node's lease once about a third of it is left (queued, retried),
    so that the coordinator keeps drawing this node while it runs and stops soon after it dies."""
    node.on_block(height)


@bot.on_("InferenceRequested")
async def assign_request(node: EdgeNode, event):
    """A request for a model this node serves: assign its nodes if nobody has after a short grace."""
    await node.on_requested(event)


@bot.on_("NodesAssigned")
async def serve_request(node: EdgeNode, event):
    """An assignment naming this node: journal it, then fetch, run, prove and submit (a quorum:
    commit, then reveal; a tolerant policy's validator: check the generator's result, then
    commit and reveal its vote), or decline, in the background."""
    await node.on_assigned(event)


@bot.on_("ModelMetadataUpdated")
async def reload_model(node: EdgeNode, event):
    """A model's owner pointed it at new metadata: the model's next job loads it from there."""
    node.on_metadata_updated(event)


@bot.on_("ResultCommitted")
async def note_commitment(node: EdgeNode, event):
    """A quorum node committed: a job of ours waiting for every commitment looks again at once."""
    node.on_committed(event)


@bot.on_("ResultSubmitted")
async def note_result(node: EdgeNode, event):
    """A node's result is public: a validation of ours waiting for its generator looks at once."""
    node.on_result_submitted(event)


@bot.on_("InferenceSettled")
async def collect_fees(node: EdgeNode, event):
    """A settled request of ours: withdraw the fees once they reach the threshold (queued: the
    event loop does not wait on it). Any settlement frees nodes: a request nobody could assign
    is tried again."""
    node.retry_assignments()
    if node.on_outcome(event.requestId, "settled"):
        node.request_fee_collection()


@bot.on_("InferenceRefunded")
async def record_refund(node: EdgeNode, event):
    """A refunded request of ours (declined, expired, or no majority): keep the journal's record."""
    node.retry_assignments()
    if node.on_outcome(event.requestId, "refunded"):
        logger.info("request %d: refunded to the requester (%s)", event.requestId, event.reason)


@bot.on_shutdown()
async def drain(node: EdgeNode):
    """SIGTERM: end the lease (no new work), finish what is in flight, collect what was earned, close."""
    left = await node.drain()
    # Within the drain's time: a chain that does not mine leaves the withdrawal to the next start.
    wait = SHUTDOWN_FEE_WAIT_SECONDS if left is None else min(SHUTDOWN_FEE_WAIT_SECONDS, left)
    await node.collect_fees(minimum=1, wait=wait)
    status = node.status()
    logger.info("stopped: jobs %s, %s JOY withdrawn in all", status["jobs"], format_joy(status["fees_withdrawn"]))
    await node.close()
