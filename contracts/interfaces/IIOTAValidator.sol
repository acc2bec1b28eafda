// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IModelMarketplace} from "./IModelMarketplace.sol";
import {IProofOfUse} from "./IProofOfUse.sol";

/// @title The bridge's errors, events and parameter views (IOTAValidator)
interface IIOTAValidator {
    /// @notice The committee is empty, too large, has a zero or repeated member, or the
    /// threshold is not a strict majority of it.
    error IOTAValidatorInvalidCommittee(uint256 size, uint256 threshold);
    /// @notice Only the model's owner asks for its stream's link.
    error IOTAValidatorNotModelOwner(bytes32 modelId, address caller);
    /// @notice The model is not feeless or names another stream.
    error IOTAValidatorNotFeelessStream(bytes32 modelId, bytes32 streamId);
    /// @notice The stream is already linked.
    error IOTAValidatorStreamLinked(bytes32 streamId);
    /// @notice No model is linked to the stream.
    error IOTAValidatorUnknownStream(bytes32 streamId);
    /// @notice The checkpoint does not continue from the stream's last head.
    error IOTAValidatorBrokenLink(bytes32 streamId, bytes32 expected, bytes32 given);
    /// @notice The checkpoint's sequence is not above the last accepted one.
    error IOTAValidatorStaleSequence(bytes32 streamId, uint64 last, uint64 given);
    /// @notice A signer is not on the committee.
    error IOTAValidatorNotCommitteeMember(address signer);
    /// @notice Signatures must come from distinct members, sorted by address.
    error IOTAValidatorDuplicateOrUnsortedSigner(address signer);
    /// @notice Fewer valid signatures than the threshold.
    error IOTAValidatorBelowThreshold(uint256 signatures, uint256 threshold);
    /// @notice A usage entry with a zero node or count.
    error IOTAValidatorInvalidUsage(address node, uint64 count);

    /// @notice The node does not serve the model in the NodeCoordinator.
    error IOTAValidatorNodeNotServing(address node, bytes32 modelId);
    /// @notice Only the node unbinds its key while it still serves the model.
    error IOTAValidatorNodeStillServing(address node, bytes32 modelId);
    /// @notice The node has no channel key bound for the model: no checkpoint credits it.
    error IOTAValidatorNodeNotBound(address node, bytes32 modelId);
    /// @notice A channel key of zero binds nothing.
    error IOTAValidatorZeroChannelKey(bytes32 modelId);
    /// @notice Nothing to fund, withdraw or pay.
    error IOTAValidatorZeroAmount();
    /// @notice The announced budget withdrawal is not due before `withdrawableAt`.
    error IOTAValidatorWithdrawalNotDue(bytes32 modelId, uint256 withdrawableAt);
    /// @notice A budget delay outside its bounds.
    error IOTAValidatorDelayOutOfBounds(uint256 delay, uint256 min, uint256 max);

    /// @notice `funder` added `amount` JOY to the budget of the feeless model `modelId`.
    event BudgetFunded(bytes32 indexed modelId, address indexed funder, uint256 amount);
    /// @notice The owner set the rate per inference, in force from `effectiveFrom`.
    event FeelessRateSet(bytes32 indexed modelId, uint256 rate, uint256 effectiveFrom);
    /// @notice The owner announced a withdrawal of `amount` from the budget, due at `withdrawableAt`.
    event BudgetWithdrawalRequested(bytes32 indexed modelId, uint256 amount, uint256 withdrawableAt);
    /// @notice The owner took `amount` back from the budget.
    event BudgetWithdrawn(bytes32 indexed modelId, address indexed modelOwner, uint256 amount);
    /// @notice A checkpoint paid `spent` from the budget, `protocolPart` of it kept for the treasury.
    event BudgetSpent(bytes32 indexed modelId, uint256 spent, uint256 protocolPart);
    /// @notice `node` bound its channel key for the feeless model `modelId`.
    event ChannelKeyBound(bytes32 indexed modelId, address indexed node, bytes32 channelKey);
    /// @notice `node`'s channel key for `modelId` was unbound.
    event ChannelKeyUnbound(bytes32 indexed modelId, address indexed node, bytes32 channelKey);
    /// @notice A node withdrew what budgets paid it.
    event EarningsWithdrawn(address indexed node, uint256 amount);
    /// @notice The protocol's part of budget payments went to the treasury.
    event ProtocolEarningsWithdrawn(address indexed treasury, uint256 amount);
    /// @notice The DAO set the delay of lower rates and budget withdrawals.
    event BudgetDelaySet(uint256 oldDelay, uint256 newDelay);
    /// @notice The DAO set the committee.
    event CommitteeSet(address[] members, uint256 threshold);
    /// @notice A model owner asked the bridgers to link the model's stream.
    event StreamLinkRequested(bytes32 indexed streamId, bytes32 indexed modelId, address indexed modelOwner);
    /// @notice The model's stream was linked, with the committee's attestation of the stream
    /// author's consent.
    event StreamLinked(bytes32 indexed streamId, bytes32 indexed modelId, address indexed modelOwner);
    /// @notice A checkpoint was accepted and its usage credited.
    /// @param inferences the feeless inferences the checkpoint credited, over all its nodes
    event CheckpointAccepted(
        bytes32 indexed streamId, uint64 indexed sequence, bytes32 headHash, bytes32 messagesRoot, uint256 inferences
    );

    /// @notice The marketplace whose feeless models streams are linked to.
    function marketplace() external view returns (IModelMarketplace);

    /// @notice The usage ledger credited by checkpoints (its `bridge` must be this contract).
    function proofOfUse() external view returns (IProofOfUse);

    /// @notice Signatures of distinct committee members needed for a checkpoint (a strict
    /// majority of the committee).
    function threshold() external view returns (uint256);
}
