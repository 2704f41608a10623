"""Helpers shared by the MemberRegistry, GenerationRegistry and EIP-712 tests.

Pure helpers (hashing, signing) plus a strict variant of `ape.reverts`. Nothing runs at import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ape
from eth_abi import encode
from eth_utils import keccak
from web3.exceptions import ContractLogicError as Web3ContractLogicError

from zcx.eip712 import READING_FIELDS, Reading
from zcx.errors import DecodedError, ErrorDecoder

ZERO32 = b"\x00" * 32


def reading_type() -> str:
    """`Reading(bytes32 meterId,...)`, built from the Python field list, not from Solidity."""
    fields = ",".join(f"{f['type']} {f['name']}" for f in READING_FIELDS)
    return f"Reading({fields})"


def reading_hash(r: Reading) -> bytes:
    """EIP-712 hashStruct(Reading) = keccak(typeHash || abi.encode(fields)), via eth_abi."""
    types = ["bytes32"] + [f["type"] for f in READING_FIELDS]
    return keccak(encode(types, [keccak(text=reading_type()), *r.as_tuple()]))


def evidence_fold(readings: Sequence[Reading], head: bytes = ZERO32) -> bytes:
    """The registry's evidence chain: head = keccak(head || readingHash) for each reading."""
    for r in readings:
        head = keccak(head + reading_hash(r))
    return head


@contextmanager
def reverts_with(error: Any, **inputs: Any) -> Iterator[Any]:
    """`ape.reverts(error, **inputs)`, but strict about the error type.

    `ape.reverts(SomeError)` accepts a revert that Ape could not decode into a custom error; this
    helper also asserts that the revert was decoded as `error`, so a test cannot pass on the
    wrong reason.
    """
    with ape.reverts(error, **inputs) as info:
        yield info
    assert isinstance(info.value, error), f"expected {error.__name__}, got {info.value!r}"


def view_error(decoder: ErrorDecoder, contract: Any, method: str, *args: Any) -> DecodedError:
    """The decoded custom error a view call reverts with.

    Ape does not decode custom errors of reverted eth_calls (it only keeps Anvil's message), so
    this makes the raw call and decodes its revert data with the project's `ErrorDecoder`.
    """
    data = getattr(contract, method).encode_input(*args)
    try:
        ape.chain.provider.web3.eth.call({"to": str(contract.address), "data": data.hex()})
    except Web3ContractLogicError as err:
        raw = err.data if isinstance(err.data, str) else ""
        assert raw.startswith("0x") and len(raw) >= 10, f"revert without custom error: {err}"
        return decoder.decode(bytes.fromhex(raw[2:]))
    raise AssertionError(f"{method} did not revert")


def tuples(readings: Sequence[Reading]) -> list[tuple[Any, ...]]:
    return [r.as_tuple() for r in readings]


def raw_reading_digest(registry: Any, words: Sequence[int | bytes]) -> bytes:
    """The batch digest of one reading given as seven raw 32-byte words (no uint64 range check),
    built from the contract's own type hashes and domain separator."""
    struct_hash = keccak(bytes(registry.READING_TYPEHASH()) + encode(RAW_TYPES, list(words)))
    batch_hash = keccak(bytes(registry.BATCH_TYPEHASH()) + keccak(struct_hash))
    return keccak(b"\x19\x01" + bytes(registry.domainSeparator()) + batch_hash)


def raw_calldata(signature: str, abi_types: Sequence[str], values: Sequence[Any]) -> bytes:
    """Calldata whose uint64 fields are encoded as uint256 words (same layout, no range check),
    as an attacker or a buggy encoder could send it."""
    return keccak(text=signature)[:4] + encode(list(abi_types), list(values))


RAW_TYPES = ["bytes32"] + ["uint256"] * 6
RAW_READING = "(" + ",".join(RAW_TYPES) + ")"


def claim_hourly(exchange: Any, registry: Any, meter: bytes, **tx: Any) -> Any:
    """`exchange.claim` with the meter's readings since its last claim (zcx.claims), as the
    SDK sends them."""
    from zcx.claims import claim_args

    args = claim_args(ape.chain.provider.web3, str(registry.address), meter)
    return exchange.claim(registry, meter, args[2], **tx)
