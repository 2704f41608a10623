"""CSV import of 30-minute values, through the same validation and store as the HTTP API.

Two formats:
- interval: one reading per row, columns meter_id, interval_start, interval_end (ISO-8601 with
  offset), generated_wh, consumed_wh, sold_wh, purchased_wh.
- broute: Japanese smart-meter B-route cumulative registers (ECHONET Lite low-voltage smart
  meter class 0x0288, fixed-time readings 0xEA forward / 0xEB reverse at each 30-minute mark),
  columns meter_id (or --meter), timestamp, forward (purchased), reverse (sold) and optionally
  generation (a PV meter's cumulative register). Raw register counts are converted with the
  meter's unit (0xE1) and coefficient (0xD3); the counter wraps at 10^digits (0xD7).
  Interval values are the differences between consecutive marks. consumed = generated +
  purchased - sold (no battery assumed); without a generation column generated is 0.
  A missing mark leaves a longer gap: `skip` drops the intervals it spans (their split is
  unknown), `split` spreads the energy evenly over them (remainder to the last).

An import is atomic: if any row is bad, nothing of the file is stored.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from oracle.validation import Issue, WireReading, check_batch

if TYPE_CHECKING:
    from oracle.service import Oracle

# ECHONET Lite 0xE1 "unit for cumulative amounts of electric energy" -> kWh per count.
UNIT_KWH: dict[int, Decimal] = {
    0x00: Decimal(1),
    0x01: Decimal("0.1"),
    0x02: Decimal("0.01"),
    0x03: Decimal("0.001"),
    0x04: Decimal("0.0001"),
    0x0A: Decimal(10),
    0x0B: Decimal(100),
    0x0C: Decimal(1000),
    0x0D: Decimal(10000),
}


@dataclass(frozen=True)
class BRouteOptions:
    unit_code: int = 0x01
    coefficient: int = 1
    digits: int = 8
    gap: str = "skip"  # skip | split
    meter: str | None = None

    def wh_per_count(self) -> Decimal:
        if self.unit_code not in UNIT_KWH:
            raise ValueError(f"unknown ECHONET Lite unit code 0x{self.unit_code:02X}")
        return UNIT_KWH[self.unit_code] * self.coefficient * 1000


@dataclass(frozen=True)
class Mark:
    """Cumulative register counts at one 30-minute mark (unix seconds)."""

    time: int
    forward: int
    reverse: int
    generation: int | None = None


@dataclass
class ImportReport:
    file: str
    readings: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped_intervals: int = 0
    wraps: int = 0
    issues: list[Issue] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{self.file}: {self.readings} readings, {self.accepted} accepted, "
            f"{self.duplicates} duplicates, {self.skipped_intervals} intervals skipped at gaps, "
            f"{self.wraps} counter wraps"
        ]
        lines += [f"  row {i.index + 1}: {i.field}: {i.message}" for i in self.issues[:50]]
        if self.issues:
            lines.append("nothing stored (an import is all or nothing)")
        return "\n".join(lines)


def parse_time(text: str) -> int:
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset")
    return int(value.timestamp())


def _delta(prev: int, cur: int, modulus: int) -> tuple[int, bool]:
    """Register increase, allowing one wrap of the counter."""
    if cur >= prev:
        return cur - prev, False
    return cur + modulus - prev, True


def _wh(counts: int, per_count: Decimal) -> int:
    return int((Decimal(counts) * per_count).to_integral_value(ROUND_HALF_EVEN))


def derive_intervals(
    meter: str, marks: Sequence[Mark], options: BRouteOptions, interval: int = 1800
) -> tuple[list[WireReading], int, int]:
    """Interval readings from consecutive cumulative marks: (readings, skipped, wraps)."""
    per_count = options.wh_per_count()
    modulus = 10**options.digits
    ordered = sorted(marks, key=lambda m: m.time)
    out: list[WireReading] = []
    skipped = wraps = 0
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        span = cur.time - prev.time
        if span <= 0 or span % interval:
            raise ValueError(f"marks at {prev.time} and {cur.time} are not whole intervals apart")
        slots = span // interval
        fwd, w1 = _delta(prev.forward, cur.forward, modulus)
        rev, w2 = _delta(prev.reverse, cur.reverse, modulus)
        gen_counts = 0
        w3 = False
        if cur.generation is not None and prev.generation is not None:
            gen_counts, w3 = _delta(prev.generation, cur.generation, modulus)
        wraps += int(w1) + int(w2) + int(w3)
        if slots > 1 and options.gap == "skip":
            skipped += slots
            continue
        totals = [_wh(gen_counts, per_count), _wh(fwd, per_count), _wh(rev, per_count)]
        for k in range(slots):
            share = []
            for total in totals:
                base = total // slots
                share.append(base + (total - base * slots if k == slots - 1 else 0))
            gen, purchased, sold = share
            consumed = max(gen + purchased - sold, 0)
            start = prev.time + k * interval
            out.append(WireReading(meter, start, start + interval, gen, consumed, sold, purchased))
    return out, skipped, wraps


def read_interval_csv(rows: Iterable[dict[str, str]]) -> tuple[list[WireReading], list[Issue]]:
    readings: list[WireReading] = []
    issues: list[Issue] = []
    for i, row in enumerate(rows):
        try:
            readings.append(
                WireReading(
                    row["meter_id"].strip(),
                    parse_time(row["interval_start"]),
                    parse_time(row["interval_end"]),
                    int(row["generated_wh"]),
                    int(row["consumed_wh"]),
                    int(row["sold_wh"]),
                    int(row["purchased_wh"]),
                )
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            issues.append(Issue(i, "row", f"cannot parse: {exc}"))
    return readings, issues


def read_broute_csv(
    rows: Iterable[dict[str, str]], options: BRouteOptions, interval: int
) -> tuple[list[WireReading], list[Issue], int, int]:
    by_meter: dict[str, list[Mark]] = {}
    issues: list[Issue] = []
    for i, row in enumerate(rows):
        try:
            meter = (row.get("meter_id") or options.meter or "").strip()
            if not meter:
                raise ValueError("no meter_id column and no --meter")
            generation = row.get("generation")
            by_meter.setdefault(meter, []).append(
                Mark(
                    parse_time(row["timestamp"]),
                    int(row["forward"]),
                    int(row["reverse"]),
                    int(generation) if generation not in (None, "") else None,
                )
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            issues.append(Issue(i, "row", f"cannot parse: {exc}"))
    readings: list[WireReading] = []
    skipped = wraps = 0
    for meter, marks in by_meter.items():
        try:
            derived, s, w = derive_intervals(meter, marks, options, interval)
        except ValueError as exc:
            issues.append(Issue(0, "timestamp", f"{meter}: {exc}"))
            continue
        readings += derived
        skipped += s
        wraps += w
    return readings, issues, skipped, wraps


def import_file(oracle: Oracle, path: Path, fmt: str, options: BRouteOptions) -> ImportReport:
    """Parses, validates (as the API does) and stores a CSV file atomically."""
    from oracle.store import Conflict

    report = ImportReport(str(path))
    rules = oracle.rules()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if fmt == "interval":
        readings, issues = read_interval_csv(rows)
    else:
        readings, issues, report.skipped_intervals, report.wraps = read_broute_csv(
            rows, options, rules.interval_seconds
        )
    report.readings = len(readings)
    # An operator's one-off import may wait for the chain (unlike an HTTP request).
    oracle.prefetch_specs((r.meter for r in readings), wait_s=oracle.settings.rpc_timeout_s)
    issues += check_batch(readings, rules, oracle.spec_of)
    if issues:
        report.issues = issues
        return report
    try:
        statuses = oracle.store.accept(readings, f"csv:{path.name}")
    except Conflict as exc:
        report.issues = exc.issues
        return report
    report.accepted = statuses.count("accepted")
    report.duplicates = len(statuses) - report.accepted
    return report
