// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMemberRegistry} from "./IMemberRegistry.sol";

/// @title IGenerationRegistry
/// @notice The power-transaction ledger: 30-minute meter readings signed by a quorum of oracles.
/// @dev Batch semantics: signature and replay checks are batch-wide and revert the whole batch.
/// Each reading is then checked on its own: a bad reading is skipped with `ReadingRejected`
/// (carrying the ABI-encoded custom error as its reason) and changes no state; the good readings
/// of the same batch are recorded. An oracle therefore never has to re-sign to get good readings
/// past a bad one, and learns each bad reading's reason from the receipt.
/// Order: overlap is decided per recorded slot, not against a watermark, so batches may land in
/// any order (invariant 9). A reading is refused as an overlap only if one of its slots is
/// already recorded: by a replay, or by a reading with other figures for the same time.
interface IGenerationRegistry {
    /// @notice One meter's figures over one interval [start, end), whole Wh. EIP-712 type `Reading`.
    struct Reading {
        bytes32 meterId;
        uint64 start;
        uint64 end;
        uint64 generatedWh; // PQ1
        uint64 consumedWh; // PQ2
        uint64 soldWh; // PQ3
        uint64 purchasedWh; // PQ4
    }

    /// @notice Running totals of one meter (or one member, summed over its meters).
    struct Totals {
        uint256 generatedWh;
        uint256 consumedWh;
        uint256 soldWh;
        uint256 purchasedWh;
    }

    /// @notice What the exchange receives when it claims a meter's unclaimed generation.
    struct Claim {
        uint256 wh;
        uint64 periodStart;
        uint64 periodEnd;
        bytes32 evidence;
    }

    /// @notice A reading was recorded. Log order within a batch is the batch order; a meter's
    /// readings may be recorded out of time order (a late gap-filler), never overlapping.
    event ReadingRecorded(
        bytes32 indexed meterId,
        uint64 start,
        uint64 end,
        uint64 generatedWh,
        uint64 consumedWh,
        uint64 soldWh,
        uint64 purchasedWh
    );
    /// @notice A reading of an applied batch was refused; `reason` is an ABI-encoded custom error.
    event ReadingRejected(bytes32 indexed meterId, uint256 index, Reading reading, bytes reason);
    /// @notice A batch passed the quorum check and was applied (emitted after its readings).
    event BatchApplied(
        bytes32 indexed digest,
        address indexed submitter,
        uint256 accepted,
        uint256 rejected,
        address[] signers,
        bytes[] signatures
    );
    event GenerationClaimed(
        bytes32 indexed meterId, address indexed claimer, uint256 wh, uint64 periodStart, uint64 periodEnd
    );
    event OracleSignerAdded(address indexed signer);
    event OracleSignerRemoved(address indexed signer);
    event QuorumSet(uint256 quorum);
    event IntervalSecondsSet(uint256 intervalSeconds);
    event CapacityMarginSet(uint256 marginBps);

    // Reading-level reasons (carried in ReadingRejected, raised by validateReading).
    error RegistryUnknownMeter(bytes32 meterId);
    error RegistryInactiveMeter(bytes32 meterId);
    error RegistryBadIntervalLength(bytes32 meterId, uint64 start, uint64 end, uint256 expectedSeconds);
    /// @notice Thrown when [start, end) covers a slot of the meter that is already recorded (a
    /// replay, or other figures for the same time).
    error RegistryReadingOverlaps(bytes32 meterId, uint64 start, uint64 end);
    /// @notice Thrown when the reading does not start on a multiple of the interval length.
    error RegistryReadingMisaligned(bytes32 meterId, uint64 start, uint256 intervalSeconds);
    error RegistryReadingInFuture(bytes32 meterId, uint64 end, uint256 now_);
    error RegistryReadingBeforeCommissioning(bytes32 meterId, uint64 start, uint40 commissionedAt);
    error RegistryGenerationExceedsCapacity(bytes32 meterId, uint64 generatedWh, uint256 maxWh);
    /// @notice The reading would push one of the meter's running totals past 2^56-1 Wh (72 TWh).
    error RegistryTotalsOverflow(bytes32 meterId);
    // Batch-level errors (revert the whole batch).
    error RegistryEmptyBatch();
    error RegistryBatchTooLarge(uint256 size, uint256 max);
    error RegistryBatchAlreadyApplied(bytes32 digest);
    error RegistryQuorumNotMet(uint256 validSigners, uint256 quorum);
    error RegistryDuplicateSigner(address signer);
    error RegistrySignersNotSorted(address signer);
    error RegistryUnknownSigner(address signer);
    // Administration.
    error RegistryInvalidQuorum(uint256 quorum, uint256 signerCount);
    error RegistrySignerAlreadyAdded(address signer);
    error RegistrySignerNotFound(address signer);
    /// @notice Thrown when an interval length is zero, over a day, or not slotSeconds() x 2^k with
    /// k <= 8 (the recorded-slot bitmap needs each aligned reading inside one 256-bit word).
    error RegistryInvalidInterval(uint256 intervalSeconds);
    error RegistryNothingToClaim(bytes32 meterId);

    /// @notice Records a batch of readings signed by at least `quorum()` registered oracle signers.
    /// @param readings The readings, signed as EIP-712 `Batch(Reading[] readings)`.
    /// @param signatures 65-byte signatures over `batchDigest(readings)`, signers in ascending
    /// address order.
    /// @return accepted Readings recorded.
    /// @return rejected Readings skipped with `ReadingRejected`.
    function submitBatch(Reading[] calldata readings, bytes[] calldata signatures)
        external
        returns (uint256 accepted, uint256 rejected);

    /// @notice Turns a meter's verified, unclaimed generation into a claim. CLAIMER_ROLE only.
    /// @return claim The Wh, the period and the evidence digest at claim time. The period runs
    /// from the earliest start among the claimed readings (or the previous claim's end, if
    /// earlier) to the meter's lastEnd, so it covers late gap-fillers too.
    function markClaimed(bytes32 meterId) external returns (Claim memory claim);

    /// @notice The EIP-712 digest the oracles sign for `readings`.
    /// @return The digest (binds chain id and this contract).
    function batchDigest(Reading[] calldata readings) external view returns (bytes32);

    /// @notice Reverts with the reading's custom error if it would be rejected now; else returns.
    function validateReading(Reading calldata reading) external view;

    /// @notice Whether a batch digest was applied.
    /// @return True once applied.
    function isBatchApplied(bytes32 digest) external view returns (bool);

    /// @notice The latest end of the meter's recorded intervals. Readings before it are still
    /// accepted when their slots are free (gap-fillers); see `isRecorded`.
    /// @return Unix seconds; 0 before the first reading.
    function lastEnd(bytes32 meterId) external view returns (uint64);

    /// @notice Whether every slot that [start, end) touches is recorded for the meter.
    /// @return True when all are recorded (false for an empty interval).
    function isRecorded(bytes32 meterId, uint64 start, uint64 end) external view returns (bool);

    /// @notice The slot length of the recorded-slot bitmap: the interval length at deployment.
    /// @return Seconds.
    function slotSeconds() external view returns (uint256);

    /// @notice Running PQ1..PQ4 totals of one meter.
    /// @return The totals.
    function meterTotals(bytes32 meterId) external view returns (Totals memory);

    /// @notice Running PQ1..PQ4 totals of one member: the sum over its meters (Fig. 6 ledger).
    /// @return The totals.
    function memberTotals(address account) external view returns (Totals memory);

    /// @notice Verified generation already claimed (Wh).
    /// @return Wh claimed.
    function claimedWh(bytes32 meterId) external view returns (uint256);

    /// @notice Verified generation not yet claimed (Wh).
    /// @return Wh claimable.
    function unclaimedWh(bytes32 meterId) external view returns (uint256);

    /// @notice Rolling digest over the EIP-712 hashes of the meter's recorded readings.
    /// @return The chain head: keccak256(previous, readingHash) folded over every recorded reading.
    function evidenceHead(bytes32 meterId) external view returns (bytes32);

    /// @notice The member and meter registry this ledger validates against.
    /// @return The registry.
    function memberRegistry() external view returns (IMemberRegistry);

    /// @notice Registered oracle signers.
    /// @return The signer addresses.
    function signers() external view returns (address[] memory);

    /// @notice Whether `account` is a registered oracle signer.
    /// @return True if registered.
    function isSigner(address account) external view returns (bool);

    /// @notice Number k of distinct signers a batch needs.
    /// @return k.
    function quorum() external view returns (uint256);

    /// @notice Required reading length in seconds (1800 by default).
    /// @return Seconds.
    function intervalSeconds() external view returns (uint256);

    /// @notice Allowed generation above rated capacity, in basis points.
    /// @return Basis points.
    function capacityMarginBps() external view returns (uint256);
}
