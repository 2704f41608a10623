// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMemberRegistry} from "./IMemberRegistry.sol";

/// @title IZeroCarbonValue
/// @notice ZCV: an ERC-20 whose every unit traces back to one generation certificate.
/// @dev 3 decimals: 1 unit = 1 Wh at the default rate, 1 ZCV (1000 units) = 1 kWh.
/// Each holder keeps a stack of lots (certificate id, units). Transfers move lots; the units of a
/// certificate are conserved across holders, retirements and revocation (DESIGN invariant 4).
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

    /// @notice The record behind issued units. `schemaVersion` versions this layout.
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

    /// @notice Picks units from a specific lot: `index` into `lotsOf(holder)`, checked against
    /// `certificateId`. Picks must be in strictly descending index order.
    struct LotPick {
        uint256 index;
        uint64 certificateId;
        uint256 units;
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

    error ZcvUnknownCertificate(uint256 certificateId);
    error ZcvCertificateRevoked(uint256 certificateId);
    error ZcvAlreadyRevoked(uint256 certificateId);
    error ZcvTooManyLots(uint256 maxLots);
    error ZcvZeroUnits();
    error ZcvLotPicksUnordered(uint256 index);
    error ZcvLotMismatch(uint256 index, uint64 expectedCertificateId, uint64 actualCertificateId);
    error ZcvLotTooSmall(uint256 index, uint256 requested, uint256 available);
    error ZcvEmptyBeneficiary();
    error ZcvBadConsumptionPeriod(uint64 start, uint64 end);

    /// @notice Mints `input.units` to `to` under a new certificate. ISSUER_ROLE (the exchange) only.
    /// @return certificateId The new certificate's id (ids start at 1).
    function issue(address to, CertificateInput calldata input) external returns (uint256 certificateId);

    /// @notice Moves specific certificates' units to `to`.
    function transferLots(address to, LotPick[] calldata picks) external;

    /// @notice Moves specific certificates' units from `from` to `to`, spending the caller's
    /// ERC-20 allowance (how a market escrows exactly the listed certificates).
    function transferLotsFrom(address from, address to, LotPick[] calldata picks) external;

    /// @notice Settles a bill: a transfer counted as "used coins".
    /// @param to The payee.
    /// @param units Units to pay.
    /// @param paymentReference The bill or statement id.
    function pay(address to, uint256 units, bytes32 paymentReference) external;

    /// @notice Burns units for a beneficiary's consumption period, taking lots from the top.
    /// @return retirementId The retirement record's id.
    function retire(
        uint256 units,
        string calldata beneficiary,
        string calldata reason,
        uint64 consumptionStart,
        uint64 consumptionEnd
    ) external returns (uint256 retirementId);

    /// @notice Burns specific certificates' units for a beneficiary's consumption period.
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

    /// @notice A holder's lots; the last is the top, taken first by plain transfers.
    /// @return The lots (consumed ones are not listed).
    function lotsOf(address holder) external view returns (Lot[] memory);

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
