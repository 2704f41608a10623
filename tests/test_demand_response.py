"""Demand response: the ERAB High 4 of 5 baseline on hand-made series with known answers, the
contract's rules from the attacker's side, and the whole flow on Anvil (readings -> announce ->
results -> one-transaction settlement -> the audit re-checks it and flags a tampered one)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ape
import pandas as pd
import pytest
from audit_support import deployment_of
from conftest import INTERVAL, reading
from hypothesis import given
from hypothesis import strategies as st

from zcx.audit.events import abis_from_ape
from zcx.audit.run import audit
from zcx.dr import (
    DAY_OFF,
    JST,
    WEEKDAY,
    DemandResponseClient,
    DrEvent,
    baseline_high4of5,
    day_type,
    deploy_demand_response,
    event_results,
    reward_for,
)
from zcx.eip712 import sign_quorum
from zcx.ids import meter_id
from zcx.market import deploy_mock_yen

REENTRANT_SELECTOR = bytes.fromhex("3ee5aeb5")  # ReentrancyGuardReentrantCall()
YEN = 10**18
RATE = 40 * YEN  # 40 JPYT per kWh reduced
METER = "0x" + meter_id("ALICE-PV").hex()


# ---------------------------------------------------------------------------- pure baseline


def _ts(day: dt.date, hour: int, minute: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST).timestamp())


def _series(values: dict[dt.date, list[int]], hour: int = 18) -> pd.DataFrame:
    rows = [
        {"meter_id": METER, "start": _ts(day, hour) + i * INTERVAL, "pq4": v}
        for day, slots in values.items()
        for i, v in enumerate(slots)
    ]
    return pd.DataFrame(rows)


def _event(day: dt.date, slots: int = 2, hour: int = 18, rate: int = 40) -> DrEvent:
    return DrEvent(1, "TEPCO-13", _ts(day, hour), INTERVAL, slots, 1000, rate)


D = dt.date  # 2026-11-23 (Mon) is Labour Thanksgiving Day, a Japanese public holiday
WEEKDAY_SERIES = {
    D(2026, 11, 24): [500, 700],  # the event day (Tue)
    D(2026, 11, 23): [5000, 5000],  # holiday: not a weekday like day
    D(2026, 11, 22): [4000, 4000],  # Sunday
    D(2026, 11, 21): [4000, 4000],  # Saturday
    D(2026, 11, 20): [1000, 1000],  # Fri
    D(2026, 11, 19): [800, 800],  # Thu
    D(2026, 11, 18): [1200, 1200],  # Wed
    D(2026, 11, 17): [600, 600],  # Tue: the lowest of the 5, dropped
    D(2026, 11, 16): [900, 900],  # Mon
    D(2026, 11, 13): [9999, 9999],  # Fri, the 6th weekday back: not a candidate
}


def test_day_types_follow_the_japanese_calendar():
    assert day_type(D(2026, 11, 24)) == WEEKDAY
    assert day_type(D(2026, 11, 23)) == DAY_OFF  # holiday on a Monday
    assert day_type(D(2026, 11, 22)) == DAY_OFF


def test_high_4_of_5_on_weekdays_skips_the_holiday_and_drops_the_lowest_day():
    result = baseline_high4of5(_series(WEEKDAY_SERIES), "alice", [METER], _event(D(2026, 11, 24)))
    assert result.status == "measured"
    assert list(result.candidates["date"]) == [
        D(2026, 11, 20), D(2026, 11, 19), D(2026, 11, 18), D(2026, 11, 17), D(2026, 11, 16)
    ]  # fmt: skip
    chosen = set(result.candidates[result.candidates["chosen"]]["date"])
    assert chosen == {D(2026, 11, 20), D(2026, 11, 19), D(2026, 11, 18), D(2026, 11, 16)}
    # (1200 + 1000 + 900 + 800) / 4 = 975 Wh per slot; actual 500 + 700.
    assert list(result.slots["baseline_wh"]) == [975.0, 975.0]
    assert result.baseline_wh == 1950.0 and result.actual_wh == 1200
    assert result.reduced_wh == 750
    assert result.reward == 750 * 40 // 1000 == 30


def test_holiday_event_uses_days_off_as_like_days():
    series = {
        D(2026, 11, 23): [1000, 1000],  # the event: a holiday Monday
        D(2026, 11, 22): [2000, 2000],
        D(2026, 11, 21): [1800, 1800],
        D(2026, 11, 20): [9000, 9000],  # a weekday: ignored
        D(2026, 11, 15): [1600, 1600],
        D(2026, 11, 14): [1400, 1400],
        D(2026, 11, 8): [1200, 1200],
    }
    result = baseline_high4of5(_series(series), "alice", [METER], _event(D(2026, 11, 23)))
    assert list(result.candidates["date"]) == [
        D(2026, 11, 22), D(2026, 11, 21), D(2026, 11, 15), D(2026, 11, 14), D(2026, 11, 8)
    ]  # fmt: skip
    assert result.baseline_wh == (2000 + 1800 + 1600 + 1400) / 4 * 2
    assert result.reduced_wh == (2000 + 1800 + 1600 + 1400) * 2 // 4 - 2000


def test_earlier_dr_days_and_incomplete_days_are_not_like_days():
    series = dict(WEEKDAY_SERIES)
    series[D(2026, 11, 19)] = [800]  # one event slot missing: not a like day
    series[D(2026, 11, 12)] = [100, 100]
    result = baseline_high4of5(
        _series(series), "alice", [METER], _event(D(2026, 11, 24)),
        excluded_dates={D(2026, 11, 18)},  # an earlier DR day
    )  # fmt: skip
    assert list(result.candidates["date"]) == [
        D(2026, 11, 20), D(2026, 11, 17), D(2026, 11, 16), D(2026, 11, 13), D(2026, 11, 12)
    ]  # fmt: skip
    assert set(result.candidates[result.candidates["chosen"]]["date"]) == {
        D(2026, 11, 20), D(2026, 11, 17), D(2026, 11, 16), D(2026, 11, 13)
    }  # fmt: skip


def test_no_same_day_adjustment_raising_load_before_the_event_changes_nothing():
    base = _series(WEEKDAY_SERIES)
    before = _series({D(2026, 11, 24): [9000, 9000, 9000, 9000]}, hour=15)  # 15:00-17:00 JST
    plain = baseline_high4of5(base, "a", [METER], _event(D(2026, 11, 24)))
    gamed = baseline_high4of5(pd.concat([base, before]), "a", [METER], _event(D(2026, 11, 24)))
    assert gamed.reduced_wh == plain.reduced_wh == 750


def test_too_few_like_days_or_missing_event_readings_pay_nothing():
    short = {d: v for d, v in WEEKDAY_SERIES.items() if d >= D(2026, 11, 18)}
    result = baseline_high4of5(_series(short), "a", [METER], _event(D(2026, 11, 24)))
    assert result.status.startswith("too few like days (3 of 5)") and result.reduced_wh == 0
    no_event = {d: v for d, v in WEEKDAY_SERIES.items() if d != D(2026, 11, 24)}
    result = baseline_high4of5(_series(no_event), "a", [METER], _event(D(2026, 11, 24)))
    assert result.status == "event slots not all recorded" and result.reward == 0
    result = baseline_high4of5(_series(WEEKDAY_SERIES), "a", [], _event(D(2026, 11, 24)))
    assert result.status == "no meter in zone"


def test_a_load_increase_is_a_zero_reduction_and_ties_prefer_the_recent_day():
    series = {d: [1000, 1000] for d in WEEKDAY_SERIES if day_type(d) == WEEKDAY}
    series[D(2026, 11, 24)] = [1500, 1500]
    result = baseline_high4of5(_series(series), "a", [METER], _event(D(2026, 11, 24)))
    assert result.reduced_wh == 0 and result.baseline_wh == 2000
    # All five tie: the four most recent are chosen, the oldest (11-16) is not.
    assert list(result.candidates[~result.candidates["chosen"]]["date"]) == [D(2026, 11, 16)]


@given(
    days=st.lists(st.lists(st.integers(0, 50_000), min_size=3, max_size=3), min_size=5, max_size=5),
    actual=st.lists(st.integers(0, 50_000), min_size=3, max_size=3),
)
def test_reduction_is_the_floor_of_the_mean_of_the_four_highest_days(days, actual):
    like = [D(2026, 11, 20), D(2026, 11, 19), D(2026, 11, 18), D(2026, 11, 17), D(2026, 11, 16)]
    series = dict(zip(like, days, strict=True)) | {D(2026, 11, 24): actual}
    result = baseline_high4of5(_series(series), "a", [METER], _event(D(2026, 11, 24), slots=3))
    top4 = sorted((sum(d) for d in days), reverse=True)[:4]
    assert result.reduced_wh == max(0, sum(top4) - 4 * sum(actual)) // 4
    assert result.reward == reward_for(result.reduced_wh, 40)


# ---------------------------------------------------------------------------- contract


@pytest.fixture
def jpyt(admin, operator):
    return deploy_mock_yen(admin, operator)


@pytest.fixture
def drc(registered, admin, operator, jpyt):
    return deploy_demand_response(admin, operator, jpyt, registered.registry)


def _future_start(chain, days_ahead: int = 1) -> int:
    return (chain.pending_timestamp // INTERVAL + 2) * INTERVAL + (days_ahead - 1) * 86400


def _sorted(*accounts) -> list[str]:
    return sorted((str(a.address) for a in accounts), key=lambda a: int(a, 16))


def _end(chain, drc, event_id):
    e = drc.drEvent(event_id)
    chain.pending_timestamp = e.start + e.slots * e.slotSeconds + 1
    chain.mine()


def test_only_the_operator_announces_cancels_and_settles(drc, chain, alice, bob, operator):
    start = _future_start(chain)
    with ape.reverts(drc.AccessControlUnauthorizedAccount):
        drc.announce("TEPCO-13", start, 4, 1000, RATE, [], sender=alice)
    drc.announce("TEPCO-13", start, 4, 1000, RATE, [], sender=operator)
    with ape.reverts(drc.AccessControlUnauthorizedAccount):
        drc.cancel(1, sender=alice)
    _end(chain, drc, 1)
    with ape.reverts(drc.AccessControlUnauthorizedAccount):
        drc.settle(1, [alice], [100], sender=alice)


def test_announce_refuses_bad_events(drc, chain, operator, alice, bob, carol):
    start = _future_start(chain)
    cases = [
        (("", start, 4, 0, RATE, []), drc.DemandResponseEmptyZone, {}),
        (("Z", start + 60, 4, 0, RATE, []), drc.DemandResponseStartNotAligned, {}),
        (("Z", start - 2 * 86400 // INTERVAL * INTERVAL, 4, 0, RATE, []),
         drc.DemandResponseStartNotInFuture, {}),
        (("Z", start, 0, 0, RATE, []), drc.DemandResponseBadSlots, {"slots": 0}),
        (("Z", start, 49, 0, RATE, []), drc.DemandResponseBadSlots, {"slots": 49}),
        (("Z", start, 4, 0, 0, []), drc.DemandResponseZeroRate, {}),
        (("Z", start, 4, 0, RATE, list(reversed(_sorted(alice, bob)))),
         drc.DemandResponseMembersUnsorted, {"index": 1}),
        (("Z", start, 4, 0, RATE, [alice.address, alice.address]),
         drc.DemandResponseMembersUnsorted, {"index": 1}),
        (("Z", start, 4, 0, RATE, [carol.address]), drc.DemandResponseNotMember,
         {"member": carol.address}),
    ]  # fmt: skip
    for args, error, inputs in cases:
        with ape.reverts(error, **inputs):
            drc.announce(*args, sender=operator)
    assert drc.eventCount() == 0


def test_cancel_only_before_start_and_a_cancelled_event_is_never_paid(drc, chain, operator, alice):
    start = _future_start(chain)
    drc.announce("TEPCO-13", start, 2, 0, RATE, [], sender=operator)
    drc.announce("TEPCO-13", start, 2, 0, RATE, [], sender=operator)
    tx = drc.cancel(1, sender=operator)
    assert [e.event_name for e in tx.events] == ["DemandResponseCancelled"]
    with ape.reverts(drc.DemandResponseNotAnnounced, eventId=1):
        drc.cancel(1, sender=operator)
    chain.pending_timestamp = start
    chain.mine()
    with ape.reverts(drc.DemandResponseAlreadyStarted, eventId=2):
        drc.cancel(2, sender=operator)
    _end(chain, drc, 1)
    with ape.reverts(drc.DemandResponseNotAnnounced, eventId=1):
        drc.settle(1, [alice], [100], sender=operator)
    with ape.reverts(drc.DemandResponseUnknownEvent, eventId=9):
        drc.settle(9, [alice], [100], sender=operator)


def test_settle_pays_once_after_the_end_exactly_the_rate(drc, chain, operator, alice, bob, jpyt):
    start = _future_start(chain)
    drc.announce("TEPCO-13", start, 4, 5000, RATE, [], sender=operator)
    members, reduced = _sorted(alice, bob), [1234, 0]
    jpyt.mint(operator, 10**24, sender=operator)
    jpyt.approve(drc, 2**256 - 1, sender=operator)
    with ape.reverts(drc.DemandResponseNotEnded, eventId=1, end=start + 4 * INTERVAL):
        drc.settle(1, members, reduced, sender=operator)
    _end(chain, drc, 1)
    with ape.reverts(drc.DemandResponseLengthMismatch, members=2, reductions=1):
        drc.settle(1, members, [5], sender=operator)
    with ape.reverts(drc.DemandResponseNoMembers):
        drc.settle(1, [], [], sender=operator)
    with ape.reverts(drc.DemandResponseMembersUnsorted, index=1):
        drc.settle(1, [members[0], members[0]], [1, 1], sender=operator)
    with ape.reverts(drc.DemandResponseNotMember):
        drc.settle(1, [str(operator.address)], [1], sender=operator)
    before = {m: jpyt.balanceOf(m) for m in [*members, str(operator.address)]}
    tx = drc.settle(1, members, reduced, sender=operator)
    amount = 1234 * RATE // 1000
    assert jpyt.balanceOf(members[0]) - before[members[0]] == amount
    assert jpyt.balanceOf(members[1]) == before[members[1]]
    assert before[str(operator.address)] - jpyt.balanceOf(operator) == amount
    assert jpyt.balanceOf(drc) == 0  # (D3): nothing stays in the contract
    rewarded = [e for e in tx.events if e.event_name == "DemandResponseRewarded"]
    assert [(r.member, r.reducedWh, r.amount) for r in rewarded] == [
        (members[0], 1234, amount), (members[1], 0, 0)
    ]  # fmt: skip
    e = drc.drEvent(1)
    assert e.status == 3 and e.totalPaid == amount and e.totalReducedWh == 1234
    with ape.reverts(drc.DemandResponseNotAnnounced, eventId=1):  # (D1): never twice
        drc.settle(1, members, reduced, sender=operator)


def test_invitation_only_events_pay_only_invited_members(drc, chain, operator, alice, bob, jpyt):
    drc.announce("TEPCO-13", _future_start(chain), 2, 0, RATE, [alice.address], sender=operator)
    assert drc.isParticipant(1, alice) and not drc.isParticipant(1, bob)
    jpyt.mint(operator, 10**24, sender=operator)
    jpyt.approve(drc, 2**256 - 1, sender=operator)
    _end(chain, drc, 1)
    with ape.reverts(drc.DemandResponseNotParticipant, eventId=1, member=bob.address):
        drc.settle(1, [bob.address], [10], sender=operator)
    drc.settle(1, [alice.address], [10], sender=operator)


def test_reentrancy_through_a_malicious_payment_token_is_refused(
    registered, project, admin, operator, alice, bob, chain
):
    evil = admin.deploy(project.ReentrantPaymentToken)
    drc = deploy_demand_response(admin, operator, evil, registered.registry)
    drc.announce("TEPCO-13", _future_start(chain), 2, 0, RATE, [], sender=operator)
    drc.announce("TEPCO-13", _future_start(chain), 2, 0, RATE, [], sender=operator)
    evil.mint(operator, 10**24, sender=operator)
    evil.approve(drc, 2**256 - 1, sender=operator)
    _end(chain, drc, 2)
    members = _sorted(alice, bob)
    # Inside the pull, the token re-enters settle for the same event and for the other one.
    for payload in (
        drc.settle.encode_input(1, members, [1000, 1000]),
        drc.settle.encode_input(2, members, [1000, 1000]),
    ):
        evil.arm(drc, payload, sender=operator)
        eid = 1 if drc.drEvent(1).status == 1 else 2
        tx = drc.settle(eid, members, [500, 0], sender=operator)
        (attempt,) = [e for e in tx.events if e.event_name == "ReentryAttempted"]
        assert not attempt.ok and bytes(attempt.returnData)[:4] == REENTRANT_SELECTOR
    assert evil.balanceOf(members[0]) == 2 * (500 * RATE // 1000)
    assert evil.balanceOf(members[1]) == 0 and evil.balanceOf(drc) == 0


# ---------------------------------------------------------------------------- end to end


def _first_weekday_after(chain, days: int) -> dt.date:
    day = dt.datetime.fromtimestamp(chain.pending_timestamp, JST).date() + dt.timedelta(days)
    while day_type(day) != WEEKDAY or day_type(day - dt.timedelta(1)) != WEEKDAY:
        day += dt.timedelta(1)
    return day


def _load(label: str, start: int, bought: int):
    return reading(label, start, gen=0, cons=bought, sold=0, bought=bought)


def _submit_history(registered, submitter, oracle_keys, chain, event: DrEvent, demand) -> None:
    """Every weekday and day off for 3 weeks before the event, and the event day: the event's
    slots only (gaps between readings are allowed). `demand(label, day, slot)` gives PQ4."""
    readings = []
    for label in ("ALICE-PV", "BOB-PV"):
        for back in range(21, -1, -1):
            for k, start in enumerate(event.slot_starts):
                readings.append(_load(label, start - back * 86400, demand(label, back, k)))
    signatures = sign_quorum(
        readings, chain.chain_id, str(registered.registry.address), oracle_keys[:2]
    )
    registered.registry.submitBatch([r.as_tuple() for r in readings], signatures, sender=submitter)


def _demand(label: str, back: int, slot: int) -> int:
    if label == "ALICE-PV":
        return 600 if back == 0 else 1000 + 10 * back + slot  # cuts on the event day
    return 3000 if back == 0 else 2000  # Bob consumes more on the event day


@pytest.fixture
def flow(registered, admin, operator, submitter, oracle_keys, jpyt, chain, alice, bob):
    """DR deployed, an event announced in the future, readings submitted after it ended."""
    drc = deploy_demand_response(admin, operator, jpyt, registered.registry)
    deployment = deployment_of(registered, chain)
    deployment.contracts["DemandResponse"] = str(drc.address)
    deployment.contracts["MockYenToken"] = str(jpyt.address)
    client = DemandResponseClient(deployment, ape.project)
    day = _first_weekday_after(chain, 2)
    start = _ts(day, 17)
    result = client.announce(operator, "TEPCO-13", start, 4, 2000, RATE)
    event_id = result.values["event_id"]
    _end(chain, drc, event_id)
    event = client.events()[event_id]
    _submit_history(registered, submitter, oracle_keys, chain, event, _demand)
    jpyt.mint(operator, 10**24, sender=operator)
    return client, drc, deployment, event


def test_rewards_paid_equal_the_recomputed_ones_and_the_audit_agrees(
    flow, jpyt, operator, alice, bob, chain
):
    client, drc, deployment, event = flow
    results = client.results(event.event_id)
    by_member = {m.member: m for m in results.members}
    alice_r = by_member[str(alice.address)]
    assert alice_r.status == "measured" and len(alice_r.candidates) == 5
    # Alice's demand is 1000 + 10 x days back + slot: older days are higher, so of the 5 most
    # recent weekdays the most recent one is dropped.
    chosen = sorted(alice_r.candidates[alice_r.candidates["chosen"]]["days_back"])
    assert chosen == sorted(alice_r.candidates["days_back"])[1:]
    expected = sum(1000 + 10 * b + k for b in chosen for k in range(4)) - 4 * 4 * 600
    assert alice_r.reduced_wh == expected // 4
    assert by_member[str(bob.address)].reduced_wh == 0
    before = jpyt.balanceOf(alice)
    tx = client.settle(operator, results)  # approves the token itself
    assert jpyt.balanceOf(alice) - before == reward_for(alice_r.reduced_wh, RATE)
    assert tx.values["total_paid"] == reward_for(alice_r.reduced_wh, RATE)
    result = audit(chain.provider.web3, deployment, abis_from_ape())
    assert result.demand_response is not None
    assert result.demand_response.rewards["ok"].all()
    assert "dr_reward_mismatch" not in result.checks_flagged()


def test_the_audit_flags_a_tampered_settlement(flow, jpyt, operator, alice, bob, chain):
    client, drc, deployment, event = flow
    honest = client.results(event.event_id)
    members, reduced = honest.payout()
    inflated = [
        r + 500 if m == str(bob.address) else r for m, r in zip(members, reduced, strict=True)
    ]
    jpyt.approve(drc, 2**256 - 1, sender=operator)
    drc.settle(event.event_id, members, inflated, sender=operator)
    result = audit(chain.provider.web3, deployment, abis_from_ape())
    flagged = [f for f in result.violations if f.check == "dr_reward_mismatch"]
    assert len(flagged) == 1 and str(bob.address) in flagged[0].message
    assert not result.ok


def test_the_audit_warns_when_a_reducing_member_is_left_out(
    flow, jpyt, operator, alice, bob, chain
):
    client, drc, deployment, event = flow
    jpyt.approve(drc, 2**256 - 1, sender=operator)
    drc.settle(event.event_id, [bob.address], [0], sender=operator)  # Alice reduced, not paid
    result = audit(chain.provider.web3, deployment, abis_from_ape())
    unpaid = [f for f in result.warnings if f.check == "dr_member_unpaid"]
    assert len(unpaid) == 1 and str(alice.address) in unpaid[0].message
    assert "dr_reward_mismatch" not in result.checks_flagged()


def test_event_results_cover_every_member_with_a_meter_in_the_zone():
    meters = pd.DataFrame(
        [(METER, "0x" + "11" * 20, "TEPCO-13"), ("0x" + "22" * 32, "0x" + "33" * 20, "KANSAI")],
        columns=["meter_id", "owner", "zone"],
    )
    results = event_results(_series(WEEKDAY_SERIES), meters, _event(D(2026, 11, 24)))
    assert [m.member.lower() for m in results.members] == ["0x" + "11" * 20]
    assert results.payout() == ([results.members[0].member], [750])


@given(
    consumed=st.lists(st.integers(0, 20_000), min_size=4, max_size=4),
    generated=st.lists(st.integers(0, 20_000), min_size=4, max_size=4),
    fraction=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_curtailed_readings_still_balance_and_buy_less(consumed, generated, fraction):
    from zcx.sim.curtail import curtail

    rows = []
    for i, (cons, gen) in enumerate(zip(consumed, generated, strict=True)):
        rows.append(
            {
                "meter_id": "A" if i % 2 else "B",
                "start": 1800 * (i // 2),
                "generated_wh": gen,
                "consumed_wh": cons,
                "sold_wh": max(0, gen - cons),
                "purchased_wh": max(0, cons - gen),
                "charge_wh": 0,
                "discharge_wh": 0,
            }
        )
    before = pd.DataFrame(rows)
    after = curtail(before, ["A"], [0], fraction)
    lhs = after["generated_wh"] + after["purchased_wh"] + after["discharge_wh"]
    rhs = after["consumed_wh"] + after["sold_wh"] + after["charge_wh"]
    assert (lhs == rhs).all()
    hit = (before["meter_id"] == "A") & (before["start"] == 0)
    assert after[~hit].equals(before[~hit])
    assert (after.loc[hit, "purchased_wh"] <= before.loc[hit, "purchased_wh"]).all()


def test_the_demo_picks_the_next_weekday_peak_with_five_like_days():
    from types import SimpleNamespace

    from zcx.demo import _dr_event_day

    wed_noon = _ts(D(2026, 12, 2), 12)  # Wednesday 12:00 JST
    week = SimpleNamespace(start=wed_noon - 7 * 86400)
    assert _dr_event_day(week, wed_noon) == D(2026, 12, 2)  # today 17:00 JST
    assert _dr_event_day(week, _ts(D(2026, 12, 2), 16, 30)) == D(2026, 12, 3)
    fri_evening = _ts(D(2026, 12, 4), 20)
    assert _dr_event_day(SimpleNamespace(start=fri_evening - 7 * 86400), fri_evening) == D(
        2026, 12, 7
    )  # Monday
    assert _dr_event_day(SimpleNamespace(start=wed_noon - 86400), wed_noon) is None


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def dr_cli(registered, admin, operator, jpyt, chain, tmp_path):
    """`zcx operator dr ...` in-process on the test Anvil, with DemandResponse recorded."""
    import json

    from ape.logging import logger as ape_logger
    from click.testing import CliRunner

    from zcx import deployments
    from zcx.cli import main

    drc = deploy_demand_response(admin, operator, jpyt, registered.registry)
    record = deployment_of(registered, chain)
    record.contracts["DemandResponse"] = str(drc.address)
    record.contracts["MockYenToken"] = str(jpyt.address)
    deployments.save(record, tmp_path)
    runner = CliRunner(mix_stderr=False)
    env = {"ZCX_DEPLOYMENTS_DIR": str(tmp_path), "ZCX_NETWORK": None, "ZCX_RPC": None}
    level = ape_logger.level

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(main, ["operator", "dr", *args], env=env)
        detail = f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
        assert result.exit_code == code, detail
        assert "Traceback" not in result.stdout + result.stderr, detail
        return json.loads(result.stdout) if "--json" in args and code == 0 else result

    yield run, drc
    ape_logger.set_level(level)


def test_cli_announce_results_settle_and_clear_refusals(
    dr_cli, registered, submitter, oracle_keys, chain, operator, jpyt, alice
):
    run, drc = dr_cli
    day = _first_weekday_after(chain, 2)
    start = dt.datetime(day.year, day.month, day.day, 17, tzinfo=JST).isoformat()
    common = ["--zone", "TEPCO-13", "--account", "TEST::1"]
    bad = run("announce", *common, "--start", start, "--slots", "0", "--rate", "30", code=2)
    assert "--slots" in bad.stderr
    bad = run("announce", *common, "--start", start, "--slots", "4", "--rate", "ten", code=2)
    assert "--rate" in bad.stderr and "not a number" in bad.stderr
    bad = run("announce", *common, "--start", "yesterday", "--slots", "4", "--rate", "30", code=2)
    assert "--start" in bad.stderr
    past = run("announce", *common, "--start", "2026-01-05T17:00+09:00", "--slots", "4",
               "--rate", "30", code=1)  # fmt: skip
    assert past.stderr.startswith("DemandResponseStartNotInFuture: the start")
    announced = run("announce", *common, "--start", start, "--slots", "4", "--rate", "40",
                    "--target-kwh", "2", "--json")  # fmt: skip
    event_id = announced["values"]["event_id"]
    assert drc.drEvent(event_id).rewardPerKwh == RATE
    assert run("list", "--json")[0]["status"] == "Announced"
    early = run("settle", str(event_id), "--yes", "--account", "TEST::1", code=1)
    assert "EVENT_ID: event" in early.stderr and "settle it after that" in early.stderr
    _end(chain, drc, event_id)
    event = DrEvent(event_id, "TEPCO-13", drc.drEvent(event_id).start, INTERVAL, 4, 2000, RATE)
    _submit_history(registered, submitter, oracle_keys, chain, event, _demand)
    found = run("results", str(event_id), "--json")
    alice_row = next(m for m in found["members"] if m["member"] == alice.address)
    assert alice_row["status"] == "measured" and len(alice_row["candidates"]) == 5
    assert sum(c["chosen"] for c in alice_row["candidates"]) == 4
    jpyt.mint(operator, 10**24, sender=operator)
    before = jpyt.balanceOf(alice)
    paid = run("settle", str(event_id), "--yes", "--account", "TEST::1", "--json")
    assert jpyt.balanceOf(alice) - before == reward_for(alice_row["reduced_wh"], RATE)
    assert paid["settlement"]["values"]["total_paid"] == jpyt.balanceOf(alice) - before
    again = run("settle", str(event_id), "--yes", "--account", "TEST::1", code=1)
    assert again.stderr.startswith("DemandResponseNotAnnounced:")
    assert run("list", "--json")[0]["status"] == "Settled"
