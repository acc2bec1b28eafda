// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {IIOTAValidator} from "./interfaces/IIOTAValidator.sol";
import {IModelMarketplace} from "./interfaces/IModelMarketplace.sol";
import {IProofOfUse} from "./interfaces/IProofOfUse.sol";

/// @title IOTAValidator, the bridge of feeless (IOTA channel) inference
/// @notice Feeless requests and results travel over a model's Streams-style channel; nothing
/// about them touches the chain until a committee of bridgers checkpoints the channel: the
/// newest message's sequence and hash, a link to the previous checkpoint's head, the Merkle root
/// of the hashes of the messages in between, and the inferences each node served. A checkpoint
/// signed (EIP-712) by at least `threshold` distinct committee members is accepted, its usage
/// is credited in {IProofOfUse}, and anyone can then prove a message's inclusion against it.
/// The DAO alone sets the committee and the threshold (a strict majority of the committee).
contract IOTAValidator is IIOTAValidator, JoyGoverned, EIP712 {
    /// @notice Inferences `node` served on the stream since the previous checkpoint.
    struct Usage {
        address node;
        uint64 count;
    }

    /// @notice What the bridgers sign.
    struct Checkpoint {
        bytes32 streamId;
        uint64 sequence; // channel sequence of the newest message covered
        bytes32 previousHead; // head of the stream's previous checkpoint (zero for the first)
        bytes32 headHash; // hash of the newest message covered
        bytes32 messagesRoot; // Merkle root of the message hashes since the previous checkpoint
        Usage[] usage;
    }

    /// @notice A stream linked to its (feeless) model.
    struct Stream {
        bytes32 modelId;
        address modelOwner;
        uint64 sequence; // of the last accepted checkpoint
        uint64 checkpoints; // accepted so far
        bytes32 head; // of the last accepted checkpoint
    }

    bytes32 public constant USAGE_TYPEHASH = keccak256("Usage(address node,uint64 count)");
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(bytes32 streamId,uint64 sequence,bytes32 previousHead,bytes32 headHash,bytes32 messagesRoot,Usage[] usage)Usage(address node,uint64 count)"
    );
    bytes32 public constant STREAM_LINK_TYPEHASH =
        keccak256("StreamLink(bytes32 streamId,bytes32 modelId,address modelOwner)");
    /// @notice Largest committee (signature checks grow with it).
    uint256 public constant MAX_COMMITTEE = 32;

    IModelMarketplace private immutable _marketplace;
    IProofOfUse private immutable _proofOfUse;

    uint256 private _threshold;
    address[] private _committee;
    /// @dev member => the committee generation it belongs to; replacing the committee bumps the
    /// generation, so former members lose their seat without a loop over them.
    mapping(address member => uint256 generation) private _seats;
    uint256 private _generation;
    mapping(bytes32 streamId => Stream) private _streams;
    mapping(bytes32 streamId => mapping(uint64 sequence => bytes32 messagesRoot)) private _roots;

    /// @param initialOwner the deployer while wiring; the timelock afterwards
    /// @param marketplace_ the marketplace of the feeless models
    /// @param proofOfUse_ the usage ledger checkpoints credit
    /// @param committee the initial bridgers
    /// @param threshold_ signatures needed, a strict majority of `committee`
    constructor(
        address initialOwner,
        IModelMarketplace marketplace_,
        IProofOfUse proofOfUse_,
        address[] memory committee,
        uint256 threshold_
    ) JoyGoverned(initialOwner) EIP712("JoyNet IOTAValidator", "1") {
        _marketplace = marketplace_;
        _proofOfUse = proofOfUse_;
        _setCommittee(committee, threshold_);
    }

    /// @notice Replaces the bridger committee and the threshold (a strict majority of it).
    /// Governance only.
    function setCommittee(address[] calldata members, uint256 threshold_) external onlyOwner {
        _setCommittee(members, threshold_);
    }

    /// @notice Asks the bridgers to link the caller's feeless model to its stream. They link it
    /// ({linkStream}) only once the stream's author has consented on the stream itself: a packet
    /// signed by the channel's author key naming this model, its owner, the chain and this
    /// contract (see docs/feeless.md). Model owner only.
    /// @param streamId the stream the model was registered with
    /// @param modelId the feeless model
    function requestStreamLink(bytes32 streamId, bytes32 modelId) external {
        address modelOwner = _linkableOwner(streamId, modelId);
        if (modelOwner != msg.sender) revert IOTAValidatorNotModelOwner(modelId, msg.sender);
        emit StreamLinkRequested(streamId, modelId, modelOwner);
    }

    /// @notice Links a feeless model to its stream, so that checkpoints of the stream credit the
    /// model. The committee attests that the stream's author consented to exactly this link: at
    /// least {threshold} distinct members sign (EIP-712) the {streamLinkDigest} of the stream, the
    /// model and its current owner. Anyone may submit; a stream is linked once, to one model.
    /// @param streamId the stream the model was registered with
    /// @param modelId the feeless model
    /// @param signatures EIP-712 signatures of {streamLinkDigest}, sorted by signer address
    function linkStream(bytes32 streamId, bytes32 modelId, bytes[] calldata signatures) external {
        address modelOwner = _linkableOwner(streamId, modelId);
        _checkSignatures(streamLinkDigest(streamId, modelId, modelOwner), signatures);
        _streams[streamId] = Stream(modelId, modelOwner, 0, 0, bytes32(0));
        emit StreamLinked(streamId, modelId, modelOwner);
    }

    /// @notice Accepts a checkpoint signed by at least {threshold} distinct committee members
    /// (signatures ordered by signer address) and credits its usage in {IProofOfUse}.
    /// @param checkpoint the checkpoint, continuing from the stream's last head
    /// @param signatures EIP-712 signatures of {checkpointDigest}, sorted by signer address
    function submitCheckpoint(Checkpoint calldata checkpoint, bytes[] calldata signatures) external {
        Stream storage stream = _linkedStream(checkpoint.streamId);
        if (checkpoint.previousHead != stream.head) {
            revert IOTAValidatorBrokenLink(checkpoint.streamId, stream.head, checkpoint.previousHead);
        }
        if (stream.checkpoints != 0 && checkpoint.sequence <= stream.sequence) {
            revert IOTAValidatorStaleSequence(checkpoint.streamId, stream.sequence, checkpoint.sequence);
        }
        _checkSignatures(checkpointDigest(checkpoint), signatures);

        (stream.sequence, stream.head) = (checkpoint.sequence, checkpoint.headHash);
        stream.checkpoints += 1;
        _roots[checkpoint.streamId][checkpoint.sequence] = checkpoint.messagesRoot;
        uint256 inferences = _creditUsage(stream, checkpoint.usage);
        emit CheckpointAccepted(
            checkpoint.streamId, checkpoint.sequence, checkpoint.headHash, checkpoint.messagesRoot, inferences
        );
    }

    /// @notice True when `messageHash` is among the messages of the stream's checkpoint at
    /// `sequence`. Leaves are keccak256(messageHash), so that a leaf (32-byte preimage) can never
    /// pass for an inner node (64 bytes); nodes are OpenZeppelin's sorted-pair keccak-256
    /// (joynet.channels.merkle builds the same tree).
    function verifyInclusion(bytes32 streamId, uint64 sequence, bytes32 messageHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = _roots[streamId][sequence];
        return root != bytes32(0)
            && MerkleProof.verifyCalldata(proof, root, keccak256(abi.encodePacked(messageHash)));
    }

    /// @notice The EIP-712 digest the bridgers sign for `checkpoint`.
    function checkpointDigest(Checkpoint calldata checkpoint) public view returns (bytes32) {
        bytes32[] memory usageHashes = new bytes32[](checkpoint.usage.length);
        for (uint256 i = 0; i < usageHashes.length; ++i) {
            Usage calldata entry = checkpoint.usage[i];
            usageHashes[i] = keccak256(abi.encode(USAGE_TYPEHASH, entry.node, entry.count));
        }
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CHECKPOINT_TYPEHASH,
                    checkpoint.streamId,
                    checkpoint.sequence,
                    checkpoint.previousHead,
                    checkpoint.headHash,
                    checkpoint.messagesRoot,
                    keccak256(abi.encodePacked(usageHashes))
                )
            )
        );
    }

    /// @notice The EIP-712 digest the bridgers sign to link `streamId` to `modelId`, owned by
    /// `modelOwner`; the domain names the chain and this contract.
    function streamLinkDigest(bytes32 streamId, bytes32 modelId, address modelOwner) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(STREAM_LINK_TYPEHASH, streamId, modelId, modelOwner)));
    }

    /// @notice Whether `streamId` is linked to a model.
    function isStreamLinked(bytes32 streamId) external view returns (bool) {
        return _streams[streamId].modelOwner != address(0);
    }

    /// @inheritdoc IIOTAValidator
    function marketplace() external view returns (IModelMarketplace) {
        return _marketplace;
    }

    /// @inheritdoc IIOTAValidator
    function proofOfUse() external view returns (IProofOfUse) {
        return _proofOfUse;
    }

    /// @inheritdoc IIOTAValidator
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @notice The current bridger committee.
    function committee() external view returns (address[] memory) {
        return _committee;
    }

    /// @notice Whether `account` sits on the current committee.
    function isCommitteeMember(address account) public view returns (bool) {
        return _seats[account] == _generation && account != address(0);
    }

    /// @notice A linked stream's state.
    function streamOf(bytes32 streamId) external view returns (Stream memory) {
        return _linkedStream(streamId);
    }

    /// @notice The Merkle root of the stream's checkpoint at `sequence` (zero if none).
    function messagesRootOf(bytes32 streamId, uint64 sequence) external view returns (bytes32) {
        return _roots[streamId][sequence];
    }

    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) private view {
        address previous;
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            if (!isCommitteeMember(signer)) revert IOTAValidatorNotCommitteeMember(signer);
            if (signer <= previous) revert IOTAValidatorDuplicateOrUnsortedSigner(signer);
            previous = signer;
        }
        if (signatures.length < _threshold) revert IOTAValidatorBelowThreshold(signatures.length, _threshold);
    }

    function _creditUsage(Stream storage stream, Usage[] calldata usage) private returns (uint256 inferences) {
        (bytes32 modelId, address modelOwner) = (stream.modelId, stream.modelOwner);
        for (uint256 i = 0; i < usage.length; ++i) {
            Usage calldata entry = usage[i];
            if (entry.node == address(0) || entry.count == 0) revert IOTAValidatorInvalidUsage(entry.node, entry.count);
            _proofOfUse.recordBridgedUsage(modelId, modelOwner, entry.node, entry.count);
            inferences += entry.count;
        }
    }

    /// @dev The owner of `modelId` when it is a feeless model registered with `streamId` and the
    /// stream is not linked yet.
    function _linkableOwner(bytes32 streamId, bytes32 modelId) private view returns (address) {
        IModelMarketplace.Model memory model = _marketplace.getModel(modelId);
        if (model.price != 0 || model.iotaStreamId != streamId || streamId == bytes32(0)) {
            revert IOTAValidatorNotFeelessStream(modelId, streamId);
        }
        if (_streams[streamId].modelOwner != address(0)) revert IOTAValidatorStreamLinked(streamId);
        return model.owner;
    }

    function _linkedStream(bytes32 streamId) private view returns (Stream storage stream) {
        stream = _streams[streamId];
        if (stream.modelOwner == address(0)) revert IOTAValidatorUnknownStream(streamId);
    }

    function _setCommittee(address[] memory members, uint256 threshold_) private {
        uint256 size = members.length;
        if (size == 0 || size > MAX_COMMITTEE || threshold_ * 2 <= size || threshold_ > size) {
            revert IOTAValidatorInvalidCommittee(size, threshold_);
        }
        uint256 generation = ++_generation;
        for (uint256 i = 0; i < size; ++i) {
            address member = members[i];
            if (member == address(0) || _seats[member] == generation) revert IOTAValidatorInvalidCommittee(size, threshold_);
            _seats[member] = generation;
        }
        _committee = members;
        _threshold = threshold_;
        emit CommitteeSet(members, threshold_);
    }
}
