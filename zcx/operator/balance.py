"""The operator's 30-minute balance (同時同量), slot by slot, from the readings recorded on chain.

Per slot, over every member meter:
- community supply  = sum of PQ3: what members sold to the operator;
- community demand  = sum of PQ4: what the operator sold to members;
- wholesale         = the day-ahead spot position (+ bought, - sold). The operator plans each slot
  from a persistence forecast (see `plan`): the same slot on the latest earlier day of the same
  type, working day or day off (on the first day, with no history, the plan is taken as exact).
  It buys the forecast shortage and sells the forecast surplus;
- imbalance         = supply + wholesale - demand (+ the grid received more than planned,
  - the grid had to make up a shortage), settled at the spot price times the configured factors.

Costs: wholesale at the spot price; shortage imbalance at spot x shortage_factor (a cost),
surplus imbalance at spot x surplus_factor (an income).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from zcx.operator.prices import PriceConfig
from zcx.sim.loads import is_day_off

SLOT_SECONDS = 1800
SLOTS_PER_DAY = 48


def plan(need: np.ndarray, slot_starts: np.ndarray) -> np.ndarray:
    """The day-ahead plan of each slot's net need (demand - supply): the same slot on the latest
    earlier day of the same type (working day, or weekend / public holiday), else on the day
    before; on the window's first day there is no history and the plan is the actual need."""
    local = pd.to_datetime(slot_starts, unit="s", utc=True).tz_convert("Asia/Tokyo")
    dates = np.array([ts.date() for ts in local])
    clock = local.strftime("%H:%M")
    forecast = need.copy()
    seen: list[dt.date] = []
    positions = {day: np.flatnonzero(dates == day) for day in dict.fromkeys(dates)}
    for day, where in positions.items():
        same_type = [d for d in seen if is_day_off(d) == is_day_off(day)]
        source = same_type[-1] if same_type else (seen[-1] if seen else None)
        if source is not None:
            by_time = {clock[p]: p for p in positions[source]}
            for position in where:
                other = by_time.get(clock[position])
                if other is not None:
                    forecast[position] = need[other]
        seen.append(day)
    return forecast


def balance(
    readings: pd.DataFrame, spot: pd.Series, prices: PriceConfig, start: int, slots: int
) -> pd.DataFrame:
    """One row per slot of [start, start + slots x 30 min): slot_start (unix), supply_wh,
    demand_wh, generated_wh, consumed_wh, forecast_need_wh, wholesale_wh, wholesale_purchase_wh,
    wholesale_sale_wh, imbalance_wh, spot_jpy_per_kwh, wholesale_cost_jpy, imbalance_cost_jpy."""
    index = start + SLOT_SECONDS * np.arange(slots)
    sums = (
        readings.groupby("start")[["generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]]
        .sum()
        .reindex(index, fill_value=0)
    )
    supply = sums["sold_wh"].to_numpy(dtype=np.int64)
    demand = sums["purchased_wh"].to_numpy(dtype=np.int64)
    need = demand - supply
    forecast = plan(need, index)
    wholesale = forecast
    imbalance = supply + wholesale - demand
    price = spot.reindex(index).to_numpy(dtype=float)
    if np.isnan(price).any():
        raise ValueError("the spot series does not cover every slot of the window")
    wholesale_cost = wholesale / 1000.0 * price
    imbalance_cost = np.where(
        imbalance < 0,
        -imbalance / 1000.0 * price * prices.shortage_factor,
        -imbalance / 1000.0 * price * prices.surplus_factor,
    )
    return pd.DataFrame(
        {
            "slot_start": index,
            "slot_local": pd.to_datetime(index, unit="s", utc=True)
            .tz_convert("Asia/Tokyo")
            .strftime("%Y-%m-%d %H:%M"),
            "generated_wh": sums["generated_wh"].to_numpy(dtype=np.int64),
            "consumed_wh": sums["consumed_wh"].to_numpy(dtype=np.int64),
            "supply_wh": supply,
            "demand_wh": demand,
            "forecast_need_wh": forecast,
            "wholesale_wh": wholesale,
            "wholesale_purchase_wh": np.clip(wholesale, 0, None),
            "wholesale_sale_wh": np.clip(-wholesale, 0, None),
            "imbalance_wh": imbalance,
            "spot_jpy_per_kwh": price,
            "wholesale_cost_jpy": np.round(wholesale_cost, 2),
            "imbalance_cost_jpy": np.round(imbalance_cost, 2),
        }
    )


def summary(frame: pd.DataFrame) -> dict[str, float]:
    """Totals of a balance frame, in kWh and JPY."""
    return {
        "supply_kwh": frame["supply_wh"].sum() / 1000,
        "demand_kwh": frame["demand_wh"].sum() / 1000,
        "wholesale_purchase_kwh": frame["wholesale_purchase_wh"].sum() / 1000,
        "wholesale_sale_kwh": frame["wholesale_sale_wh"].sum() / 1000,
        "imbalance_shortage_kwh": -frame["imbalance_wh"].clip(upper=0).sum() / 1000,
        "imbalance_surplus_kwh": frame["imbalance_wh"].clip(lower=0).sum() / 1000,
        "wholesale_cost_jpy": float(frame["wholesale_cost_jpy"].sum()),
        "imbalance_cost_jpy": float(frame["imbalance_cost_jpy"].sum()),
        "mean_spot_jpy_per_kwh": float(frame["spot_jpy_per_kwh"].mean()),
    }
