"""`zcx holder`: what a wallet holder does with ZCV: claim, look, transfer, pay, retire."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from zcx.commands.common import (
    account_option,
    chain_options,
    confirm_write,
    console,
    echo_json,
    json_option,
    parse,
    session,
    short_hash,
    units_option,
    yes_option,
)
from zcx.holder import (
    Balance,
    CertificateView,
    HolderError,
    RetirementView,
    TxResult,
    format_period,
    format_time,
    format_zcv,
    parse_amount,
    parse_cert_pick,
    parse_meter,
    parse_time,
    payment_reference,
)

CERT_HELP = (
    "Certificate to take units from, as ID:AMOUNT (e.g. 3:1.5, or 3:all); repeat for several. "
    "See the lots in `zcx holder balance`."
)


@click.group()
def holder() -> None:
    """Wallet holders: claim coins for your meters, see your lots, transfer, pay and retire."""


def _done(verb: str, result: TxResult, detail: str, as_json: bool = False) -> None:
    """One line per action; a split action also lists each of its transactions (--json: the
    result with every transaction)."""
    if as_json:
        echo_json({"txn_hash": result.txn_hash, "block": result.block, **result.values})
        return
    transactions = result.values.get("transactions", [])
    if len(transactions) <= 1:
        console().print(
            f"{verb} {detail} [dim](tx {short_hash(result.txn_hash)}, block {result.block})[/dim]"
        )
        return
    out = console()
    out.print(f"{verb} {detail}, split into {len(transactions)} transactions:")
    for number, tx in enumerate(transactions, 1):
        out.print(
            f"  {number}. {tx['method']}: {format_zcv(tx['units'])} ZCV, {len(tx['lots'])} lots "
            f"[dim](tx {short_hash(tx['txn_hash'])}, block {tx['block']})[/dim]"
        )


def _moved(lots: list[tuple[int, int]]) -> str:
    return ", ".join(f"cert {cid}: {format_zcv(units)}" for cid, units in lots)


@holder.command()
@click.argument("address", required=False)
@account_option(required=False)
@json_option
@chain_options
def meters(address: str | None, account_alias: str | None, as_json: bool) -> None:
    """List the meters of ADDRESS (default: --account) with their unclaimed generation."""
    with session() as zcx:
        owner = zcx.address_of(address or _need(account_alias, "ADDRESS or --account"))
        views = zcx.meters(owner)
    if as_json:
        echo_json(views)
        return
    table = Table(title=f"Meters of {owner}")
    for name in ("meter", "method", "capacity W", "zone", "commissioned", "unclaimed kWh", "state"):
        table.add_column(
            name, justify="right" if name in ("capacity W", "unclaimed kWh") else "left"
        )
    for m in views:
        state = "flagged" if m.flagged else ("active" if m.active else "inactive")
        table.add_row(
            m.meter,
            m.method,
            f"{m.capacity_w:,}",
            m.zone,
            format_time(m.commissioned_at),
            f"{m.unclaimed_wh / 1000:.3f}",
            state,
        )
    console().print(table)


@holder.command()
@click.option(
    "--meter",
    "meter_labels",
    multiple=True,
    metavar="LABEL",
    help="Meter to claim for (label such as ALICE-PV); repeat for several. "
    "Default: every meter of the account with unclaimed generation.",
)
@click.option("--registry", help="Generation registry address (default: the deployment's).")
@account_option()
@json_option
@chain_options
def claim(
    meter_labels: tuple[str, ...], registry: str | None, account_alias: str, as_json: bool
) -> None:
    """Claim your meters' verified, unclaimed generation as ZCV (one certificate per clock hour).
    With --json: {"claims": [...]}, one entry per meter claimed (its transaction, the new
    certificate ids, units and ZCV, and each hour)."""
    meter_ids = [parse("--meter", parse_meter, label) for label in meter_labels]
    with session() as zcx:
        sender = zcx.account(account_alias)
        if not meter_ids:
            claimable = zcx.claimable_meters(str(sender.address))
            if not claimable and as_json:
                echo_json({"claims": []})
                return
            if not claimable:
                console().print(f"No meter of {sender.address} has unclaimed generation.")
                return
            meter_ids = [parse_meter(m.meter) for m in claimable]
        claims = []
        for mid in meter_ids:
            result = zcx.claim(sender, mid, registry)
            if as_json:
                claims.append(_claim_json(result))
            else:
                _print_claim(result)
        if as_json:
            echo_json({"claims": claims})


def _claim_json(result: TxResult) -> dict[str, object]:
    v = result.values
    first, count = v["certificate_id"], v["certificates"]
    return {
        "txn_hash": result.txn_hash,
        "block": result.block,
        "meter": v["meter"],
        "certificate_ids": list(range(first, first + count)),
        "units": v["units"],
        "zcv": format_zcv(v["units"]),
        "wh": v["wh"],
        "eligible_wh": v["eligible_wh"],
        "forfeited_wh": v["forfeited_wh"],
        "hours": [
            {
                **hour,
                "hour_start_iso": _hour_iso(hour["hour_start"]),
                "zcv": format_zcv(hour["units"]),
            }
            for hour in v["hours"]
        ],
    }


def _hour_iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _print_claim(result: TxResult) -> None:
    v = result.values
    first, count = v["certificate_id"], v["certificates"]
    ids = {0: "no certificate", 1: f"certificate {first}"}.get(
        count, f"certificates {first}..{first + count - 1}"
    )
    _done(
        "Claimed",
        result,
        f"{format_zcv(v['units'])} ZCV ({v['units']} units for {v['eligible_wh']:,} "
        f"eligible of {v['wh']:,} Wh) from meter {v['meter']} as {ids}, "
        f"one per hour",
    )
    for hour in v["hours"]:
        when = datetime.fromtimestamp(hour["hour_start"], UTC).strftime("%Y-%m-%d %H:00Z")
        console().print(
            f"  {when}  certificate {hour['certificate_id']}: {hour['wh']:,} Wh -> "
            f"{hour['units']} units"
        )
    if v["forfeited_wh"]:
        console().print(f"  {v['forfeited_wh']:,} Wh fell in hours already issued (late readings)")


@holder.command()
@click.argument("address", required=False)
@account_option(required=False)
@json_option
@chain_options
def balance(address: str | None, account_alias: str | None, as_json: bool) -> None:
    """Show the balance of ADDRESS (default: --account), its Fig. 6 counters and its lots."""
    with session() as zcx:
        who = zcx.address_of(address or _need(account_alias, "ADDRESS or --account"))
        view = zcx.balance(who)
    if as_json:
        echo_json(view)
        return
    _print_balance(view)


def _print_balance(view: Balance) -> None:
    out = console()
    out.print(
        f"[bold]{view.address}[/bold]  balance [bold]{view.zcv} ZCV[/bold] ({view.units:,} units)  "
        f"purchased {format_zcv(view.purchased)} · used {format_zcv(view.used)} · "
        f"amortized {format_zcv(view.amortized)}"
    )
    if not view.lots:
        out.print("No certificate lots.")
        return
    if view.frozen:
        out.print(
            f"[red]{format_zcv(view.frozen)} ZCV ({view.frozen:,} units) frozen[/red] "
            "(revoked certificates: held, never spendable)"
        )
    caption = "Spend order: plain transfers take the first lots first; revoked lots are frozen."
    if view.lot_count > len(view.lots):
        caption += f" First {len(view.lots)} of {view.lot_count} lots shown."
    table = Table(caption=caption)
    for name, right in (
        ("lot", True),
        ("certificate", True),
        ("units", True),
        ("kWh", True),
        ("meter", False),
        ("method", False),
        ("period", False),
        ("revoked", False),
    ):
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    for lot in view.lots:
        table.add_row(
            str(lot.index),
            str(lot.certificate_id),
            f"{lot.units:,}",
            lot.kwh,
            lot.meter,
            lot.method,
            format_period(lot.period_start, lot.period_end),
            "[red]REVOKED[/red]" if lot.revoked else "no",
        )
    out.print(table)


@holder.command()
@click.argument("to")
@click.argument("amount")
@units_option
@account_option()
@yes_option
@json_option
@chain_options
def transfer(
    to: str, amount: str, as_units: bool, account_alias: str, yes: bool, as_json: bool
) -> None:
    """Send AMOUNT ZCV to TO (address or account alias): a plain ERC-20 transfer, taking units
    in spend order (largest lots first). More lots than one transaction may visit are sent in
    several transfers (listed)."""
    units = parse("AMOUNT", parse_amount, amount, units=as_units)
    with session() as zcx:
        sender, recipient = zcx.account(account_alias), zcx.address_of(to)
        confirm_write(f"Transfer {format_zcv(units)} ZCV from {sender.address} to {recipient}", yes)
        result = zcx.transfer(sender, recipient, units)
    _done(
        "Transferred",
        result,
        f"{format_zcv(units)} ZCV to {result.values['to']} ({_moved(result.values['lots'])})",
        as_json,
    )


@holder.command("transfer-lots")
@click.argument("to")
@click.option("--cert", "picks", multiple=True, required=True, metavar="ID:AMOUNT", help=CERT_HELP)
@units_option
@account_option()
@yes_option
@json_option
@chain_options
def transfer_lots(
    to: str, picks: tuple[str, ...], as_units: bool, account_alias: str, yes: bool, as_json: bool
) -> None:
    """Send units of specific certificates to TO (transferLots, by certificate id)."""
    wants = [parse("--cert", parse_cert_pick, p, units=as_units) for p in picks]
    with session() as zcx:
        sender, recipient = zcx.account(account_alias), zcx.address_of(to)
        confirm_write(
            f"Transfer from {sender.address} to {recipient}: {_wanted(wants)}",
            yes,
        )
        result = zcx.transfer_lots(sender, recipient, wants)
    _done(
        "Transferred",
        result,
        f"{format_zcv(result.values['units'])} ZCV to "
        f"{result.values['to']} ({_moved(result.values['lots'])})",
        as_json,
    )


@holder.command()
@click.argument("to")
@click.argument("amount")
@click.option(
    "--reference",
    required=True,
    metavar="BILL_ID",
    help="The bill or statement id this pays (at most 32 bytes; recorded on chain).",
)
@units_option
@account_option()
@yes_option
@json_option
@chain_options
def pay(
    to: str,
    amount: str,
    reference: str,
    as_units: bool,
    account_alias: str,
    yes: bool,
    as_json: bool,
) -> None:
    """Pay AMOUNT ZCV to TO for a bill: counted as used coins, tagged with --reference."""
    units = parse("AMOUNT", parse_amount, amount, units=as_units)
    parse("--reference", payment_reference, reference)
    with session() as zcx:
        sender, recipient = zcx.account(account_alias), zcx.address_of(to)
        confirm_write(
            f"Pay {format_zcv(units)} ZCV from {sender.address} to {recipient} "
            f"for {reference.strip()!r}",
            yes,
        )
        result = zcx.pay(sender, recipient, units, reference)
    _done(
        "Paid",
        result,
        f"{format_zcv(units)} ZCV to {result.values['to']} for {result.values['reference']!r}",
        as_json,
    )


@holder.command()
@click.argument("amount", required=False)
@click.option(
    "--cert",
    "picks",
    multiple=True,
    metavar="ID:AMOUNT",
    help=CERT_HELP + " Use instead of AMOUNT to retire named certificates.",
)
@click.option(
    "--beneficiary",
    required=True,
    help="Whose consumption this covers (may differ from the holder).",
)
@click.option("--reason", default="", help="Why, e.g. 'FY2026 Q1 office load'.")
@click.option(
    "--from",
    "start",
    required=True,
    metavar="DATE",
    help="Consumption period start: ISO date (00:00 UTC) or date-time.",
)
@click.option(
    "--to",
    "end",
    required=True,
    metavar="DATE",
    help="Consumption period end: an ISO date is inclusive (the period runs to the "
    "next midnight UTC); a date-time is exclusive.",
)
@units_option
@account_option()
@yes_option
@json_option
@chain_options
def retire(
    amount: str | None,
    picks: tuple[str, ...],
    beneficiary: str,
    reason: str,
    start: str,
    end: str,
    as_units: bool,
    account_alias: str,
    yes: bool,
    as_json: bool,
) -> None:
    """Retire AMOUNT ZCV (or --cert picks) for a beneficiary's consumption period."""
    if (amount is None) == (not picks):
        raise click.UsageError("give either AMOUNT or --cert ID:AMOUNT picks (not both)")
    units = parse("AMOUNT", parse_amount, amount, units=as_units) if amount else None
    wants = [parse("--cert", parse_cert_pick, p, units=as_units) for p in picks]
    period = (parse("--from", parse_time, start), parse("--to", parse_time, end, end=True))
    with session() as zcx:
        sender = zcx.account(account_alias)
        what = f"{format_zcv(units)} ZCV" if units is not None else _wanted(wants)
        confirm_write(
            f"Retire {what} of {sender.address} for {beneficiary!r} "
            f"({format_period(*period)}); retired units are burnt",
            yes,
        )
        result = zcx.retire(sender, units, beneficiary, reason, *period, wants=wants)
    v = result.values
    _done(
        "Retired",
        result,
        f"{format_zcv(v['units'])} ZCV for {beneficiary!r} "
        f"({format_period(*period)}) as retirement "
        f"{', '.join(map(str, v['retirement_ids']))} ({_moved(v['certificates'])})",
        as_json,
    )


@holder.command()
@click.argument("certificate_id", type=click.IntRange(min=1))
@json_option
@chain_options
def certificate(certificate_id: int, as_json: bool) -> None:
    """Show certificate CERTIFICATE_ID: where its units came from and where they stand."""
    with session() as zcx:
        view = zcx.certificate(certificate_id)
    if as_json:
        echo_json(view)
        return
    _print_certificate(view)


def _certificate_status(c: CertificateView) -> str:
    if c.revoked:
        return "[red]REVOKED[/red]"
    return "[red]EXPIRED[/red]" if c.frozen else "valid"


def _print_certificate(c: CertificateView) -> None:
    table = Table(title=f"Certificate {c.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("status", _certificate_status(c)),
        ("meter", c.meter),
        ("owner", c.owner_name),
        ("method", c.method),
        ("generation", f"{c.wh:,} Wh"),
        ("period", format_period(c.period_start, c.period_end)),
        ("zone", c.zone),
        ("capacity", f"{c.capacity_w:,} W"),
        ("units issued", f"{c.units:,} ({format_zcv(c.units)} ZCV)"),
        ("units retired", f"{c.retired_units:,} ({format_zcv(c.retired_units)} ZCV)"),
        ("issued to", c.issued_to),
        ("issued at", format_time(c.issued_at)),
        ("vintage", f"{c.vintage_year} (retire for consumption in this year, JST)"),
        ("expires", format_time(c.expires_at)),
        ("evidence", c.evidence),
        ("registry", c.registry),
        ("schema version", str(c.schema_version)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console().print(table)


@holder.command()
@click.argument("retirement_id", type=click.IntRange(min=1))
@json_option
@chain_options
def retirement(retirement_id: int, as_json: bool) -> None:
    """Show retirement record RETIREMENT_ID: who retired what, for whom, from which certificates."""
    with session() as zcx:
        view = zcx.retirement(retirement_id)
    if as_json:
        echo_json(view)
        return
    _print_retirement(view)


def _print_retirement(r: RetirementView) -> None:
    table = Table(title=f"Retirement {r.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("beneficiary", r.beneficiary),
        ("reason", r.reason or "-"),
        ("consumption", format_period(r.consumption_start, r.consumption_end)),
        ("units", f"{r.units:,} ({format_zcv(r.units)} ZCV)"),
        ("certificates", _moved(r.certificates)),
        ("holder", r.holder),
        ("retired at", format_time(r.retired_at)),
        ("schema version", str(r.schema_version)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console().print(table)


def _wanted(wants: list[tuple[int, int | None]]) -> str:
    return ", ".join(
        f"certificate {cid}: {'all' if units is None else format_zcv(units) + ' ZCV'}"
        for cid, units in wants
    )


def _need(value: str | None, what: str) -> str:
    if not value:
        raise HolderError(f"give {what}")
    return value
