"""The errors of ``joynet.governance``."""

from joynet.chain.errors import AccountError, GovernanceError
from joynet.errors import JoyNetError

__all__ = ["AccountError", "AlreadyVoted", "CallWouldRevert", "PolicyError", "UnknownProposal"]


class PolicyError(JoyNetError, ValueError):
    """A voter policy file that cannot be read, or that names what the protocol does not have."""


class UnknownProposal(GovernanceError):
    """A proposal id that names no proposal of the DAO."""


class AlreadyVoted(GovernanceError):
    """A vote from an account that has already voted on the proposal."""


class CallWouldRevert(GovernanceError):
    """A proposed call that would revert when the timelock executes it."""
