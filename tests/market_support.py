"""Fixtures and helpers shared by the market tests (tests/test_market*.py).

Certificates are issued straight through ZeroCarbonValue.issue by a test account holding
ISSUER_ROLE, so a test can make certificates of any method and period in one transaction;
the real claim path (registry -> exchange -> token) is covered in test_market_trading.py too.
"""

from __future__ import annotations

from typing import Any

import pytest
from zcv_support import event_args

from zcx.market import ANY_METHOD, deploy_market, deploy_mock_yen

YEN = 10**18  # JPYT has 18 decimals
UNIT_PRICE = 3 * YEN // 1000  # 3 JPYT per kWh, per Wh unit
FEE_BPS = 250
SOLAR, WIND = 0, 1
DAY = 86400
__all__ = ["ANY_METHOD", "event_args"]


@pytest.fixture(scope="session")
def issuer(accounts, zcx, admin):
    account = accounts[6]
    zcx.zcv.grantRole(zcx.zcv.ISSUER_ROLE(), account, sender=admin)
    return account


@pytest.fixture(scope="session")
def fee_recipient(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def jpyt(admin, operator):
    return deploy_mock_yen(admin, operator.address)


@pytest.fixture(scope="session")
def market(zcx, jpyt, admin, operator, fee_recipient, treasury):
    return deploy_market(
        admin, zcx.zcv, jpyt, FEE_BPS, fee_recipient, operator=operator, treasury=treasury
    )


@pytest.fixture(scope="session")
def funded(jpyt, market, operator, alice, bob, carol):
    """Bob and Carol hold 1,000,000 JPYT each and approved the market for all of it."""
    for buyer in (bob, carol):
        jpyt.mint(buyer, 1_000_000 * YEN, sender=operator)
        jpyt.approve(market, 2**256 - 1, sender=buyer)
    return jpyt


def issue(
    zcx: Any, issuer: Any, to: Any, units: int, method: int = SOLAR, start: int = 0, end: int = 0
) -> int:
    """A certificate of `units` to `to`; returns its id."""
    start = start or 1_700_000_000
    end = end or start + 1800
    tx = zcx.zcv.issue(
        to,
        (
            zcx.registry.address,
            b"\x11" * 32,
            "Test PV",
            method,
            units,
            start,
            end,
            "TEPCO-13",
            5000,
            b"\x22" * 32,
            units,
        ),
        sender=issuer,
    )
    (event,) = event_args(tx, zcx.zcv.CertificateIssued)
    return int(event["certificateId"])


def deposit(zcx: Any, market: Any, seller: Any, picks: list[tuple[int, int]]) -> None:
    """Moves (certificate id, units) from the seller's wallet to its escrow."""
    held = [(int(lot.certificateId), int(lot.units)) for lot in zcx.zcv.lotsOf(seller)]
    from zcx.holder import plan_lot_picks

    plan = plan_lot_picks(held, list(picks))
    zcx.zcv.transferLots(market.escrowOf(seller), [p.as_tuple() for p in plan], sender=seller)


def list_lots(
    market: Any,
    seller: Any,
    lots: list[tuple[int, int]],
    price: int = UNIT_PRICE,
    expiry: int | None = None,
    method: int = ANY_METHOD,
    period: tuple[int, int] = (0, 0),
    chain: Any = None,
) -> int:
    if expiry is None:
        assert chain is not None
        expiry = chain.pending_timestamp + 7 * DAY
    tx = market.list(
        [list(x) for x in lots], price, expiry, method, period[0], period[1], sender=seller
    )
    (event,) = event_args(tx, market.Listed)
    return int(event["listingId"])


def lots_of(zcx: Any, holder: Any) -> list[tuple[int, int]]:
    return [(int(lot.certificateId), int(lot.units)) for lot in zcx.zcv.lotsOf(holder)]


def held(zcx: Any, holder: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for c, u in lots_of(zcx, holder):
        out[c] = out.get(c, 0) + u
    return out


def buy(
    market: Any, buyer: Any, listing_id: int, units: int, chain: Any, max_total: int | None = None
):
    cost = units * int(market.listing(listing_id).unitPrice)
    deadline = chain.pending_timestamp + 600
    return market.buy(
        listing_id, units, cost if max_total is None else max_total, deadline, sender=buyer
    )
