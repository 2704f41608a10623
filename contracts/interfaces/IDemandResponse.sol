// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IGenerationRegistry} from "./IGenerationRegistry.sol";
import {IMemberRegistry} from "./IMemberRegistry.sol";

/// @title IDemandResponse
/// @notice Demand-response events (the patent's operator 60 asks members to cut load at peak) and
/// their rewards, paid in the payment token.
/// @dev The operator announces an event for a zone and a run of the registry's slots in the future.
/// After the event ends, the operator measures each member's reduction from the on-chain readings
/// (purchased energy PQ4 against the ERAB "High 4 of 5" baseline, `zcx.dr`) and pays every reward
/// in one `settle` transaction. The contract does not recompute baselines (that needs weeks of
/// readings): it pays exactly `reducedWh * rewardPerKwh / 1000` per member, once per event, and
/// records every claimed reduction in a `DemandResponseRewarded` event, so any auditor recomputes
/// the baselines from `ReadingRecorded` events and compares (`zcx audit`).
interface IDemandResponse {
    enum Status {
        None,
        Announced,
        Cancelled,
        Settled
    }

    /// @notice One demand-response event. Times are unix seconds UTC; the event covers
    /// [start, start + slots * slotSeconds). `rewardPerKwh` is in payment-token base units per kWh
    /// reduced. `openToZone`: every member with a meter in `zone` may be rewarded; otherwise only
    /// the members named at announcement (`isParticipant`).
    struct DrEvent {
        uint64 start;
        uint32 slotSeconds;
        uint16 slots;
        Status status;
        bool openToZone;
        uint64 targetWh;
        uint64 settledAt;
        uint256 rewardPerKwh;
        uint256 totalReducedWh;
        uint256 totalPaid;
        string zone;
    }

    /// @notice The operator announced event `eventId`; `participants` is empty when the event is
    /// open to every member in the zone.
    event DemandResponseAnnounced(
        uint256 indexed eventId,
        string zone,
        uint64 start,
        uint32 slotSeconds,
        uint16 slots,
        uint64 targetWh,
        uint256 rewardPerKwh,
        address[] participants
    );
    /// @notice The operator cancelled event `eventId` before it started.
    event DemandResponseCancelled(uint256 indexed eventId);
    /// @notice `member` was paid `amount` for reducing `reducedWh` during event `eventId`.
    event DemandResponseRewarded(
        uint256 indexed eventId, address indexed member, uint256 reducedWh, uint256 amount
    );
    /// @notice Event `eventId` was settled: `members` rewarded, `totalReducedWh` and `totalPaid`
    /// summed over them (emitted after every `DemandResponseRewarded` of the settlement).
    event DemandResponseSettled(
        uint256 indexed eventId, uint256 members, uint256 totalReducedWh, uint256 totalPaid
    );

    /// @notice Thrown when a constructor address is zero.
    error DemandResponseZeroAddress();
    /// @notice Thrown when an event is announced without a zone.
    error DemandResponseEmptyZone();
    /// @notice Thrown when the first slot `start` does not lie on the registry's interval grid.
    error DemandResponseStartNotAligned(uint64 start, uint256 slotSeconds);
    /// @notice Thrown when an event is announced to start at or before the current block time.
    error DemandResponseStartNotInFuture(uint64 start, uint256 nowTs);
    /// @notice Thrown when the number of slots is zero or above `maxSlots`.
    error DemandResponseBadSlots(uint256 slots, uint256 maxSlots);
    /// @notice Thrown when the reward rate is zero.
    error DemandResponseZeroRate();
    /// @notice Thrown when more than `maxParticipants` members are named.
    error DemandResponseTooManyParticipants(uint256 count, uint256 maxParticipants);
    /// @notice Thrown when members are not in strictly ascending address order (also catches a
    /// duplicate, which is adjacent once sorted).
    error DemandResponseMembersUnsorted(uint256 index, address member);
    /// @notice Thrown when `member` is not registered in the MemberRegistry.
    error DemandResponseNotMember(address member);
    /// @notice Thrown when `member` was not named as a participant of event `eventId`.
    error DemandResponseNotParticipant(uint256 eventId, address member);
    /// @notice Thrown when there is no event `eventId`.
    error DemandResponseUnknownEvent(uint256 eventId);
    /// @notice Thrown when event `eventId` is cancelled or settled (status `status`), so it can be
    /// neither cancelled nor paid again.
    error DemandResponseNotAnnounced(uint256 eventId, Status status);
    /// @notice Thrown when event `eventId` is cancelled at or after its start `start`.
    error DemandResponseAlreadyStarted(uint256 eventId, uint64 start);
    /// @notice Thrown when event `eventId` is settled before its end `end`.
    error DemandResponseNotEnded(uint256 eventId, uint64 end);
    /// @notice Thrown when the members and reducedWh arrays differ in length.
    error DemandResponseLengthMismatch(uint256 members, uint256 reductions);
    /// @notice Thrown when a settlement names no member.
    error DemandResponseNoMembers();

    /// @notice Announces a demand-response event. OPERATOR_ROLE only.
    /// @param zone Grid zone, as the meters' zone in the MemberRegistry (e.g. "TEPCO-13").
    /// @param start First slot start: on the registry's interval grid and in the future.
    /// @param slots Number of slots (1 to MAX_SLOTS), each the registry's interval long.
    /// @param targetWh The reduction the operator asks for, over all members (informational).
    /// @param rewardPerKwh Payment-token base units paid per kWh reduced.
    /// @param participants Invited members, strictly ascending; empty: every member in the zone.
    /// @return eventId The new event's id (1, 2, ...).
    function announce(
        string calldata zone,
        uint64 start,
        uint16 slots,
        uint64 targetWh,
        uint256 rewardPerKwh,
        address[] calldata participants
    ) external returns (uint256 eventId);

    /// @notice Cancels an announced event before it starts. OPERATOR_ROLE only.
    /// @param eventId The event.
    function cancel(uint256 eventId) external;

    /// @notice Pays every member's reward of an ended event in one transaction and marks the event
    /// settled. Pulls the total from the caller (approve it first). OPERATOR_ROLE only.
    /// @param eventId The event.
    /// @param members Rewarded members, strictly ascending, registered (and invited, unless the
    ///        event is open to its zone).
    /// @param reducedWh Each member's measured reduction in Wh (High 4 of 5 baseline, `zcx.dr`).
    /// @return totalPaid Payment-token base units paid in all.
    function settle(uint256 eventId, address[] calldata members, uint256[] calldata reducedWh)
        external
        returns (uint256 totalPaid);

    /// @notice An event. Reverts for an unknown id.
    /// @param eventId The event.
    /// @return The event.
    function drEvent(uint256 eventId) external view returns (DrEvent memory);

    /// @notice Number of events announced so far (ids run 1..eventCount).
    /// @return The count.
    function eventCount() external view returns (uint256);

    /// @notice Whether `member` was invited to event `eventId` (false for zone-wide events).
    /// @param eventId The event.
    /// @param member The member.
    /// @return True when invited.
    function isParticipant(uint256 eventId, address member) external view returns (bool);

    /// @notice Reward for a reduction at a rate: `reducedWh * rewardPerKwh / 1000`, rounded down.
    /// @param reducedWh Reduction in Wh.
    /// @param rewardPerKwh Payment-token base units per kWh.
    /// @return Payment-token base units.
    function rewardFor(uint256 reducedWh, uint256 rewardPerKwh) external pure returns (uint256);

    /// @notice The token rewards are paid in.
    /// @return The payment token.
    function paymentToken() external view returns (IERC20);

    /// @notice The registry whose interval grid events follow.
    /// @return The generation registry.
    function registry() external view returns (IGenerationRegistry);

    /// @notice The registry that says who is a member.
    /// @return The member registry.
    function memberRegistry() external view returns (IMemberRegistry);
}
