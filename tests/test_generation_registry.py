"""GenerationRegistry: every reading rule, every batch rule, administration, claims, evidence.

Reading-level rules are checked twice: through the `ReadingRejected` event of a real batch (its
reason decoded with the project's error decoder) and through `validateReading` reverting with the
same custom error. Batch-level rules revert the whole batch and change nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from conftest import BUSINESS, INTERVAL, SOLAR, reading
from eth_account import Account
from eth_utils import keccak
from registry_helpers import (
    RAW_READING,
    ZERO32,
    evidence_fold,
    raw_calldata,
    raw_reading_digest,
    reverts_with,
    tuples,
    view_error,
)

from zcx.eip712 import Reading, batch_digest, sign_batch, sign_quorum
from zcx.ids import meter_id

ALICE = meter_id("ALICE-PV")  # 5 kW, commissioned epoch - 1 day
BOB = meter_id("BOB-PV")  # 50 kW
NOBODY = meter_id("NOBODY-PV")  # never registered
ALICE_MAX_WH = 2750  # 5000 W x 0.5 h x 1.10
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEFAULT_ADMIN_ROLE = b"\x00" * 32


# ------------------------------------------------------------------------------------ helpers


def at(label: str, epoch: int, slot: int, **figures: int) -> Reading:
    """The reading of meter `label` for the `slot`-th interval after `epoch`."""
    return reading(label, epoch + slot * INTERVAL, **figures)


def sign(registry: Any, chain: Any, readings: list[Reading], keys: list[bytes]) -> list[bytes]:
    return sign_quorum(readings, chain.chain_id, str(registry.address), keys)


def digest_of(registry: Any, chain: Any, readings: list[Reading]) -> bytes:
    return batch_digest(readings, chain.chain_id, str(registry.address))


@dataclass(frozen=True)
class MeterState:
    last_end: int
    totals: tuple[int, int, int, int]
    evidence: bytes
    claimed: int
    unclaimed: int


def state(registry: Any, mid: bytes) -> MeterState:
    t = registry.meterTotals(mid)
    return MeterState(
        registry.lastEnd(mid),
        (t.generatedWh, t.consumedWh, t.soldWh, t.purchasedWh),
        bytes(registry.evidenceHead(mid)),
        registry.claimedWh(mid),
        registry.unclaimedWh(mid),
    )


def figures(readings: list[Reading]) -> tuple[int, int, int, int]:
    return (
        sum(r.generated_wh for r in readings),
        sum(r.consumed_wh for r in readings),
        sum(r.sold_wh for r in readings),
        sum(r.purchased_wh for r in readings),
    )


def recorded(tx: Any, registry: Any) -> list[tuple[Any, ...]]:
    """(meterId, start, end, PQ1..PQ4) of every ReadingRecorded log, in log order."""
    return [
        (
            bytes(log.meterId),
            log.start,
            log.end,
            log.generatedWh,
            log.consumedWh,
            log.soldWh,
            log.purchasedWh,
        )
        for log in tx.decode_logs(registry.ReadingRecorded)
    ]


def rejected(tx: Any, registry: Any, decoder: Any) -> list[tuple[int, str, dict[str, Any]]]:
    """(index, error name, error args) of every ReadingRejected log, checking its fields."""
    out = []
    for log in tx.decode_logs(registry.ReadingRejected):
        assert bytes(log.meterId) == bytes(log.reading[0])
        error = decoder.decode(log.reason)
        out.append((log.index, error.name, error.args))
    return out


def applied(tx: Any, registry: Any) -> Any:
    logs = tx.decode_logs(registry.BatchApplied)
    assert len(logs) == 1
    return logs[0]


def assert_rejected(
    registry: Any, decoder: Any, submit: Any, bad: Reading, name: str, **args: Any
) -> None:
    """`bad` fails `validateReading` and is skipped by `submitBatch` with the same custom error,
    and leaves its meter's state exactly as it was."""
    error = view_error(decoder, registry, "validateReading", bad.as_tuple())
    assert error.name == name
    assert {k: error.args[k] for k in args} == args

    before = state(registry, bad.meter_id)
    tx = submit([bad])
    [(index, event_name, event_args)] = rejected(tx, registry, decoder)
    assert (index, event_name) == (0, name)
    assert {k: event_args[k] for k in args} == args
    log = tx.decode_logs(registry.ReadingRejected)[0]
    assert tuple(log.reading) == bad.as_tuple()
    assert recorded(tx, registry) == []
    batch = applied(tx, registry)
    assert (batch.accepted, batch.rejected) == (0, 1)
    assert state(registry, bad.meter_id) == before


def assert_accepted(registry: Any, submit: Any, good: Reading) -> Any:
    registry.validateReading(good.as_tuple())  # does not revert
    tx = submit([good])
    assert recorded(tx, registry) == [good.as_tuple()]
    assert registry.lastEnd(good.meter_id) >= good.end  # later when `good` fills a gap
    assert registry.isRecorded(good.meter_id, good.start, good.end)
    return tx


@pytest.fixture
def registry(registered):
    return registered.registry


@pytest.fixture
def claimer(registry, admin, carol):
    """Carol gets CLAIMER_ROLE (in production the exchange contract holds it)."""
    registry.grantRole(registry.CLAIMER_ROLE(), carol, sender=admin)
    return carol


# ------------------------------------------------------------------------- a good reading


def test_valid_reading_is_recorded_with_events_totals_and_evidence(
    registry, submit, submitter, chain, epoch, oracle_addresses
):
    r = at("ALICE-PV", epoch, 0, gen=1234, cons=321, sold=913, bought=7)
    registry.validateReading(r.as_tuple())
    tx = submit([r])

    assert recorded(tx, registry) == [r.as_tuple()]
    batch = applied(tx, registry)
    digest = digest_of(registry, chain, [r])
    assert bytes(batch.digest) == digest
    assert batch.submitter == submitter.address
    assert (batch.accepted, batch.rejected) == (1, 0)
    assert list(batch.signers) == sorted(oracle_addresses[:2], key=lambda a: int(a, 16))
    assert registry.isBatchApplied(digest)

    s = state(registry, ALICE)
    assert s.last_end == r.end
    assert s.totals == (1234, 321, 913, 7)
    assert s.evidence == evidence_fold([r]) != ZERO32
    assert (s.claimed, s.unclaimed) == (0, 1234)


def test_reading_starting_exactly_at_last_end_is_accepted(registry, submit, epoch):
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 0))
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 1))
    assert registry.lastEnd(ALICE) == epoch + 2 * INTERVAL


# --------------------------------------------------------------------- each reading rejection


def test_unknown_meter_is_rejected(registry, submit, decoder, epoch):
    bad = at("NOBODY-PV", epoch, 0)
    assert_rejected(registry, decoder, submit, bad, "RegistryUnknownMeter", meterId=NOBODY)


def test_inactive_meter_is_rejected_until_reactivated(
    registered, registry, submit, decoder, operator, epoch
):
    registered.members.setMeterActive(ALICE, False, sender=operator)
    bad = at("ALICE-PV", epoch, 0)
    assert_rejected(registry, decoder, submit, bad, "RegistryInactiveMeter", meterId=ALICE)

    registered.members.setMeterActive(ALICE, True, sender=operator)
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 0, gen=999))


@pytest.mark.parametrize("length", [1799, 1801, 900, 3600, 0, -INTERVAL], ids=lambda n: f"len{n}")
def test_bad_interval_length_is_rejected(registry, submit, decoder, epoch, length):
    start = epoch + INTERVAL
    bad = Reading(ALICE, start, start + length, 100, 0, 0, 0)
    assert_rejected(
        registry,
        decoder,
        submit,
        bad,
        "RegistryBadIntervalLength",
        meterId=ALICE,
        start=start,
        end=start + length,
        expectedSeconds=INTERVAL,
    )


def test_replayed_interval_is_rejected_as_overlap(registry, submit, decoder, epoch):
    first = at("ALICE-PV", epoch, 0, gen=1000)
    submit([first])
    # The same interval with other figures is a new batch (new digest), but its slot is taken.
    replay = replace(first, generated_wh=2000)
    assert_rejected(
        registry,
        decoder,
        submit,
        replay,
        "RegistryReadingOverlaps",
        meterId=ALICE,
        start=epoch,
        end=epoch + INTERVAL,
    )


def test_identical_reading_resent_with_a_new_reading_is_rejected_as_overlap(
    registry, submit, decoder, epoch
):
    first = at("ALICE-PV", epoch, 0)
    submit([first])
    second = at("ALICE-PV", epoch, 1)
    tx = submit([first, second])  # a different batch that carries the old reading again
    assert rejected(tx, registry, decoder) == [
        (0, "RegistryReadingOverlaps", {"meterId": ALICE, "start": epoch, "end": first.end})
    ]
    assert recorded(tx, registry) == [second.as_tuple()]
    assert state(registry, ALICE).totals == figures([first, second])


@pytest.mark.parametrize("offset", [1, INTERVAL // 2, INTERVAL - 1])
def test_reading_off_the_interval_grid_is_rejected(registry, submit, decoder, epoch, offset):
    # A half-shifted reading would overlap two slots without covering either: the grid rule
    # makes slots the unit of overlap (and refuses it before any slot is recorded, too).
    submit([at("ALICE-PV", epoch, 0)])
    start = epoch + offset
    bad = Reading(ALICE, start, start + INTERVAL, 10, 0, 0, 0)
    assert_rejected(
        registry,
        decoder,
        submit,
        bad,
        "RegistryReadingMisaligned",
        meterId=ALICE,
        start=start,
        intervalSeconds=INTERVAL,
    )


def test_duplicate_within_one_batch_is_rejected_and_out_of_order_is_recorded(
    registry, submit, decoder, epoch
):
    r0, r1 = at("ALICE-PV", epoch, 0), at("ALICE-PV", epoch, 1)
    tx = submit([r1, r1, r0, r0])
    assert recorded(tx, registry) == [r1.as_tuple(), r0.as_tuple()]
    assert [(i, name) for i, name, _ in rejected(tx, registry, decoder)] == [
        (1, "RegistryReadingOverlaps"),
        (3, "RegistryReadingOverlaps"),
    ]
    assert state(registry, ALICE).totals == figures([r1, r0])
    assert registry.lastEnd(ALICE) == r1.end  # the latest end, not the last recorded one


def test_reading_ending_in_the_future_is_rejected(registry, submit, decoder, chain):
    start = (chain.pending_timestamp // INTERVAL + 2) * INTERVAL
    bad = Reading(ALICE, start, start + INTERVAL, 10, 0, 0, 0)
    assert_rejected(
        registry, decoder, submit, bad, "RegistryReadingInFuture", meterId=ALICE, end=bad.end
    )


def test_reading_may_end_exactly_now_but_not_one_second_later(registry, submit, decoder, chain):
    t = (chain.pending_timestamp // INTERVAL + 1) * INTERVAL  # readings end on the grid
    early = Reading(BOB, t - INTERVAL, t, 10, 0, 0, 0)
    chain.pending_timestamp = t - 1
    tx = submit([early])
    assert chain.blocks[tx.block_number].timestamp == t - 1
    assert recorded(tx, registry) == []
    assert rejected(tx, registry, decoder) == [
        (0, "RegistryReadingInFuture", {"meterId": BOB, "end": t, "now_": t - 1})
    ]
    on_time = Reading(ALICE, t - INTERVAL, t, 10, 0, 0, 0)
    chain.pending_timestamp = t
    tx = submit([on_time])
    assert chain.blocks[tx.block_number].timestamp == t
    assert recorded(tx, registry) == [on_time.as_tuple()]


def test_reading_before_commissioning_is_rejected(registry, submit, decoder, epoch):
    commissioned = epoch - 86400  # see the `registered` fixture
    bad = Reading(ALICE, commissioned - INTERVAL, commissioned, 10, 0, 0, 0)
    assert_rejected(
        registry,
        decoder,
        submit,
        bad,
        "RegistryReadingBeforeCommissioning",
        meterId=ALICE,
        start=commissioned - INTERVAL,
        commissionedAt=commissioned,
    )
    assert_accepted(
        registry, submit, Reading(ALICE, commissioned, commissioned + INTERVAL, 1, 0, 0, 0)
    )


def test_generation_exactly_at_capacity_limit_passes_and_one_wh_more_fails(
    registry, submit, decoder, epoch
):
    assert registry.capacityMarginBps() == 1000
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 0, gen=ALICE_MAX_WH))
    bad = at("ALICE-PV", epoch, 1, gen=ALICE_MAX_WH + 1)
    assert_rejected(
        registry,
        decoder,
        submit,
        bad,
        "RegistryGenerationExceedsCapacity",
        meterId=ALICE,
        generatedWh=ALICE_MAX_WH + 1,
        maxWh=ALICE_MAX_WH,
    )


def test_capacity_limit_follows_margin_and_capacity_updates(
    registered, registry, submit, decoder, admin, operator, epoch
):
    registry.setCapacityMarginBps(0, sender=admin)
    bad = at("ALICE-PV", epoch, 0, gen=2501)
    assert_rejected(registry, decoder, submit, bad, "RegistryGenerationExceedsCapacity", maxWh=2500)
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 0, gen=2500))

    registered.members.updateMeter(ALICE, 6_000, "TEPCO-13", sender=operator)  # repowered
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 1, gen=3000))
    assert_rejected(
        registry,
        decoder,
        submit,
        at("ALICE-PV", epoch, 2, gen=3001),
        "RegistryGenerationExceedsCapacity",
        maxWh=3000,
    )


def test_consumption_only_meter_accepts_zero_generation_only(
    registered, registry, submit, decoder, operator, carol, epoch
):
    registered.members.registerMember(carol, "Carol KK", BUSINESS, sender=operator)
    mid = meter_id("CAROL-LOAD")
    registered.members.registerMeter(mid, carol, SOLAR, 0, "TEPCO-13", epoch, sender=operator)
    assert_accepted(registry, submit, at("CAROL-LOAD", epoch, 0, gen=0, cons=800, bought=800))
    assert_rejected(
        registry,
        decoder,
        submit,
        at("CAROL-LOAD", epoch, 1, gen=1),
        "RegistryGenerationExceedsCapacity",
        maxWh=0,
    )


def test_first_failing_rule_is_the_reported_reason(registry, submit, decoder, chain):
    # An unknown meter with a bad length, in the future: the meter check comes first.
    start = chain.pending_timestamp + 86400
    bad = Reading(NOBODY, start, start + 7, 10**12, 0, 0, 0)
    assert_rejected(registry, decoder, submit, bad, "RegistryUnknownMeter")


def test_flagged_meter_readings_are_still_recorded(registered, registry, submit, operator, epoch):
    """Flags stop claims at the exchange; the ledger keeps recording what was measured."""
    registered.members.setMeterFlagged(ALICE, True, "inspection", sender=operator)
    assert_accepted(registry, submit, at("ALICE-PV", epoch, 0))


# ---------------------------------------------------------------------------------------- gaps


def test_gap_is_allowed_and_a_late_gap_filler_is_recorded_once(registry, submit, decoder, epoch):
    r0, r5 = at("ALICE-PV", epoch, 0), at("ALICE-PV", epoch, 5)
    tx = submit([r0, r5])
    assert recorded(tx, registry) == [r0.as_tuple(), r5.as_tuple()]
    assert registry.lastEnd(ALICE) == epoch + 6 * INTERVAL  # jumped over slots 1..4
    assert state(registry, ALICE).totals == figures([r0, r5])
    assert not registry.isRecorded(ALICE, epoch + INTERVAL, epoch + 5 * INTERVAL)

    # A late reading for the gap is recorded (invariant 9); lastEnd stays the latest end.
    late = at("ALICE-PV", epoch, 2, gen=777)
    tx = submit([late])
    assert recorded(tx, registry) == [late.as_tuple()]
    assert registry.lastEnd(ALICE) == epoch + 6 * INTERVAL
    assert state(registry, ALICE).totals == figures([r0, r5, late])
    assert registry.isRecorded(ALICE, late.start, late.end)
    # Once filled, the slot is taken like any other: other figures for it are an overlap.
    assert_rejected(
        registry,
        decoder,
        submit,
        replace(late, generated_wh=778),
        "RegistryReadingOverlaps",
        start=late.start,
        end=late.end,
    )


# ---------------------------------------------------------------------------- batch-level rules


def test_fewer_signatures_than_quorum_revert(registry, chain, oracle_keys, submitter, epoch):
    readings = [at("ALICE-PV", epoch, 0)]
    assert registry.quorum() == 2
    one = sign(registry, chain, readings, oracle_keys[:1])
    with reverts_with(registry.RegistryQuorumNotMet, validSigners=1, quorum=2):
        registry.submitBatch(tuples(readings), one, sender=submitter)
    with reverts_with(registry.RegistryQuorumNotMet, validSigners=0, quorum=2):
        registry.submitBatch(tuples(readings), [], sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_same_key_twice_reverts_as_duplicate_signer(
    registry, chain, oracle_keys, oracle_addresses, submitter, epoch
):
    readings = [at("ALICE-PV", epoch, 0)]
    sig = sign(registry, chain, readings, oracle_keys[:1])[0]
    with reverts_with(registry.RegistryDuplicateSigner, signer=oracle_addresses[0]):
        registry.submitBatch(tuples(readings), [sig, sig], sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_non_signer_key_reverts_as_unknown_signer(registry, chain, oracle_keys, submitter, epoch):
    readings = [at("ALICE-PV", epoch, 0)]
    stranger_key = keccak(text="not an oracle")
    stranger = Account.from_key(stranger_key).address
    signatures = sign(registry, chain, readings, [oracle_keys[0], stranger_key])
    with reverts_with(registry.RegistryUnknownSigner, signer=stranger):
        registry.submitBatch(tuples(readings), signatures, sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_unsorted_signatures_revert(registry, chain, oracle_keys, submitter, epoch):
    readings = [at("ALICE-PV", epoch, 0)]
    ordered = sign(registry, chain, readings, oracle_keys[:2])
    low = Account._recover_hash(digest_of(registry, chain, readings), signature=ordered[0])
    with reverts_with(registry.RegistrySignersNotSorted, signer=low):
        registry.submitBatch(tuples(readings), ordered[::-1], sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_signature_for_another_chain_id_is_refused(
    registry, chain, oracle_keys, oracle_addresses, submitter, epoch
):
    readings = [at("ALICE-PV", epoch, 0)]
    foreign = sign_quorum(readings, chain.chain_id + 1, str(registry.address), oracle_keys[:2])
    # The registry recovers from its own digest, which yields some unrelated address.
    recovered = Account._recover_hash(digest_of(registry, chain, readings), signature=foreign[0])
    assert recovered not in oracle_addresses
    with reverts_with(registry.RegistryUnknownSigner, signer=recovered):
        registry.submitBatch(tuples(readings), foreign, sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_signature_for_another_registry_is_refused_but_valid_there(
    registered, registry, project, admin, chain, oracle_keys, oracle_addresses, submitter, epoch
):
    twin = admin.deploy(
        project.GenerationRegistry, admin, registered.members, oracle_addresses, 2, INTERVAL, 1000
    )
    readings = [at("ALICE-PV", epoch, 0)]
    for_twin = sign_quorum(readings, chain.chain_id, str(twin.address), oracle_keys[:2])
    recovered = Account._recover_hash(digest_of(registry, chain, readings), signature=for_twin[0])
    with reverts_with(registry.RegistryUnknownSigner, signer=recovered):
        registry.submitBatch(tuples(readings), for_twin, sender=submitter)
    assert registry.lastEnd(ALICE) == 0

    tx = twin.submitBatch(tuples(readings), for_twin, sender=submitter)  # the right domain
    assert len(tx.decode_logs(twin.ReadingRecorded)) == 1
    assert twin.lastEnd(ALICE) == readings[0].end


def test_batch_already_applied_reverts_even_with_other_signers(
    registry, submit, chain, oracle_keys, epoch
):
    readings = [at("ALICE-PV", epoch, 0), at("BOB-PV", epoch, 0)]
    submit(readings)
    before = (state(registry, ALICE), state(registry, BOB))
    digest = digest_of(registry, chain, readings)
    with reverts_with(registry.RegistryBatchAlreadyApplied, digest=digest):
        submit(readings)
    with reverts_with(registry.RegistryBatchAlreadyApplied, digest=digest):
        submit(readings, keys=oracle_keys[1:3])
    assert (state(registry, ALICE), state(registry, BOB)) == before


def test_batch_with_only_rejected_readings_is_still_applied_once(
    registry, submit, chain, decoder, epoch
):
    readings = [at("NOBODY-PV", epoch, 0)]
    assert applied(submit(readings), registry).rejected == 1
    assert registry.isBatchApplied(digest_of(registry, chain, readings))
    with reverts_with(registry.RegistryBatchAlreadyApplied):
        submit(readings)


def test_empty_batch_reverts(registry, chain, oracle_keys, submitter):
    signatures = sign(registry, chain, [], oracle_keys[:2])
    with reverts_with(registry.RegistryEmptyBatch):
        registry.submitBatch([], signatures, sender=submitter)


def test_batch_above_max_size_reverts(registry, submitter, epoch):
    size = registry.MAX_BATCH_SIZE() + 1
    readings = [at("ALICE-PV", epoch, i) for i in range(size)]
    with reverts_with(registry.RegistryBatchTooLarge, size=size, max=size - 1):
        registry.submitBatch(tuples(readings), [], sender=submitter)


@pytest.mark.parametrize("tamper", ["figure", "swap", "drop", "add"])
def test_tampered_batch_after_signing_reverts_as_unknown_signer(
    registry, chain, oracle_keys, oracle_addresses, submitter, epoch, tamper
):
    signed = [at("ALICE-PV", epoch, 0, gen=100), at("BOB-PV", epoch, 0, gen=200)]
    signatures = sign(registry, chain, signed, oracle_keys[:2])
    sent = {
        "figure": [replace(signed[0], generated_wh=2700), signed[1]],
        "swap": signed[::-1],
        "drop": signed[:1],
        "add": [*signed, at("ALICE-PV", epoch, 1)],
    }[tamper]
    recovered = Account._recover_hash(digest_of(registry, chain, sent), signature=signatures[0])
    assert recovered not in oracle_addresses
    with reverts_with(registry.RegistryUnknownSigner, signer=recovered):
        registry.submitBatch(tuples(sent), signatures, sender=submitter)
    assert registry.lastEnd(ALICE) == registry.lastEnd(BOB) == 0


def test_malformed_signatures_revert(registry, chain, oracle_keys, submitter, epoch):
    readings = [at("ALICE-PV", epoch, 0)]
    good = sign(registry, chain, readings, oracle_keys[:2])
    with reverts_with(registry.ECDSAInvalidSignatureLength, length=64):
        registry.submitBatch(tuples(readings), [good[0][:64], good[1]], sender=submitter)

    # The malleable twin (s -> n - s, v flipped) recovers the same key; OpenZeppelin refuses it.
    r, s, v = good[0][:32], int.from_bytes(good[0][32:64], "big"), good[0][64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with reverts_with(registry.ECDSAInvalidSignatureS):
        registry.submitBatch(tuples(readings), [twin, good[1]], sender=submitter)

    with reverts_with(registry.ECDSAInvalidSignature):
        registry.submitBatch(tuples(readings), [good[0][:64] + b"\x1d", good[1]], sender=submitter)
    assert registry.lastEnd(ALICE) == 0


def test_quorum_signed_batch_with_an_out_of_range_uint64_word_is_refused_whole(
    registry, chain, oracle_keys, submitter, epoch
):
    """Even with valid quorum signatures over the raw words, a `start` word of 2^64 + epoch
    (not a uint64) must not be recorded: Solidity's checked calldata access reverts the batch."""
    words = [ALICE, 2**64 + epoch, epoch + INTERVAL, 1000, 0, 0, 0]
    digest = raw_reading_digest(registry, words)
    signed = sorted(
        (
            (Account.from_key(k).address, bytes(Account.unsafe_sign_hash(digest, k).signature))
            for k in oracle_keys[:2]
        ),
        key=lambda pair: int(pair[0], 16),
    )
    data = raw_calldata(
        "submitBatch((bytes32,uint64,uint64,uint64,uint64,uint64,uint64)[],bytes[])",
        [RAW_READING + "[]", "bytes[]"],
        [[tuple(words)], [sig for _, sig in signed]],
    )
    txn = chain.provider.network.ecosystem.create_transaction(
        receiver=registry.address, data=data, sender=submitter.address, gas_limit=5_000_000
    )
    with pytest.raises(ContractLogicError):
        submitter.call(txn)
    assert not registry.isBatchApplied(digest)
    assert state(registry, ALICE) == MeterState(0, (0, 0, 0, 0), ZERO32, 0, 0)


def test_all_three_signers_may_sign_and_are_logged(
    registry, submit, oracle_keys, oracle_addresses, epoch
):
    tx = submit([at("ALICE-PV", epoch, 0)], keys=oracle_keys)
    batch = applied(tx, registry)
    assert list(batch.signers) == sorted(oracle_addresses, key=lambda a: int(a, 16))
    assert len(batch.signatures) == 3


def test_any_account_may_submit_a_signed_batch(registry, submit, alice, epoch):
    tx = submit([at("BOB-PV", epoch, 0)], sender=alice)
    assert applied(tx, registry).submitter == alice.address
    assert registry.lastEnd(BOB) == epoch + INTERVAL


def test_paused_registry_refuses_batches_until_unpaused(registry, submit, admin, epoch):
    readings = [at("ALICE-PV", epoch, 0)]
    registry.pause(sender=admin)
    with reverts_with(registry.EnforcedPause):
        submit(readings)
    assert registry.lastEnd(ALICE) == 0

    registry.unpause(sender=admin)
    submit(readings)
    assert registry.lastEnd(ALICE) == readings[0].end


# ------------------------------------------------------------------------------ administration


def test_added_signer_counts_and_removed_signer_does_not(
    registry, submit, admin, chain, submitter, oracle_keys, oracle_addresses, epoch
):
    new_key = keccak(text="zcx-test-oracle-new")
    new = Account.from_key(new_key).address
    tx = registry.addSigner(new, sender=admin)
    assert tx.events == [registry.OracleSignerAdded(signer=new)]
    assert registry.isSigner(new) and new in registry.signers()
    submit([at("ALICE-PV", epoch, 0)], keys=[oracle_keys[0], new_key])

    tx = registry.removeSigner(oracle_addresses[0], sender=admin)
    assert tx.events == [registry.OracleSignerRemoved(signer=oracle_addresses[0])]
    assert not registry.isSigner(oracle_addresses[0])
    readings = [at("ALICE-PV", epoch, 1)]
    signatures = sign(registry, chain, readings, [oracle_keys[0], new_key])
    with reverts_with(registry.RegistryUnknownSigner, signer=oracle_addresses[0]):
        registry.submitBatch(tuples(readings), signatures, sender=submitter)


def test_add_signer_refuses_duplicates_and_zero_address(registry, admin, oracle_addresses):
    with reverts_with(registry.RegistrySignerAlreadyAdded, signer=oracle_addresses[1]):
        registry.addSigner(oracle_addresses[1], sender=admin)
    zero = "0x" + "00" * 20
    with reverts_with(registry.RegistrySignerAlreadyAdded, signer=zero):
        registry.addSigner(zero, sender=admin)
    assert len(registry.signers()) == 3


def test_remove_signer_refuses_unknown_and_keeps_quorum_reachable(
    registry, admin, alice, oracle_addresses
):
    with reverts_with(registry.RegistrySignerNotFound, signer=alice.address):
        registry.removeSigner(alice, sender=admin)
    registry.removeSigner(oracle_addresses[2], sender=admin)  # 2 signers left, quorum 2
    with reverts_with(registry.RegistryInvalidQuorum, quorum=2, signerCount=1):
        registry.removeSigner(oracle_addresses[1], sender=admin)
    assert registry.signers() == oracle_addresses[:2]


@pytest.mark.parametrize("k", [0, 4])
def test_set_quorum_refuses_zero_and_more_than_signers(registry, admin, k):
    with reverts_with(registry.RegistryInvalidQuorum, quorum=k, signerCount=3):
        registry.setQuorum(k, sender=admin)
    assert registry.quorum() == 2


def test_set_quorum_changes_the_signatures_needed(
    registry, submit, admin, chain, submitter, oracle_keys, epoch
):
    tx = registry.setQuorum(3, sender=admin)
    assert tx.events == [registry.QuorumSet(quorum=3)]
    readings = [at("ALICE-PV", epoch, 0)]
    with reverts_with(registry.RegistryQuorumNotMet, validSigners=2, quorum=3):
        submit(readings)
    submit(readings, keys=oracle_keys)

    registry.setQuorum(1, sender=admin)
    submit([at("ALICE-PV", epoch, 1)], keys=oracle_keys[2:])
    assert registry.lastEnd(ALICE) == epoch + 2 * INTERVAL


@pytest.mark.parametrize("seconds", [0, 86401])
def test_set_interval_seconds_refuses_zero_and_more_than_a_day(registry, admin, seconds):
    with reverts_with(registry.RegistryInvalidInterval, intervalSeconds=seconds):
        registry.setIntervalSeconds(seconds, sender=admin)
    assert registry.intervalSeconds() == INTERVAL


@pytest.mark.parametrize("seconds", [900, 2700, 5400, 86400, INTERVAL * 512])
def test_set_interval_seconds_refuses_lengths_off_the_slot_grid(registry, admin, seconds):
    # Slots are fixed at deployment (1800 s): shorter, non-multiple, or not-a-power-of-two
    # lengths (86400 = 48 slots) cannot be laid on the recorded-slot bitmap.
    assert registry.slotSeconds() == INTERVAL
    with reverts_with(registry.RegistryInvalidInterval, intervalSeconds=seconds):
        registry.setIntervalSeconds(seconds, sender=admin)
    assert registry.intervalSeconds() == INTERVAL


def test_set_interval_seconds_changes_the_required_length(registry, submit, decoder, admin, epoch):
    hour = 2 * INTERVAL
    base = (epoch // hour + 1) * hour  # on the hour grid, after ALICE's commissioning
    submit([Reading(ALICE, base, base + INTERVAL, 1000, 0, 0, 0)])  # a 30-minute reading first
    tx = registry.setIntervalSeconds(hour, sender=admin)
    assert tx.events == [registry.IntervalSecondsSet(intervalSeconds=hour)]
    assert_accepted(registry, submit, Reading(ALICE, base + hour, base + 2 * hour, 5500, 0, 0, 0))
    assert_rejected(
        registry,
        decoder,
        submit,
        Reading(ALICE, base + 2 * hour, base + 2 * hour + INTERVAL, 1, 0, 0, 0),
        "RegistryBadIntervalLength",
        expectedSeconds=hour,
    )
    # Readings keep to the new grid: an hour starting on the half hour is refused.
    assert_rejected(
        registry,
        decoder,
        submit,
        Reading(ALICE, base + INTERVAL, base + INTERVAL + hour, 1, 0, 0, 0),
        "RegistryReadingMisaligned",
        intervalSeconds=hour,
    )
    # An hour over the half hour already recorded at the old length is an overlap...
    assert_rejected(
        registry,
        decoder,
        submit,
        Reading(ALICE, base, base + hour, 1, 0, 0, 0),
        "RegistryReadingOverlaps",
        start=base,
        end=base + hour,
    )
    # ...and going back to 30 minutes, its free half hour can still be filled, once.
    registry.setIntervalSeconds(INTERVAL, sender=admin)
    assert_accepted(registry, submit, Reading(ALICE, base + INTERVAL, base + hour, 9, 0, 0, 0))
    assert registry.isRecorded(ALICE, base, base + 2 * hour)
    registry.setIntervalSeconds(INTERVAL * 32, sender=admin)  # 16 h: the longest grid length
    assert registry.intervalSeconds() == INTERVAL * 32


def test_set_capacity_margin_emits_event_and_refuses_overflow(registry, admin):
    tx = registry.setCapacityMarginBps(2500, sender=admin)
    assert tx.events == [registry.CapacityMarginSet(marginBps=2500)]
    assert registry.capacityMarginBps() == 2500
    with reverts_with(registry.SafeCastOverflowedUintDowncast, bits=32, value=2**32):
        registry.setCapacityMarginBps(2**32, sender=admin)
    assert registry.capacityMarginBps() == 2500


ADMIN_WRITES = [
    ("addSigner", lambda reg, who: (who,)),
    ("removeSigner", lambda reg, who: (reg.signers()[0],)),
    ("setQuorum", lambda reg, who: (1,)),
    ("setIntervalSeconds", lambda reg, who: (60,)),
    ("setCapacityMarginBps", lambda reg, who: (10**6,)),
    ("pause", lambda reg, who: ()),
    ("unpause", lambda reg, who: ()),
    ("grantRole", lambda reg, who: (reg.CLAIMER_ROLE(), who)),
]


@pytest.mark.parametrize("name,args", ADMIN_WRITES, ids=[w[0] for w in ADMIN_WRITES])
@pytest.mark.parametrize("who", ["operator", "submitter", "alice"])
def test_non_admin_cannot_administer(registry, request, name, args, who):
    caller = request.getfixturevalue(who)
    before = (
        registry.signers(),
        registry.quorum(),
        registry.intervalSeconds(),
        registry.capacityMarginBps(),
        registry.paused(),
    )
    with reverts_with(
        registry.AccessControlUnauthorizedAccount,
        account=caller.address,
        neededRole=DEFAULT_ADMIN_ROLE,
    ):
        getattr(registry, name)(*args(registry, caller), sender=caller)
    after = (
        registry.signers(),
        registry.quorum(),
        registry.intervalSeconds(),
        registry.capacityMarginBps(),
        registry.paused(),
    )
    assert after == before


# ------------------------------------------------------------------- no partial corruption


def test_mixed_batch_records_exactly_the_good_readings(registry, submit, decoder, chain, epoch):
    a0, a1, a2 = (at("ALICE-PV", epoch, i, gen=1000 + i) for i in range(3))
    b0 = at("BOB-PV", epoch, 0, gen=20_000)
    future = (chain.pending_timestamp // INTERVAL + 48) * INTERVAL
    batch = [
        a0,  # 0 good
        a0,  # 1 overlap (duplicate)
        b0,  # 2 good
        at("NOBODY-PV", epoch, 0),  # 3 unknown meter
        replace(a1, generated_wh=ALICE_MAX_WH + 1),  # 4 above capacity
        a2,  # 5 good (a gap over slot 1, which was rejected)
        Reading(BOB, future, future + INTERVAL, 1, 0, 0, 0),  # 6 in the future
        Reading(ALICE, a2.end, a2.end + 60, 1, 0, 0, 0),  # 7 bad length
    ]
    tx = submit(batch)

    assert recorded(tx, registry) == [a0.as_tuple(), b0.as_tuple(), a2.as_tuple()]
    assert [(i, name) for i, name, _ in rejected(tx, registry, decoder)] == [
        (1, "RegistryReadingOverlaps"),
        (3, "RegistryUnknownMeter"),
        (4, "RegistryGenerationExceedsCapacity"),
        (6, "RegistryReadingInFuture"),
        (7, "RegistryBadIntervalLength"),
    ]
    result = applied(tx, registry)
    assert (result.accepted, result.rejected) == (3, 5)

    alice, bob = state(registry, ALICE), state(registry, BOB)
    assert (alice.last_end, alice.totals, alice.evidence) == (
        a2.end,
        figures([a0, a2]),
        evidence_fold([a0, a2]),
    )
    assert (bob.last_end, bob.totals, bob.evidence) == (b0.end, figures([b0]), evidence_fold([b0]))
    assert state(registry, NOBODY) == MeterState(0, (0, 0, 0, 0), ZERO32, 0, 0)


def test_meter_in_two_non_adjacent_runs_of_one_batch(registry, submit, decoder, epoch):
    a = [at("ALICE-PV", epoch, i, gen=100 * (i + 1)) for i in range(3)]
    b = [at("BOB-PV", epoch, i, gen=1000 * (i + 1)) for i in range(2)]
    tx = submit([a[0], b[0], a[1], b[1], a[2], a[1]])  # the last one repeats a[1]

    assert recorded(tx, registry) == [r.as_tuple() for r in (a[0], b[0], a[1], b[1], a[2])]
    assert rejected(tx, registry, decoder) == [
        (5, "RegistryReadingOverlaps", {"meterId": ALICE, "start": a[1].start, "end": a[1].end})
    ]
    assert state(registry, ALICE) == MeterState(
        a[2].end, figures(a), evidence_fold(a), 0, sum(r.generated_wh for r in a)
    )
    assert state(registry, BOB) == MeterState(
        b[1].end, figures(b), evidence_fold(b), 0, sum(r.generated_wh for r in b)
    )


def test_evidence_head_continues_across_batches_and_ignores_rejected(registry, submit, epoch):
    first = [at("ALICE-PV", epoch, 0), at("ALICE-PV", epoch, 1)]
    submit(first)
    second = [at("ALICE-PV", epoch, 1, gen=5), at("ALICE-PV", epoch, 2, gen=7)]  # 1 is a replay
    submit(second)
    assert bytes(registry.evidenceHead(ALICE)) == evidence_fold([*first, second[1]])
    assert bytes(registry.evidenceHead(ALICE)) == evidence_fold([second[1]], evidence_fold(first))


def test_reading_that_would_overflow_a_total_is_skipped_not_the_whole_batch(
    registry, submit, decoder, epoch
):
    good = at("ALICE-PV", epoch, 0)
    absurd = replace(at("BOB-PV", epoch, 0), consumed_wh=2**64 - 2)  # e.g. a meter's no-data code
    tx = submit([good, absurd])
    assert recorded(tx, registry) == [good.as_tuple()]
    assert [(i, name) for i, name, _ in rejected(tx, registry, decoder)] == [
        (1, "RegistryTotalsOverflow")
    ]


def test_member_totals_sum_over_the_members_meters(
    registered, registry, submit, operator, alice, bob, epoch
):
    second = meter_id("ALICE-PV-2")
    registered.members.registerMeter(
        second, alice, SOLAR, 10_000, "TEPCO-13", epoch, sender=operator
    )
    on_first = [
        at("ALICE-PV", epoch, i, gen=1000 + i, cons=10, sold=20, bought=30) for i in range(2)
    ]
    on_second = [at("ALICE-PV-2", epoch, i, gen=4000, cons=1, sold=2, bought=3) for i in range(3)]
    on_bob = [at("BOB-PV", epoch, 0, gen=9)]
    submit([*on_first, *on_second, *on_bob])

    expected = tuple(x + y for x, y in zip(figures(on_first), figures(on_second), strict=True))
    assert state(registry, ALICE).totals == figures(on_first)
    assert state(registry, second).totals == figures(on_second)
    t = registry.memberTotals(alice)
    assert (t.generatedWh, t.consumedWh, t.soldWh, t.purchasedWh) == expected
    assert registry.memberTotals(bob).generatedWh == 9


# -------------------------------------------------------------------------------------- claims


def test_mark_claimed_moves_unclaimed_to_claimed_with_period_and_evidence(
    registry, submit, claimer, epoch
):
    first = [at("ALICE-PV", epoch, i, gen=1000) for i in range(3)]
    submit(first)
    claim = registry.markClaimed.call(ALICE, sender=claimer)
    assert (claim.wh, claim.periodStart, claim.periodEnd) == (3000, epoch, first[-1].end)
    assert bytes(claim.evidence) == evidence_fold(first)

    tx = registry.markClaimed(ALICE, sender=claimer)
    assert tx.events == [
        registry.GenerationClaimed(
            meterId=ALICE, claimer=claimer, wh=3000, periodStart=epoch, periodEnd=first[-1].end
        )
    ]
    assert (registry.claimedWh(ALICE), registry.unclaimedWh(ALICE)) == (3000, 0)

    # New generation after a gap: the next claim covers only it, from the previous claim's end.
    later = [at("ALICE-PV", epoch, 10, gen=700)]
    submit(later)
    assert (registry.claimedWh(ALICE), registry.unclaimedWh(ALICE)) == (3000, 700)
    claim = registry.markClaimed.call(ALICE, sender=claimer)
    assert (claim.wh, claim.periodStart, claim.periodEnd) == (700, first[-1].end, later[0].end)
    registry.markClaimed(ALICE, sender=claimer)
    assert (registry.claimedWh(ALICE), registry.unclaimedWh(ALICE)) == (3700, 0)


def test_nothing_to_claim_reverts(registry, submit, claimer, epoch):
    with reverts_with(registry.RegistryNothingToClaim, meterId=ALICE):
        registry.markClaimed(ALICE, sender=claimer)  # no readings yet
    with reverts_with(registry.RegistryNothingToClaim, meterId=NOBODY):
        registry.markClaimed(NOBODY, sender=claimer)

    submit([at("ALICE-PV", epoch, 0, gen=0)])  # consumption only: nothing generated
    with reverts_with(registry.RegistryNothingToClaim, meterId=ALICE):
        registry.markClaimed(ALICE, sender=claimer)

    submit([at("ALICE-PV", epoch, 1, gen=5)])
    registry.markClaimed(ALICE, sender=claimer)
    with reverts_with(registry.RegistryNothingToClaim, meterId=ALICE):
        registry.markClaimed(ALICE, sender=claimer)  # twice


@pytest.mark.parametrize("who", ["alice", "admin", "operator", "submitter"])
def test_only_claimer_role_may_mark_claimed(registry, submit, request, who, epoch):
    caller = request.getfixturevalue(who)  # alice owns the meter; ownership is not enough
    submit([at("ALICE-PV", epoch, 0)])
    with reverts_with(
        registry.AccessControlUnauthorizedAccount,
        account=caller.address,
        neededRole=registry.CLAIMER_ROLE(),
    ):
        registry.markClaimed(ALICE, sender=caller)
    assert registry.unclaimedWh(ALICE) == 1000


def test_paused_registry_refuses_claims(registry, submit, admin, claimer, epoch):
    submit([at("ALICE-PV", epoch, 0)])
    registry.pause(sender=admin)
    with reverts_with(registry.EnforcedPause):
        registry.markClaimed(ALICE, sender=claimer)
    registry.unpause(sender=admin)
    registry.markClaimed(ALICE, sender=claimer)
    assert registry.claimedWh(ALICE) == 1000


# --------------------------------------------------------- randomized batches against a model


@dataclass(frozen=True)
class Spec:
    active: bool
    capacity_w: int
    commissioned_at: int


def model(
    readings: list[Reading], specs: dict[bytes, Spec], now: int, margin_bps: int = 1000
) -> tuple[list[int], list[tuple[int, str]]]:
    """The reading rules of DESIGN/IGenerationRegistry, in order; returns accepted indexes and
    (index, reason) of rejected ones. Overlap is per recorded slot: only accepted readings take
    a slot, and a reading before an earlier one's end is fine if its slot is free."""
    taken: set[tuple[bytes, int]] = set()
    accepted, refused = [], []
    for i, r in enumerate(readings):
        spec = specs.get(r.meter_id)
        if spec is None:
            reason = "RegistryUnknownMeter"
        elif not spec.active:
            reason = "RegistryInactiveMeter"
        elif r.end <= r.start or r.end - r.start != INTERVAL:
            reason = "RegistryBadIntervalLength"
        elif r.start % INTERVAL:
            reason = "RegistryReadingMisaligned"
        elif (r.meter_id, r.start) in taken:
            reason = "RegistryReadingOverlaps"
        elif r.end > now:
            reason = "RegistryReadingInFuture"
        elif r.start < spec.commissioned_at:
            reason = "RegistryReadingBeforeCommissioning"
        elif r.generated_wh * 3600 * 10_000 > spec.capacity_w * INTERVAL * (10_000 + margin_bps):
            reason = "RegistryGenerationExceedsCapacity"
        else:
            accepted.append(i)
            taken.add((r.meter_id, r.start))
            continue
        refused.append((i, reason))
    return accepted, refused


def random_batch(rng: random.Random, epoch: int, now: int, size: int) -> list[Reading]:
    meters = {"ALICE-PV": 2750, "BOB-PV": 27_500, "CAROL-OFF": 2750, "NOBODY-PV": 100}
    next_slot = dict.fromkeys(meters, 0)
    out = []
    for _ in range(size):
        label = rng.choices(list(meters), weights=[5, 5, 1, 1])[0]
        slot = next_slot[label]
        kind = rng.choices(
            ["next", "gap", "replay", "half", "length", "future", "early", "over", "limit"],
            weights=[8, 2, 2, 1, 1, 1, 1, 1, 1],
        )[0]
        gen = rng.randint(0, meters[label])
        start, length = epoch + slot * INTERVAL, INTERVAL
        if kind == "gap":
            start += rng.randint(1, 4) * INTERVAL
        elif kind == "replay":
            start -= rng.randint(1, 3) * INTERVAL
        elif kind == "half":
            start -= INTERVAL // 2
        elif kind == "length":
            length = rng.choice([INTERVAL - 1, INTERVAL + 1, 0])
        elif kind == "future":
            start = (now // INTERVAL + rng.randint(1, 5)) * INTERVAL
        elif kind == "early":
            start = epoch - rng.randint(2, 4) * 86400
        elif kind == "over":
            gen = meters[label] + rng.randint(1, 10)
        elif kind == "limit":
            gen = meters[label]
        r = Reading(meter_id(label), start, start + length, gen, rng.randint(0, 999), 0, 3)
        out.append(r)
        if kind in ("next", "gap", "limit"):
            next_slot[label] = (start - epoch) // INTERVAL + 1
    return out


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_random_batches_match_the_reference_model(
    registered, registry, submit, decoder, operator, carol, chain, epoch, seed
):
    registered.members.registerMember(carol, "Carol", BUSINESS, sender=operator)
    carol_off = meter_id("CAROL-OFF")
    registered.members.registerMeter(carol_off, carol, SOLAR, 5_000, "X", 0, sender=operator)
    registered.members.setMeterActive(carol_off, False, sender=operator)
    commissioned = epoch - 86400
    specs = {
        ALICE: Spec(True, 5_000, commissioned),
        BOB: Spec(True, 50_000, commissioned),
        carol_off: Spec(False, 5_000, 0),
    }
    now = chain.pending_timestamp + 3600
    batch = random_batch(random.Random(seed), epoch, now, size=40)
    chain.pending_timestamp = now
    tx = submit(batch)

    accepted, refused = model(batch, specs, now)
    assert accepted and refused  # the generator produced both kinds
    assert recorded(tx, registry) == [batch[i].as_tuple() for i in accepted]
    assert [(i, name) for i, name, _ in rejected(tx, registry, decoder)] == refused
    for mid in (ALICE, BOB, carol_off, NOBODY):
        mine = [batch[i] for i in accepted if batch[i].meter_id == mid]
        s = state(registry, mid)
        assert s.totals == figures(mine)
        assert s.evidence == (evidence_fold(mine) if mine else ZERO32)
        assert s.last_end == max((r.end for r in mine), default=0)


def test_sign_batch_of_one_key_equals_sign_quorum_entry(registry, chain, oracle_keys, epoch):
    """sign_quorum is just ordered sign_batch signatures (used by the tests above)."""
    readings = [at("ALICE-PV", epoch, 0)]
    single = sign_batch(readings, chain.chain_id, str(registry.address), oracle_keys[0])
    assert single in sign(registry, chain, readings, oracle_keys[:2])
