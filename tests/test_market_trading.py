"""Market trading paths: list, partial fill, cancel, expiry, fee, restrictions and provenance."""

from __future__ import annotations

import ape
import pytest
from market_support import (
    DAY,
    FEE_BPS,
    SOLAR,
    UNIT_PRICE,
    WIND,
    YEN,
    buy,
    deposit,
    event_args,
    held,
    issue,
    list_lots,
    lots_of,
)
from zcv_support import VINTAGE_START, mint

from zcx.market import ANY_METHOD

OPEN, FILLED, CANCELLED = 1, 2, 3

pytest_plugins = ["market_support"]  # the market fixtures


def test_list_takes_exact_certificates_into_the_market(zcx, market, issuer, alice, chain):
    a = issue(zcx, issuer, alice, 1000)
    b = issue(zcx, issuer, alice, 500, method=WIND)
    zcx.zcv.approve(market, 800, sender=alice)
    tx = market.list(
        [[a, 600], [b, 200]],
        UNIT_PRICE,
        chain.pending_timestamp + DAY,
        ANY_METHOD,
        0,
        0,
        sender=alice,
    )
    (listed,) = event_args(tx, market.Listed)
    assert listed["certificateIds"] == [a, b] and listed["certificateUnits"] == [600, 200]
    assert listed["units"] == 800 and listed["feeBps"] == FEE_BPS
    assert event_args(tx, market.DepositUsed) == []  # all of it came from the wallet
    moved = [
        (e["from"], e["to"], e["certificateId"], e["units"])
        for e in event_args(tx, zcx.zcv.LotMoved)
    ]
    assert moved == [(alice, market.address, a, 600), (alice, market.address, b, 200)]
    listing = market.listing(listed["listingId"])
    assert listing.status == OPEN and listing.remaining == 800 and listing.seller == alice
    assert [tuple(x) for x in market.listingLots(listed["listingId"])] == [(a, 600), (b, 200)]
    assert market.custody(a) == 600 and market.custody(b) == 200
    assert held(zcx, market) == {a: 600, b: 200}
    assert held(zcx, alice) == {a: 400, b: 300}
    assert zcx.zcv.allowance(alice, market) == 0  # transferLotsFrom spent the allowance


def test_partial_fill_fee_and_full_fill(
    zcx, market, funded, issuer, alice, bob, fee_recipient, chain
):
    a = issue(zcx, issuer, alice, 1000)
    lid = list_lots(market, alice, [(a, 1000)], chain=chain)
    before = {who: funded.balanceOf(who) for who in (alice, bob, fee_recipient)}

    tx = buy(market, bob, lid, 400, chain)
    cost = 400 * UNIT_PRICE
    fee = cost * FEE_BPS // 10_000
    (bought,) = event_args(tx, market.Bought)
    assert bought["units"] == 400 and bought["cost"] == cost and bought["fee"] == fee
    assert bought["remaining"] == 600 and bought["certificateIds"] == [a]
    assert funded.balanceOf(bob) == before[bob] - cost
    assert funded.balanceOf(alice) == before[alice] + cost - fee
    assert funded.balanceOf(fee_recipient) == before[fee_recipient] + fee
    assert funded.balanceOf(market) == 0
    assert lots_of(zcx, bob) == [(a, 400)]
    assert market.listing(lid).status == OPEN

    buy(market, bob, lid, 600, chain)
    assert market.listing(lid).status == FILLED and market.listing(lid).remaining == 0
    assert lots_of(zcx, bob) == [(a, 1000)]
    assert market.custody(a) == 0 and held(zcx, market) == {}
    with ape.reverts(market.MarketListingNotOpen, listingId=lid, status=FILLED):
        buy(market, bob, lid, 1, chain)


def test_cancel_returns_units_and_closes(zcx, market, funded, issuer, alice, bob, carol, chain):
    a = issue(zcx, issuer, alice, 900)
    lid = list_lots(market, alice, [(a, 900)], chain=chain)
    buy(market, bob, lid, 300, chain)
    with ape.reverts(market.MarketNotSeller, listingId=lid, caller=carol):
        market.cancel(lid, sender=carol)
    tx = market.cancel(lid, sender=alice)
    (cancelled,) = event_args(tx, market.Cancelled)
    assert cancelled["returnedUnits"] == 600 and cancelled["frozenUnits"] == 0
    assert lots_of(zcx, alice) == [(a, 600)]
    assert market.listing(lid).status == CANCELLED and list(market.listingLots(lid)) == []
    assert market.custody(a) == 0 and held(zcx, market) == {}
    with ape.reverts(market.MarketListingNotOpen):
        buy(market, bob, lid, 1, chain)
    with ape.reverts(market.MarketListingNotOpen):
        market.cancel(lid, sender=alice)


def test_expiry_stops_buying_and_anyone_returns_units(
    zcx, market, funded, issuer, alice, bob, carol, chain
):
    a = issue(zcx, issuer, alice, 500)
    expiry = chain.pending_timestamp + 3600
    lid = list_lots(market, alice, [(a, 500)], expiry=expiry)
    with ape.reverts(market.MarketBadExpiry):
        market.list(
            [[a, 1]], UNIT_PRICE, chain.pending_timestamp - 1, ANY_METHOD, 0, 0, sender=alice
        )
    chain.mine(timestamp=expiry)
    with ape.reverts(market.MarketListingExpired, listingId=lid, expiry=expiry):
        market.buy(lid, 100, 100 * UNIT_PRICE, expiry + 600, sender=bob)
    market.cancel(lid, sender=carol)  # a stranger may close an expired listing: units go home
    assert lots_of(zcx, alice) == [(a, 500)]


def test_fee_is_snapshotted_per_listing(
    zcx, market, funded, issuer, admin, alice, bob, fee_recipient, chain
):
    a = issue(zcx, issuer, alice, 1000)
    old = list_lots(market, alice, [(a, 500)], chain=chain)
    market.setFee(1000, fee_recipient, sender=admin)
    new = list_lots(market, alice, [(a, 500)], chain=chain)
    assert market.listing(old).feeBps == FEE_BPS and market.listing(new).feeBps == 1000
    before = funded.balanceOf(fee_recipient)
    buy(market, bob, old, 100, chain)
    assert funded.balanceOf(fee_recipient) - before == 100 * UNIT_PRICE * FEE_BPS // 10_000
    assert market.quote(new, 100) == (100 * UNIT_PRICE, 100 * UNIT_PRICE // 10)
    with ape.reverts(market.MarketFeeTooHigh):
        market.setFee(1001, fee_recipient, sender=admin)
    with ape.reverts(market.MarketZeroAddress):
        market.setFee(0, "0x0000000000000000000000000000000000000000", sender=admin)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setFee(0, alice, sender=alice)


def test_zero_fee_pays_seller_everything(
    zcx, market, funded, issuer, admin, alice, bob, fee_recipient, chain
):
    market.setFee(0, fee_recipient, sender=admin)
    a = issue(zcx, issuer, alice, 100)
    lid = list_lots(market, alice, [(a, 100)], chain=chain)
    before = funded.balanceOf(alice), funded.balanceOf(fee_recipient)
    buy(market, bob, lid, 100, chain)
    assert funded.balanceOf(alice) - before[0] == 100 * UNIT_PRICE
    assert funded.balanceOf(fee_recipient) == before[1]


def test_method_and_period_restrictions(zcx, market, issuer, alice, chain):
    start = VINTAGE_START
    solar = issue(zcx, issuer, alice, 100, SOLAR, start, start + 1800)
    wind = issue(zcx, issuer, alice, 100, WIND, start + 3600, start + 5400)
    with ape.reverts(market.MarketCertificateOutsideRestriction, certificateId=solar):
        list_lots(market, alice, [(solar, 100), (wind, 100)], method=WIND, chain=chain)
    lid = list_lots(market, alice, [(wind, 100)], method=WIND, chain=chain)
    assert market.listing(lid).method == WIND
    with ape.reverts(market.MarketCertificateOutsideRestriction, certificateId=wind):
        list_lots(
            market, alice, [(solar, 50), (wind, 1)], period=(start, start + 1800), chain=chain
        )
    lid2 = list_lots(market, alice, [(solar, 100)], period=(start, start + 1800), chain=chain)
    assert (market.listing(lid2).periodStart, market.listing(lid2).periodEnd) == (
        start,
        start + 1800,
    )
    with ape.reverts(market.MarketBadPeriod):
        list_lots(market, alice, [(solar, 1)], period=(start, start), chain=chain)


def test_listing_input_checks(zcx, market, issuer, alice, chain):
    a = issue(zcx, issuer, alice, 100)
    b = issue(zcx, issuer, alice, 100)
    zcx.zcv.approve(market, 2**256 - 1, sender=alice)
    expiry = chain.pending_timestamp + DAY
    with ape.reverts(market.MarketLotsUnordered, certificateId=a):
        market.list([[b, 1], [a, 1]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    with ape.reverts(market.MarketLotsUnordered, certificateId=a):
        market.list([[a, 1], [a, 1]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    with ape.reverts(market.MarketZeroUnits):
        market.list([], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    with ape.reverts(market.MarketZeroUnits):
        market.list([[a, 0]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    with ape.reverts(market.MarketZeroPrice):
        market.list([[a, 1]], 0, expiry, ANY_METHOD, 0, 0, sender=alice)
    too_many = [[i, 1] for i in range(1, 34)]
    with ape.reverts(market.MarketTooManyCertificates, maxCertificates=32):
        market.list(too_many, UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    # The wallet is short: the ledger's own refusal, and nothing is booked.
    with ape.reverts(zcx.zcv.ZcvLotTooSmall, certificateId=a, requested=101, available=100):
        market.list([[a, 101]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    # No allowance: nothing moves.
    zcx.zcv.approve(market, 0, sender=alice)
    with ape.reverts(zcx.zcv.ERC20InsufficientAllowance):
        market.list([[a, 1]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)
    assert market.listingCount() == 0 and market.custody(a) == 0 and held(zcx, market) == {}


def test_provenance_across_interleaved_listings(
    zcx, market, funded, issuer, alice, bob, carol, chain
):
    """Several listings share certificates (the market holds one lot per certificate for all of
    them); every buyer still receives exactly its listing's certificates, and the books per
    listing never borrow from another listing."""
    certs = [issue(zcx, issuer, alice, 300 + 10 * i) for i in range(5)]
    listings = {
        list_lots(market, alice, [(certs[0], 150), (certs[3], 120)], chain=chain): {
            certs[0],
            certs[3],
        },
        list_lots(market, alice, [(certs[1], 200)], chain=chain): {certs[1]},
        list_lots(market, alice, [(certs[2], 60), (certs[3], 80), (certs[4], 190)], chain=chain): {
            certs[2],
            certs[3],
            certs[4],
        },
    }
    received = {bob: {}, carol: {}}
    plan = [(1, bob, 100), (3, carol, 200), (2, bob, 200), (1, carol, 170), (3, bob, 130)]
    for lid, buyer, units in plan:
        tx = buy(market, buyer, lid, units, chain)
        (bought,) = event_args(tx, market.Bought)
        moved = [e for e in event_args(tx, zcx.zcv.LotMoved) if e["to"] == buyer]
        assert {e["from"] for e in moved} == {market.address}
        got: dict[int, int] = {}
        for e in moved:
            got[e["certificateId"]] = got.get(e["certificateId"], 0) + e["units"]
        assert got == dict(zip(bought["certificateIds"], bought["certificateUnits"], strict=True))
        assert set(got) <= listings[lid] and sum(got.values()) == units
        for c, u in got.items():
            received[buyer][c] = received[buyer].get(c, 0) + u
    for buyer in (bob, carol):
        assert held(zcx, buyer) == received[buyer]
    assert held(zcx, market) == {} and all(market.custody(c) == 0 for c in certs)
    assert [market.listing(lid).status for lid in listings] == [FILLED, FILLED, FILLED]


def test_real_claim_path_to_buyer(registered, submit, market, funded, alice, bob, epoch, chain):
    """Generation signed by the oracles, claimed through the exchange, sold to Bob: Bob's lots
    name Alice's certificate, with its meter and period."""
    cert = mint(registered, submit, alice, "ALICE-PV", [1000, 1200], epoch)
    lid = list_lots(
        market, alice, [(cert, 2200)], method=SOLAR, period=(epoch, epoch + 3600), chain=chain
    )
    buy(market, bob, lid, 1500, chain)
    assert lots_of(registered, bob) == [(cert, 1500)]
    record = registered.zcv.certificate(cert)
    assert record.issuedTo == alice and record.periodStart == epoch
    assert registered.zcv.counters(bob).balance == 1500


def test_deposit_before_first_listing_is_withdrawable(zcx, market, issuer, alice, chain):
    """A deposit needs no listing: it can be withdrawn at any time, listed from, or both."""
    a = issue(zcx, issuer, alice, 1000)
    b = issue(zcx, issuer, alice, 300)
    tx = deposit(zcx, market, alice, [(a, 700), (b, 300)])
    assert event_args(tx, market.Deposited)[0]["certificateUnits"] == [700, 300]
    assert market.depositOf(alice, a) == 700 and market.custody(a) == 700
    tx = market.withdraw([[a, 200], [b, 300]], sender=alice)
    (withdrawn,) = event_args(tx, market.Withdrawn)
    assert withdrawn["certificateIds"] == [a, b] and withdrawn["certificateUnits"] == [200, 300]
    assert held(zcx, alice) == {a: 500, b: 300} and market.depositOf(alice, a) == 500
    # A listing takes the deposit first, then the wallet: 500 + 100.
    zcx.zcv.approve(market, 0, sender=alice)
    with ape.reverts(zcx.zcv.ERC20InsufficientAllowance):
        list_lots_no_approve(market, alice, [(a, 600)], chain)
    zcx.zcv.approve(market, 100, sender=alice)
    tx = list_lots_no_approve(market, alice, [(a, 600)], chain)
    lid = event_args(tx, market.Listed)[0]["listingId"]
    used = event_args(tx, market.DepositUsed)
    assert used == [
        {"listingId": lid, "seller": alice, "certificateIds": [a], "certificateUnits": [500]}
    ]
    assert market.depositOf(alice, a) == 0 and market.custody(a) == 600
    assert held(zcx, alice) == {a: 400, b: 300}
    with ape.reverts(market.MarketInsufficientDeposit, certificateId=a, available=0, requested=1):
        market.withdraw([[a, 1]], sender=alice)
    with ape.reverts(market.MarketZeroUnits):
        market.withdraw([], sender=alice)


def list_lots_no_approve(market, seller, lots, chain):
    return market.list(
        [list(x) for x in lots],
        UNIT_PRICE,
        chain.pending_timestamp + DAY,
        ANY_METHOD,
        0,
        0,
        sender=seller,
    )


def test_stray_tokens_at_market_are_recoverable_but_never_the_books(
    zcx, market, jpyt, operator, admin, issuer, alice, bob, carol, chain
):
    jpyt.mint(market, 7 * YEN, sender=operator)
    a = issue(zcx, issuer, alice, 500)
    lid = list_lots(market, alice, [(a, 300)], chain=chain)
    zcx.zcv.transfer(market, 50, sender=alice)  # a plain transfer: nobody's books
    assert market.custody(a) == 300 and market.surplus(a) == 50
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.recoverTokens(jpyt, carol, 7 * YEN, sender=carol)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.recoverLots(carol, [[a, 50]], sender=carol)
    before = jpyt.balanceOf(carol)
    market.recoverTokens(jpyt, carol, 7 * YEN, sender=admin)
    assert jpyt.balanceOf(carol) - before == 7 * YEN
    # ZCV only by certificate, and only the surplus: the listing's 300 units never move.
    with ape.reverts(market.MarketUseRecoverLots):
        market.recoverTokens(zcx.zcv, alice, 50, sender=admin)
    with ape.reverts(market.MarketNothingToRecover, certificateId=a, surplus=50, requested=51):
        market.recoverLots(alice, [[a, 51]], sender=admin)
    tx = market.recoverLots(alice, [[a, 50]], sender=admin)
    assert event_args(tx, market.LotsRecovered)[0]["certificateUnits"] == [50]
    assert held(zcx, alice) == {a: 200} and market.surplus(a) == 0
    assert held(zcx, market) == {a: 300} and market.listing(lid).remaining == 300


@pytest.mark.parametrize("units", [0, 101])
def test_buy_amount_checks(zcx, market, funded, issuer, alice, bob, chain, units):
    a = issue(zcx, issuer, alice, 100)
    lid = list_lots(market, alice, [(a, 100)], chain=chain)
    error = market.MarketZeroUnits if units == 0 else market.MarketNotEnoughUnits
    with ape.reverts(error):
        market.buy(lid, units, 10**30, chain.pending_timestamp + 60, sender=bob)
    with ape.reverts(market.MarketUnknownListing, listingId=99):
        market.buy(99, 1, 10**30, chain.pending_timestamp + 60, sender=bob)
