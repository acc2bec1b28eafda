// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IJoyToken} from "../interfaces/IJoyToken.sol";

/// @title JOY, the JoyNet token
/// @notice Pays for inferences, is staked by edge nodes and carries the votes of the DAO.
/// The whole supply is minted once, in the constructor, to the recipients the deploy
/// configuration names (the treasury share to the timelock). The contract has no owner and no
/// mint function: the supply can never grow after deployment.
contract JoyToken is IJoyToken, ERC20, ERC20Permit, ERC20Votes {
    /// @param name_ ERC-20 name (also the EIP-712 domain name used by permit)
    /// @param symbol_ ERC-20 symbol
    /// @param recipients who receives the genesis supply
    /// @param amounts how much each recipient receives (18 decimals); the total is the supply
    constructor(
        string memory name_,
        string memory symbol_,
        address[] memory recipients,
        uint256[] memory amounts
    ) ERC20(name_, symbol_) ERC20Permit(name_) {
        if (recipients.length != amounts.length) {
            revert JoyTokenAllocationLengthMismatch(recipients.length, amounts.length);
        }
        if (recipients.length == 0) revert JoyTokenEmptyAllocation();
        for (uint256 i = 0; i < recipients.length; ++i) {
            _allocate(recipients[i], amounts[i]);
        }
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _allocate(address recipient, uint256 amount) private {
        if (amount == 0) revert JoyTokenZeroAllocation(recipient);
        _mint(recipient, amount);
        emit GenesisAllocated(recipient, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
