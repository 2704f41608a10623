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
/// @notice Issues ZCV for verified generation, one certificate per meter and clock hour:
/// units = floor(eligible Wh of the hour x unitsPerKwh at the hour's end / 1000).
/// @dev Per-hour figures are verifiable without per-hour storage in the registry: the claimant
/// supplies the readings recorded since its previous claim, and the exchange folds them onto the
/// registry's evidence head at that claim, which must give the head now (markClaimed returns both).
/// Invariant (2): for every (member registry, meter), issued units <= sum over grouped of the
/// hour's verified generation x the rate at its end, because each hour mints the floor of its
/// eligible Wh (<= PQ1) x that rate, the registry hands out each reading once (`markClaimed`
/// and the evidence chain) and `_issuedHours` lets each (meter, hour) issue once (EnergyTag).
/// Invariant (11): eligible Wh follow the member registry's issuance policy of the meter's
/// support status (FIT: max(PQ1 - PQ3, 0) per reading) in force at the hour's start.
/// One generation is claimed once even when several accepted generation registries share a
/// member registry (and so the same meter): per (member registry, meter) the exchange keeps the
/// registry claimed through, the latest period end claimed and the issued grouped. A claim through
/// another registry must start at or after that end; from then on that registry's claims must
/// stay after it too.
/// Trust: DEFAULT_ADMIN_ROLE sets and cancels future rates, accepts registries and pauses.
/// Claims are open only to the meter's owner, for meters the operator has not flagged.
contract ValueExchange is AccessControl, Pausable, IValueExchange {
    using SafeCast for uint256;

    /// @notice The default rate: 1 ZCV (1000 units, 3 decimals) per kWh.
    uint256 public constant DEFAULT_UNITS_PER_KWH = 1000;
    uint256 private constant WH_PER_KWH = 1000;
    uint256 private constant SECONDS_PER_HOUR = 3600;
    uint256 private constant WORD_BITS = 256;
    bytes32 private constant READING_TYPEHASH = keccak256(
        "Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,uint64 soldWh,uint64 purchasedWh)"
    );

    /// @dev A claim's readings grouped by clock hour, in first-seen order: eligible Wh, the
    /// policy in force at the hour's start and keccak folded over its readings' struct hashes.
    struct Hours {
        uint256 count;
        uint256 latest; // the latest hour start seen
        bytes32 head; // the evidence head folded over every reading
        uint256[] starts;
        uint256[] wh;
        IMemberRegistry.IssuancePolicy[] policies;
        bytes32[] evidence;
    }

    IZeroCarbonValue private immutable _token;
    RateEntry[] private _rates;
    mapping(address registry => bool) private _registries;
    mapping(IMemberRegistry members => mapping(bytes32 meterId => MeterClaims)) private _meterClaims;
    /// @dev Bit (hour % 256) of word (hour / 256), hour = hourStart / 3600, is set once the
    /// meter's hour has had a certificate: no (meter, hour) is issued twice (EnergyTag), across
    /// claims and across generation registries sharing the member registry.
    mapping(IMemberRegistry members => mapping(bytes32 meterId => mapping(uint256 word => uint256 bits))) private
        _issuedHours;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param token_ The ZCV token (this contract needs its ISSUER_ROLE).
    constructor(address admin, IZeroCarbonValue token_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _rates.push(RateEntry(0, uint192(DEFAULT_UNITS_PER_KWH)));
        emit RateScheduled(DEFAULT_UNITS_PER_KWH, 0);
    }

    /// @inheritdoc IValueExchange
    function claim(IGenerationRegistry registry, bytes32 meterId, IGenerationRegistry.Reading[] calldata readings)
        external
        whenNotPaused
        returns (uint256 firstCertificateId, uint256 certificates, uint256 units)
    {
        if (!_registries[address(registry)]) revert ExchangeUnknownRegistry(address(registry));
        IMemberRegistry members = registry.memberRegistry();
        // meter() (not meterSpec) so that an unknown meter reverts MembersUnknownMeter.
        IMemberRegistry.MeterSpec memory spec = members.meter(meterId).spec;
        if (spec.owner != msg.sender) revert ExchangeNotMeterOwner(meterId, msg.sender, spec.owner);
        if (spec.flagged) revert ExchangeMeterFlagged(meterId);

        IGenerationRegistry.Claim memory claimed = registry.markClaimed(meterId);
        MeterClaims storage record = _meterClaims[members][meterId];
        _checkNotClaimedElsewhere(record, registry, meterId, claimed.periodStart);
        IMemberRegistry.SupportStatus status = members.meterAttributes(meterId).supportStatus;
        Hours memory grouped = _groupHours(readings, members.issuancePolicies(status), claimed.previousEvidence);
        if (grouped.head != claimed.evidence) revert ExchangeEvidenceMismatch(meterId, grouped.head, claimed.evidence);
        IZeroCarbonValue.HourInput[] memory inputs;
        uint256 eligibleWh;
        uint256 forfeitedWh;
        (inputs, eligibleWh, forfeitedWh, units) = _issuableHours(grouped, _issuedHours[members][meterId]);
        if (claimed.periodEnd > record.claimedUntil) record.claimedUntil = claimed.periodEnd;
        record.claimedWh += eligibleWh.toUint96();
        record.issuedUnits += units.toUint96();

        certificates = inputs.length;
        if (certificates != 0) {
            firstCertificateId = _token.issueHourly(
                msg.sender,
                IZeroCarbonValue.IssuanceInput(
                    address(registry), meterId, status, claimed.previousEvidence, claimed.evidence
                ),
                inputs
            );
        }
        emit Claimed(
            address(registry),
            meterId,
            msg.sender,
            firstCertificateId,
            certificates,
            claimed.wh,
            eligibleWh,
            units,
            forfeitedWh
        );
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
    function isHourIssued(IMemberRegistry members, bytes32 meterId, uint256 hourStart) external view returns (bool) {
        uint256 hour = hourStart / SECONDS_PER_HOUR;
        return _issuedHours[members][meterId][hour / WORD_BITS] & (1 << (hour % WORD_BITS)) != 0;
    }

    /// @inheritdoc IValueExchange
    function token() external view returns (IZeroCarbonValue) {
        return _token;
    }

    /// @dev Groups readings by clock hour and folds them onto `head` as the registry folds its
    /// evidence head (keccak256(head, structHash) per reading, recording order): the caller
    /// compares grouped.head with the registry's, so these are exactly the readings since the
    /// previous claim. Readings mostly come in time order: a later hour opens a group at once,
    /// only a gap-filler searches the groups.
    function _groupHours(
        IGenerationRegistry.Reading[] calldata readings,
        IMemberRegistry.PolicyEntry[] memory policies,
        bytes32 head
    ) private pure returns (Hours memory grouped) {
        uint256 n = readings.length;
        grouped.starts = new uint256[](n);
        grouped.wh = new uint256[](n);
        grouped.policies = new IMemberRegistry.IssuancePolicy[](n);
        grouped.evidence = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            IGenerationRegistry.Reading calldata reading = readings[i];
            uint256 hourStart = reading.start - reading.start % SECONDS_PER_HOUR;
            uint256 slot = grouped.count;
            if (grouped.count != 0 && hourStart <= grouped.latest) slot = _findHour(grouped, hourStart);
            if (hourStart > grouped.latest) grouped.latest = hourStart;
            if (slot == grouped.count) {
                grouped.starts[slot] = hourStart;
                grouped.policies[slot] = _policyAt(policies, hourStart);
                ++grouped.count;
            }
            grouped.wh[slot] += _eligibleWh(reading, grouped.policies[slot]);
            bytes32 acc = grouped.evidence[slot];
            bytes32 structHash = _hashReading(reading);
            // Scratch-space hashes of (acc, structHash) and (head, structHash): no allocation.
            assembly ("memory-safe") {
                mstore(0x20, structHash)
                mstore(0x00, acc)
                acc := keccak256(0x00, 0x40)
                mstore(0x00, head)
                head := keccak256(0x00, 0x40)
            }
            grouped.evidence[slot] = acc;
        }
        grouped.head = head;
    }

    /// @return slot The hour's group, or grouped.count when it has none yet.
    function _findHour(Hours memory grouped, uint256 hourStart) private pure returns (uint256) {
        for (uint256 j = grouped.count; j > 0; --j) {
            if (grouped.starts[j - 1] == hourStart) return j - 1;
        }
        return grouped.count;
    }

    /// @dev Invariant 11: a self-consumption policy (FIT) issues PQ1 - PQ3 per slot, floored at 0.
    function _eligibleWh(IGenerationRegistry.Reading calldata reading, IMemberRegistry.IssuancePolicy policy)
        private
        pure
        returns (uint256)
    {
        if (policy == IMemberRegistry.IssuancePolicy.Generation) return reading.generatedWh;
        return reading.generatedWh > reading.soldWh ? reading.generatedWh - reading.soldWh : 0;
    }

    function _policyAt(IMemberRegistry.PolicyEntry[] memory policies, uint256 timestamp)
        private
        pure
        returns (IMemberRegistry.IssuancePolicy)
    {
        for (uint256 i = policies.length; i > 0; --i) {
            if (policies[i - 1].effectiveFrom <= timestamp) return policies[i - 1].policy;
        }
        return IMemberRegistry.IssuancePolicy.Generation; // unreachable: the first entry is from 0
    }

    /// @dev Marks each hour with eligible Wh as issued and prices it at the rate of its end. An
    /// hour already issued (the other half landed late, after a claim) forfeits its Wh.
    function _issuableHours(Hours memory grouped, mapping(uint256 => uint256) storage issued)
        private
        returns (
            IZeroCarbonValue.HourInput[] memory inputs,
            uint256 eligibleWh,
            uint256 forfeitedWh,
            uint256 units
        )
    {
        inputs = new IZeroCarbonValue.HourInput[](grouped.count);
        uint256 issuedCount;
        for (uint256 i = 0; i < grouped.count; ++i) {
            uint256 wh = grouped.wh[i];
            if (wh == 0) continue;
            uint256 hour = grouped.starts[i] / SECONDS_PER_HOUR;
            uint256 bit = 1 << (hour % WORD_BITS);
            uint256 bits = issued[hour / WORD_BITS];
            if (bits & bit != 0) {
                forfeitedWh += wh;
                continue;
            }
            issued[hour / WORD_BITS] = bits | bit;
            eligibleWh += wh;
            uint256 hourUnits = wh * rateAt(grouped.starts[i] + SECONDS_PER_HOUR) / WH_PER_KWH;
            if (hourUnits == 0) continue; // under one unit: nothing to certify
            units += hourUnits;
            inputs[issuedCount++] = IZeroCarbonValue.HourInput(
                grouped.starts[i].toUint32(), wh.toUint48(), hourUnits.toUint64(), grouped.policies[i], grouped.evidence[i]
            );
        }
        // Trim to the grouped issued (issuedCount <= grouped.count).
        assembly ("memory-safe") {
            mstore(inputs, issuedCount)
        }
    }

    /// @dev The registry's EIP-712 struct hash of a Reading (GenerationRegistry._hashReading).
    function _hashReading(IGenerationRegistry.Reading calldata r) private pure returns (bytes32) {
        return keccak256(
            abi.encode(READING_TYPEHASH, r.meterId, r.start, r.end, r.generatedWh, r.consumedWh, r.soldWh, r.purchasedWh)
        );
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
