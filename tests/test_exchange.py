"""ValueExchange: who may claim, what a claim mints, the rate schedule, several registries,
pause."""

from __future__ import annotations

import pytest
from conftest import HOUSEHOLD, INTERVAL, SOLAR, reading
from eth_account import Account
from eth_utils import keccak
from zcv_support import event_args, mint, record, reverts_with

from zcx.eip712 import sign_quorum
from zcx.ids import meter_id

ALICE_PV = "ALICE-PV"
MID = meter_id(ALICE_PV)


@pytest.fixture
def exchange(registered):
    return registered.exchange


def claim(registered, owner, label=ALICE_PV):
    return registered.exchange.claim(registered.registry, meter_id(label), sender=owner)


# --------------------------------------------------------------------------- claims


def test_owner_claim_mints_wh_times_rate(registered, exchange, submit, alice, epoch):
    record(registered, submit, ALICE_PV, [1200, 2500, 7], epoch)
    assert registered.registry.unclaimedWh(MID) == 3707
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed) == [
        {
            "registry": registered.registry.address,
            "meterId": MID,
            "owner": alice.address,
            "certificateId": 1,
            "wh": 3707,
            "units": 3707,  # 3707 Wh x 1000 units/kWh / 1000 = 3.707 ZCV
            "unitsPerKwh": 1000,
        }
    ]
    assert registered.zcv.balanceOf(alice) == 3707
    assert exchange.issuedUnits(registered.registry, MID) == 3707
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
        registered.exchange.claim(alice, MID, sender=alice)


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
        registered.exchange.claim(fake, MID, sender=alice)
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
    assert claimed["wh"] == 1200 and claimed["units"] == 1200 and claimed["certificateId"] == 2
    first, second = registered.zcv.certificate(1), registered.zcv.certificate(2)
    assert (first.periodStart, first.periodEnd) == (epoch, epoch + 2 * INTERVAL)
    assert second.periodStart == first.periodEnd
    assert second.periodEnd == epoch + 5 * INTERVAL
    assert (first.wh, second.wh) == (2100, 1200)
    assert registered.registry.claimedWh(MID) == 3300
    assert exchange.issuedUnits(registered.registry, MID) == 3300


def test_certificate_period_spans_a_gap_in_readings(registered, submit, alice, epoch):
    submit([reading(ALICE_PV, epoch, gen=100), reading(ALICE_PV, epoch + 4 * INTERVAL, gen=200)])
    cid = mint(registered, submit, alice, ALICE_PV, [300], epoch)
    cert = registered.zcv.certificate(cid)
    assert (cert.periodStart, cert.periodEnd, cert.wh) == (epoch, epoch + 6 * INTERVAL, 600)


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

    chain.mine(timestamp=effective)
    record(registered, submit, ALICE_PV, [1000], epoch)
    tx = claim(registered, alice)
    (claimed,) = event_args(tx, exchange.Claimed)
    assert (claimed["units"], claimed["unitsPerKwh"]) == (2000, 2000)
    assert registered.zcv.certificate(2).units == 2000 and registered.zcv.certificate(2).wh == 1000
    assert exchange.issuedUnits(registered.registry, MID) == 3000


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


def _rate_now(exchange, admin, chain, units_per_kwh):
    effective = chain.pending_timestamp + 5
    exchange.scheduleRate(units_per_kwh, effective, sender=admin)
    chain.mine(timestamp=effective)


def test_units_round_down(registered, exchange, submit, admin, alice, epoch, chain):
    _rate_now(exchange, admin, chain, 1500)
    record(registered, submit, ALICE_PV, [999], epoch)
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed)[0]["units"] == 1498  # floor(999 x 1.5)
    assert exchange.issuedUnits(registered.registry, MID) * 1000 <= 999 * 1500


def test_claim_worth_less_than_a_unit_is_refused_and_keeps_the_generation(
    registered, exchange, submit, admin, alice, epoch, chain
):
    _rate_now(exchange, admin, chain, 1)
    record(registered, submit, ALICE_PV, [999], epoch)
    with reverts_with("ExchangeNothingToIssue", meterId=MID, wh=999):
        claim(registered, alice)
    assert registered.registry.unclaimedWh(MID) == 999  # the whole claim was undone
    record(registered, submit, ALICE_PV, [1], epoch)
    tx = claim(registered, alice)
    assert event_args(tx, exchange.Claimed)[0]["units"] == 1


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
        exchange.claim(ledger, mid, sender=alice)

    tx = exchange.acceptRegistry(ledger, sender=admin)
    assert event_args(tx, exchange.RegistryAccepted) == [{"registry": ledger.address}]
    with reverts_with("ExchangeRegistryAlreadyAccepted", registry=ledger):
        exchange.acceptRegistry(ledger, sender=admin)
    # Accepted, but the ledger has not yet let the exchange mark its generation claimed.
    with reverts_with("AccessControlUnauthorizedAccount", account=exchange):
        exchange.claim(ledger, mid, sender=alice)
    ledger.grantRole(ledger.CLAIMER_ROLE(), exchange, sender=admin)

    first = mint(registered, submit, alice, ALICE_PV, [1000], epoch)
    tx = exchange.claim(ledger, mid, sender=alice)
    second = event_args(tx, exchange.Claimed)[0]["certificateId"]
    a, b = registered.zcv.certificate(first), registered.zcv.certificate(second)
    assert a.registry == registered.registry.address and b.registry == ledger.address
    assert (b.ownerName, b.zone, b.capacityW, b.wh) == (
        "Alice Tanaka (Kansai)",
        "KEPCO-27",
        3000,
        1500,
    )
    assert bytes(b.evidence) == bytes(ledger.evidenceHead(mid))
    assert exchange.issuedUnits(ledger, mid) == 1500
    assert exchange.issuedUnits(registered.registry, mid) == 0
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
