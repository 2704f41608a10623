"""`python -m zcx.sim ...`: the meter gateway simulator on its own.

    python -m zcx.sim members --members 60 --seed 42            # who and what to register
    python -m zcx.sim csv --members 60 --days 7 --out readings  # CSVs for `oracle import-csv`
    python -m zcx.sim post --oracle http://127.0.0.1:8600 --gateways gateways.json --days 1

`gateways.json` maps each gateway name to its token, e.g. {"gw-tky-hpb-001": "<token>"}; a
member's gateway is `gw-<meter label in lower case>` (see `members`). The meters must be
registered on chain and bound to their gateways in the oracle first.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
import pandas as pd

from zcx.sim.community import build_community
from zcx.sim.gateway import Gateway, GatewayError, deliver, write_broute_csv, write_csv
from zcx.sim.simulate import aligned_window, simulate


def _window(days: int, end: str | None) -> tuple[int, int]:
    if end:
        stamp = pd.Timestamp(end)
        if stamp.tzinfo is None:
            raise click.BadParameter(
                "needs a UTC offset, e.g. 2026-11-27T00:00+09:00", param_hint="--end"
            )
        now = int(stamp.timestamp())
    else:
        now = int(time.time())
    return aligned_window(now, days)


@click.group()
def cli() -> None:
    """Simulate a community's 30-minute meter readings (PQ1..PQ4) from a seed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")


@cli.command("members")
@click.option("--members", default=60, show_default=True)
@click.option("--seed", default=42, show_default=True)
def members_command(members: int, seed: int) -> None:
    """The community: member, kind, meter label, capacity (W), zone and gateway, as CSV."""
    rows = [
        {
            "meter_id": m.meter_label,
            "name": m.name,
            "kind": m.kind.name.lower(),
            "profile": m.profile,
            "capacity_w": m.capacity_w,
            "zone": m.zone,
            "gateway": m.gateway,
            "battery_wh": m.battery.capacity_wh if m.battery else 0,
        }
        for m in build_community(members, seed)
    ]
    click.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)


@cli.command("csv")
@click.option("--members", default=60, show_default=True)
@click.option("--days", default=7, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--end", help="Window end (ISO-8601 with offset). Default: now.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("readings"),
    show_default=True,
)
def csv_command(members: int, days: int, seed: int, end: str | None, out_dir: Path) -> None:
    """Writes interval.csv and broute.csv (ECHONET Lite unit 0x03 = 1 Wh) for the oracle's
    importer, and full.csv with the battery flows and state of charge."""
    start, slots = _window(days, end)
    sim = simulate(build_community(members, seed), start, slots, seed)
    write_csv(sim.readings, out_dir / "interval.csv")
    write_broute_csv(sim.readings, out_dir / "broute.csv", seed=seed)
    sim.readings.to_csv(out_dir / "full.csv", index=False)
    click.echo(f"{len(sim.readings)} readings of {members} meters written to {out_dir}/")


@cli.command("post")
@click.option("--oracle", "base_url", required=True, help="The oracle's base URL.")
@click.option(
    "--gateways",
    "gateways_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON object: gateway name -> token.",
)
@click.option("--members", default=60, show_default=True)
@click.option("--days", default=1, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--end", help="Window end (ISO-8601 with offset). Default: now.")
@click.option(
    "--speedup",
    default=2880.0,
    show_default=True,
    help="Simulated seconds per wall second (2880: a day in 30 s).",
)
@click.option("--post-every", default=12, show_default=True, help="Slots per upload.")
def post_command(
    base_url: str,
    gateways_file: Path,
    members: int,
    days: int,
    seed: int,
    end: str | None,
    speedup: float,
    post_every: int,
) -> None:
    """Posts the community's readings to the oracle, each gateway with its own token, at
    accelerated time."""
    tokens = json.loads(gateways_file.read_text())
    community = build_community(members, seed)
    missing = [m.gateway for m in community if m.gateway not in tokens]
    if missing:
        raise click.ClickException(f"no token for gateways {missing[:5]} in {gateways_file}")
    start, slots = _window(days, end)
    sim = simulate(community, start, slots, seed)
    gateways = [Gateway(m.gateway, tokens[m.gateway], (m.meter_label,)) for m in community]
    try:
        outcome = deliver(sim.readings, gateways, base_url, speedup, post_every=post_every)
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{outcome.requests} requests: {outcome.accepted} accepted, "
        f"{outcome.duplicates} duplicates, {outcome.retries} retries"
    )


def main() -> None:
    cli()
