"""The errors of ``joynet.chain``."""

from joynet.errors import JoyNetError


class GovernanceError(JoyNetError, RuntimeError):
    """A governance action that cannot happen in the proposal's current state."""


class ProposalStateError(GovernanceError):
    """A vote, queue or execution asked of a proposal in a state that does not allow it, and
    nothing was sent. ``state``: its state (a ``joynet.chain.dao.ProposalState``); the message
    says what it waits for (the block voting opens or closes at, say)."""

    def __init__(self, message: str, state):
        super().__init__(message)
        self.state = state


class TimelockNotReadyError(ProposalStateError):
    """An execution asked of a queued proposal before the timelock's delay is over, and nothing
    was sent. ``seconds_left``: until ``eta`` (the unix time it becomes executable)."""

    def __init__(self, message: str, state, seconds_left: int, eta: int):
        super().__init__(message, state)
        self.seconds_left, self.eta = seconds_left, eta


class DeploymentError(JoyNetError, RuntimeError):
    """A deployment file is missing, malformed, or does not belong to the connected chain."""


class MarketplaceError(JoyNetError, RuntimeError):
    """A marketplace call that cannot succeed as asked (bad argument, wrong state, timeout)."""


class AccountError(JoyNetError, ValueError):
    """An account option (or ``$JOYNET_ACCOUNT``) that names no usable account."""


class DeployConfigError(JoyNetError, ValueError):
    """The deploy configuration is missing a network, a field, or has an invalid value."""


class TransactionPendingError(JoyNetError, RuntimeError):
    """A transaction that was sent but not mined within the wait: it is in the pool (it may
    still be mined) or was dropped from it. ``tx_hash``: its hash."""

    def __init__(self, message: str, tx_hash: str):
        super().__init__(message)
        self.tx_hash = tx_hash


class TransactionRevertedError(JoyNetError, RuntimeError):
    """A transaction that passed its dry run but reverted when mined: another account's
    transaction changed the state in between. ``tx_hash``: its hash."""

    def __init__(self, message: str, tx_hash: str):
        super().__init__(message)
        self.tx_hash = tx_hash


class TransactionRefusedError(JoyNetError, RuntimeError):
    """A transaction whose dry run in the pending block reverted: it was not sent. ``error``:
    the contract's custom error name when it is one of the project's, else the node's message."""

    def __init__(self, message: str, error: str):
        super().__init__(message)
        self.error = error
