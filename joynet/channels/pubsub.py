"""The transport between machines: channel messages over IPFS pubsub, through a Kubo RPC API.

Each party talks to its own IPFS daemon (``aioipfs``, any Kubo RPC API: kubo, or js-ipfs here);
the daemons are libp2p peers and gossip a channel's messages on the topic
``joynet-channel-v1/<channel id hex>``. Pubsub gives neither order nor history, so each party keeps
a validating *replica* of the channels it uses (an ``SQLiteLedger`` file of its own) and the
parties agree on one chain by two rules every replica applies alike:

* **Settling.** The candidates for the replica's next position are the messages heard for it (the
  sequence after the head, linking to the head's hash). A position settles ``settle_seconds``
  after its first candidate was heard: the candidate with the lowest message hash that the
  channel's rules accept is appended; the others lost the race. ``append`` publishes its message,
  waits for the position to settle and returns when its own message won; when another message
  won, it raises ``ChannelForkError`` and ``Channel`` rebuilds on the new head, as with the
  ledger's compare-and-append. Every party that heard the same candidates within the window
  settles the same one; a competitor heard only after its position settled is a fork this party
  ignores (logged), as readers of the ledger would.
* **History.** A party that opens a channel asks its peers for what it misses (a ``sync``
  envelope naming the next sequence it needs); each peer answers with its head and the messages
  from there, which settle like any other. A peer that hears of a longer head than its own asks
  again. A reader verifies every message it takes (signature, link, rules) whatever the peers
  send: a forged or broken message is never stored.

Envelopes on the topic, the first byte saying which: ``M`` + a channel message (its canonical
bytes, ``joynet.channels.message``); ``S`` + channel id (32) + first sequence wanted (u64, big
endian) + a nonce (16); ``H`` + channel id (32) + the answering peer's head sequence (u64, +1 so an
empty channel is 0) + the nonce of the ``S`` it answers (a party does not answer itself).

The network side runs on a thread of its own (one asyncio loop, one HTTP stream per topic), so the
``ChannelTransport`` calls stay synchronous like the ledger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joynet.channels.errors import ChannelError, ChannelForkError
from joynet.channels.ledger import SQLiteLedger
from joynet.channels.message import Message
from joynet.channels.transport import ChannelTransport

logger = logging.getLogger("joynet.channels.pubsub")

TOPIC_PREFIX = "joynet-channel-v1/"
MESSAGE, SYNC, HEAD = b"M", b"S", b"H"
SETTLE_SECONDS = 1.0
# How long opening a channel waits for a peer to say how far the channel goes.
SYNC_WAIT_SECONDS = 2.0
# How long opening a channel listens for more peers' heads after the first answer.
HEAD_GRACE_SECONDS = 0.3
# How long opening a channel waits, at most, for the history a peer announced.
CATCH_UP_SECONDS = 20.0
# How long ``append`` waits for its position to settle before giving up.
APPEND_TIMEOUT_SECONDS = 30.0
TICK_SECONDS = 0.02
_SEQUENCE = struct.Struct(">Q")
REPLICA_ENV = "JOYNET_CHANNEL_REPLICA"
NONCE_BYTES = 16


def topic_of(channel_id: bytes) -> str:
    return TOPIC_PREFIX + channel_id.hex()


def default_replica_path() -> Path | None:
    """``$JOYNET_CHANNEL_REPLICA`` (a file that outlives the process), else None: a temporary
    replica, deleted on close, filled again from the peers at the next start."""
    configured = os.environ.get(REPLICA_ENV)
    return Path(configured) if configured else None


@dataclass
class _Channel:
    """What this party knows of one channel beyond its replica."""

    candidates: dict[int, dict[bytes, tuple[Message, float]]] = field(default_factory=dict)  # seq -> hash -> (m, heard)
    refused: dict[bytes, ChannelError] = field(default_factory=dict)  # hash -> why the rules refused it
    peer_head: int = -1  # the longest head a peer announced
    heard_head: threading.Event = field(default_factory=threading.Event)
    last_sync: float = 0.0


class PubsubTransport(ChannelTransport):
    """Channel messages over IPFS pubsub (see the module docstring). ``api``: the Kubo RPC API's
    multiaddr (``/ip4/127.0.0.1/tcp/5001``); ``replica``: this party's replica file (default
    :func:`default_replica_path`). Two processes never share a replica file."""

    def __init__(self, api: str, replica: str | os.PathLike | None = None, settle_seconds: float = SETTLE_SECONDS):
        import aioipfs

        self.api = api
        self.settle_seconds = settle_seconds
        configured = Path(replica) if replica is not None else default_replica_path()
        self._temporary = configured is None
        if configured is None:
            descriptor, name = tempfile.mkstemp(prefix="joynet-replica-", suffix=".sqlite3")
            os.close(descriptor)
            configured = Path(name)
        self.replica_path = configured
        self._reader = SQLiteLedger(self.replica_path)  # the caller's thread reads through this one
        self._lock = threading.RLock()
        self._settled = threading.Condition(self._lock)
        self._channels: dict[bytes, _Channel] = {}
        self._opened: set[bytes] = set()  # channels subscribed to (by the network thread)
        self._heads: dict[bytes, int] = {}  # the replica's head of each opened channel
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="joynet-pubsub", daemon=True)
        self._client: Any = None
        self._own: set[bytes] = set()  # hashes of this party's appends waiting to settle
        self._nonces: set[bytes] = set()  # of this party's sync requests
        self._aioipfs = aioipfs
        self._thread.start()
        self._ready.wait()

    # ---- ChannelTransport ----

    def append(self, message: Message) -> None:
        message.check_size()
        self._open(message.channel_id)
        channel_id = message.channel_id
        with self._settled:
            head = self._heads[channel_id]
            if message.sequence <= head:
                raise ChannelForkError(f"sequence {message.sequence} is taken (head {head})")
            contenders = self._state(channel_id).candidates.get(message.sequence, {})
            if (
                contenders
                and time.monotonic() - min(heard for _, heard in contenders.values()) > self.settle_seconds / 2
            ):
                # The race for this position is closing: a candidate now could reach some parties
                # after they settled it. Let it settle, then build on it (Channel does, on a fork).
                self._settled.wait_for(lambda: self._heads[channel_id] >= message.sequence, APPEND_TIMEOUT_SECONDS)
                raise ChannelForkError(f"sequence {message.sequence} was being settled: message {message.id} waits")
            self._own.add(message.hash)
        self._loop.call_soon_threadsafe(self._consider, message, time.monotonic())
        self._submit(self._publish(channel_id, MESSAGE + message.to_bytes()))
        deadline = time.monotonic() + APPEND_TIMEOUT_SECONDS
        with self._settled:
            refused = self._state(channel_id).refused
            while self._heads[channel_id] < message.sequence and message.hash not in refused:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._own.discard(message.hash)
                    raise ChannelError(f"sequence {message.sequence} did not settle in {APPEND_TIMEOUT_SECONDS:g} s")
                self._settled.wait(left)
            self._own.discard(message.hash)
            if message.hash in refused:
                raise refused.pop(message.hash)
        won = self._reader.read(channel_id, message.sequence)[0]
        if won.hash != message.hash:
            raise ChannelForkError(
                f"sequence {message.sequence} went to message {won.id}: message {message.id} lost the race"
            )

    def read(self, channel_id: bytes, from_sequence: int = 0) -> list[Message]:
        self._open(channel_id)
        return self._reader.read(channel_id, from_sequence)

    def head_sequence(self, channel_id: bytes) -> int:
        self._open(channel_id)
        return self._reader.head_sequence(channel_id)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True

        async def shut_down() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.close()

        with contextlib.suppress(Exception):  # a daemon gone already: nothing left to close there
            self._submit(shut_down()).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._reader.close()
        if self._temporary:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.replica_path}{suffix}").unlink(missing_ok=True)

    # ---- opening a channel: subscribe, then catch up with the peers ----

    def _open(self, channel_id: bytes) -> None:
        with self._lock:
            if channel_id in self._opened:
                return
        self._submit(self._subscribe(channel_id)).result(timeout=60)
        state = self._state(channel_id)
        self._submit(self._request_sync(channel_id))
        if state.heard_head.wait(SYNC_WAIT_SECONDS):  # a peer has the channel: catch up with the longest
            time.sleep(HEAD_GRACE_SECONDS)  # the other peers' answers
            deadline = time.monotonic() + CATCH_UP_SECONDS
            with self._settled:
                while self._heads[channel_id] < state.peer_head and time.monotonic() < deadline:
                    self._settled.wait(deadline - time.monotonic())

    async def _request_sync(self, channel_id: bytes) -> None:
        with self._lock:
            self._state(channel_id).last_sync = time.monotonic()
            wanted = self._heads[channel_id] + 1
            nonce = os.urandom(NONCE_BYTES)
            self._nonces.add(nonce)
        await self._publish(channel_id, SYNC + channel_id + _SEQUENCE.pack(wanted) + nonce)

    # ---- the network thread ----

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._writer = SQLiteLedger(self.replica_path)  # settled messages are appended on this thread
        self._client = self._aioipfs.AsyncIPFS(maddr=self.api)
        self._loop.create_task(self._settle_forever())
        self._ready.set()
        self._loop.run_forever()
        self._writer.close()

    def _submit(self, coroutine: Coroutine[Any, Any, Any]):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _publish(self, channel_id: bytes, envelope: bytes) -> None:
        try:
            await self._client.pubsub.pub(topic_of(channel_id), envelope)
        except Exception as error:  # noqa: BLE001 - a daemon hiccup must not stop the transport
            logger.warning("could not publish on %s: %r", topic_of(channel_id)[:40], error)

    async def _subscribe(self, channel_id: bytes) -> None:
        if channel_id in self._opened:
            return
        with self._lock:
            self._heads[channel_id] = self._writer.head_sequence(channel_id)
            self._state(channel_id)
            self._opened.add(channel_id)
        started = asyncio.Event()
        self._loop.create_task(self._listen(channel_id, started))
        await asyncio.wait_for(started.wait(), timeout=30)
        # Wait (a little) until the daemon knows another party on the topic: a message published
        # before the peers learnt of each other's subscription would reach only some of them.
        deadline = time.monotonic() + SYNC_WAIT_SECONDS
        while time.monotonic() < deadline and not await self._topic_peers(channel_id):
            await asyncio.sleep(0.1)

    async def _topic_peers(self, channel_id: bytes) -> list:
        pubsub = self._client.pubsub
        try:
            answer = await pubsub.fetch_json(
                pubsub.url("pubsub/peers"), params={"arg": _multibase_topic(topic_of(channel_id))}
            )
        except Exception:  # noqa: BLE001 - an older daemon without the call: publish anyway
            return ["?"]
        return list(answer.get("Strings") or []) if isinstance(answer, dict) else []

    async def _listen(self, channel_id: bytes, started: asyncio.Event) -> None:
        """Follows the channel's topic for good (reconnecting after a broken stream)."""
        pubsub = self._client.pubsub
        while not self._closing:
            params = {"arg": _multibase_topic(topic_of(channel_id)), "discover": "true", "stream-channels": "true"}
            try:
                stream = pubsub.mjson_decode(
                    pubsub.url("pubsub/sub"),
                    method="post",
                    headers={"Connection": "Close"},
                    new_session=True,
                    timeout=60.0 * 60 * 24 * 8,
                    params=params,
                )
                # The daemon's first (empty) object confirms the subscription; give it a moment.
                self._loop.call_later(0.5, started.set)
                async for raw in stream:
                    started.set()
                    if raw.get("data"):
                        self._hear(pubsub._decode_message(raw)["data"])
            except Exception as error:  # noqa: BLE001 - the stream is opened again
                if self._closing:
                    return
                logger.warning("pubsub stream of %s broke (%r); reopening", topic_of(channel_id)[:40], error)
                await asyncio.sleep(1.0)

    def _hear(self, envelope: bytes) -> None:
        kind, body = envelope[:1], envelope[1:]
        try:
            if kind == MESSAGE:
                self._consider(Message.from_bytes(body), time.monotonic())
            elif kind == SYNC and len(body) == 32 + _SEQUENCE.size + NONCE_BYTES:
                nonce = body[32 + _SEQUENCE.size :]
                if nonce not in self._nonces:
                    self._answer_sync(body[:32], _SEQUENCE.unpack(body[32 : 32 + _SEQUENCE.size])[0], nonce)
            elif kind == HEAD and len(body) == 32 + _SEQUENCE.size + NONCE_BYTES:
                if body[32 + _SEQUENCE.size :] in self._nonces:  # an answer to this party's request
                    self._heard_head(body[:32], _SEQUENCE.unpack(body[32 : 32 + _SEQUENCE.size])[0] - 1)
        except ChannelError as error:
            logger.debug("ignored an envelope: %s", error)

    def _consider(self, message: Message, heard: float) -> None:
        """A candidate for its position (on the network thread)."""
        with self._lock:
            self._consider_locked(message, heard)

    def _consider_locked(self, message: Message, heard: float) -> None:
        if message.channel_id not in self._opened:
            return
        if message.sequence <= self._heads[message.channel_id]:
            stored = self._writer.read(message.channel_id, message.sequence)[:1]
            if stored and stored[0].hash != message.hash:
                logger.info(
                    "a competitor for settled sequence %d of %s came late: ignored",
                    message.sequence,
                    message.channel_id.hex()[:16],
                )
            return
        position = self._state(message.channel_id).candidates.setdefault(message.sequence, {})
        position.setdefault(message.hash, (message, heard))

    def _answer_sync(self, channel_id: bytes, first: int, nonce: bytes) -> None:
        if channel_id not in self._opened:
            return
        with self._lock:
            head = self._heads[channel_id]
            if head < first:
                return  # nothing to offer (a party that is itself catching up says nothing)
            messages = self._writer.read(channel_id, first)
        envelopes = [HEAD + channel_id + _SEQUENCE.pack(head + 1) + nonce] + [MESSAGE + m.to_bytes() for m in messages]

        async def send() -> None:
            for envelope in envelopes:
                await self._publish(channel_id, envelope)

        self._loop.create_task(send())

    def _heard_head(self, channel_id: bytes, head: int) -> None:
        if channel_id not in self._opened:
            return
        with self._lock:
            state = self._state(channel_id)
            state.peer_head = max(state.peer_head, head)
            state.heard_head.set()
            behind = self._heads[channel_id] < head
            ask = behind and time.monotonic() - state.last_sync > 1.0 and not state.candidates
        if ask:
            self._loop.create_task(self._request_sync(channel_id))

    async def _settle_forever(self) -> None:
        while not self._closing:
            await asyncio.sleep(TICK_SECONDS)
            with self._settled:
                if self._settle_all(time.monotonic()):
                    self._settled.notify_all()

    def _settle_all(self, now: float) -> bool:
        """Settles every position whose window closed; True when any did (under the lock)."""
        settled_any = False
        for channel_id, state in list(self._channels.items()):
            if channel_id not in self._opened:
                continue
            while True:
                position = self._heads[channel_id] + 1
                for stale in [sequence for sequence in state.candidates if sequence < position]:
                    del state.candidates[stale]
                candidates = state.candidates.get(position)
                if not candidates or now - min(heard for _, heard in candidates.values()) < self.settle_seconds:
                    break
                del state.candidates[position]
                for digest in sorted(candidates):
                    message = candidates[digest][0]
                    try:
                        self._writer.append(message)  # the channel's rules, as every reader applies them
                    except ChannelError as refused:
                        if digest in self._own:  # its writer, waiting in append, is told why
                            state.refused[digest] = refused
                        continue
                    self._heads[channel_id] = position
                    settled_any = True
                    break
                else:
                    settled_any = True  # every candidate was refused: their writers are told
                    break
        return settled_any

    def _state(self, channel_id: bytes) -> _Channel:
        return self._channels.setdefault(channel_id, _Channel())


def _multibase_topic(topic: str) -> str:
    """The topic as Kubo's RPC API (and js-ipfs's) takes it since 0.11: multibase base64url."""
    import base64

    return "u" + base64.urlsafe_b64encode(topic.encode()).decode().rstrip("=")
