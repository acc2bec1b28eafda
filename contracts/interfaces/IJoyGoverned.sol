// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The error of JoyGoverned, the owner pattern of every governed JoyNet contract
interface IJoyGoverned {
    /// @notice Renouncing ownership is disabled: a governed contract without governance would
    /// be frozen.
    error JoyGovernedRenounceDisabled();
}
