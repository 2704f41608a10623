"""One HTML report writer for the demo and the audit: figures (matplotlib), tables (pandas), text.

Usage:
    report = Report("ZCX demo", Path("reports/demo"), zone=ZoneInfo("Asia/Tokyo"))
    report.add_checks({"supply + retired = issued": True})   # a PASS/FAIL list
    fig, ax = new_figure()
    ax.plot(...)
    report.add_figure("generation", fig, "Generation against consumption")
    report.add_table("summary", dataframe, "Coins per member kind")
    path = report.write()   # reports/demo/index.html + one PNG per figure + one CSV per table

The CSV files keep the raw values (unix seconds, base units) for scripts; the HTML shows the
same tables for people: plain-language headers, thousands separators, times in the report's
zone, each table in its own scrolling box (it reads at 1,280 px), and a link to its CSV.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are files, there is no screen

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# Columns holding unix seconds: shown as ISO 8601 times in the report's zone.
TIME_COLUMNS = frozenset(
    {
        "timestamp",
        "start",
        "end",
        "period_start",
        "period_end",
        "consumption_start",
        "consumption_end",
        "issued_at",
        "expiry",
        "due_at",
        "start_time",
        "end_time",
        "slot_start",
        "slot_end",
    }
)
# Integer columns that are identifiers, not quantities: no thousands separators.
_ID_COLUMN = re.compile(r"(^|_)(id|ids|block|batch|index|pos|seed|schema_version|nonce)$")
# Chain-internal ordering keys (block << 32 | log or transaction index): not for readers.
HIDDEN_COLUMNS = frozenset({"pos", "tx", "registry_pos"})
HEADERS = {
    "pq1": "generated (PQ1, Wh)",
    "pq2": "consumed (PQ2, Wh)",
    "pq3": "sold (PQ3, Wh)",
    "pq4": "purchased (PQ4, Wh)",
    "pq1_generated_wh": "generated (PQ1, Wh)",
    "pq2_consumed_wh": "consumed (PQ2, Wh)",
    "pq3_sold_wh": "sold (PQ3, Wh)",
    "pq4_purchased_wh": "purchased (PQ4, Wh)",
    "generated_wh": "generated (Wh)",
    "consumed_wh": "consumed (Wh)",
    "sold_wh": "sold (Wh)",
    "purchased_wh": "purchased (Wh)",
    "coins_purchased": "coins issued to it (units)",
    "coins_used": "coins paid out (units)",
    "coins_amortized": "coins retired (units)",
    "coins_balance": "coin balance (units)",
    "units": "units (1,000 = 1 ZCV)",
    "wh": "energy (Wh)",
    "tx_hash": "transaction",
    "to": "to",
    "from": "from",
    "meter_id": "meter id",
    "capacity_w": "capacity (W)",
    "members": "members",
    "timestamp": "time",
}
_UNIT_SUFFIXES = (
    ("_kwh", " (kWh)"),
    ("_wh", " (Wh)"),
    ("_jpy", " (JPY)"),
    ("_w", " (W)"),
    ("_bps", " (bps)"),
    ("_zcv", " (ZCV)"),
    ("_pct", " (%)"),
)
_PRIVATE_PATHS = re.compile(r"(?<![\w.~])/(?:home|root|tmp|work|Users|var|mnt|private)/[^\s'\"<>]*")

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:1.5em auto;
 padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}
img{max-width:100%;height:auto}
.table-box{overflow:auto;max-width:100%;max-height:34em;border:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th{position:sticky;top:0;background:#f4f4f4;text-align:right;padding:4px 8px;white-space:nowrap}
td{padding:2px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
td.text,th.text{text-align:left}
p.csv{font-size:13px;margin:.3em 0 0}
ul.checks{list-style:none;padding:0}ul.checks li{margin:.2em 0}
.badge{display:inline-block;min-width:3.5em;text-align:center;font-weight:bold;border-radius:3px;
 padding:0 .4em;margin-right:.6em;color:#fff}
.PASS{background:#2e7d32}.FAIL{background:#c62828}.WARN{background:#b26a00}
footer{margin-top:2em;font-size:12px;color:#666}
"""


def new_figure(width: float = 10, height: float = 4) -> tuple[Any, Any]:
    """A figure and axes in the report's house style."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.grid(True, alpha=0.3)
    return fig, ax


def plain_header(column: str) -> str:
    """A column name as a reader would say it: 'zcv_retired' -> 'ZCV retired'."""
    if column in HEADERS:
        return HEADERS[column][:1].upper() + HEADERS[column][1:]
    name, unit = column, ""
    for suffix, label in _UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], label
            break
    words = name.replace("_", " ").strip()
    words = re.sub(r"\bzcv\b", "ZCV", words)
    words = re.sub(r"\bjpyt\b", "JPYT", words)
    words = re.sub(r"\bid\b", "id", words)
    return (words[:1].upper() + words[1:] if words else column) + unit


def local_time(seconds: Any, zone: tzinfo) -> str:
    """Unix seconds as ISO 8601 in `zone`, to the minute: 2026-11-20T10:00+09:00."""
    if seconds is None or (isinstance(seconds, float) and pd.isna(seconds)):
        return ""
    return datetime.fromtimestamp(int(seconds), zone).isoformat(timespec="minutes")


def is_int_column(series: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return True
    if series.dtype == object:
        sample = series.dropna().head(200)
        return len(sample) > 0 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in sample
        )
    return False


def _decimals(series: pd.Series, most: int = 3) -> int:
    """The fewest decimals (up to `most`) that show every value of a float column."""
    values = series.dropna().head(500)
    for places in range(most + 1):
        if all(abs(round(v, places) - v) < 10 ** -(most + 1) for v in values):
            return places
    return most


def display_frame(frame: pd.DataFrame, zone: tzinfo) -> tuple[pd.DataFrame, set[str]]:
    """The frame as text for people, and the columns that are text (left-aligned)."""
    out = pd.DataFrame(index=frame.index)
    text_columns: set[str] = set()
    hidden = set(HIDDEN_COLUMNS)
    if "meter" in frame.columns:  # the label says it; the bytes32 id is in the CSV
        hidden.add("meter_id")
    for column in frame.columns:
        if column in hidden:
            continue
        series = frame[column]
        header = plain_header(str(column))
        if column in TIME_COLUMNS and is_int_column(series):
            out[header] = [local_time(v, zone) for v in series]
        elif is_int_column(series):
            plain = _ID_COLUMN.search(str(column)) is not None
            out[header] = [
                "" if v is None or pd.isna(v) else (str(int(v)) if plain else f"{int(v):,}")
                for v in series
            ]
        elif pd.api.types.is_float_dtype(series):
            places = _decimals(series)
            out[header] = ["" if pd.isna(v) else f"{v:,.{places}f}" for v in series]
        else:
            out[header] = ["" if v is None else str(v) for v in series]
            text_columns.add(header)
    return out, text_columns


def table_html(frame: pd.DataFrame, zone: tzinfo) -> str:
    shown, text_columns = display_frame(frame, zone)
    head = "".join(
        f"<th class='{'text' if c in text_columns else 'num'}'>{html.escape(c)}</th>"
        for c in shown.columns
    )
    rows = []
    for values in shown.itertuples(index=False):
        cells = "".join(
            f"<td class='{'text' if c in text_columns else 'num'}'>{html.escape(v)}</td>"
            for c, v in zip(shown.columns, values, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<div class='table-box'><table><thead><tr>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def scrub_paths(text: str) -> str:
    """No absolute path of the machine in a report that is shared: keep the file name."""
    return _PRIVATE_PATHS.sub(lambda m: Path(m.group(0)).name or "…", text)


@dataclass
class _Section:
    kind: str
    name: str
    caption: str
    body: str = ""


@dataclass
class Report:
    title: str
    directory: Path
    zone: tzinfo = UTC
    sections: list[_Section] = field(default_factory=list)

    def add_text(self, text: str, heading: str = "") -> None:
        self.sections.append(_Section("text", heading, heading, text))

    def add_checks(self, checks: Mapping[str, bool | str], heading: str = "Checks") -> None:
        """A PASS/FAIL list: each check with True (PASS), False (FAIL) or a status word."""
        items = []
        for name, status in checks.items():
            word = status if isinstance(status, str) else ("PASS" if status else "FAIL")
            items.append(
                f"<li><span class='badge {html.escape(word)}'>{html.escape(word)}</span>"
                f"{html.escape(name)}</li>"
            )
        self.sections.append(
            _Section("html", "checks", heading, "<ul class='checks'>" + "".join(items) + "</ul>")
        )

    def add_links(self, heading: str, links: Mapping[str, str], note: str = "") -> None:
        """A list of files next to the report (relative links: the folder can be moved)."""
        items = "".join(
            f"<li><a href='{html.escape(href)}'>{html.escape(label)}</a></li>"
            for label, href in links.items()
        )
        lead = f"<p>{html.escape(note)}</p>" if note else ""
        self.sections.append(_Section("html", "files", heading, f"{lead}<ul>{items}</ul>"))

    def add_figure(self, name: str, fig: Any, caption: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        self.sections.append(_Section("figure", name, caption))
        return path

    def add_table(self, name: str, frame: pd.DataFrame, caption: str, max_rows: int = 200) -> Path:
        """The whole frame as <name>.csv (raw values); its first `max_rows` rows in the page."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        rows = (
            f"all {len(frame):,} rows"
            if len(frame) <= max_rows
            else (f"the first {max_rows:,} of {len(frame):,} rows are shown; all are in the CSV")
        )
        link = f"<p class='csv'>CSV: <a href='{name}.csv'>{name}.csv</a> ({rows})</p>"
        body = table_html(frame.head(max_rows), self.zone) if len(frame) else "<p>None.</p>"
        self.sections.append(_Section("table", name, caption, body + link))
        return path

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        for s in self.sections:
            if s.caption:
                parts.append(f"<h2 id='{html.escape(s.name)}'>{html.escape(s.caption)}</h2>")
            if s.kind == "text":
                parts.append(f"<p>{html.escape(s.body)}</p>")
            elif s.kind == "figure":
                parts.append(f"<img src='{s.name}.png' alt='{html.escape(s.caption)}'>")
            else:
                parts.append(s.body)
        parts.append(
            f"<footer>Times are ISO 8601 in {html.escape(str(self.zone))}. Amounts in tables "
            "are as recorded on chain; each table's CSV holds the raw values (unix seconds, "
            "base units).</footer></body></html>"
        )
        path = self.directory / "index.html"
        path.write_text(scrub_paths("\n".join(parts)), encoding="utf-8")
        return path
