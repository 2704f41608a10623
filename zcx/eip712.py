"""EIP-712 encoding and signing of reading batches, exactly as GenerationRegistry verifies them.

Pure functions only: no I/O, no chain access. The domain binds the chain id and the registry
address, so a signature is valid for one chain and one contract (DESIGN invariant 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "ZCX GenerationRegistry"
DOMAIN_VERSION = "1"
UINT64_MAX = 2**64 - 1

READING_FIELDS: list[dict[str, str]] = [
    {"name": "meterId", "type": "bytes32"},
    {"name": "start", "type": "uint64"},
    {"name": "end", "type": "uint64"},
    {"name": "generatedWh", "type": "uint64"},
    {"name": "consumedWh", "type": "uint64"},
    {"name": "soldWh", "type": "uint64"},
    {"name": "purchasedWh", "type": "uint64"},
]
BATCH_FIELDS: list[dict[str, str]] = [{"name": "readings", "type": "Reading[]"}]


@dataclass(frozen=True)
class Reading:
    """One meter's figures over [start, end) in whole Wh: PQ1 generated .. PQ4 purchased."""

    meter_id: bytes
    start: int
    end: int
    generated_wh: int
    consumed_wh: int
    sold_wh: int
    purchased_wh: int

    def __post_init__(self) -> None:
        if len(self.meter_id) != 32:
            raise ValueError("meter_id: must be 32 bytes (see zcx.ids.meter_id)")
        for name in ("start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name}: must be an integer")
            if not 0 <= value <= UINT64_MAX:
                raise ValueError(f"{name}: {value} is outside 0..2^64-1")

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple for `submitBatch`."""
        return astuple(self)

    def as_message(self) -> dict[str, Any]:
        return {
            "meterId": self.meter_id,
            "start": self.start,
            "end": self.end,
            "generatedWh": self.generated_wh,
            "consumedWh": self.consumed_wh,
            "soldWh": self.sold_wh,
            "purchasedWh": self.purchased_wh,
        }


def domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(registry),
    }


def typed_batch(readings: Sequence[Reading], chain_id: int, registry: str) -> dict[str, Any]:
    """The full EIP-712 typed-data document of a batch (what wallets and eth-account sign)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Batch": BATCH_FIELDS,
            "Reading": READING_FIELDS,
        },
        "primaryType": "Batch",
        "domain": domain(chain_id, registry),
        "message": {"readings": [r.as_message() for r in readings]},
    }


def batch_digest(readings: Sequence[Reading], chain_id: int, registry: str) -> bytes:
    """The 32-byte digest the registry recovers signers from."""
    signable = encode_typed_data(full_message=typed_batch(readings, chain_id, registry))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_batch(
    readings: Sequence[Reading], chain_id: int, registry: str, private_key: Any
) -> bytes:
    """One oracle's 65-byte signature over the batch."""
    signable = encode_typed_data(full_message=typed_batch(readings, chain_id, registry))
    return bytes(Account.sign_message(signable, private_key).signature)


def recover_signer(
    readings: Sequence[Reading], chain_id: int, registry: str, signature: bytes
) -> str:
    """The address that produced `signature` over the batch (for auditors and quorum peers)."""
    signable = encode_typed_data(full_message=typed_batch(readings, chain_id, registry))
    return str(Account.recover_message(signable, signature=signature))


def order_signatures(signed: Iterable[tuple[str, bytes]]) -> list[bytes]:
    """Signatures in the ascending signer order the registry requires; one per signer."""
    by_signer: dict[int, bytes] = {}
    for signer, signature in signed:
        by_signer[int(signer, 16)] = signature
    return [by_signer[key] for key in sorted(by_signer)]


def sign_quorum(
    readings: Sequence[Reading], chain_id: int, registry: str, private_keys: Iterable[Any]
) -> list[bytes]:
    """Signatures of several oracle keys, ordered for `submitBatch` (local/test use)."""
    signed = []
    for key in private_keys:
        signer = Account.from_key(key).address
        signed.append((signer, sign_batch(readings, chain_id, registry, key)))
    return order_signatures(signed)
