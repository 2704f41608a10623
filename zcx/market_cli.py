"""`zcx market`: sell and buy ZCV with its certificates, see the order book, pay statements.

Mounted by zcx/cli.py as the `market` group (`"market": ("zcx.market_cli:cli", ...)`).
Every command takes --network/--rpc/--deployments (which node and deployment) and, when it
signs, --account. The market's address comes from the deployment record ("ZcvMarket") or
--market.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from rich.table import Table

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
    units_option,
    yes_option,
)
from zcx.holder import TxResult, format_zcv, parse_amount, parse_cert_pick, parse_time
from zcx.market import (
    ANY_METHOD,
    MarketClient,
    describe_listing,
    format_token,
    method_index,
    unit_price_from_kwh,
)

CERT_HELP = "Certificate and amount, as ID:AMOUNT (e.g. 3:1.5); repeat for several."


def market_option(func):  # type: ignore[no-untyped-def]
    return click.option(
        "--market",
        "market_address",
        envvar="ZCX_MARKET",
        help="Market address (default: ZcvMarket in the deployment record). [env ZCX_MARKET]",
    )(func)


@contextmanager
def market_session(market_address: str | None) -> Iterator[MarketClient]:
    with session() as client:
        yield MarketClient.of(client, market_address)


def _done(verb: str, result: TxResult, detail: str) -> None:
    echo_done(verb, result, detail)


@click.group()
def cli() -> None:
    """The ZCV market: list, buy, cancel, the order book, and paying statements."""


@cli.command("list")
@click.option("--cert", "certs", multiple=True, required=True, help=CERT_HELP)
@click.option(
    "--price", required=True, help="Price per kWh (1 ZCV) in the payment token, e.g. 3.5."
)
@click.option("--expires", default=None, help="Expiry (ISO date-time); default: in 7 days.")
@click.option("--method", default="any", show_default=True, help="Restrict to solar, wind, ...")
@click.option("--period-from", default=None, help="Restrict certificates to this period start.")
@click.option("--period-to", default=None, help="... and this period end (inclusive date).")
@units_option
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def list_command(
    certs: tuple[str, ...],
    price: str,
    expires: str | None,
    method: str,
    period_from: str | None,
    period_to: str | None,
    as_units: bool,
    yes: bool,
    account_alias: str,
    market_address: str | None,
) -> None:
    """List certificates for sale in one transaction: from your deposit at the market first,
    the rest from your wallet (the market is approved for it as needed)."""
    wants = []
    for text in certs:
        cid, units = parse("--cert", parse_cert_pick, text, units=as_units)
        if units is None:
            raise click.BadParameter("give an amount to list, e.g. 3:1.5", param_hint="--cert")
        wants.append((cid, units))
    method_id = parse("--method", method_index, method)
    period = (0, 0)
    if period_from or period_to:
        if not (period_from and period_to):
            raise click.UsageError("give both --period-from and --period-to")
        period = (
            parse("--period-from", parse_time, period_from),
            parse("--period-to", parse_time, period_to, end=True),
        )
    with market_session(market_address) as mc:
        seller = mc.account(account_alias)
        unit_price = parse("--price", unit_price_from_kwh, price, mc.token_decimals)
        expiry = parse("--expires", parse_time, expires) if expires else mc._now() + 7 * 86400
        confirm_write(
            f"List {_picks(wants)} of {seller.address} at {price} {mc.token_symbol}/kWh "
            "(the market takes custody until sold, cancelled or expired)",
            yes,
        )
        result = mc.list_lots(seller, wants, unit_price, expiry, method_id, period)
    _done(
        "Listed",
        result,
        f"#{result.values['listing_id']}: {format_zcv(result.values['units'])} ZCV at {price}/kWh",
    )


@cli.command()
@click.argument("listing_id", type=int)
@click.argument("amount")
@click.option(
    "--max-total",
    default=None,
    help="Most you pay in total (token units, e.g. 10.5); default: the current quote.",
)
@units_option
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def buy(
    listing_id: int,
    amount: str,
    max_total: str | None,
    as_units: bool,
    yes: bool,
    account_alias: str,
    market_address: str | None,
) -> None:
    """Buy AMOUNT ZCV of LISTING_ID at its listed price (approves the payment token as needed)."""
    units = parse("AMOUNT", parse_amount, amount, units=as_units)
    with market_session(market_address) as mc:
        buyer = mc.account(account_alias)
        cap = None
        if max_total is not None:
            cap = parse("--max-total", _token_amount, max_total, mc.token_decimals)
        limit = f"at most {max_total} {mc.token_symbol}" if cap else "at the listed price"
        confirm_write(f"Buy {format_zcv(units)} ZCV of listing #{listing_id}, {limit}", yes)
        result = mc.buy(buyer, listing_id, units, cap)
        cost = format_token(result.values["cost"], mc.token_decimals)
        symbol = mc.token_symbol
    certs = ", ".join(f"cert {c}: {format_zcv(u)}" for c, u in result.values["certificates"])
    _done(
        "Bought", result, f"{format_zcv(units)} ZCV of #{listing_id} for {cost} {symbol} ({certs})"
    )


@cli.command()
@click.argument("listing_id", type=int)
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def cancel(listing_id: int, yes: bool, account_alias: str, market_address: str | None) -> None:
    """Cancel LISTING_ID (yours, or anyone's once expired); its units return to the seller."""
    with market_session(market_address) as mc:
        confirm_write(f"Cancel listing #{listing_id} (its units return to the seller)", yes)
        result = mc.cancel(mc.account(account_alias), listing_id)
    frozen = result.values["frozen_units"]
    note = f", {format_zcv(frozen)} ZCV frozen (revoked)" if frozen else ""
    _done(
        "Cancelled",
        result,
        f"#{listing_id}: {format_zcv(result.values['returned_units'])} ZCV returned{note}",
    )


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Show filled, cancelled and expired too.")
@json_option
@market_option
@chain_options
def book(show_all: bool, as_json: bool, market_address: str | None) -> None:
    """The order book, rebuilt from the market's events: open listings, cheapest first."""
    with market_session(market_address) as mc:
        order_book = mc.order_book()
        now = mc._now()
        decimals, symbol = mc.token_decimals, mc.token_symbol
    views = (
        sorted(order_book.listings.values(), key=lambda v: v.id)
        if show_all
        else order_book.open(now)
    )
    if as_json:
        echo_json(views)
        return
    rows = [describe_listing(v, decimals, symbol) for v in views]
    table = Table(
        title=f"ZCV order book ({len(rows)} listings; traded "
        f"{format_zcv(order_book.volume_units)} ZCV for "
        f"{format_token(order_book.volume_cost, decimals)} {symbol})"
    )
    for name in (
        "id",
        "seller",
        "price",
        "remaining",
        "method",
        "period",
        "certificates",
        "fee",
        "expires",
        "status",
    ):
        table.add_column(name, justify="right" if name in ("id", "price", "remaining") else "left")
    for row in rows:
        table.add_row(*row.values())
    console().print(table)


@cli.command()
@click.option(
    "--cert",
    "certs",
    multiple=True,
    required=True,
    help="Certificate and amount, ID:AMOUNT or ID:all (your whole deposit of it).",
)
@units_option
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def withdraw(
    certs: tuple[str, ...],
    as_units: bool,
    yes: bool,
    account_alias: str,
    market_address: str | None,
) -> None:
    """Return units from your deposit at the market to your wallet (any time)."""
    wants = [parse("--cert", parse_cert_pick, c, units=as_units) for c in certs]
    with market_session(market_address) as mc:
        confirm_write(f"Withdraw {_picks(wants)} from your deposit at the market", yes)
        result = mc.withdraw(mc.account(account_alias), wants)
    _done("Withdrew", result, f"{format_zcv(result.values['units'])} ZCV")


@cli.command()
@click.option(
    "--cert",
    "certs",
    multiple=True,
    required=True,
    help="Certificate and amount, ID:AMOUNT or ID:all, from your wallet.",
)
@units_option
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def deposit(
    certs: tuple[str, ...],
    as_units: bool,
    yes: bool,
    account_alias: str,
    market_address: str | None,
) -> None:
    """Move certificates from your wallet to your deposit at the market (optional: `list`
    pulls from the wallet itself)."""
    wants = [parse("--cert", parse_cert_pick, c, units=as_units) for c in certs]
    with market_session(market_address) as mc:
        confirm_write(f"Deposit {_picks(wants)} from your wallet at the market", yes)
        result = mc.deposit(mc.account(account_alias), wants)
    _done("Deposited", result, f"{format_zcv(result.values['units'])} ZCV")


@cli.command()
@click.argument("seller")
@json_option
@market_option
@chain_options
def deposits(seller: str, as_json: bool, market_address: str | None) -> None:
    """SELLER's deposit at the market per certificate (withdrawable any time; frozen units of a
    revoked certificate included), rebuilt from the market's events."""
    with market_session(market_address) as mc:
        held = mc.deposits(mc.address_of(seller))
    if as_json:
        echo_json([{"certificate_id": c, "units": u} for c, u in held.items()])
        return
    if not held:
        console().print("no deposit at the market")
        return
    for certificate_id, units in held.items():
        console().print(f"cert {certificate_id}: {format_zcv(units)} ZCV")


@cli.command("pay-statement")
@click.argument("statement_id")
@click.option(
    "--zcv",
    "in_zcv",
    is_flag=True,
    help="Pay in ZCV at the operator's rate (counted as used coins).",
)
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def pay_statement(
    statement_id: str, in_zcv: bool, yes: bool, account_alias: str, market_address: str | None
) -> None:
    """Pay the operator's statement STATEMENT_ID (e.g. 2026-04-0x90f79bf6)."""
    with market_session(market_address) as mc:
        how = "in ZCV at the operator's rate" if in_zcv else f"in {mc.token_symbol}, the amount due"
        confirm_write(f"Pay statement {statement_id} {how}", yes)
        result = mc.pay_statement(mc.account(account_alias), statement_id, in_zcv)
        if in_zcv:
            detail = f"{format_zcv(result.values['units'])} ZCV (the operator confirms it)"
        else:
            detail = f"{format_token(result.values['amount'], mc.token_decimals)} {mc.token_symbol}"
    _done("Paid", result, f"statement {statement_id}: {detail}")


@cli.command("post-statement")
@click.argument("statement_id")
@click.argument("member")
@click.argument("amount")
@click.option("--due", default=None, help="Due date (ISO); informational.")
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def post_statement(
    statement_id: str,
    member: str,
    amount: str,
    due: str | None,
    yes: bool,
    account_alias: str,
    market_address: str | None,
) -> None:
    """Operator: post STATEMENT_ID for MEMBER, AMOUNT due in the payment token (e.g. 1234)."""
    with market_session(market_address) as mc:
        due_at = parse("--due", parse_time, due) if due else 0
        amount_due = parse("AMOUNT", _token_amount, amount, mc.token_decimals)
        confirm_write(
            f"Post statement {statement_id}: {amount} {mc.token_symbol} due from {member}", yes
        )
        result = mc.post_statement(
            mc.account(account_alias), statement_id, mc.address_of(member), amount_due, due_at
        )
        due_text = f"{format_token(amount_due, mc.token_decimals)} {mc.token_symbol}"
    units = result.values["units_due"]
    alt = f" or {format_zcv(units)} ZCV" if units else ""
    _done("Posted", result, f"statement {statement_id}: {due_text} due{alt}")


@cli.command("confirm-zcv")
@click.argument("statement_id")
@yes_option
@json_flag
@account_option()
@market_option
@chain_options
def confirm_zcv(
    statement_id: str, yes: bool, account_alias: str, market_address: str | None
) -> None:
    """Operator: mark STATEMENT_ID paid in ZCV after checking the member's Paid events."""
    with market_session(market_address) as mc:
        confirm_write(f"Mark statement {statement_id} paid in ZCV", yes)
        result = mc.confirm_zcv_payment(mc.account(account_alias), statement_id)
    _done("Confirmed", result, f"statement {statement_id} paid in ZCV")


@cli.command()
@click.argument("recipient")
@click.argument("amount")
@click.option(
    "--account",
    "account_alias",
    envvar="ZCX_FAUCET_ACCOUNT",
    metavar="ALIAS",
    help="Who mints (needs MINTER_ROLE on the mock). Default: the devnet's minter, the test "
    "account that holds it (TEST::1 after `ape run deploy`). [env ZCX_FAUCET_ACCOUNT]",
)
@yes_option
@json_flag
@chain_options
def faucet(recipient: str, amount: str, account_alias: str | None, yes: bool) -> None:
    """Devnet only: mint AMOUNT of the mock payment token (JPYT) to RECIPIENT (an address,
    alias or TEST::<n>), e.g. `zcx market faucet TEST::4 10000`. Refused on any other chain
    and on a deployment whose payment token is not the mock."""
    from zcx.faucet import Faucet, parse_token_amount

    with session() as client:
        tap = Faucet(client)  # refused here (exit 1) off the devnet or without the mock
        to = parse("RECIPIENT", client.address_of, recipient)
        base_units = parse("AMOUNT", parse_token_amount, amount, tap.decimals)
        minter = tap.minter(account_alias)
        confirm_write(f"Mint {tap.show(base_units)} (devnet mock) to {to}", yes)
        result = tap.mint(minter, to, base_units)
    _done(
        "Minted",
        result,
        f"{result.values['amount']} {tap.symbol} to {to} (balance {result.values['balance']})",
    )


def _picks(wants: Sequence[tuple[int, int | None]]) -> str:
    """What a --cert list moves, in words: 'certificate 1: 0.500 ZCV, certificate 3: all'."""
    return ", ".join(
        f"certificate {cid}: {'all' if units is None else format_zcv(units) + ' ZCV'}"
        for cid, units in wants
    )


def _token_amount(text: str, decimals: int) -> int:
    from decimal import Decimal, InvalidOperation

    from zcx.market import MarketProblem

    try:
        value = Decimal(text.strip().replace("_", "")) * (Decimal(10) ** decimals)
    except InvalidOperation:
        raise MarketProblem(f"amount {text!r}: not a number") from None
    if value <= 0 or value != value.to_integral_value():
        raise MarketProblem(f"amount {text!r}: a positive amount with at most {decimals} decimals")
    return int(value)


__all__ = ["ANY_METHOD", "cli"]
