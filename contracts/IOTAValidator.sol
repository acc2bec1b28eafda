// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {IIOTAValidator} from "./interfaces/IIOTAValidator.sol";
import {IModelMarketplace} from "./interfaces/IModelMarketplace.sol";
import {IProofOfUse} from "./interfaces/IProofOfUse.sol";
import {BASIS_POINTS} from "./libraries/BasisPoints.sol";

/// @title IOTAValidator, the bridge of feeless (IOTA channel) inference
/// @notice Feeless requests and results travel over a model's Streams-style channel; nothing
/// about them touches the chain until a committee of bridgers checkpoints the channel: the
/// newest message's sequence and hash, a link to the previous checkpoint's head, the Merkle root
/// of the hashes of the messages in between, and the inferences each node served. A checkpoint
/// signed (EIP-712) by at least `threshold` distinct committee members is accepted, its usage
/// is credited in {IProofOfUse}, and anyone can then prove a message's inclusion against it.
/// The DAO alone sets the committee and the threshold (a strict majority of the committee).
///
/// Feeless means sponsored: the requester pays nothing, and each model's **budget** pays the
/// nodes that served it. Anyone funds a budget ({fundBudget}); the model owner sets the rate per
/// inference ({setFeelessRate}) and may take back what is unspent ({requestBudgetWithdrawal},
/// {withdrawBudget}); a lower rate and a withdrawal take effect only {budgetDelay} after they are
/// announced, so a node never serves under terms that change behind it. A checkpoint pays each
/// node `count x rate` from the budget (as far as it goes), and credits only nodes that bound
/// a channel key for the model ({bindChannelKey}, nodes serving it in the NodeCoordinator);
/// the protocol keeps {IModelMarketplace.protocolShareBps} of every
/// payment for the treasury, and that part, which whoever funded the budget never gets back, is
/// the usage's reward weight in {IProofOfUse}. So usage farmed through self-requests can at most
/// drain a budget its own owner funded, and the DAO's usage pools pay back less than it cost.
contract IOTAValidator is IIOTAValidator, JoyGoverned, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

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
        uint32 checkpoints; // accepted so far (packed with the owner and sequence: one slot a checkpoint writes)
        bytes32 head; // of the last accepted checkpoint
    }

    /// @notice A feeless model's budget and its owner's terms.
    /// @dev Slot 0 is all a checkpoint reads and writes.
    struct Budget {
        uint128 balance; // JOY left to pay nodes with
        uint96 rate; // JOY per inference paid to the serving node
        uint32 pendingRateFrom; // when `pendingRate` applies; zero when no lower rate is pending
        uint96 pendingRate; // a lower rate, from `pendingRateFrom`
        uint128 withdrawal; // JOY the owner announced it will take back
        uint32 withdrawableAt; // from when it may
    }

    /// @notice A node serving a feeless model over its channel (one slot).
    struct Server {
        uint128 earnings; // what the model's budget paid it, not withdrawn yet
        bool bound; // its channel key is bound: checkpoints may credit it
    }

    /// @dev A checkpoint's payments from one budget, as they add up.
    struct Tally {
        uint256 rate;
        uint256 balance;
        uint256 protocolBps;
        uint256 spent;
        uint256 protocolPart;
    }

    bytes32 public constant USAGE_TYPEHASH = keccak256("Usage(address node,uint64 count)");
    bytes32 public constant CHECKPOINT_TYPEHASH = keccak256(
        "Checkpoint(bytes32 streamId,uint64 sequence,bytes32 previousHead,bytes32 headHash,bytes32 messagesRoot,Usage[] usage)Usage(address node,uint64 count)"
    );
    bytes32 public constant STREAM_LINK_TYPEHASH =
        keccak256("StreamLink(bytes32 streamId,bytes32 modelId,address modelOwner)");
    /// @notice Largest committee (signature checks grow with it).
    uint256 public constant MAX_COMMITTEE = 32;
    /// @notice Bounds of {budgetDelay}, in seconds.
    uint256 public constant MIN_BUDGET_DELAY = 1 hours;
    uint256 public constant MAX_BUDGET_DELAY = 30 days;

    IModelMarketplace private immutable _marketplace;
    IProofOfUse private immutable _proofOfUse;
    IERC20 private immutable _joy;

    uint256 private _threshold;
    address[] private _committee;
    /// @dev member => the committee generation it belongs to; replacing the committee bumps the
    /// generation, so former members lose their seat without a loop over them.
    mapping(address member => uint256 generation) private _seats;
    uint256 private _generation;
    mapping(bytes32 streamId => Stream) private _streams;
    mapping(bytes32 streamId => mapping(uint64 sequence => bytes32 messagesRoot)) private _roots;
    mapping(bytes32 modelId => Budget) private _budgets;
    // The hot slot of a node serving a feeless model: checked and credited by every checkpoint.
    mapping(bytes32 modelId => mapping(address node => Server)) private _servers;
    mapping(bytes32 modelId => mapping(address node => bytes32 channelKey)) private _channelKeys;
    uint256 private _protocolEarnings;
    uint64 private _budgetDelay = 1 days;

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
        _joy = marketplace_.joy();
        _setCommittee(committee, threshold_);
    }

    /// @notice Replaces the bridger committee and the threshold (a strict majority of it).
    /// Governance only.
    function setCommittee(address[] calldata members, uint256 threshold_) external onlyOwner {
        _setCommittee(members, threshold_);
    }

    /// @notice Sets how long a lower rate or a budget withdrawal waits after it is announced.
    /// Governance only.
    /// @param delay seconds, within [MIN_BUDGET_DELAY, MAX_BUDGET_DELAY]
    function setBudgetDelay(uint64 delay) external onlyOwner {
        if (delay < MIN_BUDGET_DELAY || delay > MAX_BUDGET_DELAY) {
            revert IOTAValidatorDelayOutOfBounds(delay, MIN_BUDGET_DELAY, MAX_BUDGET_DELAY);
        }
        emit BudgetDelaySet(_budgetDelay, delay);
        _budgetDelay = delay;
    }

    // ---- budgets ----

    /// @notice Adds `amount` JOY, pulled from the caller (who approved it), to the budget of the
    /// feeless model `modelId`. Anyone may fund; what is unspent goes back to the model's owner.
    function fundBudget(bytes32 modelId, uint256 amount) external nonReentrant {
        if (amount == 0) revert IOTAValidatorZeroAmount();
        _feelessOwner(modelId);
        Budget storage budget = _budgets[modelId];
        budget.balance = SafeCast.toUint128(budget.balance + amount);
        _joy.safeTransferFrom(msg.sender, address(this), amount);
        emit BudgetFunded(modelId, msg.sender, amount);
    }

    /// @notice Sets the JOY a node is paid per inference of `modelId` from its budget. A higher
    /// rate applies at once; a lower one from {budgetDelay} from now. Model owner only.
    function setFeelessRate(bytes32 modelId, uint96 rate) external {
        _requireModelOwner(modelId);
        Budget storage budget = _budgets[modelId];
        uint96 current = _settleRate(budget);
        uint32 effectiveFrom = uint32(block.timestamp);
        if (rate >= current) {
            (budget.rate, budget.pendingRate, budget.pendingRateFrom) = (rate, 0, 0);
        } else {
            effectiveFrom += uint32(_budgetDelay);
            (budget.pendingRate, budget.pendingRateFrom) = (rate, effectiveFrom);
        }
        emit FeelessRateSet(modelId, rate, effectiveFrom);
    }

    /// @notice Announces that the owner will take `amount` JOY back from the budget of
    /// `modelId`, from {budgetDelay} from now; replaces any earlier announcement. Model owner only.
    function requestBudgetWithdrawal(bytes32 modelId, uint128 amount) external {
        _requireModelOwner(modelId);
        if (amount == 0) revert IOTAValidatorZeroAmount();
        uint32 withdrawableAt = uint32(block.timestamp + _budgetDelay);
        (_budgets[modelId].withdrawal, _budgets[modelId].withdrawableAt) = (amount, withdrawableAt);
        emit BudgetWithdrawalRequested(modelId, amount, withdrawableAt);
    }

    /// @notice Pays the owner the announced withdrawal once its delay is over, as far as the
    /// budget still holds it. Model owner only.
    /// @return amount the JOY paid
    function withdrawBudget(bytes32 modelId) external nonReentrant returns (uint256 amount) {
        address modelOwner = _requireModelOwner(modelId);
        Budget storage budget = _budgets[modelId];
        if (budget.withdrawal == 0) revert IOTAValidatorZeroAmount();
        if (block.timestamp < budget.withdrawableAt) {
            revert IOTAValidatorWithdrawalNotDue(modelId, budget.withdrawableAt);
        }
        amount = Math.min(budget.withdrawal, budget.balance);
        budget.balance -= uint128(amount);
        (budget.withdrawal, budget.withdrawableAt) = (0, 0);
        emit BudgetWithdrawn(modelId, modelOwner, amount);
        if (amount != 0) _joy.safeTransfer(modelOwner, amount);
    }

    /// @notice Pays the caller what the budgets of `modelIds` paid it for the feeless inferences
    /// it served.
    /// @return amount the JOY paid
    function withdrawEarnings(bytes32[] calldata modelIds) external nonReentrant returns (uint256 amount) {
        for (uint256 i = 0; i < modelIds.length; ++i) {
            Server storage server = _servers[modelIds[i]][msg.sender];
            amount += server.earnings;
            server.earnings = 0;
        }
        if (amount == 0) revert IOTAValidatorZeroAmount();
        emit EarningsWithdrawn(msg.sender, amount);
        _joy.safeTransfer(msg.sender, amount);
    }

    // ---- serving nodes ----

    /// @notice Binds the caller's channel key to it for the feeless model `modelId`: answers
    /// signed with that key and naming the caller count as served by it (once the key also
    /// vouched for the caller on the model's stream, a `node-key` packet: the bridgers and the
    /// requesters check both), and checkpoints may credit and pay the caller. The caller must
    /// serve the model in the NodeCoordinator. Binding again replaces the caller's key. Several
    /// nodes may name one key: only the one the key vouched for is ever credited, so binding
    /// another's key gains nothing and blocks nobody.
    /// @param channelKey the node's Ed25519 channel key
    function bindChannelKey(bytes32 modelId, bytes32 channelKey) external {
        _feelessOwner(modelId);
        if (!_marketplace.coordinator().servesModel(msg.sender, modelId)) {
            revert IOTAValidatorNodeNotServing(msg.sender, modelId);
        }
        if (channelKey == bytes32(0)) revert IOTAValidatorZeroChannelKey(modelId);
        (_servers[modelId][msg.sender].bound, _channelKeys[modelId][msg.sender]) = (true, channelKey);
        emit ChannelKeyBound(modelId, msg.sender, channelKey);
    }

    /// @notice Unbinds `node`'s channel key for `modelId`: the node itself at any time, anyone
    /// once the node no longer serves the model in the NodeCoordinator. Its earnings stay.
    function unbindChannelKey(bytes32 modelId, address node) external {
        if (node != msg.sender && _marketplace.coordinator().servesModel(node, modelId)) {
            revert IOTAValidatorNodeStillServing(node, modelId);
        }
        if (!_unbind(modelId, node)) revert IOTAValidatorNodeNotBound(node, modelId);
    }

    /// @notice Sends the protocol's part of budget payments to the marketplace's treasury.
    /// Anyone may call; the JOY only ever goes to the treasury.
    /// @return amount the JOY sent
    function withdrawProtocolEarnings() external nonReentrant returns (uint256 amount) {
        amount = _protocolEarnings;
        if (amount == 0) revert IOTAValidatorZeroAmount();
        _protocolEarnings = 0;
        address treasury = _marketplace.treasury();
        emit ProtocolEarningsWithdrawn(treasury, amount);
        _joy.safeTransfer(treasury, amount);
    }

    // ---- streams and checkpoints ----

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

    /// @notice The budget of `modelId` and its owner's terms (the stored rate; see {feelessRateOf}).
    function budgetOf(bytes32 modelId) external view returns (Budget memory) {
        return _budgets[modelId];
    }

    /// @notice The rate a checkpoint of `modelId` pays now, JOY per inference.
    function feelessRateOf(bytes32 modelId) external view returns (uint256) {
        Budget storage budget = _budgets[modelId];
        return budget.pendingRateFrom != 0 && block.timestamp >= budget.pendingRateFrom
            ? budget.pendingRate
            : budget.rate;
    }

    /// @notice What the budget of `modelId` paid `node` that it has not withdrawn.
    function earningsOf(bytes32 modelId, address node) external view returns (uint256) {
        return _servers[modelId][node].earnings;
    }

    /// @notice The channel key `node` bound for `modelId` (zero: none).
    function channelKeyOf(bytes32 modelId, address node) external view returns (bytes32) {
        return _channelKeys[modelId][node];
    }

    /// @notice The protocol's part of budget payments not yet sent to the treasury.
    function protocolEarnings() external view returns (uint256) {
        return _protocolEarnings;
    }

    /// @notice How long a lower rate or a budget withdrawal waits after it is announced.
    function budgetDelay() external view returns (uint64) {
        return _budgetDelay;
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

    /// @dev Pays each entry's node from the model's budget and records the usage, weighted by the
    /// protocol's part of the payment.
    function _creditUsage(Stream storage stream, Usage[] calldata usage) private returns (uint256 inferences) {
        bytes32 modelId = stream.modelId;
        Budget storage budget = _budgets[modelId];
        Tally memory tally = Tally(_settleRate(budget), budget.balance, _marketplace.protocolShareBps(), 0, 0);
        IProofOfUse.BridgedUsage[] memory records = new IProofOfUse.BridgedUsage[](usage.length);
        for (uint256 i = 0; i < usage.length; ++i) {
            Usage calldata entry = usage[i];
            (address node, uint64 count) = (entry.node, entry.count);
            if (node == address(0) || count == 0) revert IOTAValidatorInvalidUsage(node, count);
            Server storage server = _servers[modelId][node];
            if (!server.bound) revert IOTAValidatorNodeNotBound(node, modelId);
            records[i] = IProofOfUse.BridgedUsage(node, count, uint128(_pay(tally, server, count)));
            inferences += count;
        }
        _proofOfUse.recordBridgedUsage(modelId, stream.modelOwner, records);
        if (tally.spent != 0) {
            budget.balance = uint128(tally.balance);
            _protocolEarnings += tally.protocolPart;
            emit BudgetSpent(modelId, tally.spent, tally.protocolPart);
        }
    }

    /// @dev Pays `server` for `count` inferences as far as the budget goes; returns the protocol's part.
    function _pay(Tally memory tally, Server storage server, uint256 count) private returns (uint256 cut) {
        uint256 paid = Math.min(count * tally.rate, tally.balance); // count < 2**64, rate < 2**96
        if (paid == 0) return 0;
        cut = paid * tally.protocolBps / BASIS_POINTS;
        tally.balance -= paid;
        (tally.spent, tally.protocolPart) = (tally.spent + paid, tally.protocolPart + cut);
        server.earnings += uint128(paid - cut); // paid <= the budget, a uint128
    }

    /// @dev Unbinds `node`'s key for `modelId`; false when none was bound.
    function _unbind(bytes32 modelId, address node) private returns (bool) {
        bytes32 key = _channelKeys[modelId][node];
        if (key == bytes32(0)) return false;
        delete _channelKeys[modelId][node];
        _servers[modelId][node].bound = false;
        emit ChannelKeyUnbound(modelId, node, key);
        return true;
    }

    /// @dev The rate in force, making a due lower rate the stored one.
    function _settleRate(Budget storage budget) private returns (uint96) {
        uint32 from = budget.pendingRateFrom;
        if (from != 0 && block.timestamp >= from) {
            (budget.rate, budget.pendingRate, budget.pendingRateFrom) = (budget.pendingRate, 0, 0);
        }
        return budget.rate;
    }

    /// @dev The caller, when it owns `modelId`. Feeless or not: a model whose owner set a price
    /// later must still let the owner take back its budget.
    function _requireModelOwner(bytes32 modelId) private view returns (address modelOwner) {
        modelOwner = _marketplace.getModel(modelId).owner;
        if (modelOwner != msg.sender || modelOwner == address(0)) revert IOTAValidatorNotModelOwner(modelId, msg.sender);
    }

    /// @dev The owner of `modelId`, which must be a registered feeless model.
    function _feelessOwner(bytes32 modelId) private view returns (address) {
        IModelMarketplace.Model memory model = _marketplace.getModel(modelId);
        if (model.owner == address(0) || model.price != 0 || model.iotaStreamId == bytes32(0)) {
            revert IOTAValidatorNotFeelessStream(modelId, model.iotaStreamId);
        }
        return model.owner;
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
