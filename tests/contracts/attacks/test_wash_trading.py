"""Attack: wash trading of usage rewards.

The attacker owns a model, runs the only node serving it and requests it from its own
balance, over and over: every settlement pays the node and owner shares back to itself, and
each one counts as usage in ProofOfUse, whose epoch pool it then claims as owner and as node.

Rule: rewards follow value, not counts, and self-dealing never pays. A settlement weighs the
protocol's share of its fee (the only part a self-dealer does not get back), and no claim pays
more than REWARD_CAP_BPS (90 %) of the weight behind it, so the attacker's rewards stay below
the fees it lost: its JOY after the epoch is less than before, at any price it picks.

Old code (43cec05): usage counted inferences. Ten self-settlements of a 1-wei model (10 wei
of fees lost to the protocol) took 909.09 JOY of a 1,000 JOY pool that one honest 5 JOY
inference shared with it; the attacker's JOY rose by 909.09.
"""

import pytest

from helpers.adversary import by_address  # noqa: F401 (fixtures)
from helpers.adversary import PROTOCOL_SHARE_BPS, BPS, joy_held, output, request_event
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY

POOL = 1_000 * JOY
REWARD_CAP_BPS = 9_000
WASH_REQUESTS = 10


@pytest.fixture
def epoch(proof_of_use, chain, deployer, token):
    """A fresh epoch with a 1,000 JOY pool: the chain is moved to its first second."""
    current = proof_of_use.currentEpoch() + 1
    chain.pending_timestamp = proof_of_use.epochEnd(current - 1) + 1
    token.approve(proof_of_use, POOL, sender=deployer)
    proof_of_use.fundEpoch(current, POOL, sender=deployer)
    assert proof_of_use.currentEpoch() == current
    return current


@pytest.fixture
def honest_usage(register_model, register_node, operators, request_inference, marketplace, by_address):
    """One honest 5 JOY inference in the epoch, so the attacker competes with real usage."""
    model_id = register_model("digits", price=5 * JOY)
    register_node(operators[0], [model_id])
    request, (node,), _ = request_inference(model_id)
    marketplace.submitResult(request, output("honest"), "ipfs://bafyout", b"", sender=by_address[node])


def end_epoch(proof_of_use, chain, epoch):
    chain.pending_timestamp = proof_of_use.epochEnd(epoch) + 1
    chain.mine()


def claim_everything(proof_of_use, token, account, epoch):
    """Both claims, as the attacker makes them (a claim with nothing behind it reverts); returns
    the JOY they paid."""
    before = token.balanceOf(account)
    for pending, claim in (
        (proof_of_use.pendingOwnerReward, proof_of_use.claimOwnerReward),
        (proof_of_use.pendingNodeReward, proof_of_use.claimNodeReward),
    ):
        if pending(epoch, account) == 0:
            with reverts_with("ProofOfUseNothingToClaim"):
                claim(epoch, sender=account)
        else:
            claim(epoch, sender=account)
    return token.balanceOf(account) - before


def wash_settlements(marketplace, chain, assign_nodes, attacker, model_id, price, count):
    """The attacker's loop: a request paid from its balance, assigned (to its own node, the only
    one serving the model), answered by that node. Returns what the protocol kept in all."""
    kept = 0
    for index in range(count):
        receipt = marketplace.requestInferenceFromBalance(
            model_id, output(f"in{index}"), "ipfs://bafyin", price, chain.pending_timestamp + 600, sender=attacker
        )
        request = assign_nodes(request_event(marketplace, receipt), sender=attacker)
        assert request.nodes == [attacker.address]
        settled = marketplace.submitResult(request, output("out"), "ipfs://bafyout", b"", sender=attacker)
        (event,) = settled.decode_logs(marketplace.InferenceSettled)
        kept += event.protocolPaid
    assert kept >= price * count * PROTOCOL_SHARE_BPS // BPS
    return kept


@pytest.mark.parametrize("price", [1, JOY, 100 * JOY, 10_000 * JOY], ids=["1wei", "1JOY", "100JOY", "10000JOY"])
def test_self_dealing__model_node_and_requester_one_account__rewards_below_fees_lost(
    marketplace, coordinator, token, proof_of_use, register_model, register_node, operators, chain, epoch,
    honest_usage, assign_nodes, price,
):
    attacker = operators[3]
    wash = register_model("wash", price=price, owner=attacker)
    register_node(attacker, [wash])
    before = joy_held(token, marketplace, coordinator, attacker)

    token.approve(marketplace, price * WASH_REQUESTS, sender=attacker)
    marketplace.deposit(attacker, price * WASH_REQUESTS, sender=attacker)
    protocol_paid = wash_settlements(marketplace, chain, assign_nodes, attacker, wash, price, WASH_REQUESTS)

    end_epoch(proof_of_use, chain, epoch)
    rewards = claim_everything(proof_of_use, token, attacker, epoch)
    if marketplace.balances(attacker):  # at 1 wei a request, the node's and owner's parts round to 0
        marketplace.withdrawBalance(attacker, sender=attacker)
    after = joy_held(token, marketplace, coordinator, attacker)

    assert rewards <= protocol_paid * REWARD_CAP_BPS // BPS
    # The attacker's JOY fell by what the protocol kept less its rewards: never a gain. (At
    # 10,000 JOY a request it takes nearly the whole pool, having paid ten times the pool.)
    assert after - before == rewards - protocol_paid < 0


def test_self_dealing__one_wei_model__earns_nothing_from_the_pool(
    marketplace, token, proof_of_use, register_model, register_node, operators, chain, epoch, honest_usage,
    assign_nodes, model_owner,
):
    # The old attack exactly: a 1-wei model. Its settlements weigh nothing, so there is nothing
    # to claim; the honest model's owner and node keep their (capped) rewards.
    attacker = operators[3]
    wash = register_model("wash", price=1, owner=attacker)
    register_node(attacker, [wash])
    token.approve(marketplace, WASH_REQUESTS, sender=attacker)
    marketplace.deposit(attacker, WASH_REQUESTS, sender=attacker)
    wash_settlements(marketplace, chain, assign_nodes, attacker, wash, 1, WASH_REQUESTS)
    assert proof_of_use.modelUsage(epoch, wash) == WASH_REQUESTS  # counted, but weightless
    end_epoch(proof_of_use, chain, epoch)
    assert proof_of_use.pendingOwnerReward(epoch, attacker) == proof_of_use.pendingNodeReward(epoch, attacker) == 0
    with reverts_with("ProofOfUseNothingToClaim"):
        proof_of_use.claimOwnerReward(epoch, sender=attacker)
    with reverts_with("ProofOfUseNothingToClaim"):
        proof_of_use.claimNodeReward(epoch, sender=attacker)
    assert proof_of_use.pendingOwnerReward(epoch, model_owner) > 0
    assert proof_of_use.pendingNodeReward(epoch, operators[0]) > 0
