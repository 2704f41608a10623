// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {IGenerationRegistry} from "./interfaces/IGenerationRegistry.sol";

/// @title GenerationRegistry
/// @notice The power-transaction ledger: accepts 30-minute readings signed by a quorum of oracles.
/// @dev Invariants kept here:
///  (1) per meter, a reading is recorded only if none of its slots is already recorded, so no
///      (meter, interval) is counted twice and nothing overlaps (`_recorded`, one bit per slot);
///  (5) a batch counts only with EIP-712 signatures (domain: chain id + this contract) from at
///      least `quorum` distinct registered signers, and each batch digest applies once;
///  (9) overlap is decided per slot, not against a watermark, so correctly signed batches may
///      land in any order and from any submitter: a late gap-filler before `lastEnd` is recorded,
///      and a digest is never burned on readings skipped only because a later batch came first.
/// Time is cut into slots of `slotSeconds()` (the interval at deployment). A reading must start
/// on a multiple of the current interval, and the interval stays slotSeconds x 2^k (k <= 8), so
/// a reading covers 2^k aligned bits of one 256-bit word and never straddles two.
/// Trust: DEFAULT_ADMIN_ROLE manages the signer set, quorum, interval, margin and pause;
/// CLAIMER_ROLE (the value exchange) marks generation as claimed. Nobody can edit a reading.
contract GenerationRegistry is AccessControl, Pausable, EIP712, IGenerationRegistry {
    using EnumerableSet for EnumerableSet.AddressSet;
    using SafeCast for uint256;

    bytes32 public constant CLAIMER_ROLE = keccak256("CLAIMER_ROLE");
    bytes32 public constant READING_TYPEHASH = keccak256(
        "Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,uint64 soldWh,uint64 purchasedWh)"
    );
    bytes32 public constant BATCH_TYPEHASH = keccak256(
        "Batch(Reading[] readings)Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,uint64 soldWh,uint64 purchasedWh)"
    );
    /// @notice Largest batch accepted (about 17M gas at the measured per-reading cost).
    uint256 public constant MAX_BATCH_SIZE = 1000;
    uint256 private constant BPS = 10_000;
    uint256 private constant SECONDS_PER_HOUR = 3600;
    // Byte offsets of a Reading's words in calldata (meterId is word 0).
    uint256 private constant START = 0x20;
    uint256 private constant END = 0x40;
    uint256 private constant GENERATED = 0x60;
    uint256 private constant CONSUMED = 0x80;
    uint256 private constant SOLD = 0xa0;
    uint256 private constant PURCHASED = 0xc0;
    /// @dev Slots per bitmap word.
    uint256 private constant WORD_BITS = 256;
    /// @dev No word index reaches it (a start below 2^64 gives an index below 2^56).
    uint256 private constant NO_WORD = type(uint256).max;

    /// @dev One slot per meter, touched once per run of that meter in a batch. uint56 holds
    /// 72 TWh, decades of a 1 GW plant; a reading that would overflow one is rejected
    /// (RegistryTotalsOverflow). uint32 time lasts to 2106.
    struct MeterLedger {
        uint32 lastEnd;
        uint56 generatedWh;
        uint56 consumedWh;
        uint56 soldWh;
        uint56 purchasedWh;
    }

    /// @dev Written at a meter's first reading and at each claim, never per reading.
    struct ClaimState {
        uint64 claimedWh;
        uint64 periodStart;
    }

    /// @dev Read once per batch.
    struct Config {
        uint32 quorum;
        uint32 intervalSeconds;
        uint32 capacityMarginBps;
    }

    /// @dev The meter whose consecutive readings are being accumulated in memory. Totals are
    /// uint256 here and checked against the uint56 slot range per reading, so an absurd value
    /// rejects that reading alone instead of reverting the batch at the write.
    struct Run {
        bytes32 meterId;
        IMemberRegistry.MeterSpec spec;
        uint256 lastEnd;
        uint256 generatedWh;
        uint256 consumedWh;
        uint256 soldWh;
        uint256 purchasedWh;
        bytes32 evidence;
        bool firstEver;
        uint256 loadedLastEnd;
        uint256 minStart;
        bool dirty;
        // The one bitmap word of this meter held in memory (index, bits incl. this run's);
        // NO_WORD when none is. `mask` is the current reading's bits within that word.
        uint256 wordIndex;
        uint256 wordBits;
        bool wordDirty;
        uint256 mask;
    }

    IMemberRegistry private immutable _memberRegistry;
    uint256 private immutable _slotSeconds;
    EnumerableSet.AddressSet private _signers;
    Config private _config;
    mapping(bytes32 meterId => MeterLedger) private _ledgers;
    mapping(bytes32 meterId => ClaimState) private _claims;
    mapping(bytes32 meterId => bytes32) private _evidence;
    mapping(bytes32 digest => bool) private _appliedBatches;
    /// @dev Bit (slot % 256) of word (slot / 256) is set once the meter's slot is recorded,
    /// slot = time / _slotSeconds. One word spans 256 slots (5.3 days of 30-minute readings),
    /// so a run of one meter's consecutive readings touches one or two words.
    mapping(bytes32 meterId => mapping(uint256 wordIndex => uint256 bits)) private _recorded;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param memberRegistry_ Source of meters (owner, capacity, active flag).
    /// @param initialSigners Oracle signer addresses.
    /// @param quorum_ Signatures needed per batch (1 <= k <= n).
    /// @param intervalSeconds_ Reading length, 1800 by default; also fixes `slotSeconds()`.
    /// @param capacityMarginBps_ Allowed generation above capacity x time, basis points.
    constructor(
        address admin,
        IMemberRegistry memberRegistry_,
        address[] memory initialSigners,
        uint256 quorum_,
        uint256 intervalSeconds_,
        uint256 capacityMarginBps_
    ) EIP712("ZCX GenerationRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _memberRegistry = memberRegistry_;
        if (intervalSeconds_ == 0 || intervalSeconds_ > 1 days) revert RegistryInvalidInterval(intervalSeconds_);
        _slotSeconds = intervalSeconds_;
        for (uint256 i = 0; i < initialSigners.length; ++i) {
            _addSigner(initialSigners[i]);
        }
        _setQuorum(quorum_);
        _setIntervalSeconds(intervalSeconds_);
        _setCapacityMarginBps(capacityMarginBps_);
    }

    // ---------------------------------------------------------------- readings

    /// @inheritdoc IGenerationRegistry
    function submitBatch(Reading[] calldata readings, bytes[] calldata signatures)
        external
        whenNotPaused
        returns (uint256 accepted, uint256 rejected)
    {
        uint256 size = readings.length;
        if (size == 0) revert RegistryEmptyBatch();
        if (size > MAX_BATCH_SIZE) revert RegistryBatchTooLarge(size, MAX_BATCH_SIZE);

        // One pass over calldata applies the readings and hashes them; the signatures over the
        // resulting digest are checked afterwards, and any batch-level failure reverts it all.
        Config memory config = _config;
        bytes32[] memory readingHashes = new bytes32[](size);
        (accepted, rejected) = _applyReadings(readings, readingHashes, config);
        bytes32 digest = _digestOf(readingHashes);
        if (_appliedBatches[digest]) revert RegistryBatchAlreadyApplied(digest);
        address[] memory batchSigners = _verifyQuorum(digest, signatures, config.quorum);
        _appliedBatches[digest] = true;
        emit BatchApplied(digest, msg.sender, accepted, rejected, batchSigners, signatures);
    }

    /// @inheritdoc IGenerationRegistry
    function markClaimed(bytes32 meterId)
        external
        onlyRole(CLAIMER_ROLE)
        whenNotPaused
        returns (Claim memory claim)
    {
        MeterLedger memory ledger = _ledgers[meterId];
        ClaimState storage state = _claims[meterId];
        uint256 wh = uint256(ledger.generatedWh) - state.claimedWh;
        if (wh == 0) revert RegistryNothingToClaim(meterId);
        claim = Claim(wh, state.periodStart, ledger.lastEnd, _evidence[meterId]);
        state.claimedWh = ledger.generatedWh;
        state.periodStart = ledger.lastEnd;
        emit GenerationClaimed(meterId, msg.sender, wh, claim.periodStart, claim.periodEnd);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Adds an oracle signer. DEFAULT_ADMIN_ROLE only.
    function addSigner(address signer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _addSigner(signer);
    }

    /// @notice Removes an oracle signer; the quorum must stay reachable. DEFAULT_ADMIN_ROLE only.
    function removeSigner(address signer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!_signers.remove(signer)) revert RegistrySignerNotFound(signer);
        if (_config.quorum > _signers.length()) {
            revert RegistryInvalidQuorum(_config.quorum, _signers.length());
        }
        emit OracleSignerRemoved(signer);
    }

    /// @notice Sets k, the signatures needed per batch. DEFAULT_ADMIN_ROLE only.
    function setQuorum(uint256 quorum_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setQuorum(quorum_);
    }

    /// @notice Sets the required reading length: slotSeconds() x 2^k (k <= 8), at most one day.
    /// Readings then start on multiples of the new length; slots already recorded stay recorded,
    /// so a longer reading over any of them is refused as an overlap. DEFAULT_ADMIN_ROLE only.
    function setIntervalSeconds(uint256 intervalSeconds_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setIntervalSeconds(intervalSeconds_);
    }

    /// @notice Sets the plausibility margin over capacity. DEFAULT_ADMIN_ROLE only.
    function setCapacityMarginBps(uint256 marginBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setCapacityMarginBps(marginBps);
    }

    /// @notice Stops batches and claims. DEFAULT_ADMIN_ROLE only.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resumes batches and claims. DEFAULT_ADMIN_ROLE only.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IGenerationRegistry
    function batchDigest(Reading[] calldata readings) external view returns (bytes32) {
        return _batchDigest(readings);
    }

    /// @notice The EIP-712 struct hash of one reading.
    /// @return The hash.
    function hashReading(Reading calldata reading) external pure returns (bytes32) {
        return _hashReading(reading);
    }

    /// @notice The EIP-712 domain separator (chain id and this contract).
    /// @return The separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IGenerationRegistry
    function validateReading(Reading calldata reading) external view {
        _hashReading(reading); // range-checks the uint64 words that _check reads unchecked
        Run memory run;
        _load(run, reading.meterId);
        Config memory config = _config;
        _aim(run, _word(reading, START) / _slotSeconds, _unitMask(config));
        bytes memory reason = _check(reading, run, config);
        if (reason.length != 0) {
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }

    /// @inheritdoc IGenerationRegistry
    function isBatchApplied(bytes32 digest) external view returns (bool) {
        return _appliedBatches[digest];
    }

    /// @inheritdoc IGenerationRegistry
    function lastEnd(bytes32 meterId) external view returns (uint64) {
        return _ledgers[meterId].lastEnd;
    }

    /// @inheritdoc IGenerationRegistry
    function isRecorded(bytes32 meterId, uint64 start, uint64 end) external view returns (bool) {
        if (end <= start) return false;
        uint256 slotSeconds = _slotSeconds;
        uint256 last = (uint256(end) - 1) / slotSeconds;
        for (uint256 slot = start / slotSeconds; slot <= last; ++slot) {
            if (_recorded[meterId][slot / WORD_BITS] & (1 << (slot % WORD_BITS)) == 0) return false;
        }
        return true;
    }

    /// @inheritdoc IGenerationRegistry
    function slotSeconds() external view returns (uint256) {
        return _slotSeconds;
    }

    /// @inheritdoc IGenerationRegistry
    function meterTotals(bytes32 meterId) public view returns (Totals memory) {
        MeterLedger memory ledger = _ledgers[meterId];
        return Totals(ledger.generatedWh, ledger.consumedWh, ledger.soldWh, ledger.purchasedWh);
    }

    /// @inheritdoc IGenerationRegistry
    function memberTotals(address account) external view returns (Totals memory totals) {
        bytes32[] memory meterIds = _memberRegistry.metersOf(account);
        for (uint256 i = 0; i < meterIds.length; ++i) {
            MeterLedger memory ledger = _ledgers[meterIds[i]];
            totals.generatedWh += ledger.generatedWh;
            totals.consumedWh += ledger.consumedWh;
            totals.soldWh += ledger.soldWh;
            totals.purchasedWh += ledger.purchasedWh;
        }
    }

    /// @inheritdoc IGenerationRegistry
    function claimedWh(bytes32 meterId) external view returns (uint256) {
        return _claims[meterId].claimedWh;
    }

    /// @inheritdoc IGenerationRegistry
    function unclaimedWh(bytes32 meterId) external view returns (uint256) {
        return uint256(_ledgers[meterId].generatedWh) - _claims[meterId].claimedWh;
    }

    /// @inheritdoc IGenerationRegistry
    function evidenceHead(bytes32 meterId) external view returns (bytes32) {
        return _evidence[meterId];
    }

    /// @inheritdoc IGenerationRegistry
    function memberRegistry() external view returns (IMemberRegistry) {
        return _memberRegistry;
    }

    /// @inheritdoc IGenerationRegistry
    function signers() external view returns (address[] memory) {
        return _signers.values();
    }

    /// @inheritdoc IGenerationRegistry
    function isSigner(address account) external view returns (bool) {
        return _signers.contains(account);
    }

    /// @inheritdoc IGenerationRegistry
    function quorum() external view returns (uint256) {
        return _config.quorum;
    }

    /// @inheritdoc IGenerationRegistry
    function intervalSeconds() external view returns (uint256) {
        return _config.intervalSeconds;
    }

    /// @inheritdoc IGenerationRegistry
    function capacityMarginBps() external view returns (uint256) {
        return _config.capacityMarginBps;
    }

    // ---------------------------------------------------------------- internals

    function _applyReadings(Reading[] calldata readings, bytes32[] memory readingHashes, Config memory config)
        private
        returns (uint256 accepted, uint256 rejected)
    {
        Run memory run;
        uint256 slotSeconds = _slotSeconds;
        uint256 unitMask = _unitMask(config);
        for (uint256 i = 0; i < readings.length; ++i) {
            Reading calldata reading = readings[i];
            bytes32 readingHash = _hashReading(reading);
            readingHashes[i] = readingHash;
            bytes32 meterId = reading.meterId;
            if (i == 0 || meterId != run.meterId) {
                _flush(run);
                _load(run, meterId);
            }
            uint256 slot = _word(reading, START) / slotSeconds;
            if (slot / WORD_BITS != run.wordIndex) _flushWord(run);
            _aim(run, slot, unitMask);
            bytes memory reason = _check(reading, run, config);
            if (reason.length != 0) {
                emit ReadingRejected(meterId, i, reading, reason);
                ++rejected;
                continue;
            }
            _accumulate(run, reading, readingHash);
            ++accepted;
            _emitReadingRecorded(reading);
        }
        _flush(run);
    }

    /// @dev Emits ReadingRecorded(meterId, start, end, generatedWh, consumedWh, soldWh,
    /// purchasedWh). Its data is exactly calldata words 1..6 of the reading, already range-checked
    /// by _hashReading, so they are copied in one go instead of re-encoded field by field.
    function _emitReadingRecorded(Reading calldata reading) private {
        bytes32 topic = ReadingRecorded.selector;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, add(reading, 0x20), 0xc0)
            log2(ptr, 0xc0, topic, calldataload(reading))
        }
    }

    function _load(Run memory run, bytes32 meterId) private view {
        MeterLedger memory ledger = _ledgers[meterId];
        run.meterId = meterId;
        run.spec = _memberRegistry.meterSpec(meterId);
        run.lastEnd = ledger.lastEnd;
        run.generatedWh = ledger.generatedWh;
        run.consumedWh = ledger.consumedWh;
        run.soldWh = ledger.soldWh;
        run.purchasedWh = ledger.purchasedWh;
        run.evidence = _evidence[meterId];
        run.firstEver = ledger.lastEnd == 0;
        run.loadedLastEnd = ledger.lastEnd;
        run.minStart = type(uint256).max;
        run.dirty = false;
        run.wordIndex = NO_WORD;
        run.wordDirty = false;
    }

    /// @dev The bits of one reading of the current interval length, at slot 0 of a word:
    /// interval = slotSeconds x 2^k with k <= 8 (kept by _setIntervalSeconds).
    function _unitMask(Config memory config) private view returns (uint256) {
        return type(uint256).max >> (WORD_BITS - config.intervalSeconds / _slotSeconds);
    }

    /// @dev Holds in memory the bitmap word of `slot` and sets run.mask to the reading's bits in
    /// it. The caller writes back a dirty word first (_flushWord) when the word changes. The mask
    /// is meaningful only for a reading of the current length on the grid, which _check verifies
    /// before using it: then its 2^k bits start at a multiple of 2^k and fit in the word.
    function _aim(Run memory run, uint256 slot, uint256 unitMask) private view {
        uint256 wordIndex = slot / WORD_BITS;
        if (wordIndex != run.wordIndex) {
            run.wordIndex = wordIndex;
            run.wordBits = _recorded[run.meterId][wordIndex];
        }
        run.mask = unitMask << (slot % WORD_BITS);
    }

    function _flushWord(Run memory run) private {
        if (!run.wordDirty) return;
        _recorded[run.meterId][run.wordIndex] = run.wordBits;
        run.wordDirty = false;
    }

    function _accumulate(Run memory run, Reading calldata reading, bytes32 readingHash) private view {
        uint256 start = _word(reading, START);
        uint256 end = _word(reading, END);
        if (start < run.minStart) run.minStart = start;
        if (end > run.lastEnd) run.lastEnd = end; // lastEnd stays the latest end recorded
        run.wordBits |= run.mask;
        run.wordDirty = true;
        // No overflow: _check kept every total within uint56.
        unchecked {
            run.generatedWh += _word(reading, GENERATED);
            run.consumedWh += _word(reading, CONSUMED);
            run.soldWh += _word(reading, SOLD);
            run.purchasedWh += _word(reading, PURCHASED);
        }
        bytes32 evidence = run.evidence;
        // Scratch-space hash of (evidence, readingHash): no memory allocation per reading.
        assembly ("memory-safe") {
            mstore(0x00, evidence)
            mstore(0x20, readingHash)
            evidence := keccak256(0x00, 0x40)
        }
        run.evidence = evidence;
        run.dirty = true;
    }

    /// @dev One write per slot per run: this is what makes a batch cheap per reading.
    function _flush(Run memory run) private {
        _flushWord(run);
        if (!run.dirty) return;
        // Every value was range-checked in _check; end <= block.timestamp fits uint32 until 2106.
        _ledgers[run.meterId] = MeterLedger(
            uint32(run.lastEnd),
            uint56(run.generatedWh),
            uint56(run.consumedWh),
            uint56(run.soldWh),
            uint56(run.purchasedWh)
        );
        _evidence[run.meterId] = run.evidence;
        // The next claim's period starts at the earliest unclaimed reading. Only a run that
        // recorded something before the loaded lastEnd (a gap-filler) can lower it, so the
        // ordinary in-order run never reads the claim slot.
        if (run.firstEver) {
            _claims[run.meterId].periodStart = uint64(run.minStart);
        } else if (run.minStart < run.loadedLastEnd) {
            ClaimState storage claimState = _claims[run.meterId];
            if (run.minStart < claimState.periodStart) claimState.periodStart = uint64(run.minStart);
        }
        run.dirty = false;
    }

    /// @return reason Empty (unallocated) when the reading is acceptable, else the ABI-encoded
    /// custom error.
    function _check(Reading calldata reading, Run memory run, Config memory config)
        private
        view
        returns (bytes memory reason)
    {
        bytes32 meterId = reading.meterId;
        IMemberRegistry.MeterSpec memory spec = run.spec;
        if (spec.owner == address(0)) return abi.encodeWithSelector(RegistryUnknownMeter.selector, meterId);
        if (!spec.active) return abi.encodeWithSelector(RegistryInactiveMeter.selector, meterId);
        uint64 start = uint64(_word(reading, START));
        uint64 end = uint64(_word(reading, END));
        if (end <= start || end - start != config.intervalSeconds) {
            return abi.encodeWithSelector(
                RegistryBadIntervalLength.selector, meterId, start, end, uint256(config.intervalSeconds)
            );
        }
        if (start % config.intervalSeconds != 0) {
            return abi.encodeWithSelector(
                RegistryReadingMisaligned.selector, meterId, start, uint256(config.intervalSeconds)
            );
        }
        // run.wordBits holds the word of this reading's slots, this batch's bits included.
        if (run.wordBits & run.mask != 0) {
            return abi.encodeWithSelector(RegistryReadingOverlaps.selector, meterId, start, end);
        }
        if (end > block.timestamp) {
            return abi.encodeWithSelector(RegistryReadingInFuture.selector, meterId, end, block.timestamp);
        }
        if (start < spec.commissionedAt) {
            return abi.encodeWithSelector(
                RegistryReadingBeforeCommissioning.selector, meterId, start, spec.commissionedAt
            );
        }
        uint64 generatedWh = uint64(_word(reading, GENERATED));
        // generated <= capacityW * seconds / 3600 * (1 + margin), compared without division.
        uint256 limitScaled = uint256(spec.capacityW) * (end - start) * (BPS + config.capacityMarginBps);
        if (uint256(generatedWh) * SECONDS_PER_HOUR * BPS > limitScaled) {
            return abi.encodeWithSelector(
                RegistryGenerationExceedsCapacity.selector, meterId, generatedWh, limitScaled / (SECONDS_PER_HOUR * BPS)
            );
        }
        // Totals stay below 2^56 and values below 2^64, so these uint256 sums cannot overflow;
        // OR-ing them tests all four against the uint56 slot range at once.
        unchecked {
            uint256 sums = (run.generatedWh + generatedWh) | (run.consumedWh + _word(reading, CONSUMED))
                | (run.soldWh + _word(reading, SOLD)) | (run.purchasedWh + _word(reading, PURCHASED));
            if (sums > type(uint56).max) return abi.encodeWithSelector(RegistryTotalsOverflow.selector, meterId);
        }
    }

    function _verifyQuorum(bytes32 digest, bytes[] calldata signatures, uint256 required)
        private
        view
        returns (address[] memory batchSigners)
    {
        uint256 count = signatures.length;
        if (count < required) revert RegistryQuorumNotMet(count, required);
        batchSigners = new address[](count);
        address previous;
        for (uint256 i = 0; i < count; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            if (!_signers.contains(signer)) revert RegistryUnknownSigner(signer);
            // Ascending order makes a duplicate adjacent, so one comparison finds it.
            if (signer == previous) revert RegistryDuplicateSigner(signer);
            if (signer < previous) revert RegistrySignersNotSorted(signer);
            previous = signer;
            batchSigners[i] = signer;
        }
    }

    function _batchDigest(Reading[] calldata readings) private view returns (bytes32) {
        uint256 size = readings.length;
        bytes32[] memory readingHashes = new bytes32[](size);
        for (uint256 i = 0; i < size; ++i) {
            readingHashes[i] = _hashReading(readings[i]);
        }
        return _digestOf(readingHashes);
    }

    /// @dev EIP-712 hashStruct(Batch) of the readings' struct hashes, under this domain.
    function _digestOf(bytes32[] memory readingHashes) private view returns (bytes32) {
        bytes32 arrayHash;
        assembly ("memory-safe") {
            arrayHash := keccak256(add(readingHashes, 0x20), mul(mload(readingHashes), 0x20))
        }
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_TYPEHASH, arrayHash)));
    }

    /// @dev Word `offset` of a reading in calldata, unchecked: only called on readings whose
    /// uint64 words _hashReading has already range-checked.
    function _word(Reading calldata reading, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(reading, offset))
        }
    }

    /// @dev EIP-712 hashStruct(Reading). Reading is 7 static words in calldata, so it is copied
    /// whole behind the type hash into free memory without moving the free pointer (no
    /// allocation per reading). Words 1..6 are uint64: one with higher bits set is refused here,
    /// as Solidity's ABI decoder would, so views and submitBatch agree.
    function _hashReading(Reading calldata reading) private pure returns (bytes32 structHash) {
        bytes32 typeHash = READING_TYPEHASH;
        assembly ("memory-safe") {
            let high := or(
                or(calldataload(add(reading, 0x20)), calldataload(add(reading, 0x40))),
                or(
                    or(calldataload(add(reading, 0x60)), calldataload(add(reading, 0x80))),
                    or(calldataload(add(reading, 0xa0)), calldataload(add(reading, 0xc0)))
                )
            )
            if shr(64, high) { revert(0, 0) }
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), reading, 0xe0)
            structHash := keccak256(ptr, 0x100)
        }
    }

    function _addSigner(address signer) private {
        if (signer == address(0) || !_signers.add(signer)) revert RegistrySignerAlreadyAdded(signer);
        emit OracleSignerAdded(signer);
    }

    function _setQuorum(uint256 quorum_) private {
        if (quorum_ == 0 || quorum_ > _signers.length()) revert RegistryInvalidQuorum(quorum_, _signers.length());
        _config.quorum = uint32(quorum_);
        emit QuorumSet(quorum_);
    }

    function _setIntervalSeconds(uint256 intervalSeconds_) private {
        if (intervalSeconds_ == 0 || intervalSeconds_ > 1 days) revert RegistryInvalidInterval(intervalSeconds_);
        // A power-of-two count of slots, at most a word, keeps every aligned reading in one word.
        uint256 width = intervalSeconds_ / _slotSeconds;
        if (intervalSeconds_ % _slotSeconds != 0 || width > WORD_BITS || width & (width - 1) != 0) {
            revert RegistryInvalidInterval(intervalSeconds_);
        }
        _config.intervalSeconds = uint32(intervalSeconds_);
        emit IntervalSecondsSet(intervalSeconds_);
    }

    function _setCapacityMarginBps(uint256 marginBps) private {
        _config.capacityMarginBps = marginBps.toUint32();
        emit CapacityMarginSet(marginBps);
    }
}
