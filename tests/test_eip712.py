"""Parity of zcx.eip712 (what the oracles sign) with GenerationRegistry (what it verifies).

The Python side is checked three ways: against the contract's `batchDigest`, `hashReading` and
`domainSeparator`; against eth_account's own EIP-712 struct hashing; and against a hand-rolled
eth_abi + keccak encoding built from the Python field list.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain, hash_struct
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_helpers import RAW_READING, raw_calldata, reading_hash, reading_type, tuples
from web3.exceptions import ContractLogicError as Web3ContractLogicError

from zcx.eip712 import (
    BATCH_FIELDS,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    READING_FIELDS,
    UINT64_MAX,
    Reading,
    batch_digest,
    domain,
    order_signatures,
    recover_signer,
    sign_batch,
    sign_quorum,
    typed_batch,
)
from zcx.ids import meter_id

UINT64 = st.integers(min_value=0, max_value=UINT64_MAX)
READINGS = st.builds(
    Reading, st.binary(min_size=32, max_size=32), UINT64, UINT64, UINT64, UINT64, UINT64, UINT64
)


def few(examples: int) -> settings:
    """A few examples, no deadline (eth_calls), no example database left in the work tree.

    Ape's per-test isolation fixture is function-scoped; these tests only make eth_calls, so
    sharing it across examples is safe and the health check is suppressed.
    """
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
    )


KEYS = st.binary(min_size=32, max_size=32).filter(
    lambda k: 0 < int.from_bytes(k, "big") < 2**256 - 2**128  # a valid secp256k1 scalar
)


def sample_reading(i: int = 0) -> Reading:
    return Reading(meter_id("ALICE-PV"), 1800 * i, 1800 * (i + 1), 1000, 400, 600, 0)


def onchain_digest(registry: Any, readings: list[Reading]) -> bytes:
    return bytes(registry.batchDigest(tuples(readings)))


# --------------------------------------------------------------------------- contract parity


@pytest.mark.parametrize("size,examples", [(1, 10), (10, 5), (100, 3)])
def test_batch_digest_matches_contract_for_random_batches(zcx, chain, size, examples):
    registry = str(zcx.registry.address)

    @few(examples)
    @given(st.lists(READINGS, min_size=size, max_size=size))
    def check(readings: list[Reading]) -> None:
        assert batch_digest(readings, chain.chain_id, registry) == onchain_digest(
            zcx.registry, readings
        )

    check()


def test_batch_digest_matches_contract_for_the_empty_batch(zcx, chain):
    """submitBatch refuses empty batches, but the digest function itself must still agree."""
    assert batch_digest([], chain.chain_id, str(zcx.registry.address)) == onchain_digest(
        zcx.registry, []
    )


@few(15)
@given(r=READINGS)
def test_hash_reading_matches_contract_and_eth_account(zcx, r):
    ours = reading_hash(r)
    assert ours == bytes(zcx.registry.hashReading(r.as_tuple()))
    assert ours == hash_struct("Reading", {"Reading": READING_FIELDS}, r.as_message())


def test_type_hashes_match_the_python_field_lists(zcx):
    assert bytes(zcx.registry.READING_TYPEHASH()) == keccak(text=reading_type())
    batch_type = f"Batch({BATCH_FIELDS[0]['type']} {BATCH_FIELDS[0]['name']})"
    assert bytes(zcx.registry.BATCH_TYPEHASH()) == keccak(text=batch_type + reading_type())


def test_domain_separator_matches_contract(zcx, chain):
    registry = str(zcx.registry.address)
    separator = bytes(zcx.registry.domainSeparator())
    assert separator == hash_domain(domain(chain.chain_id, registry))
    by_hand = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(
                    text="EIP712Domain(string name,string version,uint256 chainId,"
                    "address verifyingContract)"
                ),
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain.chain_id,
                registry,
            ],
        )
    )
    assert separator == by_hand


def test_eip5267_domain_fields_match_python_domain(zcx, chain):
    fields = zcx.registry.eip712Domain()
    expected = domain(chain.chain_id, str(zcx.registry.address))
    assert (fields.name, fields.version, fields.chainId, fields.verifyingContract) == (
        expected["name"],
        expected["version"],
        expected["chainId"],
        expected["verifyingContract"],
    )


def test_batch_digest_is_the_eip712_envelope_of_the_reading_hashes(zcx, chain):
    readings = [sample_reading(i) for i in range(3)]
    registry = str(zcx.registry.address)
    batch_type = "Batch(Reading[] readings)" + reading_type()
    array_hash = keccak(b"".join(reading_hash(r) for r in readings))
    struct_hash = keccak(encode(["bytes32", "bytes32"], [keccak(text=batch_type), array_hash]))
    separator = bytes(zcx.registry.domainSeparator())
    assert batch_digest(readings, chain.chain_id, registry) == keccak(
        b"\x19\x01" + separator + struct_hash
    )


# ------------------------------------------------------------------------ domain binding


def test_digest_changes_with_chain_id_contract_and_every_field():
    registry = "0x" + "11" * 20
    base = sample_reading()
    digest = batch_digest([base], 31337, registry)
    assert digest != batch_digest([base], 1, registry)
    assert digest != batch_digest([base], 31337, "0x" + "12" * 20)
    variants = [
        Reading(meter_id("ALICE-PV2"), *base.as_tuple()[1:]),
        *(
            Reading(*(v + 1 if j == i else v for j, v in enumerate(base.as_tuple())))
            for i in range(1, 7)
        ),
    ]
    digests = {batch_digest([v], 31337, registry) for v in variants}
    assert len(digests) == 7 and digest not in digests
    assert batch_digest([base, base], 31337, registry) != digest  # length matters
    pair = [sample_reading(0), sample_reading(1)]
    assert batch_digest(pair, 31337, registry) != batch_digest(pair[::-1], 31337, registry)


# ------------------------------------------------------------------------------- signatures


@few(10)
@given(key=KEYS, readings=st.lists(READINGS, min_size=1, max_size=5))
def test_recover_signer_round_trip(key, readings):
    registry = "0x" + "ab" * 20
    signature = sign_batch(readings, 31337, registry, key)
    assert len(signature) == 65
    signer = Account.from_key(key).address
    assert recover_signer(readings, 31337, registry, signature) == signer
    assert Account._recover_hash(batch_digest(readings, 31337, registry), signature=signature) == (
        signer
    )
    # Another chain or a tampered batch recovers someone else.
    assert recover_signer(readings, 31338, registry, signature) != signer
    changed = [
        Reading(r.meter_id, r.start, r.end, r.generated_wh ^ 1, *r.as_tuple()[4:])
        for r in readings[:1]
    ] + readings[1:]
    assert recover_signer(changed, 31337, registry, signature) != signer


def test_sign_quorum_orders_by_ascending_signer_address():
    keys = [keccak(text=f"k{i}") for i in range(6)]
    readings = [sample_reading()]
    registry = "0x" + "cd" * 20
    signatures = sign_quorum(readings, 1, registry, keys)
    signers = [recover_signer(readings, 1, registry, s) for s in signatures]
    assert [int(a, 16) for a in signers] == sorted(int(a, 16) for a in signers)
    assert set(signers) == {Account.from_key(k).address for k in keys}


def test_order_signatures_keeps_one_signature_per_signer():
    low, high = "0x" + "0a" * 20, "0x" + "ff" * 20
    # The same signer spelled in two cases is one signer: the later signature wins.
    ordered = order_signatures([(high, b"h"), (low, b"l1"), (to_checksum_address(low), b"l2")])
    assert ordered == [b"l2", b"h"]


def test_typed_batch_is_what_wallets_sign():
    doc = typed_batch([sample_reading()], 5, "0x" + "ee" * 20)
    assert doc["primaryType"] == "Batch"
    assert doc["types"]["Reading"] == READING_FIELDS
    assert doc["domain"]["verifyingContract"] == to_checksum_address("0x" + "ee" * 20)
    assert doc["domain"]["chainId"] == 5
    assert doc["message"]["readings"][0]["generatedWh"] == 1000


# ------------------------------------------------------------------------ Reading validation


@pytest.mark.parametrize(
    "field", ["start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]
)
@pytest.mark.parametrize(
    "value,message",
    [
        (-1, "outside 0..2^64-1"),
        (2**64, "outside 0..2^64-1"),
        (True, "must be an integer"),
        (False, "must be an integer"),
        (1.0, "must be an integer"),
        ("1", "must be an integer"),
        (None, "must be an integer"),
    ],
    ids=["negative", "2^64", "True", "False", "float", "str", "None"],
)
def test_reading_refuses_values_that_are_not_uint64(field, value, message):
    values = {
        "meter_id": meter_id("ALICE-PV"),
        "start": 0,
        "end": 1800,
        "generated_wh": 1,
        "consumed_wh": 1,
        "sold_wh": 1,
        "purchased_wh": 1,
    }
    values[field] = value
    with pytest.raises(ValueError, match=f"{field}: .*{re.escape(message)}"):
        Reading(**values)


@pytest.mark.parametrize("length", [0, 20, 31, 33, 64])
def test_reading_refuses_meter_id_of_wrong_length(length):
    with pytest.raises(ValueError, match="meter_id: must be 32 bytes"):
        Reading(b"\x01" * length, 0, 1800, 0, 0, 0, 0)


def test_reading_accepts_the_uint64_bounds(zcx):
    extreme = Reading(b"\xff" * 32, 0, UINT64_MAX, UINT64_MAX, 0, UINT64_MAX, 0)
    assert extreme.as_tuple()[2] == UINT64_MAX
    assert reading_hash(extreme) == bytes(zcx.registry.hashReading(extreme.as_tuple()))


def test_hash_reading_refuses_an_out_of_range_uint64_word(zcx, chain):
    words = (meter_id("ALICE-PV"), 2**64, 1800, 0, 0, 0, 0)
    data = raw_calldata(
        "hashReading((bytes32,uint64,uint64,uint64,uint64,uint64,uint64))", [RAW_READING], [words]
    )
    with pytest.raises(Web3ContractLogicError):
        chain.provider.web3.eth.call({"to": str(zcx.registry.address), "data": "0x" + data.hex()})
