"""The embedded transport: a local ledger in SQLite that several processes on one machine share.

Safety across processes comes from SQLite itself: WAL mode (readers never block the writer), a
busy timeout (a writer waits for the lock instead of failing), ``BEGIN IMMEDIATE`` (the write lock
is taken before the head is read, so compare-and-append is atomic) and a UNIQUE (channel,
sequence) constraint as the last guard against two messages at one position.

The ledger is a validating one, like a node: before it appends, it runs the channel's rules
(``ChannelState.apply``) against everything already stored, so a forged, replayed, unlinked,
out-of-order or unauthorised message is refused with its typed error and never stored.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from joynet.channels.message import Message
from joynet.channels.state import ChannelState
from joynet.channels.transport import ChannelTransport

BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_messages (
    channel_id BLOB NOT NULL,
    sequence INTEGER NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    message BLOB NOT NULL,
    UNIQUE (channel_id, sequence)
)
"""


def default_ledger_path() -> Path:
    """``$JOYNET_CHANNEL_DB``, else ``$XDG_DATA_HOME/joynet/channels.sqlite3`` (~/.local/share)."""
    configured = os.environ.get("JOYNET_CHANNEL_DB")
    if configured:
        return Path(configured)
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "joynet" / "channels.sqlite3"


class SQLiteLedger(ChannelTransport):
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a crash of the process (not of the machine) and is much faster.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)
        self._states: dict[bytes, ChannelState] = {}

    def append(self, message: Message) -> None:
        message.check_size()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._validated_state(message.channel_id).apply(message)
            self._db.execute(
                "INSERT INTO channel_messages (channel_id, sequence, hash, message) VALUES (?, ?, ?, ?)",
                (message.channel_id, message.sequence, message.hash, message.to_bytes()),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            # apply() changes nothing when it refuses; but if the INSERT failed after it accepted,
            # the cached state is ahead of the database: rebuild it next time.
            self._states.pop(message.channel_id, None)
            raise

    def _validated_state(self, channel_id: bytes) -> ChannelState:
        """The channel's state including messages other processes appended since we last looked."""
        state = self._states.setdefault(channel_id, ChannelState(channel_id))
        for stored in self.read(channel_id, state.last_sequence + 1):
            state.apply(stored)
        return state

    def read(self, channel_id: bytes, from_sequence: int = 0) -> list[Message]:
        rows = self._db.execute(
            "SELECT message FROM channel_messages WHERE channel_id = ? AND sequence >= ? ORDER BY sequence",
            (channel_id, from_sequence),
        )
        return [Message.from_bytes(row[0]) for row in rows]

    def head_sequence(self, channel_id: bytes) -> int:
        (head,) = self._db.execute(
            "SELECT COALESCE(MAX(sequence), -1) FROM channel_messages WHERE channel_id = ?", (channel_id,)
        ).fetchone()
        return head

    def close(self) -> None:
        self._db.close()
