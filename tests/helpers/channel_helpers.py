"""Helpers shared by the channel tests: a tangle-like transport and hand-built messages."""

import dataclasses

from joynet.channels import ChannelIdentity, ChannelTransport, Message, MessageType


class UncheckedTransport(ChannelTransport):
    """Stores whatever is posted, in posting order, like a tangle: no compare-and-append, no
    validation. It lets a test hand a reader forged, reordered, duplicated or missing messages."""

    def __init__(self, messages=()):
        self.messages = list(messages)

    def append(self, message: Message) -> None:
        self.messages.append(message)

    def read(self, channel_id: bytes, from_sequence: int = 0) -> list[Message]:
        return [m for m in self.messages if m.channel_id == channel_id and m.sequence >= from_sequence]

    def head_sequence(self, channel_id: bytes) -> int:
        return max((m.sequence for m in self.messages if m.channel_id == channel_id), default=-1)


def signed(identity: ChannelIdentity, message: Message) -> Message:
    return dataclasses.replace(message, signature=identity.sign(message.signing_payload()))


def packet_after(head: Message, signer: ChannelIdentity, public: bytes = b"hello", **changes) -> Message:
    """A signed packet that correctly follows ``head`` unless ``changes`` say otherwise."""
    fields = dict(
        type=MessageType.PACKET, channel_id=head.channel_id, sequence=head.sequence + 1,
        previous=head.hash, sender=signer.public_key, public=public,
    )
    fields.update(changes)
    return signed(signer, Message(**fields))
