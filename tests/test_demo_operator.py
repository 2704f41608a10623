"""The operator's platform: contract prices, spot series, the 30-minute balance, statements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zcx.domain import payment_reference
from zcx.operator.balance import balance, summary
from zcx.operator.prices import (
    PriceConfigError,
    csv_spot,
    load_prices,
    spot_series,
    synthetic_spot,
)
from zcx.operator.statements import statement_id, statements

START = int(pd.Timestamp("2025-11-03 00:00", tz="Asia/Tokyo").timestamp())  # a Monday, JST
HH = "0x" + "11" * 20
GEN = "0x" + "22" * 20


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def test_default_prices_and_time_of_use(prices):
    assert prices.buy_price("household") == 8.5
    assert prices.sell_price("household", 23) == prices.sell_price("household", 3) == 24.0
    assert prices.sell_price("household", 7) == prices.sell_price("household", 22) == 31.0
    assert prices.sell_price("business", 21) == 19.5 and prices.sell_price("business", 22) == 15.0


def test_bad_price_files_name_the_problem(tmp_path, prices):
    text = prices.source.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("household = 8.5", 'household = "cheap"'))
    with pytest.raises(PriceConfigError, match=r"buy\.household"):
        load_prices(bad)
    bad.write_text(text.replace("[sell.generator]", "[sell.generatorX]"))
    with pytest.raises(PriceConfigError, match=r"sell\.generator: missing"):
        load_prices(bad)
    bad.write_text(text.replace('source = "synthetic"', 'source = "csv"'))
    with pytest.raises(PriceConfigError, match="wholesale.csv"):
        load_prices(bad)
    bad.write_text("not [valid toml")
    with pytest.raises(PriceConfigError, match="not valid TOML"):
        load_prices(bad)
    with pytest.raises(PriceConfigError, match="not found"):
        load_prices(tmp_path / "missing.toml")


def test_synthetic_spot_looks_like_jepx():
    spot = synthetic_spot(START, 14 * 48, seed=1)
    assert len(spot) == 14 * 48 and spot.min() >= 0.01
    assert spot.equals(synthetic_spot(START, 14 * 48, seed=1))
    assert not spot.equals(synthetic_spot(START, 14 * 48, seed=2))
    local = pd.to_datetime(spot.index, unit="s", utc=True).tz_convert("Asia/Tokyo")
    hours = local.hour
    assert spot[(hours >= 17) & (hours < 20)].mean() > 1.2 * spot[(hours >= 1) & (hours < 5)].mean()
    weekend = local.dayofweek >= 5
    assert spot[weekend].mean() < spot[~weekend].mean()


def test_user_spot_csv(tmp_path, prices):
    path = tmp_path / "spot.csv"
    stamps = [
        pd.Timestamp(START + 1800 * i, unit="s", tz="UTC").tz_convert("Asia/Tokyo").isoformat()
        for i in range(48)
    ]
    pd.DataFrame({"interval_start": stamps, "price_jpy_per_kwh": range(48)}).to_csv(
        path, index=False
    )
    series = csv_spot(path, START, 48)
    assert list(series) == list(range(48)) and series.index[0] == START
    with pytest.raises(PriceConfigError, match="1 slots missing"):
        csv_spot(path, START, 49)
    config = tmp_path / "prices.toml"
    config.write_text(
        prices.source.read_text()
        .replace('source = "synthetic"', 'source = "csv"')
        .replace('csv = ""', 'csv = "spot.csv"')
    )
    assert list(spot_series(load_prices(config), START, 48, seed=0)) == list(range(48))


def _readings(days: int) -> pd.DataFrame:
    """A generator selling 2 kWh per slot by day (08:00-16:00) and a household buying 1 kWh per
    slot all day; on day 2 the generator only sells 1 kWh (a cloudy day)."""
    rows = []
    for slot in range(days * 48):
        start = START + 1800 * slot
        hour = (slot % 48) // 2
        sunny = slot < 48
        sold = (2000 if sunny else 1000) if 8 <= hour < 16 else 0
        rows.append(("GEN-1", start, start + 1800, sold, 10, sold, 10))
        rows.append(("HH-1", start, start + 1800, 0, 1000, 0, 1000))
    columns = ["meter_id", "start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]
    return pd.DataFrame(rows, columns=columns)


def test_balance_slot_by_slot(prices):
    readings = _readings(2)
    spot = pd.Series(10.0, index=START + 1800 * pd.RangeIndex(96))
    frame = balance(readings, spot, prices, START, 96)
    noon_day1, noon_day2, night_day2 = frame.iloc[24], frame.iloc[48 + 24], frame.iloc[48 + 2]
    assert (noon_day1.supply_wh, noon_day1.demand_wh) == (2000, 1010)
    assert noon_day1.wholesale_wh == -990 and noon_day1.imbalance_wh == 0  # first day: exact plan
    # Day 2 plans from day 1 (persistence): it sells 990 Wh, but only 1000 - 1010 is available.
    assert noon_day2.wholesale_wh == -990 and noon_day2.imbalance_wh == 1000 - 990 - 1010
    assert noon_day2.imbalance_cost_jpy == pytest.approx(1.0 * 10.0 * prices.shortage_factor)
    assert night_day2.wholesale_purchase_wh == 1010 and night_day2.imbalance_wh == 0
    assert night_day2.wholesale_cost_jpy == pytest.approx(10.1)
    totals = summary(frame)
    assert totals["imbalance_shortage_kwh"] == pytest.approx(16 * 1.0)
    assert totals["supply_kwh"] == pytest.approx((16 * 2000 + 16 * 1000) / 1000)


def test_balance_refuses_a_short_price_series(prices):
    with pytest.raises(ValueError, match="spot series"):
        balance(_readings(1), pd.Series(10.0, index=[START]), prices, START, 48)


def test_monthly_statements_from_pq3_and_pq4(prices):
    readings = _readings(1)
    members = pd.DataFrame(
        [
            (GEN, "Solar plant", "generator", True, "GEN-1"),
            (HH, "Sato household", "household", True, "HH-1"),
        ],
        columns=["account", "name", "kind", "active", "meter_id"],
    )
    month = "2025-11"
    ref = "0x" + payment_reference(statement_id(month, HH)).hex()
    stranger = "0x" + "ee" * 20
    payments = pd.DataFrame(
        [
            (HH, GEN, 2_000, ref, 1),
            # Neither counts: a stranger paying with HH's reference, HH paying someone else.
            (stranger, GEN, 5_000, ref, 2),
            (HH, stranger, 7_000, ref, 3),
        ],
        columns=["from", "to", "units", "payment_reference", "block"],
    )
    frame = statements(readings, members, prices, payments, operator=GEN).set_index("name")
    household = frame.loc["Sato household"]
    # 48 kWh bought: 16 night slots (23:00-07:00) at 24 JPY, 32 day slots at 31 JPY.
    assert household.purchased_wh == 48_000
    assert household.charged_to_member_jpy == round(16 * 24.0 + 32 * 31.0)
    assert household.coins_paid_units == 2_000
    assert household.coins_credit_jpy == round(2 * prices.jpy_per_zcv)
    plant = frame.loc["Solar plant"]
    assert plant.paid_to_member_jpy == round(32.0 * prices.buy_price("generator"))
    assert plant.due_jpy < 0  # the operator owes the plant
    assert household.statement_id == f"{month}-{HH[:10]}"
    with pytest.raises(ValueError, match="unregistered meters"):
        statements(readings, members.iloc[:1], prices)


def test_plan_uses_the_latest_day_of_the_same_type():
    """Fri 2025-11-07 .. Mon 11-10: Saturday has no earlier day off and falls back to Friday;
    Sunday plans from Saturday; Monday plans from Friday, not from Sunday."""
    from zcx.operator.balance import plan

    friday = int(pd.Timestamp("2025-11-07 00:00", tz="Asia/Tokyo").timestamp())
    slots = friday + 1800 * np.arange(4 * 48)
    need = np.repeat(np.array([100, 7, 5, 300]), 48)  # Fri, Sat, Sun, Mon
    forecast = plan(need, slots)
    assert list(forecast[::48]) == [100, 100, 7, 100]
