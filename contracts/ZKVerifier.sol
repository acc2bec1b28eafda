// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {IZKVerifier} from "./interfaces/IZKVerifier.sol";

/// @title ZKVerifier, the registry of inference circuits
/// @notice Maps a circuit id to the snarkjs-exported Groth16 verifier of that circuit and to the
/// order of its public signals. Only the DAO (through the timelock) adds or removes circuits, so
/// a model can only name a circuit whose verifier the token holders accepted.
/// @dev Abstract: {ProofOfInference} is the ZKVerifier (the registry lives at its address), so
/// that judging a ZK result costs no call to a separate registry contract (about 6,000 gas).
/// Every registered circuit has exactly three public signals, each one of {Signal}: the weights
/// commitment and the input commitment tie the proof to the model and the request's input; the
/// output binding `output * 2^224 + requestId * 2^160 + uint160(node)` ties it to the claimed
/// output, one request and one submitting node, so that a proof can be neither replayed for
/// another request nor submitted by a node that did not make it. The output (a class index for a
/// classifier) is below 2^29 and request ids are below 2^64 (the marketplace counts them from 1),
/// so the binding is below 2^253, inside the BN254 scalar field, and names exactly one
/// (output, request, node) triple.
abstract contract ZKVerifier is IZKVerifier, JoyGoverned {
    /// @notice What each public signal of a circuit carries.
    enum Signal {
        WeightsCommitment,
        InputCommitment,
        OutputBinding
    }

    /// @notice A registered circuit (one storage slot).
    struct Circuit {
        address verifier; // snarkjs Groth16 verifier: verifyProof(a, b, c, uint256[3]) returns (bool)
        bytes3 layout; // byte i: the {Signal} at public-signal position i
    }

    /// @notice The number of public signals of every circuit.
    uint256 public constant PUBLIC_SIGNALS = 3;
    /// @notice Length of a proof: abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c).
    uint256 public constant PROOF_LENGTH = 256;
    /// @notice Request ids of a binding are below 2^REQUEST_ID_BITS.
    uint256 public constant REQUEST_ID_BITS = 64;
    /// @notice Outputs of a binding are below 2^OUTPUT_BITS (the binding stays below 2^253 < r).
    uint256 public constant OUTPUT_BITS = 29;
    /// @notice The verifiers' verifyProof selector (0x11479fea, written as a literal in {_verifyInference}).
    bytes4 public constant VERIFY_PROOF_SELECTOR =
        bytes4(keccak256("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[3])"));

    mapping(bytes32 circuitId => Circuit) private _circuits;

    /// @notice Registers `verifier` for `circuitId`, its public signals in the order `layout`
    /// gives (byte i is the {Signal} at position i). Governance only.
    function registerCircuit(bytes32 circuitId, address verifier, bytes3 layout) external onlyOwner {
        if (circuitId == bytes32(0)) revert ZKVerifierZeroCircuitId();
        if (_circuits[circuitId].verifier != address(0)) revert ZKVerifierCircuitExists(circuitId);
        if (verifier.code.length == 0) revert ZKVerifierNotAContract(verifier);
        _checkLayout(layout);
        _circuits[circuitId] = Circuit(verifier, layout);
        emit CircuitRegistered(circuitId, verifier, layout);
    }

    /// @notice Removes a circuit (a broken verifier or a compromised setup). Governance only.
    function removeCircuit(bytes32 circuitId) external onlyOwner {
        address verifier = _circuit(circuitId).verifier;
        delete _circuits[circuitId];
        emit CircuitRemoved(circuitId, verifier);
    }

    /// @notice The verifier and layout of a registered circuit.
    function circuitOf(bytes32 circuitId) external view returns (Circuit memory) {
        return _circuit(circuitId);
    }

    /// @inheritdoc IZKVerifier
    /// @dev Reverts for an unknown circuit or a proof of the wrong length; false for a request id
    /// of 2^64 or more or an output of 2^29 or more (no binding for them) and for a proof the
    /// verifier rejects (including values outside the BN254 scalar field).
    function verifyInference(
        bytes32 circuitId,
        bytes32 weightsCommitment,
        bytes32 inputCommitment,
        bytes32 outputCommitment,
        uint256 requestId,
        address node,
        bytes calldata proof
    ) external view returns (bool) {
        return _verifyInference(circuitId, weightsCommitment, inputCommitment, outputCommitment, requestId, node, proof);
    }

    function _verifyInference(
        bytes32 circuitId,
        bytes32 weightsCommitment,
        bytes32 inputCommitment,
        bytes32 output,
        uint256 requestId,
        address node,
        bytes calldata proof
    ) internal view returns (bool valid) {
        Circuit storage circuit = _circuits[circuitId];
        address verifier = circuit.verifier;
        if (verifier == address(0)) revert ZKVerifierUnknownCircuit(circuitId);
        bytes3 layout = circuit.layout;
        if (proof.length != PROOF_LENGTH) revert ZKVerifierMalformedProof(proof.length);
        if (requestId >> REQUEST_ID_BITS != 0 || uint256(output) >> OUTPUT_BITS != 0) return false;
        // The verifier's calldata, built in place in free memory (no arrays): the selector, the
        // proof's eight words copied straight from calldata (static arrays are encoded in place),
        // then the three signals in the circuit's order, picked through `layout` from the values
        // written in {Signal} order just past the call's data. The answer lands in scratch space.
        assembly ("memory-safe") {
            let data := mload(0x40)
            mstore(data, shl(224, 0x11479fea)) // VERIFY_PROOF_SELECTOR
            calldatacopy(add(data, 4), proof.offset, 256)
            let values := add(data, 356)
            mstore(values, weightsCommitment)
            mstore(add(values, 32), inputCommitment)
            mstore(add(values, 64), or(shl(224, output), or(shl(160, requestId), node))) // the output binding
            for { let i := 0 } lt(i, 3) { i := add(i, 1) } {
                mstore(add(add(data, 260), shl(5, i)), mload(add(values, shl(5, byte(i, layout)))))
            }
            // Two statements: Yul evaluates arguments right to left, so the result checks must
            // not share an expression with the call.
            let ok := staticcall(gas(), verifier, data, 356, 0, 32)
            valid := and(ok, and(eq(returndatasize(), 32), eq(mload(0), 1)))
        }
    }

    function _circuit(bytes32 circuitId) private view returns (Circuit memory circuit) {
        circuit = _circuits[circuitId];
        if (circuit.verifier == address(0)) revert ZKVerifierUnknownCircuit(circuitId);
    }

    function _checkLayout(bytes3 layout) private pure {
        uint256 seen;
        for (uint256 i = 0; i < PUBLIC_SIGNALS; ++i) {
            uint8 signal = uint8(layout[i]);
            if (signal >= PUBLIC_SIGNALS || seen & (1 << signal) != 0) revert ZKVerifierInvalidLayout(layout);
            seen |= 1 << signal;
        }
    }
}
