"""Batteries and their dispatch rules, in whole Wh at the AC side.

Two rules, chosen by whether the site has PV:

- **self-consumption** (PV + battery): PV surplus charges the battery, up to its power and its free
  room; what is left is sold. When load exceeds PV, the battery discharges to cover the gap, up to
  its power and down to its reserve; the rest is purchased. The battery never charges from the
  grid and never discharges into it.
- **night charging** (battery without PV, e.g. on a time-of-use tariff): from 23:00 to 07:00 local
  time the battery charges from the grid at full power until full; from 07:00 to 23:00 it
  discharges to cover the load (never exporting).

Per slot, with integer Wh: `generated + purchased + discharge = consumed + sold + charge`, and
sold and purchased are never both positive (the meter nets within the slot). The state of charge
moves by charge x eta_c and by discharge / eta_d (round-trip efficiency eta_c x eta_d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NIGHT_START_HOUR = 23
NIGHT_END_HOUR = 7
SLOT_HOURS = 0.5


@dataclass(frozen=True)
class BatterySpec:
    capacity_wh: int
    power_w: int
    round_trip_efficiency: float = 0.90
    reserve_fraction: float = 0.10  # kept for outages; never discharged below
    initial_fraction: float = 0.50

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0 or self.power_w <= 0:
            raise ValueError("battery: capacity_wh and power_w must be positive")
        if not 0 < self.round_trip_efficiency <= 1:
            raise ValueError("battery: round_trip_efficiency must be in (0, 1]")

    @property
    def one_way_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)


@dataclass(frozen=True)
class SlotFlows:
    generated: int
    consumed: int
    sold: int
    purchased: int
    charge: int
    discharge: int
    soc_wh: float  # state of charge at the end of the slot


class Battery:
    """State of charge of one battery, with the two charge/discharge primitives."""

    def __init__(self, spec: BatterySpec) -> None:
        self.spec = spec
        self.soc = spec.capacity_wh * spec.initial_fraction
        self._eta = spec.one_way_efficiency
        self._slot_limit = int(spec.power_w * SLOT_HOURS)

    def charge(self, offered_wh: int) -> int:
        room = self.spec.capacity_wh - self.soc
        taken = max(0, min(offered_wh, self._slot_limit, math.floor(room / self._eta)))
        self.soc += taken * self._eta
        return taken

    def discharge(self, wanted_wh: int) -> int:
        available = self.soc - self.spec.capacity_wh * self.spec.reserve_fraction
        given = max(0, min(wanted_wh, self._slot_limit, math.floor(available * self._eta)))
        self.soc -= given / self._eta
        return given


def settle(generated: int, consumed: int, charge: int, discharge: int, soc: float) -> SlotFlows:
    """The meter's view: net the slot into sold or purchased so the balance holds exactly."""
    net = generated + discharge - consumed - charge
    return SlotFlows(generated, consumed, max(net, 0), max(-net, 0), charge, discharge, soc)


def dispatch(
    generated: int, consumed: int, battery: Battery | None, local_hour: int, has_pv: bool
) -> SlotFlows:
    """One slot under the rule that fits the site (see the module docstring)."""
    if battery is None:
        return settle(generated, consumed, 0, 0, 0.0)
    charge = discharge = 0
    if has_pv:
        surplus = generated - consumed
        if surplus > 0:
            charge = battery.charge(surplus)
        else:
            discharge = battery.discharge(-surplus)
    elif local_hour >= NIGHT_START_HOUR or local_hour < NIGHT_END_HOUR:
        charge = battery.charge(battery.spec.capacity_wh)
    else:
        discharge = battery.discharge(consumed - generated)
    return settle(generated, consumed, charge, discharge, battery.soc)
