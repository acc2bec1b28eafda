"""The IOTA transport up to the network: payloads and blocks built offline with iota-sdk, and a
clear error, without any connection attempt, when no node is configured. No IOTA node is
reachable from this machine: posting itself is not tested here."""

import pytest
from iota_sdk import Block, Utils

from joynet import IOTAInferenceHandler
from joynet.channels import Channel, ChannelIdentity, IOTANodeUnavailable, SQLiteLedger
from joynet.channels.iota import IOTATransport, block_with_message, channel_tag, message_from_payload, tagged_data_payload
from joynet.channels.message import MAX_MESSAGE_BYTES, InvalidMessageError

MNEMONIC = "abandon " * 11 + "about"
STARDUST_MAX_BLOCK_BYTES = 32_768
PARENTS = ["0x" + f"{i:02x}" * 32 for i in range(1, 9)]  # Stardust allows at most 8 parents


@pytest.fixture
def message(tmp_path):
    channel = Channel.create(SQLiteLedger(tmp_path / "l.sqlite3"), ChannelIdentity.generate(), "mymodel")
    return channel.publish(public=b"request")


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything constructs an iota-sdk Client (the thing that talks to nodes)."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach an IOTA node")

    monkeypatch.setattr("iota_sdk.Client", refuse)
    monkeypatch.delenv("IOTA_NODE_URL", raising=False)


def test_tagged_data_payload__channel_message__tag_names_channel_and_data_is_the_wire_bytes(message):
    payload = tagged_data_payload(message)
    assert payload.tag == "0x" + channel_tag(message.channel_id).hex()
    assert len(bytes.fromhex(payload.tag[2:])) <= 64  # Stardust's tag limit
    assert bytes.fromhex(payload.data[2:]) == message.to_bytes()
    assert message_from_payload(payload, message.channel_id) == message


def test_block_with_message__serialized_by_iota_sdk__carries_the_message_and_round_trips(message):
    block = block_with_message(message, PARENTS[:2])
    raw = bytes(Utils.block_bytes(block))
    assert message.to_bytes() in raw
    assert Utils.block_id(block).startswith("0x")
    decoded = Block.from_dict(block.as_dict())
    assert message_from_payload(decoded.payload, message.channel_id) == message


def test_block_with_message__largest_message_and_eight_parents__fits_a_stardust_block(message):
    import dataclasses

    filler = MAX_MESSAGE_BYTES - len(message.to_bytes())
    largest = dataclasses.replace(message, public=message.public + b"x" * filler)
    assert len(largest.to_bytes()) == MAX_MESSAGE_BYTES
    assert len(bytes(Utils.block_bytes(block_with_message(largest, PARENTS)))) <= STARDUST_MAX_BLOCK_BYTES


def test_message_from_payload__other_channels_tag__refused(message):
    with pytest.raises(InvalidMessageError):
        message_from_payload(tagged_data_payload(message), bytes(32))


def test_append__no_node_configured__iota_node_unavailable_without_connecting(message, no_network):
    transport = IOTATransport()
    with pytest.raises(IOTANodeUnavailable, match="IOTA_NODE_URL"):
        transport.append(message)
    with pytest.raises(IOTANodeUnavailable):
        transport.read(message.channel_id)


def test_handler__node_url_given__uses_the_iota_transport(no_network):
    handler = IOTAInferenceHandler(node_url="http://iota-node.invalid:14265", wallet_seed=MNEMONIC)
    assert isinstance(handler.transport, IOTATransport)
    assert handler.transport.node_url == "http://iota-node.invalid:14265"


def test_create_model_channel__iota_transport_without_node__iota_node_unavailable(no_network):
    import asyncio

    handler = IOTAInferenceHandler(wallet_seed=MNEMONIC, transport=IOTATransport())
    with pytest.raises(IOTANodeUnavailable):
        asyncio.run(handler.create_model_channel("mymodel", private=True))


def test_iota_transport__env_node_url__picked_up(monkeypatch):
    monkeypatch.setenv("IOTA_NODE_URL", "http://127.0.0.1:14265")
    assert IOTATransport().node_url == "http://127.0.0.1:14265"


def test_message_from_payload__truncated_data__refused(message):
    payload = tagged_data_payload(message)
    payload.data = payload.data[:-2]
    with pytest.raises(InvalidMessageError):
        message_from_payload(payload, message.channel_id)


def test_node_url__sqlite_url__the_embedded_ledger_at_that_path_stands_in_for_a_node(tmp_path):
    import asyncio

    path = tmp_path / "stand-in" / "channels.sqlite3"
    handler = IOTAInferenceHandler(node_url=f"sqlite://{path}", wallet_seed=MNEMONIC)
    assert isinstance(handler.transport, SQLiteLedger) and handler.transport.path == path
    channel_id = asyncio.run(handler.create_model_channel("mymodel"))
    # another process on the machine (an edge agent) reads it from the same file
    assert SQLiteLedger(path).head_sequence(bytes.fromhex(channel_id[2:])) == 0
    assert isinstance(IOTAInferenceHandler(node_url="http://127.0.0.1:14265", wallet_seed=MNEMONIC).transport,
                      IOTATransport)
