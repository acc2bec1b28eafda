// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";

import {JoyGoverned} from "./governance/JoyGoverned.sol";
import {IProofOfUse} from "./interfaces/IProofOfUse.sol";
import {BASIS_POINTS} from "./libraries/BasisPoints.sol";

/// @title ProofOfUse, usage-based epoch rewards for model owners and edge nodes
/// @notice Records usage per epoch (paid settlements reported by the marketplace; feeless
/// checkpoints reported by the bridge) and splits each epoch's JOY pool, once the epoch has
/// ended, pro rata to the value paid: {ownerShareBps} of the pool to model owners, the rest to
/// the nodes that served, each by the fees of its settlements. Rewards are pulled.
///
/// Self-dealing never pays. A settlement weighs what its payer can never get back, the
/// protocol's part of the fee (an account that owns the model, runs the node and pays the
/// request gets every other part back), and no reward exceeds {REWARD_CAP_BPS} of the weight
/// behind it, so the rewards a settlement earns in total stay below what it cost. Feeless usage
/// is paid from the model's feeless budget and weighs, likewise, the protocol's part of that
/// payment, which whoever funded the budget never gets back. What the caps leave in a pool
/// stays there until governance sweeps it after the claim period.
///
/// The pool of an epoch is funded by anyone before the epoch ends (the DAO through a proposal
/// that approves and calls {fundEpoch}; donors directly). JOY is conserved: the contract holds
/// exactly {outstandingRewards}, the sum over epochs of pool minus paid out, plus whatever was
/// sent to it outside {fundEpoch}, which governance can add to a pool with {poolSurplus}.
///
/// Rounding: every payout is floored, so the payouts of an epoch never exceed its pool. The
/// dust (less than one wei per claimant) stays in that epoch; like rewards nobody claims, it can
/// be swept by governance once the epoch's {CLAIM_PERIOD} is over.
///
/// @dev Storage is laid out for {recordUsage}, which runs inside every settlement. Usage counters
/// are uint64s packed four to a slot, with consecutive epochs in the same slot: an account's
/// (owner count, node count) for epochs 2k and 2k+1, a model's count for epochs 4k to 4k+3. The
/// epoch's two totals share a slot with its pool. A settlement therefore writes one slot for the
/// totals, one for the model, one for the owner and one per node; writing a fresh (zero) slot
/// costs 20,000 gas more than an existing one, so funding an epoch in advance pre-warms its
/// totals, and a model or account active epoch after epoch pays for a fresh slot only every
/// fourth (models) or second (accounts) epoch. Claim flags are a bitmap per account.
contract ProofOfUse is IProofOfUse, JoyGoverned, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using BitMaps for BitMaps.BitMap;

    /// @notice Bounds of {epochLength}, in seconds.
    uint256 public constant MIN_EPOCH_LENGTH = 60;
    uint256 public constant MAX_EPOCH_LENGTH = 365 days;
    /// @notice Largest count one bridged report may carry. Keeps the uint64 counters far from
    /// overflow, so that a settlement can never revert on a counter.
    uint256 public constant MAX_BRIDGED_COUNT = type(uint32).max;
    /// @notice How long after an epoch ends its rewards are guaranteed claimable; after that
    /// governance may sweep what is left ({sweepUnclaimed}). A constant, so that no vote can
    /// shorten the window of rewards already earned.
    uint256 public constant CLAIM_PERIOD = 180 days;
    /// @notice Most a role's claim pays per unit of its usage weight (before the owner/node
    /// split), in basis points: below 100 %, so that a settlement's rewards never reach what it
    /// cost its payer.
    uint256 public constant REWARD_CAP_BPS = 9_000;
    /// @notice Usage weights are counted in units of this many JOY wei (1 gwei of JOY), which
    /// keeps the counters in 64 bits; a settlement weighing less counts nothing.
    uint256 public constant WEIGHT_UNIT = 1e9;

    /// @notice What is known about one epoch.
    /// @dev Slot 0 is what {recordUsage} writes (and funding pre-warms); slot 1 what claims write.
    struct EpochInfo {
        uint128 pool; // JOY credited to the epoch
        uint64 totalOwnerWeight; // owners' usage weight in the epoch, in WEIGHT_UNITs (their denominator)
        uint64 totalNodeWeight; // nodes' usage weight in the epoch, in WEIGHT_UNITs (their denominator)
        uint128 paidOut; // JOY paid out of the pool (claims and a sweep)
        uint16 ownerShareBps; // the owners' share; in {epochInfo}, the current one until fixed
        bool shareFixed; // whether ownerShareBps is the epoch's final share
        bool swept; // whether governance swept the unclaimed rest
    }

    // Roles index the per-account counters and claim bits.
    uint256 private constant _OWNER = 0;
    uint256 private constant _NODE = 1;

    IERC20 private immutable _joy;
    uint64 private immutable _genesisTime;
    // Immutable: changing it would re-index every past epoch (an epoch number would point at a
    // different time span), mixing usage and pools.
    uint64 private immutable _epochLength;

    address private _marketplace;
    // Shares the marketplace's slot, which is read on every settlement anyway.
    uint16 private _ownerShareBps;
    address private _bridge;

    uint256 private _outstanding; // sum over epochs of pool - paidOut
    mapping(uint256 epoch => EpochInfo) private _epochs;
    // modelId => epoch / 4 => inference counts of epochs 4k..4k+3
    mapping(bytes32 modelId => mapping(uint256 epochQuad => uint64[4])) private _modelUsage;
    // account => epoch / 2 => [owner weight, node weight] of epoch 2k, then of epoch 2k+1
    mapping(address account => mapping(uint256 epochPair => uint64[4])) private _accountUsage;
    // account => bit 2 * epoch + role, set once the account claimed that role's reward
    mapping(address account => BitMaps.BitMap) private _claimed;
    // marketplaces governance replaced: they still record the usage of the requests they close
    mapping(address marketplace => bool) private _formerMarketplaces;

    modifier onlyMarketplace() {
        if (msg.sender != _marketplace && !_formerMarketplaces[msg.sender]) {
            revert ProofOfUseCallerNotMarketplace(msg.sender);
        }
        _;
    }

    modifier onlyBridge() {
        // A zero bridge matches no caller: bridged usage is then disabled.
        if (msg.sender != _bridge) revert ProofOfUseCallerNotBridge(msg.sender);
        _;
    }

    /// @param joy_ the JOY token
    /// @param initialOwner the deployer, who wires marketplace and bridge and then hands
    /// ownership to the timelock
    /// @param epochLength_ epoch length in seconds, within [MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH];
    /// fixed for the contract's life
    /// @param initialOwnerShareBps the owners' share of each pool, at most 10,000
    constructor(IERC20 joy_, address initialOwner, uint64 epochLength_, uint16 initialOwnerShareBps)
        JoyGoverned(initialOwner)
    {
        if (address(joy_) == address(0)) revert ProofOfUseZeroAddress("joy");
        _checkBounds("epochLength", epochLength_, MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH);
        _joy = joy_;
        _epochLength = epochLength_;
        _genesisTime = uint64(block.timestamp);
        _setOwnerShareBps(initialOwnerShareBps);
    }

    // ---- governance ----

    /// @notice Sets the marketplace, the caller of {recordUsage}; the one it replaces may still
    /// record the usage of the requests it closes. Owner only.
    /// @param newMarketplace the marketplace; never zero (usage of paid inferences is always on)
    function setMarketplace(address newMarketplace) external onlyOwner {
        if (newMarketplace == address(0)) revert ProofOfUseZeroAddress("marketplace");
        address previous = _marketplace;
        emit MarketplaceSet(previous, newMarketplace);
        if (previous != address(0)) _formerMarketplaces[previous] = true;
        _formerMarketplaces[newMarketplace] = false;
        _marketplace = newMarketplace;
    }

    /// @notice Whether `account` is a marketplace governance replaced, which may still record the
    /// usage of the requests it closes.
    function isFormerMarketplace(address account) external view returns (bool) {
        return _formerMarketplaces[account];
    }

    /// @notice Sets the bridge, the only caller of {recordBridgedUsage}. Owner only.
    /// @param newBridge the IOTAValidator, or zero to disable bridged usage
    function setBridge(address newBridge) external onlyOwner {
        emit BridgeSet(_bridge, newBridge);
        _bridge = newBridge;
    }

    /// @notice Sets the owners' share of the pools whose share is not fixed yet. Owner only.
    /// @dev An epoch's share is fixed when governance first credits its pool or at its first
    /// claim, so a change never alters a split that funds were committed to or paid under.
    /// @param newOwnerShareBps basis points, at most 10,000
    function setOwnerShareBps(uint16 newOwnerShareBps) external onlyOwner {
        _setOwnerShareBps(newOwnerShareBps);
    }

    /// @notice Moves the whole pool of an ended epoch that had no usage (so nobody can claim
    /// from it) to an epoch that has not ended. Owner only.
    /// @param fromEpoch an ended epoch without usage and with a pool
    /// @param toEpoch the current or a future epoch
    function rollOver(uint256 fromEpoch, uint256 toEpoch) external onlyOwner {
        _requireEnded(fromEpoch);
        _requireNotEnded(toEpoch);
        EpochInfo storage from = _epochs[fromEpoch];
        if (from.totalOwnerWeight != 0 || from.totalNodeWeight != 0) revert ProofOfUseEpochHadUsage(fromEpoch);
        uint256 amount = from.pool - from.paidOut;
        if (amount == 0) revert ProofOfUseNothingToMove(fromEpoch);
        from.pool = from.paidOut;
        _outstanding -= amount;
        _credit(toEpoch, amount, true);
        emit EpochRolledOver(fromEpoch, toEpoch, amount);
    }

    /// @notice Sends what is left of an epoch's pool (unclaimed rewards and rounding dust) to
    /// `to` once {CLAIM_PERIOD} has passed since the epoch ended; the epoch's claims close.
    /// Owner only.
    /// @param epoch an epoch whose claim period is over
    /// @param to the recipient, typically the treasury
    function sweepUnclaimed(uint256 epoch, address to) external onlyOwner nonReentrant {
        if (to == address(0)) revert ProofOfUseZeroAddress("to");
        _requireEnded(epoch);
        uint256 deadline = claimDeadline(epoch);
        if (block.timestamp < deadline) revert ProofOfUseClaimPeriodNotOver(epoch, deadline);
        EpochInfo storage info = _epochs[epoch];
        if (info.swept) revert ProofOfUseEpochSwept(epoch);
        uint256 amount = info.pool - info.paidOut;
        if (amount == 0) revert ProofOfUseNothingToMove(epoch);
        info.swept = true;
        _pay(info, to, amount);
        emit UnclaimedSwept(epoch, to, amount);
    }

    /// @notice Adds the JOY the contract holds beyond {outstandingRewards} (tokens sent to it
    /// directly instead of through {fundEpoch}) to the pool of `epoch`. Owner only.
    /// @param epoch the current or a future epoch
    function poolSurplus(uint256 epoch) external onlyOwner {
        _requireNotEnded(epoch);
        uint256 amount = _joy.balanceOf(address(this)) - _outstanding;
        if (amount == 0) revert ProofOfUseZeroAmount();
        _credit(epoch, amount, true);
        emit SurplusPooled(epoch, amount);
    }

    // ---- usage ----

    /// @inheritdoc IProofOfUse
    /// @dev Counts, in the current epoch, one inference of the model; adds `value` (in
    /// WEIGHT_UNITs, floored) to the owner's weight and an equal part of it to each listed node
    /// (a node listed twice gets two parts). Reverts on a zero owner or node, whose reward
    /// nobody could claim, and on an empty node list.
    function recordUsage(bytes32 modelId, address modelOwner, address[] calldata nodes, uint256 value)
        external
        onlyMarketplace
    {
        uint256 nodeCount = nodes.length;
        if (nodeCount == 0) revert ProofOfUseNoNodes();
        if (modelOwner == address(0)) revert ProofOfUseZeroAddress("modelOwner");
        uint256 epoch = currentEpoch();
        // Far below 2**64 units: a fee is escrowed as uint96 wei, 2**96 / 1e9 < 2**67, and the
        // whole supply of JOY is 1e27 wei, 1e18 units.
        uint256 ownerWeight = value / WEIGHT_UNIT;
        uint256 nodeWeight = ownerWeight / nodeCount;
        _modelUsage[modelId][epoch >> 2][epoch & 3] += 1;
        if (ownerWeight != 0) {
            EpochInfo storage info = _epochs[epoch];
            (info.totalOwnerWeight, info.totalNodeWeight) =
                (info.totalOwnerWeight + uint64(ownerWeight), info.totalNodeWeight + uint64(nodeWeight * nodeCount));
            _accountUsage[modelOwner][epoch >> 1][_lane(epoch, _OWNER)] += uint64(ownerWeight);
        }
        for (uint256 i = 0; i < nodeCount; ++i) {
            if (nodes[i] == address(0)) revert ProofOfUseZeroAddress("node");
            if (nodeWeight != 0) _accountUsage[nodes[i]][epoch >> 1][_lane(epoch, _NODE)] += uint64(nodeWeight);
        }
    }

    /// @inheritdoc IProofOfUse
    /// @dev Counted in the epoch of the report, not of the feeless inferences: a checkpoint
    /// cannot add usage to an epoch that has ended and may already be paying out. Each entry's
    /// `value` (in WEIGHT_UNITs, floored) weighs for its node and, summed, for the model's owner,
    /// as a paid settlement's does. Reverts on a zero owner or node and on a count outside
    /// [1, MAX_BRIDGED_COUNT].
    function recordBridgedUsage(bytes32 modelId, address modelOwner, BridgedUsage[] calldata usage)
        external
        onlyBridge
    {
        if (modelOwner == address(0)) revert ProofOfUseZeroAddress("modelOwner");
        uint256 epoch = currentEpoch();
        uint256 count;
        uint256 weight;
        for (uint256 i = 0; i < usage.length; ++i) {
            BridgedUsage calldata entry = usage[i];
            if (entry.count == 0 || entry.count > MAX_BRIDGED_COUNT) {
                revert ProofOfUseCountOutOfBounds(entry.count, 1, MAX_BRIDGED_COUNT);
            }
            if (entry.node == address(0)) revert ProofOfUseZeroAddress("node");
            count += entry.count;
            // A payment from a budget is JOY the bridge holds: at most the supply, 1e18 units.
            uint256 units = entry.value / WEIGHT_UNIT;
            if (units != 0) {
                _accountUsage[entry.node][epoch >> 1][_lane(epoch, _NODE)] += uint64(units);
                weight += units;
            }
        }
        // Each count is below 2**32: a uint64 counter overflows only after 2**32 full entries.
        _modelUsage[modelId][epoch >> 2][epoch & 3] += uint64(count);
        if (weight != 0) {
            EpochInfo storage info = _epochs[epoch];
            (info.totalOwnerWeight, info.totalNodeWeight) =
                (info.totalOwnerWeight + uint64(weight), info.totalNodeWeight + uint64(weight));
            _accountUsage[modelOwner][epoch >> 1][_lane(epoch, _OWNER)] += uint64(weight);
        }
        emit BridgedUsageRecorded(epoch, modelId, modelOwner, usage);
    }

    // ---- pools and claims ----

    /// @notice Adds `amount` JOY, pulled from the caller (who must have approved it), to the
    /// pool of an epoch that has not ended. Anyone may fund; when the owner (the DAO) funds,
    /// the epoch's owner share is fixed at the current {ownerShareBps}. A donation does not fix
    /// it, so that no outsider can freeze an epoch's split ahead of a governance change.
    /// @param epoch the current or a future epoch
    /// @param amount JOY (18 decimals), more than zero
    function fundEpoch(uint256 epoch, uint256 amount) external nonReentrant {
        if (amount == 0) revert ProofOfUseZeroAmount();
        _requireNotEnded(epoch);
        _credit(epoch, amount, msg.sender == owner());
        _joy.safeTransferFrom(msg.sender, address(this), amount);
        emit EpochFunded(epoch, msg.sender, amount);
    }

    /// @notice Pays the caller its model-owner reward for an ended epoch: the owners' part of
    /// the pool times the caller's share of the owners' usage weight, floored, and at most
    /// {REWARD_CAP_BPS} of the owners' part of the caller's weight.
    /// @param epoch an ended epoch
    /// @return amount the JOY paid
    function claimOwnerReward(uint256 epoch) external nonReentrant returns (uint256 amount) {
        amount = _claim(epoch, _OWNER);
        emit OwnerRewardClaimed(epoch, msg.sender, amount);
    }

    /// @notice Pays the caller its node reward for an ended epoch: the nodes' part of the pool
    /// times the caller's share of the nodes' usage weight, floored, and at most
    /// {REWARD_CAP_BPS} of the nodes' part of the caller's weight.
    /// @param epoch an ended epoch
    /// @return amount the JOY paid
    function claimNodeReward(uint256 epoch) external nonReentrant returns (uint256 amount) {
        amount = _claim(epoch, _NODE);
        emit NodeRewardClaimed(epoch, msg.sender, amount);
    }

    // ---- views ----

    /// @inheritdoc IProofOfUse
    function joy() external view returns (IERC20) {
        return _joy;
    }

    /// @inheritdoc IProofOfUse
    function genesisTime() external view returns (uint64) {
        return _genesisTime;
    }

    /// @inheritdoc IProofOfUse
    function epochLength() external view returns (uint64) {
        return _epochLength;
    }

    /// @inheritdoc IProofOfUse
    function marketplace() external view returns (address) {
        return _marketplace;
    }

    /// @inheritdoc IProofOfUse
    function ownerShareBps() external view returns (uint16) {
        return _ownerShareBps;
    }

    /// @inheritdoc IProofOfUse
    function bridge() external view returns (address) {
        return _bridge;
    }

    /// @notice The epoch the chain is in now; epoch n spans
    /// [genesisTime + n * epochLength, genesisTime + (n + 1) * epochLength).
    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - _genesisTime) / _epochLength;
    }

    /// @notice When `epoch` ends (the first second of the next epoch).
    function epochEnd(uint256 epoch) public view returns (uint256) {
        return _genesisTime + (epoch + 1) * _epochLength;
    }

    /// @notice From when governance may sweep what is left of `epoch` ({sweepUnclaimed}).
    function claimDeadline(uint256 epoch) public view returns (uint256) {
        return epochEnd(epoch) + CLAIM_PERIOD;
    }

    /// @notice Pool, paid out, usage totals and owner share of `epoch`. Until the share is
    /// fixed, `ownerShareBps` is the current {ownerShareBps}, the one a claim would fix.
    function epochInfo(uint256 epoch) external view returns (EpochInfo memory info) {
        info = _epochs[epoch];
        info.ownerShareBps = _shareOf(info);
    }

    /// @notice Inferences of `modelId` recorded in `epoch`.
    function modelUsage(uint256 epoch, bytes32 modelId) external view returns (uint256) {
        return _modelUsage[modelId][epoch >> 2][epoch & 3];
    }

    /// @notice Usage weight of `modelOwner`'s models in `epoch`, in JOY wei (whole WEIGHT_UNITs).
    function ownerUsage(uint256 epoch, address modelOwner) external view returns (uint256) {
        return _usage(epoch, modelOwner, _OWNER) * WEIGHT_UNIT;
    }

    /// @notice Usage weight of the tasks `node` served in `epoch`, in JOY wei (whole WEIGHT_UNITs).
    function nodeUsage(uint256 epoch, address node) external view returns (uint256) {
        return _usage(epoch, node, _NODE) * WEIGHT_UNIT;
    }

    /// @notice The model-owner reward `account` can claim for `epoch` (zero once claimed or
    /// swept). For an epoch that has not ended, what it would be if the epoch ended now.
    function pendingOwnerReward(uint256 epoch, address account) external view returns (uint256) {
        return _pending(epoch, account, _OWNER);
    }

    /// @notice The node reward `account` can claim for `epoch` (zero once claimed or swept).
    /// For an epoch that has not ended, what it would be if the epoch ended now.
    function pendingNodeReward(uint256 epoch, address account) external view returns (uint256) {
        return _pending(epoch, account, _NODE);
    }

    /// @notice Whether `account` claimed its owner and its node reward for `epoch`.
    function claimed(uint256 epoch, address account) external view returns (bool asOwner, bool asNode) {
        return (_hasClaimed(epoch, account, _OWNER), _hasClaimed(epoch, account, _NODE));
    }

    /// @notice JOY owed to the pools: the sum over epochs of pool minus paid out. The contract's
    /// JOY balance equals it, plus any JOY sent to the contract outside {fundEpoch}.
    function outstandingRewards() external view returns (uint256) {
        return _outstanding;
    }

    // ---- internals ----

    function _setOwnerShareBps(uint16 newOwnerShareBps) private {
        _checkBounds("ownerShareBps", newOwnerShareBps, 0, BASIS_POINTS);
        emit OwnerShareBpsSet(_ownerShareBps, newOwnerShareBps);
        _ownerShareBps = newOwnerShareBps;
    }

    function _checkBounds(string memory name, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert ProofOfUseParameterOutOfBounds(name, value, min, max);
    }

    function _requireEnded(uint256 epoch) private view {
        uint256 current = currentEpoch();
        if (epoch >= current) revert ProofOfUseEpochNotEnded(epoch, current);
    }

    function _requireNotEnded(uint256 epoch) private view {
        uint256 current = currentEpoch();
        if (epoch < current) revert ProofOfUseEpochEnded(epoch, current);
    }

    /// @dev Adds JOY that is already in (or about to enter) the contract to a pool. `fixShare`
    /// fixes the epoch's owner share when governance commits funds to it.
    function _credit(uint256 epoch, uint256 amount, bool fixShare) private {
        EpochInfo storage info = _epochs[epoch];
        info.pool = SafeCast.toUint128(info.pool + amount);
        _outstanding += amount;
        if (fixShare) _fixShare(info, epoch);
    }

    function _fixShare(EpochInfo storage info, uint256 epoch) private {
        if (info.shareFixed) return;
        uint16 share = _ownerShareBps;
        (info.ownerShareBps, info.shareFixed) = (share, true);
        emit EpochShareFixed(epoch, share);
    }

    function _claim(uint256 epoch, uint256 role) private returns (uint256 amount) {
        _requireEnded(epoch);
        EpochInfo storage info = _epochs[epoch];
        if (info.swept) revert ProofOfUseEpochSwept(epoch);
        if (_hasClaimed(epoch, msg.sender, role)) revert ProofOfUseAlreadyClaimed(epoch, msg.sender);
        // The first claim fixes the share (if governance has not): from now on owners and nodes
        // are paid from the same split, so together they never get more than the pool.
        _fixShare(info, epoch);
        amount = _reward(info, epoch, msg.sender, role);
        if (amount == 0) revert ProofOfUseNothingToClaim(epoch, msg.sender);
        _claimed[msg.sender].set(_claimBit(epoch, role));
        _pay(info, msg.sender, amount);
    }

    /// @dev Effects before the transfer: the pool's books are settled when the JOY leaves.
    function _pay(EpochInfo storage info, address to, uint256 amount) private {
        info.paidOut += uint128(amount); // amount <= pool - paidOut, so this fits
        _outstanding -= amount;
        _joy.safeTransfer(to, amount);
    }

    /// @dev The owners' part is floored and the nodes get the rest, so the two parts sum to the
    /// pool exactly; each claimant's pro-rata amount is floored again, so the claims of a role
    /// sum to at most its part, leaving under one wei of dust per claimant. The cap bounds what
    /// a unit of weight earns: weight x role share x REWARD_CAP_BPS.
    function _reward(EpochInfo memory info, uint256 epoch, address account, uint256 role)
        private
        view
        returns (uint256)
    {
        uint256 usage = _usage(epoch, account, role);
        if (usage == 0) return 0; // also covers an epoch without usage (a zero denominator)
        uint256 share = _shareOf(info);
        uint256 ownersPart = Math.mulDiv(info.pool, share, BASIS_POINTS);
        uint256 proRata;
        uint256 roleShare;
        if (role == _OWNER) {
            proRata = Math.mulDiv(ownersPart, usage, info.totalOwnerWeight);
            roleShare = share;
        } else {
            proRata = Math.mulDiv(info.pool - ownersPart, usage, info.totalNodeWeight);
            roleShare = BASIS_POINTS - share;
        }
        uint256 cap = Math.mulDiv(usage * WEIGHT_UNIT, roleShare * REWARD_CAP_BPS, BASIS_POINTS * BASIS_POINTS);
        return proRata < cap ? proRata : cap;
    }

    function _pending(uint256 epoch, address account, uint256 role) private view returns (uint256) {
        EpochInfo memory info = _epochs[epoch];
        if (info.swept || _hasClaimed(epoch, account, role)) return 0;
        return _reward(info, epoch, account, role);
    }

    function _shareOf(EpochInfo memory info) private view returns (uint16) {
        return info.shareFixed ? info.ownerShareBps : _ownerShareBps;
    }

    function _usage(uint256 epoch, address account, uint256 role) private view returns (uint256) {
        return _accountUsage[account][epoch >> 1][_lane(epoch, role)];
    }

    function _hasClaimed(uint256 epoch, address account, uint256 role) private view returns (bool) {
        return _claimed[account].get(_claimBit(epoch, role));
    }

    /// @dev Lane of (epoch, role) in the account's slot for epochs 2k and 2k+1.
    function _lane(uint256 epoch, uint256 role) private pure returns (uint256) {
        return ((epoch & 1) << 1) | role;
    }

    function _claimBit(uint256 epoch, uint256 role) private pure returns (uint256) {
        // Wraps only for epochs >= 2**255, which never end and so never hold a claim.
        unchecked {
            return (epoch << 1) | role;
        }
    }
}
