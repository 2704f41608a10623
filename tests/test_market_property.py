"""Property: across random sequences of market actions, payment-token and ZCV balances are
conserved, the market's own address never keeps anything, and the escrow bookkeeping holds
(invariants M1, M2 of contracts/ZcvMarket.sol). Each example runs in its own chain snapshot."""

from __future__ import annotations

from typing import Any

from ape.exceptions import ContractLogicError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from market_support import DAY, UNIT_PRICE, WIND, YEN, held, issue

from zcx.holder import plan_lot_picks
from zcx.market import ANY_METHOD

OPEN = 1
fraction = st.integers(min_value=1, max_value=4)  # quarters
ACTIONS = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 1), st.integers(0, 2), fraction),
    st.tuples(st.just("list"), st.integers(0, 1), st.integers(0, 2), fraction, st.integers(1, 3)),
    st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, 5), fraction, st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 2), st.integers(0, 5)),
    st.tuples(st.just("reprice"), st.integers(0, 5), st.integers(1, 3)),
    st.tuples(st.just("withdraw"), st.integers(0, 1), st.integers(0, 2), fraction),
    st.tuples(st.just("warp"), st.integers(1, 10)),
)

pytest_plugins = ["market_support"]  # the market fixtures


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, min_size=4, max_size=8))
def test_market_conserves_balances(
    zcx, market, funded, issuer, operator, alice, bob, carol, fee_recipient, chain, actions
):
    snapshot = chain.snapshot()
    try:
        _run(
            zcx,
            market,
            funded,
            issuer,
            operator,
            (alice, bob, carol),
            fee_recipient,
            chain,
            actions,
        )
    finally:
        chain.restore(snapshot)


def _run(zcx, market, jpyt, issuer, operator, people, fee_recipient, chain, actions) -> None:
    alice, bob, carol = people
    sellers = (alice, bob)
    jpyt.mint(alice, 1_000_000 * YEN, sender=operator)
    jpyt.approve(market, 2**256 - 1, sender=alice)
    certs = {
        alice: [issue(zcx, issuer, alice, 1000), issue(zcx, issuer, alice, 800, WIND)],
        bob: [issue(zcx, issuer, bob, 600)],
    }
    all_certs = [c for cs in certs.values() for c in cs]
    cert_units = {c: int(zcx.zcv.certificate(c).units) for c in all_certs}
    escrows = [market.escrowOf(s) for s in sellers]
    holders = [*people, fee_recipient, market, *escrows]
    supply = jpyt.totalSupply()
    listings: list[int] = []
    # A fixed opening, so that every example trades: each seller deposits and lists.
    for opening in (
        ("deposit", 0, 0, 4),
        ("list", 0, 0, 2, 1),
        ("deposit", 1, 0, 4),
        ("list", 1, 0, 2, 2),
    ):
        _apply(zcx, market, chain, people, sellers, certs, listings, opening)

    for action in actions:
        try:
            _apply(zcx, market, chain, people, sellers, certs, listings, action)
            event(f"{action[0]} done")
        except ContractLogicError:
            event(
                f"{action[0]} refused"
            )  # a refused action must leave everything as it was: the checks below say so
        _check(zcx, market, jpyt, holders, supply, cert_units, sellers, listings)


def _apply(zcx, market, chain, people, sellers, certs, listings, action) -> None:
    kind = action[0]
    if kind == "deposit":
        seller = sellers[action[1]]
        own = certs[seller]
        cert = own[action[2] % len(own)]
        have = held(zcx, seller).get(cert, 0)
        units = have * action[3] // 4
        if units:
            picks = plan_lot_picks(
                [(int(x.certificateId), int(x.units)) for x in zcx.zcv.lotsOf(seller)],
                [(cert, units)],
            )
            zcx.zcv.transferLots(
                market.escrowOf(seller), [p.as_tuple() for p in picks], sender=seller
            )
    elif kind == "list":
        seller = sellers[action[1]]
        own = certs[seller]
        cert = own[action[2] % len(own)]
        free = held(zcx, market.escrowOf(seller)).get(cert, 0) - market.committed(seller, cert)
        units = max(free * action[3] // 4, 1)
        tx = market.list(
            [[cert, units]],
            UNIT_PRICE * action[4],
            chain.pending_timestamp + DAY,
            ANY_METHOD,
            0,
            0,
            sender=seller,
        )
        listings.append(int(tx.decode_logs(market.Listed)[0].listingId))
    elif kind == "buy" and listings:
        buyer = people[action[1]]
        lid = listings[action[2] % len(listings)]
        remaining = int(market.listing(lid).remaining)
        units = max(remaining * action[3] // 4, 1)
        cost, _ = market.quote(lid, units)
        cap = cost if action[4] else cost - 1  # a too-low cap must be refused
        market.buy(lid, units, cap, chain.pending_timestamp + 600, sender=buyer)
    elif kind == "cancel" and listings:
        market.cancel(listings[action[2] % len(listings)], sender=people[action[1]])
    elif kind == "reprice" and listings:
        lid = listings[action[1] % len(listings)]
        market.updatePrice(lid, UNIT_PRICE * action[2], sender=market.listing(lid).seller)
    elif kind == "withdraw":
        seller = sellers[action[1]]
        own = certs[seller]
        cert = own[action[2] % len(own)]
        free = held(zcx, market.escrowOf(seller)).get(cert, 0) - market.committed(seller, cert)
        market.withdraw([[cert, max(free * action[3] // 4, 1)]], sender=seller)
    elif kind == "warp":
        chain.mine(timestamp=chain.pending_timestamp + action[1] * 3 * 3600)


def _check(zcx, market, jpyt, holders, supply, cert_units, sellers, listings) -> None:
    # Payment token: nothing created or lost, nothing left at the market.
    assert sum(jpyt.balanceOf(h) for h in holders) == supply == jpyt.totalSupply()
    assert jpyt.balanceOf(market) == 0
    # ZCV: every certificate's units are all somewhere among the holders (no retirements here).
    per_cert: dict[int, int] = {}
    for h in holders:
        for c, u in held(zcx, h).items():
            per_cert[c] = per_cert.get(c, 0) + u
    assert per_cert == cert_units
    assert sum(zcx.zcv.balanceOf(h) for h in holders) == zcx.zcv.totalSupply()
    assert zcx.zcv.balanceOf(market) == 0
    # M1 and M2.
    committed: dict[tuple[str, int], int] = {}
    for lid in listings:
        listing: Any = market.listing(lid)
        lots = [(int(x.certificateId), int(x.units)) for x in market.listingLots(lid)]
        assert sum(u for _, u in lots) == listing.remaining
        assert (listing.status == OPEN) == (listing.remaining > 0)
        for c, u in lots:
            key = (str(listing.seller), c)
            committed[key] = committed.get(key, 0) + u
    for seller in sellers:
        escrow_held = held(zcx, market.escrowOf(seller))
        for c in cert_units:
            expected = committed.get((str(seller), c), 0)
            assert market.committed(seller, c) == expected
            assert escrow_held.get(c, 0) >= expected
