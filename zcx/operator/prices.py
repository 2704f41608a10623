"""Contract prices (a TOML file, default config/prices.toml) and the wholesale spot series.

The synthetic spot series imitates JEPX system prices per 30-minute slot: a night trough, a
morning ramp, a midday dip where solar floods the market (deeper in spring and autumn, in sunny
weeks), an evening peak, lower weekends and holidays, day-to-day level shifts and slot noise,
floored at JEPX's 0.01 JPY/kWh. It is seeded, so a demo run is reproducible.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jpholiday
import numpy as np
import pandas as pd

DEFAULT_PRICES = Path(__file__).resolve().parent.parent.parent / "config" / "prices.toml"
KINDS = ("household", "public_facility", "business", "generator", "operator")
TIMEZONE = "Asia/Tokyo"

# Hourly shape of the spot price (relative), 00:00 .. 23:00 local time.
SPOT_SHAPE = (
    0.82,
    0.78,
    0.76,
    0.75,
    0.76,
    0.80,
    0.92,
    1.08,
    1.12,
    1.02,
    0.92,
    0.86,
    0.84,
    0.86,
    0.92,
    1.02,
    1.18,
    1.40,
    1.45,
    1.35,
    1.20,
    1.05,
    0.95,
    0.88,
)
# Depth of the solar midday dip per month (fraction of the price removed at 12:00).
SOLAR_DIP = (0.20, 0.30, 0.45, 0.55, 0.55, 0.35, 0.30, 0.25, 0.35, 0.45, 0.35, 0.20)
# Seasonal level per month (winter and summer peaks).
SEASON = (1.25, 1.20, 1.00, 0.85, 0.85, 0.95, 1.15, 1.30, 1.05, 0.90, 0.95, 1.15)


class PriceConfigError(ValueError):
    """The prices file is missing something or holds a bad value."""


@dataclass(frozen=True)
class TimeOfUse:
    day: float
    night: float
    night_start_hour: int
    night_end_hour: int

    def price(self, local_hour: int) -> float:
        start, end = self.night_start_hour, self.night_end_hour
        night = (
            (local_hour >= start or local_hour < end) if start > end else start <= local_hour < end
        )
        return self.night if night else self.day


@dataclass(frozen=True)
class PriceConfig:
    buy: dict[str, float]
    sell: dict[str, TimeOfUse]
    wholesale_source: str
    wholesale_csv: Path | None
    base_jpy_per_kwh: float
    floor_jpy_per_kwh: float
    shortage_factor: float
    surplus_factor: float
    jpy_per_zcv: float
    source: Path

    def buy_price(self, kind: str) -> float:
        return self.buy[kind]

    def sell_price(self, kind: str, local_hour: int) -> float:
        return self.sell[kind].price(local_hour)


def _number(table: dict[str, Any], key: str, where: str) -> float:
    try:
        value = table[key]
    except KeyError:
        raise PriceConfigError(f"{where}: missing '{key}'") from None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise PriceConfigError(f"{where}.{key}: must be a non-negative number, got {value!r}")
    return float(value)


def load_prices(path: Path | None = None) -> PriceConfig:
    """Reads and checks the prices file. Raises PriceConfigError naming the bad key."""
    path = path or DEFAULT_PRICES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceConfigError(f"{path} not found; copy config/prices.toml and edit it") from None
    except tomllib.TOMLDecodeError as exc:
        raise PriceConfigError(f"{path}: not valid TOML: {exc}") from None
    buy_table = data.get("buy", {})
    sell_table = data.get("sell", {})
    buy = {kind: _number(buy_table, kind, "buy") for kind in KINDS}
    sell = {}
    for kind in KINDS:
        t = sell_table.get(kind)
        if not isinstance(t, dict):
            raise PriceConfigError(f"sell.{kind}: missing table")
        sell[kind] = TimeOfUse(
            _number(t, "day", f"sell.{kind}"),
            _number(t, "night", f"sell.{kind}"),
            int(_number(t, "night_start_hour", f"sell.{kind}")) % 24,
            int(_number(t, "night_end_hour", f"sell.{kind}")) % 24,
        )
    wholesale = data.get("wholesale", {})
    source = str(wholesale.get("source", "synthetic"))
    if source not in ("synthetic", "csv"):
        raise PriceConfigError(f"wholesale.source: 'synthetic' or 'csv', got {source!r}")
    csv_path = str(wholesale.get("csv", "") or "")
    if source == "csv" and not csv_path:
        raise PriceConfigError("wholesale.csv: a path is required when source = 'csv'")
    csv_file = Path(csv_path) if csv_path else None
    if csv_file is not None and not csv_file.is_absolute():
        csv_file = path.parent / csv_file
    imbalance = data.get("imbalance", {})
    return PriceConfig(
        buy=buy,
        sell=sell,
        wholesale_source=source,
        wholesale_csv=csv_file,
        base_jpy_per_kwh=_number(wholesale, "base_jpy_per_kwh", "wholesale"),
        floor_jpy_per_kwh=_number(wholesale, "floor_jpy_per_kwh", "wholesale"),
        shortage_factor=_number(imbalance, "shortage_factor", "imbalance"),
        surplus_factor=_number(imbalance, "surplus_factor", "imbalance"),
        jpy_per_zcv=_number(data.get("coin", {}), "jpy_per_zcv", "coin"),
        source=path,
    )


def synthetic_spot(
    start: int, slots: int, seed: int, base: float = 11.0, floor: float = 0.01
) -> pd.Series:
    """JEPX-like spot prices (JPY/kWh) for `slots` 30-minute slots from unix time `start`,
    indexed by slot start (unix seconds)."""
    starts = start + 1800 * np.arange(slots)
    local = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True)).tz_convert(TIMEZONE)
    hours = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    months = local.month.to_numpy()
    dates = [ts.date() for ts in local]
    shape = np.interp(hours, np.arange(25), np.array(SPOT_SHAPE + (SPOT_SHAPE[0],)))
    dip = np.array([SOLAR_DIP[m - 1] for m in months]) * np.exp(-(((hours - 12.25) / 2.3) ** 2))
    season = np.array([SEASON[m - 1] for m in months])
    off = np.array([d.weekday() >= 5 or jpholiday.is_holiday(d) for d in dates])
    day_level = {}
    for d in sorted(set(dates)):
        rng = np.random.default_rng([seed, 0x13E9, d.toordinal()])
        day_level[d] = (float(rng.lognormal(0.0, 0.18)), float(rng.uniform(0.6, 1.4)))
    level = np.array([day_level[d][0] for d in dates])
    dip_scale = np.array([day_level[d][1] for d in dates])
    rng = np.random.default_rng([seed, 0x13E9])
    noise = np.empty(slots)
    prev = 0.0
    for i in range(slots):
        prev = 0.7 * prev + rng.normal(0.0, 0.06)
        noise[i] = prev
    price = base * season * level * shape * (1 - np.clip(dip * dip_scale, 0, 0.99))
    price = price * np.where(off, 0.85, 1.0) * np.exp(noise)
    return pd.Series(np.maximum(np.round(price, 2), floor), index=starts, name="spot_jpy_per_kwh")


def csv_spot(path: Path, start: int, slots: int) -> pd.Series:
    """The user's series: columns interval_start (ISO-8601 with offset, or unix seconds) and
    price_jpy_per_kwh. Every slot of the window must be present."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise PriceConfigError(f"wholesale price CSV {path} not found") from None
    for column in ("interval_start", "price_jpy_per_kwh"):
        if column not in frame.columns:
            raise PriceConfigError(f"{path}: missing column {column!r}")
    raw = frame["interval_start"]
    if pd.api.types.is_numeric_dtype(raw):
        stamps = raw.astype("int64")
    else:
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601")
        stamps = (parsed.astype("int64") // 10**9).astype("int64")
    series = pd.Series(frame["price_jpy_per_kwh"].astype(float).to_numpy(), index=stamps.to_numpy())
    wanted = start + 1800 * np.arange(slots)
    missing = [int(s) for s in wanted if s not in series.index]
    if missing:
        first = dt.datetime.fromtimestamp(missing[0], dt.UTC).isoformat()
        raise PriceConfigError(f"{path}: {len(missing)} slots missing, first at {first}")
    return series.loc[wanted].rename("spot_jpy_per_kwh")


def spot_series(config: PriceConfig, start: int, slots: int, seed: int) -> pd.Series:
    if config.wholesale_source == "csv" and config.wholesale_csv is not None:
        return csv_spot(config.wholesale_csv, start, slots)
    return synthetic_spot(start, slots, seed, config.base_jpy_per_kwh, config.floor_jpy_per_kwh)
