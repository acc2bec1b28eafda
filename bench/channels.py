"""Throughput of the embedded channel: messages signed, compare-and-appended to the SQLite ledger
(which validates each one), then read back and verified by a fresh reader."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from joynet.channels.channel import Channel, ChannelReader
from joynet.channels.keys import ChannelIdentity
from joynet.channels.ledger import SQLiteLedger

PAYLOAD = b"x" * 256  # a typical request: a model id and an ipfs:// input URI, with room to spare


def measure_channel(n: int = 1000) -> dict[str, float]:
    """``{"channel.messages_per_s": ...}``: n packets written and then read, over the total time."""
    with tempfile.TemporaryDirectory() as directory:
        ledger = SQLiteLedger(Path(directory) / "bench.sqlite3")
        channel = Channel.create(ledger, ChannelIdentity.generate(), "bench")
        started = time.perf_counter()
        for _ in range(n):
            channel.publish(public=PAYLOAD)
        fresh_handle = SQLiteLedger(ledger.path)
        reader = ChannelReader(fresh_handle, channel.channel_id)
        read = sum(1 for message in reader.verified_messages() if message.sequence > 0)
        elapsed = time.perf_counter() - started
        fresh_handle.close()
        ledger.close()
    if read != n:
        raise RuntimeError(f"read back {read} of {n} messages")
    return {"channel.messages_per_s": round(n / elapsed, 1)}


if __name__ == "__main__":
    print(measure_channel())
