// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {INodeCoordinator} from "./interfaces/INodeCoordinator.sol";
import {BASIS_POINTS} from "./libraries/BasisPoints.sol";

/// @title NodeCoordinator, the registry, stake and work dispatcher of JoyNet's edge nodes
/// @notice Edge node operators stake JOY, declare a capacity (concurrent tasks) and the models
/// they serve. The marketplace asks for nodes per request; the coordinator picks them by load in
/// O(1) gas in the number of registered nodes and locks a task bond from each picked node's
/// stake until the marketplace releases it (task done) or slashes it (timeout, wrong result).
/// Unstaked JOY waits out an unbonding delay; bonded JOY cannot leave at all.
///
/// A node is identified by its operator address and registers once. Every parameter is governed
/// (owner = the DAO's timelock once deployment is wired) within hard bounds set in code.
///
/// JOY conservation: the contract's JOY balance equals, at all times, the sum over nodes of
/// `stake + unbonding amount` (plus anything sent to it by plain transfer, which nothing here
/// counts or pays out). Stake only enters through {registerNode}/{addStake}, leaves through
/// {withdrawUnstaked} after unbonding, or through {slash} to the beneficiary and the treasury.
///
/// Bond accounting: a node's `bonded` is the sum of the bonds locked for its open tasks, each
/// locked at the task bond in force when the task was assigned. The marketplace identifies no
/// task when it releases or slashes, and the tasks of one node are interchangeable, so each
/// release or slash unlocks the node's average bond per open task, `bonded / activeTasks` (the
/// last open task takes what rounding left). While {taskBond} does not change this is exactly
/// the task bond; when governance changes it under open tasks, the total unlocked over a node's
/// open tasks is still exactly the total that was locked for them, never more and never less,
/// and `bonded` is zero exactly when `activeTasks` is zero.
contract NodeCoordinator is INodeCoordinator, JoyGoverned {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice The hot per-node state, packed in one storage slot: assign and release each read
    /// and write this slot once.
    struct Node {
        uint96 stake; // JOY staked, including `bonded`; excludes JOY unbonding
        uint96 bonded; // JOY locked for open tasks (sum of the bonds locked at assignment)
        uint16 capacity; // concurrent tasks the node accepts
        uint16 activeTasks; // open tasks
        uint8 missedDeadlines; // consecutive missed deadlines (a released task resets it)
        bool active; // in the eligibility sets of its models
        bool registered;
    }

    /// @notice JOY on its way out of a node's stake.
    struct Unbonding {
        uint96 amount;
        uint64 readyAt; // timestamp from which {withdrawUnstaked} pays `amount`
    }

    // ---- hard bounds of the governed parameters ----

    /// @notice Bounds of {minStake}, in JOY wei.
    uint256 public constant MIN_MIN_STAKE = 1e18;
    uint256 public constant MAX_MIN_STAKE = 10_000_000e18;
    /// @notice Lower bound of {taskBond}; its upper bound is the current {minStake}, so that a
    /// node with the minimum stake can always take at least one task.
    uint256 public constant MIN_TASK_BOND = 1e15;
    /// @notice Bounds of {unbondingDelay}, in seconds.
    uint256 public constant MIN_UNBONDING_DELAY = 60;
    uint256 public constant MAX_UNBONDING_DELAY = 60 days;
    /// @notice Bounds of {maxMissedDeadlines}.
    uint256 public constant MIN_MAX_MISSED_DEADLINES = 1;
    uint256 public constant MAX_MAX_MISSED_DEADLINES = 100;
    /// @notice Bounds of {leaseBlocks}. At least a few blocks, so that an agent that renews with a
    /// third of its lease left has blocks to spare for its transaction to land; at most a day of
    /// 2-second blocks, past which a lease no longer bounds how long a dead node is drawn.
    uint256 public constant MIN_LEASE_BLOCKS = 10;
    uint256 public constant MAX_LEASE_BLOCKS = 43_200;

    // ---- fixed limits of nodes and assignment ----

    /// @notice Largest capacity a node may declare.
    uint256 public constant MAX_CAPACITY = 1024;
    /// @notice Most models one node serves; bounds the work of (de)activating a node.
    uint256 public constant MAX_MODELS_PER_NODE = 32;
    /// @notice Most distinct nodes one {assign} call picks (the largest quorum).
    uint256 public constant MAX_ASSIGNMENT = 16;
    /// @notice Eligibility sets up to this size are scanned whole: cheap enough, and a small
    /// network never fails to assign by unlucky draws.
    uint256 public constant FULL_SCAN_LIMIT = 8;
    /// @notice Rounds of two random draws per assigned node in larger sets.
    uint256 public constant DRAW_ROUNDS = 4;
    /// @notice When every draw of a slot missed, this many consecutive set entries from a random
    /// start are probed before giving up, so a nearly full network rarely fails by bad luck.
    uint256 public constant FALLBACK_WINDOW = 16;
    /// @notice Blocks a node that left an eligibility set waits before it joins one again. The
    /// marketplace assigns a request within 256 blocks of the block whose hash seeds its draw, and
    /// a change of a model's set reseeds the draws of its pending requests: without the wait, a
    /// node that disliked a draw could leave and rejoin until a fresh draw gave it the request.
    uint256 public constant REJOIN_DELAY = 256;

    /// @dev Bit offsets of `Node` members in its slot (stake at 0), and the score of an idle node.
    uint256 private constant _BONDED_OFFSET = 96;
    uint256 private constant _CAPACITY_OFFSET = 192;
    uint256 private constant _TASKS_OFFSET = 208;
    uint256 private constant _MISSED_OFFSET = 224;
    uint256 private constant _ACTIVE_OFFSET = 232;
    uint256 private constant _IDLE_SCORE = 1 << 32;

    IERC20 private immutable _joy;

    // Packed after Ownable's owner address: read by owner-only setters, unstaking and slashing.
    uint64 private _unbondingDelay;
    uint16 private _slashBeneficiaryShareBps;
    uint8 private _maxMissedDeadlines;
    // One slot, read by every marketplace call (the caller check and the bond of assign).
    address private _marketplace;
    uint96 private _taskBond;
    // One slot, read by slashing.
    address private _treasury;
    uint96 private _minStake;

    mapping(address node => Node) private _nodes;
    mapping(address node => Unbonding) private _unbonding;
    mapping(address node => EnumerableSet.Bytes32Set) private _modelsOf;
    /// @dev Per model: the active nodes serving it. O(1) add/remove (swap and pop).
    mapping(bytes32 modelId => EnumerableSet.AddressSet) private _eligible;
    /// @dev Marketplaces governance replaced: they may still release and slash the nodes of the
    /// requests they opened, so that no request is stranded by an upgrade; they assign no more.
    mapping(address marketplace => bool) private _formerMarketplaces;
    /// @dev Per model: the last block in which its eligibility set changed. The draw reads the
    /// set's order and size, which a node changes at will (leaving and rejoining moves it to the
    /// end; any change of size re-rolls every index): a model whose set changed in this block is
    /// not assigned in it, so that nobody can reshuffle the set and assign in one transaction.
    mapping(bytes32 modelId => uint256 blockNumber) private _eligibleChangedAt;
    /// @dev The last block in which the node left an eligibility set (0: never).
    mapping(address node => uint256 blockNumber) private _leftAt;
    /// @dev Per node: the first block in which its lease no longer runs (0: never started). A
    /// node is drawn only in blocks before it. Kept out of `Node`, whose slot has 8 free bits:
    /// a block number cut to 8 (or, by narrowing capacity and activeTasks to their 11 used bits,
    /// 18) bits wraps around within hours, and a wrapped lease of a dead node would run again.
    /// `_score` reads it only for a node that is otherwise eligible, once per such draw.
    mapping(address node => uint256 blockNumber) private _leaseEnds;
    /// @dev Blocks a lease runs from its start or renewal; its own slot, read by renewals only.
    uint32 private _leaseBlocks;

    modifier onlyMarketplace() {
        if (msg.sender != _marketplace) revert NodeCoordinatorCallerNotMarketplace(msg.sender);
        _;
    }

    /// @dev The current marketplace, or one it replaced (closing the requests it still holds).
    modifier onlyMarketplaceOrFormer() {
        if (msg.sender != _marketplace && !_formerMarketplaces[msg.sender]) {
            revert NodeCoordinatorCallerNotMarketplace(msg.sender);
        }
        _;
    }

    /// @param joy_ the JOY token
    /// @param initialOwner the deployer, who wires the marketplace and hands ownership to the timelock
    /// @param treasury_ receives the slashed JOY that does not go to a beneficiary
    /// @param minStake_ least stake of an active node
    /// @param taskBond_ JOY locked per open task
    /// @param unbondingDelay_ seconds between an unstake request and its withdrawal
    /// @param maxMissedDeadlines_ missed deadlines in a row that deactivate a node
    /// @param slashBeneficiaryShareBps_ share of a slashed bond paid to the beneficiary
    /// @param leaseBlocks_ blocks a node's lease runs from its start or renewal
    constructor(
        IERC20 joy_,
        address initialOwner,
        address treasury_,
        uint96 minStake_,
        uint96 taskBond_,
        uint64 unbondingDelay_,
        uint8 maxMissedDeadlines_,
        uint16 slashBeneficiaryShareBps_,
        uint32 leaseBlocks_
    ) JoyGoverned(initialOwner) {
        if (address(joy_) == address(0)) revert NodeCoordinatorInvalidAddress("joy", address(0));
        _joy = joy_;
        _setTreasury(treasury_);
        _setMinStake(minStake_); // before the task bond, whose upper bound it is
        _setTaskBond(taskBond_);
        _setUnbondingDelay(unbondingDelay_);
        _setMaxMissedDeadlines(maxMissedDeadlines_);
        _setSlashBeneficiaryShareBps(slashBeneficiaryShareBps_);
        _setLeaseBlocks(leaseBlocks_);
    }

    // =====================================================================================
    // Nodes
    // =====================================================================================

    /// @notice Registers the caller as a node: pulls `stake` JOY (approve it first), records
    /// `capacity` and `models`, makes the node active, i.e. in the eligibility set of each
    /// model, and starts its lease ({renewLease}).
    /// @param stake JOY to stake, at least {minStake}
    /// @param capacity concurrent tasks, in [1, MAX_CAPACITY]
    /// @param models 1 to MAX_MODELS_PER_NODE distinct, non-zero model ids
    function registerNode(uint96 stake, uint16 capacity, bytes32[] calldata models) external {
        _register(stake, capacity, models);
    }

    /// @notice {registerNode} with an EIP-2612 permit for `stake` instead of a prior approval.
    /// @dev The permit is tried, not required: if someone front-ran it with the same signature,
    /// the allowance it set is there anyway and the transfer still succeeds.
    function registerNodeWithPermit(
        uint96 stake,
        uint16 capacity,
        bytes32[] calldata models,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        try IERC20Permit(address(_joy)).permit(msg.sender, address(this), stake, deadline, v, r, s) {} catch {}
        _register(stake, capacity, models);
    }

    /// @notice Adds `amount` JOY (approve it first) to the caller's stake. Does not reactivate
    /// an inactive node: call {reactivate} for that.
    function addStake(uint96 amount) external {
        if (amount == 0) revert NodeCoordinatorZeroAmount();
        Node storage node = _registeredNode(msg.sender);
        uint96 stake = node.stake + amount;
        node.stake = stake;
        emit StakeAdded(msg.sender, amount, stake);
        _joy.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Moves `amount` of the caller's free stake into unbonding, withdrawable with
    /// {withdrawUnstaked} after {unbondingDelay}. The amount adds to any JOY already unbonding
    /// and the delay restarts for the total. Stake locked for open tasks cannot be unstaked.
    /// If less than {minStake} remains, the node leaves assignment.
    function requestUnstake(uint96 amount) external {
        if (amount == 0) revert NodeCoordinatorZeroAmount();
        Node storage node = _registeredNode(msg.sender);
        uint256 free = node.stake - node.bonded;
        if (amount > free) revert NodeCoordinatorStakeBonded(amount, free);
        uint96 stake = node.stake - amount;
        node.stake = stake;

        Unbonding storage unbonding = _unbonding[msg.sender];
        uint96 total = unbonding.amount + amount;
        uint64 readyAt = SafeCast.toUint64(block.timestamp + _unbondingDelay);
        (unbonding.amount, unbonding.readyAt) = (total, readyAt);
        emit UnstakeRequested(msg.sender, amount, total, readyAt);

        if (node.active && stake < _minStake) _deactivate(msg.sender, DeactivationReason.StakeBelowMinimum);
    }

    /// @notice Pays the caller the JOY that finished unbonding.
    function withdrawUnstaked() external {
        Unbonding memory unbonding = _unbonding[msg.sender];
        if (unbonding.amount == 0) revert NodeCoordinatorNothingToWithdraw();
        if (block.timestamp < unbonding.readyAt) {
            revert NodeCoordinatorUnbondingNotReady(unbonding.readyAt, block.timestamp);
        }
        delete _unbonding[msg.sender];
        emit UnstakeWithdrawn(msg.sender, unbonding.amount);
        _joy.safeTransfer(msg.sender, unbonding.amount);
    }

    /// @notice Sets the caller's capacity. A capacity below the node's open tasks is allowed:
    /// open tasks continue and the node gets no new task until its load falls below it.
    /// @param capacity concurrent tasks, in [1, MAX_CAPACITY]
    function setCapacity(uint16 capacity) external {
        _checkCapacity(capacity);
        Node storage node = _registeredNode(msg.sender);
        emit NodeCapacitySet(msg.sender, node.capacity, capacity);
        node.capacity = capacity;
    }

    /// @notice The caller starts serving `modelId` (eligible for it at once if active).
    function serveModel(bytes32 modelId) external {
        _registeredNode(msg.sender);
        _addModel(msg.sender, modelId);
        if (_nodes[msg.sender].active) _joinEligibleSet(modelId, msg.sender);
    }

    /// @notice The caller stops serving `modelId`; open tasks of that model continue.
    function stopServingModel(bytes32 modelId) external {
        Node storage node = _registeredNode(msg.sender);
        if (!_modelsOf[msg.sender].remove(modelId)) revert NodeCoordinatorModelNotServed(modelId);
        if (node.active) _leaveEligibleSet(modelId, msg.sender);
        emit ModelServingStopped(msg.sender, modelId);
    }

    /// @notice The caller leaves assignment voluntarily; open tasks continue and are released
    /// or slashed as usual, and the stake can be unstaked as it becomes free.
    function deactivate() external {
        Node storage node = _registeredNode(msg.sender);
        if (!node.active) revert NodeCoordinatorNotActive(msg.sender);
        _deactivate(msg.sender, DeactivationReason.Voluntary);
    }

    /// @notice The caller rejoins assignment for all the models it serves. Needs a stake of at
    /// least {minStake}; resets the missed-deadline count and starts a lease ({renewLease}).
    function reactivate() external {
        Node storage node = _registeredNode(msg.sender);
        if (node.active) revert NodeCoordinatorAlreadyActive(msg.sender);
        _requireMinStake(node.stake);
        (node.active, node.missedDeadlines) = (true, 0);
        _joinEligibleSets(msg.sender);
        emit NodeReactivated(msg.sender);
        _startLease(msg.sender);
    }

    /// @notice The caller, an active node, declares itself live for the next {leaseBlocks}
    /// blocks: it can be drawn in this block and in the `leaseBlocks - 1` blocks after it, and
    /// not from block `block.number + leaseBlocks` on unless it renews again. A node whose
    /// agent died (killed, crashed, cut off) therefore stops being drawn at most {leaseBlocks}
    /// blocks after its last renewal, whatever room its capacity has left. An agent renews
    /// when about a third of its lease is left.
    /// @dev A lease is not membership of an eligibility set: renewing or ending one changes
    /// neither the order nor the size of any set, so it reseeds no draw and waits out no
    /// REJOIN_DELAY. It only turns the node's own eligibility on or off in place, as
    /// {setCapacity} already does for a node with open tasks (a capacity at or below them) and
    /// a full capacity does for any node. A node that toggles its lease once it knows a
    /// request's seed can only pass on a request it would have been drawn for, never be drawn
    /// for one it would not have won while live: no more than declining what it is assigned
    /// (the marketplace's `declineRequest`, which no slash follows). Sybil nodes of one
    /// operator can pass a request from one to another among them the same way, as they can
    /// with capacities; the draw still decides which of them, if any, gets it
    /// (tests/contracts/attacks/test_assignment_steering.py).
    function renewLease() external {
        Node storage node = _registeredNode(msg.sender);
        if (!node.active) revert NodeCoordinatorNotActive(msg.sender);
        _startLease(msg.sender);
    }

    /// @notice The caller's lease ends now: it is not drawn from this block on, until it calls
    /// {renewLease}. The graceful pause of an agent that drains: unlike {deactivate}, it keeps
    /// the node in its eligibility sets, so renewing costs no REJOIN_DELAY. Open tasks continue.
    /// @dev See {renewLease} on why this cannot steer a draw.
    function endLease() external {
        _registeredNode(msg.sender);
        uint256 end = _leaseEnds[msg.sender];
        if (end <= block.number) revert NodeCoordinatorLeaseNotRunning(msg.sender, end);
        _leaseEnds[msg.sender] = block.number;
        emit LeaseEnded(msg.sender);
    }

    /// @notice Removes from assignment an active node whose stake is below {minStake}. Anyone
    /// may call it: it lets a raise of the minimum stake take effect on nodes already active
    /// (their own unstakes and slashes check it; assignment does not, to stay cheap).
    function evictUnderstaked(address nodeAddress) external {
        Node storage node = _registeredNode(nodeAddress);
        if (!node.active) revert NodeCoordinatorNotActive(nodeAddress);
        uint256 minimum = _minStake;
        if (node.stake >= minimum) revert NodeCoordinatorStakeSufficient(nodeAddress, node.stake, minimum);
        _deactivate(nodeAddress, DeactivationReason.StakeBelowMinimum);
    }

    // =====================================================================================
    // Marketplace
    // =====================================================================================

    /// @inheritdoc INodeCoordinator
    /// @dev "Power of two choices": per wanted node, two distinct random entries of the model's
    /// eligibility set are drawn and the better eligible one is kept; up to DRAW_ROUNDS rounds,
    /// then a probe of FALLBACK_WINDOW consecutive entries. Sets of at most FULL_SCAN_LIMIT
    /// entries are scanned whole. Eligible: active, activeTasks < capacity, free stake >=
    /// taskBond, lease running ({renewLease}), not yet picked for this request. Score: the free
    /// share of the node's capacity, `(capacity - activeTasks) / capacity`; the less utilized
    /// node wins, ties go to the first draw, so load spreads in proportion to declared
    /// capacity. Stake does not weigh in: it gates eligibility (minStake, a free bond per
    /// task), and weighting by it would steer work to large stakers whatever their load. As an
    /// idle node cannot be beaten, an idle first draw ends the comparison without reading the
    /// second (the common, cheap case). The lease is read last, for a node otherwise eligible.
    /// A quorum's seats (`count` > 1) go to the first eligible draws, load aside: see `_score`.
    /// Randomness: keccak256(seed, draw) only. The marketplace derives the seed from the hash of
    /// the request's block, which the request could not see; nothing of the assigning
    /// transaction (such as block.prevrandao) enters, so whoever sends it cannot draw again by
    /// retrying in another block. The proposer of the request's block could bias its hash,
    /// which buys a node no more than a task it must still perform correctly.
    /// The draw also reads the eligibility set's order and size; a model whose set changed in
    /// this block is not assigned in it (NodeCoordinatorEligibilityJustChanged), so that nobody
    /// reshuffles the set and draws again within one transaction; the marketplace reseeds the
    /// draw of a request whose model's set changed after its block, and a node that left a set
    /// cannot join one again for REJOIN_DELAY blocks, so that leaving buys no fresh draw.
    function assign(bytes32 modelId, uint256 count, uint256 seed)
        external
        onlyMarketplace
        returns (address[] memory nodes)
    {
        nodes = draw(modelId, count, seed);
        uint256 bond = _taskBond;
        for (uint256 i = 0; i < count; ++i) {
            _lockBond(nodes[i], bond);
        }
    }

    /// @inheritdoc INodeCoordinator
    /// @dev See {assign}, which locks what this picks.
    function draw(bytes32 modelId, uint256 count, uint256 seed) public view returns (address[] memory nodes) {
        if (count == 0 || count > MAX_ASSIGNMENT) revert NodeCoordinatorInvalidAssignmentCount(count, MAX_ASSIGNMENT);
        if (_eligibleChangedAt[modelId] == block.number) revert NodeCoordinatorEligibilityJustChanged(modelId);
        EnumerableSet.AddressSet storage candidates = _eligible[modelId];
        uint256 size = candidates.length();
        uint256 bond = _taskBond;
        uint256 entropy = seed;

        nodes = new address[](count);
        uint256 found;
        // With fewer candidates than wanted, fail without reading any of them.
        if (size >= count) {
            for (; found < count; ++found) {
                address picked = _pick(candidates, size, bond, nodes, found, entropy);
                if (picked == address(0)) break;
                nodes[found] = picked;
            }
        }
        if (found < count) revert NodeCoordinatorNoEligibleNode(modelId, count, found);
    }

    /// @inheritdoc INodeCoordinator
    /// @dev Unlocks the node's average bond per open task (see the contract notes) and resets its
    /// missed-deadline count: a completed task proves the node is live.
    function release(address nodeAddress) external onlyMarketplaceOrFormer {
        Node storage node = _nodes[nodeAddress];
        uint256 word = _loadWord(node);
        uint256 tasks = uint16(word >> _TASKS_OFFSET);
        if (tasks == 0) revert NodeCoordinatorNoOpenTask(nodeAddress);
        uint256 bond = uint96(word >> _BONDED_OFFSET) / tasks;
        // bonded -= bond (<= bonded), activeTasks -= 1 (>= 1): no field borrows from the next.
        word -= (bond << _BONDED_OFFSET) + (1 << _TASKS_OFFSET);
        _storeWord(node, word & ~(uint256(type(uint8).max) << _MISSED_OFFSET)); // missedDeadlines = 0
    }

    /// @inheritdoc INodeCoordinator
    /// @dev The bond is the node's average bond per open task (see the contract notes). A
    /// beneficiary of address(0) (or this contract) gets nothing and the treasury all of it.
    /// The node leaves assignment after `maxMissedDeadlines` missed deadlines in a row, or when
    /// its stake falls below {minStake}; its remaining open tasks continue.
    function slash(address nodeAddress, address beneficiary, bool missedDeadline)
        external
        onlyMarketplaceOrFormer
        returns (uint256 slashed)
    {
        Node storage node = _nodes[nodeAddress];
        uint96 bond = _openTaskBond(node, nodeAddress);
        (node.stake, node.bonded, node.activeTasks) = (node.stake - bond, node.bonded - bond, node.activeTasks - 1);

        bool tooManyMisses;
        if (missedDeadline) {
            uint8 missed = node.missedDeadlines;
            // Saturates: an inactive node's open tasks may keep timing out.
            if (missed < type(uint8).max) node.missedDeadlines = ++missed;
            emit DeadlineMissed(nodeAddress, missed);
            tooManyMisses = missed >= _maxMissedDeadlines;
        }
        if (node.active) {
            if (tooManyMisses) _deactivate(nodeAddress, DeactivationReason.MissedDeadlines);
            else if (node.stake < _minStake) _deactivate(nodeAddress, DeactivationReason.StakeBelowMinimum);
        }

        _payOutSlash(nodeAddress, bond, beneficiary);
        return bond;
    }

    // =====================================================================================
    // Governance
    // =====================================================================================

    /// @notice Sets the least stake of an active node, in [max(MIN_MIN_STAKE, taskBond), MAX_MIN_STAKE].
    /// Active nodes below a raised minimum stay active until they unstake, are slashed or are
    /// evicted with {evictUnderstaked}.
    function setMinStake(uint96 newMinStake) external onlyOwner {
        _setMinStake(newMinStake);
    }

    /// @notice Sets the JOY locked per open task, in [MIN_TASK_BOND, minStake]. Open tasks keep
    /// the bond they were assigned with (see the contract notes).
    function setTaskBond(uint96 newTaskBond) external onlyOwner {
        _setTaskBond(newTaskBond);
    }

    /// @notice Sets the unbonding delay, in [MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY] seconds.
    /// Applies to unstake requests made from now on.
    function setUnbondingDelay(uint64 newUnbondingDelay) external onlyOwner {
        _setUnbondingDelay(newUnbondingDelay);
    }

    /// @notice Sets how many missed deadlines in a row deactivate a node, in [1, 100].
    function setMaxMissedDeadlines(uint8 newMaxMissedDeadlines) external onlyOwner {
        _setMaxMissedDeadlines(newMaxMissedDeadlines);
    }

    /// @notice Sets how many blocks a node's lease runs, in [MIN_LEASE_BLOCKS, MAX_LEASE_BLOCKS].
    /// Applies to leases started or renewed from now on; running leases keep their end.
    function setLeaseBlocks(uint32 newLeaseBlocks) external onlyOwner {
        _setLeaseBlocks(newLeaseBlocks);
    }

    /// @notice Sets the share of a slashed bond paid to the beneficiary, in [0, 10,000] basis points.
    function setSlashBeneficiaryShareBps(uint16 newShareBps) external onlyOwner {
        _setSlashBeneficiaryShareBps(newShareBps);
    }

    /// @notice Sets the treasury, which receives the rest of every slashed bond.
    function setTreasury(address newTreasury) external onlyOwner {
        _setTreasury(newTreasury);
    }

    /// @notice Sets the marketplace, the only caller of {assign}. The marketplace it replaces
    /// may still {release} and {slash}, so that its open requests close normally.
    function setMarketplace(address newMarketplace) external onlyOwner {
        if (newMarketplace == address(0)) revert NodeCoordinatorInvalidAddress("marketplace", newMarketplace);
        address previous = _marketplace;
        emit MarketplaceSet(previous, newMarketplace);
        if (previous != address(0)) _formerMarketplaces[previous] = true;
        _formerMarketplaces[newMarketplace] = false;
        _marketplace = newMarketplace;
    }

    /// @notice Whether `account` is a marketplace governance replaced, which may still release
    /// and slash the nodes of its open requests.
    function isFormerMarketplace(address account) external view returns (bool) {
        return _formerMarketplaces[account];
    }

    // =====================================================================================
    // Views
    // =====================================================================================

    /// @inheritdoc INodeCoordinator
    function taskBond() external view returns (uint256) {
        return _taskBond;
    }

    /// @inheritdoc INodeCoordinator
    function joy() external view returns (IERC20) {
        return _joy;
    }

    /// @inheritdoc INodeCoordinator
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc INodeCoordinator
    function unbondingDelay() external view returns (uint256) {
        return _unbondingDelay;
    }

    /// @inheritdoc INodeCoordinator
    function maxMissedDeadlines() external view returns (uint256) {
        return _maxMissedDeadlines;
    }

    /// @inheritdoc INodeCoordinator
    function leaseBlocks() external view returns (uint256) {
        return _leaseBlocks;
    }

    /// @inheritdoc INodeCoordinator
    function slashBeneficiaryShareBps() external view returns (uint256) {
        return _slashBeneficiaryShareBps;
    }

    /// @inheritdoc INodeCoordinator
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc INodeCoordinator
    function marketplace() external view returns (address) {
        return _marketplace;
    }

    /// @notice A node's state (all zero for an unregistered address).
    function nodeInfo(address nodeAddress) external view returns (Node memory) {
        return _nodes[nodeAddress];
    }

    /// @notice JOY of a node that is unbonding and the time from which it can be withdrawn.
    function unbondingOf(address nodeAddress) external view returns (uint256 amount, uint256 readyAt) {
        Unbonding memory unbonding = _unbonding[nodeAddress];
        return (unbonding.amount, unbonding.readyAt);
    }

    /// @notice Stake of a node not locked for open tasks.
    function freeStake(address nodeAddress) external view returns (uint256) {
        Node memory node = _nodes[nodeAddress];
        return node.stake - node.bonded;
    }

    /// @notice The models a node serves (at most MAX_MODELS_PER_NODE).
    function modelsOf(address nodeAddress) external view returns (bytes32[] memory) {
        return _modelsOf[nodeAddress].values();
    }

    /// @inheritdoc INodeCoordinator
    function servesModel(address nodeAddress, bytes32 modelId) external view returns (bool) {
        return _modelsOf[nodeAddress].contains(modelId);
    }

    /// @notice The last block in which the eligibility set of `modelId` changed (0: never). The
    /// marketplace seeds an assignment with the hash of this block when it is later than the
    /// request's, so that a change made once the request's seed was known draws anew.
    function eligibleChangedAt(bytes32 modelId) external view returns (uint256) {
        return _eligibleChangedAt[modelId];
    }

    /// @notice The first block in which the lease of `nodeAddress` no longer runs (0: it never
    /// had one): it can be drawn only in blocks before this one.
    function leaseEnd(address nodeAddress) external view returns (uint256) {
        return _leaseEnds[nodeAddress];
    }

    /// @notice Whether the lease of `nodeAddress` runs in this block.
    function leaseRunning(address nodeAddress) external view returns (bool) {
        return block.number < _leaseEnds[nodeAddress];
    }

    /// @notice The first block in which `nodeAddress` may join an eligibility set again
    /// ({serveModel}, {reactivate}): REJOIN_DELAY blocks after it last left one (0: any block).
    function rejoinableAt(address nodeAddress) public view returns (uint256) {
        uint256 left = _leftAt[nodeAddress];
        return left == 0 ? 0 : left + REJOIN_DELAY;
    }

    /// @notice Size of the eligibility set of `modelId`: the active nodes serving it, busy or not.
    function eligibleNodes(bytes32 modelId) external view returns (uint256) {
        return _eligible[modelId].length();
    }

    /// @notice Entry `index` of the eligibility set of `modelId` (order changes on removals).
    function eligibleNodeAt(bytes32 modelId, uint256 index) external view returns (address) {
        return _eligible[modelId].at(index);
    }

    /// @notice Whether {assign} could pick the node for `modelId` now: active, serving the
    /// model, below its capacity, with free stake for one task bond and a running lease.
    function isEligible(address nodeAddress, bytes32 modelId) external view returns (bool) {
        return _eligible[modelId].contains(nodeAddress) && _score(nodeAddress, _taskBond, new address[](0), 0) != 0;
    }

    // =====================================================================================
    // Internals
    // =====================================================================================

    function _register(uint96 stake, uint16 capacity, bytes32[] calldata models) private {
        Node storage node = _nodes[msg.sender];
        if (node.registered) revert NodeCoordinatorAlreadyRegistered(msg.sender);
        _requireMinStake(stake);
        _checkCapacity(capacity);
        if (models.length == 0) revert NodeCoordinatorNoModels();
        if (models.length > MAX_MODELS_PER_NODE) {
            revert NodeCoordinatorTooManyModels(models.length, MAX_MODELS_PER_NODE);
        }

        (node.stake, node.capacity, node.active, node.registered) = (stake, capacity, true, true);
        for (uint256 i = 0; i < models.length; ++i) {
            _addModel(msg.sender, models[i]);
            _joinEligibleSet(models[i], msg.sender);
        }
        emit NodeRegistered(msg.sender, stake, capacity, models);
        _startLease(msg.sender);
        _joy.safeTransferFrom(msg.sender, address(this), stake);
    }

    function _startLease(address nodeAddress) private {
        uint256 end = block.number + _leaseBlocks;
        _leaseEnds[nodeAddress] = end;
        emit LeaseRenewed(nodeAddress, end);
    }

    function _registeredNode(address nodeAddress) private view returns (Node storage node) {
        node = _nodes[nodeAddress];
        if (!node.registered) revert NodeCoordinatorNotRegistered(nodeAddress);
    }

    function _requireMinStake(uint256 stake) private view {
        uint256 minimum = _minStake;
        if (stake < minimum) revert NodeCoordinatorStakeBelowMinimum(stake, minimum);
    }

    function _checkCapacity(uint256 capacity) private pure {
        if (capacity == 0 || capacity > MAX_CAPACITY) revert NodeCoordinatorInvalidCapacity(capacity, MAX_CAPACITY);
    }

    function _addModel(address nodeAddress, bytes32 modelId) private {
        if (modelId == bytes32(0)) revert NodeCoordinatorZeroModelId();
        EnumerableSet.Bytes32Set storage models = _modelsOf[nodeAddress];
        if (!models.add(modelId)) revert NodeCoordinatorDuplicateModel(modelId);
        if (models.length() > MAX_MODELS_PER_NODE) {
            revert NodeCoordinatorTooManyModels(models.length(), MAX_MODELS_PER_NODE);
        }
        emit ModelServingStarted(nodeAddress, modelId);
    }

    function _joinEligibleSet(bytes32 modelId, address nodeAddress) private {
        uint256 rejoinable = rejoinableAt(nodeAddress);
        if (block.number < rejoinable) revert NodeCoordinatorRejoinTooSoon(nodeAddress, rejoinable);
        if (_eligible[modelId].add(nodeAddress)) _eligibleChangedAt[modelId] = block.number;
    }

    function _leaveEligibleSet(bytes32 modelId, address nodeAddress) private {
        if (_eligible[modelId].remove(nodeAddress)) {
            _eligibleChangedAt[modelId] = block.number;
            _leftAt[nodeAddress] = block.number;
        }
    }

    /// @dev Bounded by MAX_MODELS_PER_NODE set insertions.
    function _joinEligibleSets(address nodeAddress) private {
        EnumerableSet.Bytes32Set storage models = _modelsOf[nodeAddress];
        uint256 length = models.length();
        for (uint256 i = 0; i < length; ++i) {
            _joinEligibleSet(models.at(i), nodeAddress);
        }
    }

    /// @dev Bounded by MAX_MODELS_PER_NODE set removals. Open tasks are untouched.
    function _deactivate(address nodeAddress, DeactivationReason reason) private {
        _nodes[nodeAddress].active = false;
        EnumerableSet.Bytes32Set storage models = _modelsOf[nodeAddress];
        uint256 length = models.length();
        for (uint256 i = 0; i < length; ++i) {
            _leaveEligibleSet(models.at(i), nodeAddress);
        }
        emit NodeDeactivated(nodeAddress, reason);
    }

    // ---- assignment ----

    /// @dev One more node for the request, or address(0) if none was found.
    function _pick(
        EnumerableSet.AddressSet storage candidates,
        uint256 size,
        uint256 bond,
        address[] memory picked,
        uint256 pickedCount,
        uint256 entropy
    ) private view returns (address best) {
        uint256 draw = pickedCount * (DRAW_ROUNDS + 1); // each slot has its own draws
        if (size <= FULL_SCAN_LIMIT) {
            if (picked.length > 1) return _uniformSeat(candidates, size, bond, picked, pickedCount, entropy, draw);
            // The random start only breaks ties between equally loaded nodes.
            uint256 start = _random(entropy, draw) % size;
            return _bestInWindow(candidates, size, start, size, bond, picked, pickedCount);
        }
        uint256 random;
        for (uint256 round = 0; round < DRAW_ROUNDS; ++round) {
            random = _random(entropy, draw + round);
            // Two distinct indices from the two halves of one hash (size > FULL_SCAN_LIMIT >= 2).
            uint256 first = uint128(random) % size;
            uint256 second = (random >> 128) % (size - 1);
            if (second >= first) ++second;

            best = _candidateAt(candidates, first);
            uint256 bestScore = _score(best, bond, picked, pickedCount);
            // Nothing beats an idle node, and ties go to the first draw: skip the second read.
            if (bestScore == _IDLE_SCORE) return best;
            address other = _candidateAt(candidates, second);
            uint256 otherScore = _score(other, bond, picked, pickedCount);
            if (otherScore > bestScore) (best, bestScore) = (other, otherScore);
            if (bestScore != 0) return best;
        }
        random = _random(entropy, draw + DRAW_ROUNDS);
        uint256 window = size < FALLBACK_WINDOW ? size : FALLBACK_WINDOW; // visit no entry twice
        return _bestInWindow(candidates, size, random % size, window, bond, picked, pickedCount);
    }

    /// @dev A quorum seat in a set small enough to scan whole: one of its eligible entries, each
    /// with the same chance (a random start followed by the first eligible entry would favour
    /// the entries after ineligible or already picked ones), or address(0).
    function _uniformSeat(
        EnumerableSet.AddressSet storage candidates,
        uint256 size,
        uint256 bond,
        address[] memory picked,
        uint256 pickedCount,
        uint256 entropy,
        uint256 draw
    ) private view returns (address) {
        address[] memory eligible = new address[](size);
        uint256 count;
        for (uint256 i = 0; i < size; ++i) {
            address candidate = _candidateAt(candidates, i);
            if (_score(candidate, bond, picked, pickedCount) != 0) eligible[count++] = candidate;
        }
        return count == 0 ? address(0) : eligible[_random(entropy, draw) % count];
    }

    /// @dev The best scored eligible node among `length` (<= size) consecutive entries from
    /// `start` (< size, wrapping around), or address(0). Stops at the first idle node, which
    /// nothing beats.
    function _bestInWindow(
        EnumerableSet.AddressSet storage candidates,
        uint256 size,
        uint256 start,
        uint256 length,
        uint256 bond,
        address[] memory picked,
        uint256 pickedCount
    ) private view returns (address best) {
        uint256 bestScore;
        for (uint256 i = 0; i < length; ++i) {
            uint256 index = start + i;
            if (index >= size) index -= size;
            address candidate = _candidateAt(candidates, index);
            uint256 score = _score(candidate, bond, picked, pickedCount);
            if (score > bestScore) {
                (best, bestScore) = (candidate, score);
                if (score == _IDLE_SCORE) break;
            }
        }
    }

    /// @dev How well `nodeAddress` can take one more task: 0 if it cannot (inactive, at or over
    /// capacity, free stake below `bond`, lease not running, or already picked for this
    /// request), else its free
    /// share of capacity, `(capacity - activeTasks) / capacity`, in units of 2**-32 (an idle
    /// node scores _IDLE_SCORE). Two different shares never round to the same score: with
    /// capacities of at most 2**10 they differ by at least 2**-20.
    /// The seats of a quorum (`picked` has room for more than one node) are not scored by load:
    /// every eligible node scores as idle, so the first eligible draw takes the seat. A declared
    /// capacity costs nothing but a bond per task, and nodes that declare a large one would stay
    /// ahead of busy honest nodes and hold the majority of every concurrent quorum: a quorum's
    /// verdict is only as independent as its seats are random.
    function _score(address nodeAddress, uint256 bond, address[] memory picked, uint256 pickedCount)
        private
        view
        returns (uint256)
    {
        for (uint256 i = 0; i < pickedCount; ++i) {
            if (picked[i] == nodeAddress) return 0;
        }
        uint256 word = _loadWord(_nodes[nodeAddress]);
        uint256 capacity = uint16(word >> _CAPACITY_OFFSET);
        uint256 tasks = uint16(word >> _TASKS_OFFSET);
        bool active = (word >> _ACTIVE_OFFSET) & 1 == 1;
        uint256 free = uint96(word) - uint96(word >> _BONDED_OFFSET); // stake >= bonded
        if (!active || tasks >= capacity || free < bond) return 0;
        // Read last, and only for a node eligible otherwise: one more slot per scored node.
        if (block.number >= _leaseEnds[nodeAddress]) return 0;
        if (picked.length > 1) return _IDLE_SCORE;
        return ((capacity - tasks) << 32) / capacity;
    }

    /// @dev Entry `index` (< length) of an eligibility set, read without EnumerableSet's bounds
    /// check: `_pick` derives every index from the set's length, read once per assignment.
    function _candidateAt(EnumerableSet.AddressSet storage candidates, uint256 index)
        private
        view
        returns (address candidate)
    {
        bytes32[] storage values = candidates._inner._values;
        assembly ("memory-safe") {
            mstore(0x00, values.slot)
            candidate := sload(add(keccak256(0x00, 0x20), index))
        }
    }

    /// @dev keccak256(abi.encode(a, b)), hashed in the scratch space without allocating memory.
    function _random(uint256 a, uint256 b) private pure returns (uint256 random) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            random := keccak256(0x00, 0x40)
        }
    }

    /// @dev bonded += bond, activeTasks += 1 on a node `_score` found eligible, so neither field
    /// overflows into the next: bonded + bond <= stake < 2**96, activeTasks < capacity <= 2**10.
    function _lockBond(address nodeAddress, uint256 bond) private {
        Node storage node = _nodes[nodeAddress];
        _storeWord(node, _loadWord(node) + (bond << _BONDED_OFFSET) + (1 << _TASKS_OFFSET));
    }

    // ---- the packed node slot, as one word ----
    // assign and release read and write a node's slot as a single word: the legacy code
    // generator reads and writes packed struct members one by one, a few hundred gas each on
    // the hottest path of the marketplace. The offsets are Solidity's layout of `Node` (members
    // packed from the low-order bits in declaration order); the tests check them via nodeInfo.

    function _loadWord(Node storage node) private view returns (uint256 word) {
        assembly ("memory-safe") {
            word := sload(node.slot)
        }
    }

    function _storeWord(Node storage node, uint256 word) private {
        assembly ("memory-safe") {
            sstore(node.slot, word)
        }
    }

    /// @dev The bond of one of the node's open tasks: its average bond per open task, the last
    /// open task taking the rounding remainder, so the unlocks sum to exactly what was locked.
    function _openTaskBond(Node storage node, address nodeAddress) private view returns (uint96) {
        uint16 tasks = node.activeTasks;
        if (tasks == 0) revert NodeCoordinatorNoOpenTask(nodeAddress);
        return node.bonded / tasks;
    }

    function _payOutSlash(address nodeAddress, uint256 amount, address beneficiary) private {
        uint256 share;
        if (beneficiary != address(0) && beneficiary != address(this)) {
            share = (amount * _slashBeneficiaryShareBps) / BASIS_POINTS;
        }
        emit NodeSlashed(nodeAddress, amount, beneficiary, share);
        if (share != 0) _joy.safeTransfer(beneficiary, share);
        if (amount != share) _joy.safeTransfer(_treasury, amount - share);
    }

    // ---- governed parameters ----

    function _setMinStake(uint96 newMinStake) private {
        uint256 floor = _taskBond > MIN_MIN_STAKE ? _taskBond : MIN_MIN_STAKE;
        _checkBounds("minStake", newMinStake, floor, MAX_MIN_STAKE);
        emit MinStakeSet(_minStake, newMinStake);
        _minStake = newMinStake;
    }

    function _setTaskBond(uint96 newTaskBond) private {
        _checkBounds("taskBond", newTaskBond, MIN_TASK_BOND, _minStake);
        emit TaskBondSet(_taskBond, newTaskBond);
        _taskBond = newTaskBond;
    }

    function _setUnbondingDelay(uint64 newUnbondingDelay) private {
        _checkBounds("unbondingDelay", newUnbondingDelay, MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY);
        emit UnbondingDelaySet(_unbondingDelay, newUnbondingDelay);
        _unbondingDelay = newUnbondingDelay;
    }

    function _setMaxMissedDeadlines(uint8 newMaxMissedDeadlines) private {
        _checkBounds("maxMissedDeadlines", newMaxMissedDeadlines, MIN_MAX_MISSED_DEADLINES, MAX_MAX_MISSED_DEADLINES);
        emit MaxMissedDeadlinesSet(_maxMissedDeadlines, newMaxMissedDeadlines);
        _maxMissedDeadlines = newMaxMissedDeadlines;
    }

    function _setLeaseBlocks(uint32 newLeaseBlocks) private {
        _checkBounds("leaseBlocks", newLeaseBlocks, MIN_LEASE_BLOCKS, MAX_LEASE_BLOCKS);
        emit LeaseBlocksSet(_leaseBlocks, newLeaseBlocks);
        _leaseBlocks = newLeaseBlocks;
    }

    function _setSlashBeneficiaryShareBps(uint16 newShareBps) private {
        _checkBounds("slashBeneficiaryShareBps", newShareBps, 0, BASIS_POINTS);
        emit SlashBeneficiaryShareBpsSet(_slashBeneficiaryShareBps, newShareBps);
        _slashBeneficiaryShareBps = newShareBps;
    }

    function _setTreasury(address newTreasury) private {
        // Slashed JOY paid to this contract would be counted in no node's stake.
        if (newTreasury == address(0) || newTreasury == address(this)) {
            revert NodeCoordinatorInvalidAddress("treasury", newTreasury);
        }
        emit TreasurySet(_treasury, newTreasury);
        _treasury = newTreasury;
    }

    function _checkBounds(string memory name, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert NodeCoordinatorParameterOutOfBounds(name, value, min, max);
    }
}
