"""The embedded SQLite ledger shared by several OS processes."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import joynet
from helpers import PROJECT_ROOT
from joynet.channels import Channel, ChannelIdentity, ChannelReader, MessageType, SQLiteLedger, default_ledger_path

MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WRITER = PROJECT_ROOT / "tests" / "helpers" / "channel_writer_process.py"
WRITER_ACCOUNTS = (1, 2, 3)
PACKETS_PER_WRITER = 40


def start_writer(ledger_path, account, channel_id, count):
    # The child imports the same joynet as this test (a worktree's, not necessarily the installed one).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(joynet.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(ledger_path), MNEMONIC, str(account), channel_id.hex(), str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )


def test_append__three_processes_race_on_one_channel__no_message_lost_or_duplicated_and_chain_consistent(tmp_path):
    ledger_path = tmp_path / "shared.sqlite3"
    ledger = SQLiteLedger(ledger_path)
    author = ChannelIdentity.from_mnemonic(MNEMONIC, account=0)
    channel = Channel.create(ledger, author, "race")
    writers = [ChannelIdentity.from_mnemonic(MNEMONIC, account=a) for a in WRITER_ACCOUNTS]
    for writer in writers:
        Channel(ledger, writer, channel.channel_id).subscribe()
    channel.admit([w.public_key for w in writers])

    processes = [start_writer(ledger_path, a, channel.channel_id, PACKETS_PER_WRITER) for a in WRITER_ACCOUNTS]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:  # release all writers at once
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0 and out.strip() == "done"

    messages = ChannelReader(SQLiteLedger(ledger_path), channel.channel_id).sync()  # verifies every link
    packets = [m.public.decode() for m in messages if m.type is MessageType.PACKET]
    expected = {f"{a}:{i}" for a in WRITER_ACCOUNTS for i in range(PACKETS_PER_WRITER)}
    assert len(packets) == len(expected) and set(packets) == expected
    assert [m.sequence for m in messages] == list(range(len(messages)))
    senders = [m.sender for m in messages if m.type is MessageType.PACKET]
    assert Counter(senders) == Counter({w.public_key: PACKETS_PER_WRITER for w in writers})


def test_append__two_ledger_handles_one_file__second_sees_first_and_compare_and_append_holds(tmp_path):
    path = tmp_path / "l.sqlite3"
    first, second = SQLiteLedger(path), SQLiteLedger(path)
    author = ChannelIdentity.generate()
    channel = Channel.create(first, author, "shared")
    stale = Channel(second, author, channel.channel_id)
    stale.receive()
    channel.publish(public=b"from first")  # moves the head behind stale's back
    published = stale.publish(public=b"from second")  # loses one race, catches up, rebuilds
    assert published.sequence == 2
    assert [m.public for m in first.read(channel.channel_id)][1:] == [b"from first", b"from second"]


def test_default_ledger_path__env_variable__wins(monkeypatch, tmp_path):
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(tmp_path / "x.sqlite3"))
    assert default_ledger_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("JOYNET_CHANNEL_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / "joynet" / "channels.sqlite3"


def test_open__new_ledger__wal_mode_and_unique_channel_sequence(tmp_path):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    schema = ledger._db.execute("SELECT sql FROM sqlite_master WHERE name = 'channel_messages'").fetchone()[0]
    assert "UNIQUE (channel_id, sequence)" in schema


def test_follow__message_appended_later__yielded_after_waiting(tmp_path):
    import asyncio

    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    channel = Channel.create(ledger, ChannelIdentity.generate(), "followed")

    async def scenario():
        assert not await ledger.wait_for(channel.channel_id, 0, timeout=0.05)
        follower = ledger.follow(channel.channel_id, from_sequence=1)
        later = asyncio.get_running_loop().call_later(0.05, channel.publish, b"late")
        message = await asyncio.wait_for(follower.__anext__(), timeout=5)
        later.cancel()
        return message

    message = asyncio.run(scenario())
    assert message.sequence == 1 and message.public == b"late"


class _RacingLedger:
    """A ledger where another process appends the very message we send just before we do."""

    def __init__(self, ledger):
        self.ledger, self.raced = ledger, False

    def __getattr__(self, name):
        return getattr(self.ledger, name)

    def append(self, message):
        if not self.raced:
            self.raced = True
            self.ledger.append(message)  # the other writer wins the race with the same bytes
        self.ledger.append(message)


def test_create__same_key_announced_by_another_process_meanwhile__opens_the_channel(tmp_path):
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite3")
    identity = ChannelIdentity(b"\x07" * 32)
    racing = _RacingLedger(ledger)
    channel = Channel.create(racing, identity, "board", private=False)
    assert racing.raced
    assert channel.state.announcement is not None and channel.state.announcement.name == "board"
    channel.publish(public=b"after the race")
    messages = list(ChannelReader(ledger, channel.channel_id).verified_messages())
    assert [m.type for m in messages] == [MessageType.ANNOUNCE, MessageType.PACKET]
