// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IGenerationRegistry} from "./IGenerationRegistry.sol";
import {IMemberRegistry} from "./IMemberRegistry.sol";
import {IZeroCarbonValue} from "./IZeroCarbonValue.sol";

/// @title IValueExchange
/// @notice Turns verified, unclaimed generation into ZCV at the rate in force (the patent's
/// virtual currency exchange 90). It may serve several generation registries.
interface IValueExchange {
    /// @notice A rate that applies to generation ending at or after `effectiveFrom`.
    struct RateEntry {
        uint64 effectiveFrom;
        uint192 unitsPerKwh;
    }

    /// @notice What has been claimed of one meter of one member registry, over every accepted
    /// generation registry that shares that member registry.
    /// Two storage slots, written once per claim: 2^96 Wh or units is far beyond any meter.
    struct MeterClaims {
        address registry; // the generation registry the last claim went through
        uint64 floor; // claims through `registry` must start at or after this
        uint64 claimedUntil; // latest generation end claimed, through any registry
        uint96 claimedWh;
        uint96 issuedUnits;
    }

    event Claimed(
        address indexed registry,
        bytes32 indexed meterId,
        address indexed owner,
        uint256 certificateId,
        uint256 wh,
        uint256 units,
        uint256 unitsPerKwh
    );
    event RateScheduled(uint256 unitsPerKwh, uint64 effectiveFrom);
    /// @notice A future rate was removed from the schedule; later entries moved down one index.
    event RateCancelled(uint256 index, uint256 unitsPerKwh, uint64 effectiveFrom);
    event RegistryAccepted(address indexed registry);
    event RegistryRemoved(address indexed registry);

    error ExchangeUnknownRegistry(address registry);
    error ExchangeRegistryAlreadyAccepted(address registry);
    error ExchangeNotMeterOwner(bytes32 meterId, address caller, address owner);
    error ExchangeMeterFlagged(bytes32 meterId);
    error ExchangeNothingToIssue(bytes32 meterId, uint256 wh);
    error ExchangeRateInPast(uint64 effectiveFrom, uint256 now_);
    error ExchangeRateOutOfOrder(uint64 effectiveFrom, uint64 lastEffectiveFrom);
    /// @notice Thrown when no schedule entry has this index and effective time.
    error ExchangeRateNotFound(uint256 index, uint64 effectiveFrom);
    /// @notice Thrown when cancelling a rate already in force (effective at or before now).
    error ExchangeRateInForce(uint256 index, uint64 effectiveFrom, uint256 now_);
    /// @notice Thrown when a claim's generation starts before `claimedUntil`, a point up to which
    /// this meter's generation may already have been claimed through another registry.
    error ExchangeGenerationClaimedElsewhere(bytes32 meterId, uint64 periodStart, uint64 claimedUntil);

    /// @notice Claims the caller's meter's unclaimed generation as ZCV under a new certificate, at
    /// the rate in force at the end of that generation (the claim's period end).
    /// @param registry An accepted generation registry.
    /// @param meterId The caller's meter.
    /// @return certificateId The new certificate.
    /// @return units ZCV units minted to the caller.
    function claim(IGenerationRegistry registry, bytes32 meterId)
        external
        returns (uint256 certificateId, uint256 units);

    /// @notice Schedules a new rate (ZCV units per kWh; 1000 = 1 ZCV/kWh). DEFAULT_ADMIN_ROLE only.
    /// @param unitsPerKwh The rate.
    /// @param effectiveFrom When it takes effect; not in the past, not before the last scheduled one.
    function scheduleRate(uint256 unitsPerKwh, uint64 effectiveFrom) external;

    /// @notice Removes a scheduled rate not yet in force. DEFAULT_ADMIN_ROLE only.
    /// @param index The entry's index in `rates()`.
    /// @param effectiveFrom The entry's effective time (guards against a stale index).
    function cancelScheduledRate(uint256 index, uint64 effectiveFrom) external;

    /// @notice The rate in force at `timestamp`.
    /// @return ZCV units per kWh.
    function rateAt(uint256 timestamp) external view returns (uint256);

    /// @notice Every scheduled rate, oldest first.
    /// @return The schedule.
    function rates() external view returns (RateEntry[] memory);

    /// @notice Whether `registry` is accepted.
    /// @return True when accepted.
    function isRegistry(address registry) external view returns (bool);

    /// @notice Claims so far of one meter of one member registry, over all generation registries.
    /// @return The record (registry last claimed through, floor, claimed-until, Wh, units).
    function meterClaims(IMemberRegistry members, bytes32 meterId) external view returns (MeterClaims memory);

    /// @notice The token this exchange mints.
    /// @return ZCV.
    function token() external view returns (IZeroCarbonValue);
}
