"""PV output per 30-minute slot from pvlib, offline.

Chain: solar position -> Ineichen clear sky (Linke turbidity from pvlib's bundled climatology file,
no network) -> scaled by the day's clear-sky index -> Erbs split into beam and diffuse -> Hay-Davies
transposition onto the tilted plane -> Faiman cell temperature -> PVWatts DC (temperature
coefficient, system losses) -> PVWatts inverter, clipped at the AC nameplate. Each slot's energy
is the mean of three 10-minute samples (at +5, +15 and +25 minutes) times 0.5 h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from zcx.sim.sites import TIMEZONE, Site
from zcx.sim.weather import weather_frame

SLOT = pd.Timedelta(minutes=30)
SUB_OFFSETS = (pd.Timedelta(minutes=5), pd.Timedelta(minutes=15), pd.Timedelta(minutes=25))


@dataclass(frozen=True)
class PvSystem:
    """A PV array and its inverter. azimuth: 180 = due south (pvlib convention)."""

    dc_kwp: float
    ac_kw: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    losses: float = 0.14  # soiling, wiring, mismatch, availability (PVWatts default)
    gamma_pdc: float = -0.0037  # crystalline silicon, per degree C

    def __post_init__(self) -> None:
        if self.dc_kwp <= 0 or self.ac_kw <= 0:
            raise ValueError("PV system: dc_kwp and ac_kw must be positive")


@dataclass
class SiteSky:
    """Irradiance and temperature at one site over a window, shared by every array there."""

    site: Site
    slot_starts: pd.DatetimeIndex  # UTC
    times: pd.DatetimeIndex  # sample instants, local time, 3 per slot
    zenith: np.ndarray
    azimuth: np.ndarray
    ghi: np.ndarray
    dni: np.ndarray
    dhi: np.ndarray
    dni_extra: np.ndarray
    temp_air: np.ndarray
    sky: np.ndarray

    @classmethod
    def compute(cls, site: Site, slot_starts: pd.DatetimeIndex, seed: int) -> SiteSky:
        if slot_starts.tz is None:
            raise ValueError("slot_starts must be timezone-aware")
        # Samples slot by slot: [s0+5, s0+15, s0+25, s1+5, ...] minutes.
        base = slot_starts.tz_convert("UTC").asi8[:, None]
        offsets = np.array([off.value for off in SUB_OFFSETS])[None, :]
        times = pd.DatetimeIndex((base + offsets).ravel(), tz="UTC").tz_convert(TIMEZONE)
        location = pvlib.location.Location(
            site.latitude, site.longitude, tz=TIMEZONE, altitude=site.altitude_m, name=site.name
        )
        position = location.get_solarposition(times)
        clear = location.get_clearsky(times, model="ineichen", solar_position=position)
        weather = weather_frame(site, times, seed)
        index = weather["clear_sky_index"].to_numpy()
        ghi = clear["ghi"].to_numpy() * index
        zenith = position["apparent_zenith"].to_numpy()
        split = pvlib.irradiance.erbs(ghi, zenith, times)
        return cls(
            site=site,
            slot_starts=slot_starts,
            times=times,
            zenith=zenith,
            azimuth=position["azimuth"].to_numpy(),
            ghi=ghi,
            dni=np.nan_to_num(np.asarray(split["dni"], dtype=float)),
            dhi=np.nan_to_num(np.asarray(split["dhi"], dtype=float)),
            dni_extra=np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float),
            temp_air=weather["temp_air"].to_numpy(),
            sky=weather["sky"].to_numpy(),
        )

    def pv_wh(self, system: PvSystem) -> np.ndarray:
        """AC energy in Wh per slot (float, >= 0), clipped at the inverter's nameplate."""
        poa = pvlib.irradiance.get_total_irradiance(
            surface_tilt=system.tilt_deg,
            surface_azimuth=system.azimuth_deg,
            solar_zenith=self.zenith,
            solar_azimuth=self.azimuth,
            dni=self.dni,
            ghi=self.ghi,
            dhi=self.dhi,
            dni_extra=self.dni_extra,
            model="haydavies",
        )
        poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float)).clip(min=0)
        temp_cell = pvlib.temperature.faiman(poa_global, self.temp_air, wind_speed=2.0)
        pdc0 = system.dc_kwp * 1000.0
        pdc = pvlib.pvsystem.pvwatts_dc(poa_global, temp_cell, pdc0, system.gamma_pdc)
        pdc = np.asarray(pdc, dtype=float) * (1 - system.losses)
        pac0 = system.ac_kw * 1000.0
        pac = np.asarray(pvlib.inverter.pvwatts(pdc, pac0 / 0.96), dtype=float)
        pac = np.nan_to_num(pac).clip(min=0.0, max=pac0)
        per_slot = pac.reshape(len(self.slot_starts), len(SUB_OFFSETS)).mean(axis=1)
        return per_slot * 0.5  # W averaged over half an hour -> Wh

    def daily_sky(self) -> pd.Series:
        """The sky state of each local day in the window (for reports)."""
        frame = pd.Series(self.sky, index=self.times)
        return frame.groupby(frame.index.date).first()


def slot_index(start_utc: pd.Timestamp, slots: int) -> pd.DatetimeIndex:
    """`slots` consecutive 30-minute slot starts from an aligned UTC start."""
    if start_utc.tz is None:
        start_utc = start_utc.tz_localize("UTC")
    return pd.date_range(start_utc, periods=slots, freq=SLOT)
