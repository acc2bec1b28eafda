"""`ape run demo` (what `make demo` runs): JoyNet on a local chain, step by step.

1. a local anvil chain (started by Ape, or the one already listening at JOYNET_LOCAL_CHAIN_HOST);
2. the protocol deployed by the same code as `ape run deploy`, every role handed to the DAO;
3. one governance change carried through the timelock with the `joynet.ModelGovernanceDAO`
   client: delegate, propose, vote, queue, an early execution refused, wait, execute.
"""

import asyncio
import sys
import time

import click
from ape import accounts, chain, networks
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from joynet.deploy import JOY, deploy_protocol, load_deploy_config
from joynet.deployment import deployment_path
from joynet.governance import GovernanceError, ModelGovernanceDAO


class Steps:
    """Numbered, timed progress lines and a gas ledger for the closing summary."""

    def __init__(self):
        self.number = 0
        self.started = time.monotonic()
        self.gas: dict[str, list[int]] = {}

    def step(self, title: str) -> None:
        self.number += 1
        click.secho(f"\n[{self.number}] {title}", bold=True)

    def say(self, text: str) -> None:
        click.echo(f"    {text}")

    def record(self, label: str, receipt) -> None:
        self.gas.setdefault(label, []).append(receipt.gas_used)

    def summary(self) -> None:
        click.secho("\nSummary", bold=True)
        click.echo(f"    {'step':<12} {'txs':>4} {'gas per tx':>12}")
        for label, gas in self.gas.items():
            click.echo(f"    {label:<12} {len(gas):>4} {sum(gas) // len(gas):>12,}")
        click.echo(f"    done in {time.monotonic() - self.started:.1f} s")


def joy(amount: int) -> str:
    return f"{amount / JOY:,.0f} JOY"


async def governance_change(steps: Steps, token, dao_contract, timelock) -> None:
    alice, bob, carol = accounts.test_accounts[1:4]

    steps.step("Holders delegate their votes to themselves (ERC20Votes checkpoints)")
    for name, holder in (("alice", alice), ("bob", bob), ("carol", carol)):
        receipt = token.invoke_transaction("delegate", holder, sender=holder)
        steps.record("delegate", receipt)
        steps.say(f"{name:<5} {holder.address}  votes {joy(token.getVotes(holder))}")
    chain.mine()

    old_quorum = dao_contract.quorumNumerator()
    new_quorum = old_quorum + 1
    steps.step(f"Alice proposes: raise the quorum from {old_quorum} % to {new_quorum} %")
    proposer = ModelGovernanceDAO(account=alice)
    proposal_id = await proposer.propose(
        targets=[dao_contract.address],
        values=[0],
        calldata=[dao_contract.updateQuorumNumerator.encode_input(new_quorum)],
        description=f"Raise the quorum to {new_quorum} %",
    )
    steps.record("propose", proposer.last_receipt)
    steps.say(f"proposal {hex(proposal_id)[:18]}...  state {proposer.state(proposal_id).name}")
    chain.mine(dao_contract.votingDelay() + 1)
    steps.say(f"after the voting delay ({dao_contract.votingDelay()} block): {proposer.state(proposal_id).name}")

    steps.step("Voting: alice and bob for, carol against")
    for name, voter, support in (("alice", alice, True), ("bob", bob, True), ("carol", carol, False)):
        client = ModelGovernanceDAO(account=voter)
        await client.castVote(proposal_id, support)
        steps.record("castVote", client.last_receipt)
        steps.say(f"{name:<5} voted {'for' if support else 'against'}")
    tally = proposer.votes(proposal_id)
    steps.say(f"tally: for {joy(tally['for'])}, against {joy(tally['against'])}")
    chain.mine(dao_contract.votingPeriod() + 1)
    quorum = dao_contract.quorum(dao_contract.proposalSnapshot(proposal_id))
    steps.say(f"voting period over; quorum was {joy(quorum)}: {proposer.state(proposal_id).name}")

    steps.step("Queue in the timelock")
    await proposer.queue(proposal_id)
    steps.record("queue", proposer.last_receipt)
    delay = timelock.getMinDelay()
    steps.say(f"state {proposer.state(proposal_id).name}; executable after {delay} s (eta {dao_contract.proposalEta(proposal_id)})")
    try:
        await proposer.execute(proposal_id)
    except GovernanceError as err:
        steps.say(f"executing now is refused: {err}")
    else:
        raise click.ClickException("a proposal was executed before its timelock delay")

    steps.step(f"Wait out the timelock ({delay} s of chain time), then anyone executes")
    chain.pending_timestamp += delay + 1
    chain.mine()
    executor = ModelGovernanceDAO(account=accounts.test_accounts[5])
    await executor.execute(proposal_id)
    steps.record("execute", executor.last_receipt)
    steps.say(f"state {proposer.state(proposal_id).name}; quorum is now {dao_contract.quorumNumerator()} %")
    if dao_contract.quorumNumerator() != new_quorum:
        raise click.ClickException("the executed proposal did not change the quorum")


@click.command(cls=ConnectedProviderCommand, short_help="Run the JoyNet demo on a local chain")
def cli():
    network = networks.provider.network
    if not network.is_local:
        raise click.ClickException("the demo runs on a local chain only (--network ethereum:local:foundry)")
    logger.set_level("WARNING")  # Ape's per-transaction INFO lines would drown the steps
    steps = Steps()

    steps.step("Local chain")
    steps.say(f"anvil at {networks.provider.uri}, chain id {chain.chain_id}, block {chain.blocks.height}")

    steps.step("Deploy JoyNet and hand every role to the DAO")
    deployer = accounts.test_accounts[0]
    deployment = deploy_protocol(
        deployer, load_deploy_config(network.name), list(accounts.test_accounts), log=steps.say
    )
    path = deployment_path(network.name)
    deployment.save(path)
    for name, address in deployment.contracts.items():
        steps.say(f"{name:<20} {address}")
    steps.say(f"deployment written to {path}")

    token = deployment.contract("JoyToken")
    timelock = deployment.contract("TimelockController")
    dao_contract = deployment.contract("ModelGovernanceDAO")
    admin = timelock.DEFAULT_ADMIN_ROLE()
    steps.say(
        f"treasury (timelock) holds {joy(token.balanceOf(timelock))}; "
        f"deployer is timelock admin: {timelock.hasRole(admin, deployer)}"
    )

    asyncio.run(governance_change(steps, token, dao_contract, timelock))
    steps.summary()
    sys.stdout.flush()
