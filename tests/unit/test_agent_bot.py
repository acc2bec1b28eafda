"""The agents' event loop (joynet.chain.bot.Bot) on the suite's anvil, with JOY transfers as the
followed events: chain order, the cursor moved only after a poll's handlers all ran, a failed poll
replayed from the same cursor, blocks and ticks, stopping and the shutdown handlers."""

import asyncio

import pytest

from joynet.chain.bot import BlockCursor, Bot


@pytest.fixture
def transfers(chain, token, alice, bob):
    """Three transfers of 1, 2 and 3 wei of JOY after a cursor at the current head."""
    cursor = BlockCursor(chain.blocks.height)
    for amount in (1, 2, 3):
        token.transfer(bob, amount, sender=alice)
    return cursor


def serve(bot, token, cursor, **options):
    asyncio.run(asyncio.wait_for(bot.serve(None, token, cursor, stop=asyncio.Event(), **options), 60))


def test_serve__three_transfers__handled_in_chain_order_then_stopped_and_shut_down(chain, token, transfers):
    bot, calls = Bot("test", poll_seconds=0.05), []

    @bot.on_startup()
    def started(state):
        calls.append(("startup", transfers.cursor))

    @bot.on_("Transfer")
    async def transferred(state, event):
        calls.append(("transfer", event.value))

    @bot.on_block()
    def new_head(state, height):
        calls.append(("block", height))

    @bot.on_tick()
    def tick(state):
        if sum(call[0] == "transfer" for call in calls) == 3:
            bot.stop()

    @bot.on_shutdown()
    def stopped(state):
        calls.append(("shutdown", transfers.cursor))

    start, head = transfers.cursor, chain.blocks.height
    serve(bot, token, transfers)
    assert calls == [("startup", start), ("transfer", 1), ("transfer", 2), ("transfer", 3), ("block", head),
                     ("shutdown", head)]


def test_serve__handler_fails_once__cursor_kept_and_the_blocks_replayed(chain, token, transfers):
    bot, seen, failed = Bot("test", poll_seconds=0.05), [], []
    start = transfers.cursor

    @bot.on_("Transfer")
    def transferred(state, event):
        seen.append(event.value)
        if event.value == 2 and not failed:
            failed.append(transfers.cursor)  # the cursor when the poll failed
            raise RuntimeError("a flaky handler")

    @bot.on_tick()
    def tick(state):
        if seen.count(3) == 1:
            bot.stop()

    serve(bot, token, transfers)
    assert failed == [start]
    assert seen == [1, 2, 1, 2, 3]
    assert transfers.cursor == chain.blocks.height


def test_serve__max_seconds_without_events__returns_and_shuts_down(chain, token):
    bot, calls = Bot("test", poll_seconds=0.05), []
    bot.on_shutdown()(lambda state: calls.append("shutdown"))
    bot.on_("Transfer")(lambda state, event: calls.append("transfer"))
    serve(bot, token, BlockCursor(chain.blocks.height), max_seconds=0.3)
    assert calls == ["shutdown"]
