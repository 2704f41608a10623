"""What the audit produces: the members' ledger (the patent's Fig. 6), certificate trails,
CSV/Parquet exports and the HTML report (through the shared `zcx.report` writer)."""

from __future__ import annotations

import logging
from datetime import tzinfo
from pathlib import Path
from typing import Any

import pandas as pd

from zcx import domain
from zcx.audit.checks import member_coin_counters
from zcx.audit.dr import DrFigures
from zcx.audit.findings import VIOLATION, Finding, findings_frame
from zcx.audit.ledger import PQ, ZERO_ADDRESS, Ledger
from zcx.audit.market import MarketFigures
from zcx.report import TIME_COLUMNS, Report, is_int_column, local_time, new_figure

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
    return local_time(ts, domain.display_zone())


def with_hashes_and_times(frame: pd.DataFrame, ledger: Ledger, zone: tzinfo) -> pd.DataFrame:
    """The frame as exported: the real transaction hash next to the internal `tx` key, the
    block's time (`time`), and an ISO 8601 twin (`<column>_iso`) of every other unix-seconds
    column, all in `zone`.
    Unique values are formatted once, so a million readings cost a few hundred conversions."""
    out = frame.copy()
    if "tx" in out.columns and ledger.tx_hashes:
        out.insert(out.columns.get_loc("tx") + 1, "tx_hash", out["tx"].map(ledger.tx_hashes))
    if "timestamp" in out.columns:  # the block's time, already read with the events
        out.insert(
            out.columns.get_loc("timestamp") + 1, "time", _iso_column(out["timestamp"], zone)
        )
    elif "block" in out.columns and ledger.block_times:
        times = out["block"].map(ledger.block_times)
        out.insert(out.columns.get_loc("block") + 1, "time", _iso_column(times, zone))
    for column in [c for c in out.columns if c in TIME_COLUMNS and c != "timestamp"]:
        if is_int_column(out[column]):  # not a column already written as text
            iso = _iso_column(out[column], zone)
            out.insert(out.columns.get_loc(column) + 1, f"{column}_iso", iso)
    return out


def _iso_column(series: pd.Series, zone: tzinfo) -> pd.Series:
    mapping = {v: local_time(v, zone) for v in pd.unique(series.dropna())}
    return series.map(mapping).fillna("")


def export(
    frames: dict[str, pd.DataFrame],
    directory: Path,
    formats: tuple[str, ...] = ("csv", "parquet"),
    ledger: Ledger | None = None,
    zone: tzinfo | None = None,
) -> list[Path]:
    """Writes each frame as <name>.csv and/or <name>.parquet; with the `ledger`, each row that
    came from a transaction carries its hash and time (`with_hashes_and_times`). Columns holding
    lists or integers beyond int64 (token units) are written as text in Parquet."""
    directory.mkdir(parents=True, exist_ok=True)
    if ledger is not None:
        zone = zone or domain.display_zone()
        frames = {n: with_hashes_and_times(f, ledger, zone) for n, f in frames.items()}
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


# What each check proves, in plain words, in the order the report lists them.
CHECK_SENTENCES: dict[str, str] = {
    "no_double_count": "No meter interval is counted twice (invariant 1)",
    "interval_length": "Every reading is one interval long",
    "capacity_plausibility": "No reading exceeds its meter's capacity x time x margin",
    "issued_within_verified": "Coins issued per meter are within verified generation x rate "
    "(invariant 2)",
    "certificate_evidence": "Each certificate's evidence digest matches its signed readings",
    "balances_sum_to_supply": "Balances add up to the total supply (invariant 3)",
    "supply_plus_retired_equals_issued": "Supply + retired = issued (invariant 3)",
    "certificate_units_conserved": "Each certificate's units are conserved (invariant 4)",
    "revoked_not_moved": "No revoked certificate's units moved or were retired (invariant 7)",
    "state_matches_events": "The contracts' state matches what their events say",
    "batch_signatures": "Every batch carries a quorum of valid oracle signatures (invariant 5)",
    "trusted_signers": "Every signer was in the signer set in force",
    "signer_set_changed": "Signer-set changes (for review)",
    "solar_at_night": "No solar generation at night (plausibility)",
    "zone_peer_outlier": "No meter far above its zone's peers (plausibility)",
}
MARKET_CHECKS = {"market_custody": "The market holds exactly what its books account for"}
DR_CHECKS = {
    "dr_reward_mismatch": "Demand-response rewards paid = High 4 of 5 recomputed",
    "dr_member_unpaid": "Every member owed a demand-response reward was paid",
}


def check_list(
    findings: list[Finding], market: bool = False, demand_response: bool = False
) -> dict[str, str]:
    """Each check in plain words with PASS, WARN (warnings only) or FAIL (a violation)."""
    names = dict(CHECK_SENTENCES)
    if market:
        names.update(MARKET_CHECKS)
    if demand_response:
        names.update(DR_CHECKS)
    for f in findings:  # cross-checks and any check added later still show
        names.setdefault(f.check, f.check.replace("_", " "))
    severities: dict[str, set[str]] = {}
    for f in findings:
        severities.setdefault(f.check, set()).add(f.severity)
    out = {}
    for check, sentence in names.items():
        found = severities.get(check, set())
        out[sentence] = "FAIL" if VIOLATION in found else ("WARN" if found else "PASS")
    return out


def daily_energy_figure(ledger: Ledger, zone: tzinfo) -> Any:
    """PQ1..PQ4 per local day as grouped bars: readable with one day of data as with many."""
    r = ledger.readings
    day = pd.to_datetime(r["start"], unit="s", utc=True).dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
    daily = r[PQ].groupby(day.to_numpy()).sum() / 1000
    fig, ax = new_figure()
    width = 0.2
    positions = range(len(daily))
    labels = ["PQ1 generated", "PQ2 consumed", "PQ3 sold", "PQ4 purchased"]
    for i, (col, label) in enumerate(zip(PQ, labels, strict=True)):
        ax.bar([p + (i - 1.5) * width for p in positions], daily[col], width, label=label)
    ax.set_xticks(list(positions), list(daily.index), rotation=30 if len(daily) > 8 else 0)
    ax.set_ylabel(f"kWh per day ({zone})")
    ax.legend()
    return fig


def issuance_figure(ledger: Ledger) -> Any:
    """Cumulative ZCV issued and retired by block, both drawn to the audit's last block so a
    single retirement shows as a line, not an invisible point. Blocks, not clock time: a devnet
    mines a week of simulated generation within a minute."""
    fig, ax = new_figure()
    for frame, label in ((ledger.certificates, "issued"), (ledger.retirements, "retired")):
        if frame.empty:
            continue
        # From nothing at the audit's first block to the total at its last.
        blocks = [ledger.from_block, *(int(b) for b in frame["block"]), ledger.to_block]
        totals = [0.0, *(frame["units"].astype(float).cumsum() / 1000)]
        totals.append(totals[-1])
        ax.step(blocks, totals, where="post", label=f"{label}: {totals[-1]:,.3f} ZCV", marker="o")
    ax.set_xlabel("block")
    ax.set_ylabel("ZCV (cumulative)")
    ax.set_ylim(bottom=0)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig


def html_report(
    ledger: Ledger,
    findings: list[Finding],
    directory: Path,
    trails: dict[int, dict[str, pd.DataFrame]] | None = None,
    market: MarketFigures | None = None,
    demand_response: DrFigures | None = None,
    exports: list[Path] | None = None,
) -> Path:
    """The audit report: verdict, findings, Fig. 6 ledger, market and demand-response figures,
    charts, trails; `exports` (the full exports beside it) are linked at the end."""
    zone = domain.display_zone()
    report = Report(
        f"ZCX audit: chain {ledger.chain_id}, blocks {ledger.from_block:,} to {ledger.to_block:,}",
        directory,
        zone=zone,
    )
    violations = [f for f in findings if f.severity == VIOLATION]
    verdict = (
        f"{len(violations):,} violations and {len(findings) - len(violations):,} warnings in "
        f"{len(ledger.readings):,} readings, {len(ledger.batches):,} batches, "
        f"{len(ledger.certificates):,} certificates, {len(ledger.retirements):,} retirements. "
        "Every figure below is rebuilt from the chain's events; the full exports (CSV, Parquet) "
        "are in ../data/."
    )
    report.add_text(verdict, "Verdict: " + ("FAIL" if violations else "PASS"))
    report.add_checks(
        check_list(findings, market is not None, demand_response is not None), "Checks"
    )
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
            f"{m['volume_token']:,.6g} payment token (fees {m['fees']:,} base units); "
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

    if len(ledger.readings):
        report.add_figure(
            "daily_energy", daily_energy_figure(ledger, zone), "Recorded energy per day"
        )
    issued = ledger.certificates
    if len(issued):
        report.add_figure(
            "issuance", issuance_figure(ledger), "Coins issued and retired (cumulative)"
        )
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
            "rejected",
            ledger.rejected.drop(columns=["reason"], errors="ignore"),  # raw bytes: in the CSV
            "Readings the chain rejected, with its reason",
        )
    for rid, trail in (trails or {}).items():
        report.add_table(
            f"trail_{rid}_consumed", trail["consumed"], f"Retirement {rid}: certificates consumed"
        )
        report.add_table(
            f"trail_{rid}_hops", trail["hops"], f"Retirement {rid}: every hop of those units"
        )
    if exports:
        report.add_links(
            "Full exports",
            {p.name: _relative(p, directory) for p in exports},
            "Every frame, each row with its transaction hash and ISO times (docs/audit.md).",
        )
    return report.write()


def _relative(path: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(path, start)).as_posix()
