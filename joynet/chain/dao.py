"""``joynet.ModelGovernanceDAO``: the DAO client with the original design's async API.

    dao = ModelGovernanceDAO(account=voter)             # address from deployments/<network>.json
    proposal_id = await dao.propose(targets=[...], values=[0], calldata=[...], description="...")
    await dao.wait_for_state(proposal_id, ProposalState.Active)     # the voting delay
    await dao.castVote(proposal_id, True)               # True: for, False: against, or a VoteType
    await dao.wait_for_state(proposal_id, ProposalState.Succeeded)  # the voting period
    await dao.queue(proposal_id)                        # after the vote succeeded
    await dao.wait_for_eta(proposal_id)                 # the timelock's delay
    await dao.execute(proposal_id)                      # by id: the governor keeps the actions
    dao.state(proposal_id)                              # ProposalState.Executed

Without ``account=`` the client signs with the account ``$JOYNET_ACCOUNT`` names. One call may be
given as itself (``calldata=<bytes>``) or as lists of one. A vote, queue or execution the
proposal's state does not allow raises ``ProposalStateError`` saying what it waits for, an early
execution ``TimelockNotReadyError`` ("timelock: 42 s left (ETA ...)"), and nothing is sent.
It talks to the chain through Ape (the connected provider and an Ape account). Transactions run
in a worker thread so that an agent's event loop keeps serving while one is mined.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from joynet.chain.contract_types import container
from joynet.chain.deployment_file import load_deployment
from joynet.chain.errors import GovernanceError, ProposalStateError, TimelockNotReadyError
from joynet.chain.signing import SigningClient

# How often the waits (``wait_for_state``, ``wait_for_eta``) read the chain.
WAIT_POLL_SECONDS = 0.5


class ProposalState(enum.IntEnum):
    """OpenZeppelin Governor's ``ProposalState``, by name."""

    Pending = 0
    Active = 1
    Canceled = 2
    Defeated = 3
    Succeeded = 4
    Queued = 5
    Expired = 6
    Executed = 7


class VoteType(enum.IntEnum):
    """GovernorCountingSimple's support values."""

    Against = 0
    For = 1
    Abstain = 2


# On a chain that mines only when asked (a local anvil) blocks have no natural pace; time left
# in blocks is then shown in seconds at the supernet's pace.
DEFAULT_SECONDS_PER_BLOCK = 2


def _support(vote: bool | int | VoteType) -> VoteType:
    if isinstance(vote, bool):
        return VoteType.For if vote else VoteType.Against
    return VoteType(int(vote))


Actions = tuple[list[str], list[int], list[bytes]]


def proposal_actions(
    targets: Sequence[str] | str, values: Sequence[int] | int, calldata: Sequence[bytes | str] | bytes | str
) -> Actions:
    """A proposal's (targets, values, calldatas) as the Governor takes them: one call may be given
    as itself (a target, a value, one encoded call as bytes or 0x-hex) or as lists of one.
    GovernanceError when the lists are empty or of different lengths."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    values = [values] if isinstance(values, int) else list(values)
    calls = [calldata] if isinstance(calldata, (bytes, bytearray, str)) else list(calldata)
    encoded = [bytes.fromhex(call.removeprefix("0x")) if isinstance(call, str) else bytes(call) for call in calls]
    if not (len(targets) == len(values) == len(encoded)) or not targets:
        raise GovernanceError(
            f"targets, values and calldata must be non-empty and of one length "
            f"(got {len(targets)}, {len(values)}, {len(encoded)})"
        )
    return targets, values, encoded


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ModelGovernanceDAO(SigningClient):
    """Client of the deployed ``ModelGovernanceDAO`` governor and its timelock."""

    error_type = GovernanceError

    def __init__(self, address: str | None = None, account: Any = None):
        """``address``: the governor (default: from the connected network's deployment file);
        ``account``: the Ape account that signs (needed for everything but reads)."""
        if address is None:
            address = load_deployment().address("ModelGovernanceDAO")
        super().__init__(account)
        self.contract = container("ModelGovernanceDAO").at(address)

    @property
    def address(self) -> str:
        return self.contract.address

    # ---- reads ----

    def state(self, proposal_id: int) -> ProposalState:
        """The proposal's state, as a readable enum (``ProposalState.Succeeded``...)."""
        return ProposalState(self.contract.state(proposal_id))

    def votes(self, proposal_id: int) -> dict[str, int]:
        against, for_, abstain = self.contract.proposalVotes(proposal_id)
        return {"against": against, "for": for_, "abstain": abstain}

    def proposal_id(self, targets, values, calldata, description: str) -> int:
        """The id the governor gives these actions and description (one call may be given as
        itself, as in ``propose``)."""
        from eth_utils import keccak

        return self.contract.hashProposal(*proposal_actions(targets, values, calldata), keccak(text=description))

    # ---- transactions (async) ----

    async def propose(
        self,
        targets: Sequence[str] | str,
        values: Sequence[int] | int,
        calldata: Sequence[bytes | str] | bytes | str,
        description: str,
    ) -> int:
        """Submits a proposal; returns its id. One call may be given as itself (a target, a
        value, one encoded call as bytes or 0x-hex) or as lists of one, as the Governor takes them."""
        targets, values, calls = proposal_actions(targets, values, calldata)
        receipt = await self._send(self.contract.propose, targets, values, calls, description)
        (created,) = receipt.decode_logs(self.contract.ProposalCreated)
        return created.proposalId

    async def castVote(self, proposal_id: int, support: bool | int | VoteType, reason: str = "") -> Any:
        """Votes for (True), against (False) or abstains (``VoteType.Abstain``). ProposalStateError
        (nothing sent) unless voting is open in the block the vote would land in."""
        state = self._next_state(proposal_id)
        if state is not ProposalState.Active:
            raise ProposalStateError(
                f"proposal {proposal_id:#x} is {state.name}, not Active: no vote possible ({self._voting_window(proposal_id, state)})",
                state,
            )
        if reason:
            return await self._send(self.contract.castVoteWithReason, proposal_id, _support(support), reason)
        return await self._send(self.contract.castVote, proposal_id, _support(support))

    async def queue(self, proposal_id: int) -> Any:
        """Queues a succeeded proposal in the timelock (by id: the governor keeps its actions).
        ProposalStateError (nothing sent) unless it has succeeded."""
        state = self._next_state(proposal_id)
        if state is not ProposalState.Succeeded:
            raise ProposalStateError(
                f"proposal {proposal_id:#x} is {state.name}; only a Succeeded one can be queued "
                f"({self._voting_window(proposal_id, state)})",
                state,
            )
        return await self._send(self.contract.queue, proposal_id)

    async def execute(self, proposal_id: int) -> Any:
        """Executes a queued proposal whose timelock delay has passed (by id: the governor keeps
        its actions). ProposalStateError (nothing sent) unless it is queued;
        TimelockNotReadyError, saying how long is left, before the timelock's ETA."""
        state = self._next_state(proposal_id)
        if state is not ProposalState.Queued:
            hint = (
                "queue it first, then execute it once the timelock's delay is over"
                if state is ProposalState.Succeeded
                else self._voting_window(proposal_id, state)
            )
            raise ProposalStateError(
                f"proposal {proposal_id:#x} is {state.name}; only a Queued one can be executed ({hint})", state
            )
        eta = int(self.contract.proposalEta(proposal_id))
        if (left := eta - self._next_timestamp()) > 0:
            raise TimelockNotReadyError(
                f"proposal {proposal_id:#x} is in the timelock: {left} s left (ETA {_utc(eta)})", state, left, eta
            )
        return await self._send(self.contract.execute, proposal_id)

    # ---- waiting for the chain ----

    async def wait_for_state(
        self, proposal_id: int, state: ProposalState, timeout: float | None = None
    ) -> ProposalState:
        """Waits until the proposal is in ``state`` in the block a transaction sent now would land
        in (``Active``: voting is open; ``Succeeded``: it passed and may be queued), reading the
        chain every WAIT_POLL_SECONDS, at most ``timeout`` seconds (None: no limit). Returns the
        state; ProposalStateError as soon as the proposal can no longer reach ``state`` (it was
        defeated while waiting for Succeeded, say), TimeoutError when the time is up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (current := self._next_state(proposal_id)) is not state:
            if current > state or (state is ProposalState.Succeeded and current in _DEAD_ENDS):
                raise ProposalStateError(
                    f"proposal {proposal_id:#x} is {current.name}: it will not be {state.name}", current
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"proposal {proposal_id:#x} is still {current.name} after {timeout} s")
            await asyncio.sleep(WAIT_POLL_SECONDS)
        return current

    async def wait_for_eta(self, proposal_id: int, timeout: float | None = None) -> int:
        """Waits until a queued proposal's timelock delay is over (the chain's next block is at
        its ETA or later), at most ``timeout`` seconds; returns the ETA. ProposalStateError when
        it is not queued, TimeoutError when the time is up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._next_state(proposal_id)
        if state is not ProposalState.Queued:
            raise ProposalStateError(f"proposal {proposal_id:#x} is {state.name}, not Queued: it has no ETA", state)
        eta = int(self.contract.proposalEta(proposal_id))
        while (left := eta - self._next_timestamp()) > 0:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"proposal {proposal_id:#x}: timelock: {left} s left (ETA {_utc(eta)})")
            await asyncio.sleep(WAIT_POLL_SECONDS)
        return eta

    # ---- what the chain says next ----

    def _next_state(self, proposal_id: int) -> ProposalState:
        """The proposal's state in the block that comes next, where a transaction sent now lands
        (voting opens and closes by block number)."""
        return ProposalState(self.read(self.contract.state, proposal_id, next_block=True))

    @staticmethod
    def _next_timestamp() -> int:
        """The timestamp of the chain's next block, as the node sees it (a local chain's time
        may have been moved ahead)."""
        from ape import networks

        return int(networks.provider.make_request("eth_getBlockByNumber", ["pending", False])["timestamp"], 16)

    def _voting_window(self, proposal_id: int, state: ProposalState) -> str:
        """What a proposal in ``state`` waits for, in blocks of its vote."""
        from ape import chain

        head = chain.blocks.height
        if state is ProposalState.Pending:
            opens = int(self.contract.proposalSnapshot(proposal_id)) + 1
            return f"voting opens in block {opens}; the chain is at block {head}"
        if state is ProposalState.Active:
            closes = int(self.contract.proposalDeadline(proposal_id))
            return f"voting closes after block {closes}; the chain is at block {head}"
        if state is ProposalState.Succeeded:
            return "voting is over and it passed: queue it"
        if state is ProposalState.Queued:
            return "it is queued in the timelock: execute it once the delay is over"
        return f"a {state.name} proposal goes no further"

    # snake_case aliases of the original camelCase API
    cast_vote = castVote


# States a proposal never leaves (Executed aside, which is past every other).
_DEAD_ENDS = frozenset({ProposalState.Canceled, ProposalState.Defeated, ProposalState.Expired})


def time_left(dao, proposal_id: int, seconds_per_block: float) -> str:
    """What the proposal waits for and how long, in blocks and seconds."""
    from ape import chain

    state = ProposalState(dao.state(proposal_id))
    head = chain.blocks.height
    if state is ProposalState.Pending:
        blocks = dao.proposalSnapshot(proposal_id) + 1 - head
        return f"voting opens in {blocks} block(s) (≈ {blocks * seconds_per_block:,.0f} s)"
    if state is ProposalState.Active:
        blocks = dao.proposalDeadline(proposal_id) + 1 - head
        return f"voting closes in {blocks} block(s) (≈ {blocks * seconds_per_block:,.0f} s)"
    if state is ProposalState.Queued:
        seconds = dao.proposalEta(proposal_id) - chain.pending_timestamp
        if seconds > 0:
            return (
                f"executable in {seconds:,} s (≈ {seconds / seconds_per_block:,.0f} block(s)), after the timelock delay"
            )
        return "the timelock delay is over: ready to execute"
    if state is ProposalState.Succeeded:
        return "passed: ready to queue"
    if state is ProposalState.Defeated:
        return "did not pass (more against than for, or below quorum)"
    return "nothing left to wait for"


def seconds_per_block() -> float:
    from ape import networks

    block_time = networks.provider.network.block_time
    return block_time if block_time and not networks.provider.network.is_local else DEFAULT_SECONDS_PER_BLOCK


def proposals(dao, start_block: int) -> list:
    """Every ProposalCreated log of the governor since ``start_block``, oldest first."""
    from ape import chain

    return list(dao.ProposalCreated.range(start_block, chain.blocks.height + 1))
