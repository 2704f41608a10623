"""What a retirement statement says, and the exact text a printed statement shows.

A `Statement` holds chain facts (retirements, their certificates, transactions and blocks) plus
a few document facts (time zone, issue time, verification URL). `layout()` turns it into the
printed text: a title, sections of (label, value) rows and notes, in reading order. The HTML
template prints nothing else, so the verifier can rebuild the same text from the chain and
compare it with what a PDF shows, field by field (zcx.statements.verify).

`to_canonical()` is the machine-readable block embedded in every HTML page and PDF.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

SCHEMA = "zcx-statement/1"
DEFAULT_TZ = "Asia/Tokyo"
ZCV_DECIMALS = 3
Kind = Literal["retirement", "beneficiary-month"]
RETIREMENT_KIND: Kind = "retirement"
MONTH_KIND: Kind = "beneficiary-month"
Source = Literal["chain", "document"]

# Solidity enum order (IMemberRegistry.GenerationMethod) -> (Japanese, English).
METHOD_LABELS = {
    "Solar": "太陽光",
    "Wind": "風力",
    "Geothermal": "地熱",
    "Biomass": "バイオマス",
    "Hydro": "水力",
}


class StatementError(ValueError):
    """A statement that cannot be built or read (bad input, unknown retirement, bad block)."""


# ---------------------------------------------------------------------------- chain facts


@dataclass(frozen=True)
class CertificateUse:
    """One certificate's units consumed by one retirement, with the certificate's attributes."""

    id: int
    meter: str
    owner_name: str
    method: str
    zone: str
    capacity_w: int
    period_start: int
    period_end: int
    issued_at: int
    wh: int  # the certificate's face value
    units: int  # units the certificate was issued with
    units_used: int  # units of it this retirement burned
    revoked: bool = False  # revoked since (fraud): the statement shows it, verify re-reads it

    @property
    def wh_used(self) -> Fraction:
        """Energy behind the units used: units carry Wh pro rata (1 unit = 1 Wh by default)."""
        return Fraction(self.units_used * self.wh, self.units) if self.units else Fraction(0)


@dataclass(frozen=True)
class CfeScore:
    """Hourly carbon-free energy score of a matched retirement (issue 12): the share of the
    period's consumption that matched certificates of the same hours cover."""

    matched_wh: int
    consumption_wh: int

    @property
    def percent(self) -> Decimal:
        if not self.consumption_wh:
            return Decimal(0)
        return _round(Fraction(100 * self.matched_wh, self.consumption_wh), "0.1")


@dataclass(frozen=True)
class RetirementEntry:
    id: int
    holder: str
    beneficiary: str
    reason: str
    consumption_start: int
    consumption_end: int
    units: int
    certificates: tuple[CertificateUse, ...]
    txn_hash: str
    block_number: int
    block_hash: str
    block_time: int
    cfe: CfeScore | None = None  # present only when the retirement was matched

    @property
    def wh(self) -> Fraction:
        return sum((c.wh_used for c in self.certificates), Fraction(0))


@dataclass(frozen=True)
class Statement:
    kind: Kind
    chain_id: int
    zcv: str
    beneficiary: str
    retirements: tuple[RetirementEntry, ...]
    month: str | None = None  # YYYY-MM for a beneficiary's monthly statement
    # A monthly statement lists the retirements recorded up to this block, so a retirement
    # recorded later for the same month never invalidates a statement already issued.
    as_of_block: int | None = None
    tz: str = DEFAULT_TZ
    issued_at: int = 0  # when the document was made (unix seconds), not a chain fact
    verify_url: str = ""

    @property
    def units(self) -> int:
        return sum(r.units for r in self.retirements)

    @property
    def wh(self) -> Fraction:
        return sum((r.wh for r in self.retirements), Fraction(0))

    def to_canonical(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "chain_id": self.chain_id,
            "zcv": self.zcv,
            "beneficiary": self.beneficiary,
            "month": self.month,
            "as_of_block": self.as_of_block,
            "tz": self.tz,
            "issued_at": self.issued_at,
            "verify_url": self.verify_url,
            "retirements": [_entry_dict(r) for r in self.retirements],
        }

    def canonical_json(self) -> str:
        """Sorted keys, no spaces: the same statement always gives the same bytes."""
        return json.dumps(
            self.to_canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )


def _entry_dict(entry: RetirementEntry) -> dict[str, Any]:
    data = {k: v for k, v in entry.__dict__.items() if k not in ("certificates", "cfe")}
    data["certificates"] = [dict(c.__dict__) for c in entry.certificates]
    data["cfe"] = dict(entry.cfe.__dict__) if entry.cfe else None
    return data


def statement_from_canonical(data: Mapping[str, Any]) -> Statement:
    """The inverse of `Statement.to_canonical`; StatementError names what is wrong."""
    if data.get("schema") != SCHEMA:
        raise StatementError(f"schema: expected {SCHEMA!r}, found {data.get('schema')!r}")
    try:
        entries = tuple(_entry_from(r) for r in data["retirements"])
        kind = data["kind"]
        if kind not in (RETIREMENT_KIND, MONTH_KIND):
            raise StatementError(f"kind: {kind!r} is not a statement kind")
        return Statement(
            kind=kind,
            chain_id=int(data["chain_id"]),
            zcv=str(data["zcv"]),
            beneficiary=str(data["beneficiary"]),
            retirements=entries,
            month=data["month"],
            as_of_block=None if data["as_of_block"] is None else int(data["as_of_block"]),
            tz=str(data["tz"]),
            issued_at=int(data["issued_at"]),
            verify_url=str(data["verify_url"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StatementError):
            raise
        raise StatementError(f"statement block: {type(exc).__name__} {exc}") from None


def _entry_from(data: Mapping[str, Any]) -> RetirementEntry:
    certificates = tuple(CertificateUse(**c) for c in data["certificates"])
    cfe = CfeScore(**data["cfe"]) if data.get("cfe") else None
    fields = {k: v for k, v in data.items() if k not in ("certificates", "cfe")}
    return RetirementEntry(**fields, certificates=certificates, cfe=cfe)


# ---------------------------------------------------------------------------- formatting


def _round(value: Fraction, quantum: str) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal(quantum), rounding=ROUND_HALF_UP)


def format_kwh(wh: Fraction | int) -> str:
    return f"{_round(Fraction(wh) / 1000, '0.001'):,} kWh"


def format_units(units: int) -> str:
    zcv = Decimal(units).scaleb(-ZCV_DECIMALS)
    return f"{zcv:,.{ZCV_DECIMALS}f} ZCV ({units:,} units)"


def format_local(timestamp: int, tz: str, seconds: bool = False) -> str:
    """'2026-11-01 00:00 JST (UTC+09:00)': the reader's local time, zone always named."""
    moment = datetime.fromtimestamp(int(timestamp), UTC).astimezone(ZoneInfo(tz))
    offset = moment.strftime("%z")
    clock = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{moment.strftime(clock)} {moment.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def format_period(start: int, end: int, tz: str) -> str:
    return f"{format_local(start, tz)} – {format_local(end, tz)}"


def format_method(method: str) -> str:
    return f"{METHOD_LABELS.get(method, method)} {method}"


# ---------------------------------------------------------------------------- printed layout


@dataclass(frozen=True)
class Row:
    field: str  # dotted path, named in verification reports
    label_ja: str
    label_en: str
    value: str
    source: Source = "chain"


@dataclass(frozen=True)
class Section:
    key: str
    title_ja: str
    title_en: str
    rows: tuple[Row, ...]
    level: int = 2  # 2: a retirement, 3: a certificate inside it


@dataclass(frozen=True)
class Layout:
    title_ja: str
    title_en: str
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = field(default=())

    def tokens(self) -> Iterator[tuple[str, str]]:
        """The printed text in reading order: ('text', s) for fixed text, (field, value) for a
        figure. The template prints exactly these, in this order."""
        yield "text", self.title_ja
        yield "text", self.title_en
        for section in self.sections:
            yield "text", section.title_ja
            yield "text", section.title_en
            for row in section.rows:
                yield "text", row.label_ja
                yield "text", row.label_en
                yield row.field, row.value
        for note in self.notes:
            yield "text", note


TITLES = {
    RETIREMENT_KIND: ("再エネ価値 償却証明書", "Retirement statement"),
    MONTH_KIND: ("再エネ価値 月次償却証明書", "Monthly retirement statement"),
}
NOTES = (
    "この証明書の数値はすべてブロックチェーン上の記録から作成されています。"
    "QRコードの検証ページ、または zcx verify statement で誰でも再確認できます。",
    "Every figure on this statement comes from the public ledger. Anyone can re-check it on the "
    "verification page (QR code) or with: zcx verify statement FILE.pdf --rpc-url <node>.",
)


def layout(statement: Statement) -> Layout:
    title_ja, title_en = TITLES[statement.kind]
    sections = [_summary(statement)]
    for entry in statement.retirements:
        sections.append(_retirement_section(entry, statement))
        sections.extend(_certificate_section(entry, c, statement.tz) for c in entry.certificates)
    return Layout(title_ja, title_en, tuple(sections), NOTES)


def _summary(s: Statement) -> Section:
    rows = [Row("beneficiary", "受益者", "Beneficiary", s.beneficiary)]
    if s.kind == MONTH_KIND:
        rows.append(Row("month", "対象月", "Month", str(s.month)))
        rows.append(Row("retirement_count", "償却件数", "Retirements", str(len(s.retirements))))
        rows.append(
            Row("as_of_block", "集計対象", "Recorded up to block", f"{s.as_of_block or 0:,}")
        )
    rows += [
        Row("units", "償却量", "Units retired", format_units(s.units)),
        Row("kwh", "電力量", "Energy", format_kwh(s.wh)),
        Row("chain_id", "チェーンID", "Chain ID", str(s.chain_id)),
        Row("zcv", "ZCVコントラクト", "ZCV contract", s.zcv),
        Row("issued_at", "発行日時", "Issued", format_local(s.issued_at, s.tz), "document"),
        Row("verify_url", "検証ページ", "Verification page", s.verify_url, "document"),
    ]
    return Section("summary", "概要", "Summary", tuple(rows))


def _retirement_section(entry: RetirementEntry, s: Statement) -> Section:
    p = f"retirements[{entry.id}]"
    rows = [
        Row(f"{p}.holder", "保有者", "Holder", entry.holder),
        Row(f"{p}.beneficiary", "受益者", "Beneficiary", entry.beneficiary),
        Row(f"{p}.reason", "理由", "Reason", entry.reason or "-"),
        Row(
            f"{p}.consumption_period",
            "消費期間",
            "Consumption period",
            format_period(entry.consumption_start, entry.consumption_end, s.tz),
        ),
        Row(f"{p}.units", "償却量", "Units retired", format_units(entry.units)),
        Row(f"{p}.kwh", "電力量", "Energy", format_kwh(entry.wh)),
    ]
    if entry.cfe is not None:
        cfe = entry.cfe
        rows.append(
            Row(
                f"{p}.cfe",
                "時間単位CFEスコア",
                "Hourly CFE score",
                f"{cfe.percent} % "
                f"({format_kwh(cfe.matched_wh)} / {format_kwh(cfe.consumption_wh)})",
            )
        )
    rows += [
        Row(f"{p}.txn_hash", "取引ハッシュ", "Transaction", entry.txn_hash),
        Row(f"{p}.block_number", "ブロック番号", "Block", f"{entry.block_number:,}"),
        Row(f"{p}.block_hash", "ブロックハッシュ", "Block hash", entry.block_hash),
        Row(
            f"{p}.block_time",
            "ブロック時刻",
            "Block time",
            format_local(entry.block_time, s.tz, True),
        ),
    ]
    return Section(
        f"retirement-{entry.id}", f"償却 #{entry.id}", f"Retirement #{entry.id}", tuple(rows)
    )


def _certificate_section(entry: RetirementEntry, c: CertificateUse, tz: str) -> Section:
    p = f"retirements[{entry.id}].certificates[{c.id}]"
    rows = (
        Row(f"{p}.meter", "メーター/機器ID", "Meter / device ID", c.meter),
        Row(f"{p}.owner_name", "発電者", "Owner", c.owner_name),
        Row(f"{p}.method", "発電方式", "Method", format_method(c.method)),
        Row(f"{p}.zone", "エリア", "Zone", c.zone),
        Row(
            f"{p}.capacity",
            "設備容量",
            "Capacity",
            f"{_round(Fraction(c.capacity_w, 1000), '0.001'):,} kW",
        ),
        Row(
            f"{p}.generation_period",
            "発電期間",
            "Generation period",
            format_period(c.period_start, c.period_end, tz),
        ),
        Row(f"{p}.issued_at", "発行", "Issued", format_local(c.issued_at, tz)),
        Row(f"{p}.wh", "証書の電力量", "Certificate energy", f"{c.wh:,} Wh"),
        Row(f"{p}.status", "状態", "Status", "取消 Revoked" if c.revoked else "有効 Valid"),
        Row(
            f"{p}.used",
            "本償却での使用",
            "Used here",
            f"{format_units(c.units_used)} = {format_kwh(c.wh_used)}",
        ),
    )
    return Section(
        f"certificate-{entry.id}-{c.id}", f"証書 #{c.id}", f"Certificate #{c.id}", rows, level=3
    )
