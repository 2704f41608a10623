"""`zcx audit ...`: the auditor's command line (click group `zcx.audit.cli:cli`).

    zcx audit run --rpc-url http://127.0.0.1:8545 --out reports/audit
    zcx audit trail 3 --rpc-url http://127.0.0.1:8545

`ape run audit` (scripts/audit.py) takes the same options and uses Ape's connected provider.
Exit status: 0 when no violation was found, 1 when any was (all are listed), 2 on usage errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from zcx import deployments
from zcx.audit.checks import AuditConfig
from zcx.audit.crosscheck import csv_rows, sqlite_rows
from zcx.audit.events import DEFAULT_MANIFEST, DEFAULT_PAGE_BLOCKS, Abi, abis_from_manifest
from zcx.audit.findings import VIOLATION

log = logging.getLogger(__name__)


def _store_zone(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from zcx import domain

    try:
        domain.set_display_zone(value)  # None (no --tz, no ZCX_TZ): UTC again
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tz") from None


def audit_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by `zcx audit run` and `ape run audit`."""
    options = [
        click.option(
            "--deployments-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=deployments.DEFAULT_DIR,
            show_default=True,
            help="Folder holding <chain_id>.json written by `ape run deploy`.",
        ),
        click.option(
            "--from-block",
            type=int,
            default=None,
            help="First block to read. Default: the deployment block from the deployment file.",
        ),
        click.option(
            "--to-block",
            type=int,
            default=None,
            help="Last block to audit (views are read at this block). Default: latest.",
        ),
        click.option(
            "--page-blocks",
            type=click.IntRange(min=1),
            default=DEFAULT_PAGE_BLOCKS,
            show_default=True,
            help="Blocks per eth_getLogs call; a refused page is split in halves.",
        ),
        click.option(
            "--csv",
            "csv_files",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="Gateway CSV file to cross-check (columns meter_id,interval_start,interval_end,"
            "generated_wh,consumed_wh,sold_wh,purchased_wh). Repeatable.",
        ),
        click.option(
            "--oracle-store",
            "stores",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="Oracle SQLite store to cross-check. Repeatable.",
        ),
        click.option(
            "--strict-sources",
            is_flag=True,
            help="Every chain reading must appear in the sources (default: only meters and "
            "periods the sources cover).",
        ),
        click.option(
            "--trusted-signer",
            "trusted",
            multiple=True,
            help="Oracle signer address the auditor trusts; repeat. When given, a batch signed "
            "or a signer registered outside this set is a violation.",
        ),
        click.option(
            "--trusted-signers-from-deployment",
            is_flag=True,
            help="Trust exactly the oracle signers recorded in the deployment file.",
        ),
        click.option(
            "--capacity-margin-bps",
            type=click.IntRange(min=0),
            default=1000,
            show_default=True,
            help="Auditor's physical margin over nameplate: PQ1 above capacity x duration x "
            "(1 + margin) is a violation, whatever the chain's own margin.",
        ),
        click.option(
            "--peer-factor",
            type=click.FloatRange(min=1),
            default=3.0,
            show_default=True,
            help="Warn when a meter's daily Wh/kWp exceeds this multiple of its zone's median.",
        ),
        click.option(
            "--peer-min-meters",
            type=click.IntRange(min=2),
            default=3,
            show_default=True,
            help="Meters a zone needs on a day for the peer comparison.",
        ),
        click.option(
            "--out",
            type=click.Path(path_type=Path, file_okay=False),
            default=Path("reports/audit"),
            show_default=True,
            help="Output folder: data/ (CSV, Parquet) and report/ (HTML).",
        ),
        click.option(
            "--format",
            "formats",
            type=click.Choice(["csv", "parquet"]),
            multiple=True,
            default=("csv", "parquet"),
            show_default=True,
            help="Export formats. Repeatable.",
        ),
        click.option(
            "--no-export", is_flag=True, help="Write neither exports nor the HTML report."
        ),
        click.option("--no-html", is_flag=True, help="Skip the HTML report."),
        click.option(
            "--trail",
            "trails",
            multiple=True,
            type=int,
            help="Retirement id whose certificate trail to produce. Repeatable.",
        ),
        click.option(
            "--show",
            type=int,
            default=50,
            show_default=True,
            help="Findings printed per check (all are in findings.csv).",
        ),
        click.option("--fail-on-warning", is_flag=True, help="Exit non-zero on warnings too."),
        click.option("-v", "--verbose", is_flag=True, help="Log each step."),
        click.option(
            "--tz",
            envvar="ZCX_TZ",
            expose_value=False,
            callback=_store_zone,
            metavar="ZONE",
            help="Times in the exports and the report in this IANA zone, e.g. Asia/Tokyo "
            "(ISO 8601 with the offset). Default UTC. [env ZCX_TZ]",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def execute(w3: Any, abis: dict[str, Abi], **opts: Any) -> int:
    """Runs the audit with the parsed options; prints the findings; returns the exit status."""
    from rich.console import Console
    from rich.progress import Progress

    from zcx.audit.run import audit, write_outputs

    logging.basicConfig(level=logging.INFO if opts["verbose"] else logging.WARNING)
    console = Console(stderr=False)
    chain_id = int(w3.eth.chain_id)
    deployment = load_deployment(chain_id, opts["deployments_dir"])
    trusted: set[str] | None = None
    if opts["trusted"] or opts["trusted_signers_from_deployment"]:
        from eth_utils import to_checksum_address

        trusted = {to_checksum_address(a) for a in opts["trusted"]}
        if opts["trusted_signers_from_deployment"]:
            trusted |= {to_checksum_address(a) for a in deployment.roles.get("oracle_signers", [])}
    config = AuditConfig(
        capacity_margin_bps=opts["capacity_margin_bps"],
        peer_factor=opts["peer_factor"],
        peer_min_meters=opts["peer_min_meters"],
        trusted_signers=trusted,
    )
    sources = [(str(p), list(csv_rows(p))) for p in opts["csv_files"]]
    sources += [(str(p), list(sqlite_rows(p))) for p in opts["stores"]]
    first = deployment.deployment_block if opts["from_block"] is None else opts["from_block"]
    last = int(w3.eth.block_number) if opts["to_block"] is None else opts["to_block"]
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("reading events", total=max(1, last - first + 1))
        result = audit(
            w3,
            deployment,
            abis,
            config,
            sources,
            opts["strict_sources"],
            first,
            last,
            opts["page_blocks"],
            progress=lambda n: bar.advance(task, n),
        )
    ledger = result.ledger
    console.print(
        f"chain {chain_id} blocks {ledger.from_block}..{ledger.to_block}: "
        f"{len(ledger.readings)} readings, {len(ledger.rejected)} rejected, "
        f"{len(ledger.batches)} batches, {len(ledger.certificates)} certificates, "
        f"{len(ledger.retirements)} retirements ({ledger.read_stats['pages']} log pages, "
        f"{result.timings['total_seconds']:.1f} s)"
    )
    if result.market is not None:
        m = result.market.summary
        by_method = ", ".join(
            f"{row.method} {row.average_price_per_kwh:,.6g}/kWh"
            for row in result.market.by_method.itertuples()
        )
        console.print(
            f"market {m['market']}: {m['fills']} fills, {m['volume_zcv']:,.3f} ZCV for "
            f"{m['volume_token']:,.6g} payment token"
            + (f"; average {by_method}" if by_method else "")
        )
    if result.demand_response is not None:
        r = result.demand_response.rewards
        console.print(
            f"demand response {result.demand_response.address}: "
            f"{len(result.demand_response.events)} events, {len(r)} rewards re-checked, "
            f"{int((~r['ok'].astype(bool)).sum()) if len(r) else 0} differ from the baseline"
        )
    shown: dict[str, int] = {}
    for finding in result.findings:
        shown[finding.check] = shown.get(finding.check, 0) + 1
        if shown[finding.check] <= opts["show"]:
            style = "red" if finding.severity == VIOLATION else "yellow"
            console.print(str(finding), style=style, markup=False, highlight=False)
    for check, count in shown.items():
        if count > opts["show"]:
            console.print(f"... {count - opts['show']} more {check} findings in findings.csv")
    if not opts["no_export"]:
        for rid in opts["trails"]:
            if rid not in set(ledger.retirements["retirement_id"]):
                raise click.UsageError(f"--trail {rid}: no such retirement")
        written = write_outputs(
            result, opts["out"], tuple(opts["formats"]), not opts["no_html"], opts["trails"]
        )
        for what, path in written.items():
            console.print(f"{what}: {path}")
    verdict = "FAIL" if result.violations else "PASS"
    console.print(
        f"{verdict}: {len(result.violations)} violations, {len(result.warnings)} warnings",
        style="bold red" if result.violations else "bold green",
    )
    if result.violations or (opts["fail_on_warning"] and result.warnings):
        return 1
    return 0


def web3_for(rpc_url: str, timeout: float = 300) -> Any:
    """A connection to the node; one clear line (exit 1) when nothing answers there."""
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if not w3.is_connected():
        raise click.ClickException(f"no JSON-RPC node answers at {redact_url(rpc_url)}")
    return w3


def redact_url(url: str) -> str:
    """scheme://host:port only: hosted providers put API keys in the path or query."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" + ("/…" if parts.path.strip("/") or parts.query else "")


def load_deployment(chain_id: int, directory: Path) -> deployments.Deployment:
    """The deployment record, or one clear line (exit 1) saying how to get one."""
    try:
        return deployments.load(chain_id, directory)
    except FileNotFoundError as exc:
        raise click.ClickException(f"no ZCX deployment for chain {chain_id}: {exc}") from None


@click.group()
def cli() -> None:
    """Audit ZCX from the chain: rebuild the ledger, check every invariant, find tampering."""


@cli.command("run")
@click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    envvar="ZCX_AUDIT_RPC_URL",
    help="JSON-RPC endpoint of any node of the chain (env ZCX_AUDIT_RPC_URL).",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="Ape manifest with the contract ABIs (`ape compile` writes it).",
)
@audit_options
def run_command(rpc_url: str, manifest: Path, **opts: Any) -> None:
    """Audit the deployment on the chain at --rpc-url; exit 1 if any violation is found."""
    try:
        abis = abis_from_manifest(manifest)
    except (FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    raise SystemExit(execute(web3_for(rpc_url), abis, **opts))


@cli.command("trail")
@click.argument("retirement_id", type=int)
@click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    envvar="ZCX_AUDIT_RPC_URL",
    help="JSON-RPC endpoint of any node of the chain.",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="Ape manifest with the contract ABIs.",
)
@click.option(
    "--deployments-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=deployments.DEFAULT_DIR,
    show_default=True,
    help="Folder holding <chain_id>.json.",
)
@click.option(
    "--page-blocks",
    type=click.IntRange(min=1),
    default=DEFAULT_PAGE_BLOCKS,
    show_default=True,
    help="Blocks per eth_getLogs call.",
)
def trail_command(
    retirement_id: int, rpc_url: str, manifest: Path, deployments_dir: Path, page_blocks: int
) -> None:
    """Print the certificate trail of one retirement: certificates consumed and every hop."""
    from zcx.audit.ledger import build_ledger
    from zcx.audit.report import certificate_trail
    from zcx.audit.run import ledger_contracts

    try:
        abis = abis_from_manifest(manifest)
    except (FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    w3 = web3_for(rpc_url)
    deployment = load_deployment(int(w3.eth.chain_id), deployments_dir)
    ledger = build_ledger(
        w3,
        deployment.chain_id,
        ledger_contracts(deployment, abis),
        abis,
        deployment.deployment_block,
        page_blocks=page_blocks,
        with_state=False,
    )
    try:
        trail = certificate_trail(ledger, retirement_id)
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    click.echo(trail["consumed"].to_string(index=False))
    click.echo()
    click.echo(trail["hops"].to_string(index=False))
