// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {INodeCoordinator} from "./INodeCoordinator.sol";
import {IProofOfInference} from "./IProofOfInference.sol";
import {IProofOfUse} from "./IProofOfUse.sol";

/// @title The marketplace's types, errors, events and parameter views (ModelMarketplaceV2)
interface IModelMarketplace {
    /// @notice How a model's results are verified, and how long its nodes get to answer.
    struct Policy {
        uint8 quorum; // k distinct assigned nodes must agree (1..MAX_QUORUM)
        bytes32 circuitId; // nonzero: each result carries a ZK proof for this circuit
        uint32 responseWindow; // seconds a node gets at least; 0: the network's minimum
        // true: the first of the k nodes generates and the other k - 1 validate its result
        // (k >= 2, no circuit), for outputs that differ across hardware (language models)
        bool tolerant;
    }

    /// @notice A registered model.
    struct Model {
        address owner; // slot 0
        uint96 price; //   (per inference, JOY wei; 0 only for feeless models)
        bytes32 weightsCommitment; // slot 1
        bytes32 circuitId; // slot 2
        uint8 quorum; // slot 3
        bool active;
        uint32 responseWindow;
        bool tolerant; // see {Policy}
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
    /// requester and anyone closing it pass it back, rebuilt from the {InferenceRequested} and
    /// {NodesAssigned} events (the pattern of Chainlink Functions' request commitments): one
    /// storage slot per request instead of several, the largest part of a request's gas.
    struct Request {
        uint256 id;
        bytes32 modelId;
        address requester;
        uint96 escrow;
        bytes32 inputCommitment;
        uint64 deadline; // results (quorum: commitments) are due by then; set again at assignment
        uint64 seedBlock; // the request's block, whose hash seeds the assignment
        address coordinator; // the coordinator that assigns, releases and slashes this request's nodes
        address[] nodes; // the assigned nodes (empty until assigned); the quorum is their number
    }

    // =====================================================================================
    // Errors
    // =====================================================================================

    /// @notice A model is already registered under `modelId`.
    error ModelMarketplaceModelExists(bytes32 modelId);
    /// @notice No model is registered under `modelId`.
    error ModelMarketplaceUnknownModel(bytes32 modelId);
    /// @notice The model was deactivated: it takes no new request.
    error ModelMarketplaceModelInactive(bytes32 modelId);
    /// @notice Only the model's owner may change the model.
    error ModelMarketplaceNotModelOwner(bytes32 modelId, address caller);
    /// @notice A metadata URI that is not `ipfs://` followed by something.
    error ModelMarketplaceInvalidMetadataURI();
    /// @notice A quorum outside 1..MAX_QUORUM, or a response window above MAX_RESPONSE_WINDOW.
    error ModelMarketplaceInvalidPolicy(uint8 quorum, uint32 responseWindow);
    /// @notice A tolerant policy needs a generator and at least one validator (quorum >= 2) and no
    /// circuit (a proven result needs no validators).
    error ModelMarketplaceInvalidTolerantPolicy(uint8 quorum, bytes32 circuitId);
    /// @notice A price of zero for a model without an IOTA stream (only feeless models are free).
    error ModelMarketplaceInvalidPrice(uint96 price, bytes32 iotaStreamId);
    /// @notice No registration commitment of the caller from an earlier block matches the model
    /// id, owner and salt.
    error ModelMarketplaceRegistrationNotCommitted(bytes32 modelId, address owner);
    /// @notice A feeless model is served over its IOTA stream, not through paid requests.
    error ModelMarketplaceFeelessModel(bytes32 modelId);
    /// @notice The model's price is above what the requester agreed to pay.
    error ModelMarketplacePriceAboveMax(uint256 price, uint256 maxPrice);
    /// @notice A deadline outside [earliest, latest]: at least the response window and at most
    /// {maxDeadlineWindow} from now.
    error ModelMarketplaceInvalidDeadline(uint256 deadline, uint256 earliest, uint256 latest);
    /// @notice No request was made under `requestId`.
    error ModelMarketplaceUnknownRequest(uint256 requestId);
    /// @notice The request passed is not the open request the chain committed to (altered, or
    /// from before its assignment).
    error ModelMarketplaceRequestMismatch(uint256 requestId);
    /// @notice The request is already settled or refunded.
    /// @param status its final status
    error ModelMarketplaceRequestClosed(uint256 requestId, Status status);
    /// @notice The request's nodes are already assigned.
    error ModelMarketplaceAlreadyAssigned(uint256 requestId);
    /// @notice A quorum request takes results only once its nodes are assigned.
    error ModelMarketplaceNotAssignedYet(uint256 requestId);
    /// @notice The hash of the request's seed block is not known yet (same block) or no longer
    /// (more than 256 blocks ago).
    error ModelMarketplaceSeedNotAvailable(uint256 requestId, uint256 seedBlock);
    /// @notice The request's deadline has passed.
    error ModelMarketplaceDeadlinePassed(uint256 requestId, uint256 deadline);
    /// @notice The request cannot be closed before `closableAfter`.
    error ModelMarketplaceDeadlineNotPassed(uint256 requestId, uint256 closableAfter);
    /// @notice The caller is not an assigned node of the request (nor, unassigned, its drawn node).
    error ModelMarketplaceNotAssigned(uint256 requestId, address caller);
    /// @notice The node already committed (or revealed) its result.
    error ModelMarketplaceAlreadySubmitted(uint256 requestId, address node);
    /// @notice A quorum request's results are committed and revealed, not submitted (a tolerant
    /// request's validators commit and reveal their votes).
    error ModelMarketplaceCommitRequired(uint256 requestId);
    /// @notice The generator of a tolerant request submits its result in the clear
    /// ({submitResult}); only its validators commit (votes).
    error ModelMarketplaceGeneratorSubmits(uint256 requestId);
    /// @notice A tolerant request's validators vote only once its generator has submitted.
    error ModelMarketplaceNothingToValidate(uint256 requestId);
    /// @notice Commit and reveal are for quorum requests only.
    error ModelMarketplaceNotQuorum(uint256 requestId);
    /// @notice The node has nothing committed to reveal.
    error ModelMarketplaceNotCommitted(uint256 requestId, address node);
    /// @notice Reveals open once every assigned node has committed or the deadline has passed.
    error ModelMarketplaceRevealNotOpen(uint256 requestId);
    /// @notice The reveal window closed at `revealDeadline`.
    error ModelMarketplaceRevealClosed(uint256 requestId, uint256 revealDeadline);
    /// @notice The output and salt revealed do not match the node's sealed result.
    error ModelMarketplaceRevealMismatch(uint256 requestId, address node);
    /// @notice A result is already in: the request can no longer be declined.
    error ModelMarketplaceResultsSubmitted(uint256 requestId);
    /// @notice The caller is neither `account` nor an operator it approved.
    error ModelMarketplaceNotAuthorized(address account, address caller);
    /// @notice The marketplace holds nothing to withdraw for `account`.
    error ModelMarketplaceNothingToWithdraw(address account);
    /// @notice The account's balance does not cover the model's price.
    error ModelMarketplaceInsufficientBalance(address account, uint256 balance, uint256 price);
    /// @notice A deposit of zero JOY.
    error ModelMarketplaceZeroDeposit();
    /// @notice A governed parameter outside its hard bounds.
    /// @param name "maxDeadlineWindow", "minResponseWindow" or "revealWindow"
    error ModelMarketplaceParameterOutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    /// @notice Fee shares that do not sum to 10,000 bps or break a cap (MAX_PROTOCOL_SHARE_BPS,
    /// MAX_OWNER_SHARE_BPS, MIN_NODE_SHARE_BPS).
    error ModelMarketplaceInvalidFeeShares(uint16 nodeShareBps, uint16 ownerShareBps, uint16 protocolShareBps);
    /// @notice An address that must be set is zero.
    error ModelMarketplaceZeroAddress();
    /// @notice A batch of results whose arrays differ in length.
    error ModelMarketplaceBatchLengthMismatch(uint256 requests, uint256 commitments, uint256 uris, uint256 proofs);

    // =====================================================================================
    // Events
    // =====================================================================================

    /// @notice Governance moved to a new governor.
    event GovernanceUpdated(address indexed previousGovernor, address indexed newGovernor);
    /// @notice `committer` committed to a model registration (see {commitModelRegistration}).
    event ModelRegistrationCommitted(bytes32 indexed commitment, address indexed committer);
    /// @notice A model was registered, owned by `owner`.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        string metadataURI,
        bytes32 weightsCommitment,
        uint96 price,
        uint8 quorum,
        bytes32 circuitId,
        bytes32 iotaStreamId,
        bool tolerant
    );
    /// @notice The model's price changed.
    event ModelPriceUpdated(bytes32 indexed modelId, uint96 oldPrice, uint96 newPrice);
    /// @notice The model points at new metadata.
    event ModelMetadataUpdated(bytes32 indexed modelId, string metadataURI);
    /// @notice The model was withdrawn for good; its open requests still complete.
    event ModelDeactivated(bytes32 indexed modelId);
    /// @notice A request was made; its seed block is the block of this event.
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        bytes32 inputCommitment,
        string inputURI,
        uint256 price,
        uint64 deadline,
        address coordinator
    );
    /// @notice The request's nodes were picked; `deadline` is the request's deadline from now on.
    event NodesAssigned(uint256 indexed requestId, uint64 deadline, address[] nodes);
    /// @notice A quorum node committed to a sealed result; `committed` nodes have so far.
    event ResultCommitted(uint256 indexed requestId, address indexed node, uint256 committed);
    /// @notice A node's result is public: submitted (one node, or a tolerant request's generator)
    /// or revealed (quorum; a tolerant request's validator reveals the output commitment it
    /// accepts, any other value being a rejection).
    event ResultSubmitted(uint256 indexed requestId, address indexed node, bytes32 outputCommitment, string outputURI);
    /// @notice The request was settled on `outputCommitment`; the fee was split into the three parts.
    event InferenceSettled(
        uint256 indexed requestId, bytes32 outputCommitment, uint256 nodesPaid, uint256 ownerPaid, uint256 protocolPaid
    );
    /// @notice The request closed without a result; `amount` of its escrow went back to the requester.
    event InferenceRefunded(uint256 indexed requestId, address indexed requester, uint256 amount, string reason);
    /// @notice An assigned node declined the request (the requester is refunded in the same transaction).
    event RequestDeclined(uint256 indexed requestId, address indexed node, string reason);
    /// @notice `account` allowed (or disallowed) `operator` to withdraw its balance to it.
    event OperatorSet(address indexed account, address indexed operator, bool approved);
    /// @notice `account`'s whole balance (fees credited and deposits) was paid to it.
    event BalanceWithdrawn(address indexed account, uint256 amount);
    /// @notice `from` deposited `amount` JOY into `account`'s balance.
    event Deposited(address indexed account, address indexed from, uint256 amount);
    /// @notice The protocol's share of settled fees was sent to the treasury.
    event ProtocolEarningsWithdrawn(address indexed treasury, uint256 amount);
    /// @notice The fee split changed.
    event FeeSharesSet(uint16 nodeShareBps, uint16 ownerShareBps, uint16 protocolShareBps);
    /// @notice {maxDeadlineWindow} changed.
    event MaxDeadlineWindowSet(uint64 oldWindow, uint64 newWindow);
    /// @notice {minResponseWindow} changed.
    event MinResponseWindowSet(uint32 oldWindow, uint32 newWindow);
    /// @notice {revealWindow} changed.
    event RevealWindowSet(uint32 oldWindow, uint32 newWindow);
    /// @notice {treasury} changed.
    event TreasurySet(address indexed oldTreasury, address indexed newTreasury);
    /// @notice The marketplace points at a new coordinator, judge or usage ledger.
    event ComponentsSet(address coordinator, address proofOfInference, address proofOfUse);

    // =====================================================================================
    // Views of the marketplace's state
    // =====================================================================================

    /// @notice The JOY token, in which requests are paid and balances held.
    function joy() external view returns (IERC20);

    /// @notice The coordinator that assigns the nodes of new requests (open requests keep the
    /// one their {Request} names).
    function coordinator() external view returns (INodeCoordinator);

    /// @notice The latest deadline a request may set, counted from the request's block, in seconds.
    function maxDeadlineWindow() external view returns (uint64);

    /// @notice The least time a node gets to answer a request it was assigned (a model may ask
    /// for more), in seconds; a node is never slashed for silence after less.
    function minResponseWindow() external view returns (uint32);

    /// @notice The usage ledger every settlement reports to.
    function proofOfUse() external view returns (IProofOfUse);

    /// @notice The nodes' share of every fee, in basis points (split among the agreeing nodes).
    function nodeShareBps() external view returns (uint16);

    /// @notice The model owner's share of every fee, in basis points.
    function ownerShareBps() external view returns (uint16);

    /// @notice The protocol's share of every fee, in basis points (kept as {protocolEarnings}).
    function protocolShareBps() external view returns (uint16);

    /// @notice Time quorum nodes get after the deadline to reveal what they committed, in seconds.
    function revealWindow() external view returns (uint32);

    /// @notice The judge of quorum tallies and ZK proofs.
    function proofOfInference() external view returns (IProofOfInference);

    /// @notice Receives {protocolEarnings}.
    function treasury() external view returns (address);

    /// @notice JOY the marketplace holds for `account`: fees credited to it as a node or model
    /// owner, and {deposit}s made for it, less what it spent on requests. Withdrawn with
    /// {withdrawBalance}; spent by {requestInferenceFromBalance}.
    function balances(address account) external view returns (uint256);

    /// @notice Whether `account` allowed `operator` to withdraw its balance for it (to it).
    function isOperator(address account, address operator) external view returns (bool);

    /// @notice A registered model (all zero for an unknown id).
    function getModel(bytes32 modelId) external view returns (Model memory);
}
