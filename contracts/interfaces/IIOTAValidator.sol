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
