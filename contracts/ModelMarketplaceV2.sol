// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {BASIS_POINTS} from "./libraries/BasisPoints.sol";
import {INodeCoordinator} from "./interfaces/INodeCoordinator.sol";
import {IModelMarketplace} from "./interfaces/IModelMarketplace.sol";
import {IProofOfInference} from "./interfaces/IProofOfInference.sol";
import {IProofOfUse} from "./interfaces/IProofOfUse.sol";

/// @title ModelMarketplaceV2, JoyNet's model registry and request lifecycle (the deployed marketplace)
/// @notice Model owners register models (IPFS metadata, weights commitment, price, verification
/// policy, optional IOTA stream). A request's life:
/// 1. **Request**: the requester pays the model's price into escrow. Nobody is assigned yet:
///    whatever the request's own transaction can see (including `block.prevrandao`) would let a
///    requester contract revert until the draw suits it.
/// 2. **Assignment** ({assignNodes}, anyone, from the next block on): the {INodeCoordinator}
///    picks staked nodes by load, seeded by the hash of the request's block, which did not exist
///    while the request ran. Each node gets at least the model's response window.
/// 3. **Result**. One node: it submits its output commitment ({submitResult}; with a ZK proof
///    when the model has a circuit). k nodes: each first commits to a sealed result
///    ({commitResult}), and once all have committed, or the deadline has passed, each reveals
///    it ({revealResult}), so that no node can copy another's answer. Tolerant policy (outputs
///    that differ across hardware, such as a language model's): the first of the k nodes, the
///    generator, submits its result in the clear ({submitResult}); the other k - 1, the
///    validators, check it (re-running the model's prefill over it) and commit, then reveal,
///    a vote: the generator's output commitment to accept it, any other value to reject it.
/// 4. **Settlement**: an accepted result (the single node's, or one that a strict majority of
///    the k assigned nodes revealed) splits the fee between the nodes that produced it, the
///    model owner and the protocol treasury; nodes that stayed silent or dissented are slashed,
///    every slash going to the treasury, never to the requester. A request nobody served is
///    refunded; a quorum without a majority refunds all but the nodes' share of the fee, since
///    the requester holds the answers that were revealed. A tolerant request settles on the
///    generator's result when a strict majority of its validators accept it (the generator and
///    the accepting validators are paid, the others slashed); when a strict majority reject it,
///    the generator and the validators that accepted are slashed, each rejecting validator is
///    paid what it would have earned for an accept, and the requester gets the rest of the
///    escrow back less the nodes' share.
/// @dev Escrow and balances stay in this contract: its JOY balance is the escrow of open
/// requests, plus the balances it holds for accounts ({balances}: fees credited to nodes and
/// model owners, and requesters' deposits), plus the protocol's share of settled fees (the rest;
/// {protocolEarnings}), which is not credited per settlement because one fewer storage write per
/// request is worth it.
contract ModelMarketplaceV2 is IModelMarketplace, JoyGoverned, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint8 public constant MAX_QUORUM = 16;
    /// @notice Caps on the fee shares: the protocol never takes more than 20 %, the model owner
    /// never more than 50 %, and the nodes that did the work always get at least 30 %.
    uint16 public constant MAX_PROTOCOL_SHARE_BPS = 2_000;
    uint16 public constant MAX_OWNER_SHARE_BPS = 5_000;
    uint16 public constant MIN_NODE_SHARE_BPS = 3_000;
    uint64 public constant MIN_DEADLINE_WINDOW = 1 minutes;
    uint64 public constant MAX_DEADLINE_WINDOW = 30 days;
    /// @notice Hard floor of {minResponseWindow}: no vote can leave nodes less time than this to
    /// answer, so that no request can be made that no node could meet.
    uint32 public constant RESPONSE_WINDOW_FLOOR = 30 seconds;
    /// @notice Longest response window the network or a model may ask for.
    uint32 public constant MAX_RESPONSE_WINDOW = 1 days;
    /// @notice Bounds of {revealWindow}, the time quorum nodes get to reveal after the deadline.
    uint32 public constant MIN_REVEAL_WINDOW = 30 seconds;
    uint32 public constant MAX_REVEAL_WINDOW = 1 days;
    /// @dev Quorum requests: bits 0..15 of the mask mark committed slots, bits 16..31 revealed ones.
    uint256 private constant _REVEALED_OFFSET = 16;

    IERC20 private immutable _joy;
    // The order packs what one step reads into one slot: the coordinator with the windows
    // (every request), the usage ledger with the fee shares (every settlement).
    INodeCoordinator private _coordinator;
    uint64 private _maxDeadlineWindow;
    uint32 private _minResponseWindow;
    IProofOfUse private _proofOfUse;
    uint16 private _nodeShareBps;
    uint16 private _ownerShareBps;
    uint16 private _protocolShareBps;
    uint32 private _revealWindow;
    IProofOfInference private _proofOfInference;
    address private _treasury;

    /// @dev The three counters every request and settlement updates, in one slot (one write).
    struct Totals {
        uint64 requestCount;
        uint96 escrow; // escrow of open requests
        uint96 balances; // sum of {balances}: fees credited and deposits, not yet withdrawn or spent
    }

    Totals private _totals;
    mapping(bytes32 modelId => Model) private _models;
    /// @dev keccak256(abi.encode(request)) while the request is open; its final {Status} after.
    mapping(uint256 requestId => bytes32) private _requestDigests;
    /// @dev Quorum requests only: committed and revealed slots (see _REVEALED_OFFSET).
    mapping(uint256 requestId => uint256) private _submittedMasks;
    /// @dev Quorum requests only: slot i's sealed result, then the output it revealed.
    mapping(uint256 requestId => mapping(uint256 slot => bytes32)) private _results;
    /// @dev Model registration commitments, per committer (nobody can renew or spend another's):
    /// keccak256(abi.encode(modelId, owner, salt)) => the block it was committed in.
    mapping(address committer => mapping(bytes32 commitment => uint256 blockNumber)) private _modelCommitments;
    /// @dev See {balances}.
    mapping(address account => uint256) private _balances;
    /// @dev See {isOperator}.
    mapping(address account => mapping(address operator => bool)) private _operators;

    /// @param joy_ the JOY token
    /// @param initialOwner the deployer while wiring; the timelock afterwards
    /// @param treasury_ receives the protocol share (the timelock)
    /// @param feeSharesBps node, owner and protocol fee shares in basis points (sum 10,000)
    /// @param maxDeadlineWindow_ the latest deadline a request may set, in seconds from now
    /// @param windows the minimum response window and the reveal window, in seconds
    constructor(
        IERC20 joy_,
        address initialOwner,
        address treasury_,
        uint16[3] memory feeSharesBps,
        uint64 maxDeadlineWindow_,
        uint32[2] memory windows
    ) JoyGoverned(initialOwner) {
        _joy = joy_;
        _setTreasury(treasury_);
        _setFeeShares(feeSharesBps[0], feeSharesBps[1], feeSharesBps[2]);
        _setMaxDeadlineWindow(maxDeadlineWindow_);
        _setMinResponseWindow(windows[0]);
        _setRevealWindow(windows[1]);
    }

    // =====================================================================================
    // Model registry
    // =====================================================================================

    /// @notice First step of a registration: commits to keccak256(abi.encode(modelId, owner,
    /// salt)) without revealing the model id. {registerModel} from a later block reveals it; a
    /// front-runner who sees that transaction has no commitment of its own for the id and
    /// cannot take it. Commitments are kept per committer: nobody can renew another's.
    /// @param commitment keccak256(abi.encode(modelId, the future owner, a secret salt))
    function commitModelRegistration(bytes32 commitment) external {
        _modelCommitments[msg.sender][commitment] = block.number;
        emit ModelRegistrationCommitted(commitment, msg.sender);
    }

    /// @notice Registers a model owned by the caller, who committed to it in an earlier block
    /// ({commitModelRegistration}).
    /// @param modelId the model's identifier (e.g. keccak256 of its name)
    /// @param metadataURI `ipfs://<CID>` of the model's metadata JSON
    /// @param weightsCommitment commitment to the quantized weights (Poseidon hash for ZK models)
    /// @param price JOY wei per inference; 0 only together with an IOTA stream (feeless model)
    /// @param policy verification policy: quorum k (1..16), optional ZK circuit id, the
    /// response window its nodes need, at most one day (the network's minimum applies when it
    /// is shorter, 0 included), and whether the k nodes are one generator and k - 1 validators
    /// (tolerant: k >= 2, no circuit) rather than k nodes that must agree bit for bit
    /// @param iotaStreamId the model's IOTA channel id, or zero
    /// @param salt the salt of the registration commitment
    function registerModel(
        bytes32 modelId,
        string calldata metadataURI,
        bytes32 weightsCommitment,
        uint96 price,
        Policy calldata policy,
        bytes32 iotaStreamId,
        bytes32 salt
    ) external {
        if (_models[modelId].owner != address(0)) revert ModelMarketplaceModelExists(modelId);
        bytes32 commitment = keccak256(abi.encode(modelId, msg.sender, salt));
        uint256 committedAt = _modelCommitments[msg.sender][commitment];
        if (committedAt == 0 || committedAt >= block.number) {
            revert ModelMarketplaceRegistrationNotCommitted(modelId, msg.sender);
        }
        delete _modelCommitments[msg.sender][commitment];
        _checkMetadataURI(metadataURI);
        if (
            policy.quorum == 0 || policy.quorum > MAX_QUORUM
                || (policy.responseWindow != 0 && policy.responseWindow > MAX_RESPONSE_WINDOW)
        ) revert ModelMarketplaceInvalidPolicy(policy.quorum, policy.responseWindow);
        if (policy.tolerant && (policy.quorum < 2 || policy.circuitId != bytes32(0))) {
            revert ModelMarketplaceInvalidTolerantPolicy(policy.quorum, policy.circuitId);
        }
        if (price == 0 && iotaStreamId == bytes32(0)) revert ModelMarketplaceInvalidPrice(price, iotaStreamId);
        _models[modelId] = Model({
            owner: msg.sender,
            price: price,
            weightsCommitment: weightsCommitment,
            circuitId: policy.circuitId,
            quorum: policy.quorum,
            active: true,
            responseWindow: policy.responseWindow,
            tolerant: policy.tolerant,
            iotaStreamId: iotaStreamId,
            metadataURI: metadataURI
        });
        emit ModelRegistered(
            modelId,
            msg.sender,
            metadataURI,
            weightsCommitment,
            price,
            policy.quorum,
            policy.circuitId,
            iotaStreamId,
            policy.tolerant
        );
    }

    /// @notice Changes a model's price (model owner only). Zero only for a model with a stream.
    function updatePrice(bytes32 modelId, uint96 newPrice) external {
        Model storage model = _ownedModel(modelId);
        if (newPrice == 0 && model.iotaStreamId == bytes32(0)) {
            revert ModelMarketplaceInvalidPrice(newPrice, model.iotaStreamId);
        }
        emit ModelPriceUpdated(modelId, model.price, newPrice);
        model.price = newPrice;
    }

    /// @notice Points a model at new metadata (model owner only).
    function updateMetadata(bytes32 modelId, string calldata metadataURI) external {
        Model storage model = _ownedModel(modelId);
        _checkMetadataURI(metadataURI);
        model.metadataURI = metadataURI;
        emit ModelMetadataUpdated(modelId, metadataURI);
    }

    /// @notice Withdraws a model from the marketplace for good (model owner only); open requests
    /// still complete.
    function deactivateModel(bytes32 modelId) external {
        Model storage model = _ownedModel(modelId);
        if (!model.active) revert ModelMarketplaceModelInactive(modelId);
        model.active = false;
        emit ModelDeactivated(modelId);
    }

    /// @inheritdoc IModelMarketplace
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _models[modelId];
    }

    /// @notice The time a node assigned to `modelId` gets at least: the model's own window if
    /// it declared a longer one than the network's minimum.
    function responseWindowOf(bytes32 modelId) public view returns (uint256) {
        uint256 own = _models[modelId].responseWindow;
        uint256 floor = _minResponseWindow;
        return own > floor ? own : floor;
    }

    // =====================================================================================
    // Requests
    // =====================================================================================

    /// @notice Asks for an inference: the model's price moves into escrow (approve it first).
    /// Nodes are assigned from the next block on ({assignNodes}). The input travels off chain;
    /// the chain keeps its commitment.
    /// @param inputCommitment salted commitment to the input
    /// @param inputURI where the assigned nodes fetch the input (ipfs:// or a channel address)
    /// @param maxPrice the most the caller agrees to pay (the price may have changed)
    /// @param deadline unix time by which the result must be in: at least the model's response
    /// window from now (assignment moves it later if less is left by then)
    /// @return requestId the new request's id; the {InferenceRequested} event carries the
    /// {Request} that assignment, results, declines and closing pass back
    function requestInference(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline
    ) public nonReentrant returns (uint256) {
        return _openRequest(modelId, inputCommitment, inputURI, maxPrice, deadline, false);
    }

    /// @notice {requestInference} paid from the caller's {balances} entry ({deposit}s and fees
    /// earned) instead of a token transfer: a frequent requester deposits once, as with a
    /// Chainlink Functions subscription, and each request then costs about 20,000 gas less.
    function requestInferenceFromBalance(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline
    ) external nonReentrant returns (uint256) {
        return _openRequest(modelId, inputCommitment, inputURI, maxPrice, deadline, true);
    }

    /// @notice {requestInference} with an EIP-2612 permit for `maxPrice` instead of an approval.
    function requestInferenceWithPermit(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        // A front-run permit (already used) must not block the request: try it, then rely on
        // the allowance, as OpenZeppelin recommends.
        try IERC20Permit(address(_joy)).permit(msg.sender, address(this), maxPrice, permitDeadline, v, r, s) {} catch {}
        return requestInference(modelId, inputCommitment, inputURI, maxPrice, deadline);
    }

    /// @notice Moves `amount` JOY from the caller (approve it first) into `account`'s
    /// balance ({balances}), from which `account` pays requests with {requestInferenceFromBalance}
    /// and which it can withdraw at any time with {withdrawBalance}.
    function deposit(address account, uint256 amount) external nonReentrant {
        if (amount == 0) revert ModelMarketplaceZeroDeposit();
        if (account == address(0)) revert ModelMarketplaceZeroAddress();
        _credit(account, amount);
        _totals.balances += SafeCast.toUint96(amount);
        _joy.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(account, msg.sender, amount);
    }

    /// @notice Assigns the request's nodes. Anyone may call it (the nodes serving the model and
    /// the requester's client do), from the block after the request's and within 256 blocks of
    /// it: the draw is seeded by the hash of the request's block, which nobody knew while the
    /// request was made, and by nothing of the assigning transaction, so retrying it in other
    /// blocks draws the same way. If the model's eligibility set changed after the request's
    /// block, the hash of the block of that change seeds it instead (the draw reads the set).
    /// If less than the model's response window is left before the deadline, the deadline
    /// moves to now plus that window.
    /// @param request the open, unassigned request, as {InferenceRequested} announced it
    function assignNodes(Request calldata request) external nonReentrant {
        _checkOpen(request);
        if (request.nodes.length != 0) revert ModelMarketplaceAlreadyAssigned(request.id);
        _recordAssignment(
            request,
            INodeCoordinator(request.coordinator).assign(
                request.modelId, _models[request.modelId].quorum, _drawSeed(request)
            )
        );
    }

    /// @notice The nodes {assignNodes} would assign to the request now (a single node's draw
    /// reads the nodes' loads, so it holds until they change). A node serving a single-node
    /// model calls it to learn whether an unassigned request is its own to answer with
    /// {submitResult}, which then assigns it.
    /// @param request the open, unassigned request, as {InferenceRequested} announced it
    function drawnNodes(Request calldata request) external view returns (address[] memory) {
        _checkOpen(request);
        if (request.nodes.length != 0) revert ModelMarketplaceAlreadyAssigned(request.id);
        return INodeCoordinator(request.coordinator).draw(
            request.modelId, _models[request.modelId].quorum, _drawSeed(request)
        );
    }

    /// @notice {assignNodes} for several requests in one transaction, which shares its base cost
    /// among them (an edge agent assigns every pending request it sees at once). A request that
    /// cannot be assigned now (closed, already assigned, altered, seed not available, no eligible
    /// node) is skipped, so that nobody can void a batch by assigning one of its requests first.
    /// @param requests open, unassigned requests, as {InferenceRequested} announced them
    /// @return assigned how many of them were assigned
    function assignNodesBatch(Request[] calldata requests) external nonReentrant returns (uint256 assigned) {
        for (uint256 i = 0; i < requests.length; ++i) {
            Request calldata request = requests[i];
            if (request.nodes.length != 0 || _requestDigests[request.id] != keccak256(abi.encode(request))) continue;
            (, bytes32 seed) = _seed(request);
            if (seed == bytes32(0)) continue;
            try INodeCoordinator(request.coordinator).assign(
                request.modelId, _models[request.modelId].quorum, _assignmentSeed(seed, request.id)
            ) returns (address[] memory nodes) {
                _recordAssignment(request, nodes);
                ++assigned;
            } catch {}
        }
    }

    /// @notice The single assigned node of a request submits its result, which is accepted once
    /// its proof (if the model has a circuit) checks out: the fee is split and credited.
    /// A single-node request may also be submitted unassigned, by the node that {assignNodes}
    /// would assign now ({drawnNodes}): the draw, the assignment and the result then take one
    /// transaction instead of two. Quorum requests use {commitResult} and {revealResult}. The
    /// generator of a tolerant request (its first node) submits its result here too; it is then
    /// public, and its validators vote on it.
    /// @param request the open request, as {InferenceRequested} and {NodesAssigned} announced it
    /// @param outputCommitment commitment to the (quantized) output
    /// @param outputURI where the requester fetches the output
    /// @param proof ZK proof for ZK models, empty otherwise
    function submitResult(
        Request calldata request,
        bytes32 outputCommitment,
        string calldata outputURI,
        bytes calldata proof
    ) external nonReentrant {
        _submitResult(request, outputCommitment, outputURI, proof, false);
    }

    /// @notice Several results of single-node requests in one transaction: entry `i` is
    /// {submitResult}(`requests[i]`, `outputCommitments[i]`, `outputURIs[i]`, `proofs[i]`), with
    /// every one of its checks. All or nothing: the first entry that {submitResult} would refuse
    /// reverts the batch with that entry's error, so a node never believes a result landed that
    /// did not. Shares the transaction's base cost among the results.
    /// @param requests the open requests, as {InferenceRequested} and {NodesAssigned} announced them
    /// @param outputCommitments the results' output commitments
    /// @param outputURIs where the requesters fetch the outputs
    /// @param proofs ZK proofs for ZK models, empty otherwise
    function submitResults(
        Request[] calldata requests,
        bytes32[] calldata outputCommitments,
        string[] calldata outputURIs,
        bytes[] calldata proofs
    ) external nonReentrant {
        uint256 count = requests.length;
        if (outputCommitments.length != count || outputURIs.length != count || proofs.length != count) {
            revert ModelMarketplaceBatchLengthMismatch(count, outputCommitments.length, outputURIs.length, proofs.length);
        }
        bool proven = _checkProofsIfZK(requests);
        for (uint256 i = 0; i < count; ++i) {
            _submitResult(requests[i], outputCommitments[i], outputURIs[i], proofs[i], proven);
        }
    }

    /// @dev {submitResult}'s checks and effects, for one result; `proven`: its proof was
    /// already checked with the batch's ({_checkProofsIfZK}).
    function _submitResult(
        Request calldata request,
        bytes32 outputCommitment,
        string calldata outputURI,
        bytes calldata proof,
        bool proven
    ) private {
        _checkOpen(request);
        Model storage model = _models[request.modelId];
        address[] memory nodes = request.nodes;
        if (nodes.length == 0) {
            // Assigned with its result: the draw is the one {assignNodes} would make now, so the
            // submitting node gains nothing it could not get by assigning first.
            if (model.quorum != 1) revert ModelMarketplaceNotAssignedYet(request.id);
            nodes = INodeCoordinator(request.coordinator).assign(request.modelId, 1, _drawSeed(request));
            if (nodes[0] != msg.sender) revert ModelMarketplaceNotAssigned(request.id, msg.sender);
            // Announced as any assignment is: whoever rebuilds requests from events sees its node.
            emit NodesAssigned(request.id, request.deadline, nodes);
        } else if (nodes.length > 1 && model.tolerant) {
            _submitGeneration(request, outputCommitment, outputURI);
            return;
        } else {
            if (nodes.length != 1) revert ModelMarketplaceCommitRequired(request.id);
            if (nodes[0] != msg.sender) revert ModelMarketplaceNotAssigned(request.id, msg.sender);
        }
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(request.id, request.deadline);
        emit ResultSubmitted(request.id, msg.sender, outputCommitment, outputURI);
        if (!proven) _checkProofIfZK(request, model, outputCommitment, proof);
        _settle(request, model, outputCommitment, nodes);
    }

    /// @notice A node of a quorum request commits to its result before the deadline, without
    /// showing it: `sealedResult` = {sealResult}(request id, node, output commitment, salt).
    /// The reveals open once every assigned node has committed, or once the deadline passed.
    /// A validator of a tolerant request commits its vote the same way (the output commitment
    /// it accepts, or any other value to reject), once the generator has submitted and until
    /// {revealWindow} after the deadline; its reveals open then, or once every validator voted.
    /// @param request the open request, as {InferenceRequested} and {NodesAssigned} announced it
    function commitResult(Request calldata request, bytes32 sealedResult) external nonReentrant {
        _checkOpen(request);
        if (request.nodes.length < 2) revert ModelMarketplaceNotQuorum(request.id);
        bool tolerant = _models[request.modelId].tolerant;
        uint256 commitDeadline = _commitDeadline(request, tolerant);
        if (block.timestamp > commitDeadline) revert ModelMarketplaceDeadlinePassed(request.id, commitDeadline);
        uint256 slot = _assignedSlot(request, msg.sender);
        uint256 mask = _submittedMasks[request.id];
        if (tolerant) {
            if (slot == 0) revert ModelMarketplaceGeneratorSubmits(request.id);
            if (mask & 1 == 0) revert ModelMarketplaceNothingToValidate(request.id);
        }
        if (mask & (1 << slot) != 0) revert ModelMarketplaceAlreadySubmitted(request.id, msg.sender);
        mask |= 1 << slot;
        _submittedMasks[request.id] = mask;
        _results[request.id][slot] = sealedResult;
        emit ResultCommitted(request.id, msg.sender, _popcount(mask));
    }

    /// @notice A node of a quorum request reveals the result it committed to. When the last
    /// assigned node has revealed, the request is judged and closed at once.
    /// @param request the open request, as {InferenceRequested} and {NodesAssigned} announced it
    /// @param outputCommitment the committed output commitment
    /// @param salt the salt of the sealed result
    /// @param outputURI where the requester fetches the output
    /// @param proof ZK proof for ZK models, empty otherwise
    function revealResult(
        Request calldata request,
        bytes32 outputCommitment,
        bytes32 salt,
        string calldata outputURI,
        bytes calldata proof
    ) external nonReentrant {
        _checkOpen(request);
        (uint256 slot, uint256 mask) = _checkReveal(request, outputCommitment, salt);
        Model storage model = _models[request.modelId];
        _checkProofIfZK(request, model, outputCommitment, proof);
        _results[request.id][slot] = outputCommitment;
        mask |= 1 << (slot + _REVEALED_OFFSET);
        _submittedMasks[request.id] = mask;
        emit ResultSubmitted(request.id, msg.sender, outputCommitment, outputURI);
        if ((mask >> _REVEALED_OFFSET) == (1 << request.nodes.length) - 1) _judge(request, model, mask);
    }

    /// @dev {submitResult} by the generator of a tolerant request: its result is public at once
    /// (stored in slot 0, marked committed and revealed) and the validators vote on it.
    function _submitGeneration(Request calldata request, bytes32 outputCommitment, string calldata outputURI)
        private
    {
        if (request.nodes[0] != msg.sender) {
            _assignedSlot(request, msg.sender); // NotAssigned for a stranger
            revert ModelMarketplaceCommitRequired(request.id);
        }
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(request.id, request.deadline);
        uint256 mask = _submittedMasks[request.id];
        if (mask & 1 != 0) revert ModelMarketplaceAlreadySubmitted(request.id, msg.sender);
        _submittedMasks[request.id] = mask | 1 | (1 << _REVEALED_OFFSET);
        _results[request.id][0] = outputCommitment;
        emit ResultSubmitted(request.id, msg.sender, outputCommitment, outputURI);
    }

    /// @notice An assigned node declines a request it cannot serve (input fails the model's
    /// schema, cannot be fetched, is too large...). The requester is refunded at once with the
    /// reason; no node is slashed, since the input is what failed. Only before the deadline and
    /// before any result is in: otherwise a silent node could dodge its timeout slash, and a
    /// quorum node could cancel a request whose other nodes already committed.
    /// @param request the open request, as {InferenceRequested} and {NodesAssigned} announced it
    function declineRequest(Request calldata request, string calldata reason) external nonReentrant {
        _checkOpen(request);
        _assignedSlot(request, msg.sender);
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(request.id, request.deadline);
        if (_submittedMasks[request.id] != 0) revert ModelMarketplaceResultsSubmitted(request.id);
        emit RequestDeclined(request.id, msg.sender, reason);
        _refund(request, request.escrow, reason);
        _releaseAll(request);
    }

    /// @notice Closes a request that ended without an accepted result in time. Anyone may call
    /// it, after the deadline (quorum requests: after the reveal window that follows it;
    /// tolerant requests: after the validators' commit window and their reveal window).
    /// - Never assigned: the requester is refunded; nobody is slashed.
    /// - One node, silent: refunded; the node is slashed (to the treasury).
    /// - Quorum: judged on what was revealed. A strict majority of the assigned nodes behind
    ///   one output settles as usual (the silent and the dissenters slashed); otherwise the
    ///   silent are slashed and the requester gets the escrow back less the nodes' share if
    ///   any result was revealed.
    /// - Tolerant: a silent generator is slashed and the requester refunded; otherwise judged on
    ///   the validators' revealed votes (see the contract's description).
    /// @param request the open request, as {InferenceRequested} and {NodesAssigned} announced it
    function closeExpired(Request calldata request) external nonReentrant {
        _checkOpen(request);
        uint256 quorum = request.nodes.length;
        uint256 closableAfter = request.deadline;
        if (quorum > 1) closableAfter = _commitDeadline(request, _models[request.modelId].tolerant) + _revealWindow;
        if (block.timestamp <= closableAfter) revert ModelMarketplaceDeadlineNotPassed(request.id, closableAfter);
        if (quorum == 0) {
            _refund(request, request.escrow, "no node was assigned");
        } else if (quorum == 1) {
            _refund(request, request.escrow, "deadline passed");
            INodeCoordinator(request.coordinator).slash(request.nodes[0], address(0), true);
        } else {
            _judge(request, _models[request.modelId], _submittedMasks[request.id]);
        }
    }

    /// @notice The sealed result a quorum node commits to: it binds the request and the node,
    /// so that it can be neither replayed nor copied from another node's commitment.
    function sealResult(uint256 requestId, address node, bytes32 outputCommitment, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(requestId, node, outputCommitment, salt));
    }

    /// @inheritdoc IModelMarketplace
    function joy() external view returns (IERC20) {
        return _joy;
    }

    /// @inheritdoc IModelMarketplace
    function coordinator() external view returns (INodeCoordinator) {
        return _coordinator;
    }

    /// @inheritdoc IModelMarketplace
    function maxDeadlineWindow() external view returns (uint64) {
        return _maxDeadlineWindow;
    }

    /// @inheritdoc IModelMarketplace
    function minResponseWindow() external view returns (uint32) {
        return _minResponseWindow;
    }

    /// @inheritdoc IModelMarketplace
    function proofOfUse() external view returns (IProofOfUse) {
        return _proofOfUse;
    }

    /// @inheritdoc IModelMarketplace
    function nodeShareBps() external view returns (uint16) {
        return _nodeShareBps;
    }

    /// @inheritdoc IModelMarketplace
    function ownerShareBps() external view returns (uint16) {
        return _ownerShareBps;
    }

    /// @inheritdoc IModelMarketplace
    function protocolShareBps() external view returns (uint16) {
        return _protocolShareBps;
    }

    /// @inheritdoc IModelMarketplace
    function revealWindow() external view returns (uint32) {
        return _revealWindow;
    }

    /// @inheritdoc IModelMarketplace
    function proofOfInference() external view returns (IProofOfInference) {
        return _proofOfInference;
    }

    /// @inheritdoc IModelMarketplace
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IModelMarketplace
    function balances(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @inheritdoc IModelMarketplace
    function isOperator(address account, address operator) external view returns (bool) {
        return _operators[account][operator];
    }

    /// @notice Requests made so far (the last request id).
    function requestCount() external view returns (uint256) {
        return _totals.requestCount;
    }

    /// @notice Sum of the escrow of open requests.
    function totalEscrow() external view returns (uint256) {
        return _totals.escrow;
    }

    /// @notice Sum of {balances}: what the marketplace holds for accounts (fees and deposits).
    function totalBalances() external view returns (uint256) {
        return _totals.balances;
    }

    /// @notice The protocol's share of settled fees not yet sent to the treasury: everything the
    /// marketplace holds beyond escrow and {balances} (JOY sent here by mistake ends up there too).
    function protocolEarnings() public view returns (uint256) {
        Totals memory totals = _totals;
        return _joy.balanceOf(address(this)) - totals.escrow - totals.balances;
    }

    /// @notice Where a request stands.
    function requestStatus(uint256 requestId) public view returns (Status) {
        bytes32 digest = _requestDigests[requestId];
        if (digest == bytes32(0)) return Status.None;
        if (uint256(digest) <= uint256(type(Status).max)) return Status(uint256(digest));
        return Status.Open;
    }

    /// @notice The digest kept of an open request (zero, or its final {Status}, otherwise).
    function requestDigest(uint256 requestId) external view returns (bytes32) {
        return _requestDigests[requestId];
    }

    /// @notice The digest the chain keeps of an open request (what {Request} must hash to).
    function hashRequest(Request calldata request) external pure returns (bytes32) {
        return keccak256(abi.encode(request));
    }

    /// @notice Quorum requests: bit i set once assigned node i has committed, bit 16 + i once it
    /// has revealed.
    function submittedMask(uint256 requestId) external view returns (uint256) {
        return _submittedMasks[requestId];
    }

    /// @notice Quorum requests: node `slot`'s sealed result, or the output it revealed.
    function resultOf(uint256 requestId, uint256 slot) external view returns (bytes32) {
        return _results[requestId][slot];
    }

    /// @notice Allows (or disallows) `operator` to withdraw the caller's balance to the caller.
    function setOperator(address operator, bool approved) external {
        _operators[msg.sender][operator] = approved;
        emit OperatorSet(msg.sender, operator, approved);
    }

    /// @notice Pays `account` the JOY the marketplace holds for it. Only `account` or an
    /// operator it approved may call it: a deposit is there to pay requests, and nobody else may
    /// decide that it leaves.
    function withdrawBalance(address account) external nonReentrant {
        if (msg.sender != account && !_operators[account][msg.sender]) {
            revert ModelMarketplaceNotAuthorized(account, msg.sender);
        }
        uint256 amount = _balances[account];
        if (amount == 0) revert ModelMarketplaceNothingToWithdraw(account);
        _balances[account] = 0;
        _totals.balances -= uint96(amount);
        _joy.safeTransfer(account, amount);
        emit BalanceWithdrawn(account, amount);
    }

    /// @notice Sends {protocolEarnings} to the treasury. Anyone may trigger it.
    function withdrawProtocolEarnings() external nonReentrant {
        uint256 amount = protocolEarnings();
        if (amount == 0) revert ModelMarketplaceNothingToWithdraw(_treasury);
        _joy.safeTransfer(_treasury, amount);
        emit ProtocolEarningsWithdrawn(_treasury, amount);
    }

    // =====================================================================================
    // Governance
    // =====================================================================================

    /// @notice Sets the node / model owner / protocol split of every fee (sum 10,000 bps, caps
    /// in the constants). Governance only.
    function setFeeShares(uint16 newNodeShareBps, uint16 newOwnerShareBps, uint16 newProtocolShareBps)
        external
        onlyOwner
    {
        _setFeeShares(newNodeShareBps, newOwnerShareBps, newProtocolShareBps);
    }

    /// @notice Sets how far in the future a request's deadline may be. Governance only.
    function setMaxDeadlineWindow(uint64 window) external onlyOwner {
        _setMaxDeadlineWindow(window);
    }

    /// @notice Sets the least time an assigned node gets to answer, at least
    /// {RESPONSE_WINDOW_FLOOR}. Governance only.
    function setMinResponseWindow(uint32 window) external onlyOwner {
        _setMinResponseWindow(window);
    }

    /// @notice Sets the time quorum nodes get after the deadline to reveal. Governance only.
    function setRevealWindow(uint32 window) external onlyOwner {
        _setRevealWindow(window);
    }

    /// @notice Sets who receives the protocol share. Governance only.
    function setTreasury(address newTreasury) external onlyOwner {
        _setTreasury(newTreasury);
    }

    /// @notice Points the marketplace at its coordinator, judge and usage ledger (at wiring,
    /// or to upgrade one of them). Governance only. Open requests keep the coordinator that
    /// their {Request} names, so they close against the nodes and bonds they were assigned.
    function setComponents(INodeCoordinator coordinator_, IProofOfInference judge_, IProofOfUse usage_)
        external
        onlyOwner
    {
        if (address(coordinator_) == address(0) || address(judge_) == address(0) || address(usage_) == address(0)) {
            revert ModelMarketplaceZeroAddress();
        }
        _coordinator = coordinator_;
        _proofOfInference = judge_;
        _proofOfUse = usage_;
        emit ComponentsSet(address(coordinator_), address(judge_), address(usage_));
    }

    // ---- governance hand-over and feeless views ----

    /// @notice Hands governance of the marketplace to `newGovernor` (a new timelock after a DAO
    /// migration). Callable only by the current governance.
    function updateGovernance(address newGovernor) external onlyOwner {
        if (newGovernor == address(0)) revert ModelMarketplaceZeroAddress();
        emit GovernanceUpdated(owner(), newGovernor);
        _transferOwnership(newGovernor);
    }

    /// @notice True for a registered feeless model: price zero, served over its IOTA stream.
    function isFeeless(bytes32 modelId) external view returns (bool) {
        Model storage model = _models[modelId];
        return model.owner != address(0) && model.price == 0 && model.iotaStreamId != bytes32(0);
    }

    /// @notice The IOTA stream of a model (zero if it has none).
    function iotaStreamOf(bytes32 modelId) external view returns (bytes32) {
        return _models[modelId].iotaStreamId;
    }

    /// @notice The version of the marketplace's interface.
    function version() external pure returns (uint256) {
        return 2;
    }

    // =====================================================================================
    // Internals
    // =====================================================================================

    function _openRequest(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline,
        bool fromBalance
    ) private returns (uint256 requestId) {
        Model storage model = _activeModel(modelId);
        uint96 price = model.price;
        if (price == 0) revert ModelMarketplaceFeelessModel(modelId);
        if (price > maxPrice) revert ModelMarketplacePriceAboveMax(price, maxPrice);
        INodeCoordinator coordinator_ = _coordinator;
        _checkDeadline(deadline, model.responseWindow);
        Totals memory totals = _totals;
        requestId = ++totals.requestCount;
        totals.escrow += price;
        if (fromBalance) totals.balances -= _spendBalance(price);
        _totals = totals;
        if (!fromBalance) _joy.safeTransferFrom(msg.sender, address(this), price);
        Request memory request = Request({
            id: requestId,
            modelId: modelId,
            requester: msg.sender,
            escrow: price,
            inputCommitment: inputCommitment,
            deadline: deadline,
            seedBlock: uint64(block.number),
            coordinator: address(coordinator_),
            nodes: new address[](0)
        });
        _requestDigests[requestId] = keccak256(abi.encode(request));
        emit InferenceRequested(
            requestId, modelId, msg.sender, inputCommitment, inputURI, price, deadline, address(coordinator_)
        );
    }

    /// @dev The block whose hash seeds the request's draw, and that hash (zero while unknown, or
    /// after 256 blocks): the request's block, or the last block in which the model's
    /// eligibility set changed if that is later. The draw reads the set's order and size, so a
    /// node that reshuffles the set once it knows the request's seed only draws anew, blind.
    function _seed(Request calldata request) private view returns (uint256 seedBlock, bytes32 seed) {
        seedBlock = request.seedBlock;
        uint256 changed = INodeCoordinator(request.coordinator).eligibleChangedAt(request.modelId);
        if (changed > seedBlock) seedBlock = changed;
        if (seedBlock < block.number) seed = blockhash(seedBlock);
    }

    /// @dev The draw's only randomness: the hash of the seed block and the request's id.
    function _assignmentSeed(bytes32 seed, uint256 requestId) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, requestId)));
    }

    /// @dev The request's draw seed; reverts while its seed block's hash is unknown (or gone).
    function _drawSeed(Request calldata request) private view returns (uint256) {
        (uint256 seedBlock, bytes32 seed) = _seed(request);
        if (seed == bytes32(0)) revert ModelMarketplaceSeedNotAvailable(request.id, seedBlock);
        return _assignmentSeed(seed, request.id);
    }

    /// @dev Stores the assigned request's digest, its deadline moved to leave the response window.
    function _recordAssignment(Request calldata request, address[] memory nodes) private {
        uint256 earliest = block.timestamp + responseWindowOf(request.modelId);
        Request memory assigned = request;
        if (assigned.deadline < earliest) assigned.deadline = uint64(earliest);
        assigned.nodes = nodes;
        _requestDigests[request.id] = keccak256(abi.encode(assigned));
        emit NodesAssigned(request.id, assigned.deadline, nodes);
    }

    /// @dev Judges a quorum request on its revealed results and closes it (see {closeExpired}).
    /// Unrevealed and dissenting slots are slashed when a majority was found; without one only
    /// the unrevealed, as nobody can tell who was right.
    function _judge(Request calldata request, Model storage model, uint256 mask) private {
        if (model.tolerant) {
            _judgeVotes(request, model, mask);
            return;
        }
        uint256 revealed = mask >> _REVEALED_OFFSET;
        (bytes32[] memory outputs, bytes32[] memory revealedOutputs) = _collectResults(request, mask);
        (IProofOfInference.Verdict verdict, bytes32 accepted) =
            _proofOfInference.tally(request.nodes.length, revealedOutputs);
        if (verdict == IProofOfInference.Verdict.Accepted) {
            _settle(request, model, accepted, _sortOut(request, outputs, revealed, accepted));
            return;
        }
        _slashSilent(request, revealed);
        if (revealedOutputs.length == 0) {
            _refund(request, request.escrow, "no result was revealed");
        } else {
            // The requester has seen the revealed answers: the nodes' share of the fee is not
            // refunded (it stays with the protocol), so that forcing "no majority" is never free.
            _refund(request, request.escrow - _nodesShare(request), "no majority among the results");
        }
    }

    /// @dev Judges a tolerant request on its validators' revealed votes and closes it (see the
    /// contract's description). A validator earns the same for an accept and a reject that the
    /// majority shares, so that its vote pays nothing to bias; the nodes' share is never
    /// refunded once the generator's answer is public, as for a quorum without a majority.
    function _judgeVotes(Request calldata request, Model storage model, uint256 mask) private {
        uint256 revealed = mask >> _REVEALED_OFFSET;
        (bytes32[] memory votes,) = _collectResults(request, mask);
        uint256 refund = request.escrow;
        bool generated = revealed & 1 != 0;
        if (generated) {
            uint256 accepts;
            uint256 rejects;
            for (uint256 i = 1; i < votes.length; ++i) {
                if (revealed & (1 << i) == 0) continue;
                if (votes[i] == votes[0]) ++accepts;
                else ++rejects;
            }
            uint256 validators = votes.length - 1;
            if (accepts * 2 > validators) {
                // Validators that rejected or stayed silent are slashed like dissenters and the silent.
                _settle(request, model, votes[0], _sortOut(request, votes, revealed, votes[0]));
                return;
            }
            if (rejects * 2 > validators) {
                _reject(request, votes, revealed);
                return;
            }
            refund -= _nodesShare(request);
        }
        // Nothing generated, so nothing to vote on: the generator alone failed. No majority
        // either way: only the silent are to blame.
        if (!generated) revealed = (1 << votes.length) - 2; // every validator blameless
        _slashSilent(request, revealed);
        _refund(request, refund, generated ? "no majority among the validators" : "no result was submitted");
    }

    /// @dev A tolerant request whose validators rejected the generator's result by a strict
    /// majority: the generator and the validators that accepted are slashed (the silent too),
    /// each rejecting validator is paid its share as if all had accepted.
    function _reject(Request calldata request, bytes32[] memory votes, uint256 revealed) private {
        INodeCoordinator coordinator_ = INodeCoordinator(request.coordinator);
        uint256 nodesShare = _nodesShare(request);
        uint256 perValidator = nodesShare / request.nodes.length;
        uint256 credited;
        coordinator_.slash(request.nodes[0], address(0), false);
        for (uint256 i = 1; i < request.nodes.length; ++i) {
            bool silent = revealed & (1 << i) == 0;
            if (silent || votes[i] == votes[0]) {
                coordinator_.slash(request.nodes[i], address(0), silent);
            } else {
                _credit(request.nodes[i], perValidator);
                credited += perValidator;
                coordinator_.release(request.nodes[i]);
            }
        }
        _totals.balances += uint96(credited);
        _refund(request, request.escrow - nodesShare, "the validators rejected the result");
    }

    /// @dev Slashes the assigned nodes that revealed nothing (as silent) and releases the others.
    function _slashSilent(Request calldata request, uint256 revealed) private {
        INodeCoordinator coordinator_ = INodeCoordinator(request.coordinator);
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            if (revealed & (1 << i) == 0) coordinator_.slash(request.nodes[i], address(0), true);
            else coordinator_.release(request.nodes[i]);
        }
    }

    /// @dev The nodes' share of the request's fee.
    function _nodesShare(Request calldata request) private view returns (uint256) {
        return (uint256(request.escrow) * _nodeShareBps) / BASIS_POINTS;
    }

    /// @dev Reads (and deletes) a quorum request's results: `outputs[i]` is slot i's revealed
    /// output, `revealedOutputs` the same without the slots that revealed nothing (any value,
    /// zero included, is an output).
    function _collectResults(Request calldata request, uint256 mask)
        private
        returns (bytes32[] memory outputs, bytes32[] memory revealedOutputs)
    {
        uint256 quorum = request.nodes.length;
        outputs = new bytes32[](quorum);
        revealedOutputs = new bytes32[](quorum);
        uint256 count;
        for (uint256 i = 0; i < quorum; ++i) {
            if (mask & (1 << (i + _REVEALED_OFFSET)) != 0) {
                outputs[i] = _results[request.id][i];
                revealedOutputs[count++] = outputs[i];
            }
            if (mask & (1 << i) != 0) delete _results[request.id][i];
        }
        assembly ("memory-safe") {
            mstore(revealedOutputs, count) // shrink to the revealed outputs
        }
    }

    /// @dev Slashes the nodes that revealed nothing (missed deadline) or another output than the
    /// accepted one (dissent); returns the agreeing nodes.
    function _sortOut(Request calldata request, bytes32[] memory outputs, uint256 revealed, bytes32 accepted)
        private
        returns (address[] memory agreeing)
    {
        uint256 quorum = request.nodes.length;
        INodeCoordinator coordinator_ = INodeCoordinator(request.coordinator);
        agreeing = new address[](quorum);
        uint256 n;
        for (uint256 i = 0; i < quorum; ++i) {
            bool silent = revealed & (1 << i) == 0;
            if (!silent && outputs[i] == accepted) agreeing[n++] = request.nodes[i];
            else coordinator_.slash(request.nodes[i], address(0), silent);
        }
        assembly ("memory-safe") {
            mstore(agreeing, n) // shrink to the agreeing nodes
        }
    }

    /// @dev Closes the request as settled: credits the agreeing nodes' and the owner's parts of
    /// the fee, frees the agreeing nodes' bonds and reports the usage, weighted by the part of
    /// the fee the protocol keeps (what a requester dealing with itself can never get back).
    function _settle(Request calldata request, Model storage model, bytes32 accepted, address[] memory agreeing)
        private
    {
        _close(request, Status.Settled);
        address modelOwner = model.owner;
        uint256 fee = request.escrow;
        uint256 ownerPaid = (fee * _ownerShareBps) / BASIS_POINTS;
        uint256 perNode = (fee * _nodeShareBps) / BASIS_POINTS / agreeing.length;
        uint256 nodesPaid = perNode * agreeing.length;
        // Rounding dust goes to the protocol, so the three parts always add up to the fee.
        uint256 protocolPaid = fee - nodesPaid - ownerPaid;
        Totals memory totals = _totals;
        totals.escrow -= request.escrow;
        // The protocol's part stays in the contract as {protocolEarnings}; the rest is credited.
        totals.balances += uint96(nodesPaid + ownerPaid);
        _totals = totals;
        INodeCoordinator coordinator_ = INodeCoordinator(request.coordinator);
        for (uint256 i = 0; i < agreeing.length; ++i) {
            _credit(agreeing[i], perNode);
            coordinator_.release(agreeing[i]);
        }
        _credit(modelOwner, ownerPaid);
        _proofOfUse.recordUsage(request.modelId, modelOwner, agreeing, protocolPaid);
        emit InferenceSettled(request.id, accepted, nodesPaid, ownerPaid, protocolPaid);
    }

    /// @dev For a model with a circuit, reverts unless `proof` proves `outputCommitment` for
    /// this model, the request's input, the request and the caller.
    function _checkProofIfZK(Request calldata request, Model storage model, bytes32 outputCommitment, bytes calldata proof)
        private
        view
    {
        bytes32 circuitId = model.circuitId;
        if (circuitId == bytes32(0)) return;
        _proofOfInference.checkProof(
            IProofOfInference.ResultContext({
                requestId: request.id,
                node: msg.sender,
                weightsCommitment: model.weightsCommitment,
                inputCommitment: request.inputCommitment,
                circuitId: circuitId
            }),
            outputCommitment,
            proof
        );
    }

    /// @dev A batch of two or more results of one ZK model (called by {submitResults} only: it
    /// forwards that call's calldata): reverts unless every proof proves its entry's output for
    /// this model, the entry's request and input, and the caller, checked in one
    /// {IProofOfInference-checkResults} call (one pairing check when the circuit has a batch
    /// verifier). False, checking nothing, for any other batch: its entries are checked one by one.
    function _checkProofsIfZK(Request[] calldata requests) private view returns (bool) {
        uint256 count = requests.length;
        if (count < 2) return false;
        bytes32 modelId = requests[0].modelId;
        Model storage model = _models[modelId];
        bytes32 circuitId = model.circuitId;
        if (circuitId == bytes32(0)) return false;
        for (uint256 i = 1; i < count; ++i) {
            if (requests[i].modelId != modelId) return false;
        }
        bytes32 weights = model.weightsCommitment;
        address judge = address(_proofOfInference);
        bytes4 selector = IProofOfInference.checkResults.selector;
        // checkResults(node, weights, circuit, <submitResults' four arguments>): the three words
        // first, then this call's arguments as they are, their four head offsets (relative to
        // the arguments' start) moved past the three words. The judge's revert is passed on.
        assembly ("memory-safe") {
            let data := mload(0x40)
            let size := sub(calldatasize(), 4)
            mstore(data, selector)
            mstore(add(data, 4), caller())
            mstore(add(data, 36), weights)
            mstore(add(data, 68), circuitId)
            let args := add(data, 100)
            calldatacopy(args, 4, size)
            for { let i := 0 } lt(i, 4) { i := add(i, 1) } {
                let head := add(args, shl(5, i))
                mstore(head, add(mload(head), 96))
            }
            if iszero(staticcall(gas(), judge, data, add(size, 100), 0, 0)) {
                returndatacopy(data, 0, returndatasize())
                revert(data, returndatasize())
            }
        }
        return true;
    }

    /// @dev Reverts unless the caller may reveal `outputCommitment` now: an assigned node of a
    /// quorum request that committed to exactly this result and has not revealed it, once every
    /// node has committed or the deadline passed, and before the reveal window closes.
    function _checkReveal(Request calldata request, bytes32 outputCommitment, bytes32 salt)
        private
        view
        returns (uint256 slot, uint256 mask)
    {
        slot = _assignedSlot(request, msg.sender);
        uint256 quorum = request.nodes.length;
        if (quorum < 2) revert ModelMarketplaceNotQuorum(request.id);
        mask = _submittedMasks[request.id];
        if (mask & (1 << slot) == 0) revert ModelMarketplaceNotCommitted(request.id, msg.sender);
        if (mask & (1 << (slot + _REVEALED_OFFSET)) != 0) {
            revert ModelMarketplaceAlreadySubmitted(request.id, msg.sender);
        }
        uint256 everyone = (1 << quorum) - 1;
        uint256 commitDeadline = _commitDeadline(request, _models[request.modelId].tolerant);
        if (mask & everyone != everyone && block.timestamp <= commitDeadline) {
            revert ModelMarketplaceRevealNotOpen(request.id);
        }
        uint256 revealDeadline = commitDeadline + _revealWindow;
        if (block.timestamp > revealDeadline) revert ModelMarketplaceRevealClosed(request.id, revealDeadline);
        if (_results[request.id][slot] != sealResult(request.id, msg.sender, outputCommitment, salt)) {
            revert ModelMarketplaceRevealMismatch(request.id, msg.sender);
        }
    }

    /// @dev The last moment a node of a quorum request may commit: the deadline, or for a
    /// tolerant request's validators {revealWindow} later, their time to check the generator's
    /// result submitted by the deadline. The reveals close {revealWindow} after it.
    function _commitDeadline(Request calldata request, bool tolerant) private view returns (uint256) {
        return tolerant ? uint256(request.deadline) + _revealWindow : request.deadline;
    }

    /// @dev A deadline leaves at least the response window (so that no request is made that no
    /// node could meet) and at most {maxDeadlineWindow}.
    function _checkDeadline(uint64 deadline, uint32 modelWindow) private view {
        uint256 window = modelWindow > _minResponseWindow ? modelWindow : _minResponseWindow;
        uint256 earliest = block.timestamp + window;
        uint256 latest = block.timestamp + _maxDeadlineWindow;
        if (deadline < earliest || deadline > latest) {
            revert ModelMarketplaceInvalidDeadline(deadline, earliest, latest);
        }
    }

    /// @dev Takes `price` from the caller's balance; returns it for the totals.
    function _spendBalance(uint96 price) private returns (uint96) {
        uint256 balance = _balances[msg.sender];
        if (balance < price) revert ModelMarketplaceInsufficientBalance(msg.sender, balance, price);
        _balances[msg.sender] = balance - price;
        return price;
    }

    function _credit(address account, uint256 amount) private {
        if (amount != 0) _balances[account] += amount;
    }

    /// @dev Closes the request as refunded and pays `amount` (at most its escrow) back; what is
    /// kept of the escrow stays as {protocolEarnings}.
    function _refund(Request calldata request, uint256 amount, string memory reason) private {
        _close(request, Status.Refunded);
        _totals.escrow -= request.escrow;
        _joy.safeTransfer(request.requester, amount);
        emit InferenceRefunded(request.id, request.requester, amount, reason);
    }

    /// @dev The digest slot keeps the final status, so a closed request can never be reopened
    /// or closed again; a quorum request's mask is cleared (its results are cleared by _judge).
    function _close(Request calldata request, Status status) private {
        _requestDigests[request.id] = bytes32(uint256(status));
        if (request.nodes.length > 1) delete _submittedMasks[request.id];
    }

    function _releaseAll(Request calldata request) private {
        INodeCoordinator coordinator_ = INodeCoordinator(request.coordinator);
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            coordinator_.release(request.nodes[i]);
        }
    }

    function _assignedSlot(Request calldata request, address node) private pure returns (uint256) {
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            if (request.nodes[i] == node) return i;
        }
        revert ModelMarketplaceNotAssigned(request.id, node);
    }

    function _popcount(uint256 bits) private pure returns (uint256 count) {
        for (; bits != 0; bits &= bits - 1) ++count;
    }

    /// @dev Reverts unless `request` is an open request exactly as it was made (and assigned).
    function _checkOpen(Request calldata request) private view {
        bytes32 digest = _requestDigests[request.id];
        if (digest == keccak256(abi.encode(request))) return;
        Status status = requestStatus(request.id);
        if (status == Status.None) revert ModelMarketplaceUnknownRequest(request.id);
        if (status != Status.Open) revert ModelMarketplaceRequestClosed(request.id, status);
        revert ModelMarketplaceRequestMismatch(request.id);
    }

    function _ownedModel(bytes32 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (model.owner == address(0)) revert ModelMarketplaceUnknownModel(modelId);
        if (model.owner != msg.sender) revert ModelMarketplaceNotModelOwner(modelId, msg.sender);
    }

    function _activeModel(bytes32 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (model.owner == address(0)) revert ModelMarketplaceUnknownModel(modelId);
        if (!model.active) revert ModelMarketplaceModelInactive(modelId);
    }

    function _checkMetadataURI(string calldata uri) private pure {
        bytes calldata raw = bytes(uri);
        if (raw.length <= 7 || bytes7(raw[:7]) != bytes7("ipfs://")) revert ModelMarketplaceInvalidMetadataURI();
    }

    function _setFeeShares(uint16 newNodeShareBps, uint16 newOwnerShareBps, uint16 newProtocolShareBps) private {
        if (
            uint256(newNodeShareBps) + newOwnerShareBps + newProtocolShareBps != BASIS_POINTS
                || newProtocolShareBps > MAX_PROTOCOL_SHARE_BPS || newOwnerShareBps > MAX_OWNER_SHARE_BPS
                || newNodeShareBps < MIN_NODE_SHARE_BPS
        ) revert ModelMarketplaceInvalidFeeShares(newNodeShareBps, newOwnerShareBps, newProtocolShareBps);
        (_nodeShareBps, _ownerShareBps, _protocolShareBps) = (newNodeShareBps, newOwnerShareBps, newProtocolShareBps);
        emit FeeSharesSet(newNodeShareBps, newOwnerShareBps, newProtocolShareBps);
    }

    function _setMaxDeadlineWindow(uint64 window) private {
        if (window < MIN_DEADLINE_WINDOW || window > MAX_DEADLINE_WINDOW) {
            revert ModelMarketplaceParameterOutOfBounds(
                "maxDeadlineWindow", window, MIN_DEADLINE_WINDOW, MAX_DEADLINE_WINDOW
            );
        }
        emit MaxDeadlineWindowSet(_maxDeadlineWindow, window);
        _maxDeadlineWindow = window;
    }

    function _setMinResponseWindow(uint32 window) private {
        if (window < RESPONSE_WINDOW_FLOOR || window > MAX_RESPONSE_WINDOW) {
            revert ModelMarketplaceParameterOutOfBounds(
                "minResponseWindow", window, RESPONSE_WINDOW_FLOOR, MAX_RESPONSE_WINDOW
            );
        }
        emit MinResponseWindowSet(_minResponseWindow, window);
        _minResponseWindow = window;
    }

    function _setRevealWindow(uint32 window) private {
        if (window < MIN_REVEAL_WINDOW || window > MAX_REVEAL_WINDOW) {
            revert ModelMarketplaceParameterOutOfBounds("revealWindow", window, MIN_REVEAL_WINDOW, MAX_REVEAL_WINDOW);
        }
        emit RevealWindowSet(_revealWindow, window);
        _revealWindow = window;
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ModelMarketplaceZeroAddress();
        emit TreasurySet(_treasury, newTreasury);
        _treasury = newTreasury;
    }
}
