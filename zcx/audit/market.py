"""The market's figures for the audit: traded volume, fills and average price per method, and
the market's custody reconciled against the ledger.

Read from ZcvMarket's own events (Listed, Bought, Cancelled, Deposited, Withdrawn, DepositUsed,
StatementPaid), paged from the deployment block like the core contracts (`events.EventReader`),
then joined with the ledger's certificates for the generation method of every certificate that
changed hands. A fill may carry certificates of several methods; each certificate's share is its
units times the fill's unit price (the contract charges `units * unitPrice`, so the shares add up
to the fill's cost).

Custody (market v2: the market holds listed and deposited units itself): the books per
certificate (open listings' entries plus sellers' deposits, folded from the market's events by
`zcx.market.OrderBook`) must never exceed what the ledger's LotMoved events leave at the market's
address; the difference is surplus (units sent to the market by plain transfer, nobody's).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from zcx.audit.events import Abi, EventReader
from zcx.audit.findings import Finding, violation
from zcx.audit.ledger import METHODS, Ledger, _frame, block_timestamps
from zcx.market import MARKET_EVENTS, OrderBook

log = logging.getLogger(__name__)

MARKET_CONTRACT = "ZcvMarket"
STATEMENT_STATUSES = ("None", "Open", "PaidInToken", "PaidInZcv", "Voided")
UNITS_PER_KWH = 1000


@dataclass
class MarketFigures:
    """What the market did in the audited blocks. Amounts in payment-token base units."""

    address: str
    listings: pd.DataFrame
    fills: pd.DataFrame  # one row per fill
    fill_certificates: pd.DataFrame  # one row per (fill, certificate), with the method
    by_method: pd.DataFrame
    statements_paid: pd.DataFrame
    custody: pd.DataFrame  # per certificate: booked (listings + deposits), held, surplus
    summary: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "market_summary": pd.DataFrame([self.summary]),
            "market_by_method": self.by_method,
            "market_fills": self.fills,
            "market_fill_certificates": self.fill_certificates,
            "market_listings": self.listings,
            "market_statements_paid": self.statements_paid,
            "market_custody": self.custody,
        }


def read_market(
    w3: Any,
    address: str,
    abi: Abi,
    ledger: Ledger,
    page_blocks: int = 5_000,
) -> MarketFigures:
    """Reads the market at `address` over the ledger's blocks and computes its figures."""
    reader = EventReader(w3, {MARKET_CONTRACT: address}, {MARKET_CONTRACT: abi}, page_blocks)
    tables = reader.read(ledger.from_block, ledger.to_block)
    ledger.tx_hashes.update(reader.tx_hashes)
    listings = _frame(
        tables[f"{MARKET_CONTRACT}.Listed"],
        {"listingId": "listing_id", "unitPrice": "unit_price", "feeBps": "fee_bps"},
    )
    fills = _frame(
        tables[f"{MARKET_CONTRACT}.Bought"],
        {"listingId": "listing_id", "unitPrice": "unit_price"},
    )
    paid = _frame(tables[f"{MARKET_CONTRACT}.StatementPaid"], {"statementId": "statement_id"})
    if len(paid):
        paid["status"] = [STATEMENT_STATUSES[int(s)] for s in paid["status"]]
    blocks = {int(b) for f in (listings, fills, paid) for b in f["block"]}
    ledger.block_times.update(block_timestamps(w3, blocks - set(ledger.block_times)))
    methods = _certificate_methods(ledger)
    rows = []
    for fill in fills.to_dict("records"):
        for certificate_id, units in zip(
            fill["certificateIds"], fill["certificateUnits"], strict=True
        ):
            rows.append(
                {
                    "pos": fill["pos"],
                    "listing_id": int(fill["listing_id"]),
                    "buyer": fill["buyer"],
                    "seller": fill["seller"],
                    "certificate_id": int(certificate_id),
                    "method": methods.get(int(certificate_id), "unknown"),
                    "units": int(units),
                    "cost": int(units) * int(fill["unit_price"]),
                }
            )
    by_cert = pd.DataFrame(
        rows,
        columns=[
            "pos", "listing_id", "buyer", "seller", "certificate_id", "method", "units", "cost"
        ],
    )  # fmt: skip
    by_method = _by_method(by_cert)
    fills = fills.drop(columns=["certificateIds", "certificateUnits"], errors="ignore")
    decimals = _decimals(w3, address) if len(fills) else 18
    volume_units = sum(int(u) for u in fills["units"])
    volume_cost = sum(int(c) for c in fills["cost"])
    summary = {
        "market": address,
        "listings": len(listings),
        "fills": len(fills),
        "cancelled": len(tables[f"{MARKET_CONTRACT}.Cancelled"]),
        "volume_units": volume_units,
        "volume_zcv": volume_units / UNITS_PER_KWH,
        "volume_cost": volume_cost,
        "volume_token": volume_cost / 10**decimals,
        "fees": sum(int(f) for f in fills["fee"]),
        "token_decimals": decimals,
        "average_price_per_kwh": (
            volume_cost * UNITS_PER_KWH / volume_units / 10**decimals if volume_units else None
        ),
        "statements_paid": len(paid),
    }
    custody = _custody(tables, ledger, address)
    summary["custody_units"] = sum(int(u) for u in custody["booked"])
    summary["held_units"] = sum(int(u) for u in custody["held"])
    summary["surplus_units"] = sum(int(u) for u in custody["surplus"])
    summary["custody_shortfalls"] = int((custody["surplus"] < 0).sum())
    if len(by_method):
        by_method["average_price_per_kwh"] = [
            c * UNITS_PER_KWH / u / 10**decimals
            for c, u in zip(by_method["cost"], by_method["units"], strict=True)
        ]
    return MarketFigures(address, listings, fills, by_cert, by_method, paid, custody, summary)


def _custody(tables: Mapping[str, Any], ledger: Ledger, market: str) -> pd.DataFrame:
    """Per certificate: what the market's books hold (events folded by OrderBook), what the
    ledger's LotMoved events leave at the market, and the difference (negative: a shortfall,
    which invariant M2 of ZcvMarket.sol forbids)."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    for name in MARKET_EVENTS:
        table = tables.get(f"{MARKET_CONTRACT}.{name}")
        if table is None:
            continue
        columns = table.columns
        keys = [k for k in columns if not k.startswith("_")]
        for i, pos in enumerate(columns["_pos"]):
            events.append((int(pos), name, {k: columns[k][i] for k in keys}))
    events.sort(key=lambda item: item[0])
    book = OrderBook.from_events((name, args) for _, name, args in events)
    booked: dict[int, int] = {}
    for view in book.listings.values():
        if view.status == "Open":
            for certificate_id, units in view.lots:
                booked[certificate_id] = booked.get(certificate_id, 0) + units
    for (_, certificate_id), units in book.deposits.items():
        booked[certificate_id] = booked.get(certificate_id, 0) + units
    held: dict[int, int] = {}
    wanted = market.lower()
    for move in ledger.lot_moves.to_dict("records"):
        sign = (str(move["to"]).lower() == wanted) - (str(move["from"]).lower() == wanted)
        if sign:
            c = int(move["certificate_id"])
            held[c] = held.get(c, 0) + sign * int(move["units"])
    rows = [
        {
            "certificate_id": c,
            "booked": booked.get(c, 0),
            "held": held.get(c, 0),
            "surplus": held.get(c, 0) - booked.get(c, 0),
        }
        for c in sorted(set(booked) | {c for c, u in held.items() if u})
    ]
    frame = pd.DataFrame(rows, columns=["certificate_id", "booked", "held", "surplus"])
    for column in ("booked", "held", "surplus"):
        frame[column] = frame[column].astype(object)
    return frame


def custody_findings(figures: MarketFigures) -> list[Finding]:
    """A violation per certificate whose market books exceed what the ledger leaves at the
    market (invariant M2 of ZcvMarket.sol: listed and deposited units are always there)."""
    return [
        violation(
            "market_custody",
            f"the market's books hold {row['booked']} units of certificate "
            f"{row['certificate_id']} but the ledger leaves it only {row['held']}",
            subject=f"certificate {row['certificate_id']}",
        )
        for row in figures.custody.to_dict("records")
        if int(row["surplus"]) < 0
    ]


def _certificate_methods(ledger: Ledger) -> dict[int, str]:
    """Certificate id -> method: the certificate view's own method when read (with state), else
    its meter's registered method."""
    certs = ledger.certificates
    out: dict[int, str] = {}
    for row in certs.to_dict("records"):
        method = row.get("cert_method")
        if not isinstance(method, str):
            method = row.get("method")
        out[int(row["certificate_id"])] = method if isinstance(method, str) else "unknown"
    return out


def _by_method(by_cert: pd.DataFrame) -> pd.DataFrame:
    columns = ["method", "fills", "units", "cost"]
    if by_cert.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    order = {m: i for i, m in enumerate(METHODS)}
    for method, group in sorted(by_cert.groupby("method"), key=lambda g: order.get(g[0], 99)):
        rows.append(
            {
                "method": method,
                "fills": int(group["pos"].nunique()),
                "units": sum(int(u) for u in group["units"]),
                "cost": sum(int(c) for c in group["cost"]),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    frame["units"] = frame["units"].astype(object)
    frame["cost"] = frame["cost"].astype(object)
    return frame


def _decimals(w3: Any, market: str) -> int:
    """The payment token's decimals (paymentToken() then decimals()); 18 if unreadable."""
    from eth_abi import decode as abi_decode
    from eth_utils import keccak

    def call(to: str, signature: str) -> bytes:
        data = "0x" + keccak(text=signature)[:4].hex()
        response = w3.provider.make_request("eth_call", [{"to": to, "data": data}, "latest"])
        if "error" in response:
            raise ValueError(str(response["error"]))
        return bytes.fromhex(str(response["result"])[2:])

    try:
        (token,) = abi_decode(["address"], call(market, "paymentToken()"))
        (decimals,) = abi_decode(["uint8"], call(token, "decimals()"))
    except (ValueError, OSError) as exc:
        log.warning("could not read the payment token's decimals (%s); assuming 18", exc)
        return 18
    return int(decimals)


def market_abi(abis: Mapping[str, Abi]) -> Abi | None:
    return abis.get(MARKET_CONTRACT)
