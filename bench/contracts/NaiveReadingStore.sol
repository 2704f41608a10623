// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title NaiveReadingStore
/// @notice Benchmark baseline only, never deployed for real: the obvious design of a meter
/// ledger, one EIP-712-signed reading per transaction, kept as a struct in a mapping.
/// @dev What GenerationRegistry is measured against. It does the least a real ledger must do:
/// one signer's ECDSA check, a (meter, start) uniqueness check, a stored struct and an event.
/// No quorum, no watermark, no plausibility check: it is a floor for the naive design, not a
/// competitor. Two variants:
///  - `submit`: the literal naive design, the whole signed Reading struct stored under
///    keccak256(meterId, start) (3 fresh slots);
///  - `submitCompact`: a careful naive design that leaves out what the key already says
///    (meterId, start) and packs the rest into 2 slots.
contract NaiveReadingStore is EIP712 {
    bytes32 public constant READING_TYPEHASH = keccak256(
        "Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,uint64 soldWh,uint64 purchasedWh)"
    );

    struct Reading {
        bytes32 meterId;
        uint64 start;
        uint64 end;
        uint64 generatedWh;
        uint64 consumedWh;
        uint64 soldWh;
        uint64 purchasedWh;
    }

    /// @dev 5 x uint64 = 320 bits, so two slots per reading.
    struct CompactReading {
        uint64 end;
        uint64 generatedWh;
        uint64 consumedWh;
        uint64 soldWh;
        uint64 purchasedWh;
    }

    event ReadingStored(
        bytes32 indexed meterId,
        uint64 start,
        uint64 end,
        uint64 generatedWh,
        uint64 consumedWh,
        uint64 soldWh,
        uint64 purchasedWh
    );

    error NaiveBadSigner(address recovered);
    error NaiveDuplicate(bytes32 meterId, uint64 start);

    address private immutable _signer;
    mapping(bytes32 key => Reading) private _readings;
    mapping(bytes32 meterId => mapping(uint64 start => CompactReading)) private _compact;

    /// @param signer_ The one oracle key whose signatures are accepted.
    constructor(address signer_) EIP712("ZCX NaiveReadingStore", "1") {
        _signer = signer_;
    }

    /// @notice Stores one reading signed by the oracle: the whole struct, keyed by (meter, start).
    /// @param reading The reading.
    /// @param signature The oracle's 65-byte EIP-712 signature over `reading`.
    function submit(Reading calldata reading, bytes calldata signature) external {
        _verify(reading, signature);
        bytes32 key = keccak256(abi.encode(reading.meterId, reading.start));
        if (_readings[key].end != 0) revert NaiveDuplicate(reading.meterId, reading.start);
        _readings[key] = reading;
        _emitStored(reading);
    }

    /// @notice Same as `submit`, storing only what the key does not already say (2 slots).
    /// @param reading The reading.
    /// @param signature The oracle's 65-byte EIP-712 signature over `reading`.
    function submitCompact(Reading calldata reading, bytes calldata signature) external {
        _verify(reading, signature);
        CompactReading storage slot = _compact[reading.meterId][reading.start];
        if (slot.end != 0) revert NaiveDuplicate(reading.meterId, reading.start);
        _compact[reading.meterId][reading.start] = CompactReading(
            reading.end, reading.generatedWh, reading.consumedWh, reading.soldWh, reading.purchasedWh
        );
        _emitStored(reading);
    }

    /// @notice A reading stored by `submit` (zeroes when absent).
    /// @return The stored reading.
    function readingAt(bytes32 meterId, uint64 start) external view returns (Reading memory) {
        return _readings[keccak256(abi.encode(meterId, start))];
    }

    function _verify(Reading calldata reading, bytes calldata signature) private view {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, reading)));
        address recovered = ECDSA.recover(digest, signature);
        if (recovered != _signer) revert NaiveBadSigner(recovered);
    }

    function _emitStored(Reading calldata reading) private {
        emit ReadingStored(
            reading.meterId,
            reading.start,
            reading.end,
            reading.generatedWh,
            reading.consumedWh,
            reading.soldWh,
            reading.purchasedWh
        );
    }
}
