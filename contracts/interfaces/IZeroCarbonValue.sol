// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMemberRegistry} from "./IMemberRegistry.sol";

/// @title IZeroCarbonValue
/// @notice ZCV: an ERC-20 whose every unit traces back to one generation certificate.
/// @dev 3 decimals: 1 unit = 1 Wh at the default rate, 1 ZCV (1000 units) = 1 kWh.
/// Each holder keeps one lot per certificate it holds (certificate id, units), readable in O(1) with
/// `lotBalance`. Transfers move lots; the units of a certificate are conserved across holders,
/// retirements and revocation (DESIGN invariant 4). Plain transfers spend the holder's lots in an
/// order that nobody else can make them walk (docs/provenance.md); revoked certificates' lots are
/// frozen and move to the holder's frozen ledger when met (or when anyone calls `evict`).
interface IZeroCarbonValue {
    /// @notice What the exchange supplies to issue a certificate.
    struct CertificateInput {
        address registry;
        bytes32 meterId;
        string ownerName;
        IMemberRegistry.GenerationMethod method;
        uint64 wh;
        uint64 periodStart;
        uint64 periodEnd;
        string zone;
        uint32 capacityW;
        bytes32 evidence;
        uint256 units;
    }

    /// @notice One hourly certificate to issue (schema 2): one meter's eligible generation within
    /// one clock hour. `evidence` = keccak256 of the EIP-712 struct hashes of exactly the
    /// readings behind it, in recording order (emitted, not stored).
    struct HourInput {
        uint32 hourStart;
        uint48 wh;
        uint64 units;
        IMemberRegistry.IssuancePolicy policy;
        bytes32 evidence;
    }

    /// @notice The claim behind a run of hourly certificates. Static meter attributes (method,
    /// capacity, zone, commissioning date, owner) are referenced from the member registry of
    /// `registry`, not copied.
    struct IssuanceInput {
        address registry;
        bytes32 meterId;
        IMemberRegistry.SupportStatus supportStatus;
        bytes32 previousEvidence; // the meter's evidence head at its previous claim
        bytes32 evidence; // the meter's evidence head at this claim
    }

    /// @notice A schema-2 certificate: one slot. Its claim is `issuance(issuanceId)`.
    struct HourlyCertificate {
        uint32 hourStart;
        uint32 issuanceId;
        uint48 wh;
        uint64 units;
        uint64 retiredUnits;
        IMemberRegistry.IssuancePolicy policy;
        bool revoked;
    }

    /// @notice The claim-wide attributes of schema-2 certificates (four slots per claim).
    struct Issuance {
        address registry;
        uint64 issuedAt;
        IMemberRegistry.SupportStatus supportStatus;
        address issuedTo;
        bytes32 meterId;
        bytes32 evidence;
    }

    /// @notice The record behind issued units. `schemaVersion` versions this layout. Schema 2
    /// (hourly) fills it from `hourlyCertificate` and `issuance`: ownerName, zone, method and
    /// capacityW are left empty there (read them from the member registry of `registry`; on chain
    /// as the market does, off chain with zcx.certificates), periodStart/End is the hour and
    /// evidence is the claim's evidence head.
    struct Certificate {
        uint16 schemaVersion;
        uint64 id;
        address registry;
        bytes32 meterId;
        string ownerName;
        IMemberRegistry.GenerationMethod method;
        uint64 wh;
        uint64 periodStart;
        uint64 periodEnd;
        string zone;
        uint32 capacityW;
        bytes32 evidence;
        uint64 issuedAt;
        address issuedTo;
        uint256 units;
        uint256 retiredUnits;
        bool revoked;
    }

    /// @notice A holding of units of one certificate.
    struct Lot {
        uint64 certificateId;
        uint192 units;
    }

    /// @notice Picks `units` of the holder's lot of `certificateId`. Picks name strictly ascending
    /// certificate ids (so a certificate appears at most once per call).
    struct LotPick {
        uint64 certificateId;
        uint192 units;
    }

    /// @notice Proof that units were retired for a beneficiary's consumption period.
    struct Retirement {
        uint16 schemaVersion;
        uint64 id;
        address holder;
        string beneficiary;
        string reason;
        uint64 consumptionStart;
        uint64 consumptionEnd;
        uint64 retiredAt;
        uint256 units;
        uint64[] certificateIds;
        uint256[] certificateUnits;
    }

    /// @notice The patent's Fig. 6 coin counters of one account.
    struct Counters {
        uint256 purchased;
        uint256 used;
        uint256 amortized;
        uint256 balance;
    }

    event CertificateIssued(
        uint256 indexed certificateId,
        bytes32 indexed meterId,
        address indexed to,
        uint256 units,
        uint64 wh,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 evidence
    );
    /// @notice A claim issued a run of hourly certificates, ids firstCertificateId .. + count - 1
    /// (each also has a CertificateIssued event with its hour and per-hour evidence).
    event HourlyIssued(
        uint256 indexed issuanceId,
        address indexed registry,
        bytes32 indexed meterId,
        address to,
        uint256 firstCertificateId,
        uint256 count,
        IMemberRegistry.SupportStatus supportStatus,
        bytes32 previousEvidence,
        bytes32 evidence
    );
    /// @notice Units of one certificate changed hands (emitted before the ERC-20 Transfer).
    event LotMoved(address indexed from, address indexed to, uint256 indexed certificateId, uint256 units);
    event Paid(address indexed from, address indexed to, uint256 units, bytes32 indexed paymentReference);
    /// @notice The canonical retirement event; `beneficiary` is separate from the holder.
    event Retired(
        uint256 indexed retirementId,
        address indexed holder,
        string beneficiary,
        uint256 units,
        uint64 consumptionStart,
        uint64 consumptionEnd,
        string reason,
        uint64[] certificateIds,
        uint256[] certificateUnits
    );
    event CertificateRevoked(uint256 indexed certificateId, string reason);
    /// @notice A holder's lot of a revoked certificate left the spend order for its frozen ledger.
    event LotFrozen(address indexed holder, uint256 indexed certificateId, uint256 units);

    /// @notice Thrown when a certificate id was never issued.
    error ZcvUnknownCertificate(uint256 certificateId);
    /// @notice Thrown when units of a revoked (frozen) certificate would move or be retired, or
    /// when only frozen units could cover a plain transfer or retirement.
    error ZcvCertificateRevoked(uint256 certificateId);
    /// @notice Thrown when units of an expired certificate (`expiryMonths` after its hour ended, at
    /// `expiredAt`) would move or be retired, or when only frozen units could cover a plain transfer
    /// or retirement and the first of them is expired.
    error ZcvCertificateExpired(uint256 certificateId, uint256 expiredAt);
    /// @notice Thrown when a retirement's consumption period does not lie within the vintage year
    /// (calendar year in JST) of a certificate it retires.
    error ZcvConsumptionOutsideVintage(
        uint256 certificateId, uint256 vintageYear, uint64 consumptionStart, uint64 consumptionEnd
    );
    /// @notice Thrown when a deployment's expiry is 0 or above MAX_EXPIRY_MONTHS months.
    error ZcvBadExpiry(uint256 expiryMonths);
    /// @notice Thrown when revoking a certificate that is already revoked.
    error ZcvAlreadyRevoked(uint256 certificateId);
    /// @notice Thrown when one call would take more than `maxLots` lots; send less per call (the
    /// SDK and CLI split automatically) or name the certificates with `transferLots`.
    error ZcvTooManyLots(uint256 maxLots);
    /// @notice Thrown when an amount (or a pick's units, or a pick list) is zero/empty.
    error ZcvZeroUnits();
    /// @notice Thrown when picks do not name strictly ascending certificate ids (at `certificateId`).
    error ZcvLotPicksUnordered(uint256 certificateId);
    /// @notice Thrown when the holder's lot of `certificateId` holds fewer units than picked.
    error ZcvLotTooSmall(uint256 certificateId, uint256 requested, uint256 available);
    /// @notice Thrown when `evict` names a lot that is not an unfrozen lot of a revoked certificate.
    error ZcvNothingToEvict(address holder, uint256 certificateId);
    /// @notice Thrown when an issuance would lift the total supply above `cap` (2^88 - 1 units:
    /// balances and lots are packed as 88-bit numbers).
    error ZcvSupplyCapExceeded(uint256 supply, uint256 cap);
    /// @notice Thrown when a retirement names no beneficiary.
    error ZcvEmptyBeneficiary();
    /// @notice Thrown when a retirement's consumption period ends before it starts.
    error ZcvBadConsumptionPeriod(uint64 start, uint64 end);

    /// @notice Mints `input.units` to `to` under a new certificate. ISSUER_ROLE (the exchange) only.
    /// @return certificateId The new certificate's id (ids start at 1).
    function issue(address to, CertificateInput calldata input) external returns (uint256 certificateId);

    /// @notice Mints one schema-2 certificate per hour to `to`. ISSUER_ROLE (the exchange) only.
    /// @param hourInputs The hours, each with units > 0 (ids are assigned in this order).
    /// @return firstCertificateId The first new id; the others follow consecutively.
    function issueHourly(address to, IssuanceInput calldata issuanceInput, HourInput[] calldata hourInputs)
        external
        returns (uint256 firstCertificateId);

    /// @notice A schema-2 certificate (all zero for schema-1 or unknown ids).
    /// @return The record.
    function hourlyCertificate(uint256 certificateId) external view returns (HourlyCertificate memory);

    /// @notice The claim behind schema-2 certificates.
    /// @return The record.
    function issuance(uint256 issuanceId) external view returns (Issuance memory);

    /// @notice Moves specific certificates' units to `to`. Gas is O(picks.length), whatever the
    /// sender or the recipient hold.
    /// @param to The recipient.
    /// @param picks (certificate id, units), strictly ascending certificate ids.
    function transferLots(address to, LotPick[] calldata picks) external;

    /// @notice Moves specific certificates' units from `from` to `to`, spending the caller's
    /// ERC-20 allowance (how a market escrows exactly the listed certificates).
    /// @param from The holder whose lots move.
    /// @param to The recipient.
    /// @param picks (certificate id, units), strictly ascending certificate ids.
    function transferLotsFrom(address from, address to, LotPick[] calldata picks) external;

    /// @notice Settles a bill: a transfer counted as "used coins".
    /// @param to The payee.
    /// @param units Units to pay.
    /// @param paymentReference The bill or statement id.
    function pay(address to, uint256 units, bytes32 paymentReference) external;

    /// @notice Burns units for a beneficiary's consumption period, taking lots in spend order
    /// (the current lot, then the largest size class first; revoked or expired lots are frozen, not
    /// taken). The period [consumptionStart, consumptionEnd) must lie within the vintage year of
    /// every certificate taken (`vintageYear`), else ZcvConsumptionOutsideVintage.
    /// @return retirementId The retirement record's id.
    function retire(
        uint256 units,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd
    ) external returns (uint256 retirementId);

    /// @notice Burns specific certificates' units for a beneficiary's consumption period, which
    /// must lie within the vintage year of every certificate picked (as for `retire`).
    /// @return retirementId The retirement record's id.
    function retireLots(
        LotPick[] calldata picks,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd
    ) external returns (uint256 retirementId);

    /// @notice Freezes a fraudulent certificate's units on every path. REVOKER_ROLE only.
    function revokeCertificate(uint256 certificateId, string calldata reason) external;

    /// @notice Moves `holder`'s lot of a revoked certificate out of its spend order into its frozen
    /// ledger. Permissionless: it only ever helps the holder (its units stay frozen either way).
    /// @param holder The holder.
    /// @param certificateId A revoked certificate the holder still has units of.
    function evict(address holder, uint256 certificateId) external;

    /// @notice Whether a certificate's units are frozen: revoked, or expired (`expiresAt` passed).
    /// @return True when no path may move or retire its units.
    function isFrozen(uint256 certificateId) external view returns (bool);

    /// @notice The deployment's expiry: certificates expire this many months (SECONDS_PER_MONTH,
    /// 1/12 of 365.2425 days, each) after their hour ends. Fixed at deployment.
    /// @return Months.
    function expiryMonths() external view returns (uint256);

    /// @notice When a certificate's units expire: its hour's end (schema 1: its period's end) plus
    /// `expiryMonths` months. From this time on they are frozen.
    /// @return A Unix time.
    function expiresAt(uint256 certificateId) external view returns (uint256);

    /// @notice A certificate's vintage: the calendar year, in JST (UTC+9), of its hour (schema 1:
    /// of its period's last second). Retirements must consume within it.
    /// @return The year, e.g. 2026.
    function vintageYear(uint256 certificateId) external view returns (uint256);

    /// @notice Units of `certificateId` that `holder` has (frozen or not). O(1).
    /// @return Units.
    function lotBalance(address holder, uint256 certificateId) external view returns (uint256);

    /// @notice Number of certificates `holder` has units of (frozen lots included).
    /// @return The count.
    function lotCount(address holder) external view returns (uint256);

    /// @notice Every revoked certificate id, in revocation order (revocations are rare).
    /// @return The ids.
    function revokedCertificateIds() external view returns (uint64[] memory);

    /// @notice Units `holder` has of frozen (revoked or expired) certificates; `balanceOf -
    /// frozenBalanceOf` is what its transfers, payments and retirements can spend. Walks every lot
    /// of the holder: O(lotCount), for off-chain reads.
    /// @return Units.
    function frozenBalanceOf(address holder) external view returns (uint256);

    /// @notice A certificate.
    /// @return The record.
    function certificate(uint256 certificateId) external view returns (Certificate memory);

    /// @notice Number of certificates issued.
    /// @return The count (also the last id).
    function certificateCount() external view returns (uint256);

    /// @notice A retirement record.
    /// @return The record.
    function retirement(uint256 retirementId) external view returns (Retirement memory);

    /// @notice Number of retirements.
    /// @return The count (also the last id).
    function retirementCount() external view returns (uint256);

    /// @notice A page of `holder`'s lots in spend order: the current lot, then the size classes
    /// largest first, then the frozen ledger. Costs O(offset + limit) reads.
    /// @param holder The holder.
    /// @param offset Lots to skip.
    /// @param limit At most this many lots are returned.
    /// @return lots The page (shorter than `limit` at the end).
    function lotsOf(address holder, uint256 offset, uint256 limit) external view returns (Lot[] memory lots);

    /// @notice The Fig. 6 counters of `account`.
    /// @return The counters.
    function counters(address account) external view returns (Counters memory);

    /// @notice Total units ever issued.
    /// @return Units.
    function totalIssued() external view returns (uint256);

    /// @notice Total units ever retired.
    /// @return Units.
    function totalRetired() external view returns (uint256);
}
