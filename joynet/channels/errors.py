"""Typed errors of the channel protocol.

A reader or the ledger raises one of these instead of skipping a message it cannot accept, so
that a gap, a fork or a forgery is always reported, never silently papered over.
"""

from joynet.errors import JoyNetError


class ChannelError(JoyNetError):
    """Base of every channel protocol error."""


class InvalidMessageError(ChannelError):
    """The bytes are not a well-formed channel message, or break a rule of its type."""


class WrongChannelError(InvalidMessageError):
    """The message belongs to another channel (a replay across channels is refused here)."""


class InvalidSignatureError(ChannelError):
    """The Ed25519 signature does not verify for the sender's key."""


class ReplayError(ChannelError):
    """A message that was already accepted was presented again."""


class ChannelForkError(ChannelError):
    """A second, different message claims a position of the chain that is already taken.

    On the embedded ledger this is also what a writer that lost a compare-and-append race gets:
    it rebuilds its message on the new head and tries again.
    """


class ChannelGapError(ChannelError):
    """A message skips sequence numbers: something between the head and it is missing."""

    def __init__(self, expected: int, got: int):
        super().__init__(f"gap in the channel: expected sequence {expected}, got {got}")
        self.expected = expected
        self.got = got


class BrokenLinkError(ChannelError):
    """The message's previous-hash does not name the message before it."""


class NotAuthorizedError(ChannelError):
    """The sender may not send this kind of message on this channel."""


class MaskedPayloadAccessError(ChannelError):
    """The reader holds no key for a masked payload: it was not a recipient of the keyload."""


class UnknownChannelError(ChannelError):
    """No announcement of this channel has been seen."""


class IOTANodeUnavailable(ChannelError):
    """The IOTA transport was asked to reach the network but has no node to talk to."""


class AdmissionRefusedError(JoyNetError, PermissionError):
    """The channel's author refused a subscription (raised by a policy with the reason, and by
    ``send_request`` on the refused subscriber's side)."""
