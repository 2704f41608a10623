"""The operator's reports for the portal, computed from the index with zcx.operator's own
functions (balance, statements, charts) and cached until the readings or payments change.

Statements price every reading per slot, which takes seconds on a million readings; the cache
key is (readings, payments) row counts, so pages redraw them only after new data arrived.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from zcx.holder import MEMBER_KINDS
from zcx.operator import balance as balance_mod
from zcx.operator.ledger import KIND_NAMES
from zcx.operator.prices import PriceConfig, load_prices, spot_series
from zcx.operator.statements import statements
from zcx.portal.index import PortalIndex

log = logging.getLogger(__name__)

SLOT = 1800
SPOT_SEED = 42


@dataclass
class BalanceChart:
    svg: str
    totals: dict[str, float]


@dataclass
class DrView:
    events: dict[int, Any]
    rewards: pd.DataFrame
    results: dict[int, Any]


class OperatorReports:
    def __init__(self, index: PortalIndex, operator: str, prices_path: Path | None = None) -> None:
        self.index = index
        self.operator = operator
        self.prices: PriceConfig = load_prices(prices_path)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Any]] = {}

    @property
    def jpy_per_zcv(self) -> float:
        return float(self.prices.jpy_per_zcv)

    def _key(self) -> tuple[int, int]:
        return (
            int(self.index.scalar("SELECT COUNT(*) FROM readings") or 0),
            int(self.index.scalar("SELECT COUNT(*) FROM payments") or 0),
        )

    def _cached(self, name: str, build: Any) -> Any:
        with self._lock:
            key = self._key()
            hit = self._cache.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            value = build()
            self._cache[name] = (key, value)
            return value

    # -- statements

    def _members_frame(self) -> pd.DataFrame:
        rows = self.index.query(
            "SELECT m.account, m.name, m.kind, m.active, mt.meter AS meter_id "
            "FROM members m LEFT JOIN meters mt ON mt.owner = m.account"
        )
        return pd.DataFrame(
            [
                (r["account"], r["name"], KIND_NAMES[r["kind"]], bool(r["active"]), r["meter_id"])
                for r in rows
            ],
            columns=["account", "name", "kind", "active", "meter_id"],
        )

    def _readings_frame(self) -> pd.DataFrame:
        with self.index.connect() as db:
            return pd.read_sql_query(
                'SELECT meter AS meter_id, start, "end", generated_wh, consumed_wh, sold_wh, '
                "purchased_wh FROM readings",
                db,
            )

    def _payments_frame(self) -> pd.DataFrame:
        with self.index.connect() as db:
            return pd.read_sql_query(
                'SELECT sender AS "from", recipient AS "to", units, '
                "reference AS payment_reference FROM payments",
                db,
            )

    def all_statements(self) -> pd.DataFrame:
        def build() -> pd.DataFrame:
            readings = self._readings_frame()
            if readings.empty:
                return pd.DataFrame()
            return statements(
                readings,
                self._members_frame(),
                self.prices,
                self._payments_frame(),
                operator=self.operator,
            )

        frame: pd.DataFrame = self._cached("statements", build)
        return frame

    def statements_of(self, account: str) -> list[dict[str, Any]]:
        frame = self.all_statements()
        if frame.empty:
            return []
        mine = frame[frame["account"].str.lower() == account.lower()]
        return [dict(r) for r in mine.sort_values("month", ascending=False).to_dict("records")]

    # -- demand response (zcx.dr: the same baselines the operator settles and the audit checks)

    def dr_view(self, reader_factory: Any, head_time: int) -> DrView | None:
        """Every demand-response event and, for events that have ended, each member's baseline,
        reduction and reward; None when the deployment has no DemandResponse contract."""
        if reader_factory is None:
            return None
        from zcx import dr

        block = self.index.last_block

        def build() -> DrView:
            tables = reader_factory().read(self.index.deployment.deployment_block, block)
            events = dr.events_from_tables(tables)
            rewards = dr.rewards_frame(tables)
            return DrView(events, rewards, {})

        with self._lock:
            hit = self._cache.get("dr")
            if hit is None or hit[0] != (block, 0):
                self._cache["dr"] = ((block, 0), build())
            view: DrView = self._cache["dr"][1]
        for event in view.events.values():
            if (
                event.end <= head_time
                and event.status != "Cancelled"
                and (event.event_id not in view.results)
            ):
                others = [e for e in view.events.values() if e.event_id != event.event_id]
                readings, meters = self._dr_frames()
                view.results[event.event_id] = dr.event_results(readings, meters, event, others)
        return view

    def _dr_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        with self.index.connect() as db:
            readings = pd.read_sql_query(
                "SELECT rowid AS pos, meter AS meter_id, start, purchased_wh AS pq4 FROM readings",
                db,
            )
            meters = pd.read_sql_query("SELECT meter AS meter_id, owner, zone FROM meters", db)
        return readings, meters

    # -- the 30-minute balance

    def balance(self) -> BalanceChart | None:
        def build() -> BalanceChart | None:
            with self.index.connect() as db:
                sums = pd.read_sql_query(
                    'SELECT start, MAX("end") AS "end", SUM(generated_wh) AS generated_wh, '
                    "SUM(consumed_wh) AS consumed_wh, SUM(sold_wh) AS sold_wh, "
                    "SUM(purchased_wh) AS purchased_wh FROM readings GROUP BY start",
                    db,
                )
            if sums.empty:
                return None
            start = int(sums["start"].min()) // SLOT * SLOT
            slots = (int(sums["end"].max()) - start + SLOT - 1) // SLOT
            spot = spot_series(self.prices, start, slots, SPOT_SEED)
            frame = balance_mod.balance(sums, spot, self.prices, start, slots)
            return BalanceChart(_svg(frame), balance_mod.summary(frame))

        chart: BalanceChart | None = self._cached("balance", build)
        return chart


def _svg(frame: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zcx.operator import charts

    fig = charts.balance_chart(frame)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    # Drop the XML prolog and fixed size so the SVG scales to its box (responsive).
    start = text.index("<svg")
    return text[start:]


__all__ = ["BalanceChart", "DrView", "OperatorReports", "MEMBER_KINDS"]
