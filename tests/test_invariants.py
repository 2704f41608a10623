"""Stateful property tests of DESIGN.md's contract invariants (1, 2, 3, 4, 5 and 7; invariant 6
belongs to the oracle service). Each test drives the real contracts on Anvil through random
sequences of actions, good and bad, predicts every outcome with a Python model, and checks its
invariant after every step. Every example starts from the same chain snapshot and restores it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import HOUSEHOLD, INTERVAL, SOLAR
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from registry_helpers import claim_hourly
from zcv_support import (
    CONSUMPTION,
    ZERO_ADDRESS,
    LotBook,
    ModelRevert,
    call_reverts,
    event_args,
    lots,
)

from zcx.claims import claim_args
from zcx.eip712 import Reading, batch_digest, order_signatures, recover_signer, sign_batch
from zcx.ids import meter_id, meter_label

# ZCX_INVARIANT_EXAMPLES / ZCX_INVARIANT_STEPS deepen a run (e.g. nightly); the defaults keep the
# six machines at about two minutes together.
SETTINGS = settings(
    max_examples=int(os.environ.get("ZCX_INVARIANT_EXAMPLES", "15")),
    stateful_step_count=int(os.environ.get("ZCX_INVARIANT_STEPS", "15")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # No "explain" phase: its line tracing makes every chain call crawl when a case fails.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
MARGIN_BPS = 1000
HOLDERS = ("alice", "bob", "carol")
# label -> (owner, capacity W)
METERS = {"ALICE-PV": ("alice", 5_000), "BOB-PV": ("bob", 50_000), "CAROL-PV": ("carol", 3_000)}
LABELS = tuple(METERS)


def max_wh(capacity_w: int) -> int:
    """The most one 30-minute reading may generate (capacity x time x (1 + margin))."""
    return capacity_w * INTERVAL * (10_000 + MARGIN_BPS) // (3600 * 10_000)


@dataclass
class World:
    zcx: Any
    chain: Any
    accounts: dict[str, Any]
    admin: Any
    operator: Any
    submitter: Any
    oracle_keys: list[bytes]
    epoch: int
    decoder: Any


@pytest.fixture
def world(
    registered, chain, alice, bob, carol, admin, operator, submitter, oracle_keys, epoch, decoder
):
    """Alice's, Bob's and Carol's meters on the 2-of-3 registry."""
    registered.members.registerMember(carol, "Carol Bakery", HOUSEHOLD, sender=operator)
    registered.members.registerMeter(
        meter_id("CAROL-PV"), carol, SOLAR, 3_000, "TEPCO-13", epoch - 86400, sender=operator
    )
    return World(
        registered,
        chain,
        {"alice": alice, "bob": bob, "carol": carol},
        admin,
        operator,
        submitter,
        list(oracle_keys),
        epoch,
        decoder,
    )


# --------------------------------------------------------------------------- readings model


@dataclass
class MeterModel:
    label: str
    owner: str
    capacity_w: int
    commissioned: int
    last_end: int = 0
    generated: int = 0
    claimed: int = 0
    recorded: list[tuple[int, int, int]] = field(default_factory=list)
    slots: set[int] = field(default_factory=set)  # starts of recorded intervals
    unclaimed: list[tuple[int, int]] = field(default_factory=list)  # (start, PQ1), record order
    issued_hours: set[int] = field(default_factory=set)  # hour starts with a certificate

    def claimable_hours(self) -> tuple[dict[int, int], int]:
        """Eligible Wh per clock hour not yet issued among the unclaimed readings (policy
        Generation: all of PQ1), and the Wh of hours already issued (forfeited)."""
        hours: dict[int, int] = {}
        for start, wh in self.unclaimed:
            hours[start - start % 3600] = hours.get(start - start % 3600, 0) + wh
        forfeited = sum(wh for hour, wh in hours.items() if hour in self.issued_hours)
        fresh = {h: wh for h, wh in hours.items() if h not in self.issued_hours and wh > 0}
        return fresh, forfeited

    @property
    def mid(self) -> bytes:
        return meter_id(self.label)

    def reason(self, r: Reading, now: int) -> str | None:
        """The reading-level error GenerationRegistry._check returns, in its order."""
        if r.end <= r.start or r.end - r.start != INTERVAL:
            return "RegistryBadIntervalLength"
        if r.start % INTERVAL:
            return "RegistryReadingMisaligned"
        if r.start in self.slots:  # overlap is per recorded slot, not against last_end
            return "RegistryReadingOverlaps"
        if r.end > now:
            return "RegistryReadingInFuture"
        if r.start < self.commissioned:
            return "RegistryReadingBeforeCommissioning"
        if r.generated_wh > max_wh(self.capacity_w):
            return "RegistryGenerationExceedsCapacity"
        return None

    def record(self, r: Reading) -> None:
        self.last_end = max(self.last_end, r.end)
        self.slots.add(r.start)
        self.generated += r.generated_wh
        self.recorded.append((r.start, r.end, r.generated_wh))
        self.unclaimed.append((r.start, r.generated_wh))


class ChainMachine(RuleBasedStateMachine):
    """Restores the chain after each example; models the meters' ledgers."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.w = world
        self.zcx = world.zcx
        self.snapshot = world.chain.snapshot()
        self.meters = {
            label: MeterModel(label, owner, cap, world.epoch - 86400)
            for label, (owner, cap) in METERS.items()
        }
        self.recorded_events: list[tuple[bytes, int, int]] = []

    def teardown(self) -> None:
        self.w.chain.restore(self.snapshot)

    def addr(self, name: str) -> str:
        return str(self.w.accounts[name].address)

    def next_start(self, meter: MeterModel, gap: int = 0) -> int:
        return (meter.last_end or self.w.epoch) + gap * INTERVAL

    def good_reading(self, meter: MeterModel, fraction: float, gap: int = 0) -> Reading:
        start = self.next_start(meter, gap)
        gen = int(max_wh(meter.capacity_w) * fraction)
        return Reading(meter.mid, start, start + INTERVAL, gen, 100, gen // 2, 50)

    def submit(self, readings: list[Reading], signatures: list[bytes] | None = None) -> Any:
        """Submits a batch signed by oracles 0 and 1 and checks each reading against the model."""
        if signatures is None:
            signatures = self.sign(readings, self.w.oracle_keys[:2])
        tx = self.zcx.registry.submitBatch(
            [r.as_tuple() for r in readings], signatures, sender=self.w.submitter
        )
        self.check_batch(tx, readings)
        return tx

    def refuse_batch(self, readings: list[Reading], signatures: list[bytes], error: str) -> None:
        """The batch is refused as a whole with `error`."""
        call_reverts(
            self.zcx.registry.submitBatch,
            [r.as_tuple() for r in readings],
            signatures,
            sender=self.w.submitter,
            name=error,
        )

    def sign(self, readings: list[Reading], keys: list[bytes]) -> list[bytes]:
        registry = str(self.zcx.registry.address)
        chain_id = self.w.chain.chain_id
        return order_signatures(
            (Account.from_key(k).address, sign_batch(readings, chain_id, registry, k)) for k in keys
        )

    def check_batch(self, tx: Any, readings: list[Reading]) -> None:
        now = self.w.chain.blocks[tx.block_number].timestamp
        expected_recorded, expected_rejected = [], []
        by_mid = {m.mid: m for m in self.meters.values()}
        for index, r in enumerate(readings):
            meter = by_mid[r.meter_id]
            reason = meter.reason(r, now)
            if reason is None:
                meter.record(r)
                expected_recorded.append((r.meter_id, r.start, r.end, r.generated_wh))
            else:
                expected_rejected.append((index, reason))
        recorded = [
            (bytes(e["meterId"]), e["start"], e["end"], e["generatedWh"])
            for e in event_args(tx, self.zcx.registry.ReadingRecorded)
        ]
        rejected = [
            (e["index"], self.w.decoder.decode(e["reason"]).name)
            for e in event_args(tx, self.zcx.registry.ReadingRejected)
        ]
        assert recorded == expected_recorded
        assert rejected == expected_rejected
        self.recorded_events.extend((m, s, e) for m, s, e, _ in recorded)

    def claim(self, meter: MeterModel, expected_units: int | None, error: str | None) -> Any:
        owner = self.w.accounts[meter.owner]
        readings = claim_args(self.w.chain.provider.web3, str(self.zcx.registry.address), meter.mid)
        if error is not None:
            call_reverts(
                self.zcx.exchange.claim,
                self.zcx.registry,
                meter.mid,
                readings[2],
                sender=owner,
                name=error,
            )
            return None
        assert [(r[1], r[3]) for r in readings[2]] == meter.unclaimed  # recording order
        fresh, forfeited = meter.claimable_hours()
        tx = self.zcx.exchange.claim(self.zcx.registry, meter.mid, readings[2], sender=owner)
        (claimed,) = event_args(tx, self.zcx.exchange.Claimed)
        assert claimed["wh"] == meter.generated - meter.claimed
        assert claimed["forfeitedWh"] == forfeited
        if expected_units is not None:
            assert claimed["units"] == expected_units
        meter.claimed = meter.generated
        meter.unclaimed = []
        meter.issued_hours |= set(fresh)
        return claimed

    def check_ledgers(self) -> None:
        for meter in self.meters.values():
            assert self.zcx.registry.lastEnd(meter.mid) == meter.last_end
            totals = self.zcx.registry.meterTotals(meter.mid)
            assert totals.generatedWh == meter.generated
            assert self.zcx.registry.claimedWh(meter.mid) == meter.claimed


# --------------------------------------------------------------------------- invariant 1

KINDS = (
    "next",
    "next",
    "gap",
    "fill",
    "replay",
    "overlap",
    "misaligned",
    "over_capacity",
    "bad_length",
    "future",
)
reading_specs = st.lists(
    st.tuples(st.sampled_from(LABELS), st.sampled_from(KINDS), st.floats(0, 1)),
    min_size=1,
    max_size=4,
)


class NoDoubleCounting(ChainMachine):
    """Random batches of good and bad readings, replays, overlaps, and claims."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.batches: list[tuple[list[Reading], list[bytes]]] = []
        self.digests: set[bytes] = set()
        self.sent: list[Reading] = []

    def make(self, label: str, kind: str, fraction: float, planned: dict[str, int]) -> Reading:
        meter = self.meters[label]
        last = planned.get(label, meter.last_end)
        start = last or self.w.epoch
        cap = max_wh(meter.capacity_w)
        gen = int(cap * fraction)
        mid = meter.mid
        if kind == "replay" and self.sent:
            same_meter = [r for r in self.sent if r.meter_id == mid]
            if same_meter:
                return same_meter[int(fraction * (len(same_meter) - 1))]
        if kind == "gap":
            start += INTERVAL * (1 + int(fraction * 3))
        elif kind == "fill":  # a late gap-filler: the first free slot before the meter's end
            free = (t for t in range(self.w.epoch, last, INTERVAL) if t not in meter.slots)
            start = next(free, start)
        elif kind == "overlap":  # other figures for a recorded slot, or before commissioning
            start = meter.recorded[-1][0] if meter.recorded else self.w.epoch - 3 * 86400
        elif kind == "misaligned":
            start = start - INTERVAL // 2 if last else start + 1
        elif kind == "over_capacity":
            gen = cap + 1 + int(fraction * 1000)
        elif kind == "bad_length":
            return Reading(mid, start, start + INTERVAL // 2, gen, 0, 0, 0)
        elif kind == "future":
            start = self.w.chain.pending_timestamp // INTERVAL * INTERVAL + 86400
        r = Reading(mid, start, start + INTERVAL, gen, 10, 0, 0)
        if kind in ("next", "gap"):
            planned[label] = r.end
        return r

    @rule(specs=reading_specs)
    def submit_batch(self, specs: list[tuple[str, str, float]]) -> None:
        planned: dict[str, int] = {}
        readings = [self.make(label, kind, f, planned) for label, kind, f in specs]
        signatures = self.sign(readings, self.w.oracle_keys[1:])
        digest = batch_digest(readings, self.w.chain.chain_id, str(self.zcx.registry.address))
        if digest in self.digests:  # the very same batch again
            self.refuse_batch(readings, signatures, "RegistryBatchAlreadyApplied")
            return
        self.submit(readings, signatures)
        self.digests.add(digest)
        self.batches.append((readings, signatures))
        self.sent.extend(readings)

    @precondition(lambda self: self.batches)
    @rule(pick=st.integers(0, 1000))
    def replay_applied_batch(self, pick: int) -> None:
        readings, signatures = self.batches[pick % len(self.batches)]
        self.refuse_batch(readings, signatures, "RegistryBatchAlreadyApplied")

    @rule(label=st.sampled_from(LABELS))
    def claim_generation(self, label: str) -> None:
        meter = self.meters[label]
        unclaimed = meter.generated - meter.claimed
        fresh, _ = meter.claimable_hours()  # hours already issued forfeit (rate 1000 here)
        self.claim(meter, sum(fresh.values()), None if unclaimed else "RegistryNothingToClaim")

    @invariant()
    def no_interval_counted_twice(self) -> None:
        # Readings may be recorded out of time order (gap-fillers); none may share a slot.
        seen: set[tuple[bytes, int]] = set()
        for mid, start, end in self.recorded_events:
            assert (mid, start) not in seen, "a recorded reading overlaps an earlier one"
            assert end - start == INTERVAL and start % INTERVAL == 0
            seen.add((mid, start))
        self.check_ledgers()
        for meter in self.meters.values():
            if meter.recorded:  # the newest recorded interval cannot be recorded again
                start, end, gen = meter.recorded[-1]
                call_reverts(
                    self.zcx.registry.validateReading,
                    (meter.mid, start, end, gen, 10, 0, 0),
                    sender=self.w.submitter,
                    name="RegistryReadingOverlaps",
                    start=start,
                    end=end,
                )


def test_invariant_1_no_interval_counted_twice(world):
    run_state_machine_as_test(lambda: NoDoubleCounting(world), settings=SETTINGS)


# --------------------------------------------------------------------------- invariant 5

STRANGER_KEYS = [keccak(text="zcx-test-stranger-0"), keccak(text="zcx-test-stranger-1")]
DOMAINS = ("this", "this", "this", "other_chain", "other_contract")
ORDERS = ("ascending", "ascending", "ascending", "descending", "as_drawn")


class OnlyQuorumAddsReadings(ChainMachine):
    """Batches signed by random subsets of registered, unregistered and stranger keys, in random
    order and over other EIP-712 domains, while the admin rotates signers and the quorum."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        spare = keccak(text="zcx-test-oracle-spare")
        # 0..2 registered at start, 3 a spare the admin may add, 4..5 strangers, 6 a bad length
        self.pool = [*world.oracle_keys, spare, *STRANGER_KEYS]
        self.signers = {Account.from_key(k).address for k in world.oracle_keys}
        self.quorum = 2
        self.applied: list[tuple[list[str], set[str], int]] = []
        self.applied_batches: list[tuple[list[Reading], list[bytes]]] = []
        self.refused_digests: list[bytes] = []

    def predict(self, readings: list[Reading], signatures: list[bytes]) -> str | None:
        """GenerationRegistry._verifyQuorum, step by step."""
        if len(signatures) < self.quorum:
            return "RegistryQuorumNotMet"
        previous = 0
        chain_id, registry = self.w.chain.chain_id, str(self.zcx.registry.address)
        for signature in signatures:
            if len(signature) != 65:
                return "ECDSAInvalidSignatureLength"
            signer = recover_signer(readings, chain_id, registry, signature)
            if signer not in self.signers:
                return "RegistryUnknownSigner"
            if int(signer, 16) == previous:
                return "RegistryDuplicateSigner"
            if int(signer, 16) < previous:
                return "RegistrySignersNotSorted"
            previous = int(signer, 16)
        return None

    @rule(
        label=st.sampled_from(LABELS),
        fraction=st.floats(0, 1),
        picks=st.lists(st.integers(0, 6), max_size=4),
        domain=st.sampled_from(DOMAINS),
        order=st.sampled_from(ORDERS),
    )
    def submit_signed(
        self, label: str, fraction: float, picks: list[int], domain: str, order: str
    ) -> None:
        readings = [self.good_reading(self.meters[label], fraction)]
        chain_id, registry = self.w.chain.chain_id, str(self.zcx.registry.address)
        if domain == "other_chain":
            chain_id += 1
        elif domain == "other_contract":
            registry = str(self.zcx.exchange.address)
        signed = []
        for i in picks:
            key = self.pool[min(i, 5)]
            signature = sign_batch(readings, chain_id, registry, key)
            signed.append((Account.from_key(key).address, signature[:64] if i == 6 else signature))
        if order != "as_drawn":
            signed.sort(key=lambda s: int(s[0], 16), reverse=order == "descending")
        signatures = [s for _, s in signed]
        expected = self.predict(readings, signatures)
        if expected is not None:
            self.refuse_batch(readings, signatures, expected)
            self.refused_digests.append(
                batch_digest(readings, self.w.chain.chain_id, str(self.zcx.registry.address))
            )
            return
        tx = self.submit(readings, signatures)
        (applied,) = event_args(tx, self.zcx.registry.BatchApplied)
        self.applied.append(([str(s) for s in applied["signers"]], set(self.signers), self.quorum))
        self.applied_batches.append((readings, signatures))

    @precondition(lambda self: self.applied_batches)
    @rule(pick=st.integers(0, 1000), keys=st.sampled_from([(0, 1), (1, 2), (0, 1, 2)]))
    def replay_with_other_signatures(self, pick: int, keys: tuple[int, ...]) -> None:
        readings, _ = self.applied_batches[pick % len(self.applied_batches)]
        signatures = self.sign(readings, [self.pool[k] for k in keys])
        self.refuse_batch(readings, signatures, "RegistryBatchAlreadyApplied")

    @rule(i=st.integers(0, 3))
    def toggle_signer(self, i: int) -> None:
        address = Account.from_key(self.pool[i]).address
        registry, admin = self.zcx.registry, self.w.admin
        if address in self.signers:
            if self.quorum > len(self.signers) - 1:
                call_reverts(
                    registry.removeSigner, address, sender=admin, name="RegistryInvalidQuorum"
                )
                return
            registry.removeSigner(address, sender=admin)
            self.signers.discard(address)
        else:
            registry.addSigner(address, sender=admin)
            self.signers.add(address)

    @rule(quorum=st.integers(0, 4))
    def set_quorum(self, quorum: int) -> None:
        if quorum == 0 or quorum > len(self.signers):
            call_reverts(
                self.zcx.registry.setQuorum,
                quorum,
                sender=self.w.admin,
                name="RegistryInvalidQuorum",
            )
            return
        self.zcx.registry.setQuorum(quorum, sender=self.w.admin)
        self.quorum = quorum

    @rule(who=st.sampled_from(["alice", "operator", "submitter"]))
    def outsider_adds_a_signer(self, who: str) -> None:
        account = {"operator": self.w.operator, "submitter": self.w.submitter}.get(who)
        account = account or self.w.accounts[who]
        call_reverts(
            self.zcx.registry.addSigner,
            account,
            sender=account,
            name="AccessControlUnauthorizedAccount",
            account=account,
        )

    @invariant()
    def only_quorum_batches_count(self) -> None:
        self.check_ledgers()
        assert set(self.zcx.registry.signers()) == self.signers
        assert self.zcx.registry.quorum() == self.quorum
        for signers, registered, quorum in self.applied:
            assert len(set(signers)) == len(signers) >= quorum
            assert set(signers) <= registered
        if self.refused_digests:
            assert not self.zcx.registry.isBatchApplied(self.refused_digests[-1])


def test_invariant_5_only_quorum_can_add_readings(world):
    run_state_machine_as_test(lambda: OnlyQuorumAddsReadings(world), settings=SETTINGS)


# --------------------------------------------------------------------------- invariant 2

RATES = (0, 1, 250, 999, 1000, 1001, 1500, 3000)


class IssuedWithinRate(ChainMachine):
    """Generation, claims, rate changes over time and meter flags."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.rates: list[tuple[int, int]] = [(0, 1000)]
        self.flagged: set[str] = set()
        self.claims: dict[str, list[tuple[int, int, int]]] = {label: [] for label in LABELS}
        self.claimed_wh: dict[str, int] = dict.fromkeys(LABELS, 0)

    def rate_at(self, t: int) -> int:
        return next(rate for effective, rate in reversed(self.rates) if effective <= t)

    def next_block_time(self, dt: int = 1) -> int:
        t = self.w.chain.blocks.head.timestamp + dt
        self.w.chain.pending_timestamp = t
        return t

    @rule(
        label=st.sampled_from(LABELS), fractions=st.lists(st.floats(0, 1), min_size=1, max_size=3)
    )
    def generate(self, label: str, fractions: list[float]) -> None:
        meter = self.meters[label]
        start = self.next_start(meter)
        cap = max_wh(meter.capacity_w)
        self.submit(
            [
                Reading(
                    meter.mid,
                    start + i * INTERVAL,
                    start + (i + 1) * INTERVAL,
                    int(cap * f),
                    0,
                    0,
                    0,
                )
                for i, f in enumerate(fractions)
            ]
        )

    @rule(label=st.sampled_from(LABELS))
    def claim_generation(self, label: str) -> None:
        meter = self.meters[label]
        self.next_block_time()
        wh = meter.generated - meter.claimed
        fresh, _ = meter.claimable_hours()
        # Each hour at the rate in force at its own end.
        priced = {hour: (hwh, self.rate_at(hour + 3600)) for hour, hwh in fresh.items()}
        units = sum(hwh * rate // 1000 for hwh, rate in priced.values())
        if label in self.flagged:
            error = "ExchangeMeterFlagged"
        elif wh == 0:
            error = "RegistryNothingToClaim"
        else:
            error = None
        claimed = self.claim(meter, units, error)
        if claimed is not None:
            self.claimed_wh[label] += wh
            # Certificates in first-seen (recording) order, for hours worth at least one unit.
            issued = [h for h, (hwh, rate) in priced.items() if hwh * rate // 1000 > 0]
            assert claimed["certificates"] == len(issued)
            for offset, hour in enumerate(issued):
                certificate = self.zcx.zcv.certificate(claimed["firstCertificateId"] + offset)
                hwh, rate = priced[hour]
                assert (certificate.periodStart, certificate.units, certificate.wh) == (
                    hour,
                    hwh * rate // 1000,
                    hwh,
                )
            self.claims[label].extend((hour, hwh, rate) for hour, (hwh, rate) in priced.items())

    @rule(rate=st.sampled_from(RATES), delta=st.integers(-600, 7200), from_last=st.booleans())
    def schedule_rate(self, rate: int, delta: int, from_last: bool) -> None:
        t = self.next_block_time()
        last = self.rates[-1][0]
        if -5 < delta < 0:  # keep clear of the pending-vs-latest block time of an eth_call
            delta = -5
        effective = max(0, (last if from_last else t) + delta)
        if effective < t:
            error = "ExchangeRateInPast"
        elif effective < last:
            error = "ExchangeRateOutOfOrder"
        else:
            error = None
        if error:
            call_reverts(
                self.zcx.exchange.scheduleRate, rate, effective, sender=self.w.admin, name=error
            )
            return
        self.zcx.exchange.scheduleRate(rate, effective, sender=self.w.admin)
        self.rates.append((effective, rate))

    @rule(delta=st.integers(1, 7200))
    def advance_time(self, delta: int) -> None:
        self.w.chain.mine(timestamp=self.w.chain.blocks.head.timestamp + delta)

    @rule(label=st.sampled_from(LABELS))
    def toggle_flag(self, label: str) -> None:
        flagged = label not in self.flagged
        self.zcx.members.setMeterFlagged(meter_id(label), flagged, "audit", sender=self.w.operator)
        (self.flagged.add if flagged else self.flagged.discard)(label)

    @invariant()
    def issued_within_verified_generation_times_rate(self) -> None:
        registry = self.zcx.registry
        for label, meter in self.meters.items():
            issued = self.zcx.exchange.meterClaims(self.zcx.members, meter.mid).issuedUnits
            claims = self.claims[label]
            # Each hour's Wh at the rate in force at the hour's end (checked in the rule).
            assert issued * 1000 <= sum(wh * rate for _, wh, rate in claims)
            assert issued == sum(wh * rate // 1000 for _, wh, rate in claims)
            assert len({hour for hour, _, _ in claims}) == len(claims)  # each hour once
            claimed = registry.claimedWh(meter.mid)
            verified = registry.meterTotals(meter.mid).generatedWh
            assert claimed <= verified == meter.generated
            assert claimed == self.claimed_wh[label] == meter.claimed
            assert sum(wh for _, wh, _ in claims) <= claimed  # forfeited hours issue nothing


def test_invariant_2_issued_le_verified_times_rate(world):
    run_state_machine_as_test(lambda: IssuedWithinRate(world), settings=SETTINGS)


# --------------------------------------------------------------------------- invariants 3, 4, 7


@pytest.fixture
def holdings(world, submit):
    """Certificates spread over the three holders, with mixed lot stacks."""
    zcx, acct = world.zcx, world.accounts
    for name, label, whs in (
        ("alice", "ALICE-PV", [1500, 2000]),
        ("bob", "BOB-PV", [20000]),
        ("carol", "CAROL-PV", [1200]),
        ("alice", "ALICE-PV", [800]),
    ):
        start = int(zcx.registry.lastEnd(meter_id(label))) or world.epoch
        submit(
            [
                Reading(
                    meter_id(label), start + i * INTERVAL, start + (i + 1) * INTERVAL, wh, 0, 0, 0
                )
                for i, wh in enumerate(whs)
            ]
        )
        claim_hourly(zcx.exchange, zcx.registry, meter_id(label), sender=acct[name])
    for src, dst, units in SETUP_TRANSFERS:
        zcx.zcv.transfer(acct[dst], units, sender=acct[src])
    return world


# The `holdings` fixture's plain transfers, replayed by the model (lotsOf alone cannot tell the
# current lot from the head of the largest class).
SETUP_TRANSFERS = (("alice", "bob", 300), ("bob", "carol", 5000), ("carol", "alice", 700))


holders = st.sampled_from(HOLDERS)
recipients = st.sampled_from((*HOLDERS, *HOLDERS, "zero"))
REVOKED_PATHS = (
    "transfer",
    "transferFrom",
    "pay",
    "retire",
    "transferLots",
    "transferLotsFrom",
    "retireLots",
)
CORRUPTIONS = (
    None,
    None,
    None,
    None,
    None,
    None,
    "unordered",
    "duplicate",
    "not_held",
    "too_small",
    "zero",
)


class TokenMachine(ChainMachine):
    """Claims, transfers, transferFrom, transferLots, pay, retire, retireLots, revocation,
    eviction and attempts to move revoked units, all predicted by the LotBook model; plus an
    adversary who sprays dust lots on the others and has certificates revoked afterwards."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        zcv = self.zcx.zcv
        self.zcv = zcv
        self.book = LotBook()
        self.counters: dict[str, list[int]] = {}
        for cid in range(1, zcv.certificateCount() + 1):
            cert = zcv.certificate(cid)
            self.book.issue(str(cert.issuedTo), cid, cert.units)
        for src, dst, units in SETUP_TRANSFERS:
            self.book.transfer(self.addr(src), self.addr(dst), units)
        for name in HOLDERS:
            address = self.addr(name)
            assert lots(zcv, address) == self.book.view(address)
            self.counters[address] = list(zcv.counters(address))[:3]
        assert (zcv.totalIssued(), zcv.totalRetired()) == (self.book.total_issued, 0)
        for meter in self.meters.values():
            meter.last_end = self.zcx.registry.lastEnd(meter.mid)
            meter.generated = self.zcx.registry.meterTotals(meter.mid).generatedWh
            meter.claimed = self.zcx.registry.claimedWh(meter.mid)
        for cid in range(1, int(zcv.certificateCount()) + 1):
            cert = zcv.certificate(cid)
            self.meters[meter_label(bytes(cert.meterId))].issued_hours.add(int(cert.periodStart))
        self.frozen: dict[int, tuple[dict[str, int], int]] = {}
        self.revoked_moves: list[tuple[int, Any]] = []

    def target(self, name: str) -> str:
        return ZERO_ADDRESS if name == "zero" else self.addr(name)

    def act(
        self, src: str, to: str | None, predict: Any, method: Any, *args: Any, sender: Any
    ) -> Any:
        """Runs the model's prediction, then the transaction; checks reverts and LotMoved."""
        try:
            taken = predict()
        except ModelRevert as revert:
            call_reverts(method, *args, sender=sender, name=revert.names)
            return None
        revoked_before = set(self.book.revoked)
        tx = method(*args, sender=sender)
        moved = [
            (e["from"], e["to"], e["certificateId"], e["units"])
            for e in event_args(tx, self.zcv.LotMoved)
        ]
        assert moved == [(src, to or ZERO_ADDRESS, cid, units) for cid, units in taken]
        self.revoked_moves.extend((cid, tx) for _, _, cid, _ in moved if cid in revoked_before)
        return tx

    def draw_amount(self, data: st.DataObject, holder: str) -> int:
        balance = self.book.balance(holder)
        return data.draw(
            st.one_of(st.integers(0, balance), st.integers(balance, balance + 5)), label="units"
        )

    def draw_picks(self, data: st.DataObject, holder: str) -> list[tuple[int, int]]:
        held = sorted(self.book.view(holder))
        if not held:
            return [(1, 1)]
        chosen = data.draw(
            st.lists(
                st.integers(0, len(held) - 1), min_size=1, max_size=min(4, len(held)), unique=True
            ),
            label="lots",
        )
        picks = [
            (held[i][0], data.draw(st.integers(1, held[i][1]), label="pick units"))
            for i in sorted(chosen)
        ]
        corruption = data.draw(st.sampled_from(CORRUPTIONS), label="corruption")
        cid, units = picks[0]
        if corruption == "unordered" and len(picks) > 1:
            picks.reverse()
        elif corruption == "duplicate":
            picks.append(picks[-1])
        elif corruption == "not_held":
            missing = max(self.book.units) + 1
            picks[-1] = (missing, 1)
        elif corruption == "too_small":
            picks[0] = (cid, dict(held)[cid] + 1)
        elif corruption == "zero":
            picks[0] = (cid, 0)
        return picks

    def _dust_sources(self) -> list[str]:
        return [n for n in HOLDERS if self.book.movable(self.addr(n)) > 0]

    # -- rules

    @rule(name=holders, fraction=st.floats(0.01, 1))
    def claim_new_certificate(self, name: str, fraction: float) -> None:
        label = next(label for label, (owner, _) in METERS.items() if owner == name)
        meter = self.meters[label]
        reading = self.good_reading(meter, fraction)
        if reading.generated_wh == 0:
            return
        self.submit([reading])
        claimed = self.claim(meter, None, None)
        if claimed["certificates"] == 0:
            return  # its hour was issued by an earlier claim: the Wh are forfeited
        address = self.addr(name)
        self.book.issue(address, claimed["firstCertificateId"], claimed["units"])
        self.counters[address][0] += claimed["units"]

    @rule(src=holders, dst=recipients, data=st.data())
    def transfer(self, src: str, dst: str, data: st.DataObject) -> None:
        frm, to = self.addr(src), self.target(dst)
        units = self.draw_amount(data, frm)
        self.act(
            frm,
            to,
            lambda: self.book.transfer(frm, to, units),
            self.zcv.transfer,
            to,
            units,
            sender=self.w.accounts[src],
        )

    @rule(owner=holders, spender=holders, dst=recipients, data=st.data())
    def transfer_from(self, owner: str, spender: str, dst: str, data: st.DataObject) -> None:
        frm, to = self.addr(owner), self.target(dst)
        units = self.draw_amount(data, frm)
        allowance = data.draw(
            st.sampled_from([units, units + 7, max(0, units - 1)]), label="allowance"
        )
        self.zcv.approve(self.w.accounts[spender], allowance, sender=self.w.accounts[owner])

        def predict() -> list[tuple[int, int]]:
            if units > allowance:
                raise ModelRevert("ERC20InsufficientAllowance")
            return self.book.transfer(frm, to, units)

        self.act(
            frm, to, predict, self.zcv.transferFrom, frm, to, units, sender=self.w.accounts[spender]
        )

    @rule(src=holders, dst=recipients, data=st.data())
    def pay(self, src: str, dst: str, data: st.DataObject) -> None:
        frm, to = self.addr(src), self.target(dst)
        units = self.draw_amount(data, frm)
        reference = keccak(text=f"bill {units}")
        tx = self.act(
            frm,
            to,
            lambda: self.book.pay(frm, to, units),
            self.zcv.pay,
            to,
            units,
            reference,
            sender=self.w.accounts[src],
        )
        if tx is not None:
            self.counters[frm][1] += units
            assert event_args(tx, self.zcv.Paid)[0]["paymentReference"] == reference

    @rule(src=holders, dst=recipients, data=st.data())
    def transfer_lots(self, src: str, dst: str, data: st.DataObject) -> None:
        frm, to = self.addr(src), self.target(dst)
        picks = self.draw_picks(data, frm)
        self.act(
            frm,
            to,
            lambda: self.book.take_picks(frm, to, picks),
            self.zcv.transferLots,
            to,
            picks,
            sender=self.w.accounts[src],
        )

    @rule(owner=holders, spender=holders, dst=recipients, data=st.data())
    def transfer_lots_from(self, owner: str, spender: str, dst: str, data: st.DataObject) -> None:
        frm, to = self.addr(owner), self.target(dst)
        picks = self.draw_picks(data, frm)
        wanted = sum(units for _, units in picks)
        allowance = data.draw(
            st.sampled_from([wanted, wanted + 3, max(0, wanted - 1)]), label="allowance"
        )
        self.zcv.approve(self.w.accounts[spender], allowance, sender=self.w.accounts[owner])
        self.act(
            frm,
            to,
            lambda: self.book.take_picks_from(frm, to, picks, allowance),
            self.zcv.transferLotsFrom,
            frm,
            to,
            picks,
            sender=self.w.accounts[spender],
        )

    def _retirement_error(self, beneficiary: str, period: tuple[int, int]) -> str | None:
        if not beneficiary:
            return "ZcvEmptyBeneficiary"
        if period[1] <= period[0]:
            return "ZcvBadConsumptionPeriod"
        return None

    @rule(
        src=holders,
        data=st.data(),
        beneficiary=st.sampled_from(["Town hall", "Carol Bakery", ""]),
        period=st.sampled_from([CONSUMPTION, CONSUMPTION, (5, 5)]),
    )
    def retire(
        self, src: str, data: st.DataObject, beneficiary: str, period: tuple[int, int]
    ) -> None:
        frm = self.addr(src)
        units = self.draw_amount(data, frm)

        def predict() -> list[tuple[int, int]]:
            if units == 0:
                raise ModelRevert("ZcvZeroUnits")
            error = self._retirement_error(beneficiary, period)
            if error:
                raise ModelRevert(error)
            return self.book.retire(frm, units)

        tx = self.act(
            frm,
            None,
            predict,
            self.zcv.retire,
            units,
            beneficiary,
            "r",
            *period,
            sender=self.w.accounts[src],
        )
        if tx is not None:
            self.counters[frm][2] += units
            (retired,) = event_args(tx, self.zcv.Retired)
            assert retired["beneficiary"] == beneficiary and retired["units"] == units

    @rule(
        src=holders, data=st.data(), beneficiary=st.sampled_from(["Town hall", "Carol Bakery", ""])
    )
    def retire_lots(self, src: str, data: st.DataObject, beneficiary: str) -> None:
        frm = self.addr(src)
        picks = self.draw_picks(data, frm)

        def predict() -> list[tuple[int, int]]:
            saved = self.book.snapshot()
            taken = self.book.take_picks(frm, None, picks)
            error = self._retirement_error(beneficiary, CONSUMPTION)
            if error:
                self.book.restore(saved)
                raise ModelRevert(error)
            return taken

        tx = self.act(
            frm,
            None,
            predict,
            self.zcv.retireLots,
            picks,
            beneficiary,
            "r",
            *CONSUMPTION,
            sender=self.w.accounts[src],
        )
        if tx is not None:
            self.counters[frm][2] += sum(units for _, units in picks)

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        cid = data.draw(st.integers(1, len(self.book.units)), label="certificate")
        if cid in self.book.revoked:
            call_reverts(
                self.zcv.revokeCertificate,
                cid,
                "fraud",
                sender=self.w.operator,
                name="ZcvAlreadyRevoked",
                certificateId=cid,
            )
            return
        self.zcv.revokeCertificate(cid, "fraud", sender=self.w.operator)
        self.book.revoked.add(cid)
        held = {self.addr(n): self.book.held(self.addr(n), cid) for n in HOLDERS}
        self.frozen[cid] = (held, self.book.retired[cid])

    @precondition(lambda self: self._dust_sources())
    @rule(data=st.data(), victim=holders)
    def spray_dust(self, data: st.DataObject, victim: str) -> None:
        """The adversary sends a victim a burst of tiny lots, alternating certificates, by both
        plain transfers and transferLots (each one predicted exactly by the model)."""
        attacker = data.draw(st.sampled_from(self._dust_sources()), label="attacker")
        if attacker == victim:
            return
        frm, to, sender = self.addr(attacker), self.addr(victim), self.w.accounts[attacker]
        for _ in range(data.draw(st.integers(1, 6), label="dust lots")):
            spendable = sorted(
                (cid, u) for cid, u in self.book.view(frm) if cid not in self.book.revoked
            )
            if not spendable:
                return
            cid, available = data.draw(st.sampled_from(spendable), label="dust certificate")
            units = min(available, data.draw(st.integers(1, 3), label="dust units"))
            if data.draw(st.booleans(), label="by transferLots"):
                pick = [(cid, units)]
                predict = functools.partial(self.book.take_picks, frm, to, pick)
                self.act(frm, to, predict, self.zcv.transferLots, to, pick, sender=sender)
            else:
                predict = functools.partial(self.book.transfer, frm, to, units)
                self.act(frm, to, predict, self.zcv.transfer, to, units, sender=sender)

    @rule(data=st.data(), holder=holders, caller=holders)
    def evict(self, data: st.DataObject, holder: str, caller: str) -> None:
        """Anyone may move a holder's lot of a revoked certificate to its frozen ledger."""
        address = self.addr(holder)
        cid = data.draw(st.integers(1, len(self.book.units) + 1), label="certificate")
        try:
            units = self.book.evict(address, cid)
        except ModelRevert as revert:
            call_reverts(
                self.zcv.evict, address, cid, sender=self.w.accounts[caller], name=revert.names
            )
            return
        tx = self.zcv.evict(address, cid, sender=self.w.accounts[caller])
        assert event_args(tx, self.zcv.LotFrozen) == [
            {"holder": address, "certificateId": cid, "units": units}
        ]

    def _holders_of_revoked(self) -> list[str]:
        return [
            n for n in HOLDERS if self.book.balance(self.addr(n)) > self.book.movable(self.addr(n))
        ]

    @precondition(lambda self: self._holders_of_revoked())
    @rule(data=st.data(), path=st.sampled_from(REVOKED_PATHS))
    def move_revoked_units(self, data: st.DataObject, path: str) -> None:
        name = data.draw(st.sampled_from(self._holders_of_revoked()), label="holder")
        frm = self.addr(name)
        sender = self.w.accounts[name]
        to = self.addr(next(n for n in HOLDERS if n != name))
        revoked = next(cid for cid, _ in self.book.view(frm) if cid in self.book.revoked)
        pick = [(revoked, 1)]
        units = data.draw(
            st.integers(self.book.movable(frm) + 1, self.book.balance(frm)), label="units"
        )
        book, zcv = self.book, self.zcv
        if path == "transfer":
            self.act(
                frm,
                to,
                lambda: book.transfer(frm, to, units),
                zcv.transfer,
                to,
                units,
                sender=sender,
            )
        elif path == "pay":
            reference = b"\x00" * 32
            self.act(
                frm,
                to,
                lambda: book.pay(frm, to, units),
                zcv.pay,
                to,
                units,
                reference,
                sender=sender,
            )
        elif path == "retire":
            args = (units, "x", "r", *CONSUMPTION)
            self.act(frm, None, lambda: book.retire(frm, units), zcv.retire, *args, sender=sender)
        elif path == "transferLots":
            self.act(
                frm,
                to,
                lambda: book.take_picks(frm, to, pick),
                zcv.transferLots,
                to,
                pick,
                sender=sender,
            )
        elif path in ("transferFrom", "transferLotsFrom"):
            spender = self.w.accounts[next(n for n in HOLDERS if n != name)]
            zcv.approve(spender, units, sender=sender)
            if path == "transferFrom":
                predict = lambda: book.transfer(frm, to, units)  # noqa: E731
                self.act(frm, to, predict, zcv.transferFrom, frm, to, units, sender=spender)
            else:
                predict = lambda: book.take_picks_from(frm, to, pick, units)  # noqa: E731
                self.act(frm, to, predict, zcv.transferLotsFrom, frm, to, pick, sender=spender)
        else:
            args = (pick, "x", "r", *CONSUMPTION)
            self.act(
                frm,
                None,
                lambda: book.take_picks(frm, None, pick),
                zcv.retireLots,
                *args,
                sender=sender,
            )
        assert self.book.balance(frm) > self.book.movable(frm)  # the prediction was a revert


class BalancesSumToSupply(TokenMachine):
    @invariant()
    def balances_sum_to_supply_and_supply_plus_retired_is_issued(self) -> None:
        zcv = self.zcv
        supply, retired, issued = zcv.totalSupply(), zcv.totalRetired(), zcv.totalIssued()
        balances = {self.addr(n): zcv.balanceOf(self.addr(n)) for n in HOLDERS}
        assert sum(balances.values()) == supply
        assert supply + retired == issued
        assert (issued, retired) == (self.book.total_issued, self.book.total_retired)
        for address, balance in balances.items():
            assert balance == self.book.balance(address)
            assert list(zcv.counters(address)) == [*self.counters[address], balance]


class UnitsTraceToCertificates(TokenMachine):
    @invariant()
    def every_unit_traces_to_one_certificate_and_wh_conserved(self) -> None:
        zcv = self.zcv
        count = zcv.certificateCount()
        held: dict[int, int] = {}
        for name in HOLDERS:
            address = self.addr(name)
            stack = lots(zcv, address)
            assert stack == self.book.view(address)
            assert zcv.lotCount(address) == len(stack)
            assert sum(units for _, units in stack) == zcv.balanceOf(address)
            for cid, units in stack:
                assert 1 <= cid <= count and units > 0
                held[cid] = held.get(cid, 0) + units
        for cid in range(1, count + 1):
            cert = zcv.certificate(cid)
            assert held.get(cid, 0) + cert.retiredUnits == cert.units
            assert cert.retiredUnits == self.book.retired[cid]


class RevokedUnitsNeverMove(TokenMachine):
    @invariant()
    def revoked_units_never_move(self) -> None:
        assert not self.revoked_moves, f"revoked certificate units moved: {self.revoked_moves}"
        for cid, (held, retired) in self.frozen.items():
            cert = self.zcv.certificate(cid)
            assert cert.revoked and cert.retiredUnits == retired
            for address, units in held.items():
                assert sum(u for c, u in lots(self.zcv, address) if c == cid) == units
                assert self.zcv.lotBalance(address, cid) == units
        for name in HOLDERS:
            address = self.addr(name)
            frozen = self.book.balance(address) - self.book.movable(address)
            assert self.zcv.frozenBalanceOf(address) == frozen


def test_invariant_3_balances_sum_to_supply_and_supply_plus_retired_is_issued(holdings):
    run_state_machine_as_test(lambda: BalancesSumToSupply(holdings), settings=SETTINGS)


def test_invariant_4_every_unit_traces_to_one_certificate_and_wh_conserved(holdings):
    run_state_machine_as_test(lambda: UnitsTraceToCertificates(holdings), settings=SETTINGS)


def test_invariant_7_revoked_units_never_move(holdings):
    run_state_machine_as_test(lambda: RevokedUnitsNeverMove(holdings), settings=SETTINGS)
