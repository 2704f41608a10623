"""Demand response for the audit: every settled event's baselines and rewards recomputed from events
alone, and compared with what the operator paid.

For each settled event the readings are those recorded before the settlement (what the operator
could see when it paid), the meters and zones come from the ledger, and the rule is `zcx.dr`'s
(ERAB High 4 of 5, docs/demand-response.md). A paid member whose reduction or amount differs from
the recomputed one is a violation (`dr_reward_mismatch`); a member the recomputation credits but
the settlement left out is a warning (`dr_member_unpaid`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from zcx.audit.events import Abi, EventReader
from zcx.audit.findings import Finding, violation, warning
from zcx.audit.ledger import POS_SHIFT, Ledger
from zcx.dr import DR_CONTRACT, event_results, events_from_tables, reward_for, rewards_frame

log = logging.getLogger(__name__)


@dataclass
class DrFigures:
    """Every settled event's paid and recomputed figures, one row per (event, member)."""

    address: str
    events: pd.DataFrame
    rewards: pd.DataFrame
    findings: list[Finding] = field(default_factory=list)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"dr_events": self.events, "dr_rewards": self.rewards}


def read_demand_response(
    w3: Any, address: str, abi: Abi, ledger: Ledger, page_blocks: int = 5_000
) -> DrFigures:
    """Reads DemandResponse at `address` over the ledger's blocks and re-checks its settlements."""
    reader = EventReader(w3, {DR_CONTRACT: address}, {DR_CONTRACT: abi}, page_blocks)
    tables = reader.read(ledger.from_block, ledger.to_block)
    ledger.tx_hashes.update(reader.tx_hashes)
    events = events_from_tables(tables)
    paid = rewards_frame(tables)
    settled_pos = dict(
        zip(
            (int(x) for x in tables[f"{DR_CONTRACT}.DemandResponseSettled"].columns["eventId"]),
            tables[f"{DR_CONTRACT}.DemandResponseSettled"].columns["_pos"],
            strict=True,
        )
    )
    readings = ledger.readings[["pos", "meter_id", "start", "pq4"]]
    meters = ledger.meters[["meter_id", "owner", "zone"]]
    rows: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for event_id, pos in sorted(settled_pos.items()):
        event = events[event_id]
        seen = readings[readings["pos"] < pos]
        results = event_results(seen, meters, event, events.values())
        recomputed = {m.member: m for m in results.members}
        block = int(pos) >> POS_SHIFT
        for r in paid[paid["event_id"] == event_id].itertuples(index=False):
            expected = recomputed.get(r.member)
            want_wh = expected.reduced_wh if expected else 0
            want_amount = reward_for(want_wh, event.reward_per_kwh)
            ok = r.reduced_wh == want_wh and r.amount == want_amount
            rows.append(
                {
                    "event_id": event_id,
                    "member": r.member,
                    "paid_reduced_wh": r.reduced_wh,
                    "paid_amount": r.amount,
                    "recomputed_reduced_wh": want_wh,
                    "recomputed_amount": want_amount,
                    "status": expected.status if expected else "not eligible",
                    "ok": ok,
                }
            )
            if not ok:
                findings.append(
                    violation(
                        "dr_reward_mismatch",
                        f"event {event_id} paid {r.member} {r.amount} for {r.reduced_wh} Wh; "
                        f"the High 4 of 5 baseline gives {want_wh} Wh, {want_amount}",
                        subject=f"event {event_id}",
                        block=block,
                    )
                )
        paid_members = set(paid[paid["event_id"] == event_id]["member"])
        for member, m in recomputed.items():
            if m.reduced_wh > 0 and member not in paid_members:
                findings.append(
                    warning(
                        "dr_member_unpaid",
                        f"event {event_id} left out {member}, whose reduction is {m.reduced_wh} Wh",
                        subject=f"event {event_id}",
                        block=block,
                    )
                )
    event_rows = [
        {
            "event_id": e.event_id,
            "zone": e.zone,
            "start": e.start,
            "end": e.end,
            "slots": e.slots,
            "target_wh": e.target_wh,
            "reward_per_kwh": e.reward_per_kwh,
            "participants": len(e.participants) or "zone",
            "status": e.status,
        }
        for e in events.values()
    ]
    rewards = pd.DataFrame(
        rows,
        columns=[
            "event_id", "member", "paid_reduced_wh", "paid_amount", "recomputed_reduced_wh",
            "recomputed_amount", "status", "ok",
        ],
    )  # fmt: skip
    return DrFigures(address, pd.DataFrame(event_rows), rewards, findings)
