// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IDemandResponse} from "./interfaces/IDemandResponse.sol";
import {IGenerationRegistry} from "./interfaces/IGenerationRegistry.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";

/// @title DemandResponse
/// @notice The operator's demand-response events (patent, operator 60: "save power at peak") and
/// their rewards in the payment token, measured against Japan's ERAB "High 4 of 5" baseline.
/// @dev Invariants kept here:
///  (D1) an event is paid at most once: `settle` moves it from Announced to Settled before any
///       token moves, and only an Announced event can be settled or cancelled;
///  (D2) an event is paid only after it ended, and cancelled only before it started;
///  (D3) every paid amount is exactly `reducedWh * rewardPerKwh / 1000` of the event's rate, and
///       the contract keeps no tokens between transactions (it pulls the total and pays it out);
///  (D4) only registered members (and, for an invitation-only event, invited ones) are paid, each
///       at most once per event (members strictly ascending).
/// Trust: OPERATOR_ROLE announces, cancels and settles, and is trusted for the reductions it
/// claims; the contract cannot recompute the baselines (weeks of readings), so every claimed
/// reduction is in a `DemandResponseRewarded` event and the audit recomputes it from the
/// registry's `ReadingRecorded` events (docs/demand-response.md). DEFAULT_ADMIN_ROLE grants roles.
contract DemandResponse is AccessControl, ReentrancyGuardTransient, IDemandResponse {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice At most one day of 30-minute slots per event.
    uint256 public constant MAX_SLOTS = 48;
    /// @notice Bounds the announcement's gas (one storage slot per invited member).
    uint256 public constant MAX_PARTICIPANTS = 500;
    uint256 private constant WH_PER_KWH = 1000;

    IERC20 private immutable PAYMENT_TOKEN;
    IGenerationRegistry private immutable REGISTRY;
    IMemberRegistry private immutable MEMBERS;

    uint256 private _eventCount;
    mapping(uint256 eventId => DrEvent) private _events;
    mapping(uint256 eventId => mapping(address member => bool)) private _invited;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE.
    /// @param paymentToken The reward currency (a plain ERC-20; fee-on-transfer tokens would leave
    ///        the last members short and revert the settlement).
    /// @param registry The generation registry whose interval grid the events follow.
    constructor(address admin, address operator, IERC20 paymentToken, IGenerationRegistry registry) {
        if (address(paymentToken) == address(0) || address(registry) == address(0)) {
            revert DemandResponseZeroAddress();
        }
        PAYMENT_TOKEN = paymentToken;
        REGISTRY = registry;
        MEMBERS = registry.memberRegistry();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /// @inheritdoc IDemandResponse
    function announce(
        string calldata zone,
        uint64 start,
        uint16 slots,
        uint64 targetWh,
        uint256 rewardPerKwh,
        address[] calldata participants
    ) external onlyRole(OPERATOR_ROLE) returns (uint256 eventId) {
        uint256 slotSeconds = REGISTRY.intervalSeconds();
        if (bytes(zone).length == 0) revert DemandResponseEmptyZone();
        if (start % slotSeconds != 0) revert DemandResponseStartNotAligned(start, slotSeconds);
        if (start <= block.timestamp) revert DemandResponseStartNotInFuture(start, block.timestamp);
        if (slots == 0 || slots > MAX_SLOTS) revert DemandResponseBadSlots(slots, MAX_SLOTS);
        if (rewardPerKwh == 0) revert DemandResponseZeroRate();
        uint256 n = participants.length;
        if (n > MAX_PARTICIPANTS) revert DemandResponseTooManyParticipants(n, MAX_PARTICIPANTS);
        eventId = ++_eventCount;
        for (uint256 i; i < n; ++i) {
            address member = participants[i];
            _checkMember(participants, i);
            _invited[eventId][member] = true;
        }
        DrEvent storage e = _events[eventId];
        e.start = start;
        e.slotSeconds = uint32(slotSeconds); // the registry caps its interval at 1 day
        e.slots = slots;
        e.status = Status.Announced;
        e.openToZone = n == 0;
        e.targetWh = targetWh;
        e.rewardPerKwh = rewardPerKwh;
        e.zone = zone;
        emit DemandResponseAnnounced(
            eventId, zone, start, uint32(slotSeconds), slots, targetWh, rewardPerKwh, participants
        );
    }

    /// @inheritdoc IDemandResponse
    function cancel(uint256 eventId) external onlyRole(OPERATOR_ROLE) {
        DrEvent storage e = _announced(eventId);
        if (block.timestamp >= e.start) revert DemandResponseAlreadyStarted(eventId, e.start);
        e.status = Status.Cancelled;
        emit DemandResponseCancelled(eventId);
    }

    /// @inheritdoc IDemandResponse
    function settle(uint256 eventId, address[] calldata members, uint256[] calldata reducedWh)
        external
        nonReentrant
        onlyRole(OPERATOR_ROLE)
        returns (uint256 totalPaid)
    {
        DrEvent storage e = _announced(eventId);
        uint64 end = _end(e);
        if (block.timestamp < end) revert DemandResponseNotEnded(eventId, end);
        if (members.length != reducedWh.length) {
            revert DemandResponseLengthMismatch(members.length, reducedWh.length);
        }
        if (members.length == 0) revert DemandResponseNoMembers();
        (uint256[] memory amounts, uint256 totalReduced) = _rewards(eventId, e, members, reducedWh);
        for (uint256 i; i < amounts.length; ++i) {
            totalPaid += amounts[i];
        }
        // (D1): settled before any token moves, so a re-entrant or repeated call finds it closed.
        e.status = Status.Settled;
        e.settledAt = uint64(block.timestamp);
        e.totalReducedWh = totalReduced;
        e.totalPaid = totalPaid;
        if (totalPaid != 0) PAYMENT_TOKEN.safeTransferFrom(msg.sender, address(this), totalPaid);
        for (uint256 i; i < amounts.length; ++i) {
            if (amounts[i] != 0) PAYMENT_TOKEN.safeTransfer(members[i], amounts[i]);
            emit DemandResponseRewarded(eventId, members[i], reducedWh[i], amounts[i]);
        }
        emit DemandResponseSettled(eventId, members.length, totalReduced, totalPaid);
    }

    /// @inheritdoc IDemandResponse
    function drEvent(uint256 eventId) external view returns (DrEvent memory) {
        return _existing(eventId);
    }

    /// @inheritdoc IDemandResponse
    function eventCount() external view returns (uint256) {
        return _eventCount;
    }

    /// @inheritdoc IDemandResponse
    function isParticipant(uint256 eventId, address member) external view returns (bool) {
        return _invited[eventId][member];
    }

    /// @inheritdoc IDemandResponse
    function rewardFor(uint256 reducedWh, uint256 rewardPerKwh) external pure returns (uint256) {
        return reducedWh * rewardPerKwh / WH_PER_KWH;
    }

    /// @inheritdoc IDemandResponse
    function paymentToken() external view returns (IERC20) {
        return PAYMENT_TOKEN;
    }

    /// @inheritdoc IDemandResponse
    function registry() external view returns (IGenerationRegistry) {
        return REGISTRY;
    }

    /// @inheritdoc IDemandResponse
    function memberRegistry() external view returns (IMemberRegistry) {
        return MEMBERS;
    }

    /// @dev Checks every paid member (D4) and prices its reduction at the event's rate (D3).
    function _rewards(
        uint256 eventId,
        DrEvent storage e,
        address[] calldata members,
        uint256[] calldata reducedWh
    ) private view returns (uint256[] memory amounts, uint256 totalReduced) {
        bool open = e.openToZone;
        uint256 rate = e.rewardPerKwh;
        amounts = new uint256[](members.length);
        for (uint256 i; i < members.length; ++i) {
            _checkMember(members, i);
            if (!open && !_invited[eventId][members[i]]) {
                revert DemandResponseNotParticipant(eventId, members[i]);
            }
            amounts[i] = reducedWh[i] * rate / WH_PER_KWH;
            totalReduced += reducedWh[i];
        }
    }

    /// @dev Member `i` is registered and strictly above member `i - 1` (no duplicates).
    function _checkMember(address[] calldata list, uint256 i) private view {
        address member = list[i];
        if (i != 0 && member <= list[i - 1]) revert DemandResponseMembersUnsorted(i, member);
        if (!MEMBERS.isMember(member)) revert DemandResponseNotMember(member);
    }

    function _existing(uint256 eventId) private view returns (DrEvent storage e) {
        e = _events[eventId];
        if (e.status == Status.None) revert DemandResponseUnknownEvent(eventId);
    }

    function _announced(uint256 eventId) private view returns (DrEvent storage e) {
        e = _existing(eventId);
        if (e.status != Status.Announced) revert DemandResponseNotAnnounced(eventId, e.status);
    }

    function _end(DrEvent storage e) private view returns (uint64) {
        return e.start + uint64(e.slots) * e.slotSeconds;
    }
}
