// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title JoyToken's errors and its genesis event
interface IJoyToken {
    /// @notice The allocation arrays differ in length.
    error JoyTokenAllocationLengthMismatch(uint256 recipients, uint256 amounts);
    /// @notice An allocation has no recipients or allocates nothing.
    error JoyTokenEmptyAllocation();
    /// @notice One allocation entry is zero.
    error JoyTokenZeroAllocation(address recipient);

    /// @notice Emitted once per recipient when the supply is minted at deployment.
    event GenesisAllocated(address indexed recipient, uint256 amount);
}
