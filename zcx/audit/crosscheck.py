"""Cross-checks off-chain sources (gateway CSV files, the oracle's SQLite store) against the chain.

The interface is deliberately small: a source is any iterable of `SourceRow` (meter label,
interval start, interval end, PQ1..PQ4, all whole Wh and unix seconds). Adapters:

- `csv_rows(path)`: gateway CSV files with the columns
  `meter_id,interval_start,interval_end,generated_wh,consumed_wh,sold_wh,purchased_wh`, times in
  ISO-8601 (with an offset; naive times are read as UTC) or unix seconds;
- `sqlite_rows(path)`: the oracle's SQLite store. It finds the readings table by its columns
  (a meter column `meter_id`/`meter`/`meter_label`, `interval_start`/`start`, `interval_end`/`end`
  and the four `*_wh` columns or the oracle store's `gen, cons, sold, purchased`), so it follows
  the store's schema (oracle/store.py) without importing the oracle. When the table has a `state`
  column, only final rows (`confirmed`, `rejected`) are compared: the others are not on chain yet.

Findings (violations):
- `reading_altered`: the source and the chain disagree on a (meter, interval) both hold;
- `reading_lost`: in the source, neither recorded nor rejected on chain;
- `reading_without_source`: recorded on chain, absent from the source, for a meter the source
  covers, inside the span the source covers (`strict=True`: everywhere);
and warnings `reading_rejected_on_chain` for source rows the chain rejected (with its reason).
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from zcx.audit.findings import Finding, violation, warning
from zcx.audit.ledger import PQ, Ledger

CSV_COLUMNS = [
    "meter_id",
    "interval_start",
    "interval_end",
    "generated_wh",
    "consumed_wh",
    "sold_wh",
    "purchased_wh",
]
_METER_COLUMNS = ("meter_id", "meter", "meter_label")
_START_COLUMNS = ("interval_start", "start")
_END_COLUMNS = ("interval_end", "end")
_WH_COLUMNS = ("generated_wh", "consumed_wh", "sold_wh", "purchased_wh")
# The oracle's store (oracle/store.py) names them gen, cons, sold, purchased.
_WH_OPTIONS = (
    ("generated_wh", "gen"),
    ("consumed_wh", "cons"),
    ("sold_wh", "sold"),
    ("purchased_wh", "purchased"),
)
# Rows of the oracle store that are final: the chain has answered for them (confirmed/rejected).
# Rows still on their way (accepted, batched, submitted) are not expected on chain yet.
FINAL_STATES = ("confirmed", "rejected")


class SourceRow(NamedTuple):
    meter: str
    start: int
    end: int
    pq1: int
    pq2: int
    pq3: int
    pq4: int


class SourceFormatError(ValueError):
    """A source file does not have the expected shape."""


def parse_time(value: str | int | float) -> int:
    """Unix seconds from unix seconds or ISO-8601 (naive = UTC)."""
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SourceFormatError(f"time {text!r} is neither unix seconds nor ISO-8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def csv_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceFormatError(
                f"{path}: missing columns {missing}; expected {','.join(CSV_COLUMNS)}"
            )
        for n, row in enumerate(reader, start=2):
            try:
                yield SourceRow(
                    row["meter_id"].strip(),
                    parse_time(row["interval_start"]),
                    parse_time(row["interval_end"]),
                    *(int(row[c]) for c in _WH_COLUMNS),
                )
            except (ValueError, TypeError) as exc:
                raise SourceFormatError(f"{path}:{n}: {exc}") from exc


def write_csv(path: Path, rows: Iterable[SourceRow]) -> Path:
    """Writes rows in the gateway CSV format (ISO-8601 UTC times)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.meter,
                    datetime.fromtimestamp(r.start, UTC).isoformat(),
                    datetime.fromtimestamp(r.end, UTC).isoformat(),
                    r.pq1,
                    r.pq2,
                    r.pq3,
                    r.pq4,
                ]
            )
    return path


def _pick(columns: list[str], options: tuple[str, ...]) -> str | None:
    return next((c for c in options if c in columns), None)


def sqlite_rows(path: Path, table: str | None = None) -> Iterator[SourceRow]:
    """Readings from a SQLite store (the oracle's), found by column names."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SQLite store")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = (
            [table]
            if table
            else sorted(
                (r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")),
                # The oracle's own readings first: its store also keeps a copy of what the chain
                # recorded (chain_recorded), which has the same columns but is not the source.
                key=lambda name: (name != "readings", name),
            )
        )
        for name in tables:
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{name}")')]
            meter, start, end = (
                _pick(columns, _METER_COLUMNS),
                _pick(columns, _START_COLUMNS),
                _pick(columns, _END_COLUMNS),
            )
            wh = [_pick(columns, options) for options in _WH_OPTIONS]
            if meter and start and end and all(wh):
                select = ", ".join(f'"{c}"' for c in (meter, start, end, *wh))
                where = ""
                if "state" in columns:
                    where = " WHERE state IN (" + ",".join(f"'{s}'" for s in FINAL_STATES) + ")"
                for row in db.execute(f'SELECT {select} FROM "{name}"{where}'):
                    label = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
                    yield SourceRow(
                        label.rstrip("\x00"),
                        parse_time(row[1]),
                        parse_time(row[2]),
                        *(int(v) for v in row[3:]),
                    )
                return
        raise SourceFormatError(
            f"{path}: no table with a meter column {_METER_COLUMNS}, start {_START_COLUMNS}, end "
            f"{_END_COLUMNS} and {_WH_COLUMNS}"
        )
    finally:
        db.close()


def source_frame(rows: Iterable[SourceRow]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(SourceRow._fields))
    return frame.astype({c: "int64" for c in ["start", "end", *PQ]})


def cross_check(
    ledger: Ledger,
    rows: Iterable[SourceRow],
    source_name: str = "source",
    strict: bool = False,
    max_listed: int = 100_000,
) -> list[Finding]:
    """Compares a source with the chain's recorded and rejected readings."""
    src = source_frame(rows)
    out: list[Finding] = []
    dups = src[src.duplicated(["meter", "start"], keep=False)]
    for row in dups.drop_duplicates(["meter", "start"]).itertuples(index=False):
        out.append(
            warning(
                "reading_altered",
                f"{source_name} holds several rows for interval start "
                f"{row.start}; compared with the last",
                subject=row.meter,
            )
        )
    src = src.drop_duplicates(["meter", "start"], keep="last")
    chain = ledger.readings[["meter", "start", "end", *PQ, "block"]].copy()
    chain["meter"] = chain["meter"].astype(str)
    merged = src.merge(
        chain, on=["meter", "start"], how="outer", suffixes=("_src", "_chain"), indicator=True
    )
    both = merged[merged["_merge"] == "both"]
    fields = ["end", *PQ]
    differs = pd.Series(False, index=both.index)
    for f in fields:
        differs |= both[f"{f}_src"] != both[f"{f}_chain"]
    for row in both[differs].head(max_listed).itertuples(index=False):
        changes = ", ".join(
            f"{f} {int(getattr(row, f + '_src'))} vs {int(getattr(row, f + '_chain'))}"
            for f in fields
            if getattr(row, f + "_src") != getattr(row, f + "_chain")
        )
        out.append(
            violation(
                "reading_altered",
                f"interval {_iso(row.start)}: {source_name} and chain disagree ({changes})",
                subject=row.meter,
                block=int(row.block),
            )
        )
    only_src = merged[merged["_merge"] == "left_only"]
    rejected = ledger.rejected
    reasons = {}
    if len(rejected):
        for r in rejected.itertuples(index=False):
            reasons[(r.meter, int(r.start))] = (r.error, r.message, int(r.block))
    for row in only_src.head(max_listed).itertuples(index=False):
        key = (row.meter, int(row.start))
        if key in reasons:
            error, message, block = reasons[key]
            out.append(
                warning(
                    "reading_rejected_on_chain",
                    f"interval {_iso(row.start)} in {source_name} was rejected: "
                    f"{error} ({message})",
                    subject=row.meter,
                    block=block,
                )
            )
        else:
            out.append(
                violation(
                    "reading_lost",
                    f"interval {_iso(row.start)} is in {source_name} but was never recorded "
                    "on chain",
                    subject=row.meter,
                )
            )
    only_chain = merged[merged["_merge"] == "right_only"]
    if not strict and len(only_chain):
        span = src.groupby("meter").agg(first=("start", "min"), last=("end", "max"))
        within = only_chain["meter"].isin(span.index)
        first = only_chain["meter"].map(span["first"])
        last = only_chain["meter"].map(span["last"])
        only_chain = only_chain[
            within & (only_chain["start"] >= first) & (only_chain["start"] < last)
        ]
    for row in only_chain.head(max_listed).itertuples(index=False):
        out.append(
            violation(
                "reading_without_source",
                f"interval {_iso(row.start)} is recorded on chain but absent from {source_name}",
                subject=row.meter,
                block=int(row.block),
            )
        )
    return out


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%MZ")
