// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IJoyTimelock} from "../interfaces/IJoyTimelock.sol";
import {JoyChains} from "./JoyChains.sol";

/// @title JoyTimelock, the only account that changes JoyNet
/// @notice OpenZeppelin's TimelockController with hard bounds on its delay. The DAO is its only
/// proposer and canceller, anyone may execute a ready operation, and after deployment nobody
/// but the timelock itself holds its admin role. The delay can only change through a proposal
/// that waits out the current delay, and never below {minDelayFloor}: a captured DAO cannot
/// turn the timelock into an instant-execution path.
/// @dev The floor depends on the chain (see {JoyChains}): one minute on local development chains
/// (chain ids 31337 and 1337), so that tests and demos run a proposal in seconds, and two days
/// on every other chain. Two days is the time between a proposal passing and its execution; it
/// gives holders, node operators and integrators who check the chain once a day at least one
/// full day to see a queued operation and act on it (withdraw, unstake, object publicly) before
/// it runs. It is also the minimum delay of Compound's Timelock, which many DAOs deploy as is.
contract JoyTimelock is IJoyTimelock, TimelockController {
    /// @notice Shortest delay accepted on a local development chain (chain id 31337 or 1337).
    uint256 public constant MIN_DELAY_FLOOR_LOCAL = 1 minutes;
    /// @notice Shortest delay accepted on every other chain.
    uint256 public constant MIN_DELAY_FLOOR_PRODUCTION = 2 days;
    /// @notice Longest delay the timelock accepts, so that governance cannot freeze itself.
    uint256 public constant MAX_DELAY_CEILING = 30 days;

    /// @param minDelay initial delay in seconds, within the bounds of this chain
    /// @param proposers accounts granted the proposer and canceller roles
    /// @param executors accounts granted the executor role (address(0) alone: anyone)
    /// @param admin optional admin for the initial wiring; deploy renounces it
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {
        _checkDelay(minDelay);
    }

    /// @notice Changes the delay; callable only by the timelock itself (a DAO proposal).
    /// @param newDelay the new delay in seconds, within the bounds of this chain
    function updateDelay(uint256 newDelay) public override {
        // Authorization first, so that an outsider always sees TimelockUnauthorizedCaller.
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        _checkDelay(newDelay);
        super.updateDelay(newDelay);
    }

    /// @inheritdoc IJoyTimelock
    function minDelayFloor() public view returns (uint256) {
        return JoyChains.isLocal() ? MIN_DELAY_FLOOR_LOCAL : MIN_DELAY_FLOOR_PRODUCTION;
    }

    function _checkDelay(uint256 delay) private view {
        uint256 floor = minDelayFloor();
        if (delay < floor || delay > MAX_DELAY_CEILING) {
            revert JoyTimelockDelayOutOfBounds(delay, floor, MAX_DELAY_CEILING);
        }
    }
}
