"""The audit's fast EIP-712 path equals the reference `zcx.eip712` (pure, no chain)."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from zcx.audit.events import READING_TYPEHASH
from zcx.audit.signatures import (
    SECP256K1_N,
    BadSignature,
    batch_digest_from_hashes,
    domain_separator,
    recover,
)
from zcx.eip712 import Reading, batch_digest, recover_signer, sign_batch

REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
KEY = keccak(text="audit-test-oracle")

u64 = st.integers(min_value=0, max_value=2**64 - 1)
readings = st.lists(
    st.builds(Reading, st.binary(min_size=32, max_size=32), u64, u64, u64, u64, u64, u64),
    min_size=1,
    max_size=5,
)


def struct_hash(r: Reading) -> bytes:
    """What the event reader computes: typehash + the ABI words of the logged reading."""
    return keccak(READING_TYPEHASH + encode(["bytes32"] + ["uint64"] * 6, list(r.as_tuple())))


@settings(max_examples=25, deadline=None)
@given(readings, st.integers(min_value=1, max_value=2**32))
def test_digest_parity_with_reference(batch, chain_id):
    separator = domain_separator(chain_id, REGISTRY)
    fast = batch_digest_from_hashes([struct_hash(r) for r in batch], separator)
    assert fast == batch_digest(batch, chain_id, REGISTRY)


def test_recover_matches_reference_and_refuses_malleable():
    batch = [Reading(b"\x01" * 32, 0, 1800, 5, 6, 7, 8)]
    signature = sign_batch(batch, 31337, REGISTRY, KEY)
    digest = batch_digest(batch, 31337, REGISTRY)
    assert recover(digest, signature) == recover_signer(batch, 31337, REGISTRY, signature)
    assert recover(digest, signature) == Account.from_key(KEY).address
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same key, high s
    with pytest.raises(BadSignature, match="malleable"):
        recover(digest, flipped)
    with pytest.raises(BadSignature, match="65 expected"):
        recover(digest, signature[:64])
    with pytest.raises(BadSignature, match="v = 0"):
        recover(digest, signature[:64] + b"\x00")
    # A different chain id is a different digest: the signature recovers to someone else.
    assert recover(batch_digest(batch, 1, REGISTRY), signature) != Account.from_key(KEY).address
