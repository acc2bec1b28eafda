"""The errors of ``joynet.chain``."""

from joynet.errors import JoyNetError


class GovernanceError(JoyNetError, RuntimeError):
    """A governance action that cannot happen in the proposal's current state."""


class DeploymentError(JoyNetError, RuntimeError):
    """A deployment file is missing, malformed, or does not belong to the connected chain."""


class MarketplaceError(JoyNetError, RuntimeError):
    """A marketplace call that cannot succeed as asked (bad argument, wrong state, timeout)."""


class DeployConfigError(JoyNetError, ValueError):
    """The deploy configuration is missing a network, a field, or has an invalid value."""


class TransactionRefusedError(JoyNetError, RuntimeError):
    """A transaction whose dry run in the pending block reverted: it was not sent. ``error``:
    the contract's custom error name when it is one of the project's, else the node's message."""

    def __init__(self, message: str, error: str):
        super().__init__(message)
        self.error = error
