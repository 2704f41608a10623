"""What the audit produces: the members' ledger (the patent's Fig. 6), certificate trails,
CSV/Parquet exports and the HTML report (through the shared `zcx.report` writer)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from zcx.audit.checks import member_coin_counters
from zcx.audit.dr import DrFigures
from zcx.audit.findings import VIOLATION, Finding, findings_frame
from zcx.audit.ledger import PQ, ZERO_ADDRESS, Ledger
from zcx.audit.market import MarketFigures
from zcx.report import Report, new_figure

log = logging.getLogger(__name__)


def members_ledger(ledger: Ledger) -> pd.DataFrame:
    """Fig. 6: one row per member: PQ1..PQ4 totals (Wh) and coins purchased (issued), used (paid),
    amortized (retired) and balance (units; 1000 units = 1 ZCV)."""
    members = ledger.members[["account", "name", "kind"]].copy()
    r = ledger.readings
    owners = r["meter_id"].astype(str).map(ledger.meters.set_index("meter_id")["owner"])
    totals = r[PQ].groupby(owners.to_numpy()).sum() if len(r) else pd.DataFrame(columns=PQ)
    coins = member_coin_counters(ledger)
    accounts = list(members["account"]) + sorted(set(coins) - set(members["account"]))
    rows = []
    names = members.set_index("account")
    for account in accounts:
        pq = totals.loc[account] if account in totals.index else pd.Series(0, index=PQ)
        purchased, used, amortized, balance = coins.get(account, (0, 0, 0, 0))
        rows.append(
            {
                "account": account,
                "name": names.loc[account, "name"] if account in names.index else "(not a member)",
                "kind": names.loc[account, "kind"] if account in names.index else "",
                "pq1_generated_wh": int(pq["pq1"]),
                "pq2_consumed_wh": int(pq["pq2"]),
                "pq3_sold_wh": int(pq["pq3"]),
                "pq4_purchased_wh": int(pq["pq4"]),
                "coins_purchased": purchased,
                "coins_used": used,
                "coins_amortized": amortized,
                "coins_balance": balance,
            }
        )
    return pd.DataFrame(rows)


def certificate_trail(ledger: Ledger, retirement_id: int) -> dict[str, pd.DataFrame]:
    """For one retirement: the certificates it consumed (meter, owner, method, period, units
    taken) and every hop those certificates' units took up to the retirement (issue, LotMoved),
    replayed from the events. Units of one certificate are fungible inside a lot, so the trail
    lists every movement of each consumed certificate, not of individual units."""
    ret = ledger.retirements[ledger.retirements["retirement_id"] == retirement_id]
    if ret.empty:
        raise KeyError(
            f"no retirement {retirement_id} on chain (there are {len(ledger.retirements)})"
        )
    r = ret.iloc[0]
    certs = ledger.certificates.set_index("certificate_id")
    consumed = []
    for cid, units in zip(r["certificate_ids"], r["certificate_units"], strict=True):
        c = certs.loc[int(cid)]
        consumed.append(
            {
                "retirement_id": retirement_id,
                "certificate_id": int(cid),
                "units_retired": int(units),
                "meter": c["meter"],
                "owner": c["to"],
                "owner_name": c.get("owner_name", ""),
                "method": c.get("method", ""),
                "zone": c.get("zone", ""),
                "wh": int(c["wh"]),
                "period_start": _iso(c["period_start"]),
                "period_end": _iso(c["period_end"]),
                "evidence": c["evidence"],
                "beneficiary": r["beneficiary"],
            }
        )
    hops = []
    for cid in {int(c) for c in r["certificate_ids"]}:
        c = certs.loc[cid]
        hops.append(
            {
                "certificate_id": cid,
                "block": int(c["block"]),
                "pos": int(c["pos"]),
                "from": ZERO_ADDRESS,
                "to": c["to"],
                "units": int(c["units"]),
                "hop": "issued",
            }
        )
        moves = ledger.lot_moves[
            (ledger.lot_moves["certificate_id"] == cid) & (ledger.lot_moves["pos"] <= int(r["pos"]))
        ]
        for m in moves.itertuples(index=False):
            frm = m[ledger.lot_moves.columns.get_loc("from")]
            kind = "retired" if m.to == ZERO_ADDRESS else "moved"
            hops.append(
                {
                    "certificate_id": cid,
                    "block": int(m.block),
                    "pos": int(m.pos),
                    "from": frm,
                    "to": m.to,
                    "units": int(m.units),
                    "hop": kind,
                }
            )
    hop_frame = pd.DataFrame(hops).sort_values(["certificate_id", "pos"], ignore_index=True)
    return {"consumed": pd.DataFrame(consumed), "hops": hop_frame}


def _iso(ts: Any) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")


def export(
    frames: dict[str, pd.DataFrame],
    directory: Path,
    formats: tuple[str, ...] = ("csv", "parquet"),
) -> list[Path]:
    """Writes each frame as <name>.csv and/or <name>.parquet. Columns holding lists or integers
    beyond int64 (token units) are written as text in Parquet."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    if "parquet" in formats and not parquet_available():
        log.warning("Parquet export skipped: %s", PARQUET_PROBLEM[0])
        formats = tuple(f for f in formats if f != "parquet")
    for name, frame in frames.items():
        if "csv" in formats:
            path = directory / f"{name}.csv"
            frame.to_csv(path, index=False)
            paths.append(path)
        if "parquet" in formats:
            path = directory / f"{name}.parquet"
            _parquet_safe(frame).to_parquet(path, index=False)
            paths.append(path)
    return paths


PARQUET_PROBLEM: list[str] = []


def parquet_available() -> bool:
    """Whether pandas can write Parquet here (pyarrow imports). pyarrow 26 needs NumPy 2, which
    eth-ape 0.8 excludes; pyarrow 21 works with NumPy 1.26."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        if not PARQUET_PROBLEM:
            PARQUET_PROBLEM.append(f"pyarrow cannot be imported ({exc}); install pyarrow==21.0.0")
        return False
    return True


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            sample = out[col].dropna()
            if len(sample) and not all(isinstance(v, str) for v in sample.head(1000)):
                out[col] = out[col].map(lambda v: v if v is None else str(v))
        elif isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    return out


def html_report(
    ledger: Ledger,
    findings: list[Finding],
    directory: Path,
    trails: dict[int, dict[str, pd.DataFrame]] | None = None,
    market: MarketFigures | None = None,
    demand_response: DrFigures | None = None,
) -> Path:
    """The audit report: verdict, findings, Fig. 6 ledger, market and demand-response figures,
    charts, trails."""
    report = Report(
        f"ZCX audit: chain {ledger.chain_id}, blocks {ledger.from_block}..{ledger.to_block}",
        directory,
    )
    violations = [f for f in findings if f.severity == VIOLATION]
    verdict = (
        f"{len(violations)} violations and {len(findings) - len(violations)} warnings in "
        f"{len(ledger.readings)} readings, {len(ledger.batches)} batches, "
        f"{len(ledger.certificates)} certificates, {len(ledger.retirements)} retirements."
    )
    report.add_text(verdict, "Verdict: " + ("FAIL" if violations else "PASS"))
    frame = findings_frame(findings)
    if len(frame):
        summary = frame.groupby(["check", "severity"]).size().reset_index(name="count")
        report.add_table("findings_summary", summary, "Findings per check")
        report.add_table("findings", frame, "Findings")
    report.add_table("members_ledger", members_ledger(ledger), "Members' ledger (patent Fig. 6)")
    if market is not None:
        m = market.summary
        report.add_text(
            f"ZcvMarket {m['market']}: {m['listings']} listings, {m['fills']} fills, "
            f"{m['cancelled']} cancelled; traded {m['volume_zcv']:,.3f} ZCV for "
            f"{m['volume_token']:,.6g} payment token (fees {m['fees']} base units); "
            f"{m['statements_paid']} statements paid on chain.",
            "Market",
        )
        report.add_table(
            "market_by_method",
            market.by_method,
            "Market volume and average price per kWh by generation method",
        )
        report.add_table("market_fills", market.fills, "Market fills (Bought events)")
    if demand_response is not None:
        report.add_table("dr_events", demand_response.events, "Demand-response events")
        report.add_table(
            "dr_rewards",
            demand_response.rewards,
            "Demand-response rewards: paid vs recomputed (ERAB High 4 of 5)",
        )

    r = ledger.readings
    if len(r):
        day = (
            pd.to_datetime(r["start"], unit="s", utc=True).dt.tz_convert("Asia/Tokyo").dt.floor("D")
        )
        daily = r[PQ].groupby(day.to_numpy()).sum() / 1000
        fig, ax = new_figure()
        for col, label in zip(
            PQ, ["PQ1 generated", "PQ2 consumed", "PQ3 sold", "PQ4 purchased"], strict=True
        ):
            ax.plot(daily.index, daily[col], label=label)
        ax.set_ylabel("kWh per day (JST)")
        ax.legend()
        report.add_figure("daily_energy", fig, "Recorded energy per day")
    issued = ledger.certificates
    if len(issued):
        fig, ax = new_figure()
        ax.step(
            issued["block"],
            issued["units"].astype(float).cumsum() / 1000,
            where="post",
            label="issued",
        )
        ret = ledger.retirements
        if len(ret):
            ax.step(
                ret["block"],
                ret["units"].astype(float).cumsum() / 1000,
                where="post",
                label="retired",
            )
        ax.set_xlabel("block")
        ax.set_ylabel("ZCV")
        ax.legend()
        report.add_figure("issuance", fig, "Coins issued and retired (cumulative)")
    if len(frame):
        counts = frame.groupby("check").size().sort_values()
        fig, ax = new_figure(10, max(2.0, 0.4 * len(counts)))
        ax.barh(counts.index, counts.to_numpy())
        ax.set_xlabel("findings")
        report.add_figure("findings_chart", fig, "Findings per check")
    report.add_table("batches", ledger.batches.drop(columns=["signatures"]), "Signed batches")
    report.add_table("certificates", issued, "Certificates")
    if len(ledger.rejected):
        report.add_table(
            "rejected", ledger.rejected, "Readings the chain rejected, with its reason"
        )
    for rid, trail in (trails or {}).items():
        report.add_table(
            f"trail_{rid}_consumed", trail["consumed"], f"Retirement {rid}: certificates consumed"
        )
        report.add_table(
            f"trail_{rid}_hops", trail["hops"], f"Retirement {rid}: every hop of those units"
        )
    return report.write()
