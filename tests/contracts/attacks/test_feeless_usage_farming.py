"""Attack: farming the DAO's usage pool with free (feeless) usage.

A node makes itself a second channel key, admits it and answers its own requests without running
anything: the bridgers, who count what the channel shows, checkpoint every one of those answers as
an inference the node served. If feeless usage weighed in ProofOfUse by count, the node (and an
owner colluding with it) would take the DAO-funded epoch pool for nothing.

Rule: feeless means sponsored. A checkpoint pays each node from the model's budget, and the usage
weighs only the protocol's part of that payment, which whoever funded the budget never gets back;
no claim pays more than REWARD_CAP_BPS (90 %) of the weight behind it. So self-requests can at
most drain a budget the attacker's own owner funded, and the pool pays back less than they cost:
an attacker who is owner and node at once ends every epoch with less JOY than it started with, at
any rate it sets, and with no budget (the old accounting) its 25 inferences earn nothing at all.
"""

import pytest
from eth_utils import keccak

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.validator import Checkpoint, StreamLink, Usage, ordered_signatures, sign_checkpoint, sign_stream_link

POOL = 10_000 * JOY
BUDGET = 50 * JOY
SELF_REQUESTS = 25
STREAM = keccak(text="iota-stream:farmed")
ZERO32 = b"\0" * 32


@pytest.fixture
def bridge(deployment):
    return deployment.contract("IOTAValidator")


@pytest.fixture
def committee(accounts):
    return [accounts[7], accounts[8]]  # two of the local committee: the threshold


@pytest.fixture
def epoch(proof_of_use, chain, governance, token, alice, bob):
    """A fresh epoch whose pool the DAO funded with 10,000 JOY from the treasury."""
    current = proof_of_use.currentEpoch() + 1
    calls = [
        (token, token.approve.encode_input(proof_of_use, POOL)),
        (proof_of_use, proof_of_use.fundEpoch.encode_input(current, POOL)),
    ]
    governance.enact(alice, calls, "Fund the usage pool", [(alice, 1), (bob, 1)])
    chain.pending_timestamp = proof_of_use.epochEnd(current - 1) + 1
    chain.mine()
    assert proof_of_use.currentEpoch() == current and proof_of_use.epochInfo(current).pool == POOL
    return current


def linked_model(bridge, chain, register_model, register_node, committee, owner, node):
    """A feeless model of ``owner`` on STREAM, linked, served by ``node``."""
    model_id = register_model("farmed", price=0, stream=STREAM, owner=owner)
    register_node(node, [model_id])
    link = StreamLink(STREAM, model_id, owner.address)
    signed = [sign_stream_link(member.private_key, link, chain.chain_id, bridge.address) for member in committee]
    bridge.linkStream(STREAM, model_id, ordered_signatures(signed), sender=node)
    bridge.bindChannelKey(model_id, keccak(text="the node's channel key"), sender=node)
    return model_id


def checkpoint_self_requests(bridge, chain, committee, node):
    """The bridgers' honest checkpoint of the channel: 25 answers by ``node`` to its own second key."""
    checkpoint = Checkpoint(
        STREAM, 2 * SELF_REQUESTS, ZERO32, keccak(text="head"), keccak(text="root"), [Usage(node.address, SELF_REQUESTS)]
    )
    signed = [sign_checkpoint(member.private_key, checkpoint, chain.chain_id, bridge.address) for member in committee]
    return bridge.submitCheckpoint(checkpoint, ordered_signatures(signed), sender=committee[0])


def take_everything(bridge, proof_of_use, chain, token, model_id, epoch, owner, node):
    """After the epoch: every claim and withdrawal the coalition can make."""
    if bridge.budgetOf(model_id).balance:
        bridge.requestBudgetWithdrawal(model_id, bridge.budgetOf(model_id).balance, sender=owner)
    chain.pending_timestamp = max(proof_of_use.epochEnd(epoch), chain.pending_timestamp + bridge.budgetDelay()) + 1
    chain.mine()
    if bridge.budgetOf(model_id).withdrawal:
        bridge.withdrawBudget(model_id, sender=owner)
    if bridge.earningsOf(model_id, node):
        bridge.withdrawEarnings([model_id], sender=node)
    for account, pending, claim in (
        (owner, proof_of_use.pendingOwnerReward, proof_of_use.claimOwnerReward),
        (node, proof_of_use.pendingNodeReward, proof_of_use.claimNodeReward),
    ):
        if pending(epoch, account) == 0:
            with reverts_with("ProofOfUseNothingToClaim"):
                claim(epoch, sender=account)
        else:
            claim(epoch, sender=account)


@pytest.mark.parametrize("rate", [1, 10**9, JOY, BUDGET])  # 1 wei, a weight unit, 1 JOY, the whole budget at once
def test_self_requests__owner_and_node_one_account__lose_joy_at_any_rate(
    bridge, proof_of_use, chain, token, register_model, register_node, committee, operators, epoch, rate
):
    attacker = operators[0]
    model_id = linked_model(bridge, chain, register_model, register_node, committee, attacker, attacker)
    before = token.balanceOf(attacker)
    token.approve(bridge, BUDGET, sender=attacker)
    bridge.fundBudget(model_id, BUDGET, sender=attacker)
    bridge.setFeelessRate(model_id, rate, sender=attacker)
    checkpoint_self_requests(bridge, chain, committee, attacker)
    kept = bridge.protocolEarnings()
    assert proof_of_use.modelUsage(epoch, model_id) == SELF_REQUESTS  # counted all the same

    take_everything(bridge, proof_of_use, chain, token, model_id, epoch, attacker, attacker)
    from_pool = proof_of_use.epochInfo(epoch).paidOut
    assert from_pool <= kept * 9_000 // 10_000  # the pool pays back at most 90 % of what it cost
    assert token.balanceOf(attacker) - before == from_pool - kept
    assert token.balanceOf(attacker) <= before  # and never a gain


def test_self_requests__no_budget__25_inferences_earn_nothing(
    bridge, proof_of_use, chain, token, register_model, register_node, committee, operators, model_owner, epoch
):
    node = operators[0]
    model_id = linked_model(bridge, chain, register_model, register_node, committee, model_owner, node)
    checkpoint_self_requests(bridge, chain, committee, node)
    assert proof_of_use.modelUsage(epoch, model_id) == SELF_REQUESTS
    assert proof_of_use.nodeUsage(epoch, node) == proof_of_use.ownerUsage(epoch, model_owner) == 0
    before = token.balanceOf(node), token.balanceOf(model_owner)
    take_everything(bridge, proof_of_use, chain, token, model_id, epoch, model_owner, node)
    assert (token.balanceOf(node), token.balanceOf(model_owner)) == before
    assert proof_of_use.epochInfo(epoch).paidOut == 0


def test_self_requests__on_another_owners_model__drain_only_that_owners_budget(
    bridge, proof_of_use, chain, token, register_model, register_node, committee, operators, model_owner, epoch
):
    """A node farming a model it does not own takes what that model's owner chose to spend, and
    the owner and node together still get back from the DAO's pool less than the protocol kept."""
    node = operators[0]
    model_id = linked_model(bridge, chain, register_model, register_node, committee, model_owner, node)
    coalition_before = token.balanceOf(node) + token.balanceOf(model_owner)
    token.approve(bridge, BUDGET, sender=model_owner)
    bridge.fundBudget(model_id, BUDGET, sender=model_owner)
    bridge.setFeelessRate(model_id, JOY, sender=model_owner)
    checkpoint_self_requests(bridge, chain, committee, node)
    spent, kept = SELF_REQUESTS * JOY, bridge.protocolEarnings()
    assert BUDGET - bridge.budgetOf(model_id).balance == spent  # the owner's own budget paid
    take_everything(bridge, proof_of_use, chain, token, model_id, epoch, model_owner, node)
    from_pool = proof_of_use.epochInfo(epoch).paidOut
    assert 0 < from_pool <= kept * 9_000 // 10_000
    assert token.balanceOf(node) + token.balanceOf(model_owner) - coalition_before == from_pool - kept < 0
