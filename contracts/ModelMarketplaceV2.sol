// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {ModelMarketplace} from "./ModelMarketplace.sol";

/// @title ModelMarketplaceV2, the deployed marketplace
/// @notice {ModelMarketplace} plus what the feeless mode and the DAO need: a governance hand-over
/// hook and views over feeless (IOTA channel) models, which are served over their channel and
/// settle usage through the bridge, never through paid requests.
contract ModelMarketplaceV2 is ModelMarketplace {
    /// @notice Governance moved to a new governor.
    event GovernanceUpdated(address indexed previousGovernor, address indexed newGovernor);

    /// @dev Parameters as in {ModelMarketplace}'s constructor.
    constructor(
        IERC20 joy_,
        address initialOwner,
        address treasury_,
        uint16[3] memory shares,
        uint64 maxDeadlineWindow_,
        uint32[2] memory windows
    ) ModelMarketplace(joy_, initialOwner, treasury_, shares, maxDeadlineWindow_, windows) {}

    /// @notice Hands governance of the marketplace to `newGovernor` (a new timelock after a DAO
    /// migration). Callable only by the current governance.
    function updateGovernance(address newGovernor) external onlyOwner {
        if (newGovernor == address(0)) revert ModelMarketplaceZeroAddress();
        emit GovernanceUpdated(owner(), newGovernor);
        _transferOwnership(newGovernor);
    }

    /// @notice True for a registered feeless model: price zero, served over its IOTA stream.
    function isFeeless(bytes32 modelId) external view returns (bool) {
        Model storage model = _models[modelId];
        return model.owner != address(0) && model.price == 0 && model.iotaStreamId != bytes32(0);
    }

    /// @notice The IOTA stream of a model (zero if it has none).
    function iotaStreamOf(bytes32 modelId) external view returns (bytes32) {
        return _models[modelId].iotaStreamId;
    }

    /// @notice The version of the marketplace's interface.
    function version() external pure returns (uint256) {
        return 2;
    }
}
