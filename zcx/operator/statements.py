"""Monthly statements per member, from the PQ3 and PQ4 recorded on chain.

For each member and calendar month (Asia/Tokyo): the operator pays PQ3 at the member kind's buy
price and charges PQ4 at its time-of-use sell price (per slot). Coins paid with `pay` and the
statement's payment reference are credited at the configured coin price.

A statement's id is `<YYYY-MM>-<account's first 10 hex chars>`; its payment reference (the
bytes32 passed to ZeroCarbonValue.pay) is `zcx.domain.payment_reference(id)`, keccak256 of that id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zcx.domain import payment_reference
from zcx.operator.prices import TIMEZONE, PriceConfig

WH_PER_KWH = 1000
UNITS_PER_ZCV = 1000


def statement_id(month: str, account: str) -> str:
    return f"{month}-{account[:10].lower()}"


def statements(
    readings: pd.DataFrame,
    members: pd.DataFrame,
    prices: PriceConfig,
    payments: pd.DataFrame | None = None,
    operator: str | None = None,
) -> pd.DataFrame:
    """One row per (member, month): kWh figures, JPY amounts, coins credited and the balance due.

    `readings` as from zcx.operator.ledger.readings; `members` as from ledger.members (one row per
    meter); `payments` as from ledger.payments (optional)."""
    meters = members.dropna(subset=["meter_id"])[["meter_id", "account", "name", "kind"]]
    frame = readings.merge(meters, on="meter_id", how="left", validate="many_to_one")
    unknown = frame["account"].isna()
    if unknown.any():
        meters = sorted(frame.loc[unknown, "meter_id"].unique())
        raise ValueError(f"readings for unregistered meters: {meters[:5]}")
    local = pd.to_datetime(frame["start"], unit="s", utc=True).dt.tz_convert(TIMEZONE)
    frame["month"] = local.dt.strftime("%Y-%m")
    hours = local.dt.hour.to_numpy()
    kinds = frame["kind"].to_numpy()
    frame["buy_jpy"] = (
        frame["sold_wh"] / WH_PER_KWH * np.array([prices.buy_price(k) for k in kinds])
    )
    frame["sell_jpy"] = (
        frame["purchased_wh"]
        / WH_PER_KWH
        * np.array([prices.sell_price(k, int(h)) for k, h in zip(kinds, hours, strict=True)])
    )
    grouped = frame.groupby(["account", "name", "kind", "month"], as_index=False).agg(
        meters=("meter_id", "nunique"),
        generated_wh=("generated_wh", "sum"),
        consumed_wh=("consumed_wh", "sum"),
        sold_wh=("sold_wh", "sum"),
        purchased_wh=("purchased_wh", "sum"),
        paid_to_member_jpy=("buy_jpy", "sum"),
        charged_to_member_jpy=("sell_jpy", "sum"),
    )
    grouped["statement_id"] = [
        statement_id(m, a) for m, a in zip(grouped["month"], grouped["account"], strict=True)
    ]
    grouped["payment_reference"] = [
        "0x" + payment_reference(s).hex() for s in grouped["statement_id"]
    ]
    grouped["coins_paid_units"] = 0
    if payments is not None and len(payments):
        if operator is None:
            raise ValueError(
                "operator: needed to credit coin payments (only a member's own "
                "payments to the operator count against its statement)"
            )
        # A Paid event counts only if this member paid the operator with the statement's
        # reference: anyone can emit a Paid with any reference.
        paid = payments[payments["to"].str.lower() == operator.lower()]
        by_key = paid.groupby([paid["from"].str.lower(), "payment_reference"])["units"].sum()
        grouped["coins_paid_units"] = [
            int(by_key.get((account.lower(), reference), 0))
            for account, reference in zip(
                grouped["account"], grouped["payment_reference"], strict=True
            )
        ]
    grouped["coins_credit_jpy"] = grouped["coins_paid_units"] / UNITS_PER_ZCV * prices.jpy_per_zcv
    grouped["due_jpy"] = (
        grouped["charged_to_member_jpy"]
        - grouped["paid_to_member_jpy"]
        - grouped["coins_credit_jpy"]
    )
    for column in ("paid_to_member_jpy", "charged_to_member_jpy", "coins_credit_jpy", "due_jpy"):
        grouped[column] = grouped[column].round(0)
    return grouped.sort_values(["month", "kind", "name"], ignore_index=True)
