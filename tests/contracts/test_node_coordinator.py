"""NodeCoordinator: registration, staking and unbonding, load-aware O(1) assignment, task bonds,
slashing and liveness, governed parameters; JOY conservation checked by a stateful test.

The marketplace is stood in for by ``carol`` (set with setMarketplace), so that the tests call
assign / release / slash directly. Nodes are genesis holders (50M JOY each) or fresh accounts.
"""

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

from helpers.chain_asserts import permit_signature, reverts_with
from helpers.draw_model import predict_draw, seed_draw
from joynet.chain.deploy import JOY

ZERO_ADDRESS = "0x" + "00" * 20
MODEL = keccak(text="joynet/mnist-mlp")
OTHER_MODEL = keccak(text="joynet/all-MiniLM-L6-v2")
THIRD_MODEL = keccak(text="joynet/third-model")

MIN_STAKE = 1_000 * JOY
TASK_BOND = 10 * JOY
UNBONDING_DELAY = 3_600
MAX_MISSED = 3
REJOIN_DELAY = 256  # blocks
SHARE_BPS = 2_500
LEASE_BLOCKS = 30  # deploy-config's default
PARAMETERS = (MIN_STAKE, TASK_BOND, UNBONDING_DELAY, MAX_MISSED, SHARE_BPS, LEASE_BLOCKS)

# NodeCoordinator.DeactivationReason
VOLUNTARY, MISSED_DEADLINES, STAKE_BELOW_MINIMUM = range(3)


# ---- fixtures and helpers ----


@pytest.fixture(scope="module")
def marketplace_caller(carol):
    """Stands in for the marketplace contract: the only caller of assign, release and slash."""
    return carol


@pytest.fixture(scope="module")
def own_coordinator(project, token, timelock, deployer, marketplace_caller):
    """Owned by the deployer (as before the deploy script hands it over); the timelock is the treasury."""
    own_coordinator = project.NodeCoordinator.deploy(token, deployer, timelock, *PARAMETERS, sender=deployer)
    own_coordinator.setMarketplace(marketplace_caller, sender=deployer)
    return own_coordinator


@pytest.fixture(scope="module", autouse=True)
def wider_fixtures_first(chain, own_coordinator, outsider, doomed_deployer, dao, alice, bob):
    """Sets up the session- and module-scoped fixtures before the first test's snapshot: one
    that appears later makes Ape rebase its isolation snapshots (InvalidIsolationWarning)."""


@pytest.fixture(scope="module")
def node_accounts(accounts):
    """Eight genesis holders that are neither the deployer nor the marketplace."""
    return [accounts[index] for index in (1, 2, 4, 5, 6, 7, 8, 9)]



def wait_out_rejoin_delay(chain, own_coordinator, node):
    """Mines blocks until ``node``'s next transaction may join an eligibility set again."""
    blocks = own_coordinator.rejoinableAt(node) - chain.blocks.head.number - 1
    if blocks > 0:
        chain.mine(blocks)


def register(own_coordinator, token, node, stake=MIN_STAKE, capacity=4, models=(MODEL,)):
    token.approve(own_coordinator, stake, sender=node)
    return own_coordinator.registerNode(stake, capacity, list(models), sender=node)


def fresh_nodes(accounts, chain, token, funder, count, joy_each=2 * MIN_STAKE):
    """New accounts with gas money and JOY, for networks larger than the genesis holders."""
    fresh = [accounts.generate_test_account() for _ in range(count)]
    for account in fresh:
        chain.set_balance(account, 10**20)
        token.transfer(account, joy_each, sender=funder)
    return fresh


class BulkNodes:
    """Builds large networks through raw JSON-RPC: Ape's transaction machinery costs 25-100 ms a
    transaction, a bare ``eth_sendTransaction`` from an impersonated address a few. Only the
    setup goes this way; what a test measures or asserts on is sent through Ape as usual."""

    def __init__(self, provider, token, own_coordinator, funder):
        self.provider, self.token, self.coordinator, self.funder = provider, token, own_coordinator, funder
        self.impersonated = []

    def _send(self, sender, contract, data):
        transaction = {"from": sender, "to": contract.address, "data": "0x" + bytes(data).hex(), "gas": hex(2_000_000)}
        tx_hash = self.provider.make_request("eth_sendTransaction", [transaction])
        receipt = None
        while receipt is None:  # anvil mines right away, but may answer before it is done
            receipt = self.provider.make_request("eth_getTransactionReceipt", [tx_hash])
        assert int(receipt["status"], 16) == 1, receipt
        return receipt

    def nodes(self, count, capacity=4, models=lambda node: (MODEL,)):
        """`count` new nodes (deterministic addresses), each staking MIN_STAKE."""
        start = len(self.impersonated)
        network = [to_checksum_address(keccak(text=f"joynet test node {start + i}")[:20]) for i in range(count)]
        for node in network:
            self.provider.make_request("anvil_impersonateAccount", [node])
            self.impersonated.append(node)
            self.provider.make_request("anvil_setBalance", [node, hex(10**20)])
            self._send(self.funder.address, self.token, self.token.transfer.encode_input(node, MIN_STAKE))
            self._send(node, self.token, self.token.approve.encode_input(self.coordinator, MIN_STAKE))
            register_node = self.coordinator.registerNode.encode_input(MIN_STAKE, capacity, list(models(node)))
            self._send(node, self.coordinator, register_node)
        return network

    def renew_leases(self, network):
        """Renews the leases of ``network`` in one block, as the agents of a live network would:
        built a transaction at a time, a network of more than a few nodes outlasts a lease."""
        self.provider.auto_mine = False
        try:
            data = self.coordinator.renewLease.encode_input()
            hashes = [
                self.provider.make_request(
                    "eth_sendTransaction",
                    [{"from": node, "to": self.coordinator.address, "data": data.to_0x_hex(), "gas": hex(100_000)}],
                )
                for node in network
            ]
            self.provider.make_request("evm_mine", [])
        finally:
            self.provider.auto_mine = True
        blocks = set()
        for tx_hash in hashes:
            receipt = self.provider.make_request("eth_getTransactionReceipt", [tx_hash])
            assert int(receipt["status"], 16) == 1, receipt
            blocks.add(receipt["blockNumber"])
        assert len(blocks) == 1, blocks

    def assign(self, marketplace_caller, model, seed):
        """The nodes assigned (the call's return value, asked right before: the draw depends on
        nothing of the transaction) and the gas used."""
        data = self.coordinator.assign.encode_input(model, 1, seed)
        call = {"from": marketplace_caller.address, "to": self.coordinator.address, "data": data.to_0x_hex()}
        returned = self.provider.make_request("eth_call", [call, "latest"])
        (picked,) = abi_decode(["address[]"], bytes.fromhex(returned[2:]))
        receipt = self._send(marketplace_caller.address, self.coordinator, data)
        return [to_checksum_address(node) for node in picked], int(receipt["gasUsed"], 16)

    def close(self):
        for node in self.impersonated:
            self.provider.make_request("anvil_stopImpersonatingAccount", [node])


@pytest.fixture
def bulk(chain, token, own_coordinator, alice):
    helper = BulkNodes(chain.provider, token, own_coordinator, alice)
    yield helper
    helper.close()


def assigned(own_coordinator, receipt):
    """The nodes an assign transaction picked, its return value (read from its trace)."""
    return list(receipt.return_value)


def info(own_coordinator, node):
    return own_coordinator.nodeInfo(node)


def assert_conserved(own_coordinator, token, node_accounts):
    """The coordinator holds exactly the stakes and the unbonding JOY of its nodes."""
    held = sum(info(own_coordinator, n).stake + own_coordinator.unbondingOf(n)[0] for n in node_accounts)
    assert token.balanceOf(own_coordinator) == held


def idle_large_set_picks(order, seed, count):
    """The nodes `assign` picks from an eligibility set in ``order``, larger than the full-scan
    limit, of idle nodes: per slot, up to four rounds of two distinct draws (the first wins
    unless already picked), then a probe from a last random start."""
    size, picked = len(order), []
    for slot in range(count):
        draw = slot * (4 + 1)  # DRAW_ROUNDS + 1 draws per slot
        for round_ in range(4):
            random = seed_draw(seed, draw + round_)
            first = (random % 2**128) % size
            second = (random >> 128) % (size - 1)
            if second >= first:
                second += 1
            choice = next((order[i] for i in (first, second) if order[i] not in picked), None)
            if choice:
                break
        else:
            start = seed_draw(seed, draw + 4) % size
            choice = next(order[(start + i) % size] for i in range(size) if order[(start + i) % size] not in picked)
        picked.append(choice)
    return picked


# ---- deployment and governed parameters ----


def test_deploy__valid_parameters__sets_them_and_emits_events(project, token, timelock, deployer):
    own_coordinator = project.NodeCoordinator.deploy(token, deployer, timelock, *PARAMETERS, sender=deployer)
    assert own_coordinator.joy() == token.address
    assert own_coordinator.owner() == deployer.address
    assert own_coordinator.treasury() == timelock.address
    assert own_coordinator.marketplace() == ZERO_ADDRESS  # wired later by the deploy script
    got = (
        own_coordinator.minStake(),
        own_coordinator.taskBond(),
        own_coordinator.unbondingDelay(),
        own_coordinator.maxMissedDeadlines(),
        own_coordinator.slashBeneficiaryShareBps(),
        own_coordinator.leaseBlocks(),
    )
    assert got == PARAMETERS
    receipt = own_coordinator.creation_metadata.receipt
    assert own_coordinator.MinStakeSet(0, MIN_STAKE) in receipt.events
    assert own_coordinator.TaskBondSet(0, TASK_BOND) in receipt.events
    assert own_coordinator.TreasurySet(ZERO_ADDRESS, timelock.address) in receipt.events
    assert own_coordinator.LeaseBlocksSet(0, LEASE_BLOCKS) in receipt.events


@pytest.mark.parametrize(
    "index, value, name",
    [
        (0, 10**18 - 1, "minStake"),
        (0, 10_000_000 * JOY + 1, "minStake"),
        (1, 10**15 - 1, "taskBond"),
        (1, MIN_STAKE + 1, "taskBond"),  # the bond may not exceed the minimum stake
        (2, 59, "unbondingDelay"),
        (2, 60 * 86_400 + 1, "unbondingDelay"),
        (3, 0, "maxMissedDeadlines"),
        (3, 101, "maxMissedDeadlines"),
        (4, 10_001, "slashBeneficiaryShareBps"),
        (5, 9, "leaseBlocks"),
        (5, 43_201, "leaseBlocks"),
    ],
)
def test_deploy__parameter_out_of_bounds__reverts(project, doomed_deployer, token, timelock, index, value, name):
    parameters = list(PARAMETERS)
    parameters[index] = value
    with reverts_with("NodeCoordinatorParameterOutOfBounds", abi=project.NodeCoordinator) as revert:
        doomed_deployer.deploy(project.NodeCoordinator, token, doomed_deployer, timelock, *parameters)
    decoded_name, decoded_value, _, _ = abi_decode(["string", "uint256", "uint256", "uint256"], revert.data[4:])
    assert (decoded_name, decoded_value) == (name, value)


@pytest.mark.parametrize("which", ["joy", "treasury"])
def test_deploy__zero_address__reverts(project, doomed_deployer, token, timelock, which):
    joy_address = ZERO_ADDRESS if which == "joy" else token.address
    treasury = ZERO_ADDRESS if which == "treasury" else timelock.address
    with reverts_with("NodeCoordinatorInvalidAddress", abi=project.NodeCoordinator) as revert:
        doomed_deployer.deploy(project.NodeCoordinator, joy_address, doomed_deployer, treasury, *PARAMETERS)
    assert abi_decode(["string", "address"], revert.data[4:])[0] == which


# (setter, new value within bounds, event name)
SETTERS = [
    ("setMinStake", 2_000 * JOY, "MinStakeSet", "minStake"),
    ("setTaskBond", 25 * JOY, "TaskBondSet", "taskBond"),
    ("setUnbondingDelay", 7 * 86_400, "UnbondingDelaySet", "unbondingDelay"),
    ("setMaxMissedDeadlines", 5, "MaxMissedDeadlinesSet", "maxMissedDeadlines"),
    ("setSlashBeneficiaryShareBps", 10_000, "SlashBeneficiaryShareBpsSet", "slashBeneficiaryShareBps"),
    ("setLeaseBlocks", 300, "LeaseBlocksSet", "leaseBlocks"),
]


@pytest.mark.parametrize("setter, value, event, getter", SETTERS)
def test_setter__by_owner_within_bounds__sets_and_emits(own_coordinator, deployer, setter, value, event, getter):
    old = getattr(own_coordinator, getter)()
    receipt = getattr(own_coordinator, setter)(value, sender=deployer)
    assert getattr(own_coordinator, getter)() == value
    assert getattr(own_coordinator, event)(old, value) in receipt.events


@pytest.mark.parametrize(
    "setter, value, boundary",
    [
        ("setMinStake", 10**18 - 1, TASK_BOND),  # the floor is max(1 JOY, taskBond) ...
        ("setMinStake", TASK_BOND - 1, TASK_BOND),  # ... so above 1 JOY is not enough
        ("setMinStake", 10_000_000 * JOY + 1, 10_000_000 * JOY),
        ("setTaskBond", 10**15 - 1, 10**15),
        ("setTaskBond", MIN_STAKE + 1, MIN_STAKE),  # the ceiling is minStake
        ("setUnbondingDelay", 59, 60),
        ("setUnbondingDelay", 60 * 86_400 + 1, 60 * 86_400),
        ("setMaxMissedDeadlines", 0, 1),
        ("setMaxMissedDeadlines", 101, 100),
        ("setSlashBeneficiaryShareBps", 10_001, 10_000),
        ("setLeaseBlocks", 9, 10),
        ("setLeaseBlocks", 43_201, 43_200),
    ],
)
def test_setter__out_of_bounds__reverts_and_the_bound_itself_is_accepted(
    own_coordinator, deployer, setter, value, boundary
):
    getter = next(g for s, _, _, g in SETTERS if s == setter)
    before = getattr(own_coordinator, getter)()
    with reverts_with("NodeCoordinatorParameterOutOfBounds"):
        getattr(own_coordinator, setter)(value, sender=deployer)
    assert getattr(own_coordinator, getter)() == before
    getattr(own_coordinator, setter)(boundary, sender=deployer)
    assert getattr(own_coordinator, getter)() == boundary


@pytest.mark.parametrize(
    "setter, value",
    [(s, v) for s, v, _, _ in SETTERS] + [("setTreasury", "0x" + "11" * 20), ("setMarketplace", "0x" + "11" * 20)],
)
def test_setter__by_non_owner__reverts(own_coordinator, marketplace_caller, outsider, setter, value):
    for caller in (marketplace_caller, outsider):
        with reverts_with("OwnableUnauthorizedAccount"):
            getattr(own_coordinator, setter)(value, sender=caller)


def test_set_treasury__new_address__sets_and_emits(own_coordinator, deployer, timelock, outsider):
    receipt = own_coordinator.setTreasury(outsider, sender=deployer)
    assert own_coordinator.treasury() == outsider.address
    assert own_coordinator.TreasurySet(timelock.address, outsider.address) in receipt.events


def test_set_treasury__zero_or_the_coordinator__reverts(own_coordinator, deployer):
    for treasury in (ZERO_ADDRESS, own_coordinator.address):
        with reverts_with("NodeCoordinatorInvalidAddress"):
            own_coordinator.setTreasury(treasury, sender=deployer)


def test_set_marketplace__new_address__sets_emits_and_marks_the_old_one_former(
    own_coordinator, deployer, marketplace_caller, outsider
):
    assert not own_coordinator.isFormerMarketplace(marketplace_caller)
    receipt = own_coordinator.setMarketplace(outsider, sender=deployer)
    assert own_coordinator.marketplace() == outsider.address
    assert own_coordinator.MarketplaceSet(marketplace_caller.address, outsider.address) in receipt.events
    assert own_coordinator.isFormerMarketplace(marketplace_caller) and not own_coordinator.isFormerMarketplace(outsider)
    with reverts_with("NodeCoordinatorCallerNotMarketplace"):
        own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)  # the old one assigns no more


def test_set_marketplace__first_wiring__marks_nobody_former(project, token, timelock, deployer, marketplace_caller):
    fresh = project.NodeCoordinator.deploy(token, deployer, timelock, *PARAMETERS, sender=deployer)
    receipt = fresh.setMarketplace(marketplace_caller, sender=deployer)
    assert fresh.MarketplaceSet(ZERO_ADDRESS, marketplace_caller.address) in receipt.events
    assert not fresh.isFormerMarketplace(ZERO_ADDRESS) and not fresh.isFormerMarketplace(marketplace_caller)


def test_former_marketplace__after_a_switch__releases_and_slashes_its_nodes_open_tasks(
    own_coordinator, token, timelock, deployer, alice, bob, marketplace_caller, outsider
):
    """An upgrade strands no request: the replaced marketplace still closes the requests it
    opened, releasing the nodes that delivered and slashing the ones that did not."""
    register(own_coordinator, token, alice, stake=2_000 * JOY)
    register(own_coordinator, token, bob, stake=2_000 * JOY)
    opened = assigned(own_coordinator, own_coordinator.assign(MODEL, 2, 1, sender=marketplace_caller))
    assert sorted(opened) == sorted([alice.address, bob.address])
    own_coordinator.setMarketplace(outsider, sender=deployer)

    own_coordinator.release(alice, sender=marketplace_caller)
    assert (info(own_coordinator, alice).bonded, info(own_coordinator, alice).activeTasks) == (0, 0)
    treasury = token.balanceOf(timelock)
    receipt = own_coordinator.slash(bob, ZERO_ADDRESS, True, sender=marketplace_caller)
    assert receipt.return_value == TASK_BOND
    assert own_coordinator.DeadlineMissed(bob, 1) in receipt.events
    assert token.balanceOf(timelock) == treasury + TASK_BOND
    for node, stake in ((alice, 2_000 * JOY), (bob, 2_000 * JOY - TASK_BOND)):
        state = info(own_coordinator, node)
        assert (state.activeTasks, state.bonded, state.stake) == (0, 0, stake)
    assert_conserved(own_coordinator, token, [alice, bob])

    # The new marketplace assigns the freed nodes as usual.
    assert sorted(assigned(own_coordinator, own_coordinator.assign(MODEL, 2, 2, sender=outsider))) == sorted(opened)


def test_former_marketplace__assign__reverts(own_coordinator, token, deployer, alice, marketplace_caller, outsider):
    register(own_coordinator, token, alice)
    own_coordinator.setMarketplace(outsider, sender=deployer)
    with reverts_with("NodeCoordinatorCallerNotMarketplace"):
        own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    assert info(own_coordinator, alice).activeTasks == 0


def test_set_marketplace__back_to_a_former_one__makes_it_current_again(
    own_coordinator, token, deployer, alice, bob, marketplace_caller, outsider
):
    register(own_coordinator, token, alice)
    own_coordinator.setMarketplace(outsider, sender=deployer)
    own_coordinator.assign(MODEL, 1, 1, sender=outsider)  # a task of the second marketplace

    own_coordinator.setMarketplace(marketplace_caller, sender=deployer)
    assert own_coordinator.marketplace() == marketplace_caller.address
    assert not own_coordinator.isFormerMarketplace(marketplace_caller) and own_coordinator.isFormerMarketplace(outsider)
    assert assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)) == [alice.address]
    with reverts_with("NodeCoordinatorCallerNotMarketplace"):
        own_coordinator.assign(MODEL, 1, 3, sender=outsider)
    own_coordinator.release(alice, sender=outsider)  # the second one closes its task all the same
    own_coordinator.release(alice, sender=marketplace_caller)
    assert info(own_coordinator, alice).activeTasks == 0
    # Anyone who never was the marketplace is refused everything.
    for method, args in (("release", (alice,)), ("slash", (alice, ZERO_ADDRESS, False))):
        with reverts_with("NodeCoordinatorCallerNotMarketplace"):
            getattr(own_coordinator, method)(*args, sender=bob)


def test_set_marketplace__to_the_current_one__leaves_it_current_and_not_former(
        own_coordinator, deployer, marketplace_caller):
    own_coordinator.setMarketplace(marketplace_caller, sender=deployer)
    assert own_coordinator.marketplace() == marketplace_caller.address
    assert not own_coordinator.isFormerMarketplace(marketplace_caller)


def test_set_marketplace__zero__reverts(own_coordinator, deployer):
    with reverts_with("NodeCoordinatorInvalidAddress"):
        own_coordinator.setMarketplace(ZERO_ADDRESS, sender=deployer)


def test_renounce_ownership__by_owner__reverts(own_coordinator, deployer):
    # renounceOwnership is a view that always reverts, so Ape calls it: match by selector.
    with reverts_with("JoyGovernedRenounceDisabled", abi=own_coordinator):
        own_coordinator.renounceOwnership(sender=deployer)
    assert own_coordinator.owner() == deployer.address


def test_ownership__transferred_to_timelock__only_a_dao_proposal_changes_a_parameter(
    own_coordinator, timelock, governance, deployer, alice, bob
):
    own_coordinator.transferOwnership(timelock, sender=deployer)
    assert own_coordinator.owner() == timelock.address
    for caller in (deployer, alice):
        with reverts_with("OwnableUnauthorizedAccount"):
            own_coordinator.setTaskBond(20 * JOY, sender=caller)

    calls = [(own_coordinator, own_coordinator.setTaskBond.encode_input(20 * JOY))]
    receipt = governance.enact(alice, calls, "Raise the task bond to 20 JOY", [(alice, 1), (bob, 1)])

    assert own_coordinator.taskBond() == 20 * JOY
    (event,) = receipt.decode_logs(own_coordinator.TaskBondSet)
    assert (event.oldTaskBond, event.newTaskBond) == (TASK_BOND, 20 * JOY)


def test_ownership__dao_proposal_out_of_bounds__passes_vote_but_cannot_execute(
    own_coordinator, timelock, governance, dao, deployer, alice, bob
):
    own_coordinator.transferOwnership(timelock, sender=deployer)
    calls = [(own_coordinator, own_coordinator.setSlashBeneficiaryShareBps.encode_input(10_001))]
    proposal_id = governance.ready_to_execute(alice, calls, "Pay beneficiaries 100.01 %", [(alice, 1), (bob, 1)])
    with reverts_with("NodeCoordinatorParameterOutOfBounds", abi=own_coordinator):
        dao.execute(proposal_id, sender=alice)
    assert own_coordinator.slashBeneficiaryShareBps() == SHARE_BPS


# ---- registration ----


def test_register__valid__pulls_stake_activates_and_lists_models(own_coordinator, token, alice):
    balance = token.balanceOf(alice)
    receipt = register(own_coordinator, token, alice, stake=1_500 * JOY, capacity=3, models=(MODEL, OTHER_MODEL))

    node = info(own_coordinator, alice)
    assert (node.stake, node.bonded, node.capacity, node.activeTasks, node.missedDeadlines) == (1_500 * JOY, 0, 3, 0, 0)
    assert node.active and node.registered
    assert token.balanceOf(alice) == balance - 1_500 * JOY
    assert token.balanceOf(own_coordinator) == 1_500 * JOY
    assert [bytes(m) for m in own_coordinator.modelsOf(alice)] == [MODEL, OTHER_MODEL]
    for model in (MODEL, OTHER_MODEL):
        assert own_coordinator.eligibleNodes(model) == 1
        assert own_coordinator.eligibleNodeAt(model, 0) == alice.address
        assert own_coordinator.isEligible(alice, model) and own_coordinator.servesModel(alice, model)
    assert own_coordinator.freeStake(alice) == 1_500 * JOY
    (event,) = receipt.decode_logs(own_coordinator.NodeRegistered)
    assert (event.node, event.stake, event.capacity) == (alice.address, 1_500 * JOY, 3)
    assert [bytes(m) for m in event.models] == [MODEL, OTHER_MODEL]


def test_register_with_permit__signed_permit__registers_without_approval(
        own_coordinator, token, accounts, chain, alice):
    node = fresh_nodes(accounts, chain, token, alice, 1)[0]
    deadline = chain.pending_timestamp + 3_600
    v, r, s = permit_signature(token, node, own_coordinator, MIN_STAKE, deadline)
    own_coordinator.registerNodeWithPermit(MIN_STAKE, 2, [MODEL], deadline, v, r, s, sender=node)
    assert info(own_coordinator, node).stake == MIN_STAKE
    assert token.allowance(node, own_coordinator) == 0


def test_register_with_permit__permit_already_used__still_registers(own_coordinator, token, chain, alice, outsider):
    # Someone front-runs the permit with the same signature: the allowance is there anyway.
    deadline = chain.pending_timestamp + 3_600
    v, r, s = permit_signature(token, alice, own_coordinator, MIN_STAKE, deadline)
    token.permit(alice, own_coordinator, MIN_STAKE, deadline, v, r, s, sender=outsider)
    own_coordinator.registerNodeWithPermit(MIN_STAKE, 2, [MODEL], deadline, v, r, s, sender=alice)
    assert info(own_coordinator, alice).registered


def test_register_with_permit__bad_signature__reverts(own_coordinator, token, chain, alice, bob):
    deadline = chain.pending_timestamp + 3_600
    v, r, s = permit_signature(token, bob, own_coordinator, MIN_STAKE, deadline)  # bob signed
    with reverts_with("ERC20InsufficientAllowance", abi=token):
        own_coordinator.registerNodeWithPermit(MIN_STAKE, 2, [MODEL], deadline, v, r, s, sender=alice)


def test_register__stake_below_minimum__reverts(own_coordinator, token, alice):
    with reverts_with("NodeCoordinatorStakeBelowMinimum"):
        register(own_coordinator, token, alice, stake=MIN_STAKE - 1)


@pytest.mark.parametrize("capacity", [0, 1_025])
def test_register__capacity_out_of_range__reverts(own_coordinator, token, alice, capacity):
    with reverts_with("NodeCoordinatorInvalidCapacity"):
        register(own_coordinator, token, alice, capacity=capacity)


@pytest.mark.parametrize(
    "models, error",
    [
        ([], "NodeCoordinatorNoModels"),
        ([keccak(text=f"model {i}") for i in range(33)], "NodeCoordinatorTooManyModels"),
        ([MODEL, OTHER_MODEL, MODEL], "NodeCoordinatorDuplicateModel"),
        ([MODEL, b"\0" * 32], "NodeCoordinatorZeroModelId"),
    ],
)
def test_register__bad_model_list__reverts(own_coordinator, token, alice, models, error):
    with reverts_with(error):
        register(own_coordinator, token, alice, models=models)


def test_register__32_models__registers(own_coordinator, token, alice):
    models = [keccak(text=f"model {i}") for i in range(32)]
    register(own_coordinator, token, alice, models=models)
    assert len(own_coordinator.modelsOf(alice)) == 32


def test_register__twice__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorAlreadyRegistered"):
        register(own_coordinator, token, alice, models=(OTHER_MODEL,))


def test_register__without_approval__reverts(own_coordinator, alice):
    with reverts_with("ERC20InsufficientAllowance"):
        own_coordinator.registerNode(MIN_STAKE, 1, [MODEL], sender=alice)


@pytest.mark.parametrize(
    "method, args",
    [
        ("addStake", (JOY,)),
        ("requestUnstake", (JOY,)),
        ("setCapacity", (2,)),
        ("serveModel", (MODEL,)),
        ("stopServingModel", (MODEL,)),
        ("deactivate", ()),
        ("reactivate", ()),
        ("renewLease", ()),
        ("endLease", ()),
    ],
)
def test_node_function__unregistered_caller__reverts(own_coordinator, outsider, method, args):
    with reverts_with("NodeCoordinatorNotRegistered"):
        getattr(own_coordinator, method)(*args, sender=outsider)


# ---- stake, unbonding, withdrawal ----


def test_add_stake__registered__increases_stake(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    token.approve(own_coordinator, 250 * JOY, sender=alice)
    receipt = own_coordinator.addStake(250 * JOY, sender=alice)
    assert info(own_coordinator, alice).stake == MIN_STAKE + 250 * JOY
    assert own_coordinator.StakeAdded(alice, 250 * JOY, MIN_STAKE + 250 * JOY) in receipt.events
    assert_conserved(own_coordinator, token, [alice])


def test_add_or_unstake__zero_amount__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    for method in (own_coordinator.addStake, own_coordinator.requestUnstake):
        with reverts_with("NodeCoordinatorZeroAmount"):
            method(0, sender=alice)


def test_request_unstake__twice__accumulates_and_restarts_the_delay(own_coordinator, token, chain, alice):
    register(own_coordinator, token, alice, stake=2_000 * JOY)
    own_coordinator.requestUnstake(300 * JOY, sender=alice)
    chain.pending_timestamp += 1_000
    receipt = own_coordinator.requestUnstake(200 * JOY, sender=alice)

    amount, ready_at = own_coordinator.unbondingOf(alice)
    assert amount == 500 * JOY
    assert ready_at == receipt.timestamp + UNBONDING_DELAY
    assert own_coordinator.UnstakeRequested(alice, 200 * JOY, 500 * JOY, ready_at) in receipt.events
    assert info(own_coordinator, alice).stake == 1_500 * JOY
    assert info(own_coordinator, alice).active  # 1,500 JOY is still above the minimum
    assert_conserved(own_coordinator, token, [alice])


def test_request_unstake__bonded_stake__reverts(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, stake=1_100 * JOY)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    free = 1_100 * JOY - TASK_BOND
    assert own_coordinator.freeStake(alice) == free
    with reverts_with("NodeCoordinatorStakeBonded"):
        own_coordinator.requestUnstake(free + 1, sender=alice)
    own_coordinator.requestUnstake(free, sender=alice)  # everything but the bond may leave
    assert info(own_coordinator, alice).stake == TASK_BOND == info(own_coordinator, alice).bonded


def test_request_unstake__below_minimum__deactivates(own_coordinator, token, alice):
    register(own_coordinator, token, alice, stake=1_100 * JOY, models=(MODEL, OTHER_MODEL))
    receipt = own_coordinator.requestUnstake(101 * JOY, sender=alice)
    assert not info(own_coordinator, alice).active
    assert own_coordinator.NodeDeactivated(alice, STAKE_BELOW_MINIMUM) in receipt.events
    assert own_coordinator.eligibleNodes(MODEL) == own_coordinator.eligibleNodes(OTHER_MODEL) == 0


def test_withdraw_unstaked__after_delay__pays_out(own_coordinator, token, chain, alice):
    register(own_coordinator, token, alice, stake=1_500 * JOY)
    own_coordinator.requestUnstake(500 * JOY, sender=alice)
    balance = token.balanceOf(alice)
    chain.pending_timestamp += UNBONDING_DELAY
    receipt = own_coordinator.withdrawUnstaked(sender=alice)
    assert token.balanceOf(alice) == balance + 500 * JOY
    assert own_coordinator.unbondingOf(alice) == (0, 0)
    assert own_coordinator.UnstakeWithdrawn(alice, 500 * JOY) in receipt.events
    assert_conserved(own_coordinator, token, [alice])


def test_withdraw_unstaked__before_delay__reverts(own_coordinator, token, chain, alice):
    register(own_coordinator, token, alice, stake=1_500 * JOY)
    own_coordinator.requestUnstake(500 * JOY, sender=alice)
    chain.pending_timestamp += UNBONDING_DELAY - 10
    with reverts_with("NodeCoordinatorUnbondingNotReady"):
        own_coordinator.withdrawUnstaked(sender=alice)


def test_withdraw_unstaked__nothing_unbonding__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorNothingToWithdraw"):
        own_coordinator.withdrawUnstaked(sender=alice)


# ---- capacity, models, activity ----


def test_set_capacity__below_open_tasks__blocks_new_tasks_until_load_drops(
        own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, capacity=3)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)
    receipt = own_coordinator.setCapacity(1, sender=alice)
    assert own_coordinator.NodeCapacitySet(alice, 3, 1) in receipt.events
    assert info(own_coordinator, alice).capacity == 1 and info(own_coordinator, alice).activeTasks == 2

    assert not own_coordinator.isEligible(alice, MODEL)
    own_coordinator.release(alice, sender=marketplace_caller)  # open tasks carry on as usual
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 3, sender=marketplace_caller)
    own_coordinator.release(alice, sender=marketplace_caller)
    assert assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 4, sender=marketplace_caller)) == [alice.address]


@pytest.mark.parametrize("capacity", [0, 1_025])
def test_set_capacity__out_of_range__reverts(own_coordinator, token, alice, capacity):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorInvalidCapacity"):
        own_coordinator.setCapacity(capacity, sender=alice)


def test_serve_and_stop_serving_model__active_node__updates_eligibility(own_coordinator, token, alice, bob):
    register(own_coordinator, token, alice)
    register(own_coordinator, token, bob)
    receipt = own_coordinator.serveModel(OTHER_MODEL, sender=alice)
    assert own_coordinator.ModelServingStarted(alice, OTHER_MODEL) in receipt.events
    assert own_coordinator.eligibleNodes(OTHER_MODEL) == 1 and own_coordinator.isEligible(alice, OTHER_MODEL)

    receipt = own_coordinator.stopServingModel(MODEL, sender=alice)
    assert own_coordinator.ModelServingStopped(alice, MODEL) in receipt.events
    # Swap and pop: bob moved into alice's place.
    assert own_coordinator.eligibleNodes(MODEL) == 1 and own_coordinator.eligibleNodeAt(MODEL, 0) == bob.address
    assert not own_coordinator.servesModel(alice, MODEL) and not own_coordinator.isEligible(alice, MODEL)
    assert [bytes(m) for m in own_coordinator.modelsOf(alice)] == [OTHER_MODEL]


def test_serve_model__inactive_node__serves_but_is_not_eligible_until_reactivated(chain, own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    own_coordinator.deactivate(sender=alice)
    own_coordinator.serveModel(OTHER_MODEL, sender=alice)
    assert own_coordinator.servesModel(alice, OTHER_MODEL) and own_coordinator.eligibleNodes(OTHER_MODEL) == 0
    wait_out_rejoin_delay(chain, own_coordinator, alice)
    own_coordinator.reactivate(sender=alice)
    assert own_coordinator.eligibleNodes(OTHER_MODEL) == own_coordinator.eligibleNodes(MODEL) == 1


@pytest.mark.parametrize(
    "method, model, error",
    [
        ("serveModel", MODEL, "NodeCoordinatorDuplicateModel"),
        ("serveModel", b"\0" * 32, "NodeCoordinatorZeroModelId"),
        ("stopServingModel", OTHER_MODEL, "NodeCoordinatorModelNotServed"),
    ],
)
def test_serve_or_stop_serving_model__bad_model__reverts(own_coordinator, token, alice, method, model, error):
    register(own_coordinator, token, alice)
    with reverts_with(error):
        getattr(own_coordinator, method)(model, sender=alice)


def test_serve_model__33rd_model__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice, models=[keccak(text=f"model {i}") for i in range(32)])
    with reverts_with("NodeCoordinatorTooManyModels"):
        own_coordinator.serveModel(MODEL, sender=alice)


def test_deactivate__with_open_task__leaves_assignment_and_task_continues(
        own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, models=(MODEL, OTHER_MODEL))
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    receipt = own_coordinator.deactivate(sender=alice)
    assert own_coordinator.NodeDeactivated(alice, VOLUNTARY) in receipt.events
    assert own_coordinator.eligibleNodes(MODEL) == own_coordinator.eligibleNodes(OTHER_MODEL) == 0
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(OTHER_MODEL, 1, 2, sender=marketplace_caller)
    own_coordinator.release(alice, sender=marketplace_caller)
    assert info(own_coordinator, alice).activeTasks == 0 and info(own_coordinator, alice).bonded == 0


def test_deactivate__already_inactive__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    own_coordinator.deactivate(sender=alice)
    with reverts_with("NodeCoordinatorNotActive"):
        own_coordinator.deactivate(sender=alice)


def test_reactivate__already_active__reverts(own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorAlreadyActive"):
        own_coordinator.reactivate(sender=alice)


def test_reactivate__stake_below_minimum__reverts(chain, own_coordinator, token, alice):
    register(own_coordinator, token, alice, stake=1_100 * JOY)
    own_coordinator.requestUnstake(200 * JOY, sender=alice)
    wait_out_rejoin_delay(chain, own_coordinator, alice)
    with reverts_with("NodeCoordinatorStakeBelowMinimum"):
        own_coordinator.reactivate(sender=alice)
    token.approve(own_coordinator, 100 * JOY, sender=alice)
    own_coordinator.addStake(100 * JOY, sender=alice)
    assert not info(own_coordinator, alice).active  # adding stake alone does not reactivate
    receipt = own_coordinator.reactivate(sender=alice)
    assert own_coordinator.NodeReactivated(alice) in receipt.events
    assert info(own_coordinator, alice).active and own_coordinator.eligibleNodes(MODEL) == 1


def test_reactivate__within_rejoin_delay_of_deactivating__reverts_until_it_passed(chain, own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    assert own_coordinator.rejoinableAt(alice) == 0  # never left a set
    left = own_coordinator.deactivate(sender=alice).block_number
    assert own_coordinator.rejoinableAt(alice) == left + REJOIN_DELAY == left + own_coordinator.REJOIN_DELAY()
    chain.mine(REJOIN_DELAY - 2)  # the next transaction lands in block left + REJOIN_DELAY - 1
    with reverts_with("NodeCoordinatorRejoinTooSoon", node=alice.address, rejoinableAt=left + REJOIN_DELAY):
        own_coordinator.reactivate(sender=alice)
    assert not info(own_coordinator, alice).active and own_coordinator.eligibleNodes(MODEL) == 0
    receipt = own_coordinator.reactivate(sender=alice)
    assert receipt.block_number == left + REJOIN_DELAY and info(own_coordinator, alice).active
    assert own_coordinator.eligibleNodeAt(MODEL, 0) == alice.address


def test_serve_model__within_rejoin_delay_of_stopping_any_model__reverts(chain, own_coordinator, token, alice):
    # Leaving one model's set holds back joining any other set too: a node's rejoin delay is one.
    register(own_coordinator, token, alice, models=[MODEL, OTHER_MODEL])
    left = own_coordinator.stopServingModel(MODEL, sender=alice).block_number
    for model in (MODEL, THIRD_MODEL):
        with reverts_with("NodeCoordinatorRejoinTooSoon", node=alice.address, rejoinableAt=left + REJOIN_DELAY):
            own_coordinator.serveModel(model, sender=alice)
    wait_out_rejoin_delay(chain, own_coordinator, alice)
    own_coordinator.serveModel(MODEL, sender=alice)
    own_coordinator.renewLease(sender=alice)  # the wait outlasted the lease; a live agent renews it
    assert own_coordinator.isEligible(alice, MODEL) and own_coordinator.eligibleNodes(OTHER_MODEL) == 1


def test_serve_model__inactive_node_within_rejoin_delay__serves_without_joining(chain, own_coordinator, token, alice):
    # An inactive node joins no set by serving a model, so nothing is refused until it reactivates.
    register(own_coordinator, token, alice)
    own_coordinator.deactivate(sender=alice)
    own_coordinator.serveModel(OTHER_MODEL, sender=alice)
    assert own_coordinator.servesModel(alice, OTHER_MODEL) and own_coordinator.eligibleNodes(OTHER_MODEL) == 0
    with reverts_with("NodeCoordinatorRejoinTooSoon"):
        own_coordinator.reactivate(sender=alice)


def test_evict_understaked__after_min_stake_raise__deactivates(own_coordinator, token, deployer, alice, bob, outsider):
    register(own_coordinator, token, alice, stake=MIN_STAKE)
    register(own_coordinator, token, bob, stake=2_000 * JOY)
    own_coordinator.setMinStake(1_500 * JOY, sender=deployer)
    receipt = own_coordinator.evictUnderstaked(alice, sender=outsider)  # anyone may
    assert own_coordinator.NodeDeactivated(alice, STAKE_BELOW_MINIMUM) in receipt.events
    assert own_coordinator.eligibleNodes(MODEL) == 1
    with reverts_with("NodeCoordinatorStakeSufficient"):
        own_coordinator.evictUnderstaked(bob, sender=outsider)
    with reverts_with("NodeCoordinatorNotActive"):
        own_coordinator.evictUnderstaked(alice, sender=outsider)
    with reverts_with("NodeCoordinatorNotRegistered"):
        own_coordinator.evictUnderstaked(outsider, sender=outsider)


# ---- marketplace: assign, release, slash ----


# ---- the lease ----


def next_block_is(chain, block):
    """Mines blocks so that the next transaction lands in ``block``."""
    chain.mine(block - chain.blocks.head.number - 1)


def test_register__new_node__starts_a_lease_of_lease_blocks(own_coordinator, token, alice):
    receipt = register(own_coordinator, token, alice)
    end = receipt.block_number + LEASE_BLOCKS
    assert own_coordinator.leaseEnd(alice) == end and own_coordinator.leaseRunning(alice)
    assert own_coordinator.LeaseRenewed(alice, end) in receipt.events


def test_assign__lease_ran_out__node_not_drawn_and_only_such_nodes_refused(
        chain, own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice)
    register(own_coordinator, token, bob)
    next_block_is(chain, own_coordinator.leaseEnd(alice))  # alice's lease no longer runs
    own_coordinator.renewLease(sender=bob)
    assert not own_coordinator.isEligible(alice, MODEL) and own_coordinator.isEligible(bob, MODEL)
    for seed in range(4):  # whatever the seed, only the node with a running lease is drawn
        assert own_coordinator.draw(MODEL, 1, seed) == [bob.address]
    with reverts_with("NodeCoordinatorNoEligibleNode", modelId=MODEL, wanted=2, found=1):
        own_coordinator.assign(MODEL, 2, 1, sender=marketplace_caller)
    next_block_is(chain, own_coordinator.leaseEnd(bob))
    with reverts_with("NodeCoordinatorNoEligibleNode", modelId=MODEL, wanted=1, found=0):
        own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    # Still active and in the set: only not drawn. Nothing changed the set (no reseed).
    assert info(own_coordinator, alice).active and own_coordinator.eligibleNodes(MODEL) == 2


def test_assign__killed_node__drawn_until_lease_blocks_after_its_last_renewal_and_not_after(
        chain, own_coordinator, token, alice, marketplace_caller):
    # The liveness bound: a node that stops renewing is drawn in the leaseBlocks blocks from its
    # last renewal's, and in none after, whatever room its capacity has left.
    register(own_coordinator, token, alice, capacity=100)
    renewed = own_coordinator.renewLease(sender=alice).block_number
    next_block_is(chain, renewed + LEASE_BLOCKS - 1)
    assert assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)) == [alice.address]
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)  # block renewed + LEASE_BLOCKS
    assert info(own_coordinator, alice).activeTasks == 1


def test_end_lease__running__undrawable_from_that_block_then_renew_lease_makes_it_drawable_without_rejoin_delay(
        chain, own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    changed = own_coordinator.eligibleChangedAt(MODEL)
    receipt = own_coordinator.endLease(sender=alice)
    assert own_coordinator.LeaseEnded(alice) in receipt.events
    assert own_coordinator.leaseEnd(alice) == receipt.block_number and not own_coordinator.leaseRunning(alice)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    # A pause, not a departure: the set, its change block and the rejoin delay are untouched.
    assert own_coordinator.eligibleChangedAt(MODEL) == changed and own_coordinator.eligibleNodes(MODEL) == 1
    assert own_coordinator.rejoinableAt(alice) == 0
    receipt = own_coordinator.renewLease(sender=alice)
    assert own_coordinator.LeaseRenewed(alice, receipt.block_number + LEASE_BLOCKS) in receipt.events
    assert assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)) == [alice.address]


def test_end_lease__not_running__reverts(chain, own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    ended = own_coordinator.endLease(sender=alice).block_number
    with reverts_with("NodeCoordinatorLeaseNotRunning", node=alice.address, leaseEnd=ended):
        own_coordinator.endLease(sender=alice)
    end = own_coordinator.renewLease(sender=alice).block_number + LEASE_BLOCKS
    next_block_is(chain, end)  # ran out by itself
    with reverts_with("NodeCoordinatorLeaseNotRunning", node=alice.address, leaseEnd=end):
        own_coordinator.endLease(sender=alice)


def test_renew_lease__inactive_node__reverts(chain, own_coordinator, token, alice):
    register(own_coordinator, token, alice)
    own_coordinator.deactivate(sender=alice)
    with reverts_with("NodeCoordinatorNotActive", node=alice.address):
        own_coordinator.renewLease(sender=alice)


def test_reactivate__after_lease_ran_out__starts_a_lease(chain, own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    own_coordinator.deactivate(sender=alice)
    wait_out_rejoin_delay(chain, own_coordinator, alice)  # far past the lease
    receipt = own_coordinator.reactivate(sender=alice)
    assert own_coordinator.LeaseRenewed(alice, receipt.block_number + LEASE_BLOCKS) in receipt.events
    assert assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)) == [alice.address]


def test_set_lease_blocks__changed__running_leases_keep_their_end_and_renewals_take_the_new_length(
        own_coordinator, token, deployer, alice):
    end = register(own_coordinator, token, alice).block_number + LEASE_BLOCKS
    own_coordinator.setLeaseBlocks(100, sender=deployer)
    assert own_coordinator.leaseEnd(alice) == end
    renewed = own_coordinator.renewLease(sender=alice).block_number
    assert own_coordinator.leaseEnd(alice) == renewed + 100


@pytest.mark.parametrize(
    "method, args",
    [("assign", (MODEL, 1, 1)), ("release", ("0x" + "11" * 20,)), ("slash", ("0x" + "11" * 20, ZERO_ADDRESS, True))],
)
def test_marketplace_function__other_caller__reverts(own_coordinator, deployer, alice, method, args):
    for caller in (deployer, alice):  # not even the owner
        with reverts_with("NodeCoordinatorCallerNotMarketplace"):
            getattr(own_coordinator, method)(*args, sender=caller)


def test_assign__one_node__locks_bond_and_capacity(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, capacity=2)
    receipt = own_coordinator.assign(MODEL, 1, 42, sender=marketplace_caller)
    assert receipt.return_value == [alice.address]
    assert not receipt.events  # the marketplace's NodesAssigned names the nodes
    node = info(own_coordinator, alice)
    assert (node.activeTasks, node.bonded, node.stake) == (1, TASK_BOND, MIN_STAKE)
    assert own_coordinator.freeStake(alice) == MIN_STAKE - TASK_BOND
    assert_conserved(own_coordinator, token, [alice])


@pytest.mark.parametrize("count", [0, 17])
def test_assign__count_out_of_range__reverts(own_coordinator, marketplace_caller, count):
    with reverts_with("NodeCoordinatorInvalidAssignmentCount"):
        own_coordinator.assign(MODEL, count, 1, sender=marketplace_caller)


def test_assign__quorum__picks_distinct_nodes(own_coordinator, token, node_accounts, marketplace_caller):
    for node in node_accounts[:5]:
        register(own_coordinator, token, node, capacity=4)
    picked = assigned(own_coordinator, own_coordinator.assign(MODEL, 5, 7, sender=marketplace_caller))
    assert sorted(picked) == sorted(n.address for n in node_accounts[:5])
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 6, 8, sender=marketplace_caller)  # only five nodes serve the model


def test_assign__unknown_model__reverts_and_changes_nothing(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(OTHER_MODEL, 1, 1, sender=marketplace_caller)
    assert info(own_coordinator, alice).activeTasks == 0


def test_assign__capacity_full__finds_nobody(own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice, capacity=1)
    register(own_coordinator, token, bob, capacity=1)
    own_coordinator.assign(MODEL, 2, 1, sender=marketplace_caller)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)
    assert info(own_coordinator, alice).activeTasks == info(own_coordinator, bob).activeTasks == 1


def test_assign__quorum_partly_available__reverts_and_locks_nothing(
        own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice, capacity=1)
    register(own_coordinator, token, bob, capacity=1)
    (busy,) = assigned(own_coordinator, own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller))
    idle = bob if busy == alice.address else alice
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 2, 2, sender=marketplace_caller)  # one node found, two wanted
    assert info(own_coordinator, idle).activeTasks == 0 and info(own_coordinator, idle).bonded == 0


def test_assign__free_stake_below_bond__finds_nobody(own_coordinator, token, deployer, alice, marketplace_caller):
    register(own_coordinator, token, alice, stake=MIN_STAKE, capacity=10)
    own_coordinator.setTaskBond(600 * JOY, sender=deployer)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    assert own_coordinator.freeStake(alice) == 400 * JOY and not own_coordinator.isEligible(alice, MODEL)
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)


def test_release__open_task__unlocks_bond_and_capacity(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    receipt = own_coordinator.release(alice, sender=marketplace_caller)
    assert not receipt.events  # the marketplace's InferenceSettled tells the task's end
    node = info(own_coordinator, alice)
    assert (node.activeTasks, node.bonded, node.stake) == (0, 0, MIN_STAKE)


def test_release_or_slash__no_open_task__reverts(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    with reverts_with("NodeCoordinatorNoOpenTask"):
        own_coordinator.release(alice, sender=marketplace_caller)
    with reverts_with("NodeCoordinatorNoOpenTask"):
        own_coordinator.slash(alice, ZERO_ADDRESS, False, sender=marketplace_caller)


@pytest.mark.parametrize("share_bps, with_beneficiary", [(2_500, True), (0, True), (10_000, True), (2_500, False)])
def test_slash__open_task__splits_bond_between_beneficiary_and_treasury(
    own_coordinator, token, timelock, deployer, alice, outsider, marketplace_caller, share_bps, with_beneficiary
):
    own_coordinator.setSlashBeneficiaryShareBps(share_bps, sender=deployer)
    register(own_coordinator, token, alice, stake=2_000 * JOY)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    beneficiary = outsider.address if with_beneficiary else ZERO_ADDRESS
    treasury_before, beneficiary_before = token.balanceOf(timelock), token.balanceOf(outsider)

    receipt = own_coordinator.slash(alice, beneficiary, False, sender=marketplace_caller)

    share = TASK_BOND * share_bps // 10_000 if with_beneficiary else 0
    assert receipt.return_value == TASK_BOND
    assert own_coordinator.NodeSlashed(alice, TASK_BOND, beneficiary, share) in receipt.events
    beneficiary_got = token.balanceOf(outsider) - beneficiary_before
    treasury_got = token.balanceOf(timelock) - treasury_before
    assert beneficiary_got == share
    assert beneficiary_got + treasury_got == TASK_BOND
    node = info(own_coordinator, alice)
    assert (node.stake, node.bonded, node.activeTasks, node.active) == (2_000 * JOY - TASK_BOND, 0, 0, True)
    assert_conserved(own_coordinator, token, [alice])


def test_slash__stake_falls_below_minimum__deactivates(own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice, stake=MIN_STAKE)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    receipt = own_coordinator.slash(alice, bob, False, sender=marketplace_caller)
    assert own_coordinator.NodeDeactivated(alice, STAKE_BELOW_MINIMUM) in receipt.events
    assert not info(own_coordinator, alice).active and own_coordinator.eligibleNodes(MODEL) == 0
    assert_conserved(own_coordinator, token, [alice])


def test_slash__max_missed_deadlines__deactivates_until_reactivated(
        chain, own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice, stake=2_000 * JOY, capacity=10)
    register(own_coordinator, token, bob, stake=2_000 * JOY, capacity=10)
    for seed in range(MAX_MISSED):
        own_coordinator.assign(MODEL, 2, seed, sender=marketplace_caller)
        own_coordinator.release(bob, sender=marketplace_caller)  # bob delivers, alice times out
        receipt = own_coordinator.slash(alice, ZERO_ADDRESS, True, sender=marketplace_caller)
        assert own_coordinator.DeadlineMissed(alice, seed + 1) in receipt.events
    assert own_coordinator.NodeDeactivated(alice, MISSED_DEADLINES) in receipt.events
    assert not info(own_coordinator, alice).active and info(own_coordinator, alice).missedDeadlines == MAX_MISSED

    for seed in range(10, 15):  # no longer assigned
        receipt = own_coordinator.assign(MODEL, 1, seed, sender=marketplace_caller)
        assert assigned(own_coordinator, receipt) == [bob.address]
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 2, 20, sender=marketplace_caller)

    wait_out_rejoin_delay(chain, own_coordinator, alice)
    own_coordinator.reactivate(sender=alice)  # starts alice's lease
    own_coordinator.renewLease(sender=bob)  # the wait outlasted bob's; a live agent renews it
    assert info(own_coordinator, alice).missedDeadlines == 0
    assert sorted(assigned(own_coordinator, own_coordinator.assign(MODEL, 2, 21, sender=marketplace_caller))) == sorted(
        [alice.address, bob.address]
    )


def test_release__after_missed_deadlines__resets_the_count(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, stake=2_000 * JOY, capacity=4)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)
    own_coordinator.assign(MODEL, 1, 3, sender=marketplace_caller)
    own_coordinator.slash(alice, ZERO_ADDRESS, True, sender=marketplace_caller)
    own_coordinator.slash(alice, ZERO_ADDRESS, True, sender=marketplace_caller)
    assert info(own_coordinator, alice).missedDeadlines == 2
    own_coordinator.release(alice, sender=marketplace_caller)
    assert info(own_coordinator, alice).missedDeadlines == 0 and info(own_coordinator, alice).active


def test_slash__not_a_missed_deadline__does_not_count(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice, stake=2_000 * JOY)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    receipt = own_coordinator.slash(alice, ZERO_ADDRESS, False, sender=marketplace_caller)  # e.g. a dissenting result
    assert info(own_coordinator, alice).missedDeadlines == 0
    assert not receipt.decode_logs(own_coordinator.DeadlineMissed)


# ---- the bond locked for a task is the bond unlocked ----


def test_release__task_bond_changed_while_open__unlocks_the_bond_locked(
    own_coordinator, token, deployer, alice, marketplace_caller
):
    register(own_coordinator, token, alice)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)
    own_coordinator.setTaskBond(25 * JOY, sender=deployer)
    own_coordinator.release(alice, sender=marketplace_caller)
    assert info(own_coordinator, alice).bonded == 0  # the bond locked, not the one in force


def test_slash_and_release__mixed_bonds__unlock_exactly_what_was_locked(
    own_coordinator, token, timelock, deployer, alice, marketplace_caller
):
    register(own_coordinator, token, alice, stake=2_000 * JOY)
    own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller)  # 10 JOY
    own_coordinator.setTaskBond(25 * JOY, sender=deployer)
    own_coordinator.assign(MODEL, 1, 2, sender=marketplace_caller)  # 25 JOY
    own_coordinator.setTaskBond(3 * JOY, sender=deployer)  # a third value, for neither task
    assert info(own_coordinator, alice).bonded == 35 * JOY
    treasury = token.balanceOf(timelock)

    slashed = own_coordinator.slash(alice, ZERO_ADDRESS, False, sender=marketplace_caller).return_value
    bonded = info(own_coordinator, alice).bonded
    own_coordinator.release(alice, sender=marketplace_caller)

    # Each unlocks the average of the open bonds; together exactly the 35 JOY locked.
    assert slashed == 35 * JOY // 2 and bonded == 35 * JOY - slashed
    assert token.balanceOf(timelock) - treasury == slashed
    node = info(own_coordinator, alice)
    assert (node.bonded, node.activeTasks, node.stake) == (0, 0, 2_000 * JOY - slashed)
    assert_conserved(own_coordinator, token, [alice])


# ---- load awareness ----


def test_assign__two_equal_nodes__next_task_goes_to_the_less_loaded(
        own_coordinator, token, alice, bob, marketplace_caller):
    register(own_coordinator, token, alice, capacity=4)
    register(own_coordinator, token, bob, capacity=4)
    picks = [assigned(own_coordinator, own_coordinator.assign(MODEL, 1, seed, sender=marketplace_caller))[0]
             for seed in range(6)]
    # Whoever got a task, the other (idle) one gets the next: picks come in distinct pairs.
    for first, second in zip(picks[::2], picks[1::2]):
        assert {first, second} == {alice.address, bob.address}
    assert info(own_coordinator, alice).activeTasks == info(own_coordinator, bob).activeTasks == 3


def test_assign__unequal_capacities__fills_by_free_share_and_never_overfills(
        own_coordinator, token, node_accounts, marketplace_caller):
    capacities = [1, 2, 4]
    for node, capacity in zip(node_accounts, capacities):
        register(own_coordinator, token, node, capacity=capacity)
    for seed in range(sum(capacities)):
        shares = {n.address: 1 - info(own_coordinator, n).activeTasks / c for n, c in zip(node_accounts, capacities)}
        (picked,) = assigned(own_coordinator, own_coordinator.assign(MODEL, 1, seed, sender=marketplace_caller))
        assert shares[picked] == max(shares.values()) > 0  # the least utilized node, never a full one
    assert [info(own_coordinator, n).activeTasks for n in node_accounts[:3]] == capacities
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 99, sender=marketplace_caller)


def test_assign__large_set_with_full_node__never_picks_it(own_coordinator, bulk, marketplace_caller):
    # 12 nodes: above the full-scan limit, so assignment samples.
    (full,) = bulk.nodes(1, capacity=1, models=lambda node: (MODEL, OTHER_MODEL))
    others = bulk.nodes(11, capacity=2)
    bulk.renew_leases([full] + others)
    assert own_coordinator.eligibleNodes(MODEL) == 12 > own_coordinator.FULL_SCAN_LIMIT()
    assert bulk.assign(marketplace_caller, OTHER_MODEL, 0)[0] == [full]  # the only node of OTHER_MODEL

    picks = []
    for seed in range(22):  # exactly the free capacity of the other 11 nodes
        picks += bulk.assign(marketplace_caller, MODEL, seed)[0]
    assert full not in picks
    # Filled, never overfilled; the fallback probe finds the last free slots.
    assert [own_coordinator.nodeInfo(node).activeTasks for node in others] == [2] * 11
    assert own_coordinator.nodeInfo(full).activeTasks == 1
    with reverts_with("NodeCoordinatorNoEligibleNode"):
        own_coordinator.assign(MODEL, 1, 99, sender=marketplace_caller)


def test_assign__large_idle_set__picks_what_the_seed_alone_draws_in_any_block(
        own_coordinator, bulk, chain, marketplace_caller):
    """Assignment entropy is the seed only (the marketplace derives it from the hash of the
    request's block): the block that carries the assignment, its prevrandao and its time, changes
    nothing, so whoever sends the assignment cannot draw again by retrying later."""
    bulk.renew_leases(bulk.nodes(12))
    size = own_coordinator.eligibleNodes(MODEL)
    assert size == 12 > own_coordinator.FULL_SCAN_LIMIT()
    order = [own_coordinator.eligibleNodeAt(MODEL, index) for index in range(size)]
    for seed in (0, 1, 2**255 + 7):
        expected = idle_large_set_picks(order, seed, 3)
        got, randao = [], []
        for wait in (0, 7):
            snapshot = chain.snapshot()
            if wait:
                chain.pending_timestamp += wait * 12
                chain.mine(wait)
            receipt = own_coordinator.assign(MODEL, 3, seed, sender=marketplace_caller)
            block = chain.provider.make_request("eth_getBlockByNumber", [hex(receipt.block_number), False])
            got.append(assigned(own_coordinator, receipt))
            randao.append(block["mixHash"])
            chain.restore(snapshot)
        assert randao[0] != randao[1]  # another block, another prevrandao...
        assert got == [expected, expected]  # ...and the same nodes


# ---- O(1) gas in the number of registered nodes ----


def test_assign__100_vs_10_nodes__costs_the_same_gas(own_coordinator, bulk, chain, marketplace_caller):
    own_model = lambda node: keccak(text=node)  # noqa: E731

    def load(network):  # one task each, through a model only that node serves
        # A transaction per node outlasts a lease: renewed as live agents would, in one block.
        for start in range(0, len(network), LEASE_BLOCKS // 2):
            chunk = network[start : start + LEASE_BLOCKS // 2]
            bulk.renew_leases(chunk)
            for node in chunk:
                bulk.assign(marketplace_caller, own_model(node), 0)
        bulk.renew_leases(network)

    def assign_gas():
        gas = []
        for seed in range(4):
            snapshot = chain.snapshot()
            gas.append(own_coordinator.assign(MODEL, 1, seed, sender=marketplace_caller).gas_used)
            chain.restore(snapshot)
        return gas

    first = bulk.nodes(10, models=lambda node: (MODEL, own_model(node)))
    bulk.renew_leases(first)
    idle = chain.snapshot()
    gas = {"idle 10": assign_gas()}
    load(first)
    gas["busy 10"] = assign_gas()
    chain.restore(idle)
    rest = bulk.nodes(90, models=lambda node: (MODEL, own_model(node)))
    bulk.renew_leases(first + rest)
    assert own_coordinator.eligibleNodes(MODEL) == 100
    gas["idle 100"] = assign_gas()
    load(first + rest)
    gas["busy 100"] = assign_gas()

    print(f"assign gas by network: {gas}")
    # Idle nodes: the first draw wins outright. Busy nodes (1 task of 4): both draws are read
    # and compared. Either way the cost does not depend on the number of nodes.
    for state in ("idle", "busy"):
        assert max(gas[f"{state} 100"]) <= 1.05 * min(gas[f"{state} 10"]), gas
    assert max(gas["idle 100"]) < max(gas["busy 100"]) < 50_000, gas


def test_assign_and_release__one_node__fit_the_marketplace_budget(own_coordinator, token, alice, marketplace_caller):
    register(own_coordinator, token, alice)
    assign_gas = own_coordinator.assign(MODEL, 1, 1, sender=marketplace_caller).gas_used - 21_000
    release_gas = own_coordinator.release(alice, sender=marketplace_caller).gas_used - 21_000
    print(f"assign {assign_gas} + release {release_gas} gas beyond the 21,000 base")
    assert assign_gas + release_gas < 30_000


# ---- stateful: JOY conservation and bond safety under random operations ----


class RawViews:
    """The views the invariants re-read after every step, as bare ``eth_call``s (about 0.5 ms
    each against 3-5 ms through Ape's contract call wrapper)."""

    def __init__(self, provider, token, own_coordinator):
        self.provider, self.token, self.coordinator = provider, token, own_coordinator

    def _call(self, contract, signature, types, args, result_types):
        data = keccak(text=signature)[:4] + abi_encode(types, args)
        result = self.provider.make_request("eth_call", [{"to": contract.address, "data": "0x" + data.hex()}, "latest"])
        return abi_decode(result_types, bytes.fromhex(result[2:] if result.startswith("0x") else result))

    def balance(self, account):
        return self._call(self.token, "balanceOf(address)", ["address"], [account], ["uint256"])[0]

    def node(self, node):
        """(stake, bonded, capacity, activeTasks, missedDeadlines, active, registered)"""
        types = ["uint96", "uint96", "uint16", "uint16", "uint8", "bool", "bool"]
        return self._call(self.coordinator, "nodeInfo(address)", ["address"], [node], types)

    def unbonding(self, node):
        return self._call(self.coordinator, "unbondingOf(address)", ["address"], [node], ["uint256", "uint256"])[0]

    def eligible_nodes(self, model):
        return self._call(self.coordinator, "eligibleNodes(bytes32)", ["bytes32"], [model], ["uint256"])[0]

    def eligible_node_at(self, model, index):
        types = ["bytes32", "uint256"]
        (node,) = self._call(self.coordinator, "eligibleNodeAt(bytes32,uint256)", types, [model, index], ["address"])
        return to_checksum_address(node)


def for_some_node(qualifies):
    """Precondition of a rule that acts on a node that `qualifies`."""
    return precondition(lambda machine: any(qualifies(node) for node in machine.nodes.values()))


class CoordinatorLedger(RuleBasedStateMachine):
    """Four operators register, stake, unstake, withdraw, leave and rejoin, renew and end their
    leases; the marketplace
    assigns, releases and slashes; governance changes the task bond under open tasks and swaps
    the marketplace for another (the replaced one still releases and slashes, and may no longer
    assign). A Python model follows the stakes, bonds and tasks of every node, and the order of
    the model's eligibility set.

    Four nodes lie under the full-scan limit, and the seed is the only entropy, so the model
    predicts every assignment exactly: it succeeds exactly when enough nodes are eligible, and
    each slot takes the first least utilized eligible node scanning the set from the entry the
    seed draws. Rules that act on "a node with ..." draw ``pick`` and take that node among those
    that qualify; most have a precondition that some node does.
    """

    pick = st.integers(0, 2**16)
    OVERASK = st.sampled_from([False] * 3 + [True])  # ask for more nodes than are eligible

    def __init__(self, chain, token, own_coordinator, operators, marketplaces, beneficiary, treasury, owner):
        super().__init__()
        self.chain, self.token, self.coordinator = chain, token, own_coordinator
        self.operators, self.marketplaces, self.owner = operators, marketplaces, owner
        self.beneficiary, self.treasury = beneficiary, treasury
        self.views = RawViews(chain.provider, token, own_coordinator)
        self.snapshot_id = None
        self.nodes = {}  # operator address -> dict(stake, bonded, capacity, tasks, active, missed, unbonding)

    @initialize(first_nodes=st.lists(st.tuples(st.integers(0, 1_000), st.integers(1, 6)), min_size=2, max_size=3))
    def start(self, first_nodes):
        self.snapshot_id = self.chain.snapshot()
        self.bond = TASK_BOND
        self.marketplace, self.formers = self.marketplaces[0], []  # assigns; still close their tasks
        assert self.coordinator.marketplace() == self.marketplace.address
        self.order = []  # the eligibility set of MODEL, in the contract's order
        self.paid_out = 0  # slashed JOY, to the beneficiary and the treasury
        self.treasury_start = self.views.balance(self.treasury.address)
        self.beneficiary_start = self.views.balance(self.beneficiary.address)
        # A network from the start, so that most steps act on nodes; `register` adds the rest.
        for operator, (extra, capacity) in zip(self.operators, first_nodes):
            self._register(operator, extra, capacity)

    def teardown(self):
        if self.snapshot_id is not None:
            self.chain.restore(self.snapshot_id)

    def _choose(self, pick, qualifies):
        """(operator, model entry) of the `pick`-th node (cyclically) among those that qualify."""
        qualified = [o for o in self.operators if o.address in self.nodes and qualifies(self.nodes[o.address])]
        operator = qualified[pick % len(qualified)]
        return operator, self.nodes[operator.address]

    def _eligible(self, address, picked=()):
        """Whether the node can take a task in the next transaction's block."""
        node = self.nodes[address]
        return (
            node["active"]
            and self.chain.blocks.head.number + 1 < node["lease_end"]
            and node["tasks"] < node["capacity"]
            and node["stake"] - node["bonded"] >= self.bond
            and address not in picked
        )

    def _register(self, operator, extra, capacity):
        stake = MIN_STAKE + extra * JOY
        receipt = register(self.coordinator, self.token, operator, stake=stake, capacity=capacity)
        self.nodes[operator.address] = dict(
            stake=stake, bonded=0, capacity=capacity, tasks=0, active=True, missed=0, unbonding=0, left_at=0,
            lease_end=receipt.block_number + LEASE_BLOCKS,
        )
        self.order.append(operator.address)

    def _deactivate(self, address):
        """The node leaves the eligibility set (an EnumerableSet: the last entry takes its place)."""
        if not self.nodes[address]["active"]:
            return
        self.nodes[address]["active"] = False
        self.nodes[address]["left_at"] = self.chain.blocks.head.number
        index, last = self.order.index(address), self.order.pop()
        if last != address:
            self.order[index] = last

    def _score(self, address, picked):
        """The coordinator's score of a node for one more task: 0 if it cannot take it, else its
        free share of capacity in units of 2**-32."""
        if not self._eligible(address, picked):
            return 0
        node = self.nodes[address]
        return ((node["capacity"] - node["tasks"]) << 32) // node["capacity"]

    def _predict(self, count, seed):
        """The nodes `assign` picks (draw_model), or None if it must fail."""
        return predict_draw(self.order, count, seed, self._score)

    # -- operators --

    @precondition(lambda self: len(self.nodes) < 4)
    @rule(pick=pick, extra=st.integers(0, 1_000), capacity=st.integers(1, 6))
    def register(self, pick, extra, capacity):
        unregistered = [o for o in self.operators if o.address not in self.nodes]
        self._register(unregistered[pick % len(unregistered)], extra, capacity)

    @rule(pick=pick, amount=st.integers(1, 500))
    def add_stake(self, pick, amount):
        operator, node = self._choose(pick, lambda node: True)
        self.token.approve(self.coordinator, amount * JOY, sender=operator)
        self.coordinator.addStake(amount * JOY, sender=operator)
        node["stake"] += amount * JOY

    @rule(pick=pick, permille=st.integers(1, 1_000))
    def request_unstake(self, pick, permille):
        operator, node = self._choose(pick, lambda node: True)
        amount = (node["stake"] - node["bonded"]) * permille // 1_000
        if amount == 0:
            return
        self.coordinator.requestUnstake(amount, sender=operator)
        node["stake"] -= amount
        node["unbonding"] += amount
        if node["stake"] < MIN_STAKE:
            self._deactivate(operator.address)

    @for_some_node(lambda node: node["bonded"] > 0)
    @rule(pick=pick)
    def unstake_bonded_stake(self, pick):
        operator, node = self._choose(pick, lambda node: node["bonded"] > 0)
        # Bonded stake never leaves: one wei more than the free stake is refused.
        with reverts_with("NodeCoordinatorStakeBonded"):
            self.coordinator.requestUnstake(node["stake"] - node["bonded"] + 1, sender=operator)

    @for_some_node(lambda node: node["unbonding"] > 0)
    @rule(pick=pick, wait=st.booleans())
    def withdraw(self, pick, wait):
        operator, node = self._choose(pick, lambda node: node["unbonding"] > 0)
        if wait:
            self.chain.pending_timestamp += UNBONDING_DELAY
        _, ready_at = self.coordinator.unbondingOf(operator)
        if self.chain.pending_timestamp < ready_at:
            with reverts_with("NodeCoordinatorUnbondingNotReady"):
                self.coordinator.withdrawUnstaked(sender=operator)
            return
        balance = self.views.balance(operator.address)
        self.coordinator.withdrawUnstaked(sender=operator)
        assert self.views.balance(operator.address) == balance + node["unbonding"]
        node["unbonding"] = 0

    @rule(pick=pick)
    def leave_or_rejoin(self, pick):
        can_toggle = lambda node: node["active"] or node["stake"] >= MIN_STAKE  # noqa: E731
        if not any(can_toggle(node) for node in self.nodes.values()):
            return
        operator, node = self._choose(pick, can_toggle)
        if node["active"]:
            self.coordinator.deactivate(sender=operator)
            self._deactivate(operator.address)
        elif node["left_at"] and self.chain.blocks.head.number + 1 < node["left_at"] + REJOIN_DELAY:
            with reverts_with("NodeCoordinatorRejoinTooSoon"):
                self.coordinator.reactivate(sender=operator)
        else:
            receipt = self.coordinator.reactivate(sender=operator)
            node["active"], node["missed"] = True, 0
            node["lease_end"] = receipt.block_number + LEASE_BLOCKS
            self.order.append(operator.address)

    @rule(pick=pick, end=st.booleans())
    def renew_or_end_lease(self, pick, end):
        """An agent renews its node's lease, or ends it (a drain); neither touches the set."""
        operator, node = self._choose(pick, lambda node: True)
        if end:
            if self.chain.blocks.head.number + 1 >= node["lease_end"]:
                with reverts_with("NodeCoordinatorLeaseNotRunning"):
                    self.coordinator.endLease(sender=operator)
                return
            node["lease_end"] = self.coordinator.endLease(sender=operator).block_number
        elif not node["active"]:
            with reverts_with("NodeCoordinatorNotActive"):
                self.coordinator.renewLease(sender=operator)
        else:
            node["lease_end"] = self.coordinator.renewLease(sender=operator).block_number + LEASE_BLOCKS

    @rule()
    def rejoin_delay_passes(self):
        self.chain.mine(REJOIN_DELAY)

    # -- governance --

    @rule(bond=st.integers(10**15, 400 * JOY))
    def set_task_bond(self, bond):
        # Open tasks keep their bonds: release and slash must still unlock exactly what was locked.
        self.coordinator.setTaskBond(bond, sender=self.owner)
        self.bond = bond

    @rule(former_tries=st.sampled_from([False] * 7 + [True]))
    def switch_marketplace(self, former_tries):
        """Governance swaps the marketplace (back to a former one, from the second swap on); the
        replaced one keeps its open tasks and, ``former_tries``, is refused an assignment."""
        (other,) = [m for m in self.marketplaces if m != self.marketplace]
        self.coordinator.setMarketplace(other, sender=self.owner)
        self.formers = [m for m in self.formers if m != other] + [self.marketplace]
        self.marketplace = other
        assert [self.coordinator.isFormerMarketplace(m) for m in self.marketplaces] == [
            m in self.formers for m in self.marketplaces
        ]
        if former_tries:
            with reverts_with("NodeCoordinatorCallerNotMarketplace"):
                self.coordinator.assign(MODEL, 1, 0, sender=self.formers[-1])

    # -- marketplace --

    # assign and finish_task take one (tuple) argument each: Hypothesis orders rules by their
    # number of arguments, then by name, and draws the first ones more often; these two are the
    # heart of the machine.
    @rule(request=st.tuples(st.sampled_from([1, 1, 2, 3]), st.integers(0, 2**32), OVERASK))
    def assign(self, request):
        count, seed, overask = request
        eligible = [address for address in self.nodes if self._eligible(address)]
        if not overask:  # mostly ask for what can be had: a refusal costs a revert
            if not eligible:
                return
            count = min(count, len(eligible))
        predicted = self._predict(count, seed)
        assert (predicted is None) == (len(eligible) < count)
        if predicted is None:
            with reverts_with("NodeCoordinatorNoEligibleNode"):
                self.coordinator.assign(MODEL, count, seed, sender=self.marketplace)
            return
        picked = assigned(self.coordinator, self.coordinator.assign(MODEL, count, seed, sender=self.marketplace))
        assert picked == predicted
        assert len(set(picked)) == count
        for slot, address in enumerate(picked):
            candidates = [a for a in self.nodes if self._eligible(a, picked[:slot])]
            share = lambda a: 1 - self.nodes[a]["tasks"] / self.nodes[a]["capacity"]  # noqa: E731
            assert address in candidates  # a quorum's seats go to any eligible node, at random
            assert count > 1 or share(address) == max(share(a) for a in candidates)  # a single node: by load
        for address in picked:
            self.nodes[address]["tasks"] += 1
            self.nodes[address]["bonded"] += self.bond

    @rule(
        task=st.tuples(
            pick,
            st.sampled_from(["release", "timeout", "wrong result", "wrong result, no beneficiary"]),
            st.booleans(),
        )
    )
    def finish_task(self, task):
        """A task ends, closed by the marketplace or (``by_former``, if there is one) by one
        governance replaced: the coordinator knows no task's marketplace, only the node's."""
        pick, outcome, by_former = task
        if not any(node["tasks"] for node in self.nodes.values()):
            return  # no precondition: it would make Hypothesis draw this rule much less often
        operator, node = self._choose(pick, lambda node: node["tasks"] > 0)
        closer = self.formers[-1] if by_former and self.formers else self.marketplace
        bond = node["bonded"] // node["tasks"]  # the average open bond; the last takes the rest
        if outcome == "release":
            self.coordinator.release(operator, sender=closer)  # the invariants check the bond it unlocked
            node["bonded"] -= bond
            node["tasks"] -= 1
            node["missed"] = 0
            return

        missed_deadline = outcome == "timeout"
        beneficiary = ZERO_ADDRESS if outcome.endswith("no beneficiary") else self.beneficiary.address
        receipt = self.coordinator.slash(operator, beneficiary, missed_deadline, sender=closer)
        (slashed,) = receipt.decode_logs(self.coordinator.NodeSlashed)
        assert slashed.amount == bond
        assert slashed.beneficiaryShare == (0 if beneficiary == ZERO_ADDRESS else bond * SHARE_BPS // 10_000)
        node["stake"] -= bond
        node["bonded"] -= bond
        node["tasks"] -= 1
        self.paid_out += bond
        if missed_deadline:
            node["missed"] += 1
            if node["missed"] >= MAX_MISSED:
                self._deactivate(operator.address)
        if node["stake"] < MIN_STAKE:
            self._deactivate(operator.address)

    # -- invariants --

    @invariant()
    def joy_is_conserved(self):
        if self.snapshot_id is None:
            return
        held = self.views.balance(self.coordinator.address)
        stakes = {address: self.views.node(address)[0] for address in self.nodes}
        unbonding = {address: self.views.unbonding(address) for address in self.nodes}
        assert held == sum(stakes[a] + unbonding[a] for a in self.nodes)
        assert held == sum(n["stake"] + n["unbonding"] for n in self.nodes.values())
        assert unbonding == {a: n["unbonding"] for a, n in self.nodes.items()}
        # Slashed JOY left for named recipients only, and all of it arrived.
        slashed = (self.views.balance(self.treasury.address) - self.treasury_start) + (
            self.views.balance(self.beneficiary.address) - self.beneficiary_start
        )
        assert slashed == self.paid_out

    @invariant()
    def nodes_match_the_model_and_bonds_stay_covered(self):
        if self.snapshot_id is None:
            return
        for address, model in self.nodes.items():
            stake, bonded, capacity, tasks, missed, active, registered = self.views.node(address)
            assert bonded <= stake  # bonded stake is always there
            assert tasks <= capacity  # assign never overfills (no capacity changes here)
            assert (bonded == 0) == (tasks == 0)
            assert (stake, bonded, capacity, tasks, active, registered) == (
                model["stake"], model["bonded"], model["capacity"], model["tasks"], model["active"], True
            )
            assert min(missed, MAX_MISSED) == min(model["missed"], MAX_MISSED)
            assert self.coordinator.leaseEnd(address) == model["lease_end"]
        active = sum(1 for n in self.nodes.values() if n["active"])
        assert self.views.eligible_nodes(MODEL) == active == len(self.order)
        # The set's order, on which the next assignments depend.
        assert [self.views.eligible_node_at(MODEL, i) for i in range(active)] == self.order


def test_ledger__random_operations__conserve_joy_keep_bonds_covered_and_assign_as_predicted(
    chain, token, own_coordinator, accounts, marketplace_caller, outsider, timelock, deployer
):
    operators = [accounts[index] for index in (1, 2, 4, 5)]
    marketplaces = (marketplace_caller, accounts[8])  # the second one replaces the first, and back
    run_state_machine_as_test(
        lambda: CoordinatorLedger(
            chain, token, own_coordinator, operators, marketplaces, outsider, timelock, deployer),
        settings=settings(max_examples=20, stateful_step_count=15),
    )
