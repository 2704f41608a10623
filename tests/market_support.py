"""Fixtures and helpers shared by the market tests (tests/test_market*.py).

The market holds listed and deposited units itself (contracts/ZcvMarket.sol): sellers approve it
once, and `list`/`deposit` pull the named certificates from their wallets. Certificates are
issued straight through ZeroCarbonValue.issue by a test account holding ISSUER_ROLE, so a test
can make certificates of any method and period in one transaction; the real claim path
(registry -> exchange -> token) is covered in test_market_trading.py too.
"""

from __future__ import annotations

from typing import Any

import pytest
from zcv_support import VINTAGE_START, event_args

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
    # The test vintage: certificates from 2023 would have expired under the 24-month default.
    start = start or VINTAGE_START
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


MAX_UINT = 2**256 - 1


def approve(zcx: Any, market: Any, seller: Any) -> None:
    """The seller lets the market pull the certificates it lists or deposits."""
    if zcx.zcv.allowance(seller, market) < 2**128:
        zcx.zcv.approve(market, MAX_UINT, sender=seller)


def deposit(zcx: Any, market: Any, seller: Any, lots: list[tuple[int, int]]) -> Any:
    """Moves (certificate id, units) from the seller's wallet to its deposit at the market."""
    approve(zcx, market, seller)
    return market.deposit([list(x) for x in sorted(lots)], sender=seller)


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
    """Lists from the seller's deposit, then its wallet (the seller approved the market)."""
    if expiry is None:
        assert chain is not None
        expiry = chain.pending_timestamp + 7 * DAY
    zcv = _zcv_of(market)
    if zcv.allowance(seller, market) < 2**128:
        zcv.approve(market, MAX_UINT, sender=seller)
    tx = market.list(
        [list(x) for x in lots], price, expiry, method, period[0], period[1], sender=seller
    )
    (event,) = event_args(tx, market.Listed)
    return int(event["listingId"])


def _zcv_of(market: Any) -> Any:
    from ape import project

    return project.ZeroCarbonValue.at(market.zcv())


def lots_of(zcx: Any, holder: Any) -> list[tuple[int, int]]:
    """(certificate id, units) of every lot the holder has, ascending id."""
    count = int(zcx.zcv.lotCount(holder))
    lots = zcx.zcv.lotsOf(holder, 0, count) if count else []
    return sorted((int(lot.certificateId), int(lot.units)) for lot in lots)


def held(zcx: Any, holder: Any) -> dict[int, int]:
    return dict(lots_of(zcx, holder))


def buy(
    market: Any, buyer: Any, listing_id: int, units: int, chain: Any, max_total: int | None = None
):
    cost = units * int(market.listing(listing_id).unitPrice)
    deadline = chain.pending_timestamp + 600
    return market.buy(
        listing_id, units, cost if max_total is None else max_total, deadline, sender=buyer
    )


def spray(zcx: Any, sprayer: Any, attacker: Any, victims: list[Any], lots: int) -> list[int]:
    """The attacker sends `lots` one-unit lots of distinct new certificates to every victim
    (contracts/test/DustSprayer.sol, 25 certificates per transaction); returns their ids."""
    ids: list[int] = []
    left = lots
    while left:
        count = min(left, 25)
        tx = sprayer.spray([str(getattr(v, "address", v)) for v in victims], count, sender=attacker)
        (event,) = event_args(tx, sprayer.Sprayed)
        ids.extend(range(event["firstCertificateId"], event["lastCertificateId"] + 1))
        left -= count
    return ids


@pytest.fixture(scope="session")
def sprayer(zcx, admin, accounts, project):
    contract = accounts[9].deploy(project.DustSprayer, zcx.zcv, zcx.registry)
    zcx.zcv.grantRole(zcx.zcv.ISSUER_ROLE(), contract, sender=admin)
    return contract
