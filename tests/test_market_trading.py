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
from zcv_support import mint

from zcx.market import ANY_METHOD

OPEN, FILLED, CANCELLED = 1, 2, 3

pytest_plugins = ["market_support"]  # the market fixtures


def test_list_escrows_exact_certificates(zcx, market, issuer, alice, chain):
    a = issue(zcx, issuer, alice, 1000)
    b = issue(zcx, issuer, alice, 500, method=WIND)
    escrow = market.escrowOf(alice)
    assert not chain.provider.get_code(escrow)  # deployed on first use, address known before
    deposit(zcx, market, alice, [(a, 600), (b, 500)])
    tx = market.list(
        [[a, 600], [b, 200]],
        UNIT_PRICE,
        chain.pending_timestamp + DAY,
        ANY_METHOD,
        0,
        0,
        sender=alice,
    )
    (created,) = event_args(tx, market.EscrowCreated)
    assert created["seller"] == alice and created["escrow"] == escrow
    (listed,) = event_args(tx, market.Listed)
    assert listed["certificateIds"] == [a, b] and listed["certificateUnits"] == [600, 200]
    assert listed["units"] == 800 and listed["feeBps"] == FEE_BPS
    listing = market.listing(listed["listingId"])
    assert listing.status == OPEN and listing.remaining == 800 and listing.seller == alice
    assert market.committed(alice, a) == 600 and market.committed(alice, b) == 200
    assert held(zcx, escrow) == {a: 600, b: 500}
    assert held(zcx, alice) == {a: 400}
    assert zcx.zcv.balanceOf(market) == 0  # (M3) the market's own address holds nothing


def test_partial_fill_fee_and_full_fill(
    zcx, market, funded, issuer, alice, bob, fee_recipient, chain
):
    a = issue(zcx, issuer, alice, 1000)
    deposit(zcx, market, alice, [(a, 1000)])
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
    assert market.committed(alice, a) == 0 and held(zcx, market.escrowOf(alice)) == {}
    with ape.reverts(market.MarketListingNotOpen, listingId=lid, status=FILLED):
        buy(market, bob, lid, 1, chain)


def test_cancel_returns_units_and_closes(zcx, market, funded, issuer, alice, bob, carol, chain):
    a = issue(zcx, issuer, alice, 900)
    deposit(zcx, market, alice, [(a, 900)])
    lid = list_lots(market, alice, [(a, 900)], chain=chain)
    buy(market, bob, lid, 300, chain)
    with ape.reverts(market.MarketNotSeller, listingId=lid, caller=carol):
        market.cancel(lid, sender=carol)
    tx = market.cancel(lid, sender=alice)
    (cancelled,) = event_args(tx, market.Cancelled)
    assert cancelled["returnedUnits"] == 600 and cancelled["frozenUnits"] == 0
    assert lots_of(zcx, alice) == [(a, 600)]
    assert market.listing(lid).status == CANCELLED and list(market.listingLots(lid)) == []
    assert market.committed(alice, a) == 0
    with ape.reverts(market.MarketListingNotOpen):
        buy(market, bob, lid, 1, chain)
    with ape.reverts(market.MarketListingNotOpen):
        market.cancel(lid, sender=alice)


def test_expiry_stops_buying_and_anyone_returns_units(
    zcx, market, funded, issuer, alice, bob, carol, chain
):
    a = issue(zcx, issuer, alice, 500)
    deposit(zcx, market, alice, [(a, 500)])
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
    deposit(zcx, market, alice, [(a, 1000)])
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
    deposit(zcx, market, alice, [(a, 100)])
    lid = list_lots(market, alice, [(a, 100)], chain=chain)
    before = funded.balanceOf(alice), funded.balanceOf(fee_recipient)
    buy(market, bob, lid, 100, chain)
    assert funded.balanceOf(alice) - before[0] == 100 * UNIT_PRICE
    assert funded.balanceOf(fee_recipient) == before[1]


def test_method_and_period_restrictions(zcx, market, issuer, alice, chain):
    start = 1_700_000_000
    solar = issue(zcx, issuer, alice, 100, SOLAR, start, start + 1800)
    wind = issue(zcx, issuer, alice, 100, WIND, start + 3600, start + 5400)
    deposit(zcx, market, alice, [(solar, 100), (wind, 100)])
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
    deposit(zcx, market, alice, [(a, 100), (b, 100)])
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
    with ape.reverts(
        market.MarketInsufficientDeposit, certificateId=a, available=100, requested=101
    ):
        market.list([[a, 101]], UNIT_PRICE, expiry, ANY_METHOD, 0, 0, sender=alice)


def test_provenance_across_interleaved_listings(
    zcx, market, funded, issuer, alice, bob, carol, chain
):
    """Several listings share one escrow whose lot stack mixes them; fills that empty lots
    reorder it (swap and pop). Every buyer still receives exactly its listing's certificates."""
    certs = [issue(zcx, issuer, alice, 300 + 10 * i) for i in range(5)]
    # Interleave deposits so the escrow holds several lots of the same certificates.
    for c in certs:
        deposit(zcx, market, alice, [(c, 100)])
    for c in reversed(certs):
        deposit(zcx, market, alice, [(c, 100)])
    escrow = market.escrowOf(alice)
    assert len(lots_of(zcx, escrow)) == 9  # the two deposits of the last certificate merged
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
        assert {e["from"] for e in moved} == {escrow}
        got: dict[int, int] = {}
        for e in moved:
            got[e["certificateId"]] = got.get(e["certificateId"], 0) + e["units"]
        assert got == dict(zip(bought["certificateIds"], bought["certificateUnits"], strict=True))
        assert set(got) <= listings[lid] and sum(got.values()) == units
        for c, u in got.items():
            received[buyer][c] = received[buyer].get(c, 0) + u
    for buyer in (bob, carol):
        assert held(zcx, buyer) == received[buyer]
    # (M2) every certificate: the escrow holds what is committed plus the unlisted rest.
    for c in certs:
        assert held(zcx, escrow).get(c, 0) >= market.committed(alice, c)
    assert sum(held(zcx, escrow).values()) == 1000 - 800  # the unlisted rest
    assert [market.listing(lid).status for lid in listings] == [FILLED, FILLED, FILLED]


def test_real_claim_path_to_buyer(registered, submit, market, funded, alice, bob, epoch, chain):
    """Generation signed by the oracles, claimed through the exchange, sold to Bob: Bob's lots
    name Alice's certificate, with its meter and period."""
    cert = mint(registered, submit, alice, "ALICE-PV", [1000, 1200], epoch)
    deposit(registered, market, alice, [(cert, 2200)])
    lid = list_lots(
        market, alice, [(cert, 2200)], method=SOLAR, period=(epoch, epoch + 3600), chain=chain
    )
    buy(market, bob, lid, 1500, chain)
    assert lots_of(registered, bob) == [(cert, 1500)]
    record = registered.zcv.certificate(cert)
    assert record.issuedTo == alice and record.periodStart == epoch
    assert registered.zcv.counters(bob).balance == 1500


def test_withdraw_unlisted_and_other_tokens(
    zcx, market, funded, jpyt, operator, issuer, alice, chain
):
    a = issue(zcx, issuer, alice, 1000)
    deposit(zcx, market, alice, [(a, 1000)])
    list_lots(market, alice, [(a, 600)], chain=chain)
    with ape.reverts(
        market.MarketInsufficientDeposit, certificateId=a, available=400, requested=500
    ):
        market.withdraw([[a, 500]], sender=alice)
    tx = market.withdraw([[a, 400]], sender=alice)
    assert event_args(tx, market.Withdrawn)[0]["certificateUnits"] == [400]
    assert held(zcx, alice) == {a: 400}
    # JPYT sent to an escrow by mistake goes back to its seller; ZCV goes through withdraw.
    escrow = market.escrowOf(alice)
    jpyt.mint(escrow, 5 * YEN, sender=operator)
    before = jpyt.balanceOf(alice)
    market.withdrawOtherToken(jpyt, sender=alice)
    assert jpyt.balanceOf(alice) - before == 5 * YEN and jpyt.balanceOf(escrow) == 0
    with ape.reverts(market.MarketNotEscrowToken):
        market.withdrawOtherToken(zcx.zcv, sender=alice)


def test_stray_tokens_at_market_are_recoverable(
    zcx, market, jpyt, operator, admin, issuer, alice, carol
):
    jpyt.mint(market, 7 * YEN, sender=operator)
    a = issue(zcx, issuer, alice, 50)
    zcx.zcv.transfer(market, 50, sender=alice)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.recoverTokens(jpyt, carol, 7 * YEN, sender=carol)
    before = jpyt.balanceOf(carol)
    market.recoverTokens(jpyt, carol, 7 * YEN, sender=admin)
    market.recoverTokens(zcx.zcv, alice, 50, sender=admin)
    assert jpyt.balanceOf(carol) - before == 7 * YEN and held(zcx, alice) == {a: 50}


def test_escrow_obeys_only_the_market(zcx, market, project, issuer, alice, chain):
    a = issue(zcx, issuer, alice, 100)
    deposit(zcx, market, alice, [(a, 100)])
    list_lots(market, alice, [(a, 100)], chain=chain)
    escrow = project.ZcvEscrow.at(market.escrowOf(alice))
    assert escrow.market() == market.address
    with ape.reverts(escrow.EscrowOnlyMarket, caller=alice):
        escrow.moveLots(alice, [(0, a, 100)], sender=alice)


@pytest.mark.parametrize("units", [0, 101])
def test_buy_amount_checks(zcx, market, funded, issuer, alice, bob, chain, units):
    a = issue(zcx, issuer, alice, 100)
    deposit(zcx, market, alice, [(a, 100)])
    lid = list_lots(market, alice, [(a, 100)], chain=chain)
    error = market.MarketZeroUnits if units == 0 else market.MarketNotEnoughUnits
    with ape.reverts(error):
        market.buy(lid, units, 10**30, chain.pending_timestamp + 60, sender=bob)
    with ape.reverts(market.MarketUnknownListing, listingId=99):
        market.buy(99, 1, 10**30, chain.pending_timestamp + 60, sender=bob)
