"""ProofOfUse: value-weighted usage per epoch, DAO-funded pools, capped pro-rata pull claims, and
every way they fail.

A paid settlement weighs its value (the protocol's share of the fee) in units of WEIGHT_UNIT wei:
the owner gets the whole weight, each serving node an equal part; bridged (feeless) usage is
counted per model but weighs nothing. A claim pays the role's part of the pool pro rata to weight,
capped at weight x role share x REWARD_CAP_BPS, so a settlement never earns what it cost.

The marketplace and the bridge are stood in for by plain accounts (Carol and Bob); model owners
and nodes are genesis holders 4 to 8. The last test is a Hypothesis state machine that checks
JOY conservation, the capped pro-rata amounts and single payment over random sequences of usage,
funding, marketplace changes, time and claims.
"""

from typing import NamedTuple

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY

EPOCH = 3600  # seconds
OWNER_SHARE_BPS = 3_000
MAX_BPS = 10_000
CLAIM_PERIOD = 180 * 24 * 3600
MAX_BRIDGED_COUNT = 2**32 - 1
WEIGHT_UNIT = 10**9  # wei of value per unit of usage weight
REWARD_CAP_BPS = 9_000
# The value of a settlement in most tests: large against their pools (at most 10,000 JOY, below
# REWARD_CAP_BPS of it), so that their rewards are the plain pro-rata split, under the cap.
FEE = 20_000 * JOY
ZERO_ADDRESS = "0x" + "00" * 20
MODEL_A = keccak(text="joynet/model-a")
MODEL_B = keccak(text="joynet/model-b")


# ---- fixtures and helpers ----


@pytest.fixture
def pou(project, deployer, token, carol, bob):
    """ProofOfUse owned by the deployer (as during deployment), Carol as marketplace, Bob as bridge."""
    contract = deployer.deploy(project.ProofOfUse, token, deployer, EPOCH, OWNER_SHARE_BPS)
    contract.setMarketplace(carol, sender=deployer)
    contract.setBridge(bob, sender=deployer)
    return contract


@pytest.fixture
def marketplace_account(carol):
    return carol


@pytest.fixture
def bridge(bob):
    return bob


@pytest.fixture
def owners(genesis_holders):
    return genesis_holders[4], genesis_holders[5]


@pytest.fixture
def nodes(genesis_holders):
    return genesis_holders[6], genesis_holders[7], genesis_holders[8]


@pytest.fixture
def record(pou, marketplace_account):
    """One settled inference of ``model`` owned by ``owner``, served by ``served_by``, whose
    protocol share of the fee was ``value``."""

    def record(model, owner, served_by, value=FEE, sender=None):
        return pou.recordUsage(model, owner, list(served_by), value, sender=sender or marketplace_account)

    return record


@pytest.fixture
def fund(pou, token):
    def fund(funder, epoch, amount):
        token.approve(pou, amount, sender=funder)
        return pou.fundEpoch(epoch, amount, sender=funder)

    return fund


@pytest.fixture
def advance(pou, chain):
    """Moves the chain ``epochs`` epochs on, to 10 s into the target epoch; returns its number."""

    def advance(epochs=1):
        target = pou.currentEpoch() + epochs
        chain.pending_timestamp = pou.genesisTime() + target * EPOCH + 10
        chain.mine()
        assert pou.currentEpoch() == target
        return target

    return advance


def split(pool, share_bps=OWNER_SHARE_BPS):
    """(owners' part, nodes' part) of a pool, as the contract splits it."""
    owners_part = pool * share_bps // MAX_BPS
    return owners_part, pool - owners_part


def capped_reward(pool, share_bps, role, weight, total):
    """What a claim of ``role`` pays, as the contract computes it: the role's part of the pool
    pro rata to ``weight`` among ``total`` (both in weight units), at most REWARD_CAP_BPS of the
    role's share of the weight's value."""
    if not weight:
        return 0
    owners_part, nodes_part = split(pool, share_bps)
    part, role_share = (owners_part, share_bps) if role == "owner" else (nodes_part, MAX_BPS - share_bps)
    cap = weight * WEIGHT_UNIT * role_share * REWARD_CAP_BPS // MAX_BPS**2
    return min(part * weight // total, cap)


def decode_bounds(revert):
    """The (name, value, min, max) of a ProofOfUseParameterOutOfBounds seen by reverts_with."""
    return abi_decode(["string", "uint256", "uint256", "uint256"], revert.data[4:])


# ---- deployment ----


def test_deploy__valid_parameters__starts_epoch_zero_with_the_share(pou, token, deployer, chain):
    deployment = chain.provider.get_receipt(pou.txn_hash)
    assert pou.joy() == token.address
    assert pou.owner() == deployer.address
    assert pou.epochLength() == EPOCH
    assert pou.genesisTime() == chain.blocks[deployment.block_number].timestamp
    assert pou.currentEpoch() == 0
    assert pou.epochEnd(0) == pou.genesisTime() + EPOCH
    assert pou.claimDeadline(0) == pou.genesisTime() + EPOCH + CLAIM_PERIOD
    assert pou.ownerShareBps() == OWNER_SHARE_BPS
    assert pou.OwnerShareBpsSet(0, OWNER_SHARE_BPS) in deployment.events
    assert pou.outstandingRewards() == 0
    assert (pou.WEIGHT_UNIT(), pou.REWARD_CAP_BPS()) == (WEIGHT_UNIT, REWARD_CAP_BPS)


@pytest.mark.parametrize(
    "epoch_length, share, name, bounds",
    [
        (59, 0, "epochLength", (60, 365 * 24 * 3600)),
        (365 * 24 * 3600 + 1, 0, "epochLength", (60, 365 * 24 * 3600)),
        (EPOCH, 10_001, "ownerShareBps", (0, 10_000)),
    ],
)
def test_deploy__parameter_out_of_bounds__reverts(
    project, doomed_deployer, token, epoch_length, share, name, bounds
):
    with reverts_with("ProofOfUseParameterOutOfBounds", abi=project.ProofOfUse) as revert:
        doomed_deployer.deploy(project.ProofOfUse, token, doomed_deployer, epoch_length, share)
    assert decode_bounds(revert) == (name, epoch_length if name == "epochLength" else share, *bounds)


def test_deploy__zero_token__reverts(project, doomed_deployer):
    with reverts_with("ProofOfUseZeroAddress", abi=project.ProofOfUse):
        doomed_deployer.deploy(project.ProofOfUse, ZERO_ADDRESS, doomed_deployer, EPOCH, OWNER_SHARE_BPS)


def test_deploy__zero_owner__reverts(project, doomed_deployer, token):
    with reverts_with("OwnableInvalidOwner", abi=project.ProofOfUse):
        doomed_deployer.deploy(project.ProofOfUse, token, ZERO_ADDRESS, EPOCH, OWNER_SHARE_BPS)


def test_deploy__bounds_inclusive__deploys(project, deployer, token):
    for epoch_length, share in ((60, 0), (365 * 24 * 3600, 10_000)):
        contract = deployer.deploy(project.ProofOfUse, token, deployer, epoch_length, share)
        assert (contract.epochLength(), contract.ownerShareBps()) == (epoch_length, share)


# ---- governed parameters ----


def test_set_marketplace__by_owner__replaces_the_recorder_and_the_former_still_records(
    pou, record, deployer, marketplace_account, outsider, owners, nodes
):
    receipt = pou.setMarketplace(outsider, sender=deployer)
    assert pou.marketplace() == outsider.address
    assert pou.MarketplaceSet(marketplace_account.address, outsider.address) in receipt.events
    record(MODEL_A, owners[0], [nodes[0]], sender=outsider)
    # The replaced marketplace still closes the requests it opened, and their usage counts.
    record(MODEL_A, owners[0], [nodes[0]], sender=marketplace_account)
    assert pou.modelUsage(0, MODEL_A) == 2
    assert pou.ownerUsage(0, owners[0]) == 2 * FEE


def test_set_marketplace__zero__reverts(pou, deployer, marketplace_account):
    with reverts_with("ProofOfUseZeroAddress"):
        pou.setMarketplace(ZERO_ADDRESS, sender=deployer)
    assert pou.marketplace() == marketplace_account.address


def test_set_bridge__to_zero__disables_bridged_usage(pou, deployer, bridge, owners, nodes):
    receipt = pou.setBridge(ZERO_ADDRESS, sender=deployer)
    assert pou.bridge() == ZERO_ADDRESS
    assert pou.BridgeSet(bridge.address, ZERO_ADDRESS) in receipt.events
    with reverts_with("ProofOfUseCallerNotBridge"):
        pou.recordBridgedUsage(MODEL_A, owners[0], [(nodes[0], 1, 0)], sender=bridge)


def test_set_owner_share_bps__within_bounds__sets_and_emits(pou, deployer):
    for old, new in ((OWNER_SHARE_BPS, 0), (0, MAX_BPS)):
        receipt = pou.setOwnerShareBps(new, sender=deployer)
        assert pou.ownerShareBps() == new
        assert pou.OwnerShareBpsSet(old, new) in receipt.events


def test_set_owner_share_bps__above_10000__reverts(pou, deployer):
    with reverts_with("ProofOfUseParameterOutOfBounds"):
        pou.setOwnerShareBps(MAX_BPS + 1, sender=deployer)
    assert pou.ownerShareBps() == OWNER_SHARE_BPS


@pytest.mark.parametrize(
    "method, args",
    [
        ("setMarketplace", ("0x" + "11" * 20,)),
        ("setBridge", ("0x" + "11" * 20,)),
        ("setOwnerShareBps", (5_000,)),
        ("rollOver", (0, 1)),
        ("sweepUnclaimed", (0, "0x" + "11" * 20)),
        ("poolSurplus", (0,)),
        ("transferOwnership", ("0x" + "11" * 20,)),
        ("renounceOwnership", ()),
    ],
)
def test_governed_function__called_by_non_owner__reverts(pou, marketplace_account, outsider, method, args):
    # renounceOwnership is a view (it only ever reverts), so Ape eth_calls it and leaves the
    # error undecoded: abi= lets reverts_with match it by selector.
    for caller in (outsider, marketplace_account):
        with reverts_with("OwnableUnauthorizedAccount", abi=pou):
            getattr(pou, method)(*args, sender=caller)


def test_renounce_ownership__by_owner__reverts(pou, deployer):
    with reverts_with("JoyGovernedRenounceDisabled", abi=pou):
        pou.renounceOwnership(sender=deployer)
    assert pou.owner() == deployer.address


# ---- usage ----


def test_record_usage__by_marketplace__weighs_owner_and_nodes_by_value(pou, record, owners, nodes, joy):
    owner, (n1, n2, n3) = owners[0], nodes
    receipt = record(MODEL_A, owner, [n1, n2, n3], joy(3))  # one JOY of weight to each node
    record(MODEL_A, owner, [n1], joy(1) + WEIGHT_UNIT - 1)  # less than a unit more: dropped
    record(MODEL_B, owner, [n2, n2], joy(2))  # a node listed twice served twice: two parts

    assert not receipt.events  # the marketplace's InferenceSettled tells the settlement
    assert (pou.modelUsage(0, MODEL_A), pou.modelUsage(0, MODEL_B)) == (2, 1)  # inferences, not value
    assert pou.ownerUsage(0, owner) == joy(6)
    assert [pou.nodeUsage(0, n) for n in nodes] == [joy(2), joy(3), joy(1)]
    info = pou.epochInfo(0)
    assert (info.totalOwnerWeight, info.totalNodeWeight, info.pool) == (joy(6) // WEIGHT_UNIT, joy(6) // WEIGHT_UNIT, 0)
    # Roles are counted apart: an owner is no node until it serves.
    assert pou.nodeUsage(0, owner) == 0 and pou.ownerUsage(0, n1) == 0


def test_record_usage__value_not_divisible_among_nodes__floors_each_part(pou, record, owners, nodes):
    record(MODEL_A, owners[0], nodes, 10 * WEIGHT_UNIT + 5)  # 10 units among 3 nodes
    assert pou.ownerUsage(0, owners[0]) == 10 * WEIGHT_UNIT
    assert [pou.nodeUsage(0, n) for n in nodes] == [3 * WEIGHT_UNIT] * 3
    info = pou.epochInfo(0)
    # The nodes' denominator is what they were credited, so their parts can all be paid in full.
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (10, 9)


@pytest.mark.parametrize("value", [0, WEIGHT_UNIT - 1])
def test_record_usage__below_one_weight_unit__counts_the_inference_and_no_weight(
    pou, record, fund, advance, deployer, owners, nodes, joy, value
):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]], value)
    assert pou.modelUsage(0, MODEL_A) == 1
    assert pou.ownerUsage(0, owners[0]) == pou.nodeUsage(0, nodes[0]) == 0
    info = pou.epochInfo(0)
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (0, 0)
    advance()
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimOwnerReward(0, sender=owners[0])
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimNodeReward(0, sender=nodes[0])


def test_record_usage__one_unit_among_two_nodes__weighs_for_the_owner_only(pou, record, owners, nodes):
    record(MODEL_A, owners[0], nodes[:2], WEIGHT_UNIT)
    assert pou.ownerUsage(0, owners[0]) == WEIGHT_UNIT
    assert pou.nodeUsage(0, nodes[0]) == pou.nodeUsage(0, nodes[1]) == 0
    info = pou.epochInfo(0)
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (1, 0)


def test_record_usage__across_epochs__keeps_each_epoch_apart(pou, record, advance, owners, nodes, joy):
    """Counters of consecutive epochs share storage slots; each epoch must still read back alone."""
    owner, node = owners[0], nodes[0]
    for epoch in range(6):
        if epoch:
            assert advance() == epoch
        for _ in range(epoch + 1):  # epoch e: e + 1 inferences of 2 JOY, served by the node and the owner
            record(MODEL_A, owner, [node, owner], joy(2))
    for epoch in range(6):
        count = epoch + 1
        assert pou.modelUsage(epoch, MODEL_A) == count
        assert pou.ownerUsage(epoch, owner) == count * joy(2)
        assert pou.nodeUsage(epoch, owner) == count * joy(1)
        assert pou.nodeUsage(epoch, node) == count * joy(1)
        info = pou.epochInfo(epoch)
        assert (info.totalOwnerWeight, info.totalNodeWeight) == (count * joy(2) // WEIGHT_UNIT,) * 2
    assert pou.modelUsage(6, MODEL_A) == pou.ownerUsage(6, owner) == 0


def test_record_usage__not_marketplace__reverts(pou, deployer, bridge, outsider, owners, nodes):
    for caller in (outsider, bridge, deployer):
        with reverts_with("ProofOfUseCallerNotMarketplace"):
            pou.recordUsage(MODEL_A, owners[0], [nodes[0]], FEE, sender=caller)
    assert pou.epochInfo(0).totalOwnerWeight == 0
    assert pou.modelUsage(0, MODEL_A) == 0


def test_record_usage__former_marketplace__accepted_and_a_random_address_refused(
    pou, record, deployer, marketplace_account, outsider, owners, nodes, genesis_holders, joy
):
    newer, stranger = outsider, genesis_holders[9]
    pou.setMarketplace(newer, sender=deployer)
    record(MODEL_A, owners[0], [nodes[0]], joy(1), sender=marketplace_account)  # the former one
    assert pou.ownerUsage(0, owners[0]) == joy(1)
    with reverts_with("ProofOfUseCallerNotMarketplace"):
        record(MODEL_A, owners[0], [nodes[0]], joy(1), sender=stranger)

    # Switching back makes the first current again; the second becomes a former one.
    pou.setMarketplace(marketplace_account, sender=deployer)
    assert pou.marketplace() == marketplace_account.address
    record(MODEL_A, owners[0], [nodes[0]], joy(2), sender=newer)
    record(MODEL_A, owners[0], [nodes[0]], joy(4), sender=marketplace_account)
    with reverts_with("ProofOfUseCallerNotMarketplace"):
        record(MODEL_A, owners[0], [nodes[0]], joy(1), sender=stranger)
    assert pou.modelUsage(0, MODEL_A) == 3
    assert pou.ownerUsage(0, owners[0]) == pou.nodeUsage(0, nodes[0]) == joy(7)


def test_record_usage__no_nodes__reverts(pou, marketplace_account, owners):
    with reverts_with("ProofOfUseNoNodes"):
        pou.recordUsage(MODEL_A, owners[0], [], FEE, sender=marketplace_account)


@pytest.mark.parametrize("zero", ["owner", "node"])
def test_record_usage__zero_account__reverts(pou, marketplace_account, owners, nodes, zero):
    owner = ZERO_ADDRESS if zero == "owner" else owners[0]
    served_by = [nodes[0], ZERO_ADDRESS] if zero == "node" else [nodes[0]]
    with reverts_with("ProofOfUseZeroAddress"):
        pou.recordUsage(MODEL_A, owner, served_by, FEE, sender=marketplace_account)


@pytest.mark.parametrize("zero", ["owner", "node"])
def test_record_usage__zero_account_and_no_weight__still_reverts(pou, marketplace_account, owners, nodes, zero):
    """A settlement too small to weigh is checked all the same: its usage is counted per model."""
    owner = ZERO_ADDRESS if zero == "owner" else owners[0]
    served_by = [nodes[0], ZERO_ADDRESS] if zero == "node" else [nodes[0]]
    with reverts_with("ProofOfUseZeroAddress"):
        pou.recordUsage(MODEL_A, owner, served_by, 0, sender=marketplace_account)


def test_record_bridged_usage__unpaid__counts_inferences_without_weight(pou, bridge, record, owners, nodes):
    owner, node = owners[1], nodes[2]
    record(MODEL_B, owner, [nodes[0]])
    receipt = pou.recordBridgedUsage(MODEL_B, owner, [(node, 40, 0)], sender=bridge)
    [event] = receipt.decode_logs(pou.BridgedUsageRecorded)
    assert (event.epoch, event.modelId, event.modelOwner) == (0, MODEL_B, owner.address)
    assert [(to_checksum_address(n), c, v) for n, c, v in event.usage] == [(node.address, 40, 0)]
    assert pou.modelUsage(0, MODEL_B) == 41
    # The budget paid nothing for the feeless inferences: the owner weighs its paid settlement
    # only, the node that served them nothing.
    assert pou.ownerUsage(0, owner) == FEE
    assert pou.nodeUsage(0, node) == 0
    info = pou.epochInfo(0)
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (FEE // WEIGHT_UNIT,) * 2


def test_record_bridged_usage__paid_from_a_budget__weighs_the_protocols_part_for_owner_and_node(
    pou, bridge, owners, nodes
):
    owner, node = owners[1], nodes[2]
    other = nodes[0]
    receipt = pou.recordBridgedUsage(MODEL_B, owner, [(node, 40, FEE), (other, 2, 2 * FEE)], sender=bridge)
    [event] = receipt.decode_logs(pou.BridgedUsageRecorded)
    entries = [(to_checksum_address(n), c, v) for n, c, v in event.usage]
    assert entries == [(node.address, 40, FEE), (other.address, 2, 2 * FEE)]
    assert (pou.modelUsage(0, MODEL_B), pou.ownerUsage(0, owner)) == (42, 3 * FEE)
    assert (pou.nodeUsage(0, node), pou.nodeUsage(0, other)) == (FEE, 2 * FEE)
    info = pou.epochInfo(0)
    assert (info.totalOwnerWeight, info.totalNodeWeight) == (3 * FEE // WEIGHT_UNIT,) * 2


def test_record_bridged_usage__not_bridge__reverts(pou, marketplace_account, outsider, deployer, owners, nodes):
    for caller in (marketplace_account, outsider, deployer):
        with reverts_with("ProofOfUseCallerNotBridge"):
            pou.recordBridgedUsage(MODEL_A, owners[0], [(nodes[0], 1, 0)], sender=caller)


@pytest.mark.parametrize("count", [0, MAX_BRIDGED_COUNT + 1])
def test_record_bridged_usage__count_out_of_bounds__reverts(pou, bridge, owners, nodes, count):
    with reverts_with("ProofOfUseCountOutOfBounds"):
        pou.recordBridgedUsage(MODEL_A, owners[0], [(nodes[0], count, 0)], sender=bridge)


def test_record_bridged_usage__largest_count__is_accepted(pou, bridge, owners, nodes):
    pou.recordBridgedUsage(MODEL_A, owners[0], [(nodes[0], MAX_BRIDGED_COUNT, 0)], sender=bridge)
    pou.recordBridgedUsage(MODEL_A, owners[0], [(nodes[0], MAX_BRIDGED_COUNT, 0)], sender=bridge)
    assert pou.modelUsage(0, MODEL_A) == 2 * MAX_BRIDGED_COUNT
    assert pou.nodeUsage(0, nodes[0]) == 0


@pytest.mark.parametrize("zero", ["owner", "node"])
def test_record_bridged_usage__zero_account__reverts(pou, bridge, owners, nodes, zero):
    owner = ZERO_ADDRESS if zero == "owner" else owners[0]
    node = ZERO_ADDRESS if zero == "node" else nodes[0]
    with reverts_with("ProofOfUseZeroAddress"):
        pou.recordBridgedUsage(MODEL_A, owner, [(node, 1, 0)], sender=bridge)


# ---- funding ----


def test_fund_epoch__current_and_future__pulls_joy_into_the_pools(pou, token, fund, deployer, alice, joy):
    before = token.balanceOf(alice)
    receipt = fund(alice, 0, joy(100))
    fund(alice, 0, joy(50))
    fund(deployer, 7, joy(30))

    assert pou.EpochFunded(0, alice.address, joy(100)) in receipt.events
    assert token.balanceOf(alice) == before - joy(150)
    assert pou.epochInfo(0).pool == joy(150)
    assert pou.epochInfo(7).pool == joy(30)
    assert token.balanceOf(pou) == pou.outstandingRewards() == joy(180)


def test_fund_epoch__ended_epoch__reverts(pou, fund, advance, alice, joy):
    advance(2)
    with reverts_with("ProofOfUseEpochEnded"):
        fund(alice, 1, joy(1))
    fund(alice, 2, joy(1))  # the current epoch still takes funds


def test_fund_epoch__zero_amount__reverts(pou, alice):
    with reverts_with("ProofOfUseZeroAmount"):
        pou.fundEpoch(0, 0, sender=alice)


def test_fund_epoch__without_allowance__reverts(pou, token, alice, joy):
    with reverts_with("ERC20InsufficientAllowance", abi=token):
        pou.fundEpoch(0, joy(1), sender=alice)
    assert pou.epochInfo(0).pool == 0


def test_fund_epoch__by_owner__fixes_the_share_but_a_donation_does_not(pou, fund, deployer, alice, joy):
    fund(alice, 1, joy(10))
    assert not pou.epochInfo(1).shareFixed
    receipt = fund(deployer, 1, joy(10))
    assert pou.EpochShareFixed(1, OWNER_SHARE_BPS) in receipt.events
    info = pou.epochInfo(1)
    assert (info.shareFixed, info.ownerShareBps, info.pool) == (True, OWNER_SHARE_BPS, joy(20))


# ---- claims ----


def test_claims__owners_and_nodes_3_to_1__pay_pro_rata_within_the_pool(
    pou, token, record, fund, advance, deployer, owners, nodes, joy
):
    (owner_a, owner_b), (n1, n2, _) = owners, nodes
    pool = joy(1_000) + 7  # indivisible, so that every share rounds
    fund(deployer, 0, pool)
    for _ in range(3):
        record(MODEL_A, owner_a, [n1])
    record(MODEL_B, owner_b, [n2])
    advance()

    owners_part, nodes_part = split(pool)
    expected = {
        ("owner", owner_a): owners_part * 3 // 4,
        ("owner", owner_b): owners_part * 1 // 4,
        ("node", n1): nodes_part * 3 // 4,
        ("node", n2): nodes_part * 1 // 4,
    }
    assert pou.pendingOwnerReward(0, owner_a) == expected["owner", owner_a]
    assert pou.pendingNodeReward(0, n2) == expected["node", n2]

    paid = 0
    for (role, account), amount in expected.items():
        before = token.balanceOf(account)
        if role == "owner":
            receipt = pou.claimOwnerReward(0, sender=account)
            assert pou.OwnerRewardClaimed(0, account.address, amount) in receipt.events
            assert pou.pendingOwnerReward(0, account) == 0
        else:
            receipt = pou.claimNodeReward(0, sender=account)
            assert pou.NodeRewardClaimed(0, account.address, amount) in receipt.events
            assert pou.pendingNodeReward(0, account) == 0
        assert receipt.return_value == amount
        assert token.balanceOf(account) == before + amount
        paid += amount

    assert 0 < pool - paid < len(expected)  # floored: under one wei of dust per claimant
    assert pou.epochInfo(0).paidOut == paid
    assert token.balanceOf(pou) == pou.outstandingRewards() == pool - paid
    assert pou.claimed(0, owner_a) == (True, False)
    assert pou.claimed(0, n1) == (False, True)


def test_claims__owners_fees_1_to_3__pay_1_to_3_of_a_large_pool(
    pou, token, record, fund, advance, deployer, owners, nodes, joy
):
    """Value, not counts: owner A settles three inferences worth 5,000 JOY of protocol fees in
    all, owner B one worth 15,000; A gets a third of what B gets. The pool is large but below
    REWARD_CAP_BPS of the fees, so the cap does not bind."""
    (owner_a, owner_b), (n1, n2, _) = owners, nodes
    pool = joy(10_000)
    fund(deployer, 0, pool)
    for value in (joy(1_000), joy(1_000), joy(3_000)):
        record(MODEL_A, owner_a, [n1], value)
    record(MODEL_B, owner_b, [n2], joy(15_000))
    advance()

    owners_part, nodes_part = split(pool)
    paid = {
        "owner a": pou.claimOwnerReward(0, sender=owner_a).return_value,
        "owner b": pou.claimOwnerReward(0, sender=owner_b).return_value,
        "node 1": pou.claimNodeReward(0, sender=n1).return_value,
        "node 2": pou.claimNodeReward(0, sender=n2).return_value,
    }
    assert paid == {
        "owner a": owners_part // 4,
        "owner b": owners_part * 3 // 4,
        "node 1": nodes_part // 4,
        "node 2": nodes_part * 3 // 4,
    }
    assert 3 * paid["owner a"] == paid["owner b"] and 3 * paid["node 1"] == paid["node 2"]
    assert sum(paid.values()) == pool  # nothing capped, nothing left
    assert token.balanceOf(pou) == pou.outstandingRewards() == 0


def test_claims__pool_large_against_fees__cap_binds_and_the_rest_is_swept_after_the_claim_period(
    pou, token, timelock, record, fund, advance, deployer, owners, nodes, joy, chain
):
    """One settlement worth 10 JOY of protocol fees against a 1,000 JOY pool: pro rata it would
    take the whole pool; the owner gets 90 % of its 30 % of 10 JOY, the node 90 % of 70 %."""
    owner, node = owners[0], nodes[0]
    pool, value = joy(1_000), joy(10)
    fund(deployer, 0, pool)
    record(MODEL_A, owner, [node], value)
    owner_cap = value * OWNER_SHARE_BPS * REWARD_CAP_BPS // MAX_BPS**2
    node_cap = value * (MAX_BPS - OWNER_SHARE_BPS) * REWARD_CAP_BPS // MAX_BPS**2
    assert (owner_cap, node_cap) == (joy(27) // 10, joy(63) // 10)
    # The projection before the epoch ends is capped as well.
    assert (pou.pendingOwnerReward(0, owner), pou.pendingNodeReward(0, node)) == (owner_cap, node_cap)
    advance()

    assert pou.claimOwnerReward(0, sender=owner).return_value == owner_cap
    assert pou.claimNodeReward(0, sender=node).return_value == node_cap
    assert owner_cap + node_cap == value * REWARD_CAP_BPS // MAX_BPS < value  # below what it cost
    rest = pool - owner_cap - node_cap
    assert token.balanceOf(pou) == pou.outstandingRewards() == rest
    with reverts_with("ProofOfUseEpochHadUsage"):  # the rest belongs to no later epoch...
        pou.rollOver(0, 1, sender=deployer)
    with reverts_with("ProofOfUseClaimPeriodNotOver"):  # ...and stays until the claim period ends
        pou.sweepUnclaimed(0, timelock, sender=deployer)

    chain.pending_timestamp = pou.claimDeadline(0)
    chain.mine()
    treasury = token.balanceOf(timelock)
    receipt = pou.sweepUnclaimed(0, timelock, sender=deployer)
    assert pou.UnclaimedSwept(0, timelock.address, rest) in receipt.events
    assert token.balanceOf(timelock) == treasury + rest
    assert token.balanceOf(pou) == pou.outstandingRewards() == 0


@pytest.mark.parametrize("share_bps", [0, OWNER_SHARE_BPS, MAX_BPS])
def test_claims__self_dealt_settlement__earn_less_than_its_value(
    pou, record, fund, advance, deployer, owners, joy, share_bps
):
    """One account owns the model, serves the request and (off stage) paid it: whatever the split,
    its two rewards together stay at REWARD_CAP_BPS of the protocol's share it paid."""
    account, value = owners[0], joy(50)
    pou.setOwnerShareBps(share_bps, sender=deployer)
    fund(deployer, 0, joy(1_000_000))
    record(MODEL_A, account, [account], value)
    advance()
    earned = 0
    for claim, role_share in ((pou.claimOwnerReward, share_bps), (pou.claimNodeReward, MAX_BPS - share_bps)):
        if role_share == 0:  # the role gets no part of the pool: nothing to claim
            with reverts_with("ProofOfUseNothingToClaim"):
                claim(0, sender=account)
        else:
            earned += claim(0, sender=account).return_value
    assert earned == value * REWARD_CAP_BPS // MAX_BPS < value


def test_claims__bridged_usage_only__has_nothing_to_claim(
    pou, record, fund, advance, deployer, bridge, owners, nodes, joy
):
    (owner_a, owner_b), (n1, n2, _) = owners, nodes
    fund(deployer, 0, joy(800))
    record(MODEL_A, owner_a, [n1])
    pou.recordBridgedUsage(MODEL_B, owner_b, [(n2, 3, 0)], sender=bridge)
    advance()
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimOwnerReward(0, sender=owner_b)
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimNodeReward(0, sender=n2)
    # The paid settlement is the epoch's only weight: its owner and node share the whole pool.
    owners_part, nodes_part = split(joy(800))
    assert pou.claimOwnerReward(0, sender=owner_a).return_value == owners_part
    assert pou.claimNodeReward(0, sender=n1).return_value == nodes_part


def test_claims__same_account_as_owner_and_node__claims_both_roles(
    pou, token, record, fund, advance, deployer, owners, joy
):
    owner = owners[0]
    fund(deployer, 0, joy(100))
    record(MODEL_A, owner, [owner])
    advance()
    owners_part, nodes_part = split(joy(100))
    assert pou.claimOwnerReward(0, sender=owner).return_value == owners_part
    assert pou.claimNodeReward(0, sender=owner).return_value == nodes_part
    assert pou.claimed(0, owner) == (True, True)
    assert token.balanceOf(pou) == 0


@pytest.mark.parametrize("role", ["owner", "node"])
def test_claim__before_epoch_ends__reverts(pou, record, fund, deployer, owners, nodes, joy, role):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]])
    # The projection is visible, the payout is not.
    assert pou.pendingOwnerReward(0, owners[0]) == split(joy(100))[0]
    with reverts_with("ProofOfUseEpochNotEnded"):
        if role == "owner":
            pou.claimOwnerReward(0, sender=owners[0])
        else:
            pou.claimNodeReward(0, sender=nodes[0])


@pytest.mark.parametrize("role", ["owner", "node"])
def test_claim__twice__reverts(pou, token, record, fund, advance, deployer, owners, nodes, joy, role):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]])
    record(MODEL_A, owners[1], [nodes[1]])
    advance()
    account, claim = (owners[0], pou.claimOwnerReward) if role == "owner" else (nodes[0], pou.claimNodeReward)
    claim(0, sender=account)
    balance = token.balanceOf(account)
    with reverts_with("ProofOfUseAlreadyClaimed"):
        claim(0, sender=account)
    assert token.balanceOf(account) == balance


def test_claim__no_usage_in_epoch__reverts(pou, record, fund, advance, deployer, outsider, owners, nodes, joy):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]])
    advance()
    # An owner is not a node, a node is not an owner, and an outsider is neither.
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimNodeReward(0, sender=owners[0])
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimOwnerReward(0, sender=nodes[0])
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimOwnerReward(0, sender=outsider)


def test_claim__usage_but_no_pool__reverts(pou, record, advance, owners, nodes):
    record(MODEL_A, owners[0], [nodes[0]])
    advance()
    assert pou.pendingOwnerReward(0, owners[0]) == 0
    with reverts_with("ProofOfUseNothingToClaim"):
        pou.claimOwnerReward(0, sender=owners[0])


def test_set_owner_share_bps__after_owner_funded__keeps_that_epochs_split(
    pou, token, record, fund, advance, deployer, owners, nodes, joy
):
    fund(deployer, 0, joy(1_000))
    record(MODEL_A, owners[0], [nodes[0]])
    pou.setOwnerShareBps(9_000, sender=deployer)  # after funding, before the epoch ends
    fund(deployer, 1, joy(1_000))  # the next epoch is funded under the new share
    advance()

    assert pou.epochInfo(0).ownerShareBps == OWNER_SHARE_BPS
    assert pou.epochInfo(1).ownerShareBps == 9_000
    owner_paid = pou.claimOwnerReward(0, sender=owners[0]).return_value
    pou.setOwnerShareBps(MAX_BPS, sender=deployer)  # and between the two claims of the epoch
    node_paid = pou.claimNodeReward(0, sender=nodes[0]).return_value
    assert (owner_paid, node_paid) == split(joy(1_000), OWNER_SHARE_BPS)
    assert owner_paid + node_paid == joy(1_000)
    assert token.balanceOf(pou) == joy(1_000)  # only epoch 1's pool is left


def test_set_owner_share_bps__donated_epoch__share_fixed_at_first_claim(
    pou, record, fund, advance, deployer, alice, owners, nodes, joy
):
    fund(alice, 0, joy(1_000))  # a donation leaves the share open...
    record(MODEL_A, owners[0], [nodes[0]])
    advance()
    pou.setOwnerShareBps(5_000, sender=deployer)  # ...so this change still applies to epoch 0,
    assert pou.epochInfo(0).ownerShareBps == 5_000
    receipt = pou.claimNodeReward(0, sender=nodes[0])  # ...until the first claim fixes it.
    assert pou.EpochShareFixed(0, 5_000) in receipt.events
    pou.setOwnerShareBps(0, sender=deployer)
    assert pou.claimOwnerReward(0, sender=owners[0]).return_value == joy(500)
    assert receipt.return_value == joy(500)


# ---- roll-over, sweep, surplus ----


def test_roll_over__funded_epoch_without_usage__moves_its_pool(pou, fund, advance, deployer, joy):
    fund(deployer, 0, joy(100))
    pou.setOwnerShareBps(6_000, sender=deployer)
    advance()
    receipt = pou.rollOver(0, 3, sender=deployer)
    assert pou.EpochRolledOver(0, 3, joy(100)) in receipt.events
    assert pou.epochInfo(0).pool == 0
    target = pou.epochInfo(3)
    assert (target.pool, target.shareFixed, target.ownerShareBps) == (joy(100), True, 6_000)
    assert pou.outstandingRewards() == joy(100)


def test_roll_over__epoch_with_weighted_usage__reverts(pou, record, fund, advance, deployer, owners, nodes, joy):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]], WEIGHT_UNIT)  # the least value that weighs
    advance()
    with reverts_with("ProofOfUseEpochHadUsage"):
        pou.rollOver(0, 1, sender=deployer)
    assert pou.epochInfo(0).pool == joy(100)


def test_roll_over__epoch_with_only_unweighted_usage__moves_its_pool(
    pou, record, fund, advance, deployer, bridge, owners, nodes, joy
):
    """Feeless inferences and settlements worth less than a unit weigh nothing: nobody can claim
    the epoch's pool, so it may move on."""
    fund(deployer, 0, joy(100))
    pou.recordBridgedUsage(MODEL_B, owners[1], [(nodes[1], 7, 0)], sender=bridge)
    record(MODEL_A, owners[0], [nodes[0]], WEIGHT_UNIT - 1)
    advance()
    receipt = pou.rollOver(0, 1, sender=deployer)
    assert pou.EpochRolledOver(0, 1, joy(100)) in receipt.events
    assert (pou.epochInfo(0).pool, pou.epochInfo(1).pool) == (0, joy(100))
    assert pou.modelUsage(0, MODEL_B) == 7  # the counts stay


@pytest.mark.parametrize(
    "source, target, error",
    [
        (2, 3, "ProofOfUseEpochNotEnded"),  # the source is the current epoch: usage may still come
        (1, 0, "ProofOfUseEpochEnded"),  # the target has ended: nobody could be paid from it
        (0, 2, "ProofOfUseNothingToMove"),  # nothing was funded
    ],
)
def test_roll_over__wrong_epochs_or_empty_pool__reverts(pou, fund, advance, deployer, joy, source, target, error):
    fund(deployer, 1, joy(100))
    advance(2)
    with reverts_with(error):
        pou.rollOver(source, target, sender=deployer)


def test_sweep_unclaimed__after_claim_period__pays_the_rest_and_closes_claims(
    pou, token, timelock, record, fund, advance, deployer, owners, nodes, joy, chain
):
    fund(deployer, 0, joy(100))
    record(MODEL_A, owners[0], [nodes[0]])
    advance()
    node_paid = pou.claimNodeReward(0, sender=nodes[0]).return_value
    chain.pending_timestamp = pou.claimDeadline(0)
    chain.mine()

    treasury = token.balanceOf(timelock)
    receipt = pou.sweepUnclaimed(0, timelock, sender=deployer)
    rest = joy(100) - node_paid
    assert pou.UnclaimedSwept(0, timelock.address, rest) in receipt.events
    assert token.balanceOf(timelock) == treasury + rest
    assert token.balanceOf(pou) == pou.outstandingRewards() == 0
    info = pou.epochInfo(0)
    assert (info.swept, info.paidOut) == (True, joy(100))
    assert pou.pendingOwnerReward(0, owners[0]) == 0
    with reverts_with("ProofOfUseEpochSwept"):
        pou.claimOwnerReward(0, sender=owners[0])
    with reverts_with("ProofOfUseEpochSwept"):
        pou.sweepUnclaimed(0, timelock, sender=deployer)


def test_sweep_unclaimed__before_claim_deadline__reverts(pou, fund, advance, deployer, joy, chain):
    fund(deployer, 0, joy(100))
    advance()
    chain.pending_timestamp = pou.claimDeadline(0) - 60
    chain.mine()
    with reverts_with("ProofOfUseClaimPeriodNotOver"):
        pou.sweepUnclaimed(0, deployer, sender=deployer)


@pytest.mark.parametrize("case", ["not ended", "zero recipient", "empty"])
def test_sweep_unclaimed__bad_request__reverts(pou, fund, deployer, joy, chain, case):
    fund(deployer, 0, joy(100))
    if case != "not ended":
        chain.pending_timestamp = pou.claimDeadline(1)
        chain.mine()
    epoch, to, error = {
        "not ended": (0, deployer, "ProofOfUseEpochNotEnded"),
        "zero recipient": (0, ZERO_ADDRESS, "ProofOfUseZeroAddress"),
        "empty": (1, deployer, "ProofOfUseNothingToMove"),
    }[case]
    with reverts_with(error):
        pou.sweepUnclaimed(epoch, to, sender=deployer)


def test_pool_surplus__joy_sent_directly__is_added_to_a_pool(pou, token, fund, advance, deployer, alice, joy):
    fund(deployer, 0, joy(10))
    token.transfer(pou, joy(5), sender=alice)  # not through fundEpoch: in no pool yet
    assert token.balanceOf(pou) == pou.outstandingRewards() + joy(5)
    advance()
    receipt = pou.poolSurplus(2, sender=deployer)
    assert pou.SurplusPooled(2, joy(5)) in receipt.events
    assert pou.epochInfo(2).pool == joy(5)
    assert token.balanceOf(pou) == pou.outstandingRewards() == joy(15)
    with reverts_with("ProofOfUseZeroAmount"):
        pou.poolSurplus(2, sender=deployer)
    with reverts_with("ProofOfUseEpochEnded"):
        pou.poolSurplus(0, sender=deployer)


# ---- governance ----


def test_dao_proposal__approve_and_fund__funds_an_epoch_from_the_treasury(
    pou, token, timelock, governance, deployer, alice, bob, record, advance, owners, nodes, joy
):
    pou.transferOwnership(timelock, sender=deployer)
    assert pou.owner() == timelock.address
    treasury = token.balanceOf(timelock)
    assert treasury == joy(500_000_000)

    epoch = pou.currentEpoch() + 1  # the vote and the delay take a few minutes
    calls = [
        (token, token.approve.encode_input(pou, joy(10_000))),
        (pou, pou.fundEpoch.encode_input(epoch, joy(10_000))),
    ]
    receipt = governance.enact(alice, calls, "Fund next epoch's usage rewards", [(alice, 1), (bob, 1)])

    assert pou.EpochFunded(epoch, timelock.address, joy(10_000)) in receipt.events
    assert token.balanceOf(timelock) == treasury - joy(10_000)
    info = pou.epochInfo(epoch)
    assert (info.pool, info.shareFixed) == (joy(10_000), True)  # the DAO's funding fixes the split

    with reverts_with("OwnableUnauthorizedAccount"):
        pou.setOwnerShareBps(9_000, sender=deployer)

    # ...and the rewards reach the users.
    advance(epoch - pou.currentEpoch())
    record(MODEL_A, owners[0], [nodes[0]])
    advance()
    assert pou.claimOwnerReward(epoch, sender=owners[0]).return_value == split(joy(10_000))[0]
    assert pou.claimNodeReward(epoch, sender=nodes[0]).return_value == split(joy(10_000))[1]


# ---- gas ----


def test_record_usage__gas__fits_the_settlement_budget(
    pou, record, fund, advance, deployer, bridge, owners, nodes, joy, genesis_holders, capsys
):
    """recordUsage runs inside every settlement (220k gas for the whole round trip). Gas is the
    receipt's, so it includes the 21,000 intrinsic gas and the calldata that an internal call
    from the marketplace would not pay."""
    (o1, o2), (n1, n2, n3) = owners, nodes
    other = genesis_holders[9]
    gas = {}
    # Epoch 0 has no pool and nobody has any usage yet: every slot written is fresh.
    gas["1 node, first in epoch, all slots fresh"] = record(MODEL_A, o1, [n1]).gas_used
    gas["1 node, repeat"] = record(MODEL_A, o1, [n1]).gas_used
    gas["3 nodes, new model/owner/nodes (epoch totals warm)"] = record(MODEL_B, o2, [n2, n3, other]).gas_used
    gas["3 nodes, repeat"] = record(MODEL_B, o2, [n2, n3, other]).gas_used
    gas["bridged, repeat"] = pou.recordBridgedUsage(MODEL_A, o1, [(n1, 5, 0)], sender=bridge).gas_used
    gas["1 node, below a weight unit, repeat"] = record(MODEL_A, o1, [n1], WEIGHT_UNIT - 1).gas_used
    # Epoch 1, funded in advance (its totals share the pool's slot), same actors as in epoch 0:
    # accounts keep epochs 0 and 1 in one slot, models epochs 0 to 3.
    fund(deployer, 1, joy(100))
    advance()
    gas["1 node, first in a funded epoch, actors active last epoch"] = record(MODEL_A, o1, [n1]).gas_used
    # Epoch 4 starts a new slot for every account (epochs 4-5) and model (4-7), and has no pool.
    advance(3)
    gas["3 nodes, first in epoch, all slots fresh"] = record(MODEL_B, o2, [n2, n3, other]).gas_used
    gas["claimOwnerReward (first claim of the account)"] = pou.claimOwnerReward(1, sender=o1).gas_used
    gas["claimNodeReward (first claim of the account)"] = pou.claimNodeReward(1, sender=n1).gas_used

    with capsys.disabled():
        print("\nProofOfUse gas (receipt gas_used, 21,000 intrinsic gas included):")
        for name, used in gas.items():
            print(f"  {name:<58} {used:>8,}")

    # Ceilings a little above what the packed layout measures (120,934 / 52,534 / 169,248 /
    # 66,648 / 52,734): one more storage slot per settlement (+5,000 warm, +22,100 fresh) fails.
    assert gas["1 node, first in epoch, all slots fresh"] <= 125_000
    assert gas["1 node, repeat"] <= 55_000
    assert gas["3 nodes, first in epoch, all slots fresh"] <= 172_000
    assert gas["3 nodes, repeat"] <= 69_000
    assert gas["1 node, first in a funded epoch, actors active last epoch"] <= 55_000
    assert gas["claimOwnerReward (first claim of the account)"] <= 90_000


# ---- invariants (Hypothesis) ----



def magnitudes(low, high):
    """Integers from 10**low to 10**(high + 1), each power of ten about as likely (st.integers
    over such a range draws mostly small numbers)."""
    return st.integers(low, high).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1)))


# Pools: a few wei (every share rounds) or 0.001 to 1,000 JOY. Values of settlements: below a
# unit (no weight), a few units (a node's part may floor to zero), or 1 gwei to 1,000 JOY; the
# cap binds on the claims of an epoch whose pool exceeds REWARD_CAP_BPS of its value, the plain
# pro-rata split on the others, and both happen often.
AMOUNTS = st.one_of(st.integers(1, 10**6), magnitudes(15, 20))
VALUES = st.one_of(st.integers(0, 3 * WEIGHT_UNIT), magnitudes(9, 20))


class EpochView(NamedTuple):
    pool: int
    totalOwnerWeight: int
    totalNodeWeight: int
    paidOut: int
    ownerShareBps: int
    shareFixed: bool
    swept: bool


class RawViews:
    """The views the invariants read after every step, as bare ``eth_call``s (about 0.5 ms each
    against some 3 ms through Ape's contract wrapper; there are hundreds of steps)."""

    def __init__(self, provider, pou, token):
        self.provider, self.pou, self.token = provider, pou.address, token.address

    def _call(self, to, signature, types=(), args=()):
        data = keccak(text=signature)[:4] + abi_encode(list(types), list(args))
        result = self.provider.make_request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
        return bytes.fromhex(result[2:] if result.startswith("0x") else result)

    def _uint(self, to, signature, types=(), args=()):
        return int.from_bytes(self._call(to, signature, types, args), "big")

    def joy_balance(self):
        return self._uint(self.token, "balanceOf(address)", ["address"], [self.pou])

    def outstanding_rewards(self):
        return self._uint(self.pou, "outstandingRewards()")

    def model_usage(self, epoch, model):
        return self._uint(self.pou, "modelUsage(uint256,bytes32)", ["uint256", "bytes32"], [epoch, model])

    def epoch_info(self, epoch):
        words = abi_decode(["uint256"] * 7, self._call(self.pou, "epochInfo(uint256)", ["uint256"], [epoch]))
        return EpochView(*words[:5], bool(words[5]), bool(words[6]))


class RewardBooks(RuleBasedStateMachine):
    """Random usage (paid settlements of random value, from the current or a former marketplace,
    and bridged checkpoints), funding (by the governor and by a donor), share changes, marketplace
    changes, time and claims, followed by a Python model of the pools. After every step the
    contract's JOY equals what the pools still owe, no epoch has paid more than its pool, each
    epoch's weight totals match the model's, and every claim pays exactly what the model computes
    (pro rata to value, capped at REWARD_CAP_BPS of the role's share of the claimant's weight;
    share fixed at the governor's first funding or the first claim) or fails with the error the
    model predicts, so no account is paid twice for the same epoch and role."""

    def __init__(self, chain, pou, token, marketplaces, bridge, governor, donor, owners, nodes):
        super().__init__()
        self.chain, self.pou, self.token = chain, pou, token
        self.marketplaces, self.bridge, self.governor, self.donor = marketplaces, bridge, governor, donor
        self.owners, self.nodes = owners, nodes
        self.accounts = {account.address: account for account in (*owners, *nodes)}
        self.views = RawViews(chain.provider, pou, token)
        self.snapshot_id = None

    @initialize(
        amounts=st.lists(AMOUNTS, min_size=4, max_size=4),
        by_governor=st.lists(st.booleans(), min_size=4, max_size=4),
        first_usage=st.lists(
            st.tuples(st.integers(0, 1), st.integers(0, 2), magnitudes(9, 20)), min_size=1, max_size=3
        ),
    )
    def start(self, amounts, by_governor, first_usage):
        self.snapshot_id = self.chain.snapshot()
        for funder in (self.governor, self.donor):
            self.token.approve(self.pou, 2**256 - 1, sender=funder)
        self.epoch = self.pou.currentEpoch()
        self.share = self.pou.ownerShareBps()
        self.current = self.pou.marketplace()
        assert self.current == self.marketplaces[0].address
        self.formers = set()  # addresses of the marketplaces governance replaced
        self.pool, self.paid = {}, {}  # epoch -> JOY
        self.fixed = {}  # epoch -> fixed owner share
        self.usage = {}  # (epoch, role, account address) -> weight in units, only when nonzero
        self.totals = {}  # (epoch, role) -> weight in units
        self.models = {}  # (epoch, model) -> inferences
        self.claimed = set()  # (epoch, role, account address)
        # Claims should have something to draw on from the first step: the first four epochs
        # start funded, and the first one ends with some usage that weighs.
        for ahead, (amount, governor) in enumerate(zip(amounts, by_governor)):
            self.fund(governor, ahead, amount)
        for owner, node, value in first_usage:
            self.record_usage(owner, [node], (value, False), None, False)
        self.advance(1)

    def teardown(self):
        if self.snapshot_id is not None:
            self.chain.restore(self.snapshot_id)

    def _weigh(self, epoch, role, account, units):
        self.totals[epoch, role] = self.totals.get((epoch, role), 0) + units
        if units:
            self.usage[epoch, role, account] = self.usage.get((epoch, role, account), 0) + units

    def _count(self, epoch, model, count):
        self.models[epoch, model] = self.models.get((epoch, model), 0) + count
        assert self.views.model_usage(epoch, model) == self.models[epoch, model]

    def _expected(self, epoch, role, account):
        weight = self.usage.get((epoch, role, account), 0)
        share = self.fixed.get(epoch, self.share)
        return capped_reward(self.pool.get(epoch, 0), share, role, weight, self.totals.get((epoch, role), 0))

    # -- rules --

    @rule(
        owner=st.integers(0, 1),
        served_by=st.lists(st.integers(0, 2), min_size=1, max_size=3),
        paid=st.tuples(VALUES, st.booleans()),
        bridged=st.one_of(st.none(), st.integers(1, 5)),
        then_advance=st.booleans(),
    )
    def record_usage(self, owner, served_by, paid, bridged, then_advance):
        """A paid settlement of ``value`` (``by_former``: recorded by a marketplace governance
        replaced, when there is one), or (``bridged``) a checkpoint of feeless inferences by the
        first node; often the last one of its epoch, so that claims have ended epochs to draw on."""
        value, by_former = paid
        owner = self.owners[owner].address
        if bridged is None:
            sender = self._marketplace_at(min(self.formers) if by_former and self.formers else self.current)
            served_by = [self.nodes[i].address for i in served_by]
            self.pou.recordUsage(MODEL_A, owner, served_by, value, sender=sender)  # the invariants check the weights
            units = value // WEIGHT_UNIT
            part = units // len(served_by)
            if units:  # a settlement below a unit adds nothing, not even a node's zero part
                self._weigh(self.epoch, "owner", owner, units)
                for node in served_by:
                    self._weigh(self.epoch, "node", node, part)
            self._count(self.epoch, MODEL_A, 1)
        else:
            # the protocol's part of what the model's budget paid (often nothing) weighs for both
            node = self.nodes[served_by[0]].address
            self.pou.recordBridgedUsage(MODEL_B, owner, [(node, bridged, value)], sender=self.bridge)
            units = value // WEIGHT_UNIT
            if units:
                self._weigh(self.epoch, "owner", owner, units)
                self._weigh(self.epoch, "node", node, units)
            self._count(self.epoch, MODEL_B, bridged)
        if then_advance:
            self.advance(1)

    def _marketplace_at(self, address):
        return next(m for m in self.marketplaces if m.address == address)

    @rule(by_governor=st.booleans(), ahead=st.integers(0, 2), amount=AMOUNTS)
    def fund(self, by_governor, ahead, amount):
        epoch = self.epoch + ahead
        self.pou.fundEpoch(epoch, amount, sender=self.governor if by_governor else self.donor)
        self.pool[epoch] = self.pool.get(epoch, 0) + amount
        if by_governor:
            self.fixed.setdefault(epoch, self.share)

    @rule(share=st.integers(0, MAX_BPS))
    def set_share(self, share):
        self.pou.setOwnerShareBps(share, sender=self.governor)
        self.share = share

    @rule(closing=st.tuples(VALUES, st.integers(0, 1), st.integers(0, 2)))
    def switch_marketplace(self, closing):
        """Governance swaps the two marketplaces; the replaced one then settles a request it
        still held (``closing``: value, owner, node), whose usage counts as any other."""
        (other,) = [m for m in self.marketplaces if m.address != self.current]
        self.pou.setMarketplace(other, sender=self.governor)
        self.formers = (self.formers | {self.current}) - {other.address}
        self.current = other.address
        value, owner, node = closing
        self.record_usage(owner, [node], (value, True), None, False)

    @rule(epochs=st.integers(1, 2))
    def advance(self, epochs):
        self.epoch += epochs
        self.chain.pending_timestamp = self.pou.genesisTime() + self.epoch * EPOCH + 10
        self.chain.mine()

    def _unclaimed(self, role):
        """(epoch, account) pairs with weight in the role in an ended epoch, not claimed yet."""
        usage = {(e, a) for e, r, a in self.usage if r == role and e < self.epoch}
        return sorted(c for c in usage if (c[0], role, c[1]) not in self.claimed)

    @precondition(lambda self: self._unclaimed("owner"))
    @rule(data=st.data())
    def claim_owner(self, data):
        self._claim(data, "owner")

    @precondition(lambda self: self._unclaimed("node"))
    @rule(data=st.data())
    def claim_node(self, data):
        self._claim(data, "node")

    def _claim(self, data, role):
        # Mostly an account with weight that has not claimed yet (one that would be paid, if
        # any); now and then one that has, or any account in any ended epoch (usually nothing to
        # claim). Reverts are slow: keep few.
        unclaimed = self._unclaimed(role)
        payable = [(e, a) for e, a in unclaimed if self._expected(e, role, a)] or unclaimed
        again = sorted((e, a) for e, r, a in self.claimed if r == role)
        mode = data.draw(st.sampled_from(["anyone", "again", *["unclaimed"] * 4]), label="mode")
        if mode == "anyone":
            epochs = sorted({e for e, _ in unclaimed})
            pick = st.tuples(st.sampled_from(epochs), st.sampled_from(sorted(self.accounts)))
        else:
            pick = st.sampled_from(again if (mode == "again" and again) else payable)
        epoch, address = data.draw(pick, label="epoch, account")
        account = self.accounts[address]
        claim = self.pou.claimOwnerReward if role == "owner" else self.pou.claimNodeReward
        key = (epoch, role, address)
        share_then = self.fixed.get(epoch, self.share)  # a paying claim fixes the share
        expected = self._expected(epoch, role, address)
        if key in self.claimed:
            with reverts_with("ProofOfUseAlreadyClaimed"):
                claim(epoch, sender=account)
        elif expected == 0:
            with reverts_with("ProofOfUseNothingToClaim"):
                claim(epoch, sender=account)
        else:
            receipt = claim(epoch, sender=account)
            assert receipt.return_value == expected
            assert self.pou.claimed(epoch, address)[role == "node"]
            self.fixed[epoch] = share_then
            self.claimed.add(key)
            self.paid[epoch] = self.paid.get(epoch, 0) + expected

    # -- invariants --

    @invariant()
    def joy_is_conserved(self):
        owed = sum(self.pool.values()) - sum(self.paid.values())
        assert self.views.joy_balance() == self.views.outstanding_rewards() == owed

    @invariant()
    def no_epoch_pays_more_than_its_pool_or_changes_its_split_or_its_weights(self):
        weighed = {epoch for epoch, _ in self.totals}
        for epoch in sorted(set(self.pool) | weighed):
            info = self.views.epoch_info(epoch)
            assert info.paidOut == self.paid.get(epoch, 0) <= info.pool == self.pool.get(epoch, 0)
            # Once the governor funded it or anyone was paid from it, the split stays put.
            assert info.shareFixed == (epoch in self.fixed)
            assert info.ownerShareBps == self.fixed.get(epoch, self.share)
            assert (info.totalOwnerWeight, info.totalNodeWeight) == (
                self.totals.get((epoch, "owner"), 0),
                self.totals.get((epoch, "node"), 0),
            )


def test_books__random_usage_funding_and_claims__conserve_joy_and_pay_capped_shares_once(
    chain, pou, token, marketplace_account, outsider, bridge, deployer, alice, owners, nodes
):
    run_state_machine_as_test(
        lambda: RewardBooks(chain, pou, token, (marketplace_account, outsider), bridge, deployer, alice, owners, nodes),
        settings=settings(max_examples=20, stateful_step_count=15),
    )
