"""The market from the attacker's side: re-entrancy through a malicious payment token, revoked
certificates, spending listed units twice, price changes between quote and fill, and (issue 11)
strangers spraying dust lots at the market, at sellers and at buyers, and listings fragmented
across many certificates."""

from __future__ import annotations

import ape
from market_support import (
    DAY,
    UNIT_PRICE,
    buy,
    deposit,
    event_args,
    held,
    issue,
    list_lots,
)

from zcx.market import deploy_market

REENTRANT_SELECTOR = bytes.fromhex("3ee5aeb5")  # ReentrancyGuardReentrantCall()

pytest_plugins = ["market_support"]  # the market fixtures


def test_reentrancy_through_malicious_payment_token(
    zcx, project, admin, operator, issuer, alice, bob, carol, chain
):
    evil = admin.deploy(project.ReentrantPaymentToken)
    market = deploy_market(admin, zcx.zcv, evil, 100, carol, operator=operator)
    evil.mint(bob, 10**24, sender=bob)
    evil.approve(market, 2**256 - 1, sender=bob)
    a = issue(zcx, issuer, alice, 1100)
    deposit(zcx, market, alice, [(a, 100)])
    lid = list_lots(market, alice, [(a, 1000)], chain=chain)
    deadline = chain.pending_timestamp + 600
    # Inside the buyer's payment the token calls back into every entry point that moves units:
    # each one must be refused.
    for payload in (
        market.buy.encode_input(lid, 500, 10**30, deadline),
        market.cancel.encode_input(lid),
        market.withdraw.encode_input([[a, 1]]),
        market.deposit.encode_input([[a, 1]]),
        market.list.encode_input([[a, 1]], 1, deadline, 255, 0, 0),
    ):
        evil.arm(market, payload, sender=bob)
        tx = market.buy(lid, 100, 100 * UNIT_PRICE, deadline, sender=bob)
        (attempt,) = event_args(tx, evil.ReentryAttempted)
        assert not attempt["ok"]
        assert bytes(attempt["returnData"])[:4] == REENTRANT_SELECTOR
    listing = market.listing(lid)
    assert listing.remaining == 500 and listing.status == 1
    assert held(zcx, bob) == {a: 500} and held(zcx, market) == {a: 500}
    assert market.custody(a) == 500
    assert evil.balanceOf(alice) + evil.balanceOf(carol) == 500 * UNIT_PRICE
    assert evil.balanceOf(market) == 0


def test_buying_a_revoked_certificate_fails(
    zcx, market, funded, issuer, operator, alice, bob, chain
):
    a = issue(zcx, issuer, alice, 500)
    b = issue(zcx, issuer, alice, 500)
    lid = list_lots(market, alice, [(a, 300), (b, 300)], chain=chain)
    only_b = list_lots(market, alice, [(b, 200)], chain=chain)
    zcx.zcv.revokeCertificate(b, "meter tampering", sender=operator)
    with ape.reverts(market.MarketCertificateRevoked, listingId=only_b, certificateId=b):
        buy(market, bob, only_b, 100, chain)
    # Fills take the listing's lowest certificate id first: a is sold, b is not.
    buy(market, bob, lid, 300, chain)
    assert held(zcx, bob) == {a: 300}
    with ape.reverts(market.MarketCertificateRevoked, listingId=lid, certificateId=b):
        buy(market, bob, lid, 1, chain)
    list_lots(market, alice, [(a, 1)], chain=chain)  # the seller's other certificates still list
    with ape.reverts(market.MarketCertificateRevoked, certificateId=b):
        list_lots(market, alice, [(b, 1)], chain=chain)
    # Cancel still succeeds: the revoked units cannot move (DESIGN invariant 7), so they stay at
    # the market, credited to the seller's deposit.
    tx = market.cancel(lid, sender=alice)
    (cancelled,) = event_args(tx, market.Cancelled)
    assert cancelled["returnedUnits"] == 0 and cancelled["frozenUnits"] == 300
    assert event_args(tx, market.Deposited)[0]["certificateUnits"] == [300]
    tx = market.cancel(only_b, sender=alice)
    assert event_args(tx, market.Cancelled)[0]["frozenUnits"] == 200
    assert market.depositOf(alice, b) == 500 and market.custody(b) == 500
    assert held(zcx, market) == {a: 1, b: 500}
    with ape.reverts(market.MarketCertificateRevoked, listingId=0, certificateId=b):
        market.withdraw([[b, 1]], sender=alice)
    assert held(zcx, alice) == {a: 199}


def test_listed_units_cannot_be_spent_twice(zcx, market, funded, issuer, alice, bob, carol, chain):
    a = issue(zcx, issuer, alice, 1000)
    lid = list_lots(market, alice, [(a, 1000)], chain=chain)
    # Not listable again, not withdrawable, not in the seller's wallet.
    with ape.reverts(zcx.zcv.ZcvLotTooSmall, certificateId=a, requested=1, available=0):
        list_lots(market, alice, [(a, 1)], chain=chain)
    with ape.reverts(market.MarketInsufficientDeposit, certificateId=a, available=0, requested=1):
        market.withdraw([[a, 1]], sender=alice)
    with ape.reverts(zcx.zcv.ERC20InsufficientBalance):
        zcx.zcv.transfer(carol, 1, sender=alice)
    # Two buyers race for the same units: the second one is refused, nothing is sold twice.
    buy(market, bob, lid, 700, chain)
    with ape.reverts(market.MarketNotEnoughUnits, listingId=lid, remaining=300, requested=400):
        buy(market, carol, lid, 400, chain)
    buy(market, carol, lid, 300, chain)
    assert held(zcx, bob) == {a: 700} and held(zcx, carol) == {a: 300}
    # A stranger's gift to the market is nobody's deposit: it cannot be withdrawn or listed by
    # a seller, only recovered by the admin as surplus.
    c = issue(zcx, issuer, carol, 10)
    zcx.zcv.transferLots(market, [(c, 10)], sender=carol)
    with ape.reverts(market.MarketInsufficientDeposit, certificateId=c, available=0, requested=10):
        market.withdraw([[c, 10]], sender=alice)
    assert market.surplus(c) == 10 and market.custody(c) == 0


def test_price_change_between_quote_and_fill(
    zcx, market, funded, issuer, admin, fee_recipient, alice, bob, chain
):
    a = issue(zcx, issuer, alice, 1000)
    lid = list_lots(market, alice, [(a, 1000)], chain=chain)
    quoted, _ = market.quote(lid, 500)
    # The seller front-runs the buyer with a higher price: the buyer's cap stops the fill.
    market.updatePrice(lid, UNIT_PRICE * 2, sender=alice)
    with ape.reverts(market.MarketPriceAboveMax, cost=quoted * 2, maxTotalPrice=quoted):
        market.buy(lid, 500, quoted, chain.pending_timestamp + 600, sender=bob)
    # A lower price fills at the listed price, not at the buyer's cap.
    market.updatePrice(lid, UNIT_PRICE // 2, sender=alice)
    before = funded.balanceOf(bob)
    market.buy(lid, 500, quoted, chain.pending_timestamp + 600, sender=bob)
    assert before - funded.balanceOf(bob) == quoted // 2
    # A fee change cannot raise what an open listing costs or take more from its seller.
    market.setFee(1000, fee_recipient, sender=admin)
    assert market.quote(lid, 100)[1] == 100 * (UNIT_PRICE // 2) * 250 // 10_000
    # Only the seller reprices; a stale transaction past its deadline is refused.
    with ape.reverts(market.MarketNotSeller):
        market.updatePrice(lid, 1, sender=bob)
    with ape.reverts(market.MarketZeroPrice):
        market.updatePrice(lid, 0, sender=alice)
    deadline = chain.pending_timestamp + 60
    chain.mine(timestamp=deadline + 1)
    with ape.reverts(market.MarketDeadlinePassed, deadline=deadline):
        market.buy(lid, 1, 10**30, deadline, sender=bob)
    with ape.reverts(market.MarketSelfTrade, listingId=lid):
        market.buy(lid, 1, 10**30, chain.pending_timestamp + 60, sender=alice)


def test_buyer_without_funds_or_allowance_gets_nothing(
    zcx, market, funded, issuer, alice, chain, accounts
):
    stranger = accounts[9]
    a = issue(zcx, issuer, alice, 100)
    lid = list_lots(market, alice, [(a, 100)], expiry=chain.pending_timestamp + DAY)
    with ape.reverts(funded.ERC20InsufficientAllowance):
        market.buy(lid, 100, 10**30, chain.pending_timestamp + 60, sender=stranger)
    assert market.listing(lid).remaining == 100 and held(zcx, stranger) == {}
