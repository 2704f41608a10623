"""Off-chain re-verification of the oracles' EIP-712 batch signatures.

For each `BatchApplied`, the auditor rebuilds the batch from the readings logged in the same
transaction (ReadingRecorded and ReadingRejected, in log order: the batch order), recomputes the
EIP-712 digest, recovers every signature and checks the signers against the oracle signer set and
quorum in force at that point of the chain (replayed from OracleSignerAdded/Removed and
QuorumSet).

`batch_digest_from_hashes` computes the same digest as `zcx.eip712.batch_digest` from the
readings' struct hashes, which the event reader already has; `tests/test_audit_signatures.py`
proves the two equal. The struct-hash path is what lets a million readings be re-verified in
seconds; `zcx.eip712` stays the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coincurve import PublicKey
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from zcx.eip712 import DOMAIN_NAME, DOMAIN_VERSION

DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
BATCH_TYPEHASH = keccak(
    text="Batch(Reading[] readings)Reading(bytes32 meterId,uint64 start,uint64 end,"
    "uint64 generatedWh,uint64 consumedWh,uint64 soldWh,uint64 purchasedWh)"
)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def domain_separator(chain_id: int, registry: str) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                to_checksum_address(registry),
            ],
        )
    )


def batch_digest_from_hashes(reading_hashes: Sequence[bytes], separator: bytes) -> bytes:
    """EIP-712 digest of Batch(Reading[]) given each reading's hashStruct, in batch order."""
    array_hash = keccak(b"".join(reading_hashes))
    struct_hash = keccak(BATCH_TYPEHASH + array_hash)
    return keccak(b"\x19\x01" + separator + struct_hash)


class BadSignature(ValueError):
    """A signature that no correct ECDSA verifier (OpenZeppelin's included) would accept."""


def recover(digest: bytes, signature: bytes) -> str:
    """The signer of a 65-byte (r, s, v) signature over `digest`, with OpenZeppelin's rules:
    v in {27, 28} and s in the lower half order (no malleable signatures)."""
    if len(signature) != 65:
        raise BadSignature(f"signature is {len(signature)} bytes; 65 expected")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise BadSignature(f"v = {v}; 27 or 28 expected")
    if not 0 < s <= SECP256K1_N // 2:
        raise BadSignature("s is in the upper half order (malleable signature)")
    try:
        key = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except ValueError as exc:
        raise BadSignature(f"no public key recovers from it: {exc}") from exc
    return to_checksum_address(keccak(key.format(compressed=False)[1:])[-20:])


@dataclass
class SignerState:
    """The oracle signer set and quorum in force at one point of the chain."""

    signers: set[str]
    quorum: int
