// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
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
/// @dev Escrow and earnings stay in this contract: its JOY balance always equals the escrow of
/// open requests plus unwithdrawn earnings.
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

    enum Status {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @dev Four slots per quorum-1 request; further nodes of a quorum in {_extraNodes}.
    struct Request {
        address requester; // slot 0
        uint96 escrow;
        bytes32 modelId; // slot 1
        bytes32 inputCommitment; // slot 2
        address firstNode; // slot 3
        uint64 deadline;
        uint8 quorum;
        Status status;
        uint16 submittedMask; // bit i: assigned node i has submitted
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
    INodeCoordinator public coordinator;
    IProofOfInference public proofOfInference;
    IProofOfUse public proofOfUse;
    address public treasury;

    uint16 public nodeShareBps;
    uint16 public ownerShareBps;
    uint16 public protocolShareBps;
    /// @notice The latest deadline a request may set, counted from the request's block.
    uint64 public maxDeadlineWindow;

    /// @dev The three counters every request and settlement updates, in one slot (one write).
    struct Totals {
        uint64 requestCount;
        uint96 escrow; // escrow of open requests
        uint96 earnings; // credited, not yet withdrawn
    }

    Totals private _totals;
    mapping(bytes32 modelId => Model) internal _models;
    mapping(uint256 requestId => Request) private _requests;
    mapping(uint256 requestId => address[]) private _extraNodes;
    /// @notice JOY credited to nodes, model owners and the treasury, withdrawn with {withdrawEarnings}.
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
    error ModelMarketplaceRequestClosed(uint256 requestId, Status status);
    error ModelMarketplaceDeadlinePassed(uint256 requestId, uint256 deadline);
    error ModelMarketplaceDeadlineNotPassed(uint256 requestId, uint256 deadline);
    error ModelMarketplaceNotAssigned(uint256 requestId, address caller);
    error ModelMarketplaceAlreadySubmitted(uint256 requestId, address node);
    error ModelMarketplaceResultsSubmitted(uint256 requestId);
    error ModelMarketplaceNothingToWithdraw(address account);
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
    /// @return requestId the new request's id
    function requestInference(
        bytes32 modelId,
        bytes32 inputCommitment,
        string calldata inputURI,
        uint256 maxPrice,
        uint64 deadline
    ) public nonReentrant returns (uint256 requestId) {
        Model storage model = _activeModel(modelId);
        uint96 price = model.price;
        if (price == 0) revert ModelMarketplaceFeelessModel(modelId);
        if (price > maxPrice) revert ModelMarketplacePriceAboveMax(price, maxPrice);
        uint256 latest = block.timestamp + maxDeadlineWindow;
        if (deadline <= block.timestamp || deadline > latest) {
            revert ModelMarketplaceInvalidDeadline(deadline, block.timestamp + 1, latest);
        }
        Totals memory totals = _totals;
        requestId = ++totals.requestCount;
        totals.escrow += price;
        _totals = totals;
        uint8 quorum = model.quorum;
        joy.safeTransferFrom(msg.sender, address(this), price);
        address[] memory nodes = coordinator.assign(modelId, quorum, requestId);
        _storeRequest(requestId, modelId, inputCommitment, price, deadline, quorum, nodes);
        emit InferenceRequested(requestId, modelId, msg.sender, inputCommitment, inputURI, price, deadline, nodes);
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

    /// @notice An assigned node submits its result; the judge decides and, once a result is
    /// accepted, the fee is split and credited.
    /// @param outputCommitment commitment to the (quantized) output
    /// @param outputURI where the requester fetches the output
    /// @param proof ZK proof for ZK models, empty otherwise
    function submitResult(uint256 requestId, bytes32 outputCommitment, string calldata outputURI, bytes calldata proof)
        external
        nonReentrant
    {
        Request storage request = _openRequest(requestId);
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(requestId, request.deadline);
        uint256 slot = _assignedSlot(requestId, request, msg.sender);
        if (request.submittedMask & (1 << slot) != 0) revert ModelMarketplaceAlreadySubmitted(requestId, msg.sender);
        request.submittedMask |= uint16(1 << slot);
        emit ResultSubmitted(requestId, msg.sender, outputCommitment, outputURI);

        Model storage model = _models[request.modelId];
        IProofOfInference.ResultContext memory ctx = IProofOfInference.ResultContext({
            requestId: requestId,
            node: msg.sender,
            weightsCommitment: model.weightsCommitment,
            inputCommitment: request.inputCommitment,
            quorum: request.quorum,
            circuitId: model.circuitId
        });
        (IProofOfInference.Verdict verdict, bytes32 accepted, address[] memory dissenters) =
            proofOfInference.judge(ctx, outputCommitment, proof);
        if (verdict == IProofOfInference.Verdict.Accepted) {
            _settle(requestId, request, model, accepted, dissenters);
        } else if (verdict == IProofOfInference.Verdict.Rejected) {
            _refund(requestId, request, "no majority among the results");
            _releaseAll(requestId, request);
        }
    }

    /// @notice An assigned node declines a request it cannot serve (input fails the model's
    /// schema, cannot be fetched, is too large...). The requester is refunded at once with the
    /// reason; no node is slashed, since the input is what failed. Only before the deadline and
    /// before any result is in: otherwise a silent node could dodge its timeout slash, and a
    /// quorum node about to lose the vote could cancel the request and its own slash.
    function declineRequest(uint256 requestId, string calldata reason) external nonReentrant {
        Request storage request = _openRequest(requestId);
        _assignedSlot(requestId, request, msg.sender);
        if (block.timestamp > request.deadline) revert ModelMarketplaceDeadlinePassed(requestId, request.deadline);
        if (request.submittedMask != 0) revert ModelMarketplaceResultsSubmitted(requestId);
        emit RequestDeclined(requestId, msg.sender, reason);
        _refund(requestId, request, reason);
        _releaseAll(requestId, request);
    }

    /// @notice Closes a request whose deadline passed without an accepted result: the requester
    /// gets the escrow back and a share of the silent nodes' slashed bonds. Anyone may call it.
    function closeExpired(uint256 requestId) external nonReentrant {
        Request storage request = _openRequest(requestId);
        if (block.timestamp <= request.deadline) revert ModelMarketplaceDeadlineNotPassed(requestId, request.deadline);
        address requester = request.requester;
        _refund(requestId, request, "deadline passed");
        uint256 quorum = request.quorum;
        for (uint256 i = 0; i < quorum; ++i) {
            address node = _nodeAt(requestId, request, i);
            if (request.submittedMask & (1 << i) != 0) coordinator.release(node);
            else coordinator.slash(node, requester, true);
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

    /// @notice Sum of {earnings}: what the marketplace owes besides escrow.
    function totalEarnings() external view returns (uint256) {
        return _totals.earnings;
    }

    /// @notice A request's state.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice The nodes assigned to a request, in assignment order.
    function assignedNodes(uint256 requestId) external view returns (address[] memory nodes) {
        Request memory request = _requests[requestId];
        nodes = new address[](request.quorum);
        for (uint256 i = 0; i < nodes.length; ++i) {
            nodes[i] = _nodeAt(requestId, request, i);
        }
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

    function _storeRequest(
        uint256 requestId,
        bytes32 modelId,
        bytes32 inputCommitment,
        uint96 price,
        uint64 deadline,
        uint8 quorum,
        address[] memory nodes
    ) private {
        _requests[requestId] = Request({
            requester: msg.sender,
            escrow: price,
            modelId: modelId,
            inputCommitment: inputCommitment,
            firstNode: nodes[0],
            deadline: deadline,
            quorum: quorum,
            status: Status.Open,
            submittedMask: 0
        });
        if (nodes.length > 1) {
            address[] storage extra = _extraNodes[requestId];
            for (uint256 i = 1; i < nodes.length; ++i) {
                extra.push(nodes[i]);
            }
        }
    }

    function _settle(
        uint256 requestId,
        Request storage request,
        Model storage model,
        bytes32 accepted,
        address[] memory dissenters
    ) private {
        request.status = Status.Settled;
        uint96 fee = request.escrow;
        Totals memory totals = _totals;
        totals.escrow -= fee;
        totals.earnings += fee; // every part of the fee is credited to someone below
        _totals = totals;
        address[] memory agreeing = _agreeingNodes(requestId, request, dissenters);
        uint256 nodesPaid = (uint256(fee) * nodeShareBps) / BPS;
        uint256 ownerPaid = (uint256(fee) * ownerShareBps) / BPS;
        uint256 perNode = nodesPaid / agreeing.length;
        nodesPaid = perNode * agreeing.length;
        // Rounding dust goes to the protocol, so the three parts always add up to the fee.
        uint256 protocolPaid = fee - nodesPaid - ownerPaid;
        for (uint256 i = 0; i < agreeing.length; ++i) {
            _credit(agreeing[i], perNode);
            coordinator.release(agreeing[i]);
        }
        _credit(model.owner, ownerPaid);
        _credit(treasury, protocolPaid);
        for (uint256 i = 0; i < dissenters.length; ++i) {
            coordinator.slash(dissenters[i], request.requester, false);
        }
        proofOfUse.recordUsage(request.modelId, model.owner, agreeing);
        emit InferenceSettled(requestId, accepted, nodesPaid, ownerPaid, protocolPaid);
    }

    function _credit(address account, uint256 amount) private {
        if (amount != 0) earnings[account] += amount;
    }

    function _refund(uint256 requestId, Request storage request, string memory reason) private {
        request.status = Status.Refunded;
        uint96 amount = request.escrow;
        _totals.escrow -= amount;
        address requester = request.requester;
        joy.safeTransfer(requester, amount);
        emit InferenceRefunded(requestId, requester, amount, reason);
    }

    function _releaseAll(uint256 requestId, Request storage request) private {
        uint256 quorum = request.quorum;
        for (uint256 i = 0; i < quorum; ++i) {
            coordinator.release(_nodeAt(requestId, request, i));
        }
    }

    function _agreeingNodes(uint256 requestId, Request storage request, address[] memory dissenters)
        private
        view
        returns (address[] memory agreeing)
    {
        uint256 quorum = request.quorum;
        agreeing = new address[](quorum - dissenters.length);
        uint256 n;
        for (uint256 i = 0; i < quorum; ++i) {
            address node = _nodeAt(requestId, request, i);
            if (!_contains(dissenters, node)) agreeing[n++] = node;
        }
    }

    function _contains(address[] memory list, address item) private pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == item) return true;
        }
        return false;
    }

    function _nodeAt(uint256 requestId, Request memory request, uint256 index) private view returns (address) {
        return index == 0 ? request.firstNode : _extraNodes[requestId][index - 1];
    }

    function _assignedSlot(uint256 requestId, Request storage request, address node) private view returns (uint256) {
        if (request.firstNode == node) return 0;
        address[] storage extra = _extraNodes[requestId];
        for (uint256 i = 0; i < extra.length; ++i) {
            if (extra[i] == node) return i + 1;
        }
        revert ModelMarketplaceNotAssigned(requestId, node);
    }

    function _openRequest(uint256 requestId) private view returns (Request storage request) {
        request = _requests[requestId];
        if (request.status == Status.None) revert ModelMarketplaceUnknownRequest(requestId);
        if (request.status != Status.Open) revert ModelMarketplaceRequestClosed(requestId, request.status);
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
