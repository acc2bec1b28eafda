// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The part of ProofOfUse the marketplace and the IOTA bridge call
interface IProofOfUse {
    /// @notice One settled paid inference of `modelId` (owned by `modelOwner`) served by `nodes`.
    /// Callable only by the marketplace.
    function recordUsage(bytes32 modelId, address modelOwner, address[] calldata nodes) external;

    /// @notice `count` feeless inferences of `modelId` served by `node`, proven by a bridged
    /// checkpoint. Callable only by the registered bridge (IOTAValidator, issue 5).
    function recordBridgedUsage(bytes32 modelId, address modelOwner, address node, uint256 count) external;
}
