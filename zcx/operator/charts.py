"""The operator's charts (matplotlib, via zcx.report.new_figure): generation against consumption,
coins issued per member kind, the 30-minute balance, and the certificate trail of a retirement."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd

from zcx.operator.ledger import KIND_NAMES, ZERO_ADDRESS, Retirement
from zcx.report import new_figure

TIMEZONE = "Asia/Tokyo"
KIND_COLORS = {
    "household": "#f2b134",
    "public_facility": "#5ab4ac",
    "business": "#8c6bb1",
    "generator": "#d95f02",
    "operator": "#999999",
}


def _local(unix: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(unix), unit="s", utc=True)).tz_convert(
        TIMEZONE
    )


def _time_axis(ax: Any) -> None:
    # Concise labels: hours within a day, the date where it changes; a fixed "%m-%d" label
    # repeated itself on every tick of a day ("12-01 12-01") and left a one-day window bare.
    locator = mdates.AutoDateLocator(tz=TIMEZONE)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=TIMEZONE))
    ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18], tz=TIMEZONE))
    ax.set_xlabel("local time (JST)")


def generation_vs_consumption(readings: pd.DataFrame, meter_kinds: pd.Series) -> Any:
    """Stacked generation (PQ1) by member kind and total consumption (PQ2), in average kW."""
    frame = readings.assign(kind=readings["meter_id"].map(meter_kinds))
    gen = frame.pivot_table(
        index="start", columns="kind", values="generated_wh", aggfunc="sum", fill_value=0
    )
    cons = frame.groupby("start")["consumed_wh"].sum()
    fig, ax = new_figure(11, 4.5)
    times = _local(gen.index.to_numpy())
    kinds = [k for k in KIND_NAMES if k in gen.columns and gen[k].sum() > 0]
    ax.stackplot(
        times,
        *[gen[k].to_numpy() * 2 / 1000 for k in kinds],
        labels=[f"generation: {k.replace('_', ' ')}" for k in kinds],
        colors=[KIND_COLORS[k] for k in kinds],
        alpha=0.85,
    )
    ax.plot(
        _local(cons.index.to_numpy()),
        cons.to_numpy() * 2 / 1000,
        color="black",
        lw=1.4,
        label="consumption (all members)",
    )
    ax.set_ylabel("average power per 30 min (kW)")
    ax.set_title("Community generation (PQ1) against consumption (PQ2), from the chain")
    _time_axis(ax)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    return fig


def coins_by_kind(certificates: pd.DataFrame, owner_kinds: pd.Series) -> Any:
    """ZCV issued per member kind (bars) with the number of certificates on each bar."""
    frame = certificates.assign(kind=certificates["to"].map(owner_kinds).fillna("unknown"))
    grouped = frame.groupby("kind").agg(
        units=("units", "sum"), certificates=("certificate_id", "count")
    )
    grouped = grouped.reindex([k for k in KIND_NAMES if k in grouped.index])
    fig, ax = new_figure(8, 4)
    zcv = grouped["units"].to_numpy() / 1000
    bars = ax.bar(
        [k.replace("_", " ") for k in grouped.index],
        zcv,
        color=[KIND_COLORS[k] for k in grouped.index],
    )
    for bar, count, value in zip(bars, grouped["certificates"], zcv, strict=True):
        ax.annotate(
            f"{value:,.0f} ZCV\n{count} certificates",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_ylim(
        bottom=max(zcv.min() / 3, 1e-3) if len(zcv) else 1, top=zcv.max() * 4 if len(zcv) else 10
    )
    ax.set_ylabel("ZCV issued (1 ZCV = 1 kWh, log scale)")
    ax.set_title("Coins issued per member kind")
    return fig


def balance_chart(frame: pd.DataFrame) -> Any:
    """Supply, demand, wholesale position and imbalance per slot; spot price below."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    times = _local(frame["slot_start"].to_numpy())
    mwh = 1e6
    width = 0.5 / 24 * 0.9
    top.bar(
        times,
        frame["wholesale_purchase_wh"] / mwh,
        width=width,
        color="#c44e52",
        alpha=0.6,
        label="wholesale purchase (day-ahead)",
    )
    top.bar(
        times,
        -frame["wholesale_sale_wh"] / mwh,
        width=width,
        color="#55a868",
        alpha=0.6,
        label="wholesale sale (day-ahead)",
    )
    top.plot(
        times, frame["supply_wh"] / mwh, color="#dd8452", lw=1.2, label="community supply (PQ3)"
    )
    top.plot(
        times, frame["demand_wh"] / mwh, color="#4c72b0", lw=1.2, label="community demand (PQ4)"
    )
    top.plot(times, frame["imbalance_wh"] / mwh, color="black", lw=0.9, ls="--", label="imbalance")
    top.axhline(0, color="grey", lw=0.6)
    top.set_ylabel("MWh per 30 min")
    top.set_title("The operator's 30-minute balance (doji-doryo: supply meets demand every slot)")
    top.legend(loc="upper left", fontsize=8, ncol=3)
    top.grid(True, alpha=0.3)
    bottom.plot(times, frame["spot_jpy_per_kwh"], color="#8172b3", lw=1.0)
    bottom.set_ylabel("spot JPY/kWh")
    bottom.grid(True, alpha=0.3)
    _time_axis(bottom)
    return fig


def trail_table(
    retirement: Retirement,
    certificates: pd.DataFrame,
    moves: pd.DataFrame,
    names: dict[str, str],
    meter_names: dict[str, str],
) -> pd.DataFrame:
    """One row per certificate consumed by the retirement: meter, generator, period, and the
    hops its units took: the issuance (CertificateIssued), then every LotMoved of it."""
    rows = []
    certs = certificates.set_index("certificate_id")
    for cert_id, units in zip(
        retirement.certificate_ids, retirement.certificate_units, strict=True
    ):
        cert = certs.loc[cert_id]
        hops = moves[moves["certificate_id"] == cert_id].sort_values(["block", "log_index"])
        issued_to = names.get(cert["to"], str(cert["to"])[:10])
        path = [f"mint -> {issued_to} ({cert['units'] / 1000:,.3f} ZCV)"]  # CertificateIssued
        for sender, receiver, moved in zip(hops["from"], hops["to"], hops["units"], strict=True):
            src = "mint" if sender == ZERO_ADDRESS else names.get(sender, sender[:10])
            dst = "retired" if receiver == ZERO_ADDRESS else names.get(receiver, receiver[:10])
            path.append(f"{src} -> {dst} ({moved / 1000:,.3f} ZCV)")
        start, end = _local([cert["period_start"], cert["period_end"]])
        rows.append(
            {
                "certificate": int(cert_id),
                "meter": cert["meter_id"],
                "generator": meter_names.get(cert["meter_id"], ""),
                "generated": f"{start:%m-%d %H:%M} .. {end:%m-%d %H:%M}",
                "certificate_zcv": cert["units"] / 1000,
                "retired_zcv": units / 1000,
                "hops": len(path),
                "trail": " | ".join(path),
            }
        )
    return pd.DataFrame(rows)


def certificate_trail(retirement: Retirement, trail: pd.DataFrame, holder_name: str) -> Any:
    """Each consumed certificate as a lane: its meter -> every holder -> the retirement."""
    lanes = []
    for row in trail.itertuples():
        holders = [hop.split(" -> ")[1].rsplit(" (", 1)[0] for hop in row.trail.split(" | ")]
        holders = [h for h in holders if h != "retired"]
        lanes.append((row, holders))
    columns = 2 + max((len(h) for _, h in lanes), default=1)
    fig, ax = new_figure(11, max(2.8, 0.85 * len(lanes) + 1.6))
    ax.grid(False)
    ax.set_axis_off()
    xs = np.linspace(0.1, 0.9, columns)
    for i, (row, holders) in enumerate(lanes):
        y = len(lanes) - i
        stations = [(xs[0], f"{row.meter}\n{row.generator}\n{row.generated}", "#fde0c5")]
        stations += [(xs[1 + j], name, "#e0ecf4") for j, name in enumerate(holders)]
        stations.append((xs[-1], f"retired\n{row.retired_zcv:,.3f} ZCV", "#d9f0d3"))
        boxes = [
            ax.text(
                x,
                y,
                label,
                ha="center",
                va="center",
                fontsize=7,
                wrap=True,
                bbox={"boxstyle": "round,pad=0.35", "fc": color, "ec": "#666"},
            )
            for x, label, color in stations
        ]
        for a, b in zip(boxes, boxes[1:], strict=False):
            ax.annotate(
                "",
                xy=b.get_position(),
                xytext=a.get_position(),
                arrowprops={
                    "arrowstyle": "->",
                    "color": "#444",
                    "patchA": a.get_bbox_patch(),
                    "patchB": b.get_bbox_patch(),
                    "shrinkA": 2,
                    "shrinkB": 2,
                },
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0.3, len(lanes) + 0.7)
    start, end = _local([retirement.consumption_start, retirement.consumption_end])
    ax.set_title(
        f"Retirement #{retirement.retirement_id} by {holder_name}: "
        f"{retirement.units / 1000:,.3f} ZCV for '{retirement.beneficiary}'\n"
        f"consumption {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} JST; "
        "lanes: certificate (meter, generator, generation period) -> holders -> retired",
        fontsize=9,
    )
    return fig
