// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IProofOfInference} from "./interfaces/IProofOfInference.sol";
import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {ZKVerifier} from "./ZKVerifier.sol";

/// @title ProofOfInference, the judge of results
/// @notice Decides whether a submitted result is valid under its model's policy:
/// - **quorum k**: the k assigned nodes each submit an output commitment; once all k are in, a
///   commitment backed by a strict majority is accepted and the others are dissenters (the
///   marketplace slashes them); without a majority the request is rejected (refunded). With
///   k = 1 the single submission is accepted at once: nothing is stored and no {Judged} event is
///   emitted (the marketplace's settlement event says it all).
/// - **zero knowledge** (circuitId != 0): every submission must carry a proof that the circuit
///   registered under the model's circuit id accepts for this model's weights, this request's
///   input, the claimed output, this request and this node; an invalid proof reverts, so the
///   node may resubmit before the deadline. The circuit registry is {ZKVerifier}, which this
///   contract is: circuits are registered here, by the DAO only.
contract ProofOfInference is IProofOfInference, ZKVerifier {
    struct Submission {
        address node;
        bytes32 outputCommitment;
    }

    /// @notice The marketplace, the only caller of {judge}.
    address public marketplace;

    /// @dev Submissions of quorum requests (k > 1) until all k are in; deleted once judged.
    mapping(uint256 requestId => Submission[]) private _submissions;

    /// @notice A caller other than the marketplace called {judge}.
    error ProofOfInferenceCallerNotMarketplace(address caller);
    /// @notice The proof does not verify for this model, input, output, request and node.
    error ProofOfInferenceInvalidProof(uint256 requestId, address node);
    /// @notice A node submitted twice for one request.
    error ProofOfInferenceDuplicateSubmission(uint256 requestId, address node);
    /// @notice A zero address where a contract is required.
    error ProofOfInferenceZeroAddress();

    /// @notice The marketplace changed.
    event MarketplaceSet(address indexed previous, address indexed current);
    /// @notice A quorum request received a submission and waits for more.
    event SubmissionRecorded(uint256 indexed requestId, address indexed node, bytes32 outputCommitment, uint256 count);
    /// @notice A quorum request (k > 1) was judged.
    event Judged(uint256 indexed requestId, Verdict verdict, bytes32 accepted, uint256 dissenters);

    /// @param initialOwner the deployer while wiring; the timelock afterwards
    constructor(address initialOwner) JoyGoverned(initialOwner) {}

    /// @notice Sets the marketplace allowed to call {judge}. Governance only.
    function setMarketplace(address newMarketplace) external onlyOwner {
        if (newMarketplace == address(0)) revert ProofOfInferenceZeroAddress();
        emit MarketplaceSet(marketplace, newMarketplace);
        marketplace = newMarketplace;
    }

    /// @inheritdoc IProofOfInference
    function judge(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof)
        external
        returns (Verdict verdict, bytes32 accepted, address[] memory dissenters)
    {
        if (msg.sender != marketplace) revert ProofOfInferenceCallerNotMarketplace(msg.sender);
        if (ctx.circuitId != bytes32(0)) _checkProof(ctx, outputCommitment, proof);
        if (ctx.quorum <= 1) return (Verdict.Accepted, outputCommitment, dissenters);
        return _tally(ctx, outputCommitment);
    }

    /// @inheritdoc IProofOfInference
    function checkProof(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof) external view {
        _checkProof(ctx, outputCommitment, proof);
    }

    /// @notice Submissions recorded so far for a quorum request that is still open.
    function submissionsOf(uint256 requestId) external view returns (Submission[] memory) {
        return _submissions[requestId];
    }

    function _checkProof(ResultContext calldata ctx, bytes32 outputCommitment, bytes calldata proof) private view {
        bool valid = _verifyInference(
            ctx.circuitId, ctx.weightsCommitment, ctx.inputCommitment, outputCommitment, ctx.requestId, ctx.node, proof
        );
        if (!valid) revert ProofOfInferenceInvalidProof(ctx.requestId, ctx.node);
    }

    function _tally(ResultContext calldata ctx, bytes32 outputCommitment)
        private
        returns (Verdict verdict, bytes32 accepted, address[] memory dissenters)
    {
        Submission[] storage submissions = _submissions[ctx.requestId];
        uint256 count = submissions.length;
        for (uint256 i = 0; i < count; ++i) {
            if (submissions[i].node == ctx.node) revert ProofOfInferenceDuplicateSubmission(ctx.requestId, ctx.node);
        }
        submissions.push(Submission(ctx.node, outputCommitment));
        if (++count < ctx.quorum) {
            emit SubmissionRecorded(ctx.requestId, ctx.node, outputCommitment, count);
            return (Verdict.Pending, bytes32(0), dissenters);
        }
        Submission[] memory all = submissions;
        delete _submissions[ctx.requestId];
        (accepted, verdict) = _majority(all);
        dissenters = _dissenters(all, accepted, verdict);
        emit Judged(ctx.requestId, verdict, accepted, dissenters.length);
    }

    /// @dev The commitment backed by a strict majority, if any (k <= 16: quadratic is fine).
    function _majority(Submission[] memory all) private pure returns (bytes32 best, Verdict verdict) {
        uint256 bestVotes;
        for (uint256 i = 0; i < all.length; ++i) {
            uint256 votes;
            for (uint256 j = 0; j < all.length; ++j) {
                if (all[j].outputCommitment == all[i].outputCommitment) ++votes;
            }
            if (votes > bestVotes) (best, bestVotes) = (all[i].outputCommitment, votes);
        }
        verdict = bestVotes * 2 > all.length ? Verdict.Accepted : Verdict.Rejected;
        if (verdict == Verdict.Rejected) best = bytes32(0);
    }

    /// @dev Without a majority nobody can be blamed, so a rejected request has no dissenters.
    function _dissenters(Submission[] memory all, bytes32 accepted, Verdict verdict)
        private
        pure
        returns (address[] memory list)
    {
        if (verdict != Verdict.Accepted) return list;
        list = new address[](all.length);
        uint256 n;
        for (uint256 i = 0; i < all.length; ++i) {
            if (all[i].outputCommitment != accepted) list[n++] = all[i].node;
        }
        assembly ("memory-safe") {
            mstore(list, n) // shrink to the dissenters found
        }
    }
}
