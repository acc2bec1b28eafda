// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title NodeCoordinator's errors, events and parameter views, and the part the marketplace calls
interface INodeCoordinator {
    /// @notice Why a node left assignment.
    enum DeactivationReason {
        Voluntary, // the operator called {deactivate}
        MissedDeadlines, // `maxMissedDeadlines` missed deadlines in a row
        StakeBelowMinimum // an unstake or a slash left less than `minStake` (or minStake rose)
    }

    // ---- errors ----

    /// @notice A governed parameter (or a constructor argument) outside its hard bounds.
    error NodeCoordinatorParameterOutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    /// @notice An address that must be set is zero (or, for the treasury, this contract).
    error NodeCoordinatorInvalidAddress(string name, address value);
    /// @notice Only the marketplace may assign, release and slash.
    error NodeCoordinatorCallerNotMarketplace(address caller);
    /// @notice The caller already registered a node.
    error NodeCoordinatorAlreadyRegistered(address node);
    /// @notice The address has no registered node.
    error NodeCoordinatorNotRegistered(address node);
    /// @notice A stake below {minStake} where the minimum is required.
    error NodeCoordinatorStakeBelowMinimum(uint256 stake, uint256 minStake);
    /// @notice A capacity outside [1, MAX_CAPACITY].
    error NodeCoordinatorInvalidCapacity(uint256 capacity, uint256 max);
    /// @notice A registration without models.
    error NodeCoordinatorNoModels();
    /// @notice More than MAX_MODELS_PER_NODE models for one node.
    error NodeCoordinatorTooManyModels(uint256 count, uint256 max);
    /// @notice The zero model id, which names no model.
    error NodeCoordinatorZeroModelId();
    /// @notice The node already serves this model (or the list names it twice).
    error NodeCoordinatorDuplicateModel(bytes32 modelId);
    /// @notice The node does not serve this model.
    error NodeCoordinatorModelNotServed(bytes32 modelId);
    /// @notice A zero amount of JOY to stake or unstake.
    error NodeCoordinatorZeroAmount();
    /// @notice The amount exceeds the stake that is not locked for open tasks.
    error NodeCoordinatorStakeBonded(uint256 amount, uint256 freeStake);
    /// @notice The unbonding delay has not passed yet.
    error NodeCoordinatorUnbondingNotReady(uint256 readyAt, uint256 now_);
    /// @notice Nothing is unbonding.
    error NodeCoordinatorNothingToWithdraw();
    /// @notice The node is not active (for {deactivate} and {evictUnderstaked}).
    error NodeCoordinatorNotActive(address node);
    /// @notice The node is already active (for {reactivate}).
    error NodeCoordinatorAlreadyActive(address node);
    /// @notice {evictUnderstaked} on a node whose stake meets the minimum.
    error NodeCoordinatorStakeSufficient(address node, uint256 stake, uint256 minStake);
    /// @notice An {assign} count outside [1, MAX_ASSIGNMENT].
    error NodeCoordinatorInvalidAssignmentCount(uint256 count, uint256 max);
    /// @notice The model's eligibility set changed in this block: assign from the next one.
    error NodeCoordinatorEligibilityJustChanged(bytes32 modelId);
    /// @notice Fewer eligible nodes than wanted were found; nothing was assigned.
    error NodeCoordinatorNoEligibleNode(bytes32 modelId, uint256 wanted, uint256 found);
    /// @notice Release or slash of a node without open tasks.
    error NodeCoordinatorNoOpenTask(address node);
    /// @notice The node left an eligibility set less than REJOIN_DELAY blocks ago.
    error NodeCoordinatorRejoinTooSoon(address node, uint256 rejoinableAt);
    /// @notice {endLease} by a node whose lease does not run (it ended at block `leaseEnd`).
    error NodeCoordinatorLeaseNotRunning(address node, uint256 leaseEnd);

    // ---- events ----

    // Governed parameters changed (the constructor emits them too, from zero).
    /// @notice {minStake} changed.
    event MinStakeSet(uint256 oldMinStake, uint256 newMinStake);
    /// @notice {taskBond} changed; open tasks keep the bonds they locked.
    event TaskBondSet(uint256 oldTaskBond, uint256 newTaskBond);
    /// @notice {unbondingDelay} changed.
    event UnbondingDelaySet(uint256 oldUnbondingDelay, uint256 newUnbondingDelay);
    /// @notice {maxMissedDeadlines} changed.
    event MaxMissedDeadlinesSet(uint256 oldMaxMissedDeadlines, uint256 newMaxMissedDeadlines);
    /// @notice {leaseBlocks} changed; running leases keep their end.
    event LeaseBlocksSet(uint256 oldLeaseBlocks, uint256 newLeaseBlocks);
    /// @notice {slashBeneficiaryShareBps} changed.
    event SlashBeneficiaryShareBpsSet(uint256 oldShareBps, uint256 newShareBps);
    /// @notice {treasury} changed.
    event TreasurySet(address oldTreasury, address newTreasury);
    /// @notice {marketplace} changed.
    event MarketplaceSet(address oldMarketplace, address newMarketplace);

    /// @notice A node registered with `stake`, `capacity` and `models`, and became active.
    event NodeRegistered(address indexed node, uint256 stake, uint256 capacity, bytes32[] models);
    /// @notice The node's stake grew by `amount` to `stake`.
    event StakeAdded(address indexed node, uint256 amount, uint256 stake);
    /// @notice `amount` left the node's stake; `unbonding` JOY (the new total) is payable from `readyAt`.
    event UnstakeRequested(address indexed node, uint256 amount, uint256 unbonding, uint256 readyAt);
    /// @notice The unbonded `amount` was paid to the node.
    event UnstakeWithdrawn(address indexed node, uint256 amount);
    /// @notice The node's capacity changed.
    event NodeCapacitySet(address indexed node, uint256 oldCapacity, uint256 newCapacity);
    /// @notice The node serves `modelId` (at registration or later).
    event ModelServingStarted(address indexed node, bytes32 indexed modelId);
    /// @notice The node no longer serves `modelId`.
    event ModelServingStopped(address indexed node, bytes32 indexed modelId);
    /// @notice The node left assignment (its open tasks continue).
    event NodeDeactivated(address indexed node, DeactivationReason reason);
    /// @notice The node is active again; its missed-deadline count was reset.
    event NodeReactivated(address indexed node);
    /// @notice The node's lease runs until block `leaseEnd` (excluded): registered, reactivated
    /// or renewed.
    event LeaseRenewed(address indexed node, uint256 leaseEnd);
    /// @notice The node ended its lease: it is not drawn until it renews it.
    event LeaseEnded(address indexed node);
    // Assignments and releases emit nothing here: the marketplace's NodesAssigned,
    // InferenceSettled and InferenceRefunded name the nodes and the outcome of every task, and a
    // second log per node would cost every request about 3,000 gas.
    /// @notice `amount` was taken from the node's stake: `beneficiaryShare` to `beneficiary`,
    /// the rest to the treasury.
    event NodeSlashed(address indexed node, uint256 amount, address indexed beneficiary, uint256 beneficiaryShare);
    /// @notice The node missed a deadline; `missedDeadlines` in a row now.
    event DeadlineMissed(address indexed node, uint256 missedDeadlines);

    // ---- the marketplace's calls ----

    /// @notice Picks `count` distinct eligible nodes serving `modelId` in O(1) gas in the number
    /// of registered nodes (a single node by load; a quorum's seats at random among the nodes
    /// with room for a task); locks one task bond and one unit of capacity on each.
    /// Reverts with NodeCoordinatorNoEligibleNode when not enough eligible nodes are found.
    /// @param seed the draw's only randomness: the marketplace derives it from the hash of the
    /// request's block, which nobody knew when the request was made
    function assign(bytes32 modelId, uint256 count, uint256 seed) external returns (address[] memory nodes);

    /// @notice The nodes {assign} would pick now for the same arguments, without locking
    /// anything: a node tells whether a request is its to serve before assigning it.
    function draw(bytes32 modelId, uint256 count, uint256 seed) external view returns (address[] memory nodes);

    /// @notice The task ended well (or not by the node's fault): unlock its bond and capacity.
    function release(address node) external;

    /// @notice The node failed the task (timeout, dissent, invalid result): its task bond is taken
    /// from its stake, `slashBeneficiaryShareBps` of it paid to `beneficiary`, the rest to the
    /// treasury; its capacity unit is freed; a timeout also counts a missed deadline.
    /// @return slashed the bond amount taken
    function slash(address node, address beneficiary, bool missedDeadline) external returns (uint256 slashed);

    /// @notice The last block in which the eligibility set of `modelId` changed (0: never).
    function eligibleChangedAt(bytes32 modelId) external view returns (uint256);

    /// @notice JOY locked from a node's stake for each open task.
    function taskBond() external view returns (uint256);

    // ---- parameter views ----

    /// @notice The JOY token staked by nodes.
    function joy() external view returns (IERC20);

    /// @notice Least stake of an active node.
    function minStake() external view returns (uint256);

    /// @notice Seconds between an unstake request and its withdrawal.
    function unbondingDelay() external view returns (uint256);

    /// @notice Missed deadlines in a row that deactivate a node.
    function maxMissedDeadlines() external view returns (uint256);

    /// @notice Blocks a node's lease runs from its start or renewal: a node is drawn only while
    /// its lease runs.
    function leaseBlocks() external view returns (uint256);

    /// @notice Share of a slashed bond paid to the beneficiary, in basis points.
    function slashBeneficiaryShareBps() external view returns (uint256);

    /// @notice Receives the rest of every slashed bond.
    function treasury() external view returns (address);

    /// @notice The only caller of {assign} (zero until wired); it and the marketplaces it
    /// replaced call {release} and {slash}.
    function marketplace() external view returns (address);

    /// @notice Whether a node serves `modelId` (active or not).
    function servesModel(address nodeAddress, bytes32 modelId) external view returns (bool);
}
