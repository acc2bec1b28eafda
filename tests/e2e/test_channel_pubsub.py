"""The channel transport between machines: IPFS pubsub through real daemons (js-ipfs, libp2p peers
of each other on local ports). A party joining late reads the whole history, verified; writers on
different daemons racing for positions end with one chain everywhere, nothing lost or doubled;
forged, unlinked and malformed envelopes on the topic are never stored and stop no writer; a
feeless request and its answer cross daemons."""

import asyncio
import dataclasses
import time
import subprocess
import sys
from collections import Counter

import pytest

from helpers import PROJECT_ROOT
from helpers.channel_helpers import packet_after
from helpers.ipfs_daemon import running_ipfs_peers
from joynet.channels import Channel, ChannelIdentity, ChannelReader, NotAuthorizedError
from joynet.channels.pubsub import MESSAGE, SYNC, PubsubTransport, topic_of

WRITER = PROJECT_ROOT / "tests" / "helpers" / "channel_writer_process.py"
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
PACKETS_PER_WRITER = 8


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    with running_ipfs_peers(tmp_path_factory.mktemp("ipfs-peers"), 2) as apis:
        yield apis


@pytest.fixture
def transports(peers):
    opened = [PubsubTransport(peers[0]), PubsubTransport(peers[1])]
    yield opened
    for transport in opened:
        transport.close()


def hashes(transport, channel_id, length=None):
    """The chain as ``transport``'s replica holds it (verified), once it is ``length`` long."""
    deadline = time.monotonic() + 30
    while length is not None and transport.head_sequence(channel_id) < length - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return [message.hash for message in ChannelReader(transport, channel_id).sync()]


def test_pubsub__party_joining_late_on_another_daemon__reads_the_whole_history_verified(transports):
    here, there = transports
    author, alice = ChannelIdentity.generate(), ChannelIdentity.generate()
    channel = Channel.create(here, author, "late-joiner", private=False, open=True)
    for i in range(4):
        channel.publish(public=f"before:{i}".encode())
    late = Channel(there, alice, channel.channel_id)
    late.subscribe(b"")  # builds on the history it caught up with: one chain
    channel.receive()
    channel.publish(public=b"after")
    assert len(hashes(here, channel.channel_id)) == 7
    assert hashes(there, channel.channel_id, 7) == hashes(here, channel.channel_id)


def test_pubsub__three_processes_on_two_daemons_racing__one_chain_everywhere_nothing_lost(peers, tmp_path):
    owner = PubsubTransport(peers[0])
    channel = Channel.create(owner, ChannelIdentity.generate(), "race", private=False, open=True)
    writers = [subprocess.Popen(
        [sys.executable, str(WRITER), f"pubsub:{peers[account % 2]}", MNEMONIC, str(account), channel.channel_id.hex(),
         str(PACKETS_PER_WRITER)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
    ) for account in (1, 2, 3)]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            assert writer.stdout.readline().strip() == "done"
        final = 3 + 3 * PACKETS_PER_WRITER  # announcement, three subscriptions, the packets
        for writer in writers:
            writer.stdin.write(f"{final}\n")
            writer.stdin.flush()
        chains = [writer.stdout.readline().strip().removeprefix("chain ").split(",") for writer in writers]
    finally:
        for writer in writers:
            writer.wait(timeout=60)
    ours = ChannelReader(owner, channel.channel_id).sync()
    owner.close()
    assert all(chain == [message.hash.hex() for message in ours] for chain in chains)
    packets = Counter(message.public.decode() for message in ours[4:])
    assert packets == Counter(f"{account}:{i}" for account in (1, 2, 3) for i in range(PACKETS_PER_WRITER))


def test_pubsub__forged_unlinked_and_malformed_envelopes__never_stored_and_writers_carry_on(transports):
    here, there = transports
    author, mallory = ChannelIdentity.generate(), ChannelIdentity.generate()
    channel = Channel.create(here, author, "attacked", private=False, open=True)
    head = ChannelReader(there, channel.channel_id).sync()[-1]
    forged = packet_after(head, mallory, public=b"not subscribed")  # an unsubscribed key
    bad_signature = dataclasses.replace(packet_after(head, author, public=b"x"), signature=b"\x01" * 64)
    unlinked = packet_after(head, author, public=b"y", previous=b"\x02" * 32)

    async def inject():
        import aioipfs

        client = aioipfs.AsyncIPFS(maddr=transports[1].api)
        topic = topic_of(channel.channel_id)
        for envelope in (MESSAGE + forged.to_bytes(), MESSAGE + bad_signature.to_bytes(), MESSAGE + unlinked.to_bytes(),
                         b"M\x00garbage", SYNC + b"short", b"Z" + bytes(40)):
            await client.pubsub.pub(topic, envelope)
        await client.close()

    asyncio.run(inject())
    after = channel.publish(public=b"the author carries on")
    for transport in transports:
        stored = hashes(transport, channel.channel_id, after.sequence + 1)
        assert after.hash in stored
        assert not {forged.hash, bad_signature.hash, unlinked.hash} & set(stored)
    with pytest.raises(NotAuthorizedError):
        Channel(there, mallory, channel.channel_id).publish(public=b"never subscribed")


def test_pubsub__feeless_request_on_one_daemon_answered_from_the_other(transports):
    from joynet import IOTAInferenceHandler

    here, there = transports
    owner = IOTAInferenceHandler(wallet_seed=MNEMONIC, transport=here)
    node = IOTAInferenceHandler(wallet_seed="abandon " * 11 + "about", transport=there)

    async def scenario():
        channel_id = await owner.create_model_channel("crossing", private=False, open=True)
        await node.subscribe(channel_id)
        requester = IOTAInferenceHandler(wallet_seed="zoo " * 11 + "wrong", transport=here)
        await requester.subscribe(channel_id)
        request_id = await requester.send_request(channel_id, "crossing", {"x": 1})
        request = await node.next_request(channel_id, timeout=20)
        await node.send_response(channel_id, request.request_id, {"y": 2}, node="0x" + "ab" * 20)
        return request_id, request, await requester.wait_response(channel_id, request_id, timeout=20)

    request_id, request, response = asyncio.run(scenario())
    assert request.request_id == request_id and request.input == {"x": 1}
    assert response.output == {"y": 2} and response.responder == node.public_key
