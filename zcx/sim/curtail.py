"""Members answering a demand-response request: their load drops in the event's slots.

A responding member cuts its consumption PQ2 by `fraction` in each event slot. The energy it no
longer consumes first lowers what it buys (PQ4); any rest is surplus PV that it now sells (PQ3),
so every reading still balances: PQ1 + PQ4 + discharge = PQ2 + PQ3 + charge. The battery's flows
are left as simulated (a simple, conservative answer: the battery does not also discharge harder).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def curtail(
    readings: pd.DataFrame, meter_labels: Iterable[str], slot_starts: Iterable[int], fraction: float
) -> pd.DataFrame:
    """A copy of `readings` (simulator columns) where `meter_labels` consume `fraction` less in
    the slots starting at `slot_starts`, rounded to whole Wh."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: {fraction} is not between 0 and 1")
    out = readings.copy()
    hit = out["meter_id"].isin(set(meter_labels)) & out["start"].isin(set(slot_starts))
    consumed = out.loc[hit, "consumed_wh"].to_numpy(dtype=np.int64)
    purchased = out.loc[hit, "purchased_wh"].to_numpy(dtype=np.int64)
    cut = np.rint(consumed * fraction).astype(np.int64)
    bought_less = np.minimum(cut, purchased)
    out.loc[hit, "consumed_wh"] = consumed - cut
    out.loc[hit, "purchased_wh"] = purchased - bought_less
    out.loc[hit, "sold_wh"] = out.loc[hit, "sold_wh"].to_numpy(dtype=np.int64) + cut - bought_less
    return out
