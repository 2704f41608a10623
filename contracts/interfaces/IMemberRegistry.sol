// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IMemberRegistry
/// @notice Members of the platform (the patent's Fig. 3 actors) and their meters.
/// @dev The operator registers and maintains members and meters. A meter's owner and generation
/// method never change: the per-member ledger is the sum of its meters' ledgers, and a
/// certificate's method must stay true for the readings behind it. To move a meter to another
/// member, deactivate it and register a new meter id.
interface IMemberRegistry {
    /// @notice The patent's actor kinds.
    enum MemberKind {
        Household,
        PublicFacility,
        Business,
        Generator,
        Operator
    }

    /// @notice How a meter's energy is generated.
    enum GenerationMethod {
        Solar,
        Wind,
        Geothermal,
        Biomass,
        Hydro
    }

    /// @notice A meter's public support scheme (Japan): decides what its generation may issue.
    enum SupportStatus {
        None,
        FIT,
        FIP,
        PostFIT
    }

    /// @notice What a support status may issue per 30-minute reading (invariant 11).
    /// Generation: PQ1. SelfConsumption: max(PQ1 - PQ3, 0), since exported FIT power's value is
    /// already sold as FIT non-fossil certificates.
    enum IssuancePolicy {
        Generation,
        SelfConsumption
    }

    /// @notice A status's policy that applies to readings starting at or after `effectiveFrom`.
    struct PolicyEntry {
        uint64 effectiveFrom;
        IssuancePolicy policy;
    }

    /// @notice Per-meter attributes beside the hot spec; one slot, read once per claim.
    struct MeterAttributes {
        SupportStatus supportStatus;
        bool consumptionOptIn; // the owner pays for hourly consumption bookkeeping
    }

    /// @notice A registered member.
    struct Member {
        string name;
        MemberKind kind;
        bool active;
        uint40 registeredAt;
    }

    /// @notice The part of a meter the generation registry reads for every reading; one slot.
    struct MeterSpec {
        address owner;
        uint32 capacityW;
        uint40 commissionedAt;
        GenerationMethod method;
        bool active;
        bool flagged;
    }

    /// @notice A meter, with its descriptive fields.
    struct Meter {
        MeterSpec spec;
        string zone;
    }

    event MemberRegistered(address indexed account, string name, MemberKind kind);
    event MemberUpdated(address indexed account, string name, MemberKind kind);
    event MemberActiveSet(address indexed account, bool active);
    event MeterRegistered(
        bytes32 indexed meterId,
        address indexed owner,
        GenerationMethod method,
        uint32 capacityW,
        string zone,
        uint40 commissionedAt
    );
    event MeterUpdated(bytes32 indexed meterId, uint32 capacityW, string zone);
    event MeterActiveSet(bytes32 indexed meterId, bool active);
    /// @notice The operator flagged (or cleared) a meter; the exchange refuses flagged meters.
    event MeterFlagged(bytes32 indexed meterId, bool flagged, string reason);

    /// @notice The operator set a meter's support status (applies to readings claimed from now).
    event MeterSupportStatusSet(bytes32 indexed meterId, SupportStatus status);
    /// @notice A support status's issuance policy was scheduled.
    event IssuancePolicyScheduled(SupportStatus indexed status, IssuancePolicy policy, uint64 effectiveFrom);
    /// @notice A meter's owner opted in to (or out of) hourly consumption bookkeeping.
    event ConsumptionOptInSet(bytes32 indexed meterId, bool optedIn);

    /// @notice Thrown when a policy would take effect before now.
    error MembersPolicyInPast(uint64 effectiveFrom, uint256 now_);
    /// @notice Thrown when a policy would take effect before the status's last scheduled one.
    error MembersPolicyOutOfOrder(uint64 effectiveFrom, uint64 lastEffectiveFrom);
    /// @notice Thrown when someone other than a meter's owner changes its consumption opt-in.
    error MembersNotMeterOwner(bytes32 meterId, address caller);
    error MembersZeroAccount();
    error MembersEmptyName();
    error MembersAlreadyRegistered(address account);
    error MembersUnknownMember(address account);
    error MembersInactiveMember(address account);
    error MembersZeroMeterId();
    error MembersMeterAlreadyRegistered(bytes32 meterId);
    error MembersUnknownMeter(bytes32 meterId);
    error MembersEmptyZone();

    /// @notice Registers a member.
    /// @param account The member's account.
    /// @param name Display name or title.
    /// @param kind The actor kind.
    function registerMember(address account, string calldata name, MemberKind kind) external;

    /// @notice Changes a member's name and kind.
    function updateMember(address account, string calldata name, MemberKind kind) external;

    /// @notice Activates or deactivates a member. Inactive members cannot get new meters.
    function setMemberActive(address account, bool active) external;

    /// @notice Registers a meter for an active member.
    /// @param meterId The meter id (see `zcx.ids.meter_id` for the string encoding).
    /// @param owner The owning member.
    /// @param method Generation method.
    /// @param capacityW Rated capacity in W (0 for a consumption-only meter).
    /// @param zone Grid zone or location code.
    /// @param commissionedAt Commissioning time (unix seconds); earlier readings are refused.
    function registerMeter(
        bytes32 meterId,
        address owner,
        GenerationMethod method,
        uint32 capacityW,
        string calldata zone,
        uint40 commissionedAt
    ) external;

    /// @notice Changes a meter's capacity and zone (e.g. after a repowering).
    function updateMeter(bytes32 meterId, uint32 capacityW, string calldata zone) external;

    /// @notice Activates or deactivates a meter. Inactive meters' readings are refused.
    function setMeterActive(bytes32 meterId, bool active) external;

    /// @notice Flags a meter found suspicious, or clears the flag.
    function setMeterFlagged(bytes32 meterId, bool flagged, string calldata reason) external;

    /// @notice Sets a meter's support status (FIT, FIP, post-FIT, none). OPERATOR_ROLE only.
    function setSupportStatus(bytes32 meterId, SupportStatus status) external;
    /// @notice Schedules the issuance policy of a support status. OPERATOR_ROLE only.
    /// @param effectiveFrom Readings starting at or after it follow `policy`; not in the past,
    /// not before the status's last scheduled entry.
    function scheduleIssuancePolicy(SupportStatus status, IssuancePolicy policy, uint64 effectiveFrom) external;
    /// @notice Opts the caller's meter in to (or out of) hourly consumption bookkeeping (needed
    /// for matched retirement; costs gas on every reading). The meter's owner only.
    function setConsumptionOptIn(bytes32 meterId, bool optedIn) external;
    /// @notice A meter's support status and consumption opt-in (zero values for unknown meters).
    /// @return The attributes.
    function meterAttributes(bytes32 meterId) external view returns (MeterAttributes memory);
    /// @notice The policy schedule of a support status, oldest first.
    /// @return The entries (the first is effective from 0).
    function issuancePolicies(SupportStatus status) external view returns (PolicyEntry[] memory);
    /// @notice The policy of `status` in force at `timestamp`.
    /// @return The policy.
    function issuancePolicyAt(SupportStatus status, uint256 timestamp) external view returns (IssuancePolicy);
    /// @notice A member's record. Reverts for unknown accounts.
    /// @return The member.
    function member(address account) external view returns (Member memory);

    /// @notice Whether `account` is a registered member.
    /// @return True when registered, active or not.
    function isMember(address account) external view returns (bool);

    /// @notice A meter's full record. Reverts for unknown meters.
    /// @return The meter.
    function meter(bytes32 meterId) external view returns (Meter memory);

    /// @notice A meter's hot fields; owner is zero for an unknown meter (no revert).
    /// @return The spec.
    function meterSpec(bytes32 meterId) external view returns (MeterSpec memory);

    /// @notice All meters ever registered to `account`.
    /// @return The meter ids.
    function metersOf(address account) external view returns (bytes32[] memory);

    /// @notice All members, in registration order.
    /// @return The accounts.
    function members() external view returns (address[] memory);
}
