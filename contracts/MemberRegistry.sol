// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";

/// @title MemberRegistry
/// @notice Members (households, public facilities, businesses, generators, operators) and meters.
/// @dev Trust: OPERATOR_ROLE (the retail operator) writes everything here; DEFAULT_ADMIN_ROLE
/// grants and revokes roles. Readers (registry, exchange, auditors) trust these records as the
/// operator's registration of physical equipment.
contract MemberRegistry is AccessControl, IMemberRegistry {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    mapping(address account => Member) private _members;
    mapping(address account => bytes32[]) private _metersOf;
    address[] private _memberList;
    mapping(bytes32 meterId => MeterSpec) private _specs;
    mapping(bytes32 meterId => string) private _zones;
    mapping(bytes32 meterId => MeterAttributes) private _attributes;
    mapping(SupportStatus status => PolicyEntry[]) private _policies;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE.
    constructor(address admin, address operator) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        // Invariant 11: exported FIT power's value is sold as FIT non-fossil certificates.
        for (uint8 status = 0; status <= uint8(SupportStatus.PostFIT); ++status) {
            IssuancePolicy policy =
                SupportStatus(status) == SupportStatus.FIT ? IssuancePolicy.SelfConsumption : IssuancePolicy.Generation;
            _policies[SupportStatus(status)].push(PolicyEntry(0, policy));
            emit IssuancePolicyScheduled(SupportStatus(status), policy, 0);
        }
    }

    /// @inheritdoc IMemberRegistry
    function setSupportStatus(bytes32 meterId, SupportStatus status) external onlyRole(OPERATOR_ROLE) {
        _existingMeter(meterId);
        _attributes[meterId].supportStatus = status;
        emit MeterSupportStatusSet(meterId, status);
    }

    /// @inheritdoc IMemberRegistry
    function scheduleIssuancePolicy(SupportStatus status, IssuancePolicy policy, uint64 effectiveFrom)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (effectiveFrom < block.timestamp) revert MembersPolicyInPast(effectiveFrom, block.timestamp);
        PolicyEntry[] storage schedule = _policies[status];
        uint64 last = schedule[schedule.length - 1].effectiveFrom;
        if (effectiveFrom < last) revert MembersPolicyOutOfOrder(effectiveFrom, last);
        schedule.push(PolicyEntry(effectiveFrom, policy));
        emit IssuancePolicyScheduled(status, policy, effectiveFrom);
    }

    /// @inheritdoc IMemberRegistry
    function setConsumptionOptIn(bytes32 meterId, bool optedIn) external {
        if (_existingMeter(meterId).owner != msg.sender) revert MembersNotMeterOwner(meterId, msg.sender);
        _attributes[meterId].consumptionOptIn = optedIn;
        emit ConsumptionOptInSet(meterId, optedIn);
    }

    /// @inheritdoc IMemberRegistry
    function meterAttributes(bytes32 meterId) external view returns (MeterAttributes memory) {
        return _attributes[meterId];
    }

    /// @inheritdoc IMemberRegistry
    function issuancePolicies(SupportStatus status) external view returns (PolicyEntry[] memory) {
        return _policies[status];
    }

    /// @inheritdoc IMemberRegistry
    function issuancePolicyAt(SupportStatus status, uint256 timestamp) external view returns (IssuancePolicy) {
        PolicyEntry[] storage schedule = _policies[status];
        // Newest first: only future-dated entries sit above the one in force.
        for (uint256 i = schedule.length; i > 0; --i) {
            if (schedule[i - 1].effectiveFrom <= timestamp) return schedule[i - 1].policy;
        }
        return IssuancePolicy.Generation; // unreachable: the first entry is effective from 0
    }

    /// @inheritdoc IMemberRegistry
    function registerMember(address account, string calldata name, MemberKind kind)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (account == address(0)) revert MembersZeroAccount();
        if (bytes(name).length == 0) revert MembersEmptyName();
        if (_members[account].registeredAt != 0) revert MembersAlreadyRegistered(account);
        _members[account] = Member(name, kind, true, uint40(block.timestamp));
        _memberList.push(account);
        emit MemberRegistered(account, name, kind);
    }

    /// @inheritdoc IMemberRegistry
    function updateMember(address account, string calldata name, MemberKind kind)
        external
        onlyRole(OPERATOR_ROLE)
    {
        Member storage m = _existingMember(account);
        if (bytes(name).length == 0) revert MembersEmptyName();
        m.name = name;
        m.kind = kind;
        emit MemberUpdated(account, name, kind);
    }

    /// @inheritdoc IMemberRegistry
    function setMemberActive(address account, bool active) external onlyRole(OPERATOR_ROLE) {
        _existingMember(account).active = active;
        emit MemberActiveSet(account, active);
    }

    /// @inheritdoc IMemberRegistry
    function registerMeter(
        bytes32 meterId,
        address owner,
        GenerationMethod method,
        uint32 capacityW,
        string calldata zone,
        uint40 commissionedAt
    ) external onlyRole(OPERATOR_ROLE) {
        if (meterId == bytes32(0)) revert MembersZeroMeterId();
        if (_specs[meterId].owner != address(0)) revert MembersMeterAlreadyRegistered(meterId);
        if (!_existingMember(owner).active) revert MembersInactiveMember(owner);
        if (bytes(zone).length == 0) revert MembersEmptyZone();
        _specs[meterId] = MeterSpec(owner, capacityW, commissionedAt, method, true, false);
        _zones[meterId] = zone;
        _metersOf[owner].push(meterId);
        emit MeterRegistered(meterId, owner, method, capacityW, zone, commissionedAt);
    }

    /// @inheritdoc IMemberRegistry
    function updateMeter(bytes32 meterId, uint32 capacityW, string calldata zone)
        external
        onlyRole(OPERATOR_ROLE)
    {
        MeterSpec storage spec = _existingMeter(meterId);
        if (bytes(zone).length == 0) revert MembersEmptyZone();
        spec.capacityW = capacityW;
        _zones[meterId] = zone;
        emit MeterUpdated(meterId, capacityW, zone);
    }

    /// @inheritdoc IMemberRegistry
    function setMeterActive(bytes32 meterId, bool active) external onlyRole(OPERATOR_ROLE) {
        _existingMeter(meterId).active = active;
        emit MeterActiveSet(meterId, active);
    }

    /// @inheritdoc IMemberRegistry
    function setMeterFlagged(bytes32 meterId, bool flagged, string calldata reason)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _existingMeter(meterId).flagged = flagged;
        emit MeterFlagged(meterId, flagged, reason);
    }

    /// @inheritdoc IMemberRegistry
    function member(address account) external view returns (Member memory) {
        if (_members[account].registeredAt == 0) revert MembersUnknownMember(account);
        return _members[account];
    }

    /// @inheritdoc IMemberRegistry
    function isMember(address account) external view returns (bool) {
        return _members[account].registeredAt != 0;
    }

    /// @inheritdoc IMemberRegistry
    function meter(bytes32 meterId) external view returns (Meter memory) {
        if (_specs[meterId].owner == address(0)) revert MembersUnknownMeter(meterId);
        return Meter(_specs[meterId], _zones[meterId]);
    }

    /// @inheritdoc IMemberRegistry
    function meterSpec(bytes32 meterId) external view returns (MeterSpec memory) {
        return _specs[meterId];
    }

    /// @inheritdoc IMemberRegistry
    function metersOf(address account) external view returns (bytes32[] memory) {
        return _metersOf[account];
    }

    /// @inheritdoc IMemberRegistry
    function members() external view returns (address[] memory) {
        return _memberList;
    }

    function _existingMember(address account) private view returns (Member storage m) {
        m = _members[account];
        if (m.registeredAt == 0) revert MembersUnknownMember(account);
    }

    function _existingMeter(bytes32 meterId) private view returns (MeterSpec storage spec) {
        spec = _specs[meterId];
        if (spec.owner == address(0)) revert MembersUnknownMeter(meterId);
    }
}
