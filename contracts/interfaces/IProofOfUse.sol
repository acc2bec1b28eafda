// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title ProofOfUse's errors, events and parameter views, and the part the marketplace and the
/// IOTA bridge call
interface IProofOfUse {
    /// @notice `count` feeless inferences served by `node`; `value` is the protocol's part of
    /// what the model's budget paid for them (JOY wei), their reward weight.
    struct BridgedUsage {
        address node;
        uint64 count;
        uint128 value;
    }

    /// @notice A governed parameter outside its hard bounds.
    /// @param name "epochLength" or "ownerShareBps"
    error ProofOfUseParameterOutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    /// @notice An address that must be set is zero.
    /// @param name "joy", "marketplace", "modelOwner", "node" or "to"
    error ProofOfUseZeroAddress(string name);
    /// @notice {recordUsage} called by someone other than the marketplace.
    error ProofOfUseCallerNotMarketplace(address caller);
    /// @notice {recordBridgedUsage} called by someone other than the bridge.
    error ProofOfUseCallerNotBridge(address caller);
    /// @notice A settlement reported no serving node.
    error ProofOfUseNoNodes();
    /// @notice A bridged report's count is zero or above {MAX_BRIDGED_COUNT}.
    error ProofOfUseCountOutOfBounds(uint256 count, uint256 min, uint256 max);
    /// @notice Nothing to add: funding of zero JOY, or no surplus for {poolSurplus}.
    error ProofOfUseZeroAmount();
    /// @notice The epoch has ended: it can no longer receive JOY.
    error ProofOfUseEpochEnded(uint256 epoch, uint256 currentEpoch);
    /// @notice The epoch has not ended: its usage, hence its split, is not final.
    error ProofOfUseEpochNotEnded(uint256 epoch, uint256 currentEpoch);
    /// @notice The account already claimed this reward.
    error ProofOfUseAlreadyClaimed(uint256 epoch, address account);
    /// @notice The account has no reward of this kind in the epoch.
    error ProofOfUseNothingToClaim(uint256 epoch, address account);
    /// @notice Governance swept the epoch's unclaimed rewards.
    error ProofOfUseEpochSwept(uint256 epoch);
    /// @notice The epoch's claim period is not over yet.
    error ProofOfUseClaimPeriodNotOver(uint256 epoch, uint256 claimDeadline);
    /// @notice The epoch had usage, so its pool belongs to its users and cannot be rolled over.
    error ProofOfUseEpochHadUsage(uint256 epoch);
    /// @notice The epoch holds no JOY to move.
    error ProofOfUseNothingToMove(uint256 epoch);

    /// @notice The marketplace changed.
    event MarketplaceSet(address oldMarketplace, address newMarketplace);
    /// @notice The bridge changed (zero: bridged usage disabled).
    event BridgeSet(address oldBridge, address newBridge);
    /// @notice The owners' share of future splits changed.
    event OwnerShareBpsSet(uint16 oldOwnerShareBps, uint16 newOwnerShareBps);
    // A settled paid inference emits nothing here: the marketplace's InferenceSettled (with
    // NodesAssigned) carries the model, the nodes and the protocol's part of the fee, which is
    // the usage's value; a second log would cost every settlement about 2,500 gas.
    /// @notice Feeless inferences of `modelId` from a bridged checkpoint, per serving node.
    event BridgedUsageRecorded(
        uint256 indexed epoch, bytes32 indexed modelId, address indexed modelOwner, BridgedUsage[] usage
    );
    /// @notice `funder` added `amount` JOY to the pool of `epoch`.
    event EpochFunded(uint256 indexed epoch, address indexed funder, uint256 amount);
    /// @notice The owners' share of `epoch` is fixed: later changes of {ownerShareBps} do not apply.
    event EpochShareFixed(uint256 indexed epoch, uint16 ownerShareBps);
    /// @notice A model owner claimed its reward for `epoch`.
    event OwnerRewardClaimed(uint256 indexed epoch, address indexed owner, uint256 amount);
    /// @notice A node claimed its reward for `epoch`.
    event NodeRewardClaimed(uint256 indexed epoch, address indexed node, uint256 amount);
    /// @notice The pool of an epoch without usage moved to a later epoch.
    event EpochRolledOver(uint256 indexed fromEpoch, uint256 indexed toEpoch, uint256 amount);
    /// @notice What was left unclaimed in `epoch` after its claim period went to `to`.
    event UnclaimedSwept(uint256 indexed epoch, address indexed to, uint256 amount);
    /// @notice JOY sent to the contract outside {fundEpoch} was added to the pool of `epoch`.
    event SurplusPooled(uint256 indexed epoch, uint256 amount);

    // ---- the marketplace's and the bridge's calls ----

    /// @notice One settled paid inference of `modelId` (owned by `modelOwner`) served by `nodes`,
    /// weighted by `value`: the part of the fee that no party of the settlement gets back (the
    /// protocol's share), so that rewards follow fees and self-dealing never earns more than it
    /// cost. Callable only by the marketplace (or one it replaced, for requests it still closes).
    function recordUsage(bytes32 modelId, address modelOwner, address[] calldata nodes, uint256 value) external;

    /// @notice The feeless inferences of `modelId` a bridged checkpoint proved, per serving node.
    /// Callable only by the registered bridge (IOTAValidator). Each entry's `value`, the
    /// protocol's part of what the model's feeless budget paid that node, is the usage's reward
    /// weight, as a paid settlement's is (zero when the budget paid nothing).
    function recordBridgedUsage(bytes32 modelId, address modelOwner, BridgedUsage[] calldata usage) external;

    // ---- parameter views ----

    /// @notice The JOY token, in which pools are funded and rewards paid.
    function joy() external view returns (IERC20);

    /// @notice Timestamp of epoch 0's start (the deployment).
    function genesisTime() external view returns (uint64);

    /// @notice Length of an epoch in seconds, fixed for the contract's life.
    function epochLength() external view returns (uint64);

    /// @notice The marketplace, the only caller of {recordUsage} (beside the ones it replaced).
    function marketplace() external view returns (address);

    /// @notice Basis points of each epoch's pool that go to model owners; the rest goes to nodes.
    function ownerShareBps() external view returns (uint16);

    /// @notice The bridge (IOTAValidator), the only caller of {recordBridgedUsage}; zero
    /// disables bridged usage.
    function bridge() external view returns (address);
}
