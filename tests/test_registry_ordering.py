"""Invariant 9 on chain: whatever order correctly signed batches land in, and whoever submits
them, every signed reading is recorded exactly once (or its batch reverts and can be sent again).

Overlap is decided per recorded slot (a bitmap per meter), not against the meter's watermark, so
a batch for t0..t1 that lands after the batch for t1..t2 is still recorded, and its digest is
applied once with all its readings, never burned on readings skipped only for ordering.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from conftest import INTERVAL, reading
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_helpers import ZERO32, evidence_fold, reverts_with
from zcv_support import event_args

from zcx.eip712 import Reading, batch_digest, sign_quorum
from zcx.ids import meter_id

LABELS = ("ALICE-PV", "BOB-PV")
SLOTS = 24  # half a day of 30-minute slots per meter


@pytest.fixture
def mempool_observer(accounts):
    """Any account at all: it holds no role and is no member."""
    return accounts[7]


@pytest.fixture(params=["1-of-1", "2-of-3"])
def ledger(request, registered, project, admin, oracle_keys, oracle_addresses):
    """(registry, signing keys): a 1-of-1 registry over the same members, or the 2-of-3 one."""
    if request.param == "2-of-3":
        return registered.registry, oracle_keys[:2]
    solo = admin.deploy(
        project.GenerationRegistry,
        admin,
        registered.members,
        oracle_addresses[:1],
        1,
        INTERVAL,
        1000,
    )
    return solo, oracle_keys[:1]


def send(registry: Any, keys: list[bytes], readings: list[Reading], sender: Any, chain: Any) -> Any:
    signatures = sign_quorum(readings, chain.chain_id, str(registry.address), keys)
    return registry.submitBatch([r.as_tuple() for r in readings], signatures, sender=sender)


def recorded(tx: Any, registry: Any) -> list[tuple[Any, ...]]:
    return [
        (bytes(e["meterId"]), e["start"], e["end"], e["generatedWh"], e["consumedWh"], e["soldWh"],
         e["purchasedWh"])
        for e in event_args(tx, registry.ReadingRecorded)
    ]  # fmt: skip


def totals(registry: Any, mid: bytes) -> tuple[int, int, int, int]:
    t = registry.meterTotals(mid)
    return (t.generatedWh, t.consumedWh, t.soldWh, t.purchasedWh)


def figures(readings: list[Reading]) -> tuple[int, int, int, int]:
    return (
        sum(r.generated_wh for r in readings),
        sum(r.consumed_wh for r in readings),
        sum(r.sold_wh for r in readings),
        sum(r.purchased_wh for r in readings),
    )


def day(label: str, epoch: int, first: int, count: int, gen: int = 500) -> list[Reading]:
    return [reading(label, epoch + (first + i) * INTERVAL, gen=gen + i) for i in range(count)]


# ----------------------------------------------------------------- two batches, reverse order


def test_two_batches_landing_in_reverse_order_record_every_reading_once(
    ledger, submitter, mempool_observer, chain, epoch
):
    registry, keys = ledger
    # Batch 1 covers t0..t1 and batch 2 t1..t2, each over two meters, as the oracle builds them.
    batch1 = day("ALICE-PV", epoch, 0, 4) + day("BOB-PV", epoch, 0, 4, gen=8000)
    batch2 = day("ALICE-PV", epoch, 4, 4) + day("BOB-PV", epoch, 4, 4, gen=9000)

    # A mempool observer front-runs: it submits batch 2 (signed, seen in the mempool) first.
    tx2 = send(registry, keys, batch2, mempool_observer, chain)
    tx1 = send(registry, keys, batch1, submitter, chain)

    assert recorded(tx2, registry) == [r.as_tuple() for r in batch2]
    assert recorded(tx1, registry) == [r.as_tuple() for r in batch1]  # nothing skipped
    for tx, batch in ((tx1, batch1), (tx2, batch2)):
        (applied,) = event_args(tx, registry.BatchApplied)
        assert (applied["accepted"], applied["rejected"]) == (len(batch), 0)
        assert event_args(tx, registry.ReadingRejected) == []
        assert registry.isBatchApplied(batch_digest(batch, chain.chain_id, str(registry.address)))

    for label in LABELS:
        mid = meter_id(label)
        mine1 = [r for r in batch1 if r.meter_id == mid]
        mine2 = [r for r in batch2 if r.meter_id == mid]
        assert totals(registry, mid) == figures(mine1 + mine2)  # all signed Wh, exactly once
        assert registry.lastEnd(mid) == epoch + 8 * INTERVAL  # the latest end, not batch 1's
        assert registry.isRecorded(mid, epoch, epoch + 8 * INTERVAL)
        # The evidence head folds readings in the order they were recorded.
        assert bytes(registry.evidenceHead(mid)) == evidence_fold(mine2 + mine1)
        assert registry.unclaimedWh(mid) == sum(r.generated_wh for r in mine1 + mine2)

    # Replaying either batch, by anyone, is still refused whole.
    for batch in (batch1, batch2):
        for who in (submitter, mempool_observer):
            with reverts_with(registry.RegistryBatchAlreadyApplied):
                send(registry, keys, batch, who, chain)


def test_true_overlap_is_still_rejected_after_out_of_order_arrival(
    ledger, submitter, mempool_observer, chain, epoch, decoder
):
    registry, keys = ledger
    early, late = day("ALICE-PV", epoch, 0, 2), day("ALICE-PV", epoch, 2, 2)
    send(registry, keys, late, mempool_observer, chain)
    send(registry, keys, early, submitter, chain)
    mid = meter_id("ALICE-PV")
    before = (totals(registry, mid), bytes(registry.evidenceHead(mid)))

    # Other figures for slots already recorded, one from each batch: a new digest, signed by the
    # quorum, yet each reading is an overlap and changes nothing.
    forged = [replace(early[1], generated_wh=1), replace(late[0], generated_wh=2)]
    tx = send(registry, keys, forged, mempool_observer, chain)
    reasons = [decoder.decode(e["reason"]) for e in event_args(tx, registry.ReadingRejected)]
    assert [(e.name, e.args["start"], e.args["end"]) for e in reasons] == [
        ("RegistryReadingOverlaps", r.start, r.end) for r in forged
    ]
    assert recorded(tx, registry) == []
    assert (totals(registry, mid), bytes(registry.evidenceHead(mid))) == before


def test_gap_filler_lands_between_two_claims_and_is_claimed_once(
    registered, ledger, submitter, mempool_observer, chain, epoch, admin, carol
):
    registry, keys = ledger
    registry.grantRole(registry.CLAIMER_ROLE(), carol, sender=admin)
    mid = meter_id("ALICE-PV")
    first, hole, last = (day("ALICE-PV", epoch, i, 2) for i in (0, 2, 4))
    send(registry, keys, first + last, mempool_observer, chain)
    tx = registry.markClaimed(mid, sender=carol)
    (claim1,) = event_args(tx, registry.GenerationClaimed)
    assert (claim1["periodStart"], claim1["periodEnd"]) == (epoch, epoch + 6 * INTERVAL)

    send(registry, keys, hole, submitter, chain)  # lands after the claim, before lastEnd
    assert registry.unclaimedWh(mid) == sum(r.generated_wh for r in hole)
    tx = registry.markClaimed(mid, sender=carol)
    (claim2,) = event_args(tx, registry.GenerationClaimed)
    # The second claim's period starts at its earliest reading, so it covers the gap-filler.
    assert (claim2["wh"], claim2["periodStart"], claim2["periodEnd"]) == (
        sum(r.generated_wh for r in hole),
        hole[0].start,
        epoch + 6 * INTERVAL,
    )
    assert registry.claimedWh(mid) == sum(r.generated_wh for r in first + hole + last)
    with reverts_with(registry.RegistryNothingToClaim):
        registry.markClaimed(mid, sender=carol)


def test_out_of_order_readings_inside_one_batch_are_all_recorded(ledger, submitter, chain, epoch):
    registry, keys = ledger
    batch = list(reversed(day("ALICE-PV", epoch, 0, 6)))  # newest first
    tx = send(registry, keys, batch, submitter, chain)
    assert recorded(tx, registry) == [r.as_tuple() for r in batch]
    mid = meter_id("ALICE-PV")
    assert registry.lastEnd(mid) == epoch + 6 * INTERVAL
    assert bytes(registry.evidenceHead(mid)) == evidence_fold(batch)


def test_readings_spanning_two_bitmap_words_in_one_run(ledger, submitter, chain, epoch):
    """A run of one meter that crosses a 256-slot word boundary writes both words."""
    registry, keys = ledger
    boundary = (epoch // (256 * INTERVAL) + 1) * 256 * INTERVAL  # first slot of a word
    base = boundary - 3 * INTERVAL
    batch = [reading("ALICE-PV", base + i * INTERVAL, gen=100 + i) for i in range(6)]
    # Out of order across the boundary: the run's word switches back and forth.
    order = [batch[4], batch[0], batch[5], batch[1], batch[3], batch[2]]
    tx = send(registry, keys, order, submitter, chain)
    assert recorded(tx, registry) == [r.as_tuple() for r in order]
    mid = meter_id("ALICE-PV")
    assert registry.isRecorded(mid, base, base + 6 * INTERVAL)
    assert not registry.isRecorded(mid, base - INTERVAL, base)
    # Both words were written: a slot on each side of the boundary is taken.
    retry = [replace(batch[2], generated_wh=1), replace(batch[3], generated_wh=1)]
    tx = send(registry, keys, retry, submitter, chain)
    assert recorded(tx, registry) == []
    assert len(event_args(tx, registry.ReadingRejected)) == 2


# ------------------------------------------------------------- any permutation, exact union


@st.composite
def batch_sets(draw: Any) -> tuple[list[list[tuple[int, int]]], list[int], list[int]]:
    """Non-overlapping batches of (meter index, slot), their landing order and submitters."""
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, len(LABELS) - 1), st.integers(0, SLOTS - 1)),
            min_size=1,
            max_size=16,
            unique=True,
        )
    )
    count = draw(st.integers(1, min(4, len(cells))))
    owner = draw(st.lists(st.integers(0, count - 1), min_size=len(cells), max_size=len(cells)))
    batches = [[c for c, b in zip(cells, owner, strict=True) if b == i] for i in range(count)]
    batches = [b for b in batches if b]
    order = draw(st.permutations(range(len(batches))))
    senders = draw(st.lists(st.integers(2, 9), min_size=len(batches), max_size=len(batches)))
    return batches, list(order), senders


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=batch_sets())
def test_any_permutation_of_disjoint_signed_batches_records_exactly_the_union(
    registered, accounts, oracle_keys, chain, epoch, plan
):
    registry = registered.registry
    batches, order, senders = plan
    signed = [
        [reading(LABELS[m], epoch + s * INTERVAL, gen=10 * s + m + 1) for m, s in batch]
        for batch in batches
    ]
    snapshot = chain.snapshot()
    try:
        landed: list[Reading] = []
        for position, index in enumerate(order):
            tx = send(registry, oracle_keys[:2], signed[index], accounts[senders[position]], chain)
            assert recorded(tx, registry) == [r.as_tuple() for r in signed[index]]
            landed += signed[index]
        union = [r for batch in signed for r in batch]
        for label in LABELS:
            mid = meter_id(label)
            mine = [r for r in landed if r.meter_id == mid]
            assert totals(registry, mid) == figures(mine)
            assert registry.lastEnd(mid) == max((r.end for r in mine), default=0)
            assert bytes(registry.evidenceHead(mid)) == (evidence_fold(mine) if mine else ZERO32)
            for slot in range(SLOTS):
                start = epoch + slot * INTERVAL
                expected = any(r.meter_id == mid and r.start == start for r in union)
                assert registry.isRecorded(mid, start, start + INTERVAL) == expected
        for batch in signed:
            assert registry.isBatchApplied(
                batch_digest(batch, chain.chain_id, str(registry.address))
            )
    finally:
        chain.restore(snapshot)


# ----------------------------------------------------------------------------- the audit


def test_audit_accepts_out_of_order_readings_gap_filler_claims_and_cancelled_rates(
    registered, submit, mempool_observer, alice, admin, chain, epoch
):
    """The auditor rebuilds evidence heads in log order, compares intervals in time order, and
    replays the rate schedule with its cancellations: a clean out-of-order history is clean."""
    from audit_support import deployment_of

    from zcx.audit import audit
    from zcx.audit.events import abis_from_ape

    zcx, mid = registered, meter_id("ALICE-PV")
    early, late = day("ALICE-PV", epoch, 0, 4), day("ALICE-PV", epoch, 4, 4)
    submit(late, sender=mempool_observer)  # the later batch lands first
    zcx.exchange.claim(zcx.registry, mid, sender=alice)  # certificate over `late`
    submit(early)  # the gap-filler batch lands after that claim
    now = chain.pending_timestamp
    zcx.exchange.scheduleRate(5000, now + 3600, sender=admin)
    zcx.exchange.scheduleRate(1, now + 10 * 365 * 86400, sender=admin)  # a mistake...
    zcx.exchange.cancelScheduledRate(2, now + 10 * 365 * 86400, sender=admin)  # ...cancelled
    chain.mine(timestamp=now + 3700)
    tx = zcx.exchange.claim(zcx.registry, mid, sender=alice)  # certificate over `early`
    (claimed,) = event_args(tx, zcx.exchange.Claimed)
    assert claimed["unitsPerKwh"] == 1000  # the generation ended before the higher rate

    result = audit(chain.provider.web3, deployment_of(zcx, chain), abis_from_ape())
    assert result.violations == [], "\n".join(map(str, result.violations))
    assert len(result.ledger.readings) == 8
    assert list(result.ledger.certificates["period_start"]) == [late[0].start, early[0].start]


def test_audit_compares_intervals_in_time_order_not_log_order(
    registered, submit, mempool_observer, chain, epoch
):
    """A lying node shifts a reading of the batch logged second so that it half-overlaps a
    reading logged first: consecutive in log order they look fine, in time order they overlap."""
    from audit_support import RpcProxy, deployment_of
    from eth_utils import keccak
    from web3 import HTTPProvider, Web3

    from zcx.audit import audit
    from zcx.audit.events import abis_from_ape

    early, late = day("ALICE-PV", epoch, 0, 4), day("ALICE-PV", epoch, 4, 4)
    submit(late, sender=mempool_observer)
    submit(early)
    topic = (
        "0x"
        + keccak(text="ReadingRecorded(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)").hex()
    )
    target, moved = early[-1].start, late[0].start + INTERVAL // 2

    def rewrite(method: str, params: Any, result: Any) -> Any:
        if method != "eth_getLogs":
            return result
        for entry in result:
            words = entry["data"][2:]
            if entry["topics"][0] == topic and int(words[:64], 16) == target:
                entry["data"] = "0x" + f"{moved:064x}{moved + INTERVAL:064x}" + words[128:]
        return result

    abis = abis_from_ape()
    clean = audit(chain.provider.web3, deployment_of(registered, chain), abis)
    assert [f for f in clean.violations if f.check == "no_double_count"] == []
    with RpcProxy(chain.provider.uri, rewrite=rewrite) as proxy:
        lied = audit(Web3(HTTPProvider(proxy.url)), deployment_of(registered, chain), abis)
    overlaps = [f for f in lied.violations if f.check == "no_double_count"]
    # The shifted reading overlaps late[0], and late[1] overlaps the shifted reading.
    assert [f.message.split(")")[0] for f in overlaps] == [
        f"interval [{moved}, {moved + INTERVAL}",
        f"interval [{late[1].start}, {late[1].end}",
    ]
