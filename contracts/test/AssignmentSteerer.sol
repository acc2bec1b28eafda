// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IModelMarketplace} from "../interfaces/IModelMarketplace.sol";
import {ModelMarketplaceV2} from "../ModelMarketplaceV2.sol";
import {NodeCoordinator} from "../NodeCoordinator.sol";

/// @title AssignmentSteerer, a requester contract that tries to choose who serves its requests
/// @notice Test-only attacker (tests/adversarial/test_assignment_steering.py). Under the old
/// code a request assigned its nodes inside its own transaction, from entropy that transaction
/// could read, so a contract like this one reverted every draw it disliked and retried until
/// its chosen node was drawn. It tries the two ways that remain:
/// - {requestAndAssign}: request and assign in one transaction, where the draw would again be
///   visible (the marketplace refuses: the seed block's hash does not exist yet);
/// - {assignIfDrawn}: assign a request made earlier, reverting unless a chosen node is drawn,
///   and retry in later blocks or from other senders (the draw does not change).
/// It holds JOY and approves the marketplace once; whoever funds it owns what it requests.
contract AssignmentSteerer {
    /// @notice The marketplace attacked.
    ModelMarketplaceV2 public immutable marketplace;
    /// @notice The JOY token that pays the requests.
    IERC20 public immutable joy;

    /// @notice The assignment did not draw `target` for `requestId`: the whole assignment reverts.
    error AssignmentSteererNotDrawn(uint256 requestId, address target);

    /// @notice Announces a request this contract made, with the fields of its {IModelMarketplace.Request}.
    event SteererRequested(uint256 indexed requestId, bytes32 inputCommitment, uint64 deadline);

    /// @param marketplace_ the marketplace to request from
    /// @param joy_ the JOY token (this contract approves the marketplace for all it holds)
    constructor(ModelMarketplaceV2 marketplace_, IERC20 joy_) {
        marketplace = marketplace_;
        joy = joy_;
        joy_.approve(address(marketplace_), type(uint256).max);
    }

    /// @notice Requests an inference of `modelId` at its price; assigns nobody (that is for a
    /// later block).
    /// @param modelId the model requested
    /// @param deadline the request's deadline
    /// @return requestId the new request's id
    function request(bytes32 modelId, uint64 deadline) external returns (uint256 requestId) {
        (requestId,) = _request(modelId, deadline);
    }

    /// @notice Requests an inference of `modelId` and assigns its nodes in the same transaction,
    /// as a contract would that then reverted unless the nodes suited it.
    /// @param modelId the model requested
    /// @param deadline the request's deadline
    /// @return requestId the new request's id (never returned: the marketplace refuses)
    function requestAndAssign(bytes32 modelId, uint64 deadline) external returns (uint256 requestId) {
        IModelMarketplace.Request memory made;
        (requestId, made) = _request(modelId, deadline);
        marketplace.assignNodes(made);
    }

    /// @notice Assigns the nodes of an open, unassigned request (its own or anyone's) and
    /// reverts unless `target` is one of them.
    /// @param request_ the request as {IModelMarketplace.InferenceRequested} announced it
    /// @param target the node the attacker wants drawn
    function assignIfDrawn(IModelMarketplace.Request calldata request_, address target) external {
        NodeCoordinator coordinator = NodeCoordinator(request_.coordinator);
        uint256 tasksBefore = coordinator.nodeInfo(target).activeTasks;
        marketplace.assignNodes(request_);
        if (coordinator.nodeInfo(target).activeTasks == tasksBefore) {
            revert AssignmentSteererNotDrawn(request_.id, target);
        }
    }

    function _request(bytes32 modelId, uint64 deadline)
        private
        returns (uint256 requestId, IModelMarketplace.Request memory made)
    {
        uint96 price = marketplace.getModel(modelId).price;
        bytes32 inputCommitment = keccak256(abi.encode(address(this), block.number, joy.balanceOf(address(this))));
        requestId = marketplace.requestInference(modelId, inputCommitment, "ipfs://bafysteerer", price, deadline);
        made = IModelMarketplace.Request({
            id: requestId,
            modelId: modelId,
            requester: address(this),
            escrow: price,
            inputCommitment: inputCommitment,
            deadline: deadline,
            seedBlock: uint64(block.number),
            coordinator: address(marketplace.coordinator()),
            nodes: new address[](0)
        });
        emit SteererRequested(requestId, inputCommitment, deadline);
    }
}
