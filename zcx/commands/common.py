"""What every chain-facing `zcx` command shares: the network, RPC and deployment options, the
account option, a session that turns chain reverts into one plain line, and rich output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from zcx import deployments, domain
from zcx.holder import (
    DEFAULT_LOCAL_RPC,
    DEFAULT_NETWORK,
    ChainRevert,
    ConnectionProblem,
    HolderError,
    ZcxClient,
    open_client,
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class ChainFailure(click.ClickException):
    """A revert, shown as `ErrorName: plain sentence` on stderr; exit code 1."""

    exit_code = 1

    def __init__(self, revert: ChainRevert) -> None:
        super().__init__(str(revert.error))
        self.revert = revert

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


def chain_options(func: F) -> F:
    """--network, --rpc and --deployments, stored in ctx.meta for `session()`."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[f"zcx.{param.name}"] = value
        return value

    def store_zone(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            domain.set_display_zone(value)  # None (no --tz, no ZCX_TZ): UTC again
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--tz") from None
        return value

    def store_network(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            check_network_choice(value)
        return store(ctx, param, value)

    options = [
        click.option(
            "--tz",
            envvar="ZCX_TZ",
            expose_value=False,
            callback=store_zone,
            metavar="ZONE",
            help="Show times in this IANA zone, e.g. Asia/Tokyo (ISO 8601 with the offset). "
            "Default UTC. [env ZCX_TZ]",
        ),
        click.option(
            "--network",
            envvar="ZCX_NETWORK",
            expose_value=False,
            callback=store_network,
            help=f"Ape network choice. Default: the provider already connected (ape test/console), "
            f"else {DEFAULT_NETWORK}. [env ZCX_NETWORK]",
        ),
        click.option(
            "--rpc-url",
            "--rpc",
            "rpc",
            envvar=["ZCX_RPC_URL", "ZCX_RPC"],
            expose_value=False,
            callback=store,
            help=f"URL of the RUNNING Anvil that holds the deployment, for the local foundry "
            f"network (default {DEFAULT_LOCAL_RPC}; APE_FOUNDRY_HOST also works). "
            "The CLI never starts a node. [env ZCX_RPC_URL]",
        ),
        click.option(
            "--deployments",
            "deployments_dir",
            envvar="ZCX_DEPLOYMENTS_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            default=deployments.DEFAULT_DIR,
            show_default=False,
            expose_value=False,
            callback=store,
            help="Folder of <chain_id>.json deployment records (default: the project's "
            "deployments/). [env ZCX_DEPLOYMENTS_DIR]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_network_choice(choice: str) -> None:
    """A usage error (exit 2) for a network Ape does not know, before any connection is tried."""
    from ape import networks

    if choice not in set(networks.get_network_choices()):
        raise click.BadParameter(
            f"unknown network {choice!r}; the devnet is ethereum:local:foundry "
            "(`ape networks list` shows the others)",
            param_hint="--network",
        )


def account_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "--account",
        "account_alias",
        envvar="ZCX_ACCOUNT",
        required=required,
        metavar="ALIAS",
        help="Ape account alias that signs (`ape accounts list`); TEST::<n> for test account n "
        "on a local devnet. [env ZCX_ACCOUNT]",
    )


def units_option(func: F) -> F:
    return click.option(
        "--units",
        "as_units",
        is_flag=True,
        help="Amounts are whole units (1 unit = 0.001 ZCV = 1 Wh at the default rate), "
        "not ZCV decimals.",
    )(func)


def yes_option(func: F) -> F:
    return click.option(
        "--yes",
        is_flag=True,
        envvar="ZCX_YES",
        help="Do not ask before this irreversible write (for scripts). [env ZCX_YES]",
    )(func)


def confirm_write(summary: str, yes: bool) -> None:
    """Shows what an irreversible write will do and asks, unless --yes. Without a terminal to
    ask on, nothing is sent: the command aborts (exit 1) and says to pass --yes."""
    if yes:
        return
    click.echo(summary, err=True)
    click.confirm("Send it?", abort=True, err=True)


def json_flag(func: F) -> F:
    """--json for a write command: `echo_done` then prints the transaction as JSON."""

    def store(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        ctx.meta["zcx.json"] = value
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=store,
        help="Print the transaction as JSON: full hash, block, ids, amounts.",
    )(func)


def echo_done(verb: str, result: Any, detail: str) -> None:
    """One line for a mined write, or its JSON when the command got --json (`json_flag`)."""
    if click.get_current_context().meta.get("zcx.json"):
        echo_json({"txn_hash": result.txn_hash, "block": result.block, **result.values})
        return
    console().print(
        f"{verb} {detail} [dim](tx {short_hash(result.txn_hash)}, block {result.block})[/dim]"
    )


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


@contextmanager
def session() -> Iterator[ZcxClient]:
    """The connected ZcxClient for the current command; reverts and refusals become one line
    on stderr and exit code 1, never a traceback."""
    from ape.exceptions import ContractLogicError

    meta = click.get_current_context().meta
    try:
        with open_client(
            network=meta.get("zcx.network"),
            rpc=meta.get("zcx.rpc"),
            deployments_dir=meta.get("zcx.deployments_dir") or deployments.DEFAULT_DIR,
        ) as client:
            try:
                yield client
            except ContractLogicError as err:
                raise client._raise_from_ape(err) from None
    except ChainRevert as revert:
        raise ChainFailure(revert) from None
    except (HolderError, ConnectionProblem) as err:
        raise click.ClickException(str(err)) from None


def parse(param: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a zcx.holder parser; a refusal becomes a usage error naming the parameter."""
    try:
        return func(*args, **kwargs)
    except HolderError as err:
        raise click.BadParameter(str(err), param_hint=param) from None


def console() -> Console:
    """Rich output on stdout; wide enough for the lot table when piped to a file."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = max(out.width, 140)
    return out


def echo_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), indent=2, sort_keys=False))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def short_hash(txn_hash: str) -> str:
    return f"{txn_hash[:10]}…{txn_hash[-6:]}"
