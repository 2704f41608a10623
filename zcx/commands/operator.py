"""`zcx operator`: the operator's registry commands (members, meters, flags, revocations).

Every command needs the operator's key (OPERATOR_ROLE on MemberRegistry, REVOKER_ROLE on ZCV);
on the local devnet that is TEST::1.
"""

from __future__ import annotations

import click
from rich.table import Table

from zcx.cli import LazyGroup
from zcx.commands.common import (
    account_option,
    chain_options,
    confirm_write,
    console,
    echo_done,
    echo_json,
    json_flag,
    json_option,
    parse,
    session,
    yes_option,
)
from zcx.holder import (
    GENERATION_METHODS,
    MEMBER_KINDS,
    TxResult,
    choice_index,
    format_time,
    parse_meter,
    parse_time,
)

KIND_NAMES = ("household", "public-facility", "business", "generator", "operator")
METHOD_NAMES = tuple(m.lower() for m in GENERATION_METHODS)


@click.group(
    cls=LazyGroup,
    lazy={
        "reports": (
            "zcx.operator.cli:cli",
            "From the chain: the 30-minute balance and monthly statements.",
        ),
        "dr": (
            "zcx.commands.dr:dr",
            "Demand response: announce events, High 4 of 5 results, pay rewards.",
        ),
    },
)
def operator() -> None:
    """The operator: members and meters, flags, revocations, the reports (balance,
    statements) and demand response."""


def _done(verb: str, result: TxResult, detail: str) -> None:
    echo_done(verb, result, detail)


@operator.command("register-member")
@click.argument("address")
@click.option("--name", required=True, help="Display name or title, e.g. 'Alice Tanaka'.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(KIND_NAMES, case_sensitive=False),
    help="The patent's actor kind.",
)
@json_flag
@account_option()
@chain_options
def register_member(address: str, name: str, kind: str, account_alias: str) -> None:
    """Register ADDRESS (address or account alias) as a member."""
    kind_index = parse("--kind", choice_index, kind, MEMBER_KINDS, "member kind")
    with session() as zcx:
        sender = zcx.account(account_alias)
        result = zcx.register_member(sender, zcx.address_of(address), name, kind_index)
    _done(
        "Registered",
        result,
        f"member {result.values['account']} ({name!r}, {result.values['kind']})",
    )


@operator.command("register-meter")
@click.argument("label")
@click.option("--owner", required=True, help="The owning member (address or account alias).")
@click.option(
    "--method",
    required=True,
    type=click.Choice(METHOD_NAMES, case_sensitive=False),
    help="Generation method; it never changes once registered.",
)
@click.option(
    "--capacity-w",
    required=True,
    type=click.IntRange(0, 2**32 - 1),
    help="Rated capacity in W (0 for a consumption-only meter).",
)
@click.option("--zone", required=True, help="Grid zone or location code, e.g. TEPCO-13.")
@click.option(
    "--commissioned",
    required=True,
    metavar="DATE",
    help="Commissioning date or date-time (ISO; in --tz/ZCX_TZ, default UTC, unless an offset "
    "is given); earlier readings are refused.",
)
@json_flag
@account_option()
@chain_options
def register_meter(
    label: str,
    owner: str,
    method: str,
    capacity_w: int,
    zone: str,
    commissioned: str,
    account_alias: str,
) -> None:
    """Register meter LABEL (at most 32 bytes, e.g. ALICE-PV) for a member."""
    meter = parse("LABEL", parse_meter, label)
    method_index = parse("--method", choice_index, method, GENERATION_METHODS, "method")
    commissioned_at = parse("--commissioned", parse_time, commissioned)
    with session() as zcx:
        sender = zcx.account(account_alias)
        result = zcx.register_meter(
            sender, meter, zcx.address_of(owner), method_index, capacity_w, zone, commissioned_at
        )
    _done(
        "Registered",
        result,
        f"meter {result.values['meter']} ({result.values['method']}, "
        f"{capacity_w:,} W, {zone}, from {format_time(commissioned_at)}) for "
        f"{result.values['owner']}",
    )


@operator.command("flag-meter")
@click.argument("label")
@click.option("--reason", required=True, help="Why (recorded in the MeterFlagged event).")
@click.option("--clear", is_flag=True, help="Clear the flag instead of setting it.")
@json_flag
@account_option()
@chain_options
def flag_meter(label: str, reason: str, clear: bool, account_alias: str) -> None:
    """Flag meter LABEL as suspicious (the exchange then refuses its claims), or --clear it."""
    meter = parse("LABEL", parse_meter, label)
    with session() as zcx:
        sender = zcx.account(account_alias)
        result = zcx.flag_meter(sender, meter, not clear, reason)
    _done("Cleared" if clear else "Flagged", result, f"meter {result.values['meter']}")


@operator.command("revoke-certificate")
@click.argument("certificate_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why (recorded in the CertificateRevoked event).")
@json_flag
@account_option()
@chain_options
def revoke_certificate(certificate_id: int, reason: str, account_alias: str) -> None:
    """Revoke certificate CERTIFICATE_ID: its units can no longer move or be retired."""
    with session() as zcx:
        sender = zcx.account(account_alias)
        result = zcx.revoke_certificate(sender, certificate_id, reason)
    _done("Revoked", result, f"certificate {certificate_id}")


@operator.command("members")
@json_option
@chain_options
def members(as_json: bool) -> None:
    """List every registered member: account, name, kind, state and number of meters."""
    with session() as zcx:
        views = zcx.member_list()
    if as_json:
        echo_json(views)
        return
    table = Table(title=f"{len(views)} members")
    for name in ("account", "name", "kind", "state", "meters"):
        table.add_column(name, justify="right" if name == "meters" else "left")
    for m in views:
        table.add_row(
            m.account, m.name, m.kind, "active" if m.active else "inactive", str(m.meters)
        )
    console().print(table)


@operator.command("meters")
@click.option("--owner", help="Only this member's meters (address or account alias).")
@json_option
@chain_options
def meters(owner: str | None, as_json: bool) -> None:
    """List the meters of every member (or of --owner) with their state."""
    with session() as zcx:
        owners = [zcx.address_of(owner)] if owner else [m.account for m in zcx.member_list()]
        views = [view for account in owners for view in zcx.meters(account)]
    if as_json:
        echo_json(views)
        return
    table = Table(title=f"{len(views)} meters")
    for name in ("meter", "owner", "method", "capacity W", "zone", "state"):
        table.add_column(name, justify="right" if name == "capacity W" else "left")
    for m in views:
        state = "flagged" if m.flagged else ("active" if m.active else "inactive")
        table.add_row(m.meter, m.owner, m.method, f"{m.capacity_w:,}", m.zone, state)
    console().print(table)


@operator.command("deactivate-meter")
@click.argument("label")
@click.option("--reactivate", is_flag=True, help="Make an inactive meter active again.")
@yes_option
@account_option()
@json_option
@chain_options
def deactivate_meter(
    label: str, reactivate: bool, yes: bool, account_alias: str, as_json: bool
) -> None:
    """Deactivate meter LABEL: the registry refuses its readings from now on (its recorded
    readings and issued coins stay). A meter's owner never changes: to move a meter, deactivate
    it and register a new id."""
    meter = parse("LABEL", parse_meter, label)
    verb = "reactivate" if reactivate else "deactivate"
    confirm_write(f"{verb.capitalize()} meter {label}", yes)
    with session() as zcx:
        sender = zcx.account(account_alias)
        result = zcx.set_meter_active(sender, meter, reactivate)
    if as_json:
        echo_json(result)
        return
    _done(f"{verb.capitalize()}d", result, f"meter {result.values['meter']}")
