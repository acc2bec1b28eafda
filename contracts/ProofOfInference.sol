// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IModelMarketplace} from "./interfaces/IModelMarketplace.sol";
import {IProofOfInference} from "./interfaces/IProofOfInference.sol";
import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {ZKVerifier} from "./ZKVerifier.sol";

/// @title ProofOfInference, the judge of results
/// @notice Decides whether results are valid under their model's policy:
/// - **quorum k**: the marketplace collects the k assigned nodes' sealed results and then their
///   reveals; {tally} accepts an output revealed by a strict majority of the k nodes. The judge
///   stores nothing per request, so swapping judges never strands a request and a closed
///   request leaves no state behind.
/// - **zero knowledge** (circuitId != 0): every result must carry a proof that the circuit
///   registered under the model's circuit id accepts for this model's weights, this request's
///   input, the claimed output, this request and this node ({checkProof}). Several results of
///   one circuit are checked together with one pairing check when the DAO registered the
///   circuit's batch verifier ({checkProofs}, {checkResults}). The circuit registry is
///   {ZKVerifier}, which this contract is: circuits are registered here, by the DAO only.
contract ProofOfInference is IProofOfInference, ZKVerifier {
    /// @param initialOwner the deployer while wiring; the timelock afterwards
    constructor(address initialOwner) JoyGoverned(initialOwner) {}

    /// @inheritdoc IProofOfInference
    /// @dev k <= 16: quadratic is fine. Counting each value from its first occurrence on finds
    /// its full count there; later occurrences count less and never win.
    function tally(uint256 quorum, bytes32[] calldata outputs)
        external
        pure
        returns (Verdict verdict, bytes32 accepted)
    {
        if (quorum == 0 || outputs.length > quorum) revert ProofOfInferenceInvalidTally(quorum, outputs.length);
        uint256 bestVotes;
        for (uint256 i = 0; i < outputs.length; ++i) {
            uint256 votes;
            for (uint256 j = i; j < outputs.length; ++j) {
                if (outputs[j] == outputs[i]) ++votes;
            }
            if (votes > bestVotes) (accepted, bestVotes) = (outputs[i], votes);
        }
        if (bestVotes * 2 > quorum) return (Verdict.Accepted, accepted);
        return (Verdict.Rejected, bytes32(0));
    }

    /// @inheritdoc IProofOfInference
    function checkProof(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof) external view {
        _checkProof(ctx, outputCommitment, proof);
    }

    /// @inheritdoc IProofOfInference
    function checkResults(
        address node, bytes32 weightsCommitment, bytes32 circuitId, IModelMarketplace.Request[] calldata requests,
        bytes32[] calldata outputCommitments, string[] calldata, bytes[] calldata proofs
    ) external view {
        ResultContext[] memory ctxs = new ResultContext[](requests.length);
        for (uint256 i = 0; i < requests.length; ++i) {
            ctxs[i] = ResultContext(requests[i].id, node, weightsCommitment, requests[i].inputCommitment, circuitId);
        }
        _checkProofs(ctxs, outputCommitments, proofs);
    }

    /// @inheritdoc IProofOfInference
    /// @dev The batch verifier gets, for entry i, the proof as given and the three public
    /// signals built here from entry i's own context (so every per-request binding of
    /// {checkProof} holds), in the circuit's layout. Its calldata is
    /// verifyProofs(uint256[8][] proofs, uint256[3][] signals): both arrays of static rows, encoded
    /// in place after their lengths.
    function checkProofs(
        ResultContext[] calldata ctxs,
        bytes32[] calldata outputCommitments,
        bytes[] calldata proofs
    ) external view {
        _checkProofs(ctxs, outputCommitments, proofs);
    }

    function _checkProofs(
        ResultContext[] memory ctxs,
        bytes32[] calldata outputCommitments,
        bytes[] calldata proofs
    ) private view {
        uint256 count = ctxs.length;
        if (outputCommitments.length != count || proofs.length != count) {
            revert ProofOfInferenceBatchLengthMismatch(count, outputCommitments.length, proofs.length);
        }
        if (count == 0) return;
        bytes32 circuitId = ctxs[0].circuitId;
        address batchVerifier = _batchVerifiers[circuitId];
        for (uint256 i = 1; i < count && batchVerifier != address(0); ++i) {
            if (ctxs[i].circuitId != circuitId) batchVerifier = address(0);
        }
        if (batchVerifier == address(0)) {
            for (uint256 i = 0; i < count; ++i) {
                _checkProof(ctxs[i], outputCommitments[i], proofs[i]);
            }
            return;
        }
        bytes3 layout = _circuit(circuitId).layout;
        uint256 signalsAt = 4 + 96 + count * PROOF_LENGTH; // the signals' length word
        bytes memory data = new bytes(signalsAt + 32 + count * 32 * PUBLIC_SIGNALS);
        assembly ("memory-safe") {
            let body := add(data, 32)
            mstore(body, shl(224, 0x86a7d976)) // verifyProofs(uint256[8][],uint256[3][])
            mstore(add(body, 4), 0x40)
            mstore(add(body, 36), sub(signalsAt, 4))
            mstore(add(body, 68), count)
            mstore(add(body, signalsAt), count)
        }
        for (uint256 i = 0; i < count; ++i) {
            ResultContext memory ctx = ctxs[i];
            bytes calldata proof = proofs[i];
            bytes32 output = outputCommitments[i];
            (uint256 requestId, address node) = (ctx.requestId, ctx.node);
            if (proof.length != PROOF_LENGTH) revert ZKVerifierMalformedProof(proof.length);
            if (requestId >> REQUEST_ID_BITS != 0 || uint256(output) >> OUTPUT_BITS != 0) {
                revert ProofOfInferenceInvalidProof(requestId, node);
            }
            bytes32 weights = ctx.weightsCommitment;
            bytes32 input = ctx.inputCommitment;
            assembly ("memory-safe") {
                let body := add(data, 32)
                calldatacopy(add(body, add(100, shl(8, i))), proof.offset, 256)
                let row := add(add(body, add(signalsAt, 32)), mul(i, 96))
                let binding := or(shl(224, output), or(shl(160, requestId), node))
                for { let j := 0 } lt(j, 3) { j := add(j, 1) } {
                    // The {Signal} at position j: 0 weights, 1 input, 2 the output binding.
                    let signal := byte(j, layout)
                    let value := weights
                    if eq(signal, 1) { value := input }
                    if eq(signal, 2) { value := binding }
                    mstore(add(row, shl(5, j)), value)
                }
            }
        }
        bool valid;
        assembly ("memory-safe") {
            let ok := staticcall(gas(), batchVerifier, add(data, 32), mload(data), 0, 32)
            valid := and(ok, and(eq(returndatasize(), 32), eq(mload(0), 1)))
        }
        if (!valid) revert ProofOfInferenceInvalidBatch(circuitId, count);
    }

    function _checkProof(ResultContext memory ctx, bytes32 outputCommitment, bytes calldata proof) private view {
        bool valid = _verifyInference(
            ctx.circuitId, ctx.weightsCommitment, ctx.inputCommitment, outputCommitment, ctx.requestId, ctx.node, proof
        );
        if (!valid) revert ProofOfInferenceInvalidProof(ctx.requestId, ctx.node);
    }
}
