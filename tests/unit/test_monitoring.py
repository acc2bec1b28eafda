"""The agents' /healthz and /metrics (joynet.monitoring.AgentMonitor): served over HTTP by a bot
on the suite's anvil while it follows JOY transfers, and the unhealthy answers (starting, chain
unreachable, stalled) with 503."""

import asyncio
import json

import aiohttp
import pytest
from helpers.ipfs_daemon import free_local_port
from helpers.metrics import metric_samples as samples

from joynet.chain.bot import BlockCursor, Bot
from joynet.monitoring import AgentMonitor, MonitoringError


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


@pytest.fixture
def monitor():
    return AgentMonitor("test", port=free_local_port(), host="127.0.0.1")


def test_serve__with_a_monitor__healthz_and_metrics_follow_the_polls(chain, token, alice, bob, monitor):
    bot, seen = Bot("test", poll_seconds=0.05), {}
    cursor = BlockCursor(chain.blocks.height)
    token.transfer(bob, 1, sender=alice)
    head = chain.blocks.height

    @bot.on_startup()
    async def started(state):
        seen["startup"] = await get(monitor.port, "/healthz")

    @bot.on_("Transfer")
    def transferred(state, event):
        if "failed" not in seen:
            seen["failed"] = True
            raise RuntimeError("a flaky handler")

    @bot.on_tick()
    async def tick(state):
        if "ok" not in seen:
            seen["ok"] = True  # the next tick: this poll is complete
            return
        seen["healthz"] = await get(monitor.port, "/healthz")
        seen["metrics"] = await get(monitor.port, "/metrics")
        bot.stop()

    asyncio.run(asyncio.wait_for(bot.serve(None, token, cursor, stop=asyncio.Event(), monitor=monitor), 60))

    status, body = seen["startup"]
    assert status == 503 and '"status": "starting"' in body
    status, body = seen["healthz"]
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok" and health["up"] and health["chain_reachable"]
    assert health["last_block_handled"] == health["head_block"] >= head and health["lag_blocks"] == 0
    status, body = seen["metrics"]
    values = samples(body)
    assert status == 200
    assert values["joynet_chain_head_block"] == health["head_block"]
    assert values["joynet_last_block_handled"] == health["head_block"]
    assert values["joynet_chain_lag_blocks"] == 0
    assert values["joynet_chain_reachable"] == 1
    assert values["joynet_poll_failures_total"] == 1  # the flaky handler's poll, replayed
    with pytest.raises(aiohttp.ClientConnectionError):  # the server stopped with the bot
        asyncio.run(get(monitor.port, "/healthz"))


def test_healthz__chain_unreachable__503_with_the_error(monitor):
    async def scenario():
        await monitor.start()
        try:
            monitor.saw_head(12)
            monitor.handled_through(9)
            monitor.poll_done()
            healthy = await get(monitor.port, "/healthz")
            monitor.chain_unreachable(ConnectionRefusedError("connection refused"))
            return healthy, await get(monitor.port, "/healthz"), await get(monitor.port, "/metrics")
        finally:
            await monitor.stop()

    (ok_status, ok_body), (status, body), (_, metrics) = asyncio.run(scenario())
    assert ok_status == 200 and '"lag_blocks": 3' in ok_body
    assert status == 503
    assert '"status": "chain unreachable"' in body and "connection refused" in body
    assert '"chain_reachable": false' in body and '"last_block_handled": 9' in body
    assert samples(metrics)["joynet_chain_reachable"] == 0


def test_healthz__no_poll_completed_within_stall_seconds__503_stalled():
    monitor = AgentMonitor("test", stall_seconds=0.05)
    monitor.saw_head(5)
    monitor.handled_through(5)
    monitor.poll_done()
    assert monitor.health().healthy
    monitor.poll_failed(RuntimeError("a handler keeps failing"))
    asyncio.run(asyncio.sleep(0.1))
    health = monitor.health()
    assert not health.healthy and health.status == "stalled"
    assert health.to_json()["error"] == "RuntimeError: a handler keeps failing"


def test_monitor__without_port__serves_nothing_and_two_agents_keep_separate_registries():
    first, second = AgentMonitor("one"), AgentMonitor("two")
    asyncio.run(first.start())
    assert first.bound_port is None
    first.saw_head(7)
    assert samples(first.metrics_text().decode())["joynet_chain_head_block"] == 7
    assert "joynet_chain_head_block 0.0" in second.metrics_text().decode()


def test_start__port_taken__monitoring_error_naming_the_port(monitor):
    async def scenario():
        await monitor.start()
        try:
            taken = AgentMonitor("second", port=monitor.port, host="127.0.0.1")
            with pytest.raises(MonitoringError, match=f"cannot serve /healthz and /metrics on 127.0.0.1:{monitor.port}"):
                await taken.start()
        finally:
            await monitor.stop()

    asyncio.run(scenario())
