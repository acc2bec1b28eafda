// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title How the marketplace asks whether a result is valid under the model's policy
/// @notice The judge keeps no state of its own about requests: the marketplace holds the
/// commitments and reveals of every open request, so a request closes the same way whichever
/// judge the DAO points the marketplace at, and a closed request leaves nothing behind.
interface IProofOfInference {
    /// @notice The proof does not verify for this model, input, output, request and node.
    error ProofOfInferenceInvalidProof(uint256 requestId, address node);
    /// @notice A quorum of zero, or more outputs than the quorum.
    error ProofOfInferenceInvalidTally(uint256 quorum, uint256 outputs);

    /// @notice What the results of a quorum request amount to.
    enum Verdict {
        Pending, // not used by the judge any more; kept so that the values stay stable
        Accepted, // a strict majority of the assigned nodes revealed the same output: settle
        Rejected // no output has a strict majority: nobody can be blamed for dissent
    }

    /// @notice What a ZK result is checked against.
    struct ResultContext {
        uint256 requestId;
        address node; // the submitting node (bound into ZK proofs against theft and replay)
        bytes32 weightsCommitment; // the model's registered weights commitment
        bytes32 inputCommitment; // the request's salted input commitment
        bytes32 circuitId; // the model's circuit (nonzero)
    }

    /// @notice Judges the outputs the k assigned nodes of a quorum request revealed.
    /// @param quorum k, the number of assigned nodes (the majority is of k, not of the reveals)
    /// @param outputs the outputs revealed, one per node that revealed (at most k; any order;
    /// any value, zero included)
    /// @return verdict Accepted when one output was revealed by more than k / 2 nodes
    /// @return accepted that output (zero otherwise)
    function tally(uint256 quorum, bytes32[] calldata outputs)
        external
        pure
        returns (Verdict verdict, bytes32 accepted);

    /// @notice Reverts unless `proof` is valid for `ctx` and `outputCommitment` under the ZK
    /// policy (`ctx.circuitId` nonzero). Records nothing.
    function checkProof(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof) external view;
}
