// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IJoyGoverned} from "../interfaces/IJoyGoverned.sol";

/// @title JoyGoverned, the owner pattern of every governed JoyNet contract
/// @notice OpenZeppelin Ownable whose owner is the DAO's timelock once deployment is wired:
/// `scripts/deploy.py` deploys with the deployer as owner, wires the contracts together, then
/// transfers ownership to the timelock, after which only executed proposals change anything.
/// Ownership can never be renounced: a governed contract without governance would be frozen.
abstract contract JoyGoverned is IJoyGoverned, Ownable {
    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Always reverts: governance cannot be removed, only handed to a new governor.
    function renounceOwnership() public view override onlyOwner {
        revert JoyGovernedRenounceDisabled();
    }
}
