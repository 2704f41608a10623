"""The Python side of the market: pure helpers, the order book rebuilt from events alone, and
the `zcx market` commands against the test chain."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from click.testing import CliRunner
from market_support import YEN, deposit, issue, list_lots

from zcx import deployments
from zcx.deployments import Deployment
from zcx.holder import _project
from zcx.market import (
    MarketClient,
    MarketProblem,
    OrderBook,
    format_kwh_price,
    listing_lots,
    split_from_deposit,
    statement_reference,
    unit_price_from_kwh,
    units_due,
)
from zcx.market_cli import cli

pytest_plugins = ["market_support"]  # the market fixtures


def test_price_and_reference_helpers():
    assert unit_price_from_kwh("3", 18) == 3 * 10**15
    assert unit_price_from_kwh("0.5", 18) == 5 * 10**14
    assert format_kwh_price(3 * 10**15, 18) == "3"
    with pytest.raises(MarketProblem, match="whole number"):
        unit_price_from_kwh("0.5", 0)
    with pytest.raises(MarketProblem, match="positive"):
        unit_price_from_kwh("-1", 18)
    assert units_due(1001, 10) == 101 and units_due(1000, 10) == 100 and units_due(5, 0) == 0
    ref = statement_reference("2026-04-0x90f79bf6")
    assert len(ref) == 32 and statement_reference("0x" + ref.hex()) == ref
    assert listing_lots([(3, 5), (1, 2), (3, 1)]) == [(1, 2), (3, 6)]
    with pytest.raises(MarketProblem, match="at most 32"):
        listing_lots([(i, 1) for i in range(1, 34)])
    assert split_from_deposit([(1, 5), (2, 3), (4, 2)], {1: 6, 2: 1}) == (
        [(1, 5), (2, 1)],
        [(2, 2), (4, 2)],
    )


def test_order_book_fold_handles_every_event():
    book = OrderBook.from_events(
        [
            (
                "Listed",
                {
                    "listingId": 1,
                    "seller": "0x" + "11" * 20,
                    "unitPrice": 10,
                    "units": 30,
                    "expiry": 100,
                    "feeBps": 0,
                    "method": 255,
                    "periodStart": 0,
                    "periodEnd": 0,
                    "certificateIds": [1, 2],
                    "certificateUnits": [10, 20],
                },
            ),
            (
                "Bought",
                {
                    "listingId": 1,
                    "buyer": "0x" + "22" * 20,
                    "units": 25,
                    "cost": 250,
                    "fee": 0,
                    "remaining": 5,
                    "certificateIds": [2, 1],
                    "certificateUnits": [20, 5],
                },
            ),
            ("PriceUpdated", {"listingId": 1, "oldUnitPrice": 10, "newUnitPrice": 12}),
        ]
    )
    view = book.listings[1]
    assert (view.remaining, view.unit_price, view.lots, view.status) == (5, 12, ((1, 5),), "Open")
    assert book.volume_units == 25 and book.volume_cost == 250
    assert [v.id for v in book.open(now=99)] == [1] and book.open(now=100) == []
    book.apply("Cancelled", {"listingId": 1})
    assert book.listings[1].status == "Cancelled" and book.listings[1].lots == ()
    seller = "0x" + "11" * 20
    for name, units in (("Deposited", [7, 3]), ("DepositUsed", [2, 3]), ("Withdrawn", [5, 0])):
        book.apply(name, {"seller": seller, "certificateIds": [1, 2], "certificateUnits": units})
    assert book.deposits == {}


@pytest.fixture
def record(zcx, market, jpyt, chain, tmp_path):
    contracts = {
        **zcx.addresses(),
        "ZcvMarket": str(market.address),
        "MockYenToken": str(jpyt.address),
    }
    rec = Deployment(
        chain.chain_id, "ethereum:local:test", 0, chain.blocks[0].hash.hex(), contracts
    )
    deployments.save(rec, tmp_path)
    return rec


def test_order_book_from_events_matches_the_contract(
    record, zcx, market, funded, issuer, alice, bob, carol, chain
):
    client = MarketClient(record, _project())
    a, b = issue(zcx, issuer, alice, 900), issue(zcx, issuer, carol, 400)
    deposit(zcx, market, alice, [(a, 600)])
    deposit(zcx, market, carol, [(b, 100)])
    one = list_lots(market, alice, [(a, 500)], chain=chain)
    two = list_lots(market, carol, [(b, 400)], price=10**15, chain=chain)
    three = list_lots(market, alice, [(a, 400)], chain=chain)
    client.buy(bob, one, 200)
    client.buy(bob, two, 400)
    client.update_price(alice, three, 4 * 10**15)
    client.cancel(alice, one)
    book = client.order_book()
    assert {v.id: asdict(v) for v in book.listings.values()} == {
        v.id: asdict(v) for v in client.listings()
    }
    assert [v.id for v in book.open(chain.pending_timestamp)] == [three]
    assert book.volume_units == 600
    # Deposits: alice 600 deposited, 500 + 100 used by listings one and three; carol 100 used.
    assert book.deposits == {}
    client.deposit(alice, [(a, None)])  # the rest of her wallet, after the cancel's return
    client.withdraw(alice, [(a, 100)])
    assert client.deposits(alice.address) == {a: 200} == client.deposit_of(alice.address, [a])


def test_cli_list_buy_book_cancel(record, zcx, market, funded, issuer, alice, bob, chain, tmp_path):
    a = issue(zcx, issuer, alice, 2000)
    runner = CliRunner(env={"ZCX_YES": "1"})  # writes ask first; the test answers
    common = ["--deployments", str(tmp_path)]
    out = runner.invoke(
        cli,
        [
            "list",
            "--cert",
            f"{a}:1.5",
            "--price",
            "3",
            "--method",
            "solar",
            "--account",
            "TEST::3",
            *common,
        ],
    )
    assert out.exit_code == 0, out.output
    assert "Listed #1: 1.500 ZCV at 3/kWh" in out.output
    out = runner.invoke(cli, ["buy", "1", "0.5", "--account", "TEST::4", *common])
    assert out.exit_code == 0, out.output
    assert "Bought 0.500 ZCV of #1 for 1.5 JPYT" in out.output and f"cert {a}: 0.500" in out.output
    out = runner.invoke(
        cli, ["buy", "1", "0.5", "--max-total", "1", "--account", "TEST::4", *common]
    )
    assert out.exit_code == 1 and "MarketPriceAboveMax" in out.output
    out = runner.invoke(cli, ["book", "--json", *common])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["remaining"] == 1000 and row["method"] == "solar"
    out = runner.invoke(cli, ["book", *common])
    assert out.exit_code == 0 and "order book" in out.output and "3 JPYT/kWh" in out.output
    out = runner.invoke(cli, ["cancel", "1", "--account", "TEST::4", *common])
    assert out.exit_code == 1 and "MarketNotSeller" in out.output
    out = runner.invoke(cli, ["cancel", "1", "--account", "TEST::3", *common])
    assert out.exit_code == 0 and "1.000 ZCV returned" in out.output
    out = runner.invoke(cli, ["deposit", "--cert", f"{a}:0.25", "--account", "TEST::3", *common])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["deposits", "TEST::3", "--json", *common])
    assert out.exit_code == 0 and json.loads(out.output) == [{"certificate_id": a, "units": 250}]
    out = runner.invoke(cli, ["withdraw", "--cert", f"{a}:all", "--account", "TEST::3", *common])
    assert out.exit_code == 0 and "Withdrew 0.250 ZCV" in out.output
    out = runner.invoke(cli, ["deposits", "TEST::3", *common])
    assert out.exit_code == 0 and "no deposit" in out.output


def test_cli_statement_payment(record, market, funded, operator, alice, treasury, tmp_path):
    runner = CliRunner(env={"ZCX_YES": "1"})  # writes ask first; the test answers
    common = ["--deployments", str(tmp_path)]
    out = runner.invoke(
        cli, ["post-statement", "2026-04-alice", "TEST::3", "1234", "--account", "TEST::1", *common]
    )
    assert out.exit_code == 0, out.output
    funded.mint(alice, 2000 * YEN, sender=operator)
    before = funded.balanceOf(treasury)
    out = runner.invoke(cli, ["pay-statement", "2026-04-alice", "--account", "TEST::3", *common])
    assert out.exit_code == 0, out.output
    assert "Paid statement 2026-04-alice: 1,234 JPYT" in out.output
    assert funded.balanceOf(treasury) - before == 1234 * YEN
    out = runner.invoke(cli, ["pay-statement", "2026-04-alice", "--account", "TEST::3", *common])
    assert out.exit_code == 1 and "not open" in out.output
