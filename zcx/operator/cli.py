"""`python -m zcx.operator ...`: the operator's reports from any chain holding a ZCX deployment.

    python -m zcx.operator balance --rpc-url http://127.0.0.1:8545 --out reports/operator
    python -m zcx.operator statements --rpc-url http://127.0.0.1:8545 --month 2026-11

Everything is read from the chain (JSON-RPC, logs paged from the deployment block); the contract
prices come from config/prices.toml or --prices.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import pandas as pd
from web3 import Web3

from zcx import deployments
from zcx.operator import balance as balance_mod
from zcx.operator import charts, ledger
from zcx.operator.prices import PriceConfigError, load_prices, spot_series
from zcx.operator.statements import statements
from zcx.report import Report

log = logging.getLogger(__name__)
SLOT = 1800


def _connect(rpc_url: str, deployments_dir: Path) -> tuple[Any, deployments.Deployment]:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        chain_id = int(w3.eth.chain_id)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot reach {rpc_url}: {exc}") from exc
    try:
        return w3, deployments.load(chain_id, deployments_dir)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


def _prices(path: Path | None) -> Any:
    try:
        return load_prices(path)
    except PriceConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    envvar="ZCX_RPC_URL",
    help="JSON-RPC URL of the chain [ZCX_RPC_URL].",
)
@click.option(
    "--deployments-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=deployments.DEFAULT_DIR,
    show_default=True,
    help="Folder holding <chain_id>.json written by `ape run deploy`.",
)
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Contract prices file. Default: config/prices.toml.",
)
@click.pass_context
def cli(ctx: click.Context, rpc_url: str, deployments_dir: Path, prices_path: Path | None) -> None:
    """The operator's platform: the 30-minute balance and monthly statements, from the chain."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    ctx.obj = {"rpc_url": rpc_url, "deployments_dir": deployments_dir, "prices": prices_path}


@cli.command("balance")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("reports/operator"),
    show_default=True,
    help="Report folder.",
)
@click.option("--seed", default=42, show_default=True, help="Seed of the synthetic spot series.")
@click.pass_context
def balance_command(ctx: click.Context, out_dir: Path, seed: int) -> None:
    """Slot by slot: community supply (PQ3), demand (PQ4), the day-ahead wholesale position and
    the imbalance, over every slot that holds recorded readings. Writes CSV, PNG and HTML."""
    w3, deployment = _connect(ctx.obj["rpc_url"], ctx.obj["deployments_dir"])
    prices = _prices(ctx.obj["prices"])
    readings = ledger.readings(w3, deployment)
    if readings.empty:
        raise click.ClickException("no readings recorded on this deployment yet")
    start = int(readings["start"].min()) // SLOT * SLOT
    slots = (int(readings["end"].max()) - start + SLOT - 1) // SLOT
    frame = balance_mod.balance(
        readings, spot_series(prices, start, slots, seed), prices, start, slots
    )
    report = Report("ZCX operator: the 30-minute balance", out_dir, zone=ZoneInfo(charts.TIMEZONE))
    report.add_figure(
        "balance", charts.balance_chart(frame), "The 30-minute balance and wholesale purchases"
    )
    totals = balance_mod.summary(frame)
    report.add_table("balance_summary", pd.DataFrame([totals]), "Totals (kWh, JPY)")
    report.add_table("balance_30min", frame, "The balance slot by slot", max_rows=96)
    path = report.write()
    for key, value in totals.items():
        click.echo(f"{key:<28} {value:,.1f}")
    click.echo(f"report: {path}")


@cli.command("statements")
@click.option("--month", help="Only this month (YYYY-MM, Asia/Tokyo).")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("reports/operator/statements.csv"),
    show_default=True,
)
@click.pass_context
def statements_command(ctx: click.Context, month: str | None, out_file: Path) -> None:
    """Monthly statements per member from the PQ3 and PQ4 recorded on chain, with the coins each
    member paid against a statement's payment reference."""
    w3, deployment = _connect(ctx.obj["rpc_url"], ctx.obj["deployments_dir"])
    prices = _prices(ctx.obj["prices"])
    frame = statements(
        ledger.readings(w3, deployment),
        ledger.members(w3, deployment),
        prices,
        ledger.payments(w3, deployment),
        operator=deployment.roles["operator"],
    )
    if month:
        frame = frame[frame["month"] == month]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_file, index=False)
    click.echo(
        frame[["statement_id", "name", "kind", "purchased_wh", "sold_wh", "due_jpy"]].to_string(
            index=False
        )
    )
    click.echo(f"written: {out_file}")


def main() -> None:
    cli()
