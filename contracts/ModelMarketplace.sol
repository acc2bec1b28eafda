// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {INodeCoordinator} from "./interfaces/INodeCoordinator.sol";
import {IProofOfInference} from "./interfaces/IProofOfInference.sol";
import {IProofOfUse} from "./interfaces/IProofOfUse.sol";

/// @title ModelMarketplace, JoyNet's model registry and request lifecycle
/// @notice Model owners register models (IPFS metadata, weights commitment, price, verification
/// policy, optional IOTA stream). Requesters pay a model's price into escrow; the
/// {INodeCoordinator} assigns staked nodes; nodes submit output commitments that
/// {IProofOfInference} judges; an accepted result splits the fee between the nodes, the model
/// owner and the protocol treasury (credited here, withdrawn by each party); a request nobody
/// served by its deadline is refunded in full and the silent nodes are slashed.
/// @dev Escrow and earnings stay in this contract: its JOY balance is the escrow of open
/// requests, plus the balances it holds for accounts ({earnings}: fees credited to nodes and
/// model owners, and requesters' deposits), plus the protocol's share of
/// settled fees (the rest; {protocolEarnings}), which is not credited per settlement because one
/// fewer storage write per request is worth it.
contract ModelMarketplace is JoyGoverned, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice How a model's results are verified.
    struct Policy {
        uint8 quorum; // k distinct assigned nodes must agree (1..MAX_QUORUM)
        bytes32 circuitId; // nonzero: each result carries a ZK proof for this circuit
    }

    struct Model {
        address owner; // slot 0
        uint96 price; //   (per inference, JOY wei; 0 only for feeless models)
        bytes32 weightsCommitment; // slot 1
        bytes32 circuitId; // slot 2
        uint8 quorum; // slot 3
        bool active;
        bytes32 iotaStreamId; // slot 4 (nonzero: the model has an IOTA channel)
        string metadataURI; // slot 5 (ipfs://...)
    }

    /// @notice Where a request stands: open until a result is accepted (Settled) or the escrow
    /// goes back to the requester (Refunded).
    enum Status {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @notice A request as the chain committed to it. Only its digest is stored; the nodes, the
    /// requester and anyone closing it pass it back from the {InferenceRequested} event (the
    /// pattern of Chainlink Functions' request commitments): one storage slot per request
    /// instead of four, the largest part of a request's gas.
    struct Request {
        uint256 id;
        bytes32 modelId;
        address requester;
        uint96 escrow;
        bytes32 inputCommitment;
        uint64 deadline;
        address[] nodes; // the assigned nodes; the quorum is their number
    }

    uint8 public constant MAX_QUORUM = 16;
    uint16 public constant BPS = 10_000;
    /// @notice Caps on the fee shares: the protocol never takes more than 20 %, the model owner
    /// never more than 50 %, and the nodes that did the work always get at least 30 %.
    uint16 public constant MAX_PROTOCOL_SHARE_BPS = 2_000;
    uint16 public constant MAX_OWNER_SHARE_BPS = 5_000;
    uint16 public constant MIN_NODE_SHARE_BPS = 3_000;
    uint64 public constant MIN_DEADLINE_WINDOW = 1 minutes;
    uint64 public constant MAX_DEADLINE_WINDOW = 30 days;

    IERC20 public immutable joy;
    // The order packs what one step reads into one slot: the coordinator with the deadline
    // window (every request), the usage ledger with the fee shares (every settlement).
    INodeCoordinator public coordinator;
    /// @notice The latest deadline a request may set, counted from the request's block.
    uint64 public maxDeadlineWindow;
    IProofOfUse public proofOfUse;
    uint16 public nodeShareBps;
    uint16 public ownerShareBps;
    uint16 public protocolShareBps;
    IProofOfInference public proofOfInference;
    address public treasury;

    /// @dev The three counters every request and settlement updates, in one slot (one write).
    struct Totals {
        uint64 requestCount;
        uint96 escrow; // escrow of open requests
        uint96 earnings; // sum of {earnings}: fees credited and deposits, not yet withdrawn or spent
    }

    Totals private _totals;
    mapping(bytes32 modelId => Model) internal _models;
    /// @dev keccak256(abi.encode(request)) while the request is open; its final {Status} after.
    mapping(uint256 requestId => bytes32) private _requestDigests;
    /// @dev Quorum requests only: bit i set once assigned node i has submitted.
    mapping(uint256 requestId => uint256) private _submittedMasks;
    /// @notice JOY the marketplace holds for an account: fees credited to nodes and model owners,
    /// and {deposit}s. Withdrawn with {withdrawEarnings}; spent by {requestInferenceFromBalance}.
    mapping(address account => uint256) public earnings;

    // ---- errors ----
    error ModelMarketplaceModelExists(bytes32 modelId);
    error ModelMarketplaceUnknownModel(bytes32 modelId);
    error ModelMarketplaceModelInactive(bytes32 modelId);
    error ModelMarketplaceNotModelOwner(bytes32 modelId, address caller);
    error ModelMarketplaceInvalidMetadataURI();
    error ModelMarketplaceInvalidPolicy(uint8 quorum);
    error ModelMarketplaceInvalidPrice(uint96 price, bytes32 iotaStreamId);
    error ModelMarketplaceFeelessModel(bytes32 modelId);
    error ModelMarketplacePriceAboveMax(uint256 price, uint256 maxPrice);
    error ModelMarketplaceInvalidDeadline(uint256 deadline, uint256 earliest, uint256 latest);
    error ModelMarketplaceUnknownRequest(uint256 requestId);
    error ModelMarketplaceRequestMismatch(uint256 requestId);
    error ModelMarketplaceRequestClosed(uint256 requestId, Status status);
    error ModelMarketplaceDeadlinePassed(uint256 requestId, uint256 deadline);
    error ModelMarketplaceDeadlineNotPassed(uint256 requestId, uint256 deadline);
    error ModelMarketplaceNotAssigned(uint256 requestId, address caller);
    error ModelMarketplaceAlreadySubmitted(uint256 requestId, address node);
    error ModelMarketplaceResultsSubmitted(uint256 requestId);
    error ModelMarketplaceNothingToWithdraw(address account);
    error ModelMarketplaceInsufficientBalance(address account, uint256 balance, uint256 price);
    error ModelMarketplaceZeroDeposit();
    error ModelMarketplaceParameterOutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    error ModelMarketplaceInvalidFeeShares(uint16 nodeShareBps, uint16 ownerShareBps, uint16 protocolShareBps);
    error ModelMarketplaceZeroAddress();

    // ---- events ----
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        string metadataURI,
        bytes32 weightsCommitment,
        uint96 price,
        uint8 quorum,
        bytes32 circuitId,
        bytes32 iotaStreamId
    );
    event ModelPriceUpdated(bytes32 indexed modelId, uint96 oldPrice, uint96 newPrice);
    event ModelMetadataUpdated(bytes32 indexed modelId, string metadataURI);
    event ModelDeactivated(bytes32 indexed modelId);
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        bytes32 inputCommitment,
        string inputURI,
        uint256 price,
        uint64 deadline,
        address[] nodes
    );
    event ResultSubmitted(uint256 indexed requestId, address indexed node, bytes32 outputCommitment, string outputURI);
    event InferenceSettled(
        uint256 indexed requestId, bytes32 outputCommitment, uint256 nodesPaid, uint256 ownerPaid, uint256 protocolPaid
    );
    event InferenceRefunded(uint256 indexed requestId, address indexed requester, uint256 amount, string reason);
    event RequestDeclined(uint256 indexed requestId, address indexed node, string reason);
    event EarningsWithdrawn(address indexed account, uint256 amount);
    event Deposited(address indexed account, address indexed from, uint256 amount);
    event ProtocolEarningsWithdrawn(address indexed treasury, uint256 amount);
    event FeeSharesSet(uint16 nodeShareBps, uint16 ownerShareBps, uint16 protocolShareBps);
    event MaxDeadlineWindowSet(uint64 oldWindow, uint64 newWindow);
    event TreasurySet(address indexed oldTreasury, address indexed newTreasury);
    event ComponentsSet(address coordinator, address proofOfInference, address proofOfUse);

    /// @param joy_ the JOY token
    /// @param initialOwner the deployer while wiring; the timelock afterwards
    /// @param treasury_ receives the protocol share (the timelock)
    /// @param shares node, owner and protocol fee shares in basis points (sum 10,000)
    /// @param maxDeadlineWindow_ the latest deadline a request may set, in seconds from now
    constructor(
        IERC20 joy_,
        address initialOwner,
        address treasury_,
        uint16[3] memory shares,
        uint64 maxDeadlineWindow_
    ) JoyGoverned(initialOwner) {
        joy = joy_;
        _setTreasury(treasury_);
        _setFeeShares(shares[0], shares[1], shares[2]);
        _setMaxDeadlineWindow(maxDeadlineWindow_);
    }

    // =====================================================================================
    // Model registry
    // =====================================================================================

    /// @notice Registers a model owned by the caller.
    /// @param modelId the model's identifier (e.g. keccak256 of its name)
    /// @param metadataURI `ipfs://<CID>` of the model's metadata JSON
    /// @param weightsCommitment commitment to the quantized weights (Poseidon hash for ZK models)
    /// @param price JOY wei per inference; 0 only together with an IOTA stream (feeless model)
    /// @param policy verification policy: quorum k (1..16) and optional ZK circuit id
    /// @param iotaStreamId the model's IOTA channel id, or zero
    function registerModel(
        bytes32 modelId,
        string calldata metadataURI,
        bytes32 weightsCommitment,
        uint96 price,
        Policy calldata policy,
        bytes32 iotaStreamId
    ) external {
        if (_models[modelId].owner != address(0)) revert ModelMarketplaceModelExists(modelId);
        _checkMetadataURI(metadataURI);
        if (policy.quorum == 0 || policy.quorum > MAX_QUORUM) revert ModelMarketplaceInvalidPolicy(policy.quorum);
        if (price == 0 && iotaStreamId == bytes32(0)) revert ModelMarketplaceInvalidPrice(price, iotaStreamId);
        _models[modelId] = Model({
            owner: msg.sender,
            price: price,
            weightsCommitment: weightsCommitment,
            circuitId: policy.circuitId,
            quorum: policy.quorum,
            active: true,
            iotaStreamId: iotaStreamId,
            metadataURI: metadataURI
        });
        emit ModelRegistered(
            modelId, msg.sender, metadataURI, weightsCommitment, price, policy.quorum, policy.circuitId, iotaStreamId
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

    /// @notice A registered model.
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _models[modelId];
    }

    // =====================================================================================
    // Requests
    // =====================================================================================

    /// @notice Asks for an inference: the model's price moves into escrow (approve it first) and
    /// nodes are assigned. The input travels off chain; the chain keeps its commitment.
    /// @param inputCommitment salted commitment to the input
    /// @param inputURI where the assigned nodes fetch the input (ipfs:// or a channel address)
    /// @param maxPrice the most the caller agrees to pay (the price may have changed)
    /// @param deadline unix time by which the result must be in
    /// @return requestId the new request's id; the {InferenceRequested} event carries the
    /// {Request} that results, declines and closing pass back
    function requestInference(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline
    ) public nonReentrant returns (uint256) {
        return _openRequest(modelId, inputCommitment, inputURI, maxPrice, deadline, false);
    }

    /// @notice {requestInference} paid from the caller's {earnings} balance ({deposit}s and fees
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

    /// @notice Moves `amount` JOY from the caller (approve it first) into `account`'s
    /// {earnings} balance, from which `account` pays requests with {requestInferenceFromBalance}
    /// and which it can withdraw at any time with {withdrawEarnings}.
    function deposit(address account, uint256 amount) external nonReentrant {
        if (amount == 0) revert ModelMarketplaceZeroDeposit();
        if (account == address(0)) revert ModelMarketplaceZeroAddress();
        _credit(account, amount);
        _totals.earnings += SafeCast.toUint96(amount);
        joy.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(account, msg.sender, amount);
    }

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
        _checkDeadline(deadline);
        Totals memory totals = _totals;
        requestId = ++totals.requestCount;
        totals.escrow += price;
        if (fromBalance) totals.earnings -= _spendBalance(price);
        _totals = totals;
        if (!fromBalance) joy.safeTransferFrom(msg.sender, address(this), price);
        Request memory request = Request({
            id: requestId,
            modelId: modelId,
            requester: msg.sender,
            escrow: price,
            inputCommitment: inputCommitment,
            deadline: deadline,
            nodes: coordinator.assign(modelId, model.quorum, requestId)
        });
        _requestDigests[requestId] = keccak256(abi.encode(request));
        emit InferenceRequested(
            requestId, modelId, msg.sender, inputCommitment, inputURI, price, deadline, request.nodes
        );
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
        try IERC20Permit(address(joy)).permit(msg.sender, address(this), maxPrice, permitDeadline, v, r, s) {} catch {}
        return requestInference(modelId, inputCommitment, inputURI, maxPrice, deadline);
    }

    /// @notice An assigned node submits its result; once a result is accepted under the model's
    /// policy, the fee is split and credited.
    /// @param request the open request, as {InferenceRequested} announced it
    /// @param outputCommitment commitment to the (quantized) output
    /// @param outputURI where the requester fetches the output
    /// @param proof ZK proof for ZK models, empty otherwise
    function submitResult(
        Request calldata request,
        bytes32 outputCommitment,
        string calldata outputURI,
        bytes calldata proof
    ) external nonReentrant {
        _checkOpen(request);
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(request.id, request.deadline);
        uint256 slot = _assignedSlot(request, msg.sender);
        emit ResultSubmitted(request.id, msg.sender, outputCommitment, outputURI);
        Model storage model = _models[request.modelId];
        bytes32 circuitId = model.circuitId;
        if (request.nodes.length == 1) {
            // A single node: its result is the result once its proof (if the model has a circuit)
            // checks out. Nothing for the judge to record, so it is only asked to verify.
            if (circuitId != bytes32(0)) {
                proofOfInference.checkProof(_resultContext(request, model, circuitId), outputCommitment, proof);
            }
            _settle(request, model, outputCommitment, new address[](0));
            return;
        }
        _markSubmitted(request.id, slot);
        (IProofOfInference.Verdict verdict, bytes32 accepted, address[] memory dissenters) =
            proofOfInference.judge(_resultContext(request, model, circuitId), outputCommitment, proof);
        if (verdict == IProofOfInference.Verdict.Accepted) {
            _settle(request, model, accepted, dissenters);
        } else if (verdict == IProofOfInference.Verdict.Rejected) {
            _refund(request, "no majority among the results");
            _releaseAll(request);
        }
    }

    /// @notice An assigned node declines a request it cannot serve (input fails the model's
    /// schema, cannot be fetched, is too large...). The requester is refunded at once with the
    /// reason; no node is slashed, since the input is what failed. Only before the deadline and
    /// before any result is in: otherwise a silent node could dodge its timeout slash, and a
    /// quorum node about to lose the vote could cancel the request and its own slash.
    /// @param request the open request, as {InferenceRequested} announced it
    function declineRequest(Request calldata request, string calldata reason) external nonReentrant {
        _checkOpen(request);
        _assignedSlot(request, msg.sender);
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(request.id, request.deadline);
        if (_submittedMasks[request.id] != 0) revert ModelMarketplaceResultsSubmitted(request.id);
        emit RequestDeclined(request.id, msg.sender, reason);
        _refund(request, reason);
        _releaseAll(request);
    }

    /// @notice Closes a request whose deadline passed without an accepted result: the requester
    /// gets the escrow back and a share of the silent nodes' slashed bonds. Anyone may call it.
    /// @param request the open request, as {InferenceRequested} announced it
    function closeExpired(Request calldata request) external nonReentrant {
        _checkOpen(request);
        if (block.timestamp <= request.deadline) revert ModelMarketplaceDeadlineNotPassed(request.id, request.deadline);
        uint256 submitted = _submittedMasks[request.id];
        _refund(request, "deadline passed");
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            if (submitted & (1 << i) != 0) coordinator.release(request.nodes[i]);
            else coordinator.slash(request.nodes[i], request.requester, true);
        }
    }

    /// @notice Requests made so far (the last request id).
    function requestCount() external view returns (uint256) {
        return _totals.requestCount;
    }

    /// @notice Sum of the escrow of open requests.
    function totalEscrow() external view returns (uint256) {
        return _totals.escrow;
    }

    /// @notice Sum of {earnings}: what the marketplace holds for accounts (fees and deposits).
    function totalEarnings() external view returns (uint256) {
        return _totals.earnings;
    }

    /// @notice The protocol's share of settled fees not yet sent to the treasury: everything the
    /// marketplace holds beyond escrow and {earnings} (JOY sent here by mistake ends up there too).
    function protocolEarnings() public view returns (uint256) {
        Totals memory totals = _totals;
        return joy.balanceOf(address(this)) - totals.escrow - totals.earnings;
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

    /// @notice Bit i set: assigned node i of the (quorum) request has submitted.
    function submittedMask(uint256 requestId) external view returns (uint256) {
        return _submittedMasks[requestId];
    }

    /// @notice Pays `account` the earnings credited to it. Anyone may trigger it (the JOY only
    /// ever goes to `account`), so protocol fees can be swept into the treasury by anybody.
    function withdrawEarnings(address account) external nonReentrant {
        uint256 amount = earnings[account];
        if (amount == 0) revert ModelMarketplaceNothingToWithdraw(account);
        earnings[account] = 0;
        _totals.earnings -= uint96(amount);
        joy.safeTransfer(account, amount);
        emit EarningsWithdrawn(account, amount);
    }

    /// @notice Sends {protocolEarnings} to the treasury. Anyone may trigger it.
    function withdrawProtocolEarnings() external nonReentrant {
        uint256 amount = protocolEarnings();
        if (amount == 0) revert ModelMarketplaceNothingToWithdraw(treasury);
        joy.safeTransfer(treasury, amount);
        emit ProtocolEarningsWithdrawn(treasury, amount);
    }

    // =====================================================================================
    // Governance
    // =====================================================================================

    /// @notice Sets the node / model owner / protocol split of every fee (sum 10,000 bps, caps
    /// in the constants). Governance only.
    function setFeeShares(uint16 nodeShare, uint16 ownerShare, uint16 protocolShare) external onlyOwner {
        _setFeeShares(nodeShare, ownerShare, protocolShare);
    }

    /// @notice Sets how far in the future a request's deadline may be. Governance only.
    function setMaxDeadlineWindow(uint64 window) external onlyOwner {
        _setMaxDeadlineWindow(window);
    }

    /// @notice Sets who receives the protocol share. Governance only.
    function setTreasury(address newTreasury) external onlyOwner {
        _setTreasury(newTreasury);
    }

    /// @notice Points the marketplace at its coordinator, judge and usage ledger (at wiring,
    /// or to upgrade one of them). Governance only.
    function setComponents(INodeCoordinator coordinator_, IProofOfInference judge_, IProofOfUse usage_)
        external
        onlyOwner
    {
        if (address(coordinator_) == address(0) || address(judge_) == address(0) || address(usage_) == address(0)) {
            revert ModelMarketplaceZeroAddress();
        }
        coordinator = coordinator_;
        proofOfInference = judge_;
        proofOfUse = usage_;
        emit ComponentsSet(address(coordinator_), address(judge_), address(usage_));
    }

    // =====================================================================================
    // Internals
    // =====================================================================================

    function _settle(Request calldata request, Model storage model, bytes32 accepted, address[] memory dissenters)
        private
    {
        _close(request, Status.Settled);
        address[] memory agreeing = _agreeingNodes(request.nodes, dissenters);
        address modelOwner = model.owner;
        (uint256 nodesPaid, uint256 ownerPaid, uint256 protocolPaid) =
            _splitFee(request.escrow, agreeing, modelOwner);
        Totals memory totals = _totals;
        totals.escrow -= request.escrow;
        // The protocol's part stays in the contract as {protocolEarnings}; the rest is credited.
        totals.earnings += uint96(nodesPaid + ownerPaid);
        _totals = totals;
        INodeCoordinator coordinator_ = coordinator;
        for (uint256 i = 0; i < dissenters.length; ++i) {
            coordinator_.slash(dissenters[i], request.requester, false);
        }
        proofOfUse.recordUsage(request.modelId, modelOwner, agreeing);
        emit InferenceSettled(request.id, accepted, nodesPaid, ownerPaid, protocolPaid);
    }

    /// @dev Credits the nodes' and owner's parts of the fee and frees the agreeing nodes' bonds.
    function _splitFee(uint256 fee, address[] memory agreeing, address modelOwner)
        private
        returns (uint256 nodesPaid, uint256 ownerPaid, uint256 protocolPaid)
    {
        ownerPaid = (fee * ownerShareBps) / BPS;
        uint256 perNode = (fee * nodeShareBps) / BPS / agreeing.length;
        nodesPaid = perNode * agreeing.length;
        // Rounding dust goes to the protocol, so the three parts always add up to the fee.
        protocolPaid = fee - nodesPaid - ownerPaid;
        INodeCoordinator coordinator_ = coordinator;
        for (uint256 i = 0; i < agreeing.length; ++i) {
            _credit(agreeing[i], perNode);
            coordinator_.release(agreeing[i]);
        }
        _credit(modelOwner, ownerPaid);
    }

    function _resultContext(Request calldata request, Model storage model, bytes32 circuitId)
        private
        view
        returns (IProofOfInference.ResultContext memory)
    {
        return IProofOfInference.ResultContext({
            requestId: request.id,
            node: msg.sender,
            weightsCommitment: model.weightsCommitment,
            inputCommitment: request.inputCommitment,
            quorum: uint8(request.nodes.length),
            circuitId: circuitId
        });
    }

    function _checkDeadline(uint64 deadline) private view {
        uint256 latest = block.timestamp + maxDeadlineWindow;
        if (deadline <= block.timestamp || deadline > latest) {
            revert ModelMarketplaceInvalidDeadline(deadline, block.timestamp + 1, latest);
        }
    }

    /// @dev Takes `price` from the caller's {earnings} balance; returns it for the totals.
    function _spendBalance(uint96 price) private returns (uint96) {
        uint256 balance = earnings[msg.sender];
        if (balance < price) revert ModelMarketplaceInsufficientBalance(msg.sender, balance, price);
        earnings[msg.sender] = balance - price;
        return price;
    }

    function _credit(address account, uint256 amount) private {
        if (amount != 0) earnings[account] += amount;
    }

    function _refund(Request calldata request, string memory reason) private {
        _close(request, Status.Refunded);
        uint96 amount = request.escrow;
        _totals.escrow -= amount;
        joy.safeTransfer(request.requester, amount);
        emit InferenceRefunded(request.id, request.requester, amount, reason);
    }

    /// @dev The digest slot keeps the final status, so a closed request can never be reopened
    /// or closed again; a quorum request's submission bits are cleared (a gas refund).
    function _close(Request calldata request, Status status) private {
        _requestDigests[request.id] = bytes32(uint256(status));
        if (request.nodes.length > 1) delete _submittedMasks[request.id];
    }

    function _releaseAll(Request calldata request) private {
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            coordinator.release(request.nodes[i]);
        }
    }

    function _markSubmitted(uint256 requestId, uint256 slot) private {
        uint256 mask = _submittedMasks[requestId];
        if (mask & (1 << slot) != 0) revert ModelMarketplaceAlreadySubmitted(requestId, msg.sender);
        _submittedMasks[requestId] = mask | (1 << slot);
    }

    function _agreeingNodes(address[] calldata nodes, address[] memory dissenters)
        private
        pure
        returns (address[] memory agreeing)
    {
        if (dissenters.length == 0) return nodes;
        agreeing = new address[](nodes.length - dissenters.length);
        uint256 n;
        for (uint256 i = 0; i < nodes.length; ++i) {
            if (!_contains(dissenters, nodes[i])) agreeing[n++] = nodes[i];
        }
    }

    function _contains(address[] memory list, address item) private pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == item) return true;
        }
        return false;
    }

    function _assignedSlot(Request calldata request, address node) private pure returns (uint256) {
        for (uint256 i = 0; i < request.nodes.length; ++i) {
            if (request.nodes[i] == node) return i;
        }
        revert ModelMarketplaceNotAssigned(request.id, node);
    }

    /// @dev Reverts unless `request` is an open request exactly as it was made.
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

    function _setFeeShares(uint16 nodeShare, uint16 ownerShare, uint16 protocolShare) private {
        if (
            uint256(nodeShare) + ownerShare + protocolShare != BPS || protocolShare > MAX_PROTOCOL_SHARE_BPS
                || ownerShare > MAX_OWNER_SHARE_BPS || nodeShare < MIN_NODE_SHARE_BPS
        ) revert ModelMarketplaceInvalidFeeShares(nodeShare, ownerShare, protocolShare);
        (nodeShareBps, ownerShareBps, protocolShareBps) = (nodeShare, ownerShare, protocolShare);
        emit FeeSharesSet(nodeShare, ownerShare, protocolShare);
    }

    function _setMaxDeadlineWindow(uint64 window) private {
        if (window < MIN_DEADLINE_WINDOW || window > MAX_DEADLINE_WINDOW) {
            revert ModelMarketplaceParameterOutOfBounds(
                "maxDeadlineWindow", window, MIN_DEADLINE_WINDOW, MAX_DEADLINE_WINDOW
            );
        }
        emit MaxDeadlineWindowSet(maxDeadlineWindow, window);
        maxDeadlineWindow = window;
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ModelMarketplaceZeroAddress();
        emit TreasurySet(treasury, newTreasury);
        treasury = newTreasury;
    }
}
