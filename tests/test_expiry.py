"""Expiry and vintage (issue 12 point 4 and point 3's plain-retire rule).

Certificates expire `expiryMonths` months (1/12 of 365.2425 days each) after their hour ends: a
deployment setting, 24 by default. An expired lot is frozen exactly like a revoked one, so every
path that moves or retires units refuses it; each path has a test here, travelling Anvil's clock
with evm_increaseTime (Ape reverts the chain, clock included, after each test). A retirement's
consumption period must lie within the vintage year (JST) of every certificate it retires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import ape
import pytest
from audit_support import deployment_of
from conftest import INTERVAL, reading
from eth_utils import keccak
from market_support import UNIT_PRICE, approve, buy, held, list_lots
from registry_helpers import claim_hourly
from zcv_support import event_args, reverts_with

from zcx.deploy import DEFAULT_EXPIRY_MONTHS, describe
from zcx.holder import ZcxClient, _project
from zcx.ids import meter_id

pytest_plugins = ["market_support"]  # the market fixtures

MONTH = 2_629_746  # 365.2425 days / 12
HOUR = 3600
DAY = 86400
JST = timezone(timedelta(hours=9))
OLD, FRESH = 1, 2  # certificate ids: the hour at epoch, and one 10 days later


@pytest.fixture
def two_hours(registered, submit, alice, epoch):
    """Alice's certificates 1 (hour `epoch`, 1,000 units) and 2 (10 days later, 1,000 units)."""
    later = epoch + 10 * DAY
    submit(
        [reading("ALICE-PV", t + i * INTERVAL, gen=500) for t in (epoch, later) for i in range(2)]
    )
    claim_hourly(registered.exchange, registered.registry, meter_id("ALICE-PV"), sender=alice)
    assert [registered.zcv.certificate(c).periodStart for c in (OLD, FRESH)] == [epoch, later]
    return registered.zcv


def travel_past(chain, timestamp):
    """Anvil time travel: the next blocks are at or after `timestamp`."""
    chain.provider.make_request("evm_increaseTime", [max(0, timestamp - chain.pending_timestamp)])
    chain.mine()
    assert chain.blocks.head.timestamp >= timestamp


def expire_old(zcv, chain):
    """Travels past certificate 1's expiry; certificate 2 has 10 days to go."""
    travel_past(chain, zcv.expiresAt(OLD))
    assert zcv.isFrozen(OLD) and not zcv.isFrozen(FRESH)


def expire_both(zcv, chain):
    travel_past(chain, zcv.expiresAt(FRESH))
    assert zcv.isFrozen(OLD) and zcv.isFrozen(FRESH)


# --------------------------------------------------------------------------- the setting


def test_expiry_is_24_months_of_a_mean_gregorian_year_after_the_hour_ends(
    two_hours, registered, epoch
):
    zcv = two_hours
    assert zcv.expiryMonths() == 24 and zcv.SECONDS_PER_MONTH() == MONTH
    assert zcv.expiresAt(OLD) == epoch + HOUR + 24 * MONTH
    assert 24 * MONTH == 730.485 * DAY  # two mean Gregorian years
    assert not zcv.isFrozen(OLD)


def test_expiry_is_a_deployment_setting_checked_at_deploy(admin, operator, project):
    zcv = admin.deploy(project.ZeroCarbonValue, admin, operator, 6)
    assert zcv.expiryMonths() == 6
    for bad in (0, 1201):
        # A constructor's revert reaches Ape undecoded: match the ABI-encoded error itself.
        expected = keccak(text="ZcvBadExpiry(uint256)")[:4] + bad.to_bytes(32, "big")
        with ape.reverts() as info:
            admin.deploy(project.ZeroCarbonValue, admin, operator, bad)
        assert expected.hex() in str(info.value.revert_message)


def test_the_deployment_record_keeps_the_expiry(registered, chain, admin, operator):
    record = describe(registered, chain.blocks.head.number, "ethereum:local:test", "a", "o", [], 1)
    assert record.config["expiry_months"] == 24 == DEFAULT_EXPIRY_MONTHS


def test_a_certificate_is_not_frozen_the_day_before_it_expires(two_hours, chain):
    travel_past(chain, two_hours.expiresAt(OLD) - DAY)
    assert not two_hours.isFrozen(OLD)


# --------------------------------------------------------------------------- every path


def test_transfer_freezes_the_expired_lot_and_spends_only_live_units(two_hours, alice, bob, chain):
    zcv = two_hours
    expire_old(zcv, chain)
    assert zcv.frozenBalanceOf(alice) == 1000
    tx = zcv.transfer(bob, 1000, sender=alice)  # all that is free: certificate 2
    assert zcv.lotBalance(bob, FRESH) == 1000 and zcv.lotBalance(bob, OLD) == 0
    assert {e["certificateId"] for e in event_args(tx, zcv.LotFrozen)} <= {OLD}
    with reverts_with("ZcvCertificateExpired", certificateId=OLD, expiredAt=zcv.expiresAt(OLD)):
        zcv.transfer(bob, 1, sender=alice)
    assert zcv.balanceOf(alice) == 1000 == zcv.frozenBalanceOf(alice)


def test_transfer_from_refuses_expired_units(two_hours, alice, bob, carol, chain):
    zcv = two_hours
    zcv.approve(bob, 2000, sender=alice)
    expire_both(zcv, chain)
    with reverts_with("ZcvCertificateExpired"):
        zcv.transferFrom(alice, carol, 1, sender=bob)
    assert zcv.balanceOf(carol) == 0 and zcv.allowance(alice, bob) == 2000


def test_transfer_lots_naming_an_expired_certificate_reverts(two_hours, alice, bob, chain):
    zcv = two_hours
    expire_old(zcv, chain)
    with reverts_with("ZcvCertificateExpired", certificateId=OLD):
        zcv.transferLots(bob, [(OLD, 1)], sender=alice)
    with reverts_with("ZcvCertificateExpired", certificateId=OLD):
        zcv.transferLots(bob, [(OLD, 1), (FRESH, 1)], sender=alice)
    zcv.transferLots(bob, [(FRESH, 1)], sender=alice)  # the live certificate still moves


def test_transfer_lots_from_refuses_expired_units(two_hours, alice, bob, carol, chain):
    zcv = two_hours
    zcv.approve(bob, 2000, sender=alice)
    expire_old(zcv, chain)
    with reverts_with("ZcvCertificateExpired", certificateId=OLD):
        zcv.transferLotsFrom(alice, carol, [(OLD, 1)], sender=bob)


def test_pay_refuses_expired_units(two_hours, alice, bob, chain):
    zcv = two_hours
    expire_both(zcv, chain)
    with reverts_with("ZcvCertificateExpired"):
        zcv.pay(bob, 1, b"\x01" * 32, sender=alice)
    assert zcv.counters(alice).used == 0


def test_retire_refuses_expired_units(two_hours, alice, chain, epoch):
    zcv = two_hours
    expire_both(zcv, chain)
    start, end = _vintage_january(epoch)
    with reverts_with("ZcvCertificateExpired"):
        zcv.retire(1, "Alice household", "r", start, end, sender=alice)
    assert zcv.totalRetired() == 0


def test_retire_lots_refuses_expired_units(two_hours, alice, chain, epoch):
    zcv = two_hours
    expire_old(zcv, chain)
    start, end = _vintage_january(epoch)
    with reverts_with("ZcvCertificateExpired", certificateId=OLD):
        zcv.retireLots([(OLD, 1)], "Alice household", "r", start, end, sender=alice)
    zcv.retireLots([(FRESH, 1)], "Alice household", "r", start, end, sender=alice)
    assert zcv.certificate(FRESH).retiredUnits == 1 and zcv.certificate(OLD).retiredUnits == 0


def test_evict_moves_an_expired_lot_to_the_frozen_ledger(two_hours, alice, carol, chain):
    zcv = two_hours
    with reverts_with("ZcvNothingToEvict"):
        zcv.evict(alice, OLD, sender=carol)  # not yet expired
    expire_old(zcv, chain)
    tx = zcv.evict(alice, OLD, sender=carol)  # permissionless
    assert event_args(tx, zcv.LotFrozen) == [{"holder": alice, "certificateId": OLD, "units": 1000}]
    assert zcv.lotBalance(alice, OLD) == 1000 and zcv.frozenBalanceOf(alice) == 1000
    assert [tuple(lot) for lot in zcv.lotsOf(alice, 0, 10)] == [(FRESH, 1000), (OLD, 1000)]


def test_market_listing_and_fill_refuse_expired_units(
    two_hours, registered, market, funded, alice, bob, chain
):
    zcv = two_hours
    approve(registered, market, alice)
    listing = list_lots(market, alice, [(OLD, 400)], expiry=zcv.expiresAt(FRESH), chain=chain)
    expire_old(zcv, chain)
    with ape.reverts(market.MarketCertificateRevoked, listingId=listing, certificateId=OLD):
        buy(market, bob, listing, 100, chain)
    with ape.reverts(market.MarketCertificateRevoked, certificateId=OLD):
        list_lots(market, alice, [(OLD, 1)], expiry=zcv.expiresAt(FRESH), chain=chain)
    # Cancelling returns nothing: the expired units stay at the market, credited to the seller.
    tx = market.cancel(listing, sender=alice)
    assert event_args(tx, market.Cancelled)[0]["frozenUnits"] == 400
    assert held(registered, bob) == {} and market.depositOf(alice, OLD) == 400
    live = list_lots(market, alice, [(FRESH, 10)], price=UNIT_PRICE, chain=chain)
    buy(market, bob, live, 10, chain)
    assert held(registered, bob) == {FRESH: 10}


# --------------------------------------------------------------------------- vintage


def _vintage_january(timestamp: int) -> tuple[int, int]:
    year = datetime.fromtimestamp(timestamp, JST).year
    start = int(datetime(year, 1, 1, tzinfo=JST).timestamp())
    return start, start + 31 * DAY


def _year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=JST).timestamp())


def test_retiring_one_years_value_for_another_years_consumption_reverts(two_hours, alice, epoch):
    zcv = two_hours
    vintage = datetime.fromtimestamp(epoch, JST).year
    assert zcv.vintageYear(OLD) == vintage
    attempts = {
        "2019 consumption": (_year_start(2019), _year_start(2019) + 31 * DAY),
        "the year before": (_year_start(vintage - 1), _year_start(vintage)),
        "the year after": (_year_start(vintage + 1), _year_start(vintage + 1) + DAY),
        "straddling the new year": (_year_start(vintage + 1) - DAY, _year_start(vintage + 1) + 1),
    }
    for why, (start, end) in attempts.items():
        plain = (10, "Alice household", why, start, end)
        named = ([(OLD, 10)], "Alice household", why, start, end)
        for method, args in ((zcv.retire, plain), (zcv.retireLots, named)):
            with reverts_with(
                "ZcvConsumptionOutsideVintage",
                vintageYear=vintage,
                consumptionStart=start,
                consumptionEnd=end,
            ):
                method(*args, sender=alice)
    # The whole vintage year, to its last second in JST, is allowed.
    zcv.retire(
        10, "Alice household", "FY", _year_start(vintage), _year_start(vintage + 1), sender=alice
    )
    assert zcv.totalRetired() == 10


@pytest.mark.parametrize(
    "last_second",
    [
        "2026-12-31T14:59:59+00:00",  # 23:59:59 JST: still 2026
        "2026-12-31T15:00:00+00:00",  # 00:00 JST 1 January 2027
        "2028-02-29T12:00:00+00:00",  # a leap day
        "2100-03-01T00:00:00+00:00",  # 2100 is not a leap year
        "1970-01-01T00:00:00+00:00",
    ],
)
def test_vintage_year_is_the_jst_calendar_year(registered, admin, accounts, last_second):
    issuer = accounts[6]
    registered.zcv.grantRole(registered.zcv.ISSUER_ROLE(), issuer, sender=admin)
    end = int(datetime.fromisoformat(last_second).timestamp()) + 1
    start = end - 1
    tx = registered.zcv.issue(
        issuer,
        (registered.registry.address, b"\x11" * 32, "", 0, 1, start, end, "", 0, b"\0" * 32, 1),
        sender=issuer,
    )
    (issued,) = event_args(tx, registered.zcv.CertificateIssued)
    expected = datetime.fromtimestamp(start, UTC).astimezone(JST).year
    assert registered.zcv.vintageYear(issued["certificateId"]) == expected


def test_the_sdk_shows_a_certificates_expiry_vintage_and_frozen_state(
    two_hours, registered, chain, epoch
):
    client = ZcxClient(deployment_of(registered, chain), _project())
    expire_old(two_hours, chain)
    old, fresh = client.certificate(OLD), client.certificate(FRESH)
    assert (old.frozen, old.revoked, old.expires_at) == (True, False, two_hours.expiresAt(OLD))
    assert (fresh.frozen, fresh.vintage_year) == (False, datetime.fromtimestamp(epoch, JST).year)
