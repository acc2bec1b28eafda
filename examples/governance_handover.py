"""Example: the original design's DAO proposal, as it is written there: hand the marketplace's
governance to a new DAO's timelock, by proposal, vote, timelock and execution.

Every setting comes from the environment:

    POLYGON_SUPERNET_RPC          the chain's JSON-RPC URL
    MODEL_MARKETPLACE_ADDRESS     the ModelMarketplace (deployments/<network>.json)
    MODEL_GOVERNANCE_DAO_ADDRESS  the ModelGovernanceDAO (the same file)
    NEW_GOVERNANCE_ADDRESS        the new governance (the new DAO's timelock)
    JOYNET_ACCOUNT                the Ape account that proposes and votes (it must have delegated
                                  its JOY before the proposal): an alias, or test:N on a local chain

Between the steps the chain must move on: the voting delay and period are blocks, the timelock's
delay is seconds (days on a production network; on a local chain, mine blocks and move its time
with `cast rpc anvil_mine` / `evm_increaseTime`). The example waits for each; other holders vote
meanwhile when the proposer's JOY alone does not reach the quorum.

    .venv/bin/python examples/governance_handover.py
"""

import asyncio
import os

from joynet import ModelGovernanceDAO, ModelMarketplace, ProposalState


async def main() -> None:
    marketplace_address = os.getenv("MODEL_MARKETPLACE_ADDRESS")
    marketplace = ModelMarketplace(
        web3_provider=os.getenv("POLYGON_SUPERNET_RPC"), contract_address=marketplace_address
    )
    update_governance = marketplace.contract.updateGovernance.encode_input(os.getenv("NEW_GOVERNANCE_ADDRESS"))

    dao = ModelGovernanceDAO(os.getenv("MODEL_GOVERNANCE_DAO_ADDRESS"))
    proposal_id = await dao.propose(
        targets=[marketplace_address],
        values=[0],
        calldata=update_governance,
        description="Update governance to new DAO contract",
    )
    print(f"proposed {proposal_id:#x}")
    await dao.wait_for_state(proposal_id, ProposalState.Active)  # the voting delay
    await dao.castVote(proposal_id, True)
    print("voted for")
    await dao.wait_for_state(proposal_id, ProposalState.Succeeded)  # the voting period
    await dao.queue(proposal_id)
    print(f"queued: executable from {dao.contract.proposalEta(proposal_id)}")
    await dao.wait_for_eta(proposal_id)  # the timelock's delay
    await dao.execute(proposal_id)  # after the vote and the timelock
    print(f"executed: the marketplace's governance is now {marketplace.contract.owner()}")


if __name__ == "__main__":
    asyncio.run(main())
