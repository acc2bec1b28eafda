// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title JoyTimelock's error and its delay floor
interface IJoyTimelock {
    /// @notice A delay outside [{minDelayFloor}, MAX_DELAY_CEILING] on this chain.
    /// @param delay the delay refused, in seconds
    /// @param floor the floor on this chain ({minDelayFloor})
    /// @param ceiling MAX_DELAY_CEILING
    error JoyTimelockDelayOutOfBounds(uint256 delay, uint256 floor, uint256 ceiling);

    /// @notice The shortest delay this timelock accepts on the current chain, in seconds:
    /// MIN_DELAY_FLOOR_LOCAL on a local development chain, MIN_DELAY_FLOOR_PRODUCTION elsewhere.
    /// @return the floor in seconds
    function minDelayFloor() external view returns (uint256);
}
