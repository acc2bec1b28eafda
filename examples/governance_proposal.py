"""Example: a DAO proposal from proposal to execution with joynet.ModelGovernanceDAO.

The original design's second example: JOY holders delegate, one proposes to raise the
model-owner royalty by 5 points (nodes give them up), they vote, the proposal is queued in the
timelock and executed once the delay has passed.

Run it against a local chain where `ape run deploy` ran (test accounts 1 and 2 hold JOY there):

    .venv/bin/ape run deploy
    .venv/bin/python examples/governance_proposal.py [--network ethereum:local:foundry]

On a local chain the example mines the voting delay and period and moves chain time past the
timelock delay itself; on a real network those take days and the steps are run one by one with
`ape run governance ...` instead.
"""

import argparse
import asyncio

from ape import accounts, chain, networks


async def main() -> None:
    from joynet import ModelGovernanceDAO, ProposalState, load_deployment

    if not networks.provider.network.is_local:
        raise SystemExit("this example moves chain time: run it on a local chain (see `ape run governance` elsewhere)")
    deployment = load_deployment()
    token, marketplace = deployment.contract("JoyToken"), deployment.contract("ModelMarketplace")
    alice, bob = accounts.test_accounts[1], accounts.test_accounts[2]

    for holder in (alice, bob):
        if token.delegates(holder) != holder.address:
            token.invoke_transaction("delegate", holder, sender=holder)
    print(f"alice and bob delegate to themselves: {token.getVotes(alice) / 10**18:,.0f} JOY of votes each")

    node, owner, protocol = marketplace.nodeShareBps(), marketplace.ownerShareBps(), marketplace.protocolShareBps()
    new_owner = min(owner + 500, 3000) if owner < 3000 else owner - 500
    new_node = node - (new_owner - owner)
    dao = ModelGovernanceDAO(account=alice)
    proposal_id = await dao.propose(
        targets=[marketplace.address],
        values=[0],
        calldata=[marketplace.setFeeShares.encode_input(new_node, new_owner, protocol)],
        description=f"Model-owner royalty {owner / 100:g} % -> {new_owner / 100:g} % (block {chain.blocks.height})",
    )
    print(
        f"proposed {hex(proposal_id)[:18]}...: royalty {owner} -> {new_owner} bps; state {dao.state(proposal_id).name}"
    )

    chain.mine(dao.contract.votingDelay() + 1)
    await dao.castVote(proposal_id, True, reason="owners deserve more")
    await ModelGovernanceDAO(account=bob).castVote(proposal_id, True)
    votes = dao.votes(proposal_id)
    print(f"voted: for {votes['for'] / 10**18:,.0f} JOY, against {votes['against'] / 10**18:,.0f} JOY")

    chain.mine(dao.contract.votingPeriod() + 1)
    print(f"voting closed: {dao.state(proposal_id).name}")
    await dao.queue(proposal_id)
    delay = deployment.contract("TimelockController").getMinDelay()
    print(f"queued in the timelock for {delay} s: {dao.state(proposal_id).name}")

    chain.pending_timestamp += delay + 1
    chain.mine()
    await dao.execute(proposal_id)
    assert dao.state(proposal_id) is ProposalState.Executed
    print(
        f"executed: fee shares node/owner/protocol now {marketplace.nodeShareBps()}/{marketplace.ownerShareBps()}/{marketplace.protocolShareBps()} bps"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="ethereum:local:foundry")
    args = parser.parse_args()
    with networks.parse_network_choice(args.network):
        asyncio.run(main())
