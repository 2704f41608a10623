"""Reading validation shared by the HTTP API and the CSV import. It mirrors the registry's rules
(GenerationRegistry._check) so that bad readings are refused at the door with a precise reason,
and adds the oracle's own: interval alignment, a future-time tolerance, a plausibility bound."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oracle.chain import MeterSpec
from zcx.eip712 import UINT64_MAX
from zcx.ids import meter_id as encode_meter_id

BPS = 10_000
SECONDS_PER_HOUR = 3600
# No single meter moves 10 GWh in one interval; the bound keeps the registry's uint56 totals
# far from overflow (an overflow would revert a whole batch, not skip one reading).
MAX_WH_PER_READING = 10_000_000_000


@dataclass(frozen=True)
class WireReading:
    """A reading after parsing: meter label, unix seconds, Wh."""

    meter: str
    start: int
    end: int
    generated_wh: int
    consumed_wh: int
    sold_wh: int
    purchased_wh: int

    def values(self) -> tuple[int, int, int, int, int]:
        return (self.end, self.generated_wh, self.consumed_wh, self.sold_wh, self.purchased_wh)


@dataclass(frozen=True)
class Issue:
    index: int
    field: str
    message: str
    kind: str = "invalid"  # invalid | unknown_meter | conflict | forbidden


@dataclass(frozen=True)
class Rules:
    interval_seconds: int
    capacity_margin_bps: int
    now: int
    max_future_s: int


SpecLookup = Callable[[str], MeterSpec | None]


def check_reading(index: int, r: WireReading, rules: Rules, spec_of: SpecLookup) -> list[Issue]:
    """Every problem of one reading (empty when it is acceptable)."""
    issues: list[Issue] = []
    try:
        encode_meter_id(r.meter)
    except ValueError as exc:
        return [Issue(index, "meter_id", str(exc))]
    for name in ("generated_wh", "consumed_wh", "sold_wh", "purchased_wh"):
        value = getattr(r, name)
        if not 0 <= value <= UINT64_MAX:
            issues.append(Issue(index, name, f"{value} is outside 0..2^64-1"))
        elif value > MAX_WH_PER_READING:
            issues.append(Issue(index, name, f"{value} Wh in one interval is not plausible"))
    interval = rules.interval_seconds
    if r.end <= r.start:
        issues.append(Issue(index, "interval_end", "must be after interval_start"))
    elif r.end - r.start != interval:
        issues.append(
            Issue(
                index, "interval_end", f"interval lasts {r.end - r.start} s; must be {interval} s"
            )
        )
    if r.start % interval:
        issues.append(
            Issue(index, "interval_start", f"must be aligned to a {interval}-second boundary (UTC)")
        )
    if r.end > rules.now + rules.max_future_s:
        issues.append(Issue(index, "interval_end", "is in the future"))
    spec = spec_of(r.meter)
    if spec is None or not spec.known:
        issues.append(
            Issue(index, "meter_id", f"meter {r.meter!r} is not registered", "unknown_meter")
        )
        return issues
    if not spec.active:
        issues.append(
            Issue(index, "meter_id", f"meter {r.meter!r} is deactivated", "unknown_meter")
        )
    if r.start < spec.commissioned_at:
        issues.append(
            Issue(
                index,
                "interval_start",
                f"before the meter's commissioning ({spec.commissioned_at})",
            )
        )
    seconds = max(r.end - r.start, 0)
    limit_scaled = spec.capacity_w * seconds * (BPS + rules.capacity_margin_bps)
    if r.generated_wh * SECONDS_PER_HOUR * BPS > limit_scaled:
        max_wh = limit_scaled // (SECONDS_PER_HOUR * BPS)
        issues.append(
            Issue(
                index,
                "generated_wh",
                f"{r.generated_wh} Wh exceeds what {spec.capacity_w} W can generate in "
                f"{seconds} s with the {rules.capacity_margin_bps} bps margin ({max_wh} Wh)",
            )
        )
    return issues


def check_batch(readings: Sequence[WireReading], rules: Rules, spec_of: SpecLookup) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[tuple[str, int], int] = {}
    for i, r in enumerate(readings):
        issues.extend(check_reading(i, r, rules, spec_of))
        key = (r.meter, r.start)
        if key in seen and readings[seen[key]] != r:
            issues.append(
                Issue(
                    i,
                    "interval_start",
                    f"conflicts with reading {seen[key]} of this request",
                    "conflict",
                )
            )
        seen.setdefault(key, i)
    return issues
