"""The interface every channel transport implements."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from joynet.channels.message import Message

POLL_SECONDS = 0.02


class ChannelTransport(ABC):
    """Where channel messages live.

    ``append`` is compare-and-append: it succeeds only if ``message.previous`` is the hash of the
    channel's current head (and ``message.sequence`` the next number); otherwise it raises a
    ChannelError (``ChannelForkError`` when another writer took that position first) and stores
    nothing. ``read`` returns messages in sequence order; readers verify them regardless.
    """

    @abstractmethod
    def append(self, message: Message) -> None: ...

    @abstractmethod
    def read(self, channel_id: bytes, from_sequence: int = 0) -> list[Message]: ...

    @abstractmethod
    def head_sequence(self, channel_id: bytes) -> int:
        """The highest stored sequence of the channel, -1 if it has none."""

    async def wait_for(self, channel_id: bytes, after_sequence: int, timeout: float | None = None) -> bool:
        """Wait until the channel has a message after ``after_sequence``; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.head_sequence(channel_id) <= after_sequence:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    async def follow(self, channel_id: bytes, from_sequence: int = 0) -> AsyncIterator[Message]:
        """Yield the channel's messages from ``from_sequence`` on, waiting for new ones forever."""
        next_sequence = from_sequence
        while True:
            for message in self.read(channel_id, next_sequence):
                yield message
                next_sequence = message.sequence + 1
            await self.wait_for(channel_id, next_sequence - 1)
