// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ModelGovernanceDAO's error and the floors of its voting settings
interface IModelGovernanceDAO {
    /// @notice A governance setting outside its hard bounds on this chain.
    /// @param setting which one: "votingDelay", "votingPeriod", "quorumNumerator" or "proposalThreshold"
    /// @param value the value refused
    /// @param min the lowest value accepted on this chain
    /// @param max the highest value accepted
    error ModelGovernanceDAOSettingOutOfBounds(string setting, uint256 value, uint256 min, uint256 max);

    /// @notice The shortest voting delay accepted on the current chain, in blocks:
    /// MIN_VOTING_DELAY_LOCAL on a local development chain, MIN_VOTING_DELAY_PRODUCTION elsewhere.
    /// @return the floor in blocks
    function minVotingDelay() external view returns (uint256);

    /// @notice The shortest voting period accepted on the current chain, in blocks:
    /// MIN_VOTING_PERIOD_LOCAL on a local development chain, MIN_VOTING_PERIOD_PRODUCTION elsewhere.
    /// @return the floor in blocks
    function minVotingPeriod() external view returns (uint256);
}
