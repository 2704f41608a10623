"""ValueExchange: who may claim, what a claim mints, the rate schedule, several registries,
pause."""

from __future__ import annotations

import pytest
from conftest import HOUSEHOLD, INTERVAL, SOLAR, reading
from eth_account import Account
from eth_utils import keccak
from registry_helpers import claim_hourly
from zcv_support import event_args, mint, record, reverts_with

from zcx.eip712 import sign_quorum
from zcx.ids import meter_id

ALICE_PV = "ALICE-PV"
MID = meter_id(ALICE_PV)


@pytest.fixture
def exchange(registered):
    return registered.exchange


def claim(registered, owner, label=ALICE_PV):
    return claim_hourly(registered.exchange, registered.registry, meter_id(label), sender=owner)


def issued(registered, mid):
    """Units issued for `mid` of the platform's member registry, over every registry."""
    return registered.exchange.meterClaims(registered.members, mid).issuedUnits


# --------------------------------------------------------------------------- claims


def test_owner_claim_mints_wh_times_rate(registered, exchange, submit, alice, epoch):
    record(registered, submit, ALICE_PV, [1200, 2500, 7], epoch)  # 1.5 clock hours
    assert registered.registry.unclaimedWh(MID) == 3707
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed) == [
        {
            "registry": registered.registry.address,
            "meterId": MID,
            "owner": alice.address,
            "firstCertificateId": 1,
            "certificates": 2,  # one per clock hour
            "wh": 3707,
            "eligibleWh": 3707,
            "units": 3707,  # 3707 Wh x 1000 units/kWh / 1000 = 3.707 ZCV
            "forfeitedWh": 0,
        }
    ]
    first, second = registered.zcv.certificate(1), registered.zcv.certificate(2)
    assert (first.periodStart, first.periodEnd, first.wh, first.units) == (
        epoch,
        epoch + 3600,
        3700,
        3700,
    )
    assert (second.periodStart, second.periodEnd, second.wh) == (epoch + 3600, epoch + 7200, 7)
    assert registered.zcv.balanceOf(alice) == 3707
    assert issued(registered, MID) == 3707
    assert registered.registry.unclaimedWh(MID) == 0
    assert registered.registry.claimedWh(MID) == 3707
    assert exchange.token() == registered.zcv.address
    assert exchange.DEFAULT_UNITS_PER_KWH() == 1000


@pytest.mark.parametrize("who", ["bob", "operator", "admin"])
def test_only_the_meter_owner_can_claim(registered, submit, alice, epoch, request, who):
    caller = request.getfixturevalue(who)
    record(registered, submit, ALICE_PV, [1000], epoch)
    with reverts_with("ExchangeNotMeterOwner", meterId=MID, caller=caller, owner=alice):
        claim(registered, caller)
    assert registered.registry.unclaimedWh(MID) == 1000
    assert registered.zcv.totalSupply() == 0


def test_unknown_meter_cannot_be_claimed(registered, alice):
    with reverts_with("MembersUnknownMeter", meterId=meter_id("NO-SUCH-METER")):
        claim(registered, alice, "NO-SUCH-METER")


def test_nobody_but_the_exchange_can_mark_generation_claimed(registered, submit, alice, epoch):
    record(registered, submit, ALICE_PV, [1000], epoch)
    with reverts_with(
        "AccessControlUnauthorizedAccount", account=alice, neededRole=keccak(text="CLAIMER_ROLE")
    ):
        registered.registry.markClaimed(MID, sender=alice)
    assert registered.registry.unclaimedWh(MID) == 1000


def test_flagged_meter_is_refused_until_cleared(registered, submit, alice, operator, epoch):
    record(registered, submit, ALICE_PV, [1000], epoch)
    registered.members.setMeterFlagged(MID, True, "readings above irradiance", sender=operator)
    with reverts_with("ExchangeMeterFlagged", meterId=MID):
        claim(registered, alice)
    assert registered.registry.unclaimedWh(MID) == 1000
    registered.members.setMeterFlagged(MID, False, "inspected: fine", sender=operator)
    claim(registered, alice)
    assert registered.zcv.balanceOf(alice) == 1000


def test_unaccepted_registry_is_refused(registered, alice):
    with reverts_with("ExchangeUnknownRegistry", registry=alice):
        registered.exchange.claim(alice, MID, [], sender=alice)


def test_attackers_own_registry_is_refused(registered, project, alice, epoch, chain):
    """Alice deploys a registry over the real member registry where her own key is the only
    oracle, records invented generation, and tries to cash it in."""
    key = keccak(text="alice's private oracle")
    fake = alice.deploy(
        project.GenerationRegistry,
        alice,
        registered.members,
        [Account.from_key(key).address],
        1,
        INTERVAL,
        1000,
    )
    readings = [reading(ALICE_PV, epoch, gen=2000)]
    fake.submitBatch(
        [r.as_tuple() for r in readings],
        sign_quorum(readings, chain.chain_id, str(fake.address), [key]),
        sender=alice,
    )
    fake.grantRole(fake.CLAIMER_ROLE(), registered.exchange, sender=alice)
    assert fake.unclaimedWh(MID) == 2000
    with reverts_with("ExchangeUnknownRegistry", registry=fake):
        registered.exchange.claim(fake, MID, [r.as_tuple() for r in readings], sender=alice)
    assert registered.zcv.totalSupply() == 0


def test_removed_registry_is_refused(registered, submit, admin, alice, epoch):
    record(registered, submit, ALICE_PV, [1000], epoch)
    tx = registered.exchange.removeRegistry(registered.registry, sender=admin)
    assert event_args(tx, registered.exchange.RegistryRemoved) == [
        {"registry": registered.registry.address}
    ]
    assert not registered.exchange.isRegistry(registered.registry)
    with reverts_with("ExchangeUnknownRegistry", registry=registered.registry):
        claim(registered, alice)
    with reverts_with("ExchangeUnknownRegistry"):
        registered.exchange.removeRegistry(registered.registry, sender=admin)


def test_registry_administration_is_admin_only(registered, alice, bob):
    with reverts_with("AccessControlUnauthorizedAccount", account=alice):
        registered.exchange.acceptRegistry(bob, sender=alice)
    with reverts_with("AccessControlUnauthorizedAccount", account=alice):
        registered.exchange.removeRegistry(registered.registry, sender=alice)


def test_nothing_to_claim(registered, submit, alice, epoch):
    with reverts_with("RegistryNothingToClaim", meterId=MID):
        claim(registered, alice)
    record(registered, submit, ALICE_PV, [1000], epoch)
    claim(registered, alice)
    with reverts_with("RegistryNothingToClaim", meterId=MID):
        claim(registered, alice)
    record(registered, submit, ALICE_PV, [0], epoch)  # a dark interval adds no generation
    with reverts_with("RegistryNothingToClaim", meterId=MID):
        claim(registered, alice)


def test_second_claim_gets_only_new_generation(registered, exchange, submit, alice, epoch):
    record(registered, submit, ALICE_PV, [1000, 1100], epoch)
    claim(registered, alice)
    record(registered, submit, ALICE_PV, [300, 400, 500], epoch)
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert (claimed["wh"], claimed["units"]) == (1200, 1200)
    assert (claimed["firstCertificateId"], claimed["certificates"]) == (2, 2)
    certs = [registered.zcv.certificate(i) for i in (1, 2, 3)]
    assert [(c.periodStart - epoch, c.periodEnd - epoch, c.wh) for c in certs] == [
        (0, 3600, 2100),
        (3600, 7200, 700),
        (7200, 10800, 500),
    ]
    assert registered.registry.claimedWh(MID) == 3300
    assert issued(registered, MID) == 3300


def test_a_gap_in_readings_gets_no_certificate(registered, submit, alice, epoch):
    submit([reading(ALICE_PV, epoch, gen=100), reading(ALICE_PV, epoch + 4 * INTERVAL, gen=200)])
    cid = mint(registered, submit, alice, ALICE_PV, [300], epoch)  # from the next hour: 3
    certs = [registered.zcv.certificate(i) for i in (cid, cid + 1, cid + 2)]
    assert [(c.periodStart - epoch, c.periodEnd - epoch, c.wh) for c in certs] == [
        (0, 3600, 100),
        (7200, 10800, 200),  # hour 1 had no reading: no certificate spans it
        (10800, 14400, 300),
    ]
    assert registered.zcv.certificateCount() == 3


# --------------------------------------------------------------------------- rates


def test_rate_schedule_applies_from_its_time(
    registered, exchange, submit, admin, alice, epoch, chain
):
    now = chain.pending_timestamp
    effective = now + 3600
    tx = exchange.scheduleRate(2000, effective, sender=admin)
    assert event_args(tx, exchange.RateScheduled) == [
        {"unitsPerKwh": 2000, "effectiveFrom": effective}
    ]
    assert [tuple(r) for r in exchange.rates()] == [(0, 1000), (effective, 2000)]
    assert exchange.rateAt(effective - 1) == 1000 and exchange.rateAt(effective) == 2000

    record(registered, submit, ALICE_PV, [1000], epoch)
    tx = claim(registered, alice)  # before its time: the old rate
    assert event_args(tx, exchange.Claimed)[0]["units"] == 1000

    # Generation that ends once the new rate is in force gets it.
    start = effective // INTERVAL * INTERVAL
    chain.mine(timestamp=start + INTERVAL)
    submit([reading(ALICE_PV, start, gen=1000)])
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert claimed["units"] == 2000  # the hour ends under the new rate
    assert registered.zcv.certificate(2).units == 2000 and registered.zcv.certificate(2).wh == 1000
    assert issued(registered, MID) == 3000


def test_rate_in_the_past_or_out_of_order_is_refused(exchange, admin, chain):
    now = chain.pending_timestamp
    with reverts_with("ExchangeRateInPast", effectiveFrom=now - 60):
        exchange.scheduleRate(2000, now - 60, sender=admin)
    exchange.scheduleRate(2000, now + 7200, sender=admin)
    with reverts_with(
        "ExchangeRateOutOfOrder", effectiveFrom=now + 3600, lastEffectiveFrom=now + 7200
    ):
        exchange.scheduleRate(1500, now + 3600, sender=admin)
    exchange.scheduleRate(1500, now + 7200, sender=admin)  # same time: the later entry wins
    assert exchange.rateAt(now + 7200) == 1500
    assert len(exchange.rates()) == 3


def test_only_the_admin_schedules_rates(exchange, alice, operator, chain):
    for caller in (alice, operator):
        with reverts_with("AccessControlUnauthorizedAccount", account=caller):
            exchange.scheduleRate(10**6, chain.pending_timestamp + 60, sender=caller)
    assert len(exchange.rates()) == 1


def _rate_now(exchange, admin, chain, units_per_kwh) -> int:
    """Puts `units_per_kwh` in force; returns a grid time from which generation ends under it
    (readings up to three intervals after it are already in the past)."""
    effective = chain.pending_timestamp + 5
    exchange.scheduleRate(units_per_kwh, effective, sender=admin)
    start = (effective // INTERVAL + 1) * INTERVAL
    chain.mine(timestamp=start + 3 * INTERVAL)
    return start


def test_units_round_down(registered, exchange, submit, admin, alice, epoch, chain):
    start = _rate_now(exchange, admin, chain, 1500)
    record(registered, submit, ALICE_PV, [999], start)
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed)[0]["units"] == 1498  # floor(999 x 1.5)
    assert issued(registered, MID) * 1000 <= 999 * 1500


def test_an_hour_worth_less_than_a_unit_gets_no_certificate(
    registered, exchange, submit, admin, alice, epoch, chain
):
    start = _rate_now(exchange, admin, chain, 1)
    record(registered, submit, ALICE_PV, [999], start)
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert (claimed["certificates"], claimed["units"], claimed["eligibleWh"]) == (0, 0, 999)
    assert registered.zcv.totalSupply() == 0 and registered.zcv.certificateCount() == 0
    assert registered.registry.unclaimedWh(MID) == 0  # handed out: the hour is done


# --------------------------------------------------------------------------- several registries


@pytest.fixture
def second_platform(registered, project, admin, operator, alice, oracle_addresses, epoch):
    """Another platform (its own member registry and ledger) served by the same exchange."""
    members = admin.deploy(project.MemberRegistry, admin, operator)
    ledger = admin.deploy(
        project.GenerationRegistry, admin, members, oracle_addresses, 2, INTERVAL, 1000
    )
    members.registerMember(alice, "Alice Tanaka (Kansai)", HOUSEHOLD, sender=operator)
    members.registerMeter(
        meter_id("ALICE-KANSAI"), alice, SOLAR, 3_000, "KEPCO-27", epoch, sender=operator
    )
    return members, ledger


def test_second_registry_issues_certificates_of_its_own(
    registered, exchange, submit, second_platform, admin, alice, oracle_keys, epoch, chain
):
    members, ledger = second_platform
    mid = meter_id("ALICE-KANSAI")
    readings = [reading("ALICE-KANSAI", epoch, gen=1500)]
    # Signatures for the first registry's domain are worthless on the second.
    with reverts_with("RegistryUnknownSigner"):
        ledger.submitBatch(
            [r.as_tuple() for r in readings],
            sign_quorum(
                readings, chain.chain_id, str(registered.registry.address), oracle_keys[:2]
            ),
            sender=alice,
        )
    ledger.submitBatch(
        [r.as_tuple() for r in readings],
        sign_quorum(readings, chain.chain_id, str(ledger.address), oracle_keys[:2]),
        sender=alice,
    )
    with reverts_with("ExchangeUnknownRegistry", registry=ledger):
        claim_hourly(exchange, ledger, mid, sender=alice)

    tx = exchange.acceptRegistry(ledger, sender=admin)
    assert event_args(tx, exchange.RegistryAccepted) == [{"registry": ledger.address}]
    with reverts_with("ExchangeRegistryAlreadyAccepted", registry=ledger):
        exchange.acceptRegistry(ledger, sender=admin)
    # Accepted, but the ledger has not yet let the exchange mark its generation claimed.
    with reverts_with("AccessControlUnauthorizedAccount", account=exchange):
        claim_hourly(exchange, ledger, mid, sender=alice)
    ledger.grantRole(ledger.CLAIMER_ROLE(), exchange, sender=admin)

    first = mint(registered, submit, alice, ALICE_PV, [1000], epoch)
    tx = claim_hourly(exchange, ledger, mid, sender=alice)
    second = event_args(tx, exchange.Claimed)[0]["firstCertificateId"]
    a, b = registered.zcv.certificate(first), registered.zcv.certificate(second)
    assert a.registry == registered.registry.address and b.registry == ledger.address
    assert (b.schemaVersion, b.meterId, b.wh) == (2, mid, 1500)
    # Static attributes are referenced through the registry's member registry, not copied.
    assert ledger.memberRegistry() == members.address
    meter = members.meter(mid)
    assert (members.member(alice).name, meter.zone, meter.spec.capacityW) == (
        "Alice Tanaka (Kansai)",
        "KEPCO-27",
        3000,
    )
    assert bytes(b.evidence) == bytes(ledger.evidenceHead(mid))
    assert exchange.meterClaims(members, mid).issuedUnits == 1500
    assert exchange.meterClaims(registered.members, mid).issuedUnits == 0
    assert registered.zcv.balanceOf(alice) == 2500


# --------------------------------------------------------------------------- pause


def test_pause_stops_claims(registered, exchange, submit, admin, alice, bob, epoch):
    record(registered, submit, ALICE_PV, [1000], epoch)
    with reverts_with("AccessControlUnauthorizedAccount", account=bob):
        exchange.pause(sender=bob)
    exchange.pause(sender=admin)
    assert exchange.paused()
    with reverts_with("EnforcedPause"):
        claim(registered, alice)
    with reverts_with("AccessControlUnauthorizedAccount", account=bob):
        exchange.unpause(sender=bob)
    exchange.unpause(sender=admin)
    claim(registered, alice)
    assert registered.zcv.balanceOf(alice) == 1000


def test_paused_registry_stops_claims(registered, submit, admin, alice, epoch):
    record(registered, submit, ALICE_PV, [1000], epoch)
    registered.registry.pause(sender=admin)
    with reverts_with("EnforcedPause"):
        claim(registered, alice)
    registered.registry.unpause(sender=admin)
    claim(registered, alice)
    assert registered.zcv.balanceOf(alice) == 1000


# --------------------------------------------------------------- rate at the generation's end


def test_waiting_for_an_announced_higher_rate_gains_nothing(
    registered, exchange, submit, admin, alice, epoch, chain
):
    """The rate is the one in force when the claimed generation ended, not at claim time."""
    record(registered, submit, ALICE_PV, [1000, 1000], epoch)  # ends 30 days ago
    effective = chain.pending_timestamp + 3600
    exchange.scheduleRate(5000, effective, sender=admin)
    chain.mine(timestamp=effective + 60)
    assert exchange.rateAt(chain.pending_timestamp) == 5000  # the higher rate is in force now
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert (claimed["wh"], claimed["units"]) == (2000, 2000)  # 1000 units/kWh, not 5000
    assert registered.zcv.certificate(claimed["firstCertificateId"]).periodEnd < effective


def test_each_hour_gets_the_rate_at_its_own_end(
    registered, exchange, submit, admin, alice, epoch, chain
):
    """Hourly certificates make the rate exact per hour: a late gap-filler claimed after a rate
    change still gets the rate of its own hour."""
    effective = (chain.pending_timestamp // 3600 + 2) * 3600
    exchange.scheduleRate(3000, effective, sender=admin)
    chain.mine(timestamp=effective + INTERVAL)
    submit([reading(ALICE_PV, effective - INTERVAL, gen=500)])  # its hour ends at `effective`
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed)[0]["units"] == 1500
    submit([reading(ALICE_PV, epoch, gen=500)])  # a gap-filler a month back
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert claimed["units"] == 500  # the rate at epoch + 1 h, not at the meter's lastEnd
    cert = registered.zcv.certificate(claimed["firstCertificateId"])
    assert (cert.periodStart, cert.periodEnd) == (epoch, epoch + 3600)


# --------------------------------------------------------------------------- cancel a rate


def test_far_future_rate_scheduled_by_mistake_can_be_cancelled(exchange, admin, chain):
    now = chain.pending_timestamp
    mistake = now + 10 * 365 * 86400
    exchange.scheduleRate(1, mistake, sender=admin)
    with reverts_with(
        "ExchangeRateOutOfOrder", effectiveFrom=now + 3600, lastEffectiveFrom=mistake
    ):
        exchange.scheduleRate(1200, now + 3600, sender=admin)  # blocked by the mistake
    tx = exchange.cancelScheduledRate(1, mistake, sender=admin)
    assert event_args(tx, exchange.RateCancelled) == [
        {"index": 1, "unitsPerKwh": 1, "effectiveFrom": mistake}
    ]
    assert [tuple(r) for r in exchange.rates()] == [(0, 1000)]
    exchange.scheduleRate(1200, now + 3600, sender=admin)  # no longer blocked
    assert exchange.rateAt(mistake) == 1200


def test_cancel_keeps_the_schedule_sorted_and_checks_index_and_time(exchange, admin, chain):
    now = chain.pending_timestamp
    times = [now + 3600, now + 7200, now + 10800]
    for i, t in enumerate(times):
        exchange.scheduleRate(2000 + i, t, sender=admin)
    with reverts_with("ExchangeRateNotFound", index=1, effectiveFrom=times[1]):
        exchange.cancelScheduledRate(1, times[1], sender=admin)  # index 1 is times[0]
    with reverts_with("ExchangeRateNotFound", index=9, effectiveFrom=times[1]):
        exchange.cancelScheduledRate(9, times[1], sender=admin)
    exchange.cancelScheduledRate(2, times[1], sender=admin)
    assert [tuple(r) for r in exchange.rates()] == [(0, 1000), (times[0], 2000), (times[2], 2002)]
    assert exchange.rateAt(times[1]) == 2000 and exchange.rateAt(times[2]) == 2002


def test_rate_in_force_cannot_be_cancelled(exchange, admin, chain):
    with reverts_with("ExchangeRateInForce", index=0, effectiveFrom=0):
        exchange.cancelScheduledRate(0, 0, sender=admin)
    effective = chain.pending_timestamp + 60
    exchange.scheduleRate(3000, effective, sender=admin)
    chain.mine(timestamp=effective)  # in force from this very second
    with reverts_with("ExchangeRateInForce", index=1, effectiveFrom=effective):
        exchange.cancelScheduledRate(1, effective, sender=admin)
    assert len(exchange.rates()) == 2


@pytest.mark.parametrize("who", ["alice", "operator"])
def test_only_the_admin_cancels_rates(exchange, admin, chain, request, who):
    caller = request.getfixturevalue(who)
    effective = chain.pending_timestamp + 3600
    exchange.scheduleRate(3000, effective, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=caller):
        exchange.cancelScheduledRate(1, effective, sender=caller)
    assert len(exchange.rates()) == 2


# ------------------------------------------------- two registries over one member registry


@pytest.fixture
def twin_ledger(registered, project, admin, oracle_addresses):
    """A second accepted generation registry over the SAME member registry (same meters)."""
    ledger = admin.deploy(
        project.GenerationRegistry, admin, registered.members, oracle_addresses, 2, INTERVAL, 1000
    )
    registered.exchange.acceptRegistry(ledger, sender=admin)
    ledger.grantRole(ledger.CLAIMER_ROLE(), registered.exchange, sender=admin)
    return ledger


def _submit_to(ledger, readings, chain, oracle_keys, sender):
    ledger.submitBatch(
        [r.as_tuple() for r in readings],
        sign_quorum(readings, chain.chain_id, str(ledger.address), oracle_keys[:2]),
        sender=sender,
    )


def test_same_generation_through_two_registries_is_claimed_once(
    registered, exchange, submit, twin_ledger, alice, oracle_keys, epoch, chain
):
    readings = [reading(ALICE_PV, epoch + i * INTERVAL, gen=1000) for i in range(3)]
    submit(readings)
    _submit_to(twin_ledger, readings, chain, oracle_keys, alice)  # the same generation again
    claim(registered, alice)
    supply = registered.zcv.totalSupply()
    with reverts_with(
        "ExchangeGenerationClaimedElsewhere",
        meterId=MID,
        periodStart=epoch,
        claimedUntil=epoch + 3 * INTERVAL,
    ):
        claim_hourly(exchange, twin_ledger, MID, sender=alice)
    assert registered.zcv.totalSupply() == supply == 3000  # the second claim got nothing
    record_ = exchange.meterClaims(registered.members, MID)
    assert (record_.registry, record_.claimedUntil, record_.claimedWh, record_.issuedUnits) == (
        registered.registry.address,
        epoch + 3 * INTERVAL,
        3000,
        3000,
    )
    assert twin_ledger.unclaimedWh(MID) == 3000  # left unclaimed there, never minted


def test_a_meter_may_move_to_another_registry_for_later_generation_only(
    registered, exchange, submit, twin_ledger, alice, oracle_keys, epoch, chain
):
    first = [reading(ALICE_PV, epoch + i * INTERVAL, gen=1000) for i in range(2)]
    submit(first)
    claim(registered, alice)
    later = [reading(ALICE_PV, epoch + (2 + i) * INTERVAL, gen=700) for i in range(2)]
    _submit_to(twin_ledger, later, chain, oracle_keys, alice)
    tx = claim_hourly(exchange, twin_ledger, MID, sender=alice)  # after what was claimed: fine
    assert event_args(tx, exchange.Claimed)[0]["wh"] == 1400
    # The old registry now records the same later generation: claiming it is refused.
    submit(later)
    with reverts_with("ExchangeGenerationClaimedElsewhere", claimedUntil=epoch + 4 * INTERVAL):
        claim(registered, alice)
    # And the new registry cannot reach back before its own start (e.g. a copy of `first`).
    _submit_to(twin_ledger, first, chain, oracle_keys, alice)
    with reverts_with(
        "ExchangeGenerationClaimedElsewhere", periodStart=epoch, claimedUntil=first[-1].end
    ):
        claim_hourly(exchange, twin_ledger, MID, sender=alice)
    assert issued(registered, MID) == 2000 + 1400
