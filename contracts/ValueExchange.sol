// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {IGenerationRegistry} from "./interfaces/IGenerationRegistry.sol";
import {IZeroCarbonValue} from "./interfaces/IZeroCarbonValue.sol";
import {IValueExchange} from "./interfaces/IValueExchange.sol";

/// @title ValueExchange
/// @notice Issues ZCV for verified generation: units = floor(Wh x unitsPerKwh / 1000).
/// @dev Invariant (2): for every (member registry, meter), issued units <= sum over claims of
/// claimed Wh x the rate in force at the end of that claim's generation, because each claim
/// mints the floor of exactly that product and the registry hands out each Wh once
/// (`markClaimed`).
/// One generation is claimed once even when several accepted generation registries share a
/// member registry (and so the same meter): per (member registry, meter) the exchange keeps the
/// registry claimed through and the latest period end claimed. A claim through another registry
/// must start at or after that end; from then on that registry's claims must stay after it too.
/// Trust: DEFAULT_ADMIN_ROLE sets and cancels future rates, accepts registries and pauses.
/// Claims are open only to the meter's owner, for meters the operator has not flagged.
contract ValueExchange is AccessControl, Pausable, IValueExchange {
    using SafeCast for uint256;

    /// @notice The default rate: 1 ZCV (1000 units, 3 decimals) per kWh.
    uint256 public constant DEFAULT_UNITS_PER_KWH = 1000;
    uint256 private constant WH_PER_KWH = 1000;

    IZeroCarbonValue private immutable _token;
    RateEntry[] private _rates;
    mapping(address registry => bool) private _registries;
    mapping(IMemberRegistry members => mapping(bytes32 meterId => MeterClaims)) private _meterClaims;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param token_ The ZCV token (this contract needs its ISSUER_ROLE).
    constructor(address admin, IZeroCarbonValue token_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _rates.push(RateEntry(0, uint192(DEFAULT_UNITS_PER_KWH)));
        emit RateScheduled(DEFAULT_UNITS_PER_KWH, 0);
    }

    /// @inheritdoc IValueExchange
    function claim(IGenerationRegistry registry, bytes32 meterId)
        external
        whenNotPaused
        returns (uint256 certificateId, uint256 units)
    {
        if (!_registries[address(registry)]) revert ExchangeUnknownRegistry(address(registry));
        IMemberRegistry members = registry.memberRegistry();
        IMemberRegistry.Meter memory meter = members.meter(meterId);
        if (meter.spec.owner != msg.sender) revert ExchangeNotMeterOwner(meterId, msg.sender, meter.spec.owner);
        if (meter.spec.flagged) revert ExchangeMeterFlagged(meterId);

        IGenerationRegistry.Claim memory claimed = registry.markClaimed(meterId);
        MeterClaims storage record = _meterClaims[members][meterId];
        _checkNotClaimedElsewhere(record, registry, meterId, claimed.periodStart);
        // The rate of the generation's end, not of the claim: waiting for an announced higher
        // rate gains nothing. A claim spans many intervals, so this is the rate of its last one;
        // certificates will become hourly (a later issue), making the rate exact per hour.
        uint256 rate = rateAt(claimed.periodEnd);
        units = claimed.wh * rate / WH_PER_KWH;
        if (units == 0) revert ExchangeNothingToIssue(meterId, claimed.wh);
        if (claimed.periodEnd > record.claimedUntil) record.claimedUntil = claimed.periodEnd;
        record.claimedWh += claimed.wh.toUint96();
        record.issuedUnits += units.toUint96();

        certificateId = _token.issue(
            msg.sender,
            IZeroCarbonValue.CertificateInput({
                registry: address(registry),
                meterId: meterId,
                ownerName: members.member(msg.sender).name,
                method: meter.spec.method,
                wh: claimed.wh.toUint64(),
                periodStart: claimed.periodStart,
                periodEnd: claimed.periodEnd,
                zone: meter.zone,
                capacityW: meter.spec.capacityW,
                evidence: claimed.evidence,
                units: units
            })
        );
        emit Claimed(address(registry), meterId, msg.sender, certificateId, claimed.wh, units, rate);
    }

    /// @inheritdoc IValueExchange
    function scheduleRate(uint256 unitsPerKwh, uint64 effectiveFrom) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (effectiveFrom < block.timestamp) revert ExchangeRateInPast(effectiveFrom, block.timestamp);
        uint64 last = _rates[_rates.length - 1].effectiveFrom;
        if (effectiveFrom < last) revert ExchangeRateOutOfOrder(effectiveFrom, last);
        _rates.push(RateEntry(effectiveFrom, unitsPerKwh.toUint192()));
        emit RateScheduled(unitsPerKwh, effectiveFrom);
    }

    /// @inheritdoc IValueExchange
    function cancelScheduledRate(uint256 index, uint64 effectiveFrom) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 count = _rates.length;
        if (index >= count || _rates[index].effectiveFrom != effectiveFrom) {
            revert ExchangeRateNotFound(index, effectiveFrom);
        }
        if (effectiveFrom <= block.timestamp) revert ExchangeRateInForce(index, effectiveFrom, block.timestamp);
        uint256 unitsPerKwh = _rates[index].unitsPerKwh;
        // Entries after a future one are future too (the schedule is sorted): only a few move.
        for (uint256 i = index + 1; i < count; ++i) {
            _rates[i - 1] = _rates[i];
        }
        _rates.pop();
        emit RateCancelled(index, unitsPerKwh, effectiveFrom);
    }

    /// @notice Accepts a generation registry whose readings may be claimed. DEFAULT_ADMIN_ROLE only.
    function acceptRegistry(address registry) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (_registries[registry]) revert ExchangeRegistryAlreadyAccepted(registry);
        _registries[registry] = true;
        emit RegistryAccepted(registry);
    }

    /// @notice Stops accepting claims from a registry. DEFAULT_ADMIN_ROLE only.
    function removeRegistry(address registry) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!_registries[registry]) revert ExchangeUnknownRegistry(registry);
        _registries[registry] = false;
        emit RegistryRemoved(registry);
    }

    /// @notice Stops claims. DEFAULT_ADMIN_ROLE only.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resumes claims. DEFAULT_ADMIN_ROLE only.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @inheritdoc IValueExchange
    function rateAt(uint256 timestamp) public view returns (uint256) {
        // Newest first: only a few future-dated entries ever sit above the one in force.
        for (uint256 i = _rates.length; i > 0; --i) {
            if (_rates[i - 1].effectiveFrom <= timestamp) return _rates[i - 1].unitsPerKwh;
        }
        return 0; // unreachable: the first entry is effective from 0
    }

    /// @inheritdoc IValueExchange
    function rates() external view returns (RateEntry[] memory) {
        return _rates;
    }

    /// @inheritdoc IValueExchange
    function isRegistry(address registry) external view returns (bool) {
        return _registries[registry];
    }

    /// @inheritdoc IValueExchange
    function meterClaims(IMemberRegistry members, bytes32 meterId) external view returns (MeterClaims memory) {
        return _meterClaims[members][meterId];
    }

    /// @inheritdoc IValueExchange
    function token() external view returns (IZeroCarbonValue) {
        return _token;
    }

    /// @dev Keeps one generation from being claimed through two registries that share the member
    /// registry: a claim through a registry other than the last one used must start at or after
    /// everything claimed so far, and that point becomes the new registry's floor.
    function _checkNotClaimedElsewhere(
        MeterClaims storage record,
        IGenerationRegistry registry,
        bytes32 meterId,
        uint64 periodStart
    ) private {
        if (record.registry == address(registry)) {
            if (periodStart < record.floor) {
                revert ExchangeGenerationClaimedElsewhere(meterId, periodStart, record.floor);
            }
            return;
        }
        if (periodStart < record.claimedUntil) {
            revert ExchangeGenerationClaimedElsewhere(meterId, periodStart, record.claimedUntil);
        }
        record.registry = address(registry);
        record.floor = record.claimedUntil;
    }
}
