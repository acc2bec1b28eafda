"""The DAO voter agent: one handler per DAO event and per new block, each calling a
:class:`~joynet.governance.voter.DaoVoter`.

``joynet agent voter`` / ``ape run dao_voter`` (``agents/cli.py``) runs ``bot`` with a ``DaoVoter``
built from its options, following the ModelGovernanceDAO.
"""

from joynet.chain.bot import Bot
from joynet.governance.voter import DaoVoter

bot = Bot("dao_voter", poll_seconds=1.0)


@bot.on_startup()
async def delegate_if_needed(voter: DaoVoter):
    """Undelegated JOY does not vote: delegate the account's JOY to itself if it has no delegate."""
    await voter.ensure_delegation()


@bot.on_("ProposalCreated")
async def proposal_created(voter: DaoVoter, log):
    """Decide by the policy now (a circuit registration: once its ceremony transcript is
    checked); vote once voting opens."""
    await voter.consider(log)


@bot.on_block()
async def new_block(voter: DaoVoter, height: int):
    """Cast the decided votes whose proposals are now open."""
    await voter.vote_due(height)


@bot.on_("ProposalExecuted")
def proposal_executed(voter: DaoVoter, log):
    voter.outcome(log)


@bot.on_("ProposalCanceled")
def proposal_canceled(voter: DaoVoter, log):
    voter.outcome(log)
