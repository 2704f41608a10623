"""The audit's named checks. Each takes the rebuilt `Ledger` and returns every finding, never
only the first. Violations break an invariant (the audit exits non-zero); warnings are
statistical anomalies a human should look at.

Check names (see docs/audit.md for what each means):
  no_double_count, interval_length, capacity_plausibility, issued_within_verified,
  certificate_evidence, balances_sum_to_supply, supply_plus_retired_equals_issued,
  certificate_units_conserved, revoked_not_moved, state_matches_events, batch_signatures,
  trusted_signers, signer_set_changed (warning), solar_at_night (warning),
  zone_peer_outlier (warning).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pvlib
from eth_utils import to_checksum_address

from zcx.audit.events import fast_keccak
from zcx.audit.findings import Finding, violation, warning
from zcx.audit.ledger import ZERO_ADDRESS, Ledger
from zcx.audit.signatures import BadSignature, batch_digest_from_hashes, domain_separator, recover

log = logging.getLogger(__name__)

BPS = 10_000
WH_PER_KWH = 1_000


@dataclass(frozen=True)
class Site:
    latitude: float
    longitude: float
    timezone: str


# Grid zones -> a representative site (the area's main city). A zone matches by its prefix before
# the first '-' (e.g. "TEPCO-13"), case-insensitive. Unknown zones use DEFAULT_SITE (Tokyo).
ZONE_SITES: dict[str, Site] = {
    "HEPCO": Site(43.06, 141.35, "Asia/Tokyo"),  # Hokkaido, Sapporo
    "TOHOKU": Site(38.27, 140.87, "Asia/Tokyo"),  # Sendai
    "TEPCO": Site(35.68, 139.69, "Asia/Tokyo"),  # Tokyo
    "CHUBU": Site(35.18, 136.91, "Asia/Tokyo"),  # Nagoya
    "HOKURIKU": Site(36.70, 137.21, "Asia/Tokyo"),  # Toyama
    "KEPCO": Site(34.69, 135.50, "Asia/Tokyo"),  # Kansai, Osaka
    "KANSAI": Site(34.69, 135.50, "Asia/Tokyo"),
    "CHUGOKU": Site(34.39, 132.46, "Asia/Tokyo"),  # Hiroshima
    "YONDEN": Site(34.34, 134.05, "Asia/Tokyo"),  # Shikoku, Takamatsu
    "SHIKOKU": Site(34.34, 134.05, "Asia/Tokyo"),
    "KYUSHU": Site(33.59, 130.40, "Asia/Tokyo"),  # Fukuoka
    "OKINAWA": Site(26.21, 127.68, "Asia/Tokyo"),  # Naha
}
DEFAULT_SITE = Site(35.68, 139.69, "Asia/Tokyo")


def site_of(zone: str, table: dict[str, Site] | None = None) -> Site:
    table = ZONE_SITES if table is None else table
    key = zone.split("-", 1)[0].upper()
    return table.get(key, table.get(zone.upper(), DEFAULT_SITE))


@dataclass
class AuditConfig:
    """Thresholds of the checks. Defaults are documented in docs/audit.md."""

    # Physical margin over nameplate the auditor accepts (inverter overload, cold clear days);
    # independent of the margin the chain is configured with.
    capacity_margin_bps: int = 1_000
    # Solar PQ1 above this share of capacity x duration while the sun is below the horizon for
    # the whole interval is a warning.
    night_tolerance_share: float = 0.01
    night_elevation_deg: float = 0.0
    # A meter whose daily Wh/kWp exceeds peer_factor x the zone's median (same day, at least
    # peer_min_meters meters with capacity) is a warning.
    peer_factor: float = 3.0
    peer_min_meters: int = 3
    trusted_signers: set[str] | None = None
    zone_sites: dict[str, Site] = field(default_factory=lambda: dict(ZONE_SITES))
    max_listed: int = 100_000  # findings per check kept (the count is always reported)


def _cap(check: str, findings: list[Finding], total: int, config: AuditConfig) -> list[Finding]:
    if total > len(findings):
        findings.append(violation(check, f"{total - len(findings)} more findings not listed"))
    return findings


# ------------------------------------------------------------------------- readings


def check_no_double_count(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 1: per meter, no two recorded readings overlap nor repeat an interval. Readings
    may be recorded out of time order (a late gap-filler, invariant 9), so they are compared in
    time order, not chain order."""
    r = ledger.readings
    if r.empty:
        return []
    ordered = r.sort_values(["meter_id", "start", "pos"], kind="stable")
    meter = ordered["meter_id"].cat.codes.to_numpy()
    start = ordered["start"].to_numpy()
    prev_end = np.roll(ordered["end"].to_numpy(), 1)
    same = np.r_[False, meter[1:] == meter[:-1]]
    bad = np.flatnonzero(same & (start < prev_end))
    dup = ordered.duplicated(["meter_id", "start"], keep="first").to_numpy()
    bad = np.union1d(bad, np.flatnonzero(dup))
    out = []
    for i in bad[: config.max_listed]:
        row = ordered.iloc[i]
        out.append(
            violation(
                "no_double_count",
                f"interval [{row.start}, {row.end}) overlaps a recorded reading ending at "
                f"{prev_end[i]} or repeats an interval already counted",
                subject=str(row.meter),
                block=int(row.block),
            )
        )
    return _cap("no_double_count", out, len(bad), config)


def _capacity_and_interval(ledger: Ledger) -> pd.DataFrame:
    r = ledger.readings[["pos", "block", "meter_id", "meter", "start", "end", "pq1"]].copy()
    r["meter_id"] = r["meter_id"].astype(str)
    hist = ledger.meter_history[["pos", "meter_id", "capacity_w", "zone"]]
    merged = pd.merge_asof(
        r.sort_values("pos"), hist.sort_values("pos"), on="pos", by="meter_id", direction="backward"
    )
    cfg = ledger.config_history
    interval = cfg[cfg["setting"] == "interval_seconds"][["pos", "value"]].astype("int64")
    merged = pd.merge_asof(
        merged,
        interval.rename(columns={"value": "interval_s"}).sort_values("pos"),
        on="pos",
        direction="backward",
    )
    return merged


def check_plausibility(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Interval length as configured when recorded, and PQ1 <= capacity x duration x margin."""
    if ledger.readings.empty:
        return []
    m = _capacity_and_interval(ledger)
    out: list[Finding] = []
    duration = m["end"] - m["start"]
    bad_len = m[duration != m["interval_s"]]
    for row in bad_len.head(config.max_listed).itertuples(index=False):
        out.append(
            violation(
                "interval_length",
                f"interval [{row.start}, {row.end}) lasts {row.end - row.start} s; "
                f"the registry required {row.interval_s} s",
                subject=str(row.meter),
                block=int(row.block),
            )
        )
    _cap("interval_length", out, len(bad_len), config)
    limit_scaled = (
        m["capacity_w"].fillna(0).astype("int64") * duration * (BPS + config.capacity_margin_bps)
    )
    over = m[m["pq1"] * 3600 * BPS > limit_scaled]
    cap_out: list[Finding] = []
    for row in over.head(config.max_listed).itertuples(index=False):
        physical = row.capacity_w * (row.end - row.start) / 3600
        cap_out.append(
            violation(
                "capacity_plausibility",
                f"PQ1 {row.pq1} Wh in [{row.start}, {row.end}) is "
                f"{row.pq1 / max(physical, 1):.2f}x "
                f"what {row.capacity_w} W can generate ({physical:.0f} Wh; auditor margin "
                f"{config.capacity_margin_bps} bps)",
                subject=str(row.meter),
                block=int(row.block),
                pq1=int(row.pq1),
                capacity_w=int(row.capacity_w),
            )
        )
    return out + _cap("capacity_plausibility", cap_out, len(over), config)


def check_solar_at_night(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Warning: a solar meter generating while the sun is below the horizon all interval long."""
    r = ledger.readings
    if r.empty:
        return []
    meters = ledger.meters.set_index("meter_id")
    solar = meters[meters["method"] == "Solar"]
    cand = r[r["meter_id"].astype(str).isin(solar.index)]
    cap = cand["meter_id"].astype(str).map(solar["capacity_w"]).astype("int64")
    tolerance = np.maximum(
        1.0, config.night_tolerance_share * cap * (cand["end"] - cand["start"]) / 3600
    )
    cand = cand[cand["pq1"] > tolerance]
    out: list[Finding] = []
    if cand.empty:
        return out
    zones = cand["meter_id"].astype(str).map(solar["zone"])
    night_mask = np.zeros(len(cand), dtype=bool)
    for zone, idx in zones.groupby(zones).groups.items():
        site = site_of(str(zone), config.zone_sites)
        sub = cand.loc[idx]
        points = pd.unique(
            np.concatenate([sub["start"], (sub["start"] + sub["end"]) // 2, sub["end"]])
        )
        times = pd.to_datetime(points, unit="s", utc=True)
        elev = pvlib.solarposition.get_solarposition(times, site.latitude, site.longitude)[
            "elevation"
        ]
        by_time = pd.Series(elev.to_numpy(), index=points)
        below = (
            (by_time.reindex(sub["start"]).to_numpy() < config.night_elevation_deg)
            & (
                by_time.reindex((sub["start"] + sub["end"]) // 2).to_numpy()
                < config.night_elevation_deg
            )
            & (by_time.reindex(sub["end"]).to_numpy() < config.night_elevation_deg)
        )
        night_mask[cand.index.get_indexer(idx)] = below
    night = cand[night_mask]
    for row in night.head(config.max_listed).itertuples(index=False):
        local = pd.Timestamp(row.start, unit="s", tz="UTC").tz_convert(
            site_of(str(meters.loc[str(row.meter_id), "zone"]), config.zone_sites).timezone
        )
        out.append(
            warning(
                "solar_at_night",
                f"solar PQ1 {row.pq1} Wh at {local:%Y-%m-%d %H:%M %Z} while the sun is "
                "below the horizon",
                subject=str(row.meter),
                block=int(row.block),
            )
        )
    return out


def check_zone_peers(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Warning: a meter far above its zone peers (Wh per kWp, same local day)."""
    r = ledger.readings
    meters = ledger.meters[(ledger.meters["capacity_w"] > 0)].set_index("meter_id")
    if r.empty or meters.empty:
        return []
    ids = r["meter_id"].astype(str)
    keep = ids.isin(meters.index)
    sub = r.loc[keep, ["meter_id", "meter", "start", "pq1", "block"]].copy()
    sub["meter_id"] = sub["meter_id"].astype(str)
    sub["zone"] = sub["meter_id"].map(meters["zone"])
    sub["method"] = sub["meter_id"].map(meters["method"])
    tz_offsets = {z: site_of(z, config.zone_sites).timezone for z in sub["zone"].unique()}
    day = np.empty(len(sub), dtype="datetime64[s]")
    for zone, tz in tz_offsets.items():
        mask = (sub["zone"] == zone).to_numpy()
        local = pd.to_datetime(sub.loc[mask, "start"], unit="s", utc=True).dt.tz_convert(tz)
        day[mask] = local.dt.tz_localize(None).dt.floor("D").to_numpy().astype("datetime64[s]")
    sub["day"] = day
    daily = (
        sub.groupby(["zone", "method", "meter_id", "day"], observed=True)
        .agg(wh=("pq1", "sum"), meter=("meter", "first"), block=("block", "max"))
        .reset_index()
    )
    daily["wh_per_kwp"] = daily["wh"] / (daily["meter_id"].map(meters["capacity_w"]) / 1000)
    group = daily.groupby(["zone", "method", "day"])["wh_per_kwp"]
    daily["peers"] = group.transform("size")
    daily["median"] = group.transform("median")
    flagged = daily[
        (daily["peers"] >= config.peer_min_meters)
        & (daily["median"] > 0)
        & (daily["wh_per_kwp"] > config.peer_factor * daily["median"])
    ]
    return [
        warning(
            "zone_peer_outlier",
            f"{row.wh_per_kwp:.0f} Wh/kWp on {pd.Timestamp(row.day):%Y-%m-%d} is "
            f"{row.wh_per_kwp / row.median:.1f}x the median of {row.peers} {row.method} meters in "
            f"{row.zone} ({row.median:.0f} Wh/kWp)",
            subject=str(row.meter),
            block=int(row.block),
        )
        for row in flagged.head(config.max_listed).itertuples(index=False)
    ]


# ------------------------------------------------------------------------- issuance


def _rate_at(rates: pd.DataFrame, before_pos: int, timestamp: int) -> int | None:
    """rateAt(timestamp) as the schedule stood just before log position `before_pos`: replays
    RateScheduled appends and RateCancelled removals in log order."""
    schedule: list[tuple[int, int]] = []
    for row in rates[rates["pos"] < before_pos].itertuples(index=False):
        index = int(row.cancel_index)
        if index < 0:
            schedule.append((int(row.effective_from), int(row.units_per_kwh)))
        elif index < len(schedule):
            del schedule[index]
        else:
            return None  # a cancellation of an entry that never existed: no rate to trust
    for effective_from, units_per_kwh in reversed(schedule):  # newest first, as rateAt does
        if effective_from <= timestamp:
            return units_per_kwh
    return None


def _meter_streams(
    ledger: Ledger,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """meter id -> (pos, cumulative PQ1, start, end) of its recorded readings in chain order."""
    r = ledger.readings
    claimed = set(ledger.claims["meter_id"].dropna())
    streams = {}
    for meter_id, idx in r.groupby("meter_id", observed=True).indices.items():
        if str(meter_id) not in claimed:
            continue
        sub = r.iloc[idx]
        streams[str(meter_id)] = (
            sub["pos"].to_numpy(),
            np.cumsum(sub["pq1"].to_numpy()),
            sub["start"].to_numpy(),
            sub["end"].to_numpy(),
        )
    return streams


def check_issued_within_verified(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 2: each claim's Wh is the PQ1 recorded since the meter's previous claim, its
    period matches those readings, and its units are at most Wh x the rate in force at the end
    of the claimed generation (the period end), as the schedule stood at the claim."""
    claims = ledger.claims
    out: list[Finding] = []
    if claims.empty:
        return out
    streams = _meter_streams(ledger)
    previous: dict[str, tuple[int, int]] = {}  # meter -> (cumulative index, period end)
    for c in claims.itertuples(index=False):
        subject = f"{c.meter} certificate {c.certificate_id}"
        if pd.isna(c.registry_pos) or pd.isna(c.pos):
            out.append(
                violation(
                    "issued_within_verified",
                    "exchange Claimed and registry GenerationClaimed do not pair up",
                    subject=subject,
                    block=int(c.block) if not pd.isna(c.block) else None,
                )
            )
            continue
        empty = np.array([], dtype=np.int64)
        pos, cum, starts, ends = streams.get(c.meter_id, (empty, empty, empty, empty))
        n = int(np.searchsorted(pos, int(c.registry_pos)))
        done, last_end = previous.get(c.meter_id, (0, None))
        verified = int(cum[n - 1] - (cum[done - 1] if done else 0)) if n else 0
        if int(c.wh) != verified or int(c.registry_wh) != verified:
            out.append(
                violation(
                    "issued_within_verified",
                    f"claim of {c.wh} Wh but the readings recorded since the previous "
                    f"claim add up to {verified} Wh",
                    subject=subject,
                    block=int(c.block),
                )
            )
        if n > done:
            # From the earliest reading claimed (gap-fillers may come late) or the previous
            # claim's end, whichever is earlier; to the latest end recorded so far.
            earliest = int(starts[done:n].min())
            want_start = earliest if last_end is None else min(earliest, last_end)
            want_end = int(ends[:n].max())
            if (int(c.period_start), int(c.period_end)) != (want_start, want_end):
                out.append(
                    violation(
                        "issued_within_verified",
                        f"claimed period [{c.period_start}, {c.period_end}) differs from "
                        f"the readings' [{want_start}, {want_end})",
                        subject=subject,
                        block=int(c.block),
                    )
                )
            previous[c.meter_id] = (n, want_end)
        rate = _rate_at(ledger.rates, int(c.pos), int(c.period_end))
        if rate is None or int(c.units_per_kwh) != rate:
            out.append(
                violation(
                    "issued_within_verified",
                    f"claim used {c.units_per_kwh} units/kWh; the rate in force at the "
                    f"generation's end {c.period_end} was {rate}",
                    subject=subject,
                    block=int(c.block),
                )
            )
        allowed = verified * (rate or 0) // WH_PER_KWH
        if int(c.units) > allowed:
            out.append(
                violation(
                    "issued_within_verified",
                    f"issued {c.units} units > verified {verified} Wh x {rate} units/kWh "
                    f"= {allowed}",
                    subject=subject,
                    block=int(c.block),
                )
            )
    certs = ledger.certificates.set_index("certificate_id")
    for c in claims.itertuples(index=False):
        if pd.isna(c.certificate_id) or int(c.certificate_id) not in certs.index:
            out.append(
                violation(
                    "issued_within_verified",
                    "claim without its CertificateIssued",
                    subject=str(c.meter),
                )
            )
            continue
        cert = certs.loc[int(c.certificate_id)]
        if (cert["meter_id"], int(cert["units"]), int(cert["wh"])) != (
            c.meter_id,
            int(c.units),
            int(c.wh),
        ):
            out.append(
                violation(
                    "issued_within_verified",
                    f"certificate {c.certificate_id} ({cert['units']} units, {cert['wh']} Wh) "
                    f"does not match its claim ({c.units} units, {c.wh} Wh)",
                    subject=str(c.meter),
                    block=int(c.block),
                )
            )
    claimed_ids = set(claims["certificate_id"].dropna().astype(int))
    for cid in sorted(set(certs.index) - claimed_ids):
        out.append(
            violation(
                "issued_within_verified",
                f"certificate {cid} was issued without a claim through the exchange",
                subject=str(certs.loc[cid, "meter"]),
            )
        )
    return out


def check_certificate_evidence(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Each certificate's evidence equals the meter's rolling hash over its recorded readings at
    claim time: keccak(previous, hashStruct(reading)) folded in chain order."""
    claims = ledger.claims.dropna(subset=["registry_pos"])
    out: list[Finding] = []
    if claims.empty:
        return out
    r = ledger.readings
    hashes = ledger.reading_hashes
    certs = ledger.certificates.set_index("certificate_id")
    groups = r.groupby("meter_id", observed=True).indices
    for meter_id, meter_claims in claims.groupby("meter_id"):
        idx = groups.get(meter_id, np.array([], dtype=int))
        pos = r["pos"].to_numpy()[idx]
        head = b"\x00" * 32
        done = 0
        for c in meter_claims.sort_values("registry_pos").itertuples(index=False):
            n = int(np.searchsorted(pos, int(c.registry_pos)))
            for i in idx[done:n]:
                head = fast_keccak(head + hashes[i])
            done = n
            if pd.isna(c.certificate_id) or int(c.certificate_id) not in certs.index:
                continue
            evidence = certs.loc[int(c.certificate_id), "evidence"]
            if evidence != "0x" + head.hex():
                out.append(
                    violation(
                        "certificate_evidence",
                        f"certificate {int(c.certificate_id)} evidence {evidence} is not the "
                        f"hash chain of the meter's recorded readings (0x{head.hex()})",
                        subject=str(c.meter),
                        block=int(c.block),
                    )
                )
    return out


# ------------------------------------------------------------------------- token


def _replay_balances(ledger: Ledger) -> tuple[dict[str, int], int, int, int]:
    balances: dict[str, int] = defaultdict(int)
    minted = burned = 0
    for t in ledger.transfers.itertuples(index=False):
        value = int(t.value)
        if t[ledger.transfers.columns.get_loc("from")] == ZERO_ADDRESS:
            minted += value
        else:
            balances[t[ledger.transfers.columns.get_loc("from")]] -= value
        if t.to == ZERO_ADDRESS:
            burned += value
        else:
            balances[t.to] += value
    return dict(balances), minted, burned, minted - burned


def check_supply(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 3: sum of balances == supply; supply + retired == issued (events and views)."""
    out: list[Finding] = []
    balances, minted, burned, supply = _replay_balances(ledger)
    total = sum(balances.values())
    if total != supply:
        out.append(
            violation(
                "balances_sum_to_supply",
                f"balances add up to {total} units; minted - burned = {supply}",
            )
        )
    for holder, value in balances.items():
        if value < 0:
            out.append(
                violation(
                    "balances_sum_to_supply",
                    f"replayed balance is negative: {value}",
                    subject=holder,
                )
            )
    issued = sum(int(u) for u in ledger.certificates["units"])
    retired = sum(int(u) for u in ledger.retirements["units"])
    if supply + retired != issued:
        out.append(
            violation(
                "supply_plus_retired_equals_issued",
                f"supply {supply} + retired {retired} = {supply + retired} != issued {issued}",
            )
        )
    if minted != issued or burned != retired:
        out.append(
            violation(
                "supply_plus_retired_equals_issued",
                f"mints {minted} / burns {burned} differ from certificates issued {issued} / "
                f"retirements {retired}",
            )
        )
    s = ledger.state
    if s is not None:
        if s.total_supply + s.total_retired != s.total_issued:
            out.append(
                violation(
                    "supply_plus_retired_equals_issued",
                    f"views: totalSupply {s.total_supply} + totalRetired {s.total_retired} != "
                    f"totalIssued {s.total_issued}",
                )
            )
        if (s.total_supply, s.total_issued, s.total_retired) != (supply, issued, retired):
            out.append(
                violation(
                    "state_matches_events",
                    f"views (supply {s.total_supply}, issued {s.total_issued}, retired "
                    f"{s.total_retired}) differ from the events ({supply}, {issued}, {retired})",
                )
            )
        for holder, value in s.balances.items():
            if balances.get(holder, 0) != value:
                out.append(
                    violation(
                        "balances_sum_to_supply",
                        f"balanceOf = {value}; the Transfer events give {balances.get(holder, 0)}",
                        subject=holder,
                    )
                )
    return out


def replay_lots(ledger: Ledger) -> dict[tuple[str, int], int]:
    """(holder, certificate id) -> units held, replaying CertificateIssued and LotMoved in chain
    order."""
    events: list[tuple[int, str, str, int, int]] = []
    for c in ledger.certificates.itertuples(index=False):
        events.append((int(c.pos), ZERO_ADDRESS, c.to, int(c.certificate_id), int(c.units)))
    cols = ledger.lot_moves.columns
    for m in ledger.lot_moves.itertuples(index=False):
        events.append(
            (int(m.pos), m[cols.get_loc("from")], m.to, int(m.certificate_id), int(m.units))
        )
    holdings: dict[tuple[str, int], int] = defaultdict(int)
    for _, src, dst, cid, units in sorted(events):
        if src != ZERO_ADDRESS:
            holdings[(src, cid)] -= units
        if dst != ZERO_ADDRESS:
            holdings[(dst, cid)] += units
    return {k: v for k, v in holdings.items() if v != 0}


def check_certificate_conservation(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 4: for every certificate, units held (LotMoved replay) + retired == issued."""
    out: list[Finding] = []
    holdings = replay_lots(ledger)
    held: dict[int, int] = defaultdict(int)
    per_holder: dict[str, int] = defaultdict(int)
    for (holder, cid), units in holdings.items():
        held[cid] += units
        per_holder[holder] += units
        if units < 0:
            out.append(
                violation(
                    "certificate_units_conserved",
                    f"holds {units} units of certificate {cid} (negative)",
                    subject=holder,
                )
            )
    retired: dict[int, int] = defaultdict(int)
    for r in ledger.retirements.itertuples(index=False):
        for cid, units in zip(r.certificate_ids, r.certificate_units, strict=True):
            retired[int(cid)] += int(units)
    burned_lots: dict[int, int] = defaultdict(int)
    cols = ledger.lot_moves.columns
    for m in ledger.lot_moves.itertuples(index=False):
        if m.to == ZERO_ADDRESS:
            burned_lots[int(m.certificate_id)] += int(m.units)
    views = ledger.state.certificates if ledger.state else {}
    for c in ledger.certificates.itertuples(index=False):
        cid, units = int(c.certificate_id), int(c.units)
        if held[cid] + retired[cid] != units:
            out.append(
                violation(
                    "certificate_units_conserved",
                    f"certificate {cid}: held {held[cid]} + retired {retired[cid]} "
                    f"!= issued {units}",
                    subject=str(c.meter),
                )
            )
        if burned_lots[cid] != retired[cid]:
            out.append(
                violation(
                    "certificate_units_conserved",
                    f"certificate {cid}: lots burned {burned_lots[cid]} != retired {retired[cid]}",
                    subject=str(c.meter),
                )
            )
        if cid in views and int(views[cid]["retired_units"]) != retired[cid]:
            out.append(
                violation(
                    "state_matches_events",
                    f"certificate {cid}: retiredUnits view {views[cid]['retired_units']} != "
                    f"Retired events {retired[cid]}",
                    subject=str(c.meter),
                )
            )
    balances, *_ = _replay_balances(ledger)
    for holder in set(balances) | set(per_holder):
        if balances.get(holder, 0) != per_holder.get(holder, 0):
            out.append(
                violation(
                    "certificate_units_conserved",
                    f"lots add up to {per_holder.get(holder, 0)} units; balance is "
                    f"{balances.get(holder, 0)}",
                    subject=holder,
                )
            )
    if ledger.state is not None:
        for holder, lots in ledger.state.lots.items():
            view: dict[int, int] = defaultdict(int)
            for cid, units in lots:
                view[int(cid)] += int(units)
            replay = {cid: u for (h, cid), u in holdings.items() if h == holder}
            if {k: v for k, v in view.items() if v} != replay:
                out.append(
                    violation(
                        "state_matches_events",
                        f"lotsOf view {dict(view)} differs from the LotMoved replay {replay}",
                        subject=holder,
                    )
                )
    del cols
    return out


def check_revoked_not_moved(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 7: no LotMoved (transfer or retirement) of a certificate after its revocation."""
    out: list[Finding] = []
    if ledger.revocations.empty:
        return out
    revoked_at = ledger.revocations.groupby("certificate_id")["pos"].min()
    moves = ledger.lot_moves
    cols = moves.columns
    for m in moves.itertuples(index=False):
        cid = int(m.certificate_id)
        if cid in revoked_at.index and int(m.pos) > int(revoked_at[cid]):
            out.append(
                violation(
                    "revoked_not_moved",
                    f"{m.units} units of revoked certificate {cid} moved from "
                    f"{m[cols.get_loc('from')]} to {m.to} after its revocation",
                    subject=f"certificate {cid}",
                    block=int(m.block),
                )
            )
    views = ledger.state.certificates if ledger.state else {}
    for cid in revoked_at.index:
        if int(cid) in views and not views[int(cid)]["revoked"]:
            out.append(
                violation(
                    "state_matches_events",
                    f"certificate {cid} was revoked by event but the view says not revoked",
                )
            )
    return out


def check_state_matches_events(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """The contracts' views (Fig. 6 counters, meter and member totals) equal the event replay."""
    s = ledger.state
    out: list[Finding] = []
    if s is None:
        return out
    r = ledger.readings
    totals = r.groupby("meter_id", observed=True)[["pq1", "pq2", "pq3", "pq4"]].sum()
    meters = ledger.meters.set_index("meter_id")
    for meter_id, view in s.meter_totals.items():
        mine = (
            tuple(int(x) for x in totals.loc[meter_id])
            if meter_id in totals.index
            else (0, 0, 0, 0)
        )
        if tuple(int(x) for x in view) != mine:
            out.append(
                violation(
                    "state_matches_events",
                    f"meterTotals view {tuple(view)} != readings {mine}",
                    subject=str(meters.loc[meter_id, "meter"]),
                )
            )
    owners = r["meter_id"].astype(str).map(meters["owner"])
    by_member = r[["pq1", "pq2", "pq3", "pq4"]].groupby(owners.to_numpy()).sum()
    for account, view in s.member_totals.items():
        mine = (
            tuple(int(x) for x in by_member.loc[account])
            if account in by_member.index
            else (0, 0, 0, 0)
        )
        if tuple(int(x) for x in view) != mine:
            out.append(
                violation(
                    "state_matches_events",
                    f"memberTotals view {tuple(view)} != readings {mine}",
                    subject=account,
                )
            )
    fig6 = member_coin_counters(ledger)
    for account, view in s.counters.items():
        mine = fig6.get(account, (0, 0, 0, 0))
        if tuple(int(x) for x in view) != mine:
            out.append(
                violation(
                    "state_matches_events",
                    f"counters view (purchased, used, amortized, balance) {tuple(view)} != "
                    f"events {mine}",
                    subject=account,
                )
            )
    return out


def member_coin_counters(ledger: Ledger) -> dict[str, tuple[int, int, int, int]]:
    """Fig. 6 counters from events: purchased (issued to), used (paid), amortized (retired),
    balance."""
    purchased: dict[str, int] = defaultdict(int)
    used: dict[str, int] = defaultdict(int)
    amortized: dict[str, int] = defaultdict(int)
    for c in ledger.certificates.itertuples(index=False):
        purchased[c.to] += int(c.units)
    cols = ledger.payments.columns
    for p in ledger.payments.itertuples(index=False):
        used[p[cols.get_loc("from")]] += int(p.units)
    for r in ledger.retirements.itertuples(index=False):
        amortized[r.holder] += int(r.units)
    balances, *_ = _replay_balances(ledger)
    accounts = set(purchased) | set(used) | set(amortized) | set(balances)
    return {a: (purchased[a], used[a], amortized[a], balances.get(a, 0)) for a in accounts}


# ------------------------------------------------------------------------- signatures


def _signer_states(ledger: Ledger) -> list[tuple[int, frozenset[str], int]]:
    """(pos, signer set, quorum) after each change, in chain order."""
    states = []
    signers: set[str] = set()
    quorum = 0
    for h in ledger.signer_history.itertuples(index=False):
        if h.action == "add":
            signers.add(h.signer)
        elif h.action == "remove":
            signers.discard(h.signer)
        else:
            quorum = int(h.quorum)
        states.append((int(h.pos), frozenset(signers), quorum))
    return states


def check_batch_signatures(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Invariant 5, re-verified off chain: every batch's readings (rebuilt from the logs of its
    transaction) hash to the logged digest, each signature recovers to its listed signer, and the
    signers are distinct, ascending, registered and at least the quorum in force at that block."""
    out: list[Finding] = []
    batches = ledger.batches
    if batches.empty:
        return out
    separator = domain_separator(ledger.chain_id, ledger.addresses["GenerationRegistry"])
    rec_groups = ledger.readings.groupby("batch").indices if len(ledger.readings) else {}
    rej_groups = ledger.rejected.groupby("batch").indices if len(ledger.rejected) else {}
    rec_pos = ledger.readings["pos"].to_numpy()
    rej_pos = ledger.rejected["pos"].to_numpy() if len(ledger.rejected) else np.array([], dtype=int)
    rej_index = (
        ledger.rejected["index"].to_numpy() if len(ledger.rejected) else np.array([], dtype=int)
    )
    states = _signer_states(ledger)
    state_pos = [p for p, _, _ in states]
    orphans = int((ledger.readings["batch"] < 0).sum()) if len(ledger.readings) else 0
    if orphans:
        out.append(
            violation(
                "batch_signatures", f"{orphans} ReadingRecorded logs belong to no BatchApplied"
            )
        )
    for b in batches.itertuples(index=False):
        subject = f"batch {b.batch} ({b.digest[:10]})"
        rec = rec_groups.get(b.batch, np.array([], dtype=int))
        rej = rej_groups.get(b.batch, np.array([], dtype=int))
        if len(rej):
            entries = [(rec_pos[i], ledger.reading_hashes[i]) for i in rec]
            entries += [(rej_pos[i], ledger.rejected_hashes[i]) for i in rej]
            entries.sort(key=lambda e: e[0])
            hashes = [h for _, h in entries]
            order = {int(p): n for n, (p, _) in enumerate(entries)}
            for i in rej:
                if order[int(rej_pos[i])] != int(rej_index[i]):
                    out.append(
                        violation(
                            "batch_signatures",
                            f"rejected reading logged with index {rej_index[i]} sits at position "
                            f"{order[int(rej_pos[i])]} of the batch",
                            subject=subject,
                            block=int(b.block),
                        )
                    )
        else:
            hashes = [ledger.reading_hashes[i] for i in rec]
        if (len(rec), len(rej)) != (int(b.accepted), int(b.rejected)):
            out.append(
                violation(
                    "batch_signatures",
                    f"BatchApplied says {b.accepted} accepted / {b.rejected} rejected; the logs "
                    f"hold {len(rec)} / {len(rej)}",
                    subject=subject,
                    block=int(b.block),
                )
            )
        digest = batch_digest_from_hashes(hashes, separator)
        if "0x" + digest.hex() != b.digest:
            out.append(
                violation(
                    "batch_signatures",
                    f"the {len(hashes)} logged readings hash to 0x{digest.hex()}, not to the "
                    f"batch digest {b.digest}: the readings were altered after signing",
                    subject=subject,
                    block=int(b.block),
                )
            )
        # Signatures are checked against the logged digest: a mismatch above already says the
        # readings differ from what was signed; this says who signed what was logged.
        signed = bytes.fromhex(b.digest[2:])
        k = int(np.searchsorted(state_pos, int(b.pos))) - 1
        in_force, quorum = (states[k][1], states[k][2]) if k >= 0 else (frozenset(), 0)
        recovered: list[str] = []
        for listed, sig in zip(b.signers, b.signatures, strict=False):
            try:
                signer = recover(signed, bytes.fromhex(sig[2:]))
            except BadSignature as exc:
                out.append(
                    violation(
                        "batch_signatures",
                        f"signature of {listed}: {exc}",
                        subject=subject,
                        block=int(b.block),
                    )
                )
                continue
            if signer != to_checksum_address(listed):
                out.append(
                    violation(
                        "batch_signatures",
                        f"a signature recovers to {signer}, not to the listed signer {listed}",
                        subject=subject,
                        block=int(b.block),
                    )
                )
            if signer not in in_force:
                out.append(
                    violation(
                        "batch_signatures",
                        f"{signer} was not a registered oracle signer at block {b.block}",
                        subject=subject,
                        block=int(b.block),
                    )
                )
            recovered.append(signer)
        if len(b.signers) != len(b.signatures):
            out.append(
                violation(
                    "batch_signatures",
                    f"{len(b.signers)} signers listed for {len(b.signatures)} signatures",
                    subject=subject,
                    block=int(b.block),
                )
            )
        keys = [int(s, 16) for s in recovered]
        if keys != sorted(set(keys)):
            out.append(
                violation(
                    "batch_signatures",
                    "signers are not distinct and ascending",
                    subject=subject,
                    block=int(b.block),
                )
            )
        valid = len({s for s in recovered if s in in_force})
        if valid < quorum or quorum == 0:
            out.append(
                violation(
                    "batch_signatures",
                    f"{valid} valid registered signatures; the quorum in force was {quorum}",
                    subject=subject,
                    block=int(b.block),
                )
            )
        if config.trusted_signers is not None:
            for signer in recovered:
                if signer not in config.trusted_signers:
                    out.append(
                        violation(
                            "trusted_signers",
                            f"signed by {signer}, which is not in the auditor's trusted oracle "
                            "signer set",
                            subject=subject,
                            block=int(b.block),
                        )
                    )
    return out


def check_signer_set_changes(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    """Warning for every signer-set or quorum change after deployment; with a trusted set, a
    registered signer outside it is a violation even before it signs anything."""
    out: list[Finding] = []
    history = ledger.signer_history
    if history.empty:
        return out
    first_block = int(history["block"].min())
    for h in history.itertuples(index=False):
        if int(h.block) > first_block:
            what = (
                f"quorum set to {h.quorum}"
                if h.action == "quorum"
                else f"signer {h.action}: {h.signer}"
            )
            out.append(warning("signer_set_changed", what, block=int(h.block)))
        if (
            config.trusted_signers is not None
            and h.action == "add"
            and h.signer not in config.trusted_signers
        ):
            out.append(
                violation(
                    "trusted_signers",
                    f"{h.signer} was registered as an oracle signer but is not trusted",
                    block=int(h.block),
                )
            )
    return out


ALL_CHECKS: list[Callable[[Ledger, AuditConfig], list[Finding]]] = [
    check_no_double_count,
    check_plausibility,
    check_issued_within_verified,
    check_certificate_evidence,
    check_supply,
    check_certificate_conservation,
    check_revoked_not_moved,
    check_state_matches_events,
    check_batch_signatures,
    check_signer_set_changes,
    check_solar_at_night,
    check_zone_peers,
]


def run_checks(ledger: Ledger, config: AuditConfig) -> list[Finding]:
    findings: list[Finding] = []
    for check in ALL_CHECKS:
        found = check(ledger, config)
        log.info("%s: %d findings", check.__name__, len(found))
        findings.extend(found)
    return findings
