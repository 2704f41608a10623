// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IGenerationRegistry} from "./IGenerationRegistry.sol";
import {IZeroCarbonValue} from "./IZeroCarbonValue.sol";

/// @title IValueExchange
/// @notice Turns verified, unclaimed generation into ZCV at the rate in force (the patent's
/// virtual currency exchange 90). It may serve several generation registries.
interface IValueExchange {
    /// @notice A rate that applies to claims made at or after `effectiveFrom`.
    struct RateEntry {
        uint64 effectiveFrom;
        uint192 unitsPerKwh;
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
    event RegistryAccepted(address indexed registry);
    event RegistryRemoved(address indexed registry);

    error ExchangeUnknownRegistry(address registry);
    error ExchangeRegistryAlreadyAccepted(address registry);
    error ExchangeNotMeterOwner(bytes32 meterId, address caller, address owner);
    error ExchangeMeterFlagged(bytes32 meterId);
    error ExchangeNothingToIssue(bytes32 meterId, uint256 wh);
    error ExchangeRateInPast(uint64 effectiveFrom, uint256 now_);
    error ExchangeRateOutOfOrder(uint64 effectiveFrom, uint64 lastEffectiveFrom);

    /// @notice Claims the caller's meter's unclaimed generation as ZCV under a new certificate.
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

    /// @notice The rate in force at `timestamp`.
    /// @return ZCV units per kWh.
    function rateAt(uint256 timestamp) external view returns (uint256);

    /// @notice Every scheduled rate, oldest first.
    /// @return The schedule.
    function rates() external view returns (RateEntry[] memory);

    /// @notice Whether `registry` is accepted.
    /// @return True when accepted.
    function isRegistry(address registry) external view returns (bool);

    /// @notice Units issued so far for one meter of one registry.
    /// @return Units.
    function issuedUnits(address registry, bytes32 meterId) external view returns (uint256);

    /// @notice The token this exchange mints.
    /// @return ZCV.
    function token() external view returns (IZeroCarbonValue);
}
