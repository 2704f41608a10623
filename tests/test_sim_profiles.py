"""The simulator's profile generators: PV from pvlib, load shapes, batteries, energy balance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from zcx.sim.battery import Battery, BatterySpec, dispatch
from zcx.sim.community import MemberKind, allocate, build_community
from zcx.sim.loads import LoadSpec, is_day_off, load_wh
from zcx.sim.pv import PvSystem, SiteSky, slot_index
from zcx.sim.simulate import aligned_window, balance_errors, simulate
from zcx.sim.sites import SITES, TIMEZONE

JST_MIDNIGHT_2025 = pd.Timestamp("2025-01-01 00:00", tz=TIMEZONE).tz_convert("UTC")


def _year(code: str, seed: int) -> SiteSky:
    return SiteSky.compute(SITES[code], slot_index(JST_MIDNIGHT_2025, 365 * 48), seed)


@pytest.fixture(scope="module")
def tokyo_year() -> SiteSky:
    return _year("TKY", 1)


def test_pv_is_zero_at_night(tokyo_year):
    wh = tokyo_year.pv_wh(PvSystem(5.0, 4.5))
    local_hours = tokyo_year.slot_starts.tz_convert(TIMEZONE).hour
    night = (local_hours >= 20) | (local_hours < 4)
    assert night.sum() > 0
    assert np.all(wh[night] == 0)
    # ... and positive on some slot of every day (even overcast days carry diffuse light).
    daily = (
        pd.Series(wh, index=tokyo_year.slot_starts.tz_convert(TIMEZONE).date).groupby(level=0).sum()
    )
    assert (daily > 0).all()


def test_pv_yearly_yield_is_plausible_for_tokyo(tokyo_year):
    """Tokyo rooftop PV yields about 1,100-1,250 kWh/kWp a year; weather varies by seed."""
    yields = [tokyo_year.pv_wh(PvSystem(1.0, 1.0)).sum() / 1000]
    yields += [_year("TKY", seed).pv_wh(PvSystem(1.0, 1.0)).sum() / 1000 for seed in (2, 3)]
    for kwh_per_kwp in yields:
        assert 1_000 <= kwh_per_kwp <= 1_400, yields
    assert len({round(y) for y in yields}) == 3, "seeds must change the weather"


def test_pv_sites_differ_the_way_climate_says():
    """Cloudy Sea-of-Japan winters: Kanazawa yields less than Fukuoka in January, same seed."""
    january = slot_index(JST_MIDNIGHT_2025, 31 * 48)
    kanazawa = SiteSky.compute(SITES["KNZ"], january, 5).pv_wh(PvSystem(1.0, 1.0)).sum()
    fukuoka = SiteSky.compute(SITES["FUK"], january, 5).pv_wh(PvSystem(1.0, 1.0)).sum()
    assert kanazawa < 0.8 * fukuoka


def test_pv_is_clipped_at_the_inverter_and_faces_south(tokyo_year):
    south = tokyo_year.pv_wh(PvSystem(1.3, 1.0, tilt_deg=30, azimuth_deg=180))
    assert south.max() <= 1.0 * 1000 * 0.5 + 1e-9
    north = tokyo_year.pv_wh(PvSystem(1.3, 1.0, tilt_deg=30, azimuth_deg=0))
    assert north.sum() < 0.8 * south.sum()


def test_pv_is_reproducible_from_the_seed():
    window = slot_index(JST_MIDNIGHT_2025, 96)
    a = SiteSky.compute(SITES["OSA"], window, 9).pv_wh(PvSystem(4.0, 4.0))
    b = SiteSky.compute(SITES["OSA"], window, 9).pv_wh(PvSystem(4.0, 4.0))
    c = SiteSky.compute(SITES["OSA"], window, 10).pv_wh(PvSystem(4.0, 4.0))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def _load(shape: str, days: int = 28, start: str = "2025-10-06", seed: int = 3) -> pd.Series:
    """Four weeks from a Monday, at a mild 18 C."""
    slots = slot_index(pd.Timestamp(f"{start} 00:00", tz=TIMEZONE).tz_convert("UTC"), days * 48)
    wh = load_wh(
        LoadSpec(shape, 100.0), slots, np.full(len(slots), 18.0), np.random.default_rng(seed)
    )
    return pd.Series(wh, index=slots.tz_convert(TIMEZONE))


def test_school_night_load_is_small():
    load = _load("school")
    working = [not is_day_off(d, "school") for d in load.index.date]
    weekday = load[working]
    night = weekday[(weekday.index.hour < 5)].mean()
    lessons = weekday[(weekday.index.hour >= 10) & (weekday.index.hour < 14)].mean()
    assert night < 0.1 * lessons


def test_business_loads_drop_on_weekends_and_holidays():
    for shape in ("office", "factory"):
        load = _load(shape)
        daily = load.groupby(load.index.date).sum()
        off = np.array([is_day_off(d, shape) for d in daily.index])
        assert daily[off].mean() < 0.6 * daily[~off].mean(), shape
    # 2025-10-13 is Sports Day (a Monday): an office treats it like a Sunday.
    assert is_day_off(dt.date(2025, 10, 13)) and not is_day_off(dt.date(2025, 10, 14))
    office = _load("office")
    daily = office.groupby(office.index.date).sum()
    assert daily[dt.date(2025, 10, 13)] < 0.6 * daily[dt.date(2025, 10, 14)]


def test_household_has_an_evening_peak():
    load = _load("household")
    weekday = load[[d.weekday() < 5 for d in load.index.date]]
    hour = weekday.index.hour
    evening = weekday[(hour >= 18) & (hour < 22)].mean()
    assert evening > 1.6 * weekday[(hour >= 10) & (hour < 15)].mean()
    assert evening > 2.5 * weekday[(hour >= 1) & (hour < 5)].mean()


def test_loads_rise_in_the_heat():
    mild = _load("household", seed=1).sum()
    slots = slot_index(pd.Timestamp("2025-10-06 00:00", tz=TIMEZONE).tz_convert("UTC"), 28 * 48)
    hot = load_wh(
        LoadSpec("household", 100.0), slots, np.full(len(slots), 32.0), np.random.default_rng(1)
    ).sum()
    assert hot > 1.3 * mild


def test_battery_self_consumption_rule():
    battery = Battery(BatterySpec(10_000, 3_000))
    noon = dispatch(3_000, 500, battery, 12, has_pv=True)
    assert noon.charge == 1_500 and noon.sold == 1_000 and noon.purchased == 0  # power-limited
    evening = dispatch(0, 800, battery, 19, has_pv=True)
    assert evening.discharge == 800 and evening.purchased == 0 and evening.sold == 0
    empty = Battery(BatterySpec(10_000, 3_000, initial_fraction=0.1))
    assert dispatch(0, 800, empty, 19, has_pv=True).purchased == 800  # reserve is kept


def test_battery_without_pv_charges_at_night_and_never_exports():
    battery = Battery(BatterySpec(6_500, 3_000, initial_fraction=0.1))
    night = dispatch(0, 200, battery, 2, has_pv=False)
    assert night.charge == 1_500 and night.purchased == 1_700
    morning = dispatch(0, 300, battery, 8, has_pv=False)
    assert morning.discharge == 300 and morning.sold == 0 and morning.purchased == 0


def test_community_covers_every_kind():
    assert {p.split("_")[0] for p in allocate(5)} >= {
        "household",
        "business",
        "generator",
        "school",
    }
    members = build_community(60, 42)
    kinds = {m.kind for m in members}
    assert kinds == {
        MemberKind.HOUSEHOLD,
        MemberKind.PUBLIC_FACILITY,
        MemberKind.BUSINESS,
        MemberKind.GENERATOR,
    }
    businesses = [m for m in members if m.kind == MemberKind.BUSINESS]
    assert sum(m.pv is not None and m.battery is not None for m in businesses) > len(businesses) / 2
    profiles = {m.profile for m in members}
    assert {
        "household_pv_battery",
        "household_pv",
        "household_battery",
        "school",
        "town_hall",
        "generator_lv",
        "generator_hv",
        "generator_ehv",
    } <= profiles
    assert len({m.meter_label for m in members}) == 60
    assert all(len(m.meter_label.encode()) <= 32 for m in members)
    assert build_community(60, 42) == members  # reproducible


def test_simulated_readings_balance_and_fit_the_registry():
    members = build_community(24, 7)
    start, slots = aligned_window(int(pd.Timestamp("2025-06-10 12:00", tz="UTC").timestamp()), 3)
    sim = simulate(members, start, slots, 7)
    r = sim.readings
    assert len(r) == 24 * slots
    assert balance_errors(r).empty
    assert ((r["sold_wh"] == 0) | (r["purchased_wh"] == 0)).all()
    for column in (
        "generated_wh",
        "consumed_wh",
        "sold_wh",
        "purchased_wh",
        "charge_wh",
        "discharge_wh",
    ):
        assert (r[column] >= 0).all()
    capacity = {m.meter_label: m.capacity_w for m in members}
    limit = r["meter_id"].map(capacity) * 0.5  # Wh in half an hour at nameplate
    assert (r["generated_wh"] <= limit).all()  # the registry allows +10 % on top
    assert ((r["end"] - r["start"]) == 1800).all() and (r["start"] % 1800 == 0).all()
    battery_sizes = {m.meter_label: m.battery.capacity_wh for m in members if m.battery}
    soc = r[r["meter_id"].isin(battery_sizes)]
    assert (soc["soc_wh"] <= soc["meter_id"].map(battery_sizes) + 1).all()
    again = simulate(members, start, slots, 7).readings
    pd.testing.assert_frame_equal(r, again)


def test_aligned_window_ends_on_a_slot_boundary():
    start, slots = aligned_window(1_764_000_123, 7)
    assert (start + slots * 1800) == 1_764_000_123 // 1800 * 1800
    assert slots == 336
    with pytest.raises(ValueError):
        aligned_window(1_764_000_123, 0)
