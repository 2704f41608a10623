"""`zcx portal serve`: the members' and operator's web portal over any JSON-RPC node."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from zcx import deployments


@click.group()
def portal() -> None:
    """The web portal for members and the operator (wallet-signed actions, EIP-1193)."""


@portal.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    envvar="ZCX_RPC_URL",
    help="JSON-RPC URL of the chain [ZCX_RPC_URL].",
)
@click.option(
    "--deployments",
    "deployments_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=deployments.DEFAULT_DIR,
    show_default=True,
    help="Folder holding <chain_id>.json written by `ape run deploy`.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The event index (SQLite). Default: portal-<chain_id>.sqlite here.",
)
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Contract prices for statements. Default: config/prices.toml.",
)
def serve(
    host: str,
    port: int,
    rpc_url: str,
    deployments_dir: Path,
    db_path: Path | None,
    prices: Path | None,
) -> None:
    """Index the chain's ZCX events, then serve the portal at http://HOST:PORT/."""
    import uvicorn

    from zcx.portal.server import PortalSetupError, build_app, build_portal

    logging.getLogger("zcx").setLevel(logging.INFO)
    try:
        app = build_app(build_portal(rpc_url, deployments_dir, db_path, prices=prices))
    except PortalSetupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ZCX portal: http://{host}:{port}/ (chain {rpc_url})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
