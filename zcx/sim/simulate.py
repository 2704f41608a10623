"""Runs the community over a window and returns one energy-balanced reading per meter and slot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zcx.sim.battery import Battery, dispatch
from zcx.sim.community import MemberSpec
from zcx.sim.loads import load_wh
from zcx.sim.pv import SiteSky, slot_index
from zcx.sim.sites import TIMEZONE

SLOT_SECONDS = 1800
READING_COLUMNS = [
    "meter_id",
    "start",
    "end",
    "generated_wh",
    "consumed_wh",
    "sold_wh",
    "purchased_wh",
    "charge_wh",
    "discharge_wh",
    "soc_wh",
]


@dataclass
class Simulation:
    members: list[MemberSpec]
    start: int  # unix seconds, slot-aligned
    slots: int
    seed: int
    readings: pd.DataFrame  # READING_COLUMNS, one row per (meter, slot), ordered by meter then time
    skies: dict[str, pd.Series]  # site code -> sky state per local date

    @property
    def end(self) -> int:
        return self.start + self.slots * SLOT_SECONDS


def aligned_window(now: int, days: int, slot_seconds: int = SLOT_SECONDS) -> tuple[int, int]:
    """(start, slots) of `days` whole days ending at the last slot boundary at or before `now`."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = now // slot_seconds * slot_seconds
    slots = days * 86400 // slot_seconds
    return end - slots * slot_seconds, slots


def balance_errors(readings: pd.DataFrame) -> pd.DataFrame:
    """Rows whose PQ figures and battery flows do not balance (empty when all is well)."""
    lhs = readings["generated_wh"] + readings["purchased_wh"] + readings["discharge_wh"]
    rhs = readings["consumed_wh"] + readings["sold_wh"] + readings["charge_wh"]
    return readings[lhs != rhs]


def simulate_member(member: MemberSpec, sky: SiteSky, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 0x5EED, member.index])
    slots = sky.slot_starts
    temp = sky.temp_air.reshape(len(slots), -1).mean(axis=1)
    generation = np.rint(sky.pv_wh(member.pv)).astype(np.int64) if member.pv else None
    consumption = np.rint(load_wh(member.load, slots, temp, rng)).astype(np.int64)
    battery = Battery(member.battery) if member.battery else None
    hours = slots.tz_convert(TIMEZONE).hour.to_numpy()
    rows = []
    for i in range(len(slots)):
        gen = int(generation[i]) if generation is not None else 0
        flows = dispatch(gen, int(consumption[i]), battery, int(hours[i]), member.pv is not None)
        rows.append(
            (
                flows.generated,
                flows.consumed,
                flows.sold,
                flows.purchased,
                flows.charge,
                flows.discharge,
                round(flows.soc_wh, 1),
            )
        )
    frame = pd.DataFrame(rows, columns=READING_COLUMNS[3:])
    start = slots.asi8 // 10**9
    frame.insert(0, "end", start + SLOT_SECONDS)
    frame.insert(0, "start", start)
    frame.insert(0, "meter_id", member.meter_label)
    return frame


def simulate(members: Sequence[MemberSpec], start: int, slots: int, seed: int) -> Simulation:
    """Every member's readings over `slots` 30-minute slots from the aligned unix time `start`."""
    if start % SLOT_SECONDS:
        raise ValueError(f"start {start} is not aligned to {SLOT_SECONDS} s")
    index = slot_index(pd.Timestamp(start, unit="s", tz="UTC"), slots)
    skies: dict[str, SiteSky] = {}
    frames = []
    for member in members:
        sky = skies.get(member.site.code)
        if sky is None:
            sky = skies[member.site.code] = SiteSky.compute(member.site, index, seed)
        frames.append(simulate_member(member, sky, seed))
    readings = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=READING_COLUMNS)
    )
    return Simulation(
        members=list(members),
        start=start,
        slots=slots,
        seed=seed,
        readings=readings,
        skies={code: sky.daily_sky() for code, sky in skies.items()},
    )
