// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The zero-knowledge check ProofOfInference relies on (ZKVerifier)
interface IZKVerifier {
    /// @notice True when `proof` shows that the network committed to by `weightsCommitment`,
    /// applied to the input committed to by `inputCommitment`, gives `outputCommitment` (the
    /// output itself, a small integer such as a class index), bound to `requestId` and `node` so
    /// that it can be neither replayed nor stolen.
    function verifyInference(
        bytes32 circuitId,
        bytes32 weightsCommitment,
        bytes32 inputCommitment,
        bytes32 outputCommitment,
        uint256 requestId,
        address node,
        bytes calldata proof
    ) external view returns (bool);
}
