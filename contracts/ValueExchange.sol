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
/// @dev Invariant (2): for every (registry, meter), issuedUnits <= sum over claims of
/// claimed Wh x rate in force at that claim, because each claim mints the floor of exactly that
/// product and the registry hands out each Wh once (`markClaimed`).
/// Trust: DEFAULT_ADMIN_ROLE sets rates, accepts registries and pauses. Claims are open only to
/// the meter's owner, for meters the operator has not flagged.
contract ValueExchange is AccessControl, Pausable, IValueExchange {
    using SafeCast for uint256;

    /// @notice The default rate: 1 ZCV (1000 units, 3 decimals) per kWh.
    uint256 public constant DEFAULT_UNITS_PER_KWH = 1000;
    uint256 private constant WH_PER_KWH = 1000;

    IZeroCarbonValue private immutable _token;
    RateEntry[] private _rates;
    mapping(address registry => bool) private _registries;
    mapping(address registry => mapping(bytes32 meterId => uint256)) private _issuedUnits;

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
        uint256 rate = rateAt(block.timestamp);
        units = claimed.wh * rate / WH_PER_KWH;
        if (units == 0) revert ExchangeNothingToIssue(meterId, claimed.wh);
        _issuedUnits[address(registry)][meterId] += units;

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
    function issuedUnits(address registry, bytes32 meterId) external view returns (uint256) {
        return _issuedUnits[registry][meterId];
    }

    /// @inheritdoc IValueExchange
    function token() external view returns (IZeroCarbonValue) {
        return _token;
    }
}
