"""`zcx statements` (make a statement) and `zcx verify statement` (re-check one against the chain).

    zcx statements retirement 1 --out retirement-1.pdf --rpc-url http://127.0.0.1:8545
    zcx statements beneficiary "Shop Sato" --month 2026-11 --out sato-2026-11.pdf
    zcx verify statement retirement-1.pdf --rpc-url http://127.0.0.1:8545

Both read the chain through web3 with the compiled ABI, like `zcx audit`. Which ZCV contract
is trusted comes from the deployment record (deployments/<chain_id>.json) or --zcv, never from
the file being checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from zcx import deployments
from zcx.audit.events import DEFAULT_MANIFEST, abis_from_manifest
from zcx.statements.model import DEFAULT_TZ, Statement, StatementError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_VERIFY_BASE = "http://127.0.0.1:8700"


def reader_options(func: F) -> F:
    options = [
        click.option(
            "--rpc-url",
            default=DEFAULT_RPC,
            show_default=True,
            envvar="ZCX_RPC_URL",
            help="JSON-RPC endpoint of any node of the chain. [env ZCX_RPC_URL]",
        ),
        click.option(
            "--zcv",
            "zcv_address",
            default=None,
            metavar="ADDRESS",
            help="The ZCV contract to trust (default: the deployment record's).",
        ),
        click.option(
            "--deployments",
            "deployments_dir",
            envvar="ZCX_DEPLOYMENTS_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            default=deployments.DEFAULT_DIR,
            help="Folder of <chain_id>.json deployment records. [env ZCX_DEPLOYMENTS_DIR]",
        ),
        click.option(
            "--from-block",
            type=click.IntRange(min=0),
            default=None,
            help="First block searched for Retired logs (default: the deployment block, or 0).",
        ),
        click.option(
            "--manifest",
            type=click.Path(path_type=Path, dir_okay=False),
            default=DEFAULT_MANIFEST,
            help="Ape manifest with the contract ABIs (`ape compile` writes it).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_reader(
    rpc_url: str,
    zcv_address: str | None,
    deployments_dir: Path,
    from_block: int | None,
    manifest: Path,
) -> Any:
    """A ChainReader on the trusted ZCV; one clear line (exit 1) for what is missing."""
    from eth_utils import is_address, to_checksum_address

    from zcx.audit.cli import redact_url, web3_for
    from zcx.statements.chain import ChainReader

    try:
        abi = abis_from_manifest(manifest)["ZeroCarbonValue"]
    except (FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    w3 = web3_for(rpc_url)
    chain_id = int(w3.eth.chain_id)
    record = _record(chain_id, deployments_dir)
    if zcv_address is not None:
        if not is_address(zcv_address):
            raise click.BadParameter(f"{zcv_address!r} is not an address", param_hint="--zcv")
        address = str(to_checksum_address(zcv_address))
    elif record is not None:
        address = record.contracts["ZeroCarbonValue"]
    else:
        raise click.ClickException(
            f"no deployment record for chain {chain_id} in {deployments_dir} "
            f"({redact_url(rpc_url)}): pass --zcv ADDRESS of the ZCV contract you trust"
        )
    if from_block is None:
        same = record is not None and record.contracts["ZeroCarbonValue"].lower() == address.lower()
        from_block = record.deployment_block if same and record is not None else 0
    reader = ChainReader(w3, address, abi, from_block=from_block)
    try:
        reader.check_contract()
    except StatementError as exc:
        raise click.ClickException(str(exc)) from None
    return reader


def _record(chain_id: int, directory: Path) -> deployments.Deployment | None:
    try:
        return deployments.load(chain_id, directory)
    except FileNotFoundError:
        return None


def write_statement(statement: Statement, out: Path) -> None:
    from zcx.statements.render import render_statement_html, render_statement_pdf

    suffix = out.suffix.lower()
    if suffix == ".pdf":
        out.write_bytes(render_statement_pdf(statement))
    elif suffix in (".html", ".htm"):
        out.write_text(render_statement_html(statement), encoding="utf-8")
    else:
        raise click.BadParameter(f"{out}: end it in .pdf or .html", param_hint="--out")


def document_options(func: F) -> F:
    options = [
        click.option(
            "--out",
            type=click.Path(dir_okay=False, path_type=Path),
            required=True,
            help="FILE.pdf (Chromium's print) or FILE.html.",
        ),
        click.option(
            "--tz",
            default=DEFAULT_TZ,
            envvar="ZCX_TZ",
            show_default=True,
            help="Time zone the statement shows times in and its --month is counted in (IANA "
            "name); the same ZCX_TZ that `zcx holder retire --from/--to` reads. [env ZCX_TZ]",
        ),
        click.option(
            "--verify-base-url",
            default=DEFAULT_VERIFY_BASE,
            show_default=True,
            envvar="ZCX_VERIFY_BASE_URL",
            help="The portal's address; the QR code points at <it>/verify/... "
            "[env ZCX_VERIFY_BASE_URL]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _check_tz(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{tz!r} is not an IANA time zone", param_hint="--tz") from None


@click.group()
def statements() -> None:
    """Retirement statements: printable HTML and PDF with a QR code to the verification page."""


@statements.command("retirement")
@click.argument("retirement_id", type=click.IntRange(min=1))
@document_options
@reader_options
def retirement_command(
    retirement_id: int, out: Path, tz: str, verify_base_url: str, **reader_opts: Any
) -> None:
    """The statement of one retirement."""
    from zcx.statements.chain import retirement_statement

    _check_tz(tz)
    reader = make_reader(**reader_opts)
    try:
        statement = retirement_statement(
            reader, retirement_id, tz=tz, verify_base=verify_base_url, issued_at=int(time.time())
        )
    except StatementError as exc:
        raise click.ClickException(str(exc)) from None
    write_statement(statement, out)
    click.echo(f"wrote {out}: retirement {retirement_id}, {statement.beneficiary}")


@statements.command("beneficiary")
@click.argument("name")
@click.option("--month", required=True, metavar="YYYY-MM", help="The consumption month.")
@document_options
@reader_options
def beneficiary_command(
    name: str, month: str, out: Path, tz: str, verify_base_url: str, **reader_opts: Any
) -> None:
    """The monthly statement of a beneficiary: every retirement naming it whose consumption
    period lies within the month."""
    from zcx.statements.chain import beneficiary_statement, month_bounds

    _check_tz(tz)
    try:
        month_bounds(month, tz)
    except StatementError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    reader = make_reader(**reader_opts)
    try:
        statement = beneficiary_statement(
            reader, name, month, tz=tz, verify_base=verify_base_url, issued_at=int(time.time())
        )
    except StatementError as exc:
        raise click.ClickException(str(exc)) from None
    write_statement(statement, out)
    ids = ", ".join(str(r.id) for r in statement.retirements)
    click.echo(f"wrote {out}: {name} {month}, retirements {ids}")


@click.group()
def verify() -> None:
    """Verify documents against the chain."""


@verify.command("statement")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reader_options
def verify_statement_command(file: Path, **reader_opts: Any) -> None:
    """Re-check every figure of a statement PDF against the chain; exit 1 on any difference."""
    from zcx.statements.verify import verify_file

    reader = make_reader(**reader_opts)
    try:
        result = verify_file(file, reader)
    except StatementError as exc:
        raise click.ClickException(str(exc)) from None
    if not result.ok:
        for mismatch in result.mismatches:
            click.echo(f"MISMATCH {mismatch}", err=True)
        raise SystemExit(1)
    statement = result.statement
    assert statement is not None
    ids = ", ".join(str(r.id) for r in statement.retirements)
    click.echo(
        f"OK {file}: {result.figures} figures match chain {statement.chain_id}, ZCV "
        f"{statement.zcv}, retirements {ids}"
    )
