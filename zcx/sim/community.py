"""A seeded community across every member kind of the patent (Fig. 3).

| profile | kind | equipment |
| --- | --- | --- |
| household_pv_battery | household | 3.5-6.5 kWp rooftop PV, 5-10 kWh battery |
| household_pv | household | 3-6 kWp rooftop PV |
| household_battery | household | no PV; 5-7 kWh battery charged at night |
| school | public facility | 20-50 kWp PV, half with a disaster-prevention battery |
| town_hall | public facility | 30-60 kWp PV, half with a battery |
| business_* | business (6.6 kV) | offices, factories, supermarkets; more than half PV + battery |
| generator_lv | generator | low-voltage PV plant, 49.5 kW AC |
| generator_hv | generator | mega-solar, high voltage, 1-1.99 MW AC |
| generator_ehv | generator | mega-solar, extra-high voltage, 2-4 MW AC |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from zcx.sim.battery import BatterySpec
from zcx.sim.loads import LoadSpec
from zcx.sim.pv import PvSystem
from zcx.sim.sites import SITES, Site


class MemberKind(IntEnum):
    """Mirror of IMemberRegistry.MemberKind."""

    HOUSEHOLD = 0
    PUBLIC_FACILITY = 1
    BUSINESS = 2
    GENERATOR = 3
    OPERATOR = 4


SOLAR = 0  # IMemberRegistry.GenerationMethod.Solar

# Share of each profile in a community; the first len(PRIORITY) members follow PRIORITY so that a
# small community still covers every kind.
PROFILE_WEIGHTS: dict[str, float] = {
    "household_pv_battery": 0.20,
    "household_pv": 0.22,
    "household_battery": 0.12,
    "school": 0.07,
    "town_hall": 0.05,
    "business_pv_battery": 0.10,
    "business_pv": 0.03,
    "business": 0.04,
    "generator_lv": 0.10,
    "generator_hv": 0.04,
    "generator_ehv": 0.03,
}
PRIORITY = (
    "household_pv_battery",
    "business_pv_battery",
    "generator_lv",
    "household_battery",
    "school",
    "household_pv",
    "town_hall",
    "generator_hv",
    "business",
    "generator_ehv",
    "business_pv",
)
PROFILE_CODES = {
    "household_pv_battery": "HPB",
    "household_pv": "HPV",
    "household_battery": "HBT",
    "school": "SCH",
    "town_hall": "TWH",
    "business_pv_battery": "BPB",
    "business_pv": "BPV",
    "business": "BUS",
    "generator_lv": "GLV",
    "generator_hv": "GHV",
    "generator_ehv": "GEH",
}
SITE_WEIGHTS = {
    "TKY": 0.34,
    "OSA": 0.20,
    "NGO": 0.12,
    "FUK": 0.12,
    "SDJ": 0.08,
    "KNZ": 0.07,
    "SPK": 0.07,
}
SURNAMES = (
    "Sato",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Ito",
    "Yamamoto",
    "Nakamura",
    "Kobayashi",
    "Kato",
    "Yoshida",
    "Yamada",
    "Sasaki",
    "Yamaguchi",
    "Matsumoto",
    "Inoue",
    "Kimura",
    "Hayashi",
    "Shimizu",
    "Yamazaki",
    "Mori",
    "Abe",
    "Ikeda",
    "Hashimoto",
)
BUSINESS_NAMES = {"office": "Office KK", "factory": "Seisakusho", "store": "Supermarket"}


@dataclass(frozen=True)
class MemberSpec:
    index: int
    name: str
    kind: MemberKind
    profile: str
    site: Site
    meter_label: str
    load: LoadSpec
    pv: PvSystem | None = None
    battery: BatterySpec | None = None

    @property
    def capacity_w(self) -> int:
        """The meter's rated generation capacity: the inverter's AC nameplate (0 without PV)."""
        return int(round(self.pv.ac_kw * 1000)) if self.pv else 0

    @property
    def zone(self) -> str:
        """Grid zone and site, e.g. "TEPCO-TKY" (the area's prefix before the dash)."""
        return f"{self.site.zone}-{self.site.code}"

    @property
    def gateway(self) -> str:
        """Each member has its own gateway (the patent's computer 24 next to the meter)."""
        return f"gw-{self.meter_label.lower()}"


def allocate(n_members: int) -> list[str]:
    """Profiles for `n_members`: PRIORITY first, the rest by largest remainder of the weights."""
    if n_members < 1:
        raise ValueError("a community needs at least one member")
    head = list(PRIORITY[: min(n_members, len(PRIORITY))])
    rest = n_members - len(head)
    if rest == 0:
        return head
    names = list(PROFILE_WEIGHTS)
    weights = np.array([PROFILE_WEIGHTS[p] for p in names])
    target = weights / weights.sum() * n_members
    already = np.array([head.count(p) for p in names], dtype=float)
    wanted = np.clip(target - already, 0, None)
    wanted = wanted / wanted.sum() * rest if wanted.sum() > 0 else weights / weights.sum() * rest
    counts = np.floor(wanted).astype(int)
    remainder = wanted - counts
    for i in np.argsort(-remainder)[: rest - counts.sum()]:
        counts[i] += 1
    profiles = head + [p for p, c in zip(names, counts, strict=True) for _ in range(c)]
    return profiles


def _orientation(rng: np.random.Generator, roof: bool) -> tuple[float, float]:
    if roof:
        return float(rng.uniform(18, 32)), float(
            rng.choice([135, 157.5, 180, 180, 180, 202.5, 225])
        )
    return float(rng.uniform(10, 20)), 180.0


def _member(index: int, profile: str, rng: np.random.Generator) -> MemberSpec:
    codes = list(SITE_WEIGHTS)
    site = SITES[str(rng.choice(codes, p=np.array([SITE_WEIGHTS[c] for c in codes])))]
    label = f"{site.code}-{PROFILE_CODES[profile]}-{index:03d}"
    surname = str(rng.choice(SURNAMES))
    pv: PvSystem | None = None
    battery: BatterySpec | None = None
    if profile.startswith("household"):
        kind = MemberKind.HOUSEHOLD
        name = f"{surname} household ({site.name})"
        load = LoadSpec("household", float(rng.uniform(8.0, 14.0)))
        if profile != "household_battery":
            dc = round(float(rng.uniform(3.5, 6.5)), 2)
            tilt, azimuth = _orientation(rng, roof=True)
            pv = PvSystem(dc, round(min(dc * float(rng.uniform(0.85, 1.0)), 5.9), 1), tilt, azimuth)
        if profile != "household_pv":
            cap = int(rng.choice([5_000, 6_500, 7_400, 9_800]))
            battery = BatterySpec(cap, int(rng.choice([2_000, 3_000])))
    elif profile in ("school", "town_hall"):
        kind = MemberKind.PUBLIC_FACILITY
        if profile == "school":
            name = f"{site.name} City School No.{index}"
            load = LoadSpec("school", float(rng.uniform(250, 600)))
            dc = round(float(rng.uniform(20, 50)), 1)
        else:
            name = f"{site.name} Ward Office branch {index}"
            load = LoadSpec("town_hall", float(rng.uniform(400, 900)))
            dc = round(float(rng.uniform(30, 60)), 1)
        tilt, azimuth = _orientation(rng, roof=True)
        pv = PvSystem(dc, round(dc * 0.9, 1), tilt, azimuth)
        if rng.random() < 0.5:
            battery = BatterySpec(int(rng.choice([15_000, 20_000, 30_000])), 10_000)
    elif profile.startswith("business"):
        kind = MemberKind.BUSINESS
        shape = str(rng.choice(["office", "factory", "store"], p=[0.45, 0.30, 0.25]))
        name = f"{surname} {BUSINESS_NAMES[shape]} ({site.name})"
        daily = {"office": (2_000, 5_000), "factory": (4_000, 8_000), "store": (2_000, 3_500)}
        load = LoadSpec(shape, float(rng.uniform(*daily[shape])))
        if profile != "business":
            dc = round(float(rng.uniform(100, 300)), 0)
            tilt, azimuth = _orientation(rng, roof=False)
            pv = PvSystem(dc, round(dc * 0.85, 1), tilt, azimuth)
        if profile == "business_pv_battery":
            cap = int(rng.uniform(200, 600)) * 1000
            battery = BatterySpec(cap, cap // 3)
    else:
        kind = MemberKind.GENERATOR
        tilt, azimuth = _orientation(rng, roof=False)
        if profile == "generator_lv":
            name = f"{surname} Solar LV plant ({site.name})"
            pv = PvSystem(round(float(rng.uniform(60, 80)), 1), 49.5, tilt, azimuth)
            load = LoadSpec("plant_aux", 2.0)
        elif profile == "generator_hv":
            name = f"{site.name} Mega Solar HV {index}"
            ac = round(float(rng.uniform(1_000, 1_990)), 0)
            pv = PvSystem(round(ac * float(rng.uniform(1.2, 1.35)), 0), ac, tilt, azimuth)
            load = LoadSpec("plant_aux", ac * 0.03)
        else:
            name = f"{site.name} Mega Solar EHV {index}"
            ac = round(float(rng.uniform(2_000, 4_000)), 0)
            pv = PvSystem(round(ac * float(rng.uniform(1.2, 1.35)), 0), ac, tilt, azimuth)
            load = LoadSpec("plant_aux", ac * 0.03)
    return MemberSpec(index, name, kind, profile, site, label, load, pv, battery)


def build_community(n_members: int, seed: int) -> list[MemberSpec]:
    """`n_members` members, reproducible from `seed`, covering every kind when n >= 5."""
    rng = np.random.default_rng([seed, 0xC0])
    return [_member(i + 1, p, rng) for i, p in enumerate(allocate(n_members))]
