// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The part of ProofOfUse the marketplace and the IOTA bridge call
interface IProofOfUse {
    /// @notice One settled paid inference of `modelId` (owned by `modelOwner`) served by `nodes`,
    /// weighted by `value`: the part of the fee that no party of the settlement gets back (the
    /// protocol's share), so that rewards follow fees and self-dealing never earns more than it
    /// cost. Callable only by the marketplace (or one it replaced, for requests it still closes).
    function recordUsage(bytes32 modelId, address modelOwner, address[] calldata nodes, uint256 value) external;

    /// @notice `count` feeless inferences of `modelId` served by `node`, proven by a bridged
    /// checkpoint. Callable only by the registered bridge (IOTAValidator). Counted, but carries
    /// no reward weight: nobody paid for it.
    function recordBridgedUsage(bytes32 modelId, address modelOwner, address node, uint256 count) external;
}
