"""A short demo run on Anvil through the real oracle: a few members, one day."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from rich.console import Console

from zcx.demo import DemoOptions, run_demo
from zcx.ids import meter_id
from zcx.sim.simulate import balance_errors


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    options = DemoOptions(
        members=6,
        days=1,
        seed=7,
        out_dir=out / "report",
        deployments_dir=out / "deployments",
        delivery="oracle",
        speedup=86400 / 8,
        post_every=12,
        work_dir=out / "work",
        confirm_timeout_s=240,
    )
    return run_demo(options, Console(quiet=True))


def test_demo_went_through_the_oracle(demo):
    assert demo.delivery == "oracle"
    assert "real oracle service over HTTP" in demo.delivery_note
    assert len(demo.chain_readings) == 6 * 48


def test_every_simulated_reading_balances(demo):
    readings = demo.simulation.readings
    assert len(readings) == 6 * 48
    assert balance_errors(readings).empty
    lhs = readings["generated_wh"] + readings["purchased_wh"] + readings["discharge_wh"]
    rhs = readings["consumed_wh"] + readings["sold_wh"] + readings["charge_wh"]
    assert (lhs == rhs).all()


def test_chain_holds_exactly_the_simulated_readings(demo):
    keys = ["meter_id", "start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]
    sim = demo.simulation.readings[keys].sort_values(["meter_id", "start"], ignore_index=True)
    onchain = demo.chain_readings[keys].sort_values(["meter_id", "start"], ignore_index=True)
    assert sim.equals(onchain)


def test_coins_issued_equal_verified_generation_times_rate(demo, chain):
    from ape import project

    rate = demo.rate_units_per_kwh
    assert rate == 1000
    registry = project.GenerationRegistry.at(demo.deployment.address("GenerationRegistry"))
    exchange = project.ValueExchange.at(demo.deployment.address("ValueExchange"))
    zcv = project.ZeroCarbonValue.at(demo.deployment.address("ZeroCarbonValue"))
    generated = demo.chain_readings.groupby("meter_id")["generated_wh"].sum()
    issued_by_meter = demo.certificates.groupby("meter_id")["units"].sum()
    for label, wh in generated.items():
        mid = meter_id(label)
        assert registry.claimedWh(mid) == wh  # every member claimed everything
        members = registry.memberRegistry()
        assert exchange.meterClaims(members, mid).issuedUnits == wh * rate // 1000
        assert issued_by_meter.get(label, 0) == wh * rate // 1000
    assert zcv.totalIssued() == generated.sum() * rate // 1000
    assert zcv.totalSupply() + zcv.totalRetired() == zcv.totalIssued()
    assert all(demo.checks.values()), demo.checks


def test_households_paid_and_a_business_retired_for_a_beneficiary(demo):
    assert len(demo.retirements) == 1
    retirement = demo.retirements[0]
    business = next(p for p in demo.participants if p.address == retirement.holder)
    assert business.spec.kind == 2  # Business
    assert retirement.beneficiary.startswith(business.spec.name)
    assert (retirement.consumption_start, retirement.consumption_end) == (
        demo.simulation.start,
        demo.simulation.end,
    )
    # It holds coins from other members' certificates too: the trail crosses holders.
    issued_to = demo.certificates.set_index("certificate_id")["to"]
    assert any(issued_to[c] != business.address for c in retirement.certificate_ids)
    assert sum(retirement.certificate_units) == retirement.units
    assert len(demo.payments) >= 1
    paid_refs = set(demo.payments["payment_reference"])
    assert paid_refs <= set(demo.statements["payment_reference"])
    credited = demo.statements[demo.statements["coins_paid_units"] > 0]
    assert len(credited) == len(paid_refs)


def test_coins_were_traded_on_the_market_and_a_bill_settled_on_chain(demo):
    from ape import project

    from zcx.market import OrderBook, fetch_market_events, statement_reference

    assert {"ZcvMarket", "MockYenToken"} <= set(demo.deployment.contracts)
    market = project.ZcvMarket.at(demo.deployment.address("ZcvMarket"))
    book = OrderBook.from_events(fetch_market_events(market, demo.deployment.deployment_block))
    assert len(book.trades) == len(demo.trades) > 0
    assert book.volume_units == round(demo.trades["bought_zcv"].sum() * 1000) > 0
    first = demo.trades.iloc[0]
    assert first["restriction"] == "solar only"
    assert first["status"] == "Open" and 0 < first["bought_zcv"] < first["listed_zcv"]  # partial
    assert book.listings[int(first["listing"])].method == "solar"
    retirement = demo.retirements[0]
    business = next(p for p in demo.participants if p.address == retirement.holder)
    for trade in demo.trades.to_dict("records"):
        assert trade["buyer"] == business.spec.name
        # Provenance: the buyer received certificates of the listing, and retired them.
        assert set(trade["bought_certificates"]) <= set(trade["listed_certificates"])
        assert set(trade["bought_certificates"]) <= set(retirement.certificate_ids)
    assert (demo.trades["status"].iloc[1:] == "Filled").all()
    (bill,) = demo.settlement.to_dict("records")
    assert bill["status"] == "PaidInToken"
    assert market.statement(statement_reference(bill["statement_id"])).status == 2
    html = demo.report_path.read_text()
    assert "Trades on the ZCV market" in html and "posted and paid on chain" in html
    assert (demo.report_path.parent / "market_trades.csv").stat().st_size > 100


def test_balance_report_is_consistent(demo):
    b = demo.balance
    assert len(b) == 48
    assert (
        b["supply_wh"] == demo.chain_readings.groupby("start")["sold_wh"].sum().to_numpy()
    ).all()
    assert (b["imbalance_wh"] == b["supply_wh"] + b["wholesale_wh"] - b["demand_wh"]).all()
    assert (b["wholesale_purchase_wh"] - b["wholesale_sale_wh"] == b["wholesale_wh"]).all()


def test_report_files_exist_and_are_not_empty(demo):
    directory = demo.report_path.parent
    assert demo.report_path.name == "index.html"
    html = demo.report_path.read_text()
    for name in ("generation_vs_consumption", "coins_by_kind", "balance", "certificate_trail"):
        png = directory / f"{name}.png"
        assert png.stat().st_size > 5_000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"{name}.png" in html
    for table in ("members_by_kind", "balance_30min", "statements", "retirement_trail"):
        assert (directory / f"{table}.csv").stat().st_size > 100, table
    assert (directory / "gateway_readings.csv").stat().st_size > 10_000
    # Reads well: a PASS/FAIL list, CSV links that resolve, local times, no machine paths.
    assert html.count("<span class='badge PASS'>") == len(demo.checks)
    for link in re.findall(r"href='([^']+\.csv)'", html):
        assert (directory / link).is_file(), link
    assert "Times are ISO 8601 in JST" in html
    assert "href='gateway_readings.csv'" in html and "href='gateway_broute.csv'" in html
    assert not re.search(r"(?<![\w.~])/(?:home|root|tmp|work)/", html)
    assert not re.search(r">1,7\d\d,\d{3},\d{3}<", html)  # no unix seconds shown as numbers


def test_operator_cli_rebuilds_the_balance_from_the_chain(demo, chain, tmp_path):
    from click.testing import CliRunner

    from zcx.operator.cli import cli

    args = [
        "--rpc-url",
        str(chain.provider.uri),
        "--deployments-dir",
        str(demo.options.deployments_dir),
    ]
    result = CliRunner().invoke(
        cli, [*args, "balance", "--out", str(tmp_path), "--seed", str(demo.options.seed)]
    )
    assert result.exit_code == 0, result.output
    rebuilt = pd.read_csv(tmp_path / "balance_30min.csv")
    for column in ("supply_wh", "demand_wh", "wholesale_wh", "imbalance_wh"):
        assert list(rebuilt[column]) == list(demo.balance[column]), column
    assert (tmp_path / "balance.png").stat().st_size > 5_000
    out = tmp_path / "statements.csv"
    result = CliRunner().invoke(cli, [*args, "statements", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == len(demo.statements)


def test_operator_cli_says_what_to_do_without_a_deployment(chain, tmp_path):
    from click.testing import CliRunner

    from zcx.operator.cli import cli

    result = CliRunner().invoke(
        cli, ["--rpc-url", str(chain.provider.uri), "--deployments-dir", str(tmp_path), "balance"]
    )
    assert result.exit_code == 1
    assert "run `ape run deploy`" in result.output
