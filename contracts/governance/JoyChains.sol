// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title JoyChains, which chains count as local development chains
/// @notice The governance contracts accept short delays (minutes, a few blocks) only on the chain
/// ids of local development chains, where tests and demos must run a proposal in seconds. Every
/// other chain id is treated as a production network and gets floors a community can react
/// within. The check reads `block.chainid` at every use (nothing is cached), so a contract
/// replayed on a fork with another chain id is judged by that chain id.
library JoyChains {
    /// @notice Chain id of anvil and hardhat's development chains.
    uint256 internal constant ANVIL_CHAIN_ID = 31337;
    /// @notice Chain id of ganache's and `geth --dev`'s development chains.
    uint256 internal constant DEV_CHAIN_ID = 1337;

    /// @notice Whether the current chain is a local development chain.
    function isLocal() internal view returns (bool) {
        return block.chainid == ANVIL_CHAIN_ID || block.chainid == DEV_CHAIN_ID;
    }
}
