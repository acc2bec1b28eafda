// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title JoyTimelock, the only account that changes JoyNet
/// @notice OpenZeppelin's TimelockController with hard bounds on its delay. The DAO is its only
/// proposer and canceller, anyone may execute a ready operation, and after deployment nobody
/// but the timelock itself holds its admin role. The delay can only change through a proposal
/// that waits out the current delay, and never below {MIN_DELAY_FLOOR}: a captured DAO cannot
/// turn the timelock into an instant-execution path.
contract JoyTimelock is TimelockController {
    /// @notice Shortest delay the timelock accepts (local chains use it; production uses days).
    uint256 public constant MIN_DELAY_FLOOR = 1 minutes;
    /// @notice Longest delay the timelock accepts, so that governance cannot freeze itself.
    uint256 public constant MAX_DELAY_CEILING = 30 days;

    /// @notice A delay outside [MIN_DELAY_FLOOR, MAX_DELAY_CEILING].
    error JoyTimelockDelayOutOfBounds(uint256 delay, uint256 floor, uint256 ceiling);

    /// @param minDelay initial delay in seconds, within the bounds
    /// @param proposers accounts granted the proposer and canceller roles
    /// @param executors accounts granted the executor role (address(0) alone: anyone)
    /// @param admin optional admin for the initial wiring; deploy renounces it
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {
        _checkDelay(minDelay);
    }

    /// @notice Changes the delay; callable only by the timelock itself (a DAO proposal).
    /// @param newDelay the new delay in seconds, within the bounds
    function updateDelay(uint256 newDelay) public override {
        // Authorization first, so that an outsider always sees TimelockUnauthorizedCaller.
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        _checkDelay(newDelay);
        super.updateDelay(newDelay);
    }

    function _checkDelay(uint256 delay) private pure {
        if (delay < MIN_DELAY_FLOOR || delay > MAX_DELAY_CEILING) {
            revert JoyTimelockDelayOutOfBounds(delay, MIN_DELAY_FLOOR, MAX_DELAY_CEILING);
        }
    }
}
