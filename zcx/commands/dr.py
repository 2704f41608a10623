"""`zcx operator dr`: demand-response events (announce, cancel, list), their ERAB High 4 of 5
results from the chain, and settlement of every reward in one transaction.

The rule and a worked example: docs/demand-response.md. Announcing, cancelling and settling need
OPERATOR_ROLE on DemandResponse (TEST::1 on the devnet); `list` and `results` only read.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.table import Table

from zcx.commands.common import (
    account_option,
    chain_options,
    console,
    echo_json,
    json_option,
    parse,
    session,
    short_hash,
)
from zcx.dr import MAX_SLOTS, MAX_SLOTS_HINT, DemandResponseClient, EventResults, reward_for
from zcx.holder import HolderError, format_time, parse_time


def parse_rate(text: str, decimals: int) -> int:
    """A reward per kWh in payment-token units ("30" JPYT) as base units (30 x 10^decimals)."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise HolderError(f"{text!r}: not a number (e.g. 30 for 30 tokens per kWh)") from None
    scaled = value * 10**decimals
    if not value.is_finite() or scaled != scaled.to_integral_value():
        raise HolderError(f"{text!r}: the token has {decimals} decimals")
    if scaled <= 0:
        raise HolderError(f"{text!r}: must be more than zero")
    return int(scaled)


def parse_kwh(text: str) -> int:
    """A target in kWh ("12.5") as whole Wh."""
    try:
        wh = Decimal(text.strip()) * 1000
    except InvalidOperation:
        raise HolderError(f"{text!r}: not a number of kWh") from None
    if not wh.is_finite() or wh < 0 or wh != wh.to_integral_value() or wh >= 2**64:
        raise HolderError(f"{text!r}: give kWh >= 0 with at most 3 decimals (whole Wh)")
    return int(wh)


@click.group()
def dr() -> None:
    """Demand response: announce events, see their High 4 of 5 results, pay the rewards."""


def _tx(result: Any) -> str:
    return f"[dim](tx {short_hash(result.txn_hash)}, block {result.block})[/dim]"


@dr.command("announce")
@click.option("--zone", required=True, help="Grid zone of the meters asked to cut, e.g. TEPCO-13.")
@click.option(
    "--start",
    required=True,
    metavar="TIME",
    help="First slot start, ISO date-time (e.g. 2026-12-03T17:00+09:00); on the registry's "
    "30-minute grid and in the future.",
)
@click.option(
    "--slots", required=True, type=int, help=f"Number of 30-minute slots ({MAX_SLOTS_HINT})."
)
@click.option("--target-kwh", default="0", show_default=True, help="Reduction asked for, kWh.")
@click.option(
    "--rate", required=True, help="Reward in payment-token units per kWh reduced, e.g. 30."
)
@click.option(
    "--member",
    "members",
    multiple=True,
    help="Invited member (address or alias); repeat. Default: every member in the zone.",
)
@account_option()
@json_option
@chain_options
def announce(
    zone: str,
    start: str,
    slots: int,
    target_kwh: str,
    rate: str,
    members: tuple[str, ...],
    account_alias: str,
    as_json: bool,
) -> None:
    """Announce a demand-response event on chain."""
    if not zone.strip():
        raise click.BadParameter("must not be empty", param_hint="--zone")
    start_ts = parse("--start", parse_time, start)
    if not 1 <= slots <= MAX_SLOTS:
        raise click.BadParameter(f"{slots}: give {MAX_SLOTS_HINT}", param_hint="--slots")
    target_wh = parse("--target-kwh", parse_kwh, target_kwh)
    with session() as zcx:
        client = DemandResponseClient.of(zcx)
        rate_units = parse("--rate", parse_rate, rate, int(client.payment_token.decimals()))
        invited = [parse("--member", client.address_of, m) for m in members]
        result = client.announce(
            client.account(account_alias), zone, start_ts, slots, target_wh, rate_units, invited
        )
    if as_json:
        echo_json(result)
        return
    console().print(
        f"Announced demand-response event {result.values['event_id']} in {zone}: "
        f"{format_time(start_ts)} UTC, {slots} slots {_tx(result)}"
    )


@dr.command("cancel")
@click.argument("event_id", type=click.IntRange(min=1))
@account_option()
@json_option
@chain_options
def cancel(event_id: int, account_alias: str, as_json: bool) -> None:
    """Cancel event EVENT_ID before it starts."""
    with session() as zcx:
        client = DemandResponseClient.of(zcx)
        result = client.cancel(client.account(account_alias), event_id)
    if as_json:
        echo_json(result)
        return
    console().print(f"Cancelled demand-response event {event_id} {_tx(result)}")


@dr.command("list")
@json_option
@chain_options
def list_events(as_json: bool) -> None:
    """Every demand-response event with its state."""
    with session() as zcx:
        events = list(DemandResponseClient.of(zcx).events().values())
    if as_json:
        echo_json(events)
        return
    table = Table(title=f"{len(events)} demand-response events")
    for name in (
        "id",
        "zone",
        "start (UTC)",
        "slots",
        "target kWh",
        "rate/kWh",
        "members",
        "state",
    ):
        table.add_column(name)
    for e in events:
        table.add_row(
            str(e.event_id), e.zone, format_time(e.start), str(e.slots), f"{e.target_wh / 1000:g}",
            str(e.reward_per_kwh), str(len(e.participants) or "zone"), e.status,
        )  # fmt: skip
    console().print(table)


def _results_table(results: EventResults, decimals: int) -> Table:
    e = results.event
    table = Table(
        title=f"Event {e.event_id} ({e.zone}, {format_time(e.start)}–{format_time(e.end)[11:]} "
        f"UTC): {results.total_reduced_wh:,} Wh reduced of {e.target_wh:,} Wh asked"
    )
    for name in ("member", "status", "chosen days (of 5)", "baseline Wh", "actual Wh",
                 "reduced Wh", "reward"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("member", "status") else "right")
    for m in results.members:
        row = m.summary()
        table.add_row(
            m.member, m.status, row["chosen_days"], f"{m.baseline_wh:,.2f}", f"{m.actual_wh:,}",
            f"{m.reduced_wh:,}", f"{m.reward / 10**decimals:,.6g}",
        )  # fmt: skip
    return table


def _results_json(results: EventResults) -> dict[str, Any]:
    return {
        "event": results.event,
        "total_reduced_wh": results.total_reduced_wh,
        "total_reward": results.total_reward,
        "members": [
            {
                **m.summary(),
                "candidates": m.candidates.astype({"date": str}).to_dict("records"),
                "slots": m.slots.to_dict("records"),
            }
            for m in results.members
        ],
    }


@dr.command("results")
@click.argument("event_id", type=click.IntRange(min=1))
@json_option
@chain_options
def results(event_id: int, as_json: bool) -> None:
    """Baselines, actual demand and reductions of event EVENT_ID, from the readings on chain."""
    with session() as zcx:
        client = DemandResponseClient.of(zcx)
        found = client.results(event_id)
        decimals = int(client.payment_token.decimals())
    if as_json:
        echo_json(_results_json(found))
        return
    console().print(_results_table(found, decimals))


@dr.command("settle")
@click.argument("event_id", type=click.IntRange(min=1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@account_option()
@json_option
@chain_options
def settle(event_id: int, yes: bool, account_alias: str, as_json: bool) -> None:
    """Measure event EVENT_ID's reductions from the chain and pay every reward in one
    transaction (approving the payment token first when needed)."""
    with session() as zcx:
        client = DemandResponseClient.of(zcx)
        sender = client.account(account_alias)
        found = client.results(event_id)
        client.ensure_ended(found.event)
        decimals = int(client.payment_token.decimals())
        if not as_json:
            console().print(_results_table(found, decimals))
        members, reduced = found.payout()
        total = sum(reward_for(r, found.event.reward_per_kwh) for r in reduced)
        if not yes:
            click.confirm(
                f"Pay {total / 10**decimals:,.6g} tokens to {len(members)} members?", abort=True
            )
        result = client.settle(sender, found)
    if as_json:
        echo_json({"settlement": result, **_results_json(found)})
        return
    console().print(
        f"Settled event {event_id}: {result.values['total_paid'] / 10**decimals:,.6g} tokens to "
        f"{result.values['members']} members {_tx(result)}"
    )
