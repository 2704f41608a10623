"""Hourly certificates (issue 12 points 1-2): one certificate per (meter, clock hour), per-hour
figures checked against the registry's evidence head, support status and issuance policy
(invariant 11), no (meter, hour) issued twice, invariant 2 per hour."""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from conftest import INTERVAL, reading
from eth_utils import keccak
from registry_helpers import claim_hourly, reading_hash
from zcv_support import event_args, reverts_with

from zcx.claims import readings_since_claim
from zcx.ids import meter_id

ALICE_PV = "ALICE-PV"
MID = meter_id(ALICE_PV)
HOUR = 3600
NONE, FIT, FIP, POST_FIT = range(4)
GENERATION, SELF_CONSUMPTION = range(2)


def claim(zcx, owner, label=ALICE_PV):
    return claim_hourly(zcx.exchange, zcx.registry, meter_id(label), sender=owner)


def claimed_event(zcx, tx):
    (event,) = event_args(tx, zcx.exchange.Claimed)
    return event


def fold(hashes, head=b"\0" * 32):
    for h in hashes:
        head = keccak(head + h)
    return head


def send_claim(zcx, owner, readings):
    return zcx.exchange.claim(zcx.registry, MID, [r.as_tuple() for r in readings], sender=owner)


# --------------------------------------------------------------------------- eligibility


def test_fit_meter_that_exports_everything_gets_zero_coins(
    registered, submit, operator, alice, epoch
):
    tx = registered.members.setSupportStatus(MID, FIT, sender=operator)
    assert event_args(tx, registered.members.MeterSupportStatusSet) == [
        {"meterId": MID, "status": FIT}
    ]
    submit([reading(ALICE_PV, epoch + i * INTERVAL, gen=1500, cons=0, sold=1500) for i in range(4)])
    event = claimed_event(registered, claim(registered, alice))
    assert (event["wh"], event["eligibleWh"], event["units"], event["certificates"]) == (
        6000,
        0,
        0,
        0,
    )
    assert registered.zcv.balanceOf(alice) == 0 and registered.zcv.certificateCount() == 0
    assert registered.registry.unclaimedWh(MID) == 0  # handed out, never minted
    assert not registered.exchange.isHourIssued(registered.members, MID, epoch)


def test_fit_issues_self_consumption_per_slot_floored_at_zero(
    registered, submit, operator, alice, epoch
):
    registered.members.setSupportStatus(MID, FIT, sender=operator)
    submit(
        [
            reading(ALICE_PV, epoch, gen=1000, cons=700, sold=300),  # 700 self-consumed
            # More exported than generated in this slot (a battery): 0, not -200 against the above.
            reading(ALICE_PV, epoch + INTERVAL, gen=100, cons=0, sold=300),
            reading(ALICE_PV, epoch + 2 * INTERVAL, gen=2000, cons=2000, sold=0),
        ]
    )
    event = claimed_event(registered, claim(registered, alice))
    assert (event["wh"], event["eligibleWh"], event["units"]) == (3100, 2700, 2700)
    first, second = registered.zcv.certificate(1), registered.zcv.certificate(2)
    assert (first.wh, second.wh) == (700, 2000)
    assert registered.zcv.hourlyCertificate(1).policy == SELF_CONSUMPTION


@pytest.mark.parametrize("status", [NONE, FIP, POST_FIT])
def test_other_statuses_issue_all_generation(registered, submit, operator, alice, epoch, status):
    registered.members.setSupportStatus(MID, status, sender=operator)
    submit([reading(ALICE_PV, epoch, gen=1000, cons=0, sold=1000)])
    event = claimed_event(registered, claim(registered, alice))
    assert (event["eligibleWh"], event["units"]) == (1000, 1000)
    issuance = registered.zcv.issuance(registered.zcv.hourlyCertificate(1).issuanceId)
    assert issuance.supportStatus == status and bytes(issuance.meterId) == MID


def test_policy_change_is_an_event_and_applies_from_its_effective_time(
    registered, submit, operator, alice, chain
):
    members = registered.members
    assert [tuple(e) for e in members.issuancePolicies(FIT)] == [(0, SELF_CONSUMPTION)]
    assert [tuple(e) for e in members.issuancePolicies(FIP)] == [(0, GENERATION)]
    members.setSupportStatus(MID, FIP, sender=operator)
    effective = (chain.pending_timestamp // HOUR + 2) * HOUR
    tx = members.scheduleIssuancePolicy(FIP, SELF_CONSUMPTION, effective, sender=operator)
    assert event_args(tx, members.IssuancePolicyScheduled) == [
        {"status": FIP, "policy": SELF_CONSUMPTION, "effectiveFrom": effective}
    ]
    assert members.issuancePolicyAt(FIP, effective - 1) == GENERATION
    assert members.issuancePolicyAt(FIP, effective) == SELF_CONSUMPTION
    chain.mine(timestamp=effective + HOUR + 60)
    before = effective - HOUR
    submit(
        [reading(ALICE_PV, before + i * INTERVAL, gen=1000, cons=0, sold=1000) for i in range(4)]
    )
    event = claimed_event(registered, claim(registered, alice))
    # The hour before: all of PQ1; the hour from `effective`: only self-consumption (none).
    assert (event["eligibleWh"], event["certificates"]) == (2000, 1)
    assert registered.zcv.certificate(1).periodStart == before


def test_policy_and_status_are_operator_only_and_not_retroactive(
    registered, operator, alice, chain
):
    members = registered.members
    with reverts_with("AccessControlUnauthorizedAccount", account=alice):
        members.setSupportStatus(MID, NONE, sender=alice)
    with reverts_with("AccessControlUnauthorizedAccount", account=alice):
        members.scheduleIssuancePolicy(FIT, GENERATION, chain.pending_timestamp + 60, sender=alice)
    past = chain.pending_timestamp - 60
    with reverts_with("MembersPolicyInPast", effectiveFrom=past):
        members.scheduleIssuancePolicy(FIT, GENERATION, past, sender=operator)
    later = chain.pending_timestamp + 7200
    members.scheduleIssuancePolicy(FIT, GENERATION, later, sender=operator)
    with reverts_with(
        "MembersPolicyOutOfOrder", effectiveFrom=later - 3600, lastEffectiveFrom=later
    ):
        members.scheduleIssuancePolicy(FIT, GENERATION, later - 3600, sender=operator)
    with reverts_with("MembersUnknownMeter"):
        members.setSupportStatus(meter_id("NOPE"), FIT, sender=operator)


def test_consumption_opt_in_is_the_owners_choice(registered, operator, alice, bob):
    members = registered.members
    for caller in (bob, operator):
        with reverts_with("MembersNotMeterOwner", meterId=MID, caller=caller):
            members.setConsumptionOptIn(MID, True, sender=caller)
    tx = members.setConsumptionOptIn(MID, True, sender=alice)
    assert event_args(tx, members.ConsumptionOptInSet) == [{"meterId": MID, "optedIn": True}]
    assert tuple(members.meterAttributes(MID)) == (NONE, True)


# --------------------------------------------------------------------------- evidence


def test_each_certificate_carries_the_evidence_of_exactly_its_readings(
    registered, submit, alice, epoch
):
    readings = [reading(ALICE_PV, epoch + i * INTERVAL, gen=500 + i) for i in range(3)]
    submit(readings)
    tx = claim(registered, alice)
    issued = event_args(tx, registered.zcv.CertificateIssued)
    hashes = [reading_hash(r) for r in readings]
    assert [bytes(e["evidence"]) for e in issued] == [fold(hashes[:2]), fold(hashes[2:])]
    assert [e["periodStart"] - epoch for e in issued] == [0, HOUR]
    (hourly,) = event_args(tx, registered.zcv.HourlyIssued)
    assert bytes(hourly["previousEvidence"]) == b"\0" * 32
    assert bytes(hourly["evidence"]) == fold(hashes) == bytes(registered.registry.evidenceHead(MID))
    assert (hourly["firstCertificateId"], hourly["count"], hourly["to"]) == (1, 2, alice.address)


def _tampered(readings, how):
    r = list(readings)
    if how == "omitted":
        return r[:-1]
    if how == "inflated":
        return [replace(r[0], generated_wh=r[0].generated_wh + 1), *r[1:]]
    if how == "reordered":
        return [r[1], r[0], *r[2:]]
    if how == "duplicated":
        return [*r, r[-1]]
    if how == "empty":
        return []
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["omitted", "inflated", "reordered", "duplicated", "empty"])
def test_readings_that_are_not_exactly_the_recorded_ones_are_refused(
    registered, submit, alice, epoch, how
):
    readings = [reading(ALICE_PV, epoch + i * INTERVAL, gen=1000) for i in range(3)]
    submit(readings)
    with reverts_with("ExchangeEvidenceMismatch", meterId=MID):
        send_claim(registered, alice, _tampered(readings, how))
    assert registered.registry.unclaimedWh(MID) == 3000 and registered.zcv.totalSupply() == 0


def test_another_meters_readings_are_refused(registered, submit, alice, epoch):
    submit([reading(ALICE_PV, epoch, gen=100)])
    bobs = [reading("BOB-PV", epoch + i * INTERVAL, gen=20_000) for i in range(2)]
    submit(bobs)
    with reverts_with("ExchangeEvidenceMismatch", meterId=MID):
        send_claim(registered, alice, bobs)


def test_readings_already_claimed_cannot_be_replayed(registered, submit, alice, epoch):
    first = [reading(ALICE_PV, epoch, gen=1000)]
    submit(first)
    claim(registered, alice)
    later = [reading(ALICE_PV, epoch + INTERVAL, gen=10)]
    submit(later)
    with reverts_with("ExchangeEvidenceMismatch", meterId=MID):
        send_claim(registered, alice, first + later)  # from the first claim's checkpoint on only
    send_claim(registered, alice, later)
    assert registered.zcv.totalSupply() == 1000  # hour 0 was already issued: the 10 Wh forfeit


# --------------------------------------------------------------------------- one per hour


def test_no_meter_hour_is_issued_twice_when_its_other_half_lands_late(
    registered, submit, alice, epoch
):
    submit([reading(ALICE_PV, epoch + INTERVAL, gen=800)])  # second half of hour 0
    claim(registered, alice)
    assert registered.exchange.isHourIssued(registered.members, MID, epoch)
    submit([reading(ALICE_PV, epoch, gen=900)])  # the gap-filler: first half of hour 0
    submit([reading(ALICE_PV, epoch + 2 * INTERVAL, gen=300)])  # hour 1
    event = claimed_event(registered, claim(registered, alice))
    assert (event["forfeitedWh"], event["units"], event["certificates"]) == (900, 300, 1)
    starts = [registered.zcv.certificate(i).periodStart - epoch for i in (1, 2)]
    assert starts == [0, HOUR] and registered.zcv.certificateCount() == 2


def test_a_gap_filler_in_the_same_claim_joins_its_hour(registered, submit, alice, epoch):
    submit([reading(ALICE_PV, epoch, gen=100), reading(ALICE_PV, epoch + 2 * INTERVAL, gen=200)])
    submit([reading(ALICE_PV, epoch + INTERVAL, gen=400)])  # recorded last, belongs to hour 0
    readings = readings_since_claim(ape.chain.provider.web3, str(registered.registry.address), MID)
    assert [r.start - epoch for r in readings] == [0, 2 * INTERVAL, INTERVAL]  # recording order
    event = claimed_event(registered, claim(registered, alice))
    assert (event["certificates"], event["units"], event["forfeitedWh"]) == (2, 700, 0)
    assert [registered.zcv.certificate(i).wh for i in (1, 2)] == [500, 200]


def test_a_day_of_a_5kw_household_issues_one_certificate_per_generating_hour(
    registered, submit, alice, epoch
):
    day = [0] * 12 + [200, 500, 900, 1300, 1700, 2000, 2200, 2300, 2300, 2200, 2000, 1700]
    day += [1300, 900, 500, 200] + [0] * 20
    submit([reading(ALICE_PV, epoch + i * INTERVAL, gen=wh) for i, wh in enumerate(day)])
    event = claimed_event(registered, claim(registered, alice))
    assert event["certificates"] == 8 and event["units"] == sum(day)
    for cid in range(1, 9):
        cert = registered.zcv.certificate(cid)
        assert cert.periodEnd - cert.periodStart == HOUR and cert.schemaVersion == 2


def test_invariant_2_per_hour_issued_units_never_exceed_generation_times_rate(
    registered, submit, admin, alice, epoch, chain
):
    effective = (chain.pending_timestamp // HOUR + 1) * HOUR
    registered.exchange.scheduleRate(1337, effective, sender=admin)
    chain.mine(timestamp=effective + 2 * HOUR)
    figures = [(epoch, 999), (epoch + INTERVAL, 1), (effective, 1001), (effective + INTERVAL, 7)]
    submit([reading(ALICE_PV, start, gen=wh) for start, wh in figures])
    claim(registered, alice)
    for cid in (1, 2):
        cert = registered.zcv.certificate(cid)
        rate = registered.exchange.rateAt(cert.periodEnd)
        generated = sum(wh for start, wh in figures if cert.periodStart <= start < cert.periodEnd)
        assert cert.units == generated * rate // 1000
    assert registered.zcv.totalSupply() == 1000 + 1008 * 1337 // 1000
