"""The audit's market figures: volume, fills and average price per generation method, read from
a ZcvMarket recorded in the deployment, checked exactly against a known sequence of trades."""

from __future__ import annotations

import pandas as pd
import pytest
from audit_support import deployment_of
from market_support import FEE_BPS, SOLAR, WIND, YEN, deposit, issue, list_lots

from zcx.audit import audit, write_outputs
from zcx.audit.events import abis_from_ape
from zcx.market import deploy_market, deploy_mock_yen, statement_reference

pytest_plugins = ["market_support"]  # issuer, fee_recipient, treasury

SOLAR_PRICE = 3 * YEN // 1000  # 3 JPYT per kWh
WIND_PRICE = 5 * YEN // 1000  # 5 JPYT per kWh


@pytest.fixture(scope="module")
def abis():
    return abis_from_ape()


@pytest.fixture
def traded(zcx, issuer, admin, operator, alice, bob, carol, fee_recipient, treasury, chain):
    """Alice lists 4,000 solar units at 3 JPYT/kWh (1,500 of them from a deposit), then
    deposits 500 more,
    Carol 2,000 wind units at 5 (wind only); Bob buys 1,500 then 500 of Alice's (the listing
    stays open with 2,000) and all of Carol's, then pays a 100 JPYT statement on chain. Carol
    also sends 7 wind units to the market by plain transfer (nobody's: surplus)."""
    jpyt = deploy_mock_yen(admin, operator.address)
    market = deploy_market(
        admin, zcx.zcv, jpyt, FEE_BPS, fee_recipient, operator=operator, treasury=treasury
    )
    solar = issue(zcx, issuer, alice, 4500, SOLAR)
    wind = issue(zcx, issuer, carol, 2007, WIND)
    deposit(zcx, market, alice, [(solar, 1500)])
    first = list_lots(market, alice, [(solar, 4000)], price=SOLAR_PRICE, chain=chain)
    second = list_lots(market, carol, [(wind, 2000)], price=WIND_PRICE, method=WIND, chain=chain)
    jpyt.mint(bob, 1_000 * YEN, sender=operator)
    jpyt.approve(market, 2**256 - 1, sender=bob)
    deadline = chain.pending_timestamp + 600
    for listing, units, price in ((first, 1500, SOLAR_PRICE), (first, 500, SOLAR_PRICE)):
        market.buy(listing, units, units * price, deadline, sender=bob)
    market.buy(second, 2000, 2000 * WIND_PRICE, deadline, sender=bob)
    deposit(zcx, market, alice, [(solar, 500)])
    zcx.zcv.transferLots(market, [(wind, 7)], sender=carol)
    ref = statement_reference("2026-04-test")
    market.postStatement(ref, bob, 100 * YEN, deadline + 86400, sender=operator)
    market.payStatement(ref, 100 * YEN, sender=bob)
    return {"market": market, "solar": solar, "wind": wind}


def test_market_figures_are_exact(zcx, traded, chain, abis, bob, alice, carol, tmp_path):
    deployment = deployment_of(zcx, chain)
    deployment.contracts["ZcvMarket"] = str(traded["market"].address)
    result = audit(chain.provider.web3, deployment, abis)
    assert result.market is not None
    m = result.market.summary
    fees = (1500 * SOLAR_PRICE + 500 * SOLAR_PRICE + 2000 * WIND_PRICE) * FEE_BPS // 10_000
    assert (m["listings"], m["fills"], m["cancelled"], m["statements_paid"]) == (2, 3, 0, 1)
    assert m["volume_units"] == 4000 and m["volume_zcv"] == 4.0
    assert m["volume_cost"] == 16 * YEN and m["volume_token"] == 16.0
    assert m["fees"] == fees and m["token_decimals"] == 18
    assert m["average_price_per_kwh"] == 4.0
    by_method = result.market.by_method.set_index("method")
    assert list(by_method.index) == ["Solar", "Wind"]
    assert by_method.loc["Solar", ["fills", "units", "cost"]].tolist() == [2, 2000, 6 * YEN]
    assert by_method.loc["Wind", ["fills", "units", "cost"]].tolist() == [1, 2000, 10 * YEN]
    assert by_method["average_price_per_kwh"].tolist() == [3.0, 5.0]
    fills = result.market.fills
    assert list(fills["units"]) == [1500, 500, 2000]
    assert set(fills["buyer"]) == {bob.address}
    assert list(fills["seller"]) == [alice.address, alice.address, carol.address]
    certs = result.market.fill_certificates
    assert list(certs["certificate_id"]) == [traded["solar"], traded["solar"], traded["wind"]]
    assert result.market.statements_paid["status"].tolist() == ["PaidInToken"]
    # Custody: 2,000 solar units listed + 500 deposited are booked and held; 7 wind are surplus.
    custody = result.market.custody.set_index("certificate_id")
    assert custody.loc[traded["solar"], ["booked", "held", "surplus"]].tolist() == [2500, 2500, 0]
    assert custody.loc[traded["wind"], ["booked", "held", "surplus"]].tolist() == [0, 7, 7]
    assert (m["custody_units"], m["held_units"], m["surplus_units"]) == (2500, 2507, 7)
    assert m["custody_shortfalls"] == 0
    assert not [f for f in result.findings if f.check == "market_custody"]

    written = write_outputs(result, tmp_path, ("csv", "parquet"))
    data = written["exports"]
    exported = pd.read_csv(data / "market_by_method.csv")
    assert exported["units"].tolist() == [2000, 2000]
    assert exported["average_price_per_kwh"].tolist() == [3.0, 5.0]
    assert pd.read_csv(data / "market_summary.csv")["fills"].tolist() == [3]
    assert (data / "market_fills.parquet").stat().st_size > 0
    html = written["html"].read_text()
    assert "Market volume and average price per kWh by generation method" in html
    assert "3 fills" in html


def test_market_pages_are_read_whole(zcx, traded, chain, abis):
    """One block per log page: the same figures."""
    deployment = deployment_of(zcx, chain)
    deployment.contracts["ZcvMarket"] = str(traded["market"].address)
    result = audit(chain.provider.web3, deployment, abis, page_blocks=1, with_state=False)
    assert result.market is not None
    assert result.market.summary["fills"] == 3
    assert result.market.summary["volume_cost"] == 16 * YEN


def test_without_a_market_abi_there_are_no_market_figures(zcx, traded, chain, abis):
    deployment = deployment_of(zcx, chain)
    deployment.contracts["ZcvMarket"] = str(traded["market"].address)
    core = {name: abi for name, abi in abis.items() if name != "ZcvMarket"}
    assert audit(chain.provider.web3, deployment, core).market is None
    assert "ZcvMarket" in abis
