"""Issue 11, point 2, from the attacker's side: nothing a stranger sends can make a seller's or a
buyer's market calls fail or cost materially more (DESIGN invariant 8, market clause).

The attacker (contracts/test/DustSprayer.sol) sends 1,000 one-unit lots of distinct
certificates to the market itself, to the seller and to the buyer, and has some of them revoked.
Then the same sequence of calls (deposit, list from the wallet, list from the deposit, partial
buy, full buy across certificates, cancel, withdraw) runs from a clean chain and from the sprayed
one, in chain snapshots of the same state: every receipt's gas must stay within 10 %. A listing
can also be bought in full and cancelled whatever its fragmentation (up to the bound on
certificates per listing, checked at list time)."""

from __future__ import annotations

import ape
import pytest
from market_support import (
    UNIT_PRICE,
    approve,
    buy,
    event_args,
    held,
    issue,
    list_lots,
    spray,
)

pytest_plugins = ["market_support"]  # the market fixtures

DUST_LOTS = 1000
REVOKED_DUST = 10
GAS_TOLERANCE = 1.10


def _sequence(zcx, market, issuer, alice, bob, chain) -> dict[str, int]:
    """Every market entry point a seller and a buyer use, with their receipts' gas."""
    a = issue(zcx, issuer, alice, 5000)
    b = issue(zcx, issuer, alice, 5000)
    c = issue(zcx, issuer, alice, 5000)
    # The buyer already holds ZCV of its own (the steady state). A buyer holding nothing keeps
    # its first certificate in its Account slot; holding anything, even one unit, the bought
    # certificate needs a lot slot of its own (one slot, O(1) in the dust, not a dust effect).
    issue(zcx, issuer, bob, 5000)
    approve(zcx, market, alice)
    gas: dict[str, int] = {}
    tx = market.deposit([[a, 1000], [c, 500]], sender=alice)
    gas["deposit"] = tx.gas_used
    expiry = chain.pending_timestamp + 86400
    tx = market.list([[a, 1500], [b, 2000]], UNIT_PRICE, expiry, 255, 0, 0, sender=alice)
    gas["list_deposit_and_wallet"] = tx.gas_used
    first = event_args(tx, market.Listed)[0]["listingId"]
    tx = market.list([[b, 1000]], UNIT_PRICE, expiry, 255, 0, 0, sender=alice)
    gas["list_wallet"] = tx.gas_used
    second = event_args(tx, market.Listed)[0]["listingId"]
    gas["buy_partial"] = buy(market, bob, first, 500, chain).gas_used
    gas["buy_across_certificates"] = buy(market, bob, first, 2500, chain).gas_used
    gas["buy_rest"] = buy(market, bob, first, 500, chain).gas_used
    gas["update_price"] = market.updatePrice(second, 2 * UNIT_PRICE, sender=alice).gas_used
    gas["cancel"] = market.cancel(second, sender=alice).gas_used
    gas["withdraw"] = market.withdraw([[c, 500]], sender=alice).gas_used
    assert market.listing(first).status == 2 and market.listing(second).status == 3
    return gas


@pytest.fixture
def isolated(chain):
    snapshot = chain.snapshot()
    yield
    chain.restore(snapshot)


def test_dust_sprayed_at_market_seller_and_buyer_changes_no_gas(
    zcx, market, funded, issuer, sprayer, operator, alice, bob, carol, chain
):
    snapshot = chain.snapshot()
    try:
        clean = _sequence(zcx, market, issuer, alice, bob, chain)
    finally:
        chain.restore(snapshot)
    snapshot = chain.snapshot()
    try:
        dust = spray(zcx, sprayer, carol, [market, alice, bob], DUST_LOTS)
        for certificate_id in dust[:: DUST_LOTS // REVOKED_DUST]:
            zcx.zcv.revokeCertificate(certificate_id, "dust", sender=operator)
        assert zcx.zcv.lotCount(market) == DUST_LOTS and zcx.zcv.lotCount(alice) >= DUST_LOTS
        sprayed = _sequence(zcx, market, issuer, alice, bob, chain)
        # The dust is nobody's: the books never counted it, and it is all surplus.
        assert all(market.custody(c) == 0 for c in dust[:5])
        assert market.surplus(dust[1]) == 1
    finally:
        chain.restore(snapshot)
    over = {k: (clean[k], sprayed[k]) for k in clean if sprayed[k] > clean[k] * GAS_TOLERANCE}
    assert not over, f"gas grew more than 10 % with {DUST_LOTS} dust lots: {over}"


def test_full_buy_and_cancel_of_a_maximally_fragmented_listing(
    zcx, market, funded, issuer, sprayer, alice, bob, carol, chain, isolated
):
    """32 certificates (the bound) in one listing, each also sprayed around: one buy takes all
    of them, and another such listing cancels in one call, returning every certificate."""
    bound = int(market.MAX_LISTING_CERTIFICATES())
    certs = [issue(zcx, issuer, alice, 100 + i) for i in range(2 * bound)]
    spray(zcx, sprayer, carol, [market, alice], 50)
    first = list_lots(market, alice, [(c, 100) for c in certs[:bound]], chain=chain)
    second = list_lots(market, alice, [(c, 100) for c in certs[bound:]], chain=chain)
    tx = buy(market, bob, first, 100 * bound, chain)
    (bought,) = event_args(tx, market.Bought)
    assert sorted(bought["certificateIds"]) == certs[:bound]
    assert held(zcx, bob) == {c: 100 for c in certs[:bound]}
    assert market.listing(first).status == 2 and list(market.listingLots(first)) == []
    tx = market.cancel(second, sender=alice)
    assert event_args(tx, market.Cancelled)[0]["returnedUnits"] == 100 * bound
    for i, c in enumerate(certs):
        assert zcx.zcv.lotBalance(alice, c) == (100 + i if i >= bound else i)
    assert all(market.custody(c) == 0 for c in certs)


def test_partial_buys_walk_only_the_entries_they_take(
    zcx, market, funded, issuer, alice, bob, chain, isolated
):
    """A listing of 20 certificates bought 7 units at a time: each fill names only the entries
    it takes from (the last ones), never the rest of the listing."""
    certs = [issue(zcx, issuer, alice, 10) for _ in range(20)]
    lid = list_lots(market, alice, [(c, 10) for c in certs], chain=chain)
    delivered: dict[int, int] = {}
    while int(market.listing(lid).remaining):
        units = min(7, int(market.listing(lid).remaining))
        tx = buy(market, bob, lid, units, chain)
        (bought,) = event_args(tx, market.Bought)
        assert 1 <= len(bought["certificateIds"]) <= 2
        for c, u in zip(bought["certificateIds"], bought["certificateUnits"], strict=True):
            delivered[c] = delivered.get(c, 0) + u
        entries = [(int(x.certificateId), int(x.units)) for x in market.listingLots(lid)]
        # (M1): the entries add up to what is left, and an emptied entry is gone.
        assert sum(u for _, u in entries) == int(market.listing(lid).remaining)
        assert all(u > 0 for _, u in entries)
    assert delivered == {c: 10 for c in certs} and held(zcx, bob) == delivered


def test_revoked_dust_in_a_listing_blocks_only_its_own_units(
    zcx, market, funded, issuer, operator, alice, bob, chain, isolated
):
    """A listing made of many certificates, one of which is revoked after listing: the fill
    refuses with a clear error when it reaches it, cancel returns all the others and keeps the
    frozen units as the seller's deposit (withdrawable only if ever unfrozen)."""
    certs = [issue(zcx, issuer, alice, 100) for _ in range(6)]
    lid = list_lots(market, alice, [(c, 100) for c in certs], chain=chain)
    zcx.zcv.revokeCertificate(certs[3], "tampered meter", sender=operator)
    buy(market, bob, lid, 300, chain)  # the three lowest ids
    assert held(zcx, bob) == {c: 100 for c in certs[:3]}
    with ape.reverts(market.MarketCertificateRevoked, listingId=lid, certificateId=certs[3]):
        buy(market, bob, lid, 1, chain)
    tx = market.cancel(lid, sender=alice)
    (cancelled,) = event_args(tx, market.Cancelled)
    assert (cancelled["returnedUnits"], cancelled["frozenUnits"]) == (200, 100)
    assert held(zcx, alice) == {certs[4]: 100, certs[5]: 100}
    assert market.depositOf(alice, certs[3]) == 100 and market.custody(certs[3]) == 100
    with ape.reverts(market.MarketCertificateRevoked, listingId=0, certificateId=certs[3]):
        market.withdraw([[certs[3], 100]], sender=alice)
