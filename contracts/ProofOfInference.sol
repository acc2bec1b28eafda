// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

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
///   input, the claimed output, this request and this node ({checkProof}). The circuit registry
///   is {ZKVerifier}, which this contract is: circuits are registered here, by the DAO only.
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
        bool valid = _verifyInference(
            ctx.circuitId, ctx.weightsCommitment, ctx.inputCommitment, outputCommitment, ctx.requestId, ctx.node, proof
        );
        if (!valid) revert ProofOfInferenceInvalidProof(ctx.requestId, ctx.node);
    }
}
