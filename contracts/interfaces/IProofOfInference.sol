// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title How the marketplace asks whether a result is valid under the model's policy
interface IProofOfInference {
    /// @notice Where a request stands after a submission.
    enum Verdict {
        Pending, // more submissions are needed (quorum not complete yet)
        Accepted, // the result is valid: settle
        Rejected // the submissions cannot be accepted: refund the requester
    }

    /// @notice What a result is judged against.
    struct ResultContext {
        uint256 requestId;
        address node; // the submitting node (bound into ZK proofs against theft and replay)
        bytes32 weightsCommitment; // the model's registered weights commitment
        bytes32 inputCommitment; // the request's salted input commitment
        uint8 quorum; // k distinct assigned nodes must agree (1 = a single node)
        bytes32 circuitId; // nonzero: a ZK proof through ZKVerifier is required
    }

    /// @notice Records `ctx.node`'s result and judges it under the model's policy.
    /// Callable only by the marketplace. `proof` is empty for quorum-only models.
    /// @return verdict what the marketplace must do next
    /// @return accepted the accepted output commitment (when verdict is Accepted)
    /// @return dissenters assigned nodes whose output disagreed with the accepted one
    function judge(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof)
        external
        returns (Verdict verdict, bytes32 accepted, address[] memory dissenters);

    /// @notice Reverts unless `proof` is valid for `ctx` and `outputCommitment` under the ZK
    /// policy (`ctx.circuitId` nonzero). Records nothing: for a single-node ZK request the
    /// marketplace only needs the check, and a view call needs no caller check.
    function checkProof(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof) external view;
}
