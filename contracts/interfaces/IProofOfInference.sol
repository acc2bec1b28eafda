// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IModelMarketplace} from "./IModelMarketplace.sol";

/// @title How the marketplace asks whether a result is valid under the model's policy
/// @notice The judge keeps no state of its own about requests: the marketplace holds the
/// commitments and reveals of every open request, so a request closes the same way whichever
/// judge the DAO points the marketplace at, and a closed request leaves nothing behind.
interface IProofOfInference {
    /// @notice The proof does not verify for this model, input, output, request and node.
    error ProofOfInferenceInvalidProof(uint256 requestId, address node);
    /// @notice The batch's single pairing check failed: at least one of its `count` proofs of
    /// `circuitId` is invalid for its model, input, output, request and node.
    error ProofOfInferenceInvalidBatch(bytes32 circuitId, uint256 count);
    /// @notice A batch whose arrays differ in length.
    error ProofOfInferenceBatchLengthMismatch(uint256 contexts, uint256 outputs, uint256 proofs);
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

    /// @notice Reverts unless every `proofs[i]` is valid for `ctxs[i]` and `outputCommitments[i]`
    /// under the ZK policy, each with its own request, node, weights and input commitments and
    /// output. When all entries name one circuit and the DAO registered its batch verifier, one
    /// batch verification checks them all (ProofOfInferenceInvalidBatch when it fails);
    /// otherwise each entry is checked as {checkProof} checks it. Records nothing.
    function checkProofs(
        ResultContext[] calldata ctxs,
        bytes32[] calldata outputCommitments,
        bytes[] calldata proofs
    ) external view;

    /// @notice {checkProofs} for the results of one model that one node submits together
    /// (ModelMarketplaceV2.submitResults): entry i's context is (`requests[i].id`, `node`,
    /// `weightsCommitment`, `requests[i].inputCommitment`, `circuitId`). The last four arguments
    /// are submitResults' own, so the marketplace forwards its calldata as it is (the cheapest
    /// call in its bytecode); `outputURIs` is not read. The requests are not checked against the
    /// marketplace's digests here: the marketplace does that for every entry.
    function checkResults(
        address node,
        bytes32 weightsCommitment,
        bytes32 circuitId,
        IModelMarketplace.Request[] calldata requests,
        bytes32[] calldata outputCommitments,
        string[] calldata outputURIs,
        bytes[] calldata proofs
    ) external view;
}
