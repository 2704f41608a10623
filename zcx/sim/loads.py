"""Electricity demand per 30-minute slot: typical daily shapes per profile, for working days and
for weekends / Japanese public holidays (jpholiday), scaled by the weather and by noise.

A shape is 24 hourly weights (local time); slots take the weight of their hour. Each profile is
normalised so that a working day at mild temperature uses `daily_kwh`. The temperature response
adds cooling above 22 C and heating below 16 C. Schools also have their vacations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jpholiday
import numpy as np
import pandas as pd

from zcx.sim.sites import TIMEZONE

# Hourly weights, 00:00 .. 23:00 local time.
SHAPES: dict[str, dict[str, tuple[float, ...]]] = {
    # Morning and evening peaks; the house is mostly empty during working days.
    "household": {
        "work": (
            0.30,
            0.25,
            0.22,
            0.22,
            0.23,
            0.30,
            0.55,
            0.75,
            0.60,
            0.45,
            0.40,
            0.40,
            0.45,
            0.40,
            0.38,
            0.42,
            0.55,
            0.80,
            1.00,
            1.00,
            0.95,
            0.85,
            0.65,
            0.45,
        ),
        "off": (
            0.35,
            0.28,
            0.24,
            0.22,
            0.22,
            0.25,
            0.35,
            0.55,
            0.70,
            0.70,
            0.65,
            0.65,
            0.70,
            0.62,
            0.58,
            0.60,
            0.68,
            0.85,
            1.00,
            1.00,
            0.95,
            0.85,
            0.68,
            0.48,
        ),
    },
    # Lessons 8:30-16:00; at night only security lighting and a server.
    "school": {
        "work": (
            0.04,
            0.04,
            0.04,
            0.04,
            0.04,
            0.04,
            0.06,
            0.30,
            0.85,
            1.00,
            1.00,
            1.00,
            0.95,
            1.00,
            1.00,
            0.75,
            0.50,
            0.30,
            0.12,
            0.06,
            0.05,
            0.04,
            0.04,
            0.04,
        ),
        "off": (0.04,) * 7
        + (0.05, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.06, 0.05)
        + (0.04,) * 7,
    },
    # Office hours 8:30-17:15, some overtime; servers at night.
    "town_hall": {
        "work": (
            0.08,
            0.08,
            0.08,
            0.08,
            0.08,
            0.08,
            0.10,
            0.30,
            0.80,
            1.00,
            1.00,
            1.00,
            0.90,
            1.00,
            1.00,
            1.00,
            0.95,
            0.70,
            0.35,
            0.20,
            0.15,
            0.10,
            0.08,
            0.08,
        ),
        "off": (0.08,) * 9 + (0.12,) * 8 + (0.08,) * 7,
    },
    "office": {
        "work": (
            0.30,
            0.30,
            0.30,
            0.30,
            0.30,
            0.32,
            0.40,
            0.55,
            0.85,
            1.00,
            1.00,
            1.00,
            0.92,
            1.00,
            1.00,
            1.00,
            0.98,
            0.90,
            0.75,
            0.60,
            0.48,
            0.40,
            0.34,
            0.30,
        ),
        "off": (0.28,) * 8 + (0.35,) * 10 + (0.28,) * 6,
    },
    # Two shifts (8:00-24:00), a night crew for continuous processes.
    "factory": {
        "work": (
            0.55,
            0.45,
            0.45,
            0.45,
            0.45,
            0.45,
            0.50,
            0.75,
            1.00,
            1.00,
            1.00,
            1.00,
            0.85,
            1.00,
            1.00,
            1.00,
            1.00,
            0.95,
            0.90,
            0.90,
            0.90,
            0.90,
            0.85,
            0.70,
        ),
        "off": (0.35,) * 24,
    },
    # A supermarket open 9:00-22:00 every day; refrigeration all night.
    "store": {
        "work": (
            0.45,
            0.45,
            0.45,
            0.45,
            0.45,
            0.45,
            0.50,
            0.60,
            0.80,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            1.00,
            0.95,
            0.70,
            0.50,
        ),
        "off": (
            0.45,
            0.45,
            0.45,
            0.45,
            0.45,
            0.45,
            0.50,
            0.60,
            0.85,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.05,
            1.00,
            0.95,
            0.70,
            0.50,
        ),
    },
    # A PV plant's own use: monitoring, transformer no-load losses, security; lights at night.
    "plant_aux": {
        "work": (1.2,) * 6 + (1.0,) * 12 + (1.2,) * 6,
        "off": (1.2,) * 6 + (1.0,) * 12 + (1.2,) * 6,
    },
}

# (cooling per degree above 22 C, heating per degree below 16 C), relative to the base load.
TEMPERATURE_RESPONSE: dict[str, tuple[float, float]] = {
    "household": (0.07, 0.05),
    "school": (0.05, 0.03),
    "town_hall": (0.05, 0.03),
    "office": (0.04, 0.02),
    "factory": (0.015, 0.008),
    "store": (0.03, 0.012),
    "plant_aux": (0.0, 0.0),
}
# (day-to-day lognormal sigma, slot-to-slot sigma)
NOISE: dict[str, tuple[float, float]] = {
    "household": (0.12, 0.22),
    "school": (0.05, 0.06),
    "town_hall": (0.05, 0.05),
    "office": (0.05, 0.04),
    "factory": (0.06, 0.05),
    "store": (0.04, 0.04),
    "plant_aux": (0.02, 0.02),
}
# Shapes where the year-end break (Dec 29 - Jan 3) is a day off, as in Japanese offices.
YEAR_END_OFF = {"school", "town_hall", "office", "factory"}


@dataclass(frozen=True)
class LoadSpec:
    shape: str
    daily_kwh: float  # a working day at mild temperature

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown load shape {self.shape!r}; known: {', '.join(SHAPES)}")
        if self.daily_kwh < 0:
            raise ValueError("daily_kwh must not be negative")


def is_day_off(date: dt.date, shape: str = "office") -> bool:
    """Weekends, Japanese public holidays and (for offices, schools, factories) the year-end."""
    if date.weekday() >= 5 or jpholiday.is_holiday(date):
        return True
    if shape in YEAR_END_OFF and (
        (date.month == 12 and date.day >= 29) or (date.month == 1 and date.day <= 3)
    ):
        return True
    return False


def school_vacation(date: dt.date) -> bool:
    """Summer (Jul 21 - Aug 31), winter (Dec 25 - Jan 7) and spring (Mar 25 - Apr 5) breaks."""
    m, d = date.month, date.day
    return (
        (m == 7 and d >= 21)
        or m == 8
        or (m == 12 and d >= 25)
        or (m == 1 and d <= 7)
        or (m == 3 and d >= 25)
        or (m == 4 and d <= 5)
    )


def _normalised(shape: str) -> tuple[np.ndarray, np.ndarray]:
    work = np.array(SHAPES[shape]["work"], dtype=float)
    off = np.array(SHAPES[shape]["off"], dtype=float)
    scale = work.mean()
    return work / scale, off / scale


def load_wh(
    spec: LoadSpec,
    slot_starts: pd.DatetimeIndex,
    temp_air: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Consumption in Wh per 30-minute slot (float, >= 0)."""
    local = slot_starts.tz_convert(TIMEZONE)
    work, off = _normalised(spec.shape)
    hours = local.hour.to_numpy()
    dates = [ts.date() for ts in local]
    day_off = {d: is_day_off(d, spec.shape) for d in set(dates)}
    weights = np.array(
        [off[h] if day_off[d] else work[h] for h, d in zip(hours, dates, strict=True)]
    )
    if spec.shape == "school":
        vacation = np.array([school_vacation(d) and not day_off[d] for d in dates])
        # Staff still work in vacations; no lessons.
        weights = np.where(vacation, np.maximum(off[hours], 0.35 * work[hours]), weights)
    cooling, heating = TEMPERATURE_RESPONSE[spec.shape]
    temp = np.asarray(temp_air, dtype=float)
    weather = (
        1.0 + cooling * np.clip(temp - 22.0, 0, None) + heating * np.clip(16.0 - temp, 0, None)
    )
    day_sigma, slot_sigma = NOISE[spec.shape]
    unique_days = sorted(day_off)
    day_factor = dict(
        zip(
            unique_days,
            rng.lognormal(-(day_sigma**2) / 2, day_sigma, len(unique_days)),
            strict=True,
        )
    )
    daily = np.array([day_factor[d] for d in dates])
    slot = rng.lognormal(-(slot_sigma**2) / 2, slot_sigma, len(slot_starts))
    mean_wh_per_slot = spec.daily_kwh * 1000.0 / 48.0
    return mean_wh_per_slot * weights * weather * daily * slot
