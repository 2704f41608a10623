"""`zcx oracle gateways ...`: meter gateways, their tokens, and the meters each may report.

Mounted on the oracle CLI by oracle/cli.py. Binding checks the chain: a gateway may report only
meters that the deployment's MemberRegistry knows, so a typo never becomes a silent lock-out.
"""

from __future__ import annotations

import json
from typing import Any

import click

from oracle.settings import OracleSettings


def _settings(ctx: click.Context) -> OracleSettings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


@click.group()
def gateways() -> None:
    """Manage meter gateways, their tokens and their meter bindings."""


@gateways.command("add")
@click.argument("name")
@click.pass_context
def gateway_add(ctx: click.Context, name: str) -> None:
    """Create gateway NAME and print its token (shown once; stored hashed)."""
    from oracle.store import Store

    try:
        click.echo(Store(_settings(ctx).db_path).add_gateway(name))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@gateways.command("rotate")
@click.argument("name")
@click.pass_context
def gateway_rotate(ctx: click.Context, name: str) -> None:
    """Issue a new token for NAME; the old one stops working."""
    from oracle.store import Store

    try:
        click.echo(Store(_settings(ctx).db_path).rotate_token(name))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@gateways.command("remove")
@click.argument("name")
@click.pass_context
def gateway_remove(ctx: click.Context, name: str) -> None:
    """Delete gateway NAME and its bindings."""
    from oracle.store import Store

    try:
        Store(_settings(ctx).db_path).remove_gateway(name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@gateways.command("bind")
@click.argument("name")
@click.argument("meters", nargs=-1, required=True)
@click.pass_context
def gateway_bind(ctx: click.Context, name: str, meters: tuple[str, ...]) -> None:
    """Allow gateway NAME to report METERS (meter labels). Each meter must be registered in the
    deployment's MemberRegistry on chain (`zcx operator register-meter`); nothing is bound
    otherwise."""
    from oracle.store import Store

    settings = _settings(ctx)
    ids = {meter: _meter_id_param(meter) for meter in meters}
    chain_id, specs = _registered_meters(settings, list(ids.values()))
    for meter, spec in zip(ids, specs, strict=True):
        if not spec.known:
            raise click.ClickException(
                f"meter {meter!r} is not registered in the MemberRegistry of chain {chain_id}; "
                "register it first (`zcx operator register-meter`)"
            )
        if not spec.active:
            click.echo(
                f"warning: meter {meter!r} is deactivated; its readings are refused until the "
                "operator reactivates it",
                err=True,
            )
    try:
        Store(settings.db_path).bind(name, meters)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _meter_id_param(label: str) -> bytes:
    from zcx.ids import meter_id

    try:
        return meter_id(label)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="METERS") from None


def _registered_meters(settings: OracleSettings, ids: list[bytes]) -> tuple[int, list[Any]]:
    """The chain id and each id's MeterSpec, from the chain the oracle serves; one clear line
    when the chain or its deployment cannot be read."""
    from oracle.chain import Chain, ChainMismatch, ChainUnavailable

    chain = Chain(settings.rpc_url, settings.deployments_dir, settings.rpc_timeout_s)
    try:
        chain.connect()
        return chain.chain_id, chain.meter_specs(ids)
    except (ChainMismatch, ChainUnavailable) as exc:
        raise click.ClickException(
            f"cannot check the meters on chain, nothing bound: {exc}"
        ) from None


@gateways.command("unbind")
@click.argument("name")
@click.argument("meters", nargs=-1, required=True)
@click.pass_context
def gateway_unbind(ctx: click.Context, name: str, meters: tuple[str, ...]) -> None:
    """Stop gateway NAME from reporting METERS."""
    from oracle.store import Store

    Store(_settings(ctx).db_path).unbind(name, meters)


@gateways.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each gateway's meters.")
@click.pass_context
def gateway_list(ctx: click.Context, as_json: bool) -> None:
    """Gateways and the meters each may report."""
    from oracle.store import Store

    bound = Store(_settings(ctx).db_path).bindings()
    if as_json:
        click.echo(json.dumps([{"gateway": g, "meters": m} for g, m in bound.items()], indent=2))
        return
    if not bound:
        click.echo("no gateways (`zcx oracle gateways add NAME`)")
    for gateway, meters in bound.items():
        click.echo(f"{gateway}\t{len(meters)} meters\t{', '.join(meters) or '-'}")
