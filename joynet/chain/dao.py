"""``joynet.ModelGovernanceDAO``: the DAO client with the original design's async API.

    dao = ModelGovernanceDAO(account=voter)             # address from deployments/<network>.json
    proposal_id = await dao.propose(targets=[...], values=[0], calldata=[...], description="...")
    await dao.castVote(proposal_id, True)               # True: for, False: against, or a VoteType
    await dao.queue(proposal_id)                        # after the vote succeeded
    await dao.execute(proposal_id)                      # after the timelock delay
    dao.state(proposal_id)                              # ProposalState.Executed

It talks to the chain through Ape (the connected provider and an Ape account). Transactions run
in a worker thread so that an agent's event loop keeps serving while one is mined.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from joynet.chain.contract_types import container
from joynet.chain.deployment_file import load_deployment
from joynet.chain.errors import GovernanceError
from joynet.chain.signing import SigningClient


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


def _support(vote: bool | int | VoteType) -> VoteType:
    if isinstance(vote, bool):
        return VoteType.For if vote else VoteType.Against
    return VoteType(int(vote))


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
        from eth_utils import keccak

        return self.contract.hashProposal(targets, values, calldata, keccak(text=description))

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
        targets = [targets] if isinstance(targets, str) else targets
        values = [values] if isinstance(values, int) else values
        calldata = [calldata] if isinstance(calldata, (bytes, str)) else calldata
        calldata = [bytes.fromhex(call.removeprefix("0x")) if isinstance(call, str) else call for call in calldata]
        if not (len(targets) == len(values) == len(calldata)) or not targets:
            raise GovernanceError(
                f"targets, values and calldata must be non-empty and of one length "
                f"(got {len(targets)}, {len(values)}, {len(calldata)})"
            )
        receipt = await self._send(self.contract.propose, list(targets), list(values), list(calldata), description)
        (created,) = receipt.decode_logs(self.contract.ProposalCreated)
        return created.proposalId

    async def castVote(self, proposal_id: int, support: bool | int | VoteType, reason: str = "") -> Any:
        """Votes for (True), against (False) or abstains (``VoteType.Abstain``)."""
        if (state := self.state(proposal_id)) is not ProposalState.Active:
            raise GovernanceError(f"proposal {proposal_id:#x} is {state.name}, not Active: no vote possible")
        if reason:
            return await self._send(self.contract.castVoteWithReason, proposal_id, _support(support), reason)
        return await self._send(self.contract.castVote, proposal_id, _support(support))

    async def queue(self, proposal_id: int) -> Any:
        """Queues a succeeded proposal in the timelock."""
        if (state := self.state(proposal_id)) is not ProposalState.Succeeded:
            raise GovernanceError(f"proposal {proposal_id:#x} is {state.name}; only a Succeeded one can be queued")
        return await self._send(self.contract.queue, proposal_id)

    async def execute(self, proposal_id: int) -> Any:
        """Executes a queued proposal whose timelock delay has passed."""
        from ape import chain

        if (state := self.state(proposal_id)) is not ProposalState.Queued:
            raise GovernanceError(f"proposal {proposal_id:#x} is {state.name}; only a Queued one can be executed")
        eta = self.contract.proposalEta(proposal_id)
        if (now := chain.pending_timestamp) < eta:
            raise GovernanceError(f"proposal {proposal_id:#x} is in the timelock until {eta} ({eta - now} s from now)")
        return await self._send(self.contract.execute, proposal_id)

    # snake_case aliases of the original camelCase API
    cast_vote = castVote
