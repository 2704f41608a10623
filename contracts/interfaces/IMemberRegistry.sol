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
