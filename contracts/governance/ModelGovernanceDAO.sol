// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorStorage} from "@openzeppelin/contracts/governance/extensions/GovernorStorage.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {BASIS_POINTS} from "../libraries/BasisPoints.sol";
import {IModelGovernanceDAO} from "../interfaces/IModelGovernanceDAO.sol";
import {JoyChains} from "./JoyChains.sol";

/// @title ModelGovernanceDAO, JoyNet's governor
/// @notice JOY holders propose and vote on every protocol parameter; a passed proposal is queued
/// in the {JoyTimelock} and executed from it after the delay. Proposal storage lets anyone queue
/// and execute by proposal id. Every setting has hard bounds, so no vote can make governance
/// instant, unreachable or frozen.
/// @dev Clock: the token's block-number clock (ERC-6372), so delays and periods are in blocks.
/// The floors of the voting delay and period depend on the chain (see {JoyChains}). On local
/// development chains (chain ids 31337 and 1337) they stay short, so that tests and demos run a
/// proposal in seconds: no voting delay, a 10-block vote. On every other chain they are counted
/// in days of 2-second blocks (Polygon Supernet's block time; on a chain with faster blocks the
/// same floors last less wall time, and its deploy configuration must set longer values):
/// - voting delay at least 21,600 blocks (12 hours): a proposal is public for half a day before
///   the snapshot of votes is taken, so holders can delegate or move tokens in response;
/// - voting period at least 129,600 blocks (3 days): a holder who checks the chain once a day, in
///   any time zone, sees the vote open at least twice before it closes.
/// With the timelock's floor (two days outside local chains) a proposal needs at least five and
/// a half days from its creation to its execution.
contract ModelGovernanceDAO is
    IModelGovernanceDAO,
    Governor,
    GovernorVotes,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorStorage,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice Shortest voting delay on a local development chain (chain id 31337 or 1337), in blocks.
    uint256 public constant MIN_VOTING_DELAY_LOCAL = 0;
    /// @notice Shortest voting delay on every other chain: 12 hours of 2-second blocks.
    uint256 public constant MIN_VOTING_DELAY_PRODUCTION = 21_600;
    /// @notice Longest voting delay: about 30 days of 2-second blocks.
    uint256 public constant MAX_VOTING_DELAY = 1_296_000;
    /// @notice Shortest voting period on a local development chain, in blocks.
    uint256 public constant MIN_VOTING_PERIOD_LOCAL = 10;
    /// @notice Shortest voting period on every other chain: 3 days of 2-second blocks.
    uint256 public constant MIN_VOTING_PERIOD_PRODUCTION = 129_600;
    /// @notice Longest voting period: about 30 days of 2-second blocks.
    uint256 public constant MAX_VOTING_PERIOD = 1_296_000;
    /// @notice Quorum bounds, in percent of the votable supply.
    uint256 public constant MIN_QUORUM_PERCENT = 1;
    uint256 public constant MAX_QUORUM_PERCENT = 50;
    /// @notice Highest proposal threshold, in basis points of the token supply.
    uint256 public constant MAX_PROPOSAL_THRESHOLD_BPS = 100;

    /// @param token the JOY token (its votes and clock)
    /// @param timelock the timelock that executes passed proposals and holds the treasury
    /// @param initialVotingDelay blocks between proposal and start of voting, at least {minVotingDelay}
    /// @param initialVotingPeriod blocks the vote stays open, at least {minVotingPeriod}
    /// @param initialProposalThreshold votes needed to propose (18 decimals)
    /// @param quorumPercent share of the votable supply that must vote for/abstain
    constructor(
        IVotes token,
        TimelockController timelock,
        uint48 initialVotingDelay,
        uint32 initialVotingPeriod,
        uint256 initialProposalThreshold,
        uint256 quorumPercent
    )
        Governor("ModelGovernanceDAO")
        GovernorSettings(initialVotingDelay, initialVotingPeriod, initialProposalThreshold)
        GovernorVotes(token)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(timelock)
    {}

    // ---- bounds on every governable setting ----

    /// @inheritdoc IModelGovernanceDAO
    function minVotingDelay() public view returns (uint256) {
        return JoyChains.isLocal() ? MIN_VOTING_DELAY_LOCAL : MIN_VOTING_DELAY_PRODUCTION;
    }

    /// @inheritdoc IModelGovernanceDAO
    function minVotingPeriod() public view returns (uint256) {
        return JoyChains.isLocal() ? MIN_VOTING_PERIOD_LOCAL : MIN_VOTING_PERIOD_PRODUCTION;
    }

    function _setVotingDelay(uint48 newVotingDelay) internal override {
        _checkBounds("votingDelay", newVotingDelay, minVotingDelay(), MAX_VOTING_DELAY);
        super._setVotingDelay(newVotingDelay);
    }

    function _setVotingPeriod(uint32 newVotingPeriod) internal override {
        _checkBounds("votingPeriod", newVotingPeriod, minVotingPeriod(), MAX_VOTING_PERIOD);
        super._setVotingPeriod(newVotingPeriod);
    }

    function _setProposalThreshold(uint256 newProposalThreshold) internal override {
        uint256 maxThreshold = (_tokenSupply() * MAX_PROPOSAL_THRESHOLD_BPS) / BASIS_POINTS;
        _checkBounds("proposalThreshold", newProposalThreshold, 0, maxThreshold);
        super._setProposalThreshold(newProposalThreshold);
    }

    function _updateQuorumNumerator(uint256 newQuorumNumerator) internal override {
        _checkBounds("quorumNumerator", newQuorumNumerator, MIN_QUORUM_PERCENT, MAX_QUORUM_PERCENT);
        super._updateQuorumNumerator(newQuorumNumerator);
    }

    function _checkBounds(string memory setting, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert ModelGovernanceDAOSettingOutOfBounds(setting, value, min, max);
    }

    function _tokenSupply() private view returns (uint256) {
        // GovernorVotes comes before GovernorSettings in the inheritance list so that its
        // constructor has set token() when GovernorSettings' constructor checks the threshold.
        return IERC20(address(token())).totalSupply();
    }

    // ---- overrides required by Solidity for the combined extensions ----

    /// @inheritdoc Governor
    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    /// @inheritdoc Governor
    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    /// @inheritdoc Governor
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /// @inheritdoc Governor
    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        return super.quorum(timepoint);
    }

    /// @inheritdoc Governor
    function state(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (ProposalState)
    {
        return super.state(proposalId);
    }

    /// @inheritdoc Governor
    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function _propose(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description,
        address proposer
    ) internal override(Governor, GovernorStorage) returns (uint256) {
        return super._propose(targets, values, calldatas, description, proposer);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
