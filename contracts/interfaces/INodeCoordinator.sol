// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The part of NodeCoordinator the marketplace calls
interface INodeCoordinator {
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
}
