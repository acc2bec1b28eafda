"""The edge agent's job journal: one SQLite file per agent.

Every assignment is written down when its event is seen, and every result or decline is written
down *before* its transaction is sent, so that an agent killed at any point knows, when it
restarts, which requests it owes and what it was about to send. The chain has the last word:
on restart :meth:`joynet.edge.EdgeNode.reconcile` asks it whether each unfinished job's
submission landed before sending anything again.

States of a job (``state``), in order::

    assigned -> running -> computed -> submitted          (a result, single-node request)
                        -> computed -> committed -> revealed
                                                          (a result, quorum request: the sealed
                                                           result, then the result itself)
                        -> declining -> declined          (an input the node refuses, or a result
                                                           it cannot compute before the deadline)
    any unfinished state -> closed | expired | failed     (the request closed without us, the
                                                           deadline passed, an error of the node)

A quorum job journals its result *and* the salt of its sealed result at ``computed``, before
the commitment is sent: the reveal after a restart must use exactly that salt.

``outcome`` is what the chain finally did with the request (``settled`` / ``refunded``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from joynet.chain.marketplace import Request
from joynet.edge.errors import JournalError
from joynet.paths import joynet_home

ASSIGNED, RUNNING, COMPUTED, SUBMITTED = "assigned", "running", "computed", "submitted"
COMMITTED, REVEALED = "committed", "revealed"
DECLINING, DECLINED = "declining", "declined"
CLOSED, EXPIRED, FAILED = "closed", "expired", "failed"
UNFINISHED = (ASSIGNED, RUNNING, COMPUTED, COMMITTED, DECLINING)
FINISHED = (SUBMITTED, REVEALED, DECLINED, CLOSED, EXPIRED, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    request_id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,              -- the model's name as the agent serves it
    request TEXT NOT NULL,            -- the assigned Request tuple (JSON), as the chain takes it back
    input_uri TEXT NOT NULL,
    block INTEGER NOT NULL,           -- where InferenceRequested was (the request's seed block)
    state TEXT NOT NULL,
    output_commitment TEXT,           -- 0x..., journaled before submitResult / commitResult
    output_uri TEXT,
    proof TEXT,                       -- 0x... calldata of the ZK proof (empty without a circuit)
    salt TEXT,                        -- 0x... salt of the sealed result (quorum requests)
    reason TEXT,                      -- decline reason or error
    tx_hash TEXT,                     -- the latest transaction (a quorum job: commit, then reveal)
    outcome TEXT,                     -- settled | refunded, once the chain closed the request
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    seconds REAL                      -- event seen -> transaction mined
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS withdrawals (tx_hash TEXT PRIMARY KEY, amount TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS channel_answers (  -- feeless requests this node answered on a model's channel
    request_id TEXT PRIMARY KEY,      -- the request message's hash
    channel TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,            -- served, or the kind of refusal (an ErrorKind value)
    at REAL NOT NULL
);
"""


def default_journal_path(network: str, address: str) -> Path:
    """Where a node's journal is kept unless told: ``$JOYNET_HOME/edge/<network>-<address>.sqlite``
    (``~/.joynet/edge/...``)."""
    return joynet_home() / "edge" / f"{network}-{address.lower()}.sqlite"


@dataclass(frozen=True)
class Job:
    request_id: int
    model: str
    request: Request
    input_uri: str
    block: int
    state: str
    output_commitment: str | None
    output_uri: str | None
    proof: str | None
    reason: str | None
    tx_hash: str | None
    outcome: str | None
    received_at: float
    updated_at: float
    seconds: float | None
    salt: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = dict(row)
        values["request"] = request_from_json(values["request"])
        return cls(**values)


def request_to_json(request: Request) -> str:
    return json.dumps(
        [
            request.id,
            "0x" + request.modelId.hex(),
            request.requester,
            str(request.escrow),
            "0x" + request.inputCommitment.hex(),
            request.deadline,
            request.seedBlock,
            request.coordinator,
            list(request.nodes),
        ]
    )


def request_from_json(text: str) -> Request:
    values = json.loads(text)
    if len(values) == 7:  # written before requests had a seed block and a coordinator: readable, not sendable
        values[6:6] = [0, "0x" + "00" * 20]
    rid, model_id, requester, escrow, commitment, deadline, seed_block, coordinator, nodes = values
    return Request(
        rid,
        bytes.fromhex(model_id[2:]),
        requester,
        int(escrow),
        bytes.fromhex(commitment[2:]),
        deadline,
        seed_block,
        coordinator,
        nodes,
    )


class JobJournal:
    """The SQLite journal (WAL mode, every write committed at once). One writer: the agent."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise JournalError(f"no journal at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "salt" not in columns:  # a journal written before quorum jobs had a salt
                self._db.execute("ALTER TABLE jobs ADD COLUMN salt TEXT")
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    # ---- identity and the event cursor ----

    def bind(self, node: str, marketplace: str, chain_id: int) -> None:
        """Ties the journal to one node of one deployment; refuses a journal of another."""
        identity = {"node": node, "marketplace": marketplace, "chain_id": str(chain_id)}
        for key, value in identity.items():
            recorded = self.meta(key)
            if recorded is None:
                self.set_meta(key, value)
            elif recorded.lower() != value.lower():
                raise JournalError(
                    f"journal {self.path} belongs to {key} {recorded}, not {value}: use another --journal"
                )

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    @property
    def cursor(self) -> int | None:
        """The last block whose events are all journaled."""
        value = self.meta("cursor")
        return None if value is None else int(value)

    @cursor.setter
    def cursor(self, block: int) -> None:
        self.set_meta("cursor", block)

    # ---- jobs ----

    def add(self, request: Request, model: str, input_uri: str, block: int) -> bool:
        """Journals an assignment; False if it already was (an event seen twice)."""
        now = time.time()
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO jobs (request_id, model, request, input_uri, block, state, received_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (request.id, model, request_to_json(request), input_uri, block, ASSIGNED, now, now),
        )
        return cursor.rowcount == 1

    def update(self, request_id: int, state: str | None = None, **fields) -> None:
        if state is not None:
            fields["state"] = state
        fields["updated_at"] = time.time()
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(f"UPDATE jobs SET {columns} WHERE request_id = ?", (*fields.values(), request_id))

    def set_request(self, request_id: int, request: Request) -> None:
        """Records the request as it now stands on chain (a drawn job's, once assigned)."""
        self.update(request_id, request=request_to_json(request))

    def forget(self, request_id: int) -> None:
        """Removes a job this node never held: a request it was drawn for whose draw went to
        another node before its result landed."""
        self._db.execute("DELETE FROM jobs WHERE request_id = ?", (request_id,))

    def get(self, request_id: int) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        return Job.from_row(row) if row else None

    def existing(self, request_id: int) -> Job:
        """The job of a request the caller has just journaled (KeyError if it is not there)."""
        job = self.get(request_id)
        if job is None:
            raise KeyError(f"request {request_id} is not in the journal")
        return job

    def jobs(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        query = "SELECT * FROM jobs"
        args: list[object] = []
        if states:
            query += f" WHERE state IN ({', '.join('?' * len(states))})"
            args.extend(states)
        query += " ORDER BY request_id DESC" if limit else " ORDER BY request_id"
        if limit:
            query += f" LIMIT {int(limit)}"
        return [Job.from_row(row) for row in self._db.execute(query, args)]

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def outcomes(self) -> dict[str, int]:
        return dict(
            self._db.execute("SELECT outcome, COUNT(*) FROM jobs WHERE outcome IS NOT NULL GROUP BY outcome").fetchall()
        )

    # ---- feeless answers ----

    def add_channel_answer(self, request_id: str, channel: str, model: str, outcome: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO channel_answers (request_id, channel, model, outcome, at) VALUES (?, ?, ?, ?, ?)",
            (request_id, channel, model, outcome, time.time()),
        )

    def channel_outcomes(self) -> dict[str, int]:
        """How many feeless requests this node answered, by outcome (served, or a refusal's kind)."""
        return dict(self._db.execute("SELECT outcome, COUNT(*) FROM channel_answers GROUP BY outcome").fetchall())

    # ---- fees ----

    def add_withdrawal(self, tx_hash: str, amount: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO withdrawals (tx_hash, amount, at) VALUES (?, ?, ?)",
            (tx_hash, str(amount), time.time()),
        )

    def withdrawn(self) -> int:
        return sum(int(row[0]) for row in self._db.execute("SELECT amount FROM withdrawals"))
