// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The circuit registry's errors and events, and the zero-knowledge check ProofOfInference
/// relies on (ZKVerifier)
interface IZKVerifier {
    /// @notice No circuit is registered under this id.
    error ZKVerifierUnknownCircuit(bytes32 circuitId);
    /// @notice A circuit is already registered under this id (remove it first to replace it).
    error ZKVerifierCircuitExists(bytes32 circuitId);
    /// @notice The circuit id is zero (zero means "no circuit" in a model's policy).
    error ZKVerifierZeroCircuitId();
    /// @notice The verifier address holds no contract.
    error ZKVerifierNotAContract(address verifier);
    /// @notice The layout is not a permutation of the three signals (ZKVerifier.Signal).
    error ZKVerifierInvalidLayout(bytes3 layout);
    /// @notice A proof of the wrong length.
    error ZKVerifierMalformedProof(uint256 length);
    /// @notice The circuit already has a batch verifier (remove it first to replace it).
    error ZKVerifierBatchVerifierExists(bytes32 circuitId);
    /// @notice The circuit has no batch verifier.
    error ZKVerifierNoBatchVerifier(bytes32 circuitId);

    /// @notice The DAO registered a circuit.
    event CircuitRegistered(bytes32 indexed circuitId, address indexed verifier, bytes3 layout);
    /// @notice The DAO removed a circuit: results of models naming it are refused from now on.
    /// Its batch verifier, if any, goes with it.
    event CircuitRemoved(bytes32 indexed circuitId, address indexed verifier);
    /// @notice The DAO registered the batch verifier of a circuit: several results of the
    /// circuit submitted together are checked in one pairing check from now on.
    event BatchVerifierRegistered(bytes32 indexed circuitId, address indexed batchVerifier);
    /// @notice The DAO removed the batch verifier of a circuit: its results are checked one by one.
    event BatchVerifierRemoved(bytes32 indexed circuitId, address indexed batchVerifier);

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
