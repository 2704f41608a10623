"""`zcx oracle ...` / `python -m oracle ...`: serve the API, import CSVs, show status, manage
gateways and keys. Every option also reads ZCX_ORACLE_<NAME> from the environment."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from oracle.settings import OracleSettings

log = logging.getLogger("oracle")


def _settings(ctx: click.Context) -> OracleSettings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _password(settings: OracleSettings, prompt: str, confirm: bool = False) -> str:
    if settings.keystore_password is not None:
        return settings.keystore_password.get_secret_value()
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def load_signer(settings: OracleSettings, chain_id: int | None) -> Any:
    """The oracle's key from exactly one configured source (see oracle.signer)."""
    from oracle import signer as keys

    sources = [x for x in (settings.keystore, settings.ape_account, settings.dev_private_key) if x]
    if len(sources) > 1:
        raise click.UsageError("configure one key source: keystore, ape account or dev key")
    if settings.keystore:
        return keys.from_keystore(settings.keystore, _password(settings, "Keystore password"))
    if settings.ape_account:
        path = keys.ape_keystore_path(settings.ape_account)
        return keys.from_keystore(
            path, _password(settings, f"Password of Ape account {settings.ape_account}")
        )
    if settings.dev_private_key:
        if chain_id is None:
            raise click.ClickException(
                "the chain must be reachable to check that a dev key is allowed"
            )
        return keys.from_dev_key(settings.dev_private_key.get_secret_value(), chain_id)
    return None


def build(settings: OracleSettings, need_signer: bool = True) -> Any:
    """Store + chain + signer + cached chain facts."""
    from oracle.chain import Chain, ChainMismatch
    from oracle.service import Oracle
    from oracle.signer import KeyError_
    from oracle.store import Store

    store = Store(settings.db_path)
    chain = Chain(settings.rpc_url, settings.deployments_dir, settings.rpc_timeout_s)
    oracle = Oracle(settings, store, chain, None)
    try:
        oracle.connect()
    except ChainMismatch as exc:
        raise click.ClickException(f"{exc}") from exc
    try:
        oracle.signer = load_signer(settings, chain.chain_id or None)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    if need_signer and oracle.signer is None:
        raise click.UsageError(
            "no oracle key: set ZCX_ORACLE_KEYSTORE (+ ZCX_ORACLE_KEYSTORE_PASSWORD or prompt), "
            "ZCX_ORACLE_APE_ACCOUNT, or on the local devnet ZCX_ORACLE_DEV_PRIVATE_KEY"
        )
    return oracle


@click.group()
@click.option(
    "--db", "db_path", type=click.Path(path_type=Path), help="SQLite store [ZCX_ORACLE_DB_PATH]."
)
@click.option("--rpc-url", help="JSON-RPC URL of the chain node [ZCX_ORACLE_RPC_URL].")
@click.option(
    "--deployments-dir", type=click.Path(path_type=Path), help="Folder of <chain_id>.json."
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(
    ctx: click.Context,
    db_path: Path | None,
    rpc_url: str | None,
    deployments_dir: Path | None,
    verbose: bool,
) -> None:
    """The ZCX oracle: meter gateways post readings over HTTP; the oracle stores them durably,
    signs them (EIP-712) and submits them to the GenerationRegistry in batches, exactly once."""
    # Whatever the oracle creates (store, WAL/SHM, logs, keystores) is its operator's only.
    os.umask(0o077)
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "db_path": db_path,
            "rpc_url": rpc_url,
            "deployments_dir": deployments_dir,
        }.items()
        if v is not None
    }
    settings = OracleSettings(**overrides)
    setup_logging(settings, verbose)
    ctx.obj = {"settings": settings}


def setup_logging(settings: OracleSettings, verbose: bool) -> None:
    """stderr (and ZCX_ORACLE_LOG_FILE, created 0600), every line scrubbed of the RPC URL's
    secret parts, and floods of one message (accept() failing with EMFILE, a malformed
    request per connection) written at most once per log_repeat_interval_s."""
    from oracle.redact import RepeatFilter, Scrubber, ScrubFilter, create_private_file, url_secrets

    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if settings.log_file:
        create_private_file(settings.log_file)
        handlers.append(logging.FileHandler(settings.log_file, encoding="utf-8"))
    scrub = ScrubFilter(Scrubber(url_secrets(settings.rpc_url)))
    for handler in handlers:
        handler.addFilter(scrub)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    for name in ("asyncio", "uvicorn.error", "oracle.http"):
        logging.getLogger(name).addFilter(RepeatFilter(settings.log_repeat_interval_s))

    # Uncaught errors go through the same scrubbed handlers, not straight to stderr.
    def unhandled(kind: Any, value: Any, tb: Any) -> None:
        log.critical("unhandled error", exc_info=(kind, value, tb))

    sys.excepthook = unhandled
    threading.excepthook = lambda args: unhandled(args.exc_type, args.exc_value, args.exc_traceback)


@cli.command()
@click.option("--host", help="Listen address [ZCX_ORACLE_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Listen port [ZCX_ORACLE_PORT, 8600].")
@click.option("--follower", is_flag=True, help="Only attest batches proposed by the leader.")
@click.option("--peer", "peers", multiple=True, help="Base URL of a peer oracle (leader side).")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, follower: bool, peers: tuple[str, ...]
) -> None:
    """Serve the ingest API and run the batch submitter until stopped."""
    import uvicorn

    from oracle.api import create_app
    from oracle.http import server_config

    settings = _settings(ctx)
    updates: dict[str, Any] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    if follower:
        updates["leader"] = False
    if peers:
        updates["peers"] = list(peers)
    settings = settings.model_copy(update=updates)
    oracle = build(settings)
    server: uvicorn.Server | None = None
    failure: list[str] = []

    def on_fatal(message: str) -> None:
        failure.append(message)
        if server is not None:
            server.should_exit = True

    from oracle.quorum import QuorumConfigError

    try:
        app = create_app(oracle, on_fatal=on_fatal)
    except QuorumConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    log.info(
        "oracle %s serving on http://%s:%d (%s)",
        oracle.signer.address,
        settings.host,
        settings.port,
        "leader" if settings.leader else "follower",
    )
    server = uvicorn.Server(server_config(app, settings.host, settings.port, settings))
    server.run()
    if failure:
        raise click.ClickException(failure[0])


@cli.command("import-csv")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["interval", "broute"]),
    default="interval",
    show_default=True,
    help="interval: PQ1..PQ4 per row; broute: cumulative registers.",
)
@click.option("--meter", help="Meter id for B-route files without a meter_id column.")
@click.option(
    "--unit",
    "unit_code",
    default="0x01",
    show_default=True,
    help="ECHONET Lite 0xE1 unit code of the registers (0x01 = 0.1 kWh).",
)
@click.option("--coefficient", default=1, show_default=True, help="ECHONET Lite 0xD3 coefficient.")
@click.option(
    "--digits", default=8, show_default=True, help="ECHONET Lite 0xD7 effective digits (wrap)."
)
@click.option(
    "--gap",
    type=click.Choice(["skip", "split"]),
    default="skip",
    show_default=True,
    help="Missing 30-minute slot: skip the affected intervals, or split the energy evenly.",
)
@click.pass_context
def import_csv(
    ctx: click.Context,
    csv_file: Path,
    fmt: str,
    meter: str | None,
    unit_code: str,
    coefficient: int,
    digits: int,
    gap: str,
) -> None:
    """Import 30-minute values from CSV through the same validation as the API."""
    from oracle.csv_import import BRouteOptions, import_file

    oracle = build(_settings(ctx), need_signer=False)
    options = BRouteOptions(
        unit_code=int(unit_code, 0), coefficient=coefficient, digits=digits, gap=gap, meter=meter
    )
    report = import_file(oracle, csv_file, fmt, options)
    click.echo(report.summary())
    if report.issues:
        sys.exit(1)


@cli.group()
@click.option(
    "--tz",
    envvar="ZCX_TZ",
    metavar="ZONE",
    help="Show times in this IANA zone, e.g. Asia/Tokyo (default UTC). [env ZCX_TZ]",
)
def status(tz: str | None) -> None:
    """Show the state of a meter's readings or of the queue."""
    from zcx import domain

    if tz:
        try:
            domain.set_display_zone(tz)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--tz") from None


@status.command("meter")
@click.argument("meter_id")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def status_meter(ctx: click.Context, meter_id: str, limit: int) -> None:
    """Each interval of METER_ID with its state, tx hash, block and reason."""
    from rich.console import Console
    from rich.table import Table

    from oracle.store import Store
    from zcx.domain import iso_time

    store = Store(_settings(ctx).db_path)
    table = Table("start", "end", "PQ1", "PQ2", "PQ3", "PQ4", "state", "tx", "block", "reason")
    for r in store.readings_of(meter_id, None, None)[-limit:]:
        table.add_row(
            iso_time(r.start),
            iso_time(r.end),
            f"{r.gen:,}",
            f"{r.cons:,}",
            f"{r.sold:,}",
            f"{r.purchased:,}",
            r.state,
            (r.tx_hash or "")[:14],
            str(r.block or ""),
            r.reason or "",
        )
    out = Console()
    if not out.is_terminal:  # piped or captured: wide enough for ISO times and the state
        out.width = max(out.width, 160)
    out.print(table)


@status.command("queue")
@click.pass_context
def status_queue(ctx: click.Context) -> None:
    """Readings per state and open batches."""
    from oracle.store import OPEN_BATCH_STATES, Store

    store = Store(_settings(ctx).db_path)
    counts = store.state_counts()
    for state in ("accepted", "batched", "submitted", "confirmed", "rejected"):
        click.echo(f"{state:<10} {counts.get(state, 0)}")
    for batch in store.batches(OPEN_BATCH_STATES):
        click.echo(
            f"batch {batch.id} {batch.state} size={batch.size} attempts={batch.attempts} "
            f"error={batch.error or '-'}"
        )


@cli.group()
def peers() -> None:
    """Credentials of the peer oracles allowed to ask this one for attestations (quorum)."""


@peers.command("add")
@click.argument("name")
@click.pass_context
def peer_add(ctx: click.Context, name: str) -> None:
    """Issue peer oracle NAME a token and print it (shown once; stored hashed). NAME's operator
    puts it in ZCX_ORACLE_PEER_TOKENS under this oracle's URL."""
    from oracle.store import Store

    try:
        click.echo(Store(_settings(ctx).db_path).add_peer(name))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@peers.command("rotate")
@click.argument("name")
@click.pass_context
def peer_rotate(ctx: click.Context, name: str) -> None:
    """Issue a new token for peer NAME; the old one stops working."""
    from oracle.store import Store

    try:
        click.echo(Store(_settings(ctx).db_path).rotate_peer(name))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@peers.command("remove")
@click.argument("name")
@click.pass_context
def peer_remove(ctx: click.Context, name: str) -> None:
    """Revoke peer NAME's credential."""
    from oracle.store import Store

    try:
        Store(_settings(ctx).db_path).remove_peer(name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@peers.command("list")
@click.pass_context
def peer_list(ctx: click.Context) -> None:
    """Peers holding a credential for this oracle."""
    from oracle.store import Store

    for name in Store(_settings(ctx).db_path).peer_names():
        click.echo(name)


@cli.group()
def keys() -> None:
    """Manage the oracle's signing key (encrypted keystore files)."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--import-key", is_flag=True, help="Prompt for an existing private key instead.")
@click.pass_context
def keys_new(ctx: click.Context, path: Path, import_key: bool) -> None:
    """Create an encrypted keystore at PATH (a new random key unless --import-key)."""
    from oracle.signer import write_keystore

    private = None
    if import_key:
        private = bytes.fromhex(
            click.prompt("Private key (hex)", hide_input=True).removeprefix("0x")
        )
    password = _password(_settings(ctx), "New keystore password", confirm=True)
    try:
        address = write_keystore(path, password, private)
    except FileExistsError as exc:
        raise click.ClickException(f"{path} exists; not overwriting a key") from exc
    click.echo(f"{address}  (register it as an oracle signer: GenerationRegistry.addSigner)")


@keys.command("address")
@click.pass_context
def keys_address(ctx: click.Context) -> None:
    """Print the address of the configured key (never the key)."""
    settings = _settings(ctx)
    from oracle.chain import Chain, ChainUnavailable

    chain_id = None
    if settings.dev_private_key:
        try:
            chain = Chain(settings.rpc_url, settings.deployments_dir)
            chain_id = int(chain.call(lambda: chain.w3.eth.chain_id))
        except ChainUnavailable:
            chain_id = None
    signer = load_signer(settings, chain_id)
    if signer is None:
        raise click.UsageError("no key configured")
    click.echo(signer.address)


def main() -> None:
    cli(auto_envvar_prefix=None)


if __name__ == "__main__":
    main()


# Gateways and their meter bindings live in their own module (this one stays under 500 lines).
from oracle.gateways_cli import gateways  # noqa: E402

cli.add_command(gateways)
