"""Property: across random sequences of market actions, including an adversary who sprays dust
lots at the market and at sellers, sends ZCV to the market by plain transfer, revokes
certificates and fragments listings across many certificates, payment-token and ZCV balances
are conserved (DESIGN invariants 3 and 4: sum of balances, each certificate's units), the market
never keeps payment tokens, and its books hold (invariants M1, M2 of contracts/ZcvMarket.sol).
Each example runs in its own chain snapshot."""

from __future__ import annotations

from typing import Any

from ape.exceptions import ContractLogicError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from market_support import DAY, UNIT_PRICE, WIND, YEN, approve, issue, spray

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
    # The adversary: dust at the market and both sellers, a gift to the market, a revocation,
    # and a listing fragmented over every certificate a seller holds.
    st.tuples(st.just("spray"), st.integers(1, 30)),
    st.tuples(st.just("gift"), st.integers(0, 2), fraction),
    st.tuples(st.just("revoke"), st.integers(0, 2)),
    st.tuples(st.just("fragment"), st.integers(0, 1)),
)

pytest_plugins = ["market_support"]  # the market fixtures


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, min_size=4, max_size=8))
def test_market_conserves_balances(
    zcx, market, funded, issuer, sprayer, operator, alice, bob, carol, fee_recipient, chain, actions
):
    snapshot = chain.snapshot()
    try:
        _run(
            zcx,
            market,
            funded,
            issuer,
            sprayer,
            operator,
            (alice, bob, carol),
            fee_recipient,
            chain,
            actions,
        )
    finally:
        chain.restore(snapshot)


def _run(zcx, market, jpyt, issuer, sprayer, operator, people, fee_recipient, chain, actions):
    alice, bob, carol = people
    sellers = (alice, bob)
    jpyt.mint(alice, 1_000_000 * YEN, sender=operator)
    jpyt.approve(market, 2**256 - 1, sender=alice)
    for seller in sellers:
        approve(zcx, market, seller)
    certs = {
        alice: [issue(zcx, issuer, alice, 1000), issue(zcx, issuer, alice, 800, WIND)],
        bob: [issue(zcx, issuer, bob, 600)],
    }
    world = _World(zcx, market, chain, people, sellers, certs, sprayer, operator)
    holders = [*people, fee_recipient, market, sprayer]
    supply = jpyt.totalSupply()
    # A fixed opening, so that every example trades: each seller deposits and lists.
    for opening in (
        ("deposit", 0, 0, 2),
        ("list", 0, 0, 3, 1),
        ("list", 1, 0, 2, 2),
    ):
        world.apply(opening)

    for action in actions:
        try:
            world.apply(action)
            event(f"{action[0]} done")
        except ContractLogicError:
            event(
                f"{action[0]} refused"
            )  # a refused action must leave everything as it was: the checks below say so
        _check(zcx, market, jpyt, holders, supply, world)


class _World:
    """The actors and what the test knows: certificates per seller, listings, and the dust."""

    def __init__(self, zcx, market, chain, people, sellers, certs, sprayer, operator) -> None:
        self.zcx, self.market, self.chain = zcx, market, chain
        self.people, self.sellers, self.certs = people, sellers, certs
        self.sprayer, self.operator = sprayer, operator
        self.listings: list[int] = []
        self.dust: list[int] = []

    def all_certs(self) -> list[int]:
        return sorted({c for cs in self.certs.values() for c in cs} | set(self.dust))

    def _own(self, seller_index: int, cert_index: int) -> tuple[Any, int]:
        seller = self.sellers[seller_index]
        own = self.certs[seller]
        return seller, own[cert_index % len(own)]

    def apply(self, action) -> None:
        getattr(self, "_" + action[0])(*action[1:])

    def _deposit(self, seller_index, cert_index, quarters) -> None:
        seller, cert = self._own(seller_index, cert_index)
        units = int(self.zcx.zcv.lotBalance(seller, cert)) * quarters // 4
        if units:
            self.market.deposit([[cert, units]], sender=seller)

    def _list(self, seller_index, cert_index, quarters, price) -> None:
        seller, cert = self._own(seller_index, cert_index)
        have = int(self.zcx.zcv.lotBalance(seller, cert)) + int(self.market.depositOf(seller, cert))
        self._list_lots(seller, [[cert, max(have * quarters // 4, 1)]], price)

    def _list_lots(self, seller, lots, price) -> None:
        tx = self.market.list(
            lots, UNIT_PRICE * price, self.chain.pending_timestamp + DAY, ANY_METHOD, 0, 0,
            sender=seller,
        )  # fmt: skip
        self.listings.append(int(tx.decode_logs(self.market.Listed)[0].listingId))

    def _buy(self, buyer_index, listing_index, quarters, capped_at_cost) -> None:
        if not self.listings:
            return
        lid = self.listings[listing_index % len(self.listings)]
        remaining = int(self.market.listing(lid).remaining)
        units = max(remaining * quarters // 4, 1)
        cost, _ = self.market.quote(lid, units)
        cap = cost if capped_at_cost else cost - 1  # a too-low cap must be refused
        self.market.buy(
            lid, units, cap, self.chain.pending_timestamp + 600, sender=self.people[buyer_index]
        )

    def _cancel(self, person_index, listing_index) -> None:
        if self.listings:
            lid = self.listings[listing_index % len(self.listings)]
            self.market.cancel(lid, sender=self.people[person_index])

    def _reprice(self, listing_index, price) -> None:
        if self.listings:
            lid = self.listings[listing_index % len(self.listings)]
            seller = self.market.listing(lid).seller
            self.market.updatePrice(lid, UNIT_PRICE * price, sender=seller)

    def _withdraw(self, seller_index, cert_index, quarters) -> None:
        seller, cert = self._own(seller_index, cert_index)
        have = int(self.market.depositOf(seller, cert))
        self.market.withdraw([[cert, max(have * quarters // 4, 1)]], sender=seller)

    def _warp(self, steps) -> None:
        self.chain.mine(timestamp=self.chain.pending_timestamp + steps * 3 * 3600)

    def _spray(self, lots) -> None:
        carol = self.people[2]
        ids = spray(self.zcx, self.sprayer, carol, [self.market, *self.sellers], lots)
        # The checks follow a few dust certificates of each spray (reading all would make the
        # test slow without testing more); the sellers may list the dust they were sent.
        self.dust.extend([*ids[:3], ids[-1]])
        for seller in self.sellers:
            self.certs[seller].extend(ids[:3])

    def _gift(self, person_index, quarters) -> None:
        giver = self.people[person_index]
        units = int(self.zcx.zcv.balanceOf(giver)) * quarters // 8
        if units:
            self.zcx.zcv.transfer(self.market, units, sender=giver)

    def _revoke(self, cert_index) -> None:
        every = self.all_certs()
        cert = every[cert_index % len(every)]
        if not self.zcx.zcv.isFrozen(cert):
            self.zcx.zcv.revokeCertificate(cert, "property test", sender=self.operator)

    def _fragment(self, seller_index) -> None:
        """One listing over every certificate the seller holds (up to the bound), 1 unit each."""
        seller = self.sellers[seller_index]
        bound = int(self.market.MAX_LISTING_CERTIFICATES())
        lots = [
            [c, 1]
            for c in sorted(set(self.certs[seller]))
            if int(self.zcx.zcv.lotBalance(seller, c)) and not self.zcx.zcv.isFrozen(c)
        ][:bound]
        if lots:
            self._list_lots(seller, lots, 1)


def _check(zcx, market, jpyt, holders, supply, world) -> None:
    # Payment token: nothing created or lost, nothing left at the market.
    assert sum(jpyt.balanceOf(h) for h in holders) == supply == jpyt.totalSupply()
    assert jpyt.balanceOf(market) == 0
    # ZCV (invariants 3 and 4): every certificate's units are all somewhere among the holders
    # (no retirements here), and the balances add up to the supply.
    for c in world.all_certs():
        units = int(zcx.zcv.certificate(c).units)
        assert sum(int(zcx.zcv.lotBalance(h, c)) for h in holders) == units
    assert sum(zcx.zcv.balanceOf(h) for h in holders) == zcx.zcv.totalSupply()
    # M1: every listing's entries add up to what is left; M2: the books per certificate equal
    # the open listings' entries plus the deposits, and the market holds at least that.
    books: dict[int, int] = {}
    for lid in world.listings:
        listing: Any = market.listing(lid)
        lots = [(int(x.certificateId), int(x.units)) for x in market.listingLots(lid)]
        assert sum(u for _, u in lots) == listing.remaining
        assert (listing.status == OPEN) == (listing.remaining > 0)
        assert len(lots) <= int(market.MAX_LISTING_CERTIFICATES())
        for c, u in lots:
            books[c] = books.get(c, 0) + u
    for seller in world.sellers:
        for c in world.all_certs():
            books[c] = books.get(c, 0) + int(market.depositOf(seller, c))
    for c in world.all_certs():
        assert int(market.custody(c)) == books.get(c, 0)
        assert int(zcx.zcv.lotBalance(market, c)) >= books.get(c, 0)
