"""Day-to-day weather for a site: a sky state per day, a clear-sky index per 10-minute sample and
the air temperature. Seeded per (seed, site, date), so a day's weather does not depend on the
window simulated around it, and neighbours at one site see the same clouds.

Sky states and their monthly odds are a coarse climatology of Japan: sunny, dry winters on the
Pacific side; cloudy, snowy winters on the Sea of Japan side; the rainy season (tsuyu) in June and
early July. The daily clear-sky index (daily irradiation / clear-sky irradiation) is drawn from a
Beta distribution per state; within the day it wanders as an AR(1) process (clouds passing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zcx.sim.sites import Site

SUNNY, MIXED, OVERCAST = "sunny", "mixed", "overcast"
STATES = (SUNNY, MIXED, OVERCAST)

# Odds of (sunny, mixed, overcast) per month, Jan..Dec.
PACIFIC_ODDS = (
    (0.62, 0.27, 0.11),
    (0.55, 0.30, 0.15),
    (0.45, 0.33, 0.22),
    (0.45, 0.35, 0.20),
    (0.45, 0.35, 0.20),
    (0.22, 0.40, 0.38),
    (0.32, 0.42, 0.26),
    (0.48, 0.38, 0.14),
    (0.33, 0.40, 0.27),
    (0.40, 0.36, 0.24),
    (0.50, 0.32, 0.18),
    (0.60, 0.28, 0.12),
)
SEA_OF_JAPAN_WINTER_ODDS = {
    1: (0.12, 0.33, 0.55),
    2: (0.15, 0.35, 0.50),
    3: (0.32, 0.36, 0.32),
    11: (0.28, 0.37, 0.35),
    12: (0.12, 0.33, 0.55),
}
# Beta(a, b) of the daily clear-sky index per state, and the AR(1) spread within the day.
DAILY_INDEX_BETA = {SUNNY: (20.0, 2.0), MIXED: (6.0, 4.5), OVERCAST: (2.5, 9.0)}
INTRADAY_SIGMA = {SUNNY: 0.04, MIXED: 0.30, OVERCAST: 0.15}
INTRADAY_RHO = 0.8  # per 10-minute step
SAMPLES_PER_DAY = 144  # 10-minute samples


@dataclass(frozen=True)
class Day:
    date: dt.date
    sky: str
    clear_sky_index: float
    mean_temp_c: float
    temp_range_c: float
    samples: np.ndarray  # 144 clear-sky-index samples, 00:00..23:50 local time


def _rng(seed: int, site: Site, date: dt.date) -> np.random.Generator:
    return np.random.default_rng([seed, sum(site.code.encode()), date.toordinal()])


def normal_temperature(site: Site, date: dt.date) -> float:
    """Climate normal for the day: monthly means interpolated between mid-months."""
    day_of_year = date.timetuple().tm_yday
    mid_month = np.array([15.5 + 30.4 * m for m in range(12)])
    x = np.concatenate([mid_month - 365, mid_month, mid_month + 365])
    y = np.tile(np.array(site.monthly_mean_c), 3)
    return float(np.interp(day_of_year, x, y))


def odds(site: Site, month: int) -> tuple[float, float, float]:
    if not site.winter_sunny and month in SEA_OF_JAPAN_WINTER_ODDS:
        return SEA_OF_JAPAN_WINTER_ODDS[month]
    return PACIFIC_ODDS[month - 1]


def day_weather(site: Site, date: dt.date, seed: int) -> Day:
    rng = _rng(seed, site, date)
    sky = STATES[int(rng.choice(3, p=odds(site, date.month)))]
    a, b = DAILY_INDEX_BETA[sky]
    index = float(rng.beta(a, b))
    sigma = INTRADAY_SIGMA[sky]
    noise = np.empty(SAMPLES_PER_DAY)
    noise[0] = rng.normal(0.0, sigma)
    innovations = rng.normal(0.0, sigma * np.sqrt(1 - INTRADAY_RHO**2), SAMPLES_PER_DAY)
    for i in range(1, SAMPLES_PER_DAY):
        noise[i] = INTRADAY_RHO * noise[i - 1] + innovations[i]
    # Cloud edges can briefly lift irradiance above clear sky; never far above it.
    samples = np.clip(index * np.exp(noise - sigma**2 / 2), 0.03, 1.12)
    anomaly = float(rng.normal(0.0, 1.8)) + {SUNNY: 0.8, MIXED: 0.0, OVERCAST: -1.0}[sky]
    temp_range = site.diurnal_range_c * {SUNNY: 1.2, MIXED: 1.0, OVERCAST: 0.55}[sky]
    return Day(date, sky, index, normal_temperature(site, date) + anomaly, temp_range, samples)


def weather_frame(site: Site, local_times: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """Clear-sky index and air temperature at each local (Asia/Tokyo) time: columns
    `clear_sky_index`, `temp_air`, `sky`."""
    days: dict[dt.date, Day] = {}
    index = np.empty(len(local_times))
    temp = np.empty(len(local_times))
    sky = np.empty(len(local_times), dtype=object)
    minutes = (local_times.hour * 60 + local_times.minute).to_numpy()
    hours = minutes / 60.0
    for i, (stamp, minute) in enumerate(zip(local_times, minutes, strict=True)):
        date = stamp.date()
        day = days.get(date)
        if day is None:
            day = days[date] = day_weather(site, date, seed)
        index[i] = day.samples[min(int(minute) // 10, SAMPLES_PER_DAY - 1)]
        # Diurnal cycle peaking mid-afternoon.
        temp[i] = day.mean_temp_c + day.temp_range_c / 2 * np.cos(
            2 * np.pi * (hours[i] - 14.5) / 24
        )
        sky[i] = day.sky
    return pd.DataFrame({"clear_sky_index": index, "temp_air": temp, "sky": sky}, index=local_times)
