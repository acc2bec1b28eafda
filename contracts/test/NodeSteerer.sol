// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IModelMarketplace} from "../interfaces/IModelMarketplace.sol";
import {ModelMarketplaceV2} from "../ModelMarketplaceV2.sol";
import {NodeCoordinator} from "../NodeCoordinator.sol";

/// @title NodeSteerer, a node operator contract that pulls other requesters' work to itself
/// @notice Test-only attacker (tests/adversarial/test_assignment_steering.py). It is a node (the
/// coordinator knows nodes by operator address) and assigns other requesters' requests itself
/// (anyone may), in a transaction that first tries the draw as it stands and, if it was not
/// drawn, changes what the draw reads and it controls (its own place in the model's eligibility
/// set: leaving and rejoining moves it to the end), then tries again, reverting unless drawn.
contract NodeSteerer {
    /// @notice The marketplace whose requests it assigns.
    ModelMarketplaceV2 public immutable marketplace;
    /// @notice The coordinator it is a node of.
    NodeCoordinator public immutable coordinator;
    /// @notice The JOY token of its stake.
    IERC20 public immutable joy;
    /// @notice The account that runs this node.
    address public immutable owner;

    /// @notice Neither the draw as it stood nor the one after the manoeuvre drew this node.
    error NodeSteererNotDrawn(uint256 requestId);
    /// @notice Only the owner (or, for {assignIfDrawn}, this contract) may call this.
    error NodeSteererUnauthorized(address caller);

    /// @param marketplace_ the marketplace
    /// @param coordinator_ its node coordinator
    /// @param joy_ the JOY token
    constructor(ModelMarketplaceV2 marketplace_, NodeCoordinator coordinator_, IERC20 joy_) {
        marketplace = marketplace_;
        coordinator = coordinator_;
        joy = joy_;
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NodeSteererUnauthorized(msg.sender);
        _;
    }

    /// @notice Registers this contract as a node, staking JOY it holds.
    /// @param stake JOY to stake
    /// @param capacity concurrent tasks
    /// @param models the models it serves
    function register(uint96 stake, uint16 capacity, bytes32[] calldata models) external onlyOwner {
        joy.approve(address(coordinator), stake);
        coordinator.registerNode(stake, capacity, models);
    }

    /// @notice Assigns an open, unassigned request so that this node is drawn: as the draw
    /// stands, or else after moving itself to the end of the model's eligibility set. Reverts
    /// (leaving the request to be assigned by someone else) if neither draws it.
    /// @param request_ the request as {IModelMarketplace.InferenceRequested} announced it
    function assignToSelf(IModelMarketplace.Request calldata request_) external onlyOwner {
        try this.assignIfDrawn(request_) {
            return;
        } catch {}
        coordinator.stopServingModel(request_.modelId);
        coordinator.serveModel(request_.modelId);
        this.assignIfDrawn(request_);
    }

    /// @notice Assigns `request_` and reverts unless this node was drawn. Called by this contract.
    /// @param request_ the request as {IModelMarketplace.InferenceRequested} announced it
    function assignIfDrawn(IModelMarketplace.Request calldata request_) external {
        if (msg.sender != address(this)) revert NodeSteererUnauthorized(msg.sender);
        uint256 tasksBefore = coordinator.nodeInfo(address(this)).activeTasks;
        marketplace.assignNodes(request_);
        if (coordinator.nodeInfo(address(this)).activeTasks == tasksBefore) revert NodeSteererNotDrawn(request_.id);
    }

    /// @notice Submits this node's result for a single-node request it was assigned.
    /// @param request_ the request as assigned
    /// @param outputCommitment the result
    function submit(IModelMarketplace.Request calldata request_, bytes32 outputCommitment) external onlyOwner {
        marketplace.submitResult(request_, outputCommitment, "ipfs://bafysteered", "");
    }
}
