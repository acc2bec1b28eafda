"""The channel protocol: announce, subscribe, keyload, signed and masked packets, and every
message a ledger or a reader must refuse (with its typed error, accepting nothing)."""

import dataclasses

import pytest
from helpers.channel_helpers import UncheckedTransport, packet_after, signed

from joynet.channels import (
    BrokenLinkError,
    Channel,
    ChannelForkError,
    ChannelGapError,
    ChannelIdentity,
    ChannelReader,
    InvalidMessageError,
    InvalidSignatureError,
    MaskedPayloadAccessError,
    Message,
    MessageType,
    NotAuthorizedError,
    ReplayError,
    SQLiteLedger,
    WrongChannelError,
    derive_channel_id,
)
from joynet.channels.message import MAX_MESSAGE_BYTES, ZERO_HASH, Announcement


@pytest.fixture
def ledger(tmp_path):
    ledger = SQLiteLedger(tmp_path / "channels.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture
def author():
    return ChannelIdentity.generate()


@pytest.fixture
def alice_identity():
    return ChannelIdentity.generate()


@pytest.fixture
def mallory():
    return ChannelIdentity.generate()


@pytest.fixture
def channel(ledger, author, alice_identity):
    """A private channel on which alice subscribed and was admitted by a keyload."""
    channel = Channel.create(ledger, author, "mymodel")
    Channel(ledger, alice_identity, channel.channel_id).subscribe(b"alice's credential")
    channel.receive()
    channel.admit([alice_identity.public_key])
    channel.receive()
    return channel


def head(ledger, channel):
    return ledger.read(channel.channel_id)[-1]


def assert_refused(ledger, channel, message, error):
    before = ledger.head_sequence(channel.channel_id)
    with pytest.raises(error):
        ledger.append(message)
    assert ledger.head_sequence(channel.channel_id) == before


# ---- round trip ----


def test_round_trip__private_channel__admitted_subscriber_reads_masked_and_public_parts(
        ledger, channel, author, alice_identity):
    alice_channel = Channel(ledger, alice_identity, channel.channel_id)
    sent = alice_channel.publish(public=b"model=mymodel", masked=b"secret input")
    answer = channel.publish(public=b"", masked=b"secret output")

    received = ChannelReader(ledger, channel.channel_id).sync()
    author_view = ChannelReader(ledger, channel.channel_id, author)
    author_view.sync()

    assert [m.type for m in received] == [
        MessageType.ANNOUNCE, MessageType.SUBSCRIBE, MessageType.KEYLOAD, MessageType.PACKET, MessageType.PACKET
    ]
    assert [m.sequence for m in received] == list(range(5))
    assert all(m.previous == p.hash for p, m in zip(received, received[1:]))
    assert received[3].public == b"model=mymodel"
    alice_view = ChannelReader(ledger, channel.channel_id, alice_identity)
    alice_view.sync()
    assert author_view.open_masked(sent) == b"secret input"
    assert alice_view.open_masked(answer) == b"secret output"
    assert alice_view.state.subscribers[alice_identity.public_key].credential == b"alice's credential"


def test_announce__same_author_and_name__reopens_the_channel_without_a_second_announcement(ledger, channel, author):
    reopened = Channel.create(ledger, author, "mymodel")
    assert reopened.channel_id == channel.channel_id == derive_channel_id(author.public_key, "mymodel")
    assert [m.type for m in ledger.read(channel.channel_id)].count(MessageType.ANNOUNCE) == 1


def test_encode__any_message__decodes_to_itself_and_hash_is_sha256_of_body(channel, ledger):
    import hashlib

    for message in ledger.read(channel.channel_id):
        assert Message.from_bytes(message.to_bytes()) == message
        assert message.hash == hashlib.sha256(message.to_bytes()[:-64]).digest()


def test_decode__trailing_or_truncated_bytes__refused(channel, ledger):
    wire = ledger.read(channel.channel_id)[0].to_bytes()
    with pytest.raises(InvalidMessageError):
        Message.from_bytes(wire + b"\0")
    with pytest.raises(InvalidMessageError):
        Message.from_bytes(wire[:-1])


def test_decode__version_1_message__refused(channel, ledger):
    # Version 1 wrapped keyloads by hand (X25519, HKDF, ChaCha20-Poly1305); version 2 uses HPKE.
    wire = ledger.read(channel.channel_id)[0].to_bytes()
    with pytest.raises(InvalidMessageError, match="unsupported message version 1"):
        Message.from_bytes(bytes([1]) + wire[1:])


def test_open_keyload__entry_moved_to_another_recipient_or_channel__refused(author, alice_identity, mallory):
    from joynet.channels.masking import new_keyload, open_keyload
    from joynet.channels.message import Keyload

    channel_id, other_channel = bytes(32), bytes([1] * 32)
    recipients = {who.public_key: who.exchange_public_key for who in (alice_identity, mallory)}
    keyload, channel_key = new_keyload(channel_id, recipients)
    assert open_keyload(channel_id, keyload, alice_identity) == channel_key
    assert open_keyload(channel_id, Keyload.decode(keyload.encode()), mallory) == channel_key
    with pytest.raises(InvalidMessageError):  # bound to its channel
        open_keyload(other_channel, keyload, alice_identity)
    swapped = Keyload({mallory.public_key: keyload.wrapped_keys[alice_identity.public_key]})
    with pytest.raises(InvalidMessageError):  # sealed to alice's key
        open_keyload(channel_id, swapped, mallory)
    # Sealed to mallory's key but for alice's slot (the info names the recipient): refused too.
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    from joynet.channels.masking import _SUITE, _info

    relabelled = _SUITE.encrypt(channel_key, X25519PublicKey.from_public_bytes(mallory.exchange_public_key),
                                _info(channel_id, alice_identity.public_key))
    with pytest.raises(InvalidMessageError):
        open_keyload(channel_id, Keyload({mallory.public_key: relabelled}), mallory)
    assert open_keyload(channel_id, keyload, author) is None  # not a recipient


def test_publish__payload_over_the_size_limit__refused_before_appending(ledger, channel):
    with pytest.raises(InvalidMessageError, match="IPFS"):
        channel.publish(public=b"x" * MAX_MESSAGE_BYTES)


# ---- refused by the ledger, nothing stored ----


def test_append__forged_signature__invalid_signature_and_nothing_stored(ledger, channel, author):
    forged = packet_after(head(ledger, channel), author)
    forged = dataclasses.replace(forged, signature=bytes([forged.signature[0] ^ 1]) + forged.signature[1:])
    assert_refused(ledger, channel, forged, InvalidSignatureError)


def test_append__payload_changed_after_signing__invalid_signature(ledger, channel, author):
    message = dataclasses.replace(packet_after(head(ledger, channel), author), public=b"changed")
    assert_refused(ledger, channel, message, InvalidSignatureError)


def test_append__sender_key_swapped_for_the_authors__invalid_signature(ledger, channel, author, mallory):
    message = packet_after(head(ledger, channel), mallory, sender=author.public_key)
    assert_refused(ledger, channel, message, InvalidSignatureError)


def test_append__previous_hash_not_the_head__broken_link(ledger, channel, author):
    message = packet_after(head(ledger, channel), author, previous=ledger.read(channel.channel_id)[0].hash)
    assert_refused(ledger, channel, message, BrokenLinkError)


def test_append__sequence_skips_ahead__gap(ledger, channel, author):
    last = head(ledger, channel)
    message = packet_after(last, author, sequence=last.sequence + 2)
    assert_refused(ledger, channel, message, ChannelGapError)


def test_append__same_message_twice__replay(ledger, channel, author):
    message = packet_after(head(ledger, channel), author)
    ledger.append(message)
    assert_refused(ledger, channel, message, ReplayError)


def test_append__second_message_at_a_taken_sequence__fork(ledger, channel, author):
    last = head(ledger, channel)
    ledger.append(packet_after(last, author, public=b"first"))
    assert_refused(ledger, channel, packet_after(last, author, public=b"second"), ChannelForkError)


def test_apply__message_of_another_channel__wrong_channel_and_state_unchanged(ledger, channel, author):
    from joynet.channels import ChannelState

    other = Channel.create(ledger, author, "other")
    state = ChannelState(other.channel_id)
    with pytest.raises(WrongChannelError):
        state.apply(ledger.read(channel.channel_id)[0])
    assert state.last_sequence == -1


def test_publish__writer_never_admitted__not_authorized(ledger, channel, mallory):
    intruder = Channel(ledger, mallory, channel.channel_id)
    intruder.subscribe()
    before = ledger.head_sequence(channel.channel_id)
    with pytest.raises(NotAuthorizedError):
        intruder.publish(public=b"spam")
    assert ledger.head_sequence(channel.channel_id) == before


def test_append__keyload_from_a_subscriber__not_authorized(ledger, channel, alice_identity):
    from joynet.channels.masking import new_keyload

    keyload, _ = new_keyload(channel.channel_id, {alice_identity.public_key: alice_identity.exchange_public_key})
    message = packet_after(head(ledger, channel), alice_identity, type=MessageType.KEYLOAD, public=keyload.encode())
    assert_refused(ledger, channel, message, NotAuthorizedError)


def test_admit__key_that_never_subscribed__not_authorized(ledger, channel, mallory):
    with pytest.raises(NotAuthorizedError):
        channel.admit([mallory.public_key])


def test_announce__name_not_matching_the_channel_id__not_authorized(tmp_path, author, mallory):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    channel_id = derive_channel_id(author.public_key, "mymodel")
    # mallory announces author's channel id with her own key
    announcement = Announcement("mymodel", True, mallory.exchange_public_key).encode()
    message = signed(mallory, Message(MessageType.ANNOUNCE, channel_id, 0, ZERO_HASH, mallory.public_key, announcement))
    with pytest.raises(NotAuthorizedError):
        ledger.append(message)
    assert ledger.head_sequence(channel_id) == -1


def test_publish__subscriber_left_out_of_the_latest_keyload__not_authorized(ledger, channel, alice_identity, mallory):
    Channel(ledger, mallory, channel.channel_id).subscribe()
    channel.receive()
    channel.admit([mallory.public_key])  # a new keyload without alice revokes her
    with pytest.raises((NotAuthorizedError, MaskedPayloadAccessError)):
        Channel(ledger, alice_identity, channel.channel_id).publish(public=b"still here?")


# ---- open channels (the network serves them: no author online to admit anyone) ----


@pytest.fixture
def open_channel(ledger, author):
    return Channel.create(ledger, author, "served-by-the-network", private=False, open=True)


def test_publish__subscriber_of_an_open_channel__accepted_without_a_keyload(ledger, open_channel, alice_identity):
    alice = Channel(ledger, alice_identity, open_channel.channel_id)
    alice.subscribe(b"credential")
    alice.receive()
    assert alice.admitted
    message = alice.publish(public=b"request")
    assert ChannelReader(ledger, open_channel.channel_id).sync()[-1].hash == message.hash


def test_publish__open_channel_key_that_never_subscribed__not_authorized(ledger, open_channel, mallory):
    message = packet_after(head(ledger, open_channel), mallory, public=b"spam")
    assert_refused(ledger, open_channel, message, NotAuthorizedError)


def test_publish__masked_part_on_an_open_channel_from_a_subscriber__not_authorized(
    ledger, open_channel, alice_identity, mallory
):
    Channel(ledger, alice_identity, open_channel.channel_id).subscribe()
    Channel(ledger, mallory, open_channel.channel_id).subscribe()
    open_channel.receive()
    keyload = open_channel.admit([alice_identity.public_key])
    # mallory moves a masked part onto her own packet: only the keyload's recipients seal masked parts
    sealed = Channel(ledger, alice_identity, open_channel.channel_id).publish(masked=b"for the admitted")
    message = packet_after(sealed, mallory, public=b"", masked=sealed.masked)
    assert keyload.hash != message.hash
    assert_refused(ledger, open_channel, message, NotAuthorizedError)


@pytest.mark.parametrize("flags", [0x03, 0x04, 0x80])
def test_announce__private_and_open_or_unknown_flags__refused(flags, author):
    public = bytes([flags]) + author.exchange_public_key + b"mymodel"
    with pytest.raises(InvalidMessageError, match="flags"):
        Announcement.decode(public)
    with pytest.raises(InvalidMessageError, match="not both"):
        Announcement("mymodel", True, author.exchange_public_key, open=True).encode()


# ---- masked payloads ----


def test_open_masked__reader_never_admitted__masked_payload_access_error(ledger, channel, mallory):
    secret = channel.publish(masked=b"for admitted subscribers only")
    Channel(ledger, mallory, channel.channel_id).subscribe()
    outsider = ChannelReader(ledger, channel.channel_id, mallory)
    outsider.sync()
    with pytest.raises(MaskedPayloadAccessError, match="only subscribers"):
        outsider.open_masked(secret)
    with pytest.raises(MaskedPayloadAccessError):
        ChannelReader(ledger, channel.channel_id).open_masked(secret)


def test_open_masked__masked_part_moved_to_another_message__refused(ledger, channel, alice_identity):
    secret = channel.publish(masked=b"secret")
    moved = packet_after(secret, ChannelIdentity.generate(), masked=secret.masked)
    reader = ChannelReader(ledger, channel.channel_id, alice_identity)
    reader.sync()
    with pytest.raises(MaskedPayloadAccessError):
        reader.open_masked(moved)


def test_publish_masked__identity_not_admitted__refused_before_appending(ledger, channel, mallory):
    Channel(ledger, mallory, channel.channel_id).subscribe()
    with pytest.raises(MaskedPayloadAccessError):
        Channel(ledger, mallory, channel.channel_id).publish(masked=b"x")


# ---- readers on a transport that checks nothing (what the tangle gives) ----


@pytest.fixture
def history(ledger, channel, author, alice_identity):
    """A valid chain of six messages, copied onto an unchecking transport."""
    Channel(ledger, alice_identity, channel.channel_id).publish(public=b"request")
    channel.publish(public=b"response")
    return ledger.read(channel.channel_id)


def reader_stops_at(messages, channel_id, error):
    reader = ChannelReader(UncheckedTransport(messages), channel_id)
    accepted = []
    with pytest.raises(error):
        for message in reader.verified_messages():
            accepted.append(message)
    return reader, accepted


def test_read__message_missing__gap_reported_not_skipped(history):
    reader, accepted = reader_stops_at(history[:3] + history[4:], history[0].channel_id, ChannelGapError)
    assert [m.sequence for m in accepted] == [0, 1, 2]
    assert reader.state.last_sequence == 2
    with pytest.raises(ChannelGapError):  # asking again reports it again
        reader.sync()


def test_read__messages_reordered__gap_reported_and_nothing_after_accepted(history):
    reordered = history[:3] + [history[4], history[3]]
    reader, _ = reader_stops_at(reordered, history[0].channel_id, ChannelGapError)
    assert reader.state.last_sequence == 2


def test_read__two_messages_at_one_sequence__fork_reported(history, author):
    rival = packet_after(history[3], author, public=b"rival")  # also sequence 4, also linked to 3
    reader, _ = reader_stops_at(history[:5] + [rival], history[0].channel_id, ChannelForkError)
    assert reader.state.last_sequence == 4


def test_read__message_delivered_twice__replay_reported(history):
    reader, _ = reader_stops_at(history[:4] + [history[3]], history[0].channel_id, ReplayError)
    assert reader.state.last_sequence == 3


def test_read__forged_message__invalid_signature_and_state_unchanged(history, author):
    forged = dataclasses.replace(history[4], public=b"forged")
    reader, _ = reader_stops_at(history[:4] + [forged], history[0].channel_id, InvalidSignatureError)
    assert reader.state.hashes == [m.hash for m in history[:4]]


def test_read__relinked_to_an_older_message__broken_link(history, author):
    relinked = packet_after(history[3], author, previous=history[1].hash)
    reader_stops_at(history[:4] + [relinked], history[0].channel_id, BrokenLinkError)


def test_receive__bad_message_after_good_ones__good_ones_delivered_then_error(history, author):
    transport = UncheckedTransport(history[:4] + [dataclasses.replace(history[4], public=b"forged")])
    channel = Channel(transport, author, history[0].channel_id)
    assert [m.sequence for m in channel.receive()] == [0, 1, 2, 3]
    with pytest.raises(InvalidSignatureError):
        channel.receive()
