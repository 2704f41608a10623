"""The ZCV market from Python: list, buy, cancel, the order book, and paying statements.

What `zcx market` (zcx/market_cli.py), the demo and any script call. Contracts:
contracts/ZcvMarket.sol (design in docs/market.md: the market holds listed and deposited units
itself and moves them by certificate id), and on the devnet contracts/MockYenToken.sol (JPYT).

Three layers:
- pure helpers: price conversion, statement references, listing contents, and `OrderBook`, which
  rebuilds every listing and every deposit from the market's events alone (what an auditor or UI
  does);
- `deploy_market` / `deploy_mock_yen`: deployment helpers for `ape run deploy`, tests and benches;
- `MarketClient`, a `ZcxClient` (zcx.holder) that also knows the market: every transaction is
  simulated first, so a revert comes back as the contract's custom error in plain words.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from eth_utils import to_checksum_address

from zcx import domain
from zcx.errors import DecodedError, ErrorDecoder
from zcx.holder import (
    CONTRACT_NAMES,
    GENERATION_METHODS,
    ChainRevert,
    HolderError,
    TxResult,
    ZcxClient,
    format_zcv,
)

log = logging.getLogger(__name__)

ANY_METHOD = 255
BPS = 10_000
UNITS_PER_KWH = 1000  # 1 ZCV unit = 1 Wh at the default rate
LISTING_STATUSES = ("None", "Open", "Filled", "Cancelled")
STATEMENT_STATUSES = ("None", "Open", "PaidInToken", "PaidInZcv", "Voided")
MARKET_CONTRACT = "ZcvMarket"
PAYMENT_TOKEN_CONTRACT = "MockYenToken"
MARKET_EVENTS = (
    "Listed",
    "Bought",
    "PriceUpdated",
    "Cancelled",
    "Deposited",
    "Withdrawn",
    "DepositUsed",
)
MAX_LISTING_CERTIFICATES = 32  # ZcvMarket.MAX_LISTING_CERTIFICATES
DEFAULT_DEADLINE_SECONDS = 600
LOG_PAGE_BLOCKS = 5_000

# Plain sentences for the market's custom errors (zcx.errors.SENTENCES covers the core contracts).
MARKET_SENTENCES: dict[str, str] = {
    "MarketZeroUnits": "the amount must be more than zero units",
    "MarketZeroPrice": "the price must be more than zero",
    "MarketZeroAmount": "the amount must be more than zero",
    "MarketBadExpiry": "the expiry {expiry} is not in the future",
    "MarketBadPeriod": "the period must end after it starts",
    "MarketTooManyCertificates": "name at most {maxCertificates} certificates per listing or "
    "deposit",
    "MarketLotsUnordered": "list each certificate once, in ascending id order ({certificateId})",
    "MarketCertificateOutsideRestriction": "certificate {certificateId} does not meet the "
    "listing's method or period restriction",
    "MarketCertificateRevoked": "certificate {certificateId} of listing {listingId} is revoked; "
    "its units cannot be sold",
    "MarketInsufficientDeposit": "your deposit at the market holds only {available} units of "
    "certificate {certificateId} ({requested} asked)",
    "MarketNothingToRecover": "the market holds only {surplus} units of certificate "
    "{certificateId} beyond its books ({requested} asked)",
    "MarketUseRecoverLots": "ZCV at the market is recovered with recoverLots, by certificate",
    "MarketUnknownListing": "there is no listing {listingId}",
    "MarketListingNotOpen": "listing {listingId} is closed",
    "MarketListingExpired": "listing {listingId} expired at {expiry}",
    "MarketDeadlinePassed": "the buy's deadline passed before it was mined; quote again",
    "MarketPriceAboveMax": "the fill would cost {cost}, above your maximum {maxTotalPrice} "
    "(the price changed since the quote?)",
    "MarketNotEnoughUnits": "listing {listingId} has only {remaining} units left",
    "MarketNotSeller": "only the seller may do this before the listing expires",
    "MarketSelfTrade": "you cannot buy your own listing {listingId}",
    "MarketFeeTooHigh": "the fee {feeBps} bps exceeds the maximum {maxFeeBps} bps",
    "MarketStatementExists": "this statement was already posted",
    "MarketUnknownStatement": "no such statement on chain (not posted yet?)",
    "MarketStatementNotOpen": "the statement is no longer open (paid or voided)",
    "MarketZcvNotAccepted": "this statement cannot be paid in ZCV (no conversion rate was set)",
    "MarketStatementAboveMax": "the statement is {amountDue}, above your maximum {maxAmount}",
    "ReentrancyGuardReentrantCall": "re-entrant call refused",
}


class MarketProblem(HolderError):
    """A market request refused before it reaches the chain."""


# ---------------------------------------------------------------------------- pure helpers


def unit_price_from_kwh(price_per_kwh: str | Decimal, decimals: int) -> int:
    """Payment-token base units per ZCV unit (Wh) for a price per kWh (1 ZCV), exactly.

    >>> unit_price_from_kwh("3", 18)  # 3 JPYT per kWh
    3000000000000000
    """
    try:
        price = Decimal(str(price_per_kwh).strip().replace("_", ""))
    except InvalidOperation:
        raise MarketProblem(f"price {price_per_kwh!r}: not a number (e.g. 3.5 per kWh)") from None
    if not price.is_finite() or price <= 0:
        raise MarketProblem(f"price {price_per_kwh!r}: must be a positive number")
    scaled = price * (Decimal(10) ** decimals) / UNITS_PER_KWH
    if scaled != scaled.to_integral_value():
        raise MarketProblem(
            f"price {price_per_kwh!r} per kWh is not a whole number of base units per Wh "
            f"with a {decimals}-decimal payment token"
        )
    return int(scaled)


def format_kwh_price(unit_price: int, decimals: int) -> str:
    """Base units per unit (Wh) -> token per kWh, e.g. 3e15 with 18 decimals -> '3'."""
    value = Decimal(unit_price) * UNITS_PER_KWH / (Decimal(10) ** decimals)
    return f"{value.normalize():f}"


def format_token(amount: int, decimals: int) -> str:
    value = Decimal(amount) / (Decimal(10) ** decimals)
    return f"{value.normalize():,f}"


def statement_reference(statement_id: str) -> bytes:
    """The bytes32 for a statement: the one payment reference (zcx.domain.payment_reference)."""
    try:
        return domain.payment_reference(statement_id)
    except domain.PaymentReferenceError as err:
        raise MarketProblem(f"statement {err}") from None


def units_due(amount_due: int, payment_per_unit: int) -> int:
    """ZCV units that settle `amount_due` at the operator's rate, rounded up as on chain."""
    if payment_per_unit <= 0:
        return 0
    return -(-amount_due // payment_per_unit)


def fee_of(cost: int, fee_bps: int) -> int:
    return cost * fee_bps // BPS


def method_index(name: str | None) -> int:
    """'wind' -> 1; None or 'any' -> ANY_METHOD."""
    if name is None or name.strip().lower() == "any":
        return ANY_METHOD
    wanted = name.strip().lower()
    for index, option in enumerate(GENERATION_METHODS):
        if option.lower() == wanted:
            return index
    raise MarketProblem(
        f"method {name!r}: use any or one of {', '.join(m.lower() for m in GENERATION_METHODS)}"
    )


def method_name(index: int) -> str:
    return "any" if index == ANY_METHOD else GENERATION_METHODS[index].lower()


def listing_lots(wants: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """(certificate id, units) merged per certificate, ascending id, as `list`, `deposit` and
    `withdraw` require, at most MAX_LISTING_CERTIFICATES of them."""
    merged: dict[int, int] = {}
    for certificate_id, units in wants:
        if units <= 0:
            raise MarketProblem(f"certificate {certificate_id}: units must be more than zero")
        merged[certificate_id] = merged.get(certificate_id, 0) + units
    if not merged:
        raise MarketProblem("name at least one certificate (--cert ID:AMOUNT)")
    if len(merged) > MAX_LISTING_CERTIFICATES:
        raise MarketProblem(
            f"{len(merged)} certificates: a listing names at most {MAX_LISTING_CERTIFICATES}; "
            "split it into several listings"
        )
    return sorted(merged.items())


def split_from_deposit(
    lots: Sequence[tuple[int, int]], deposits: Mapping[int, int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """What `list` takes from the seller's deposit and what it pulls from the wallet, per
    certificate, exactly as the contract does (deposit first)."""
    from_deposit, from_wallet = [], []
    for certificate_id, units in lots:
        used = min(units, deposits.get(certificate_id, 0))
        if used:
            from_deposit.append((certificate_id, used))
        if units > used:
            from_wallet.append((certificate_id, units - used))
    return from_deposit, from_wallet


# ---------------------------------------------------------------------------- order book


@dataclass(frozen=True)
class ListingView:
    """One listing as the order book shows it."""

    id: int
    seller: str
    status: str
    unit_price: int
    units: int
    remaining: int
    expiry: int
    fee_bps: int
    method: str
    period_start: int
    period_end: int
    lots: tuple[tuple[int, int], ...] = ()

    def is_live(self, now: int) -> bool:
        return self.status == "Open" and now < self.expiry


@dataclass
class OrderBook:
    """Every listing, rebuilt by folding the market's events in chain order.

    Events are (name, args) with args as the contract names them (Listed, Bought, PriceUpdated,
    Cancelled for listings; Deposited, Withdrawn, DepositUsed for the sellers' deposits at the
    market). Nothing else is needed: this is the check that the events say everything."""

    listings: dict[int, ListingView] = field(default_factory=dict)
    deposits: dict[tuple[str, int], int] = field(default_factory=dict)  # (seller, cert) -> units
    volume_units: int = 0
    volume_cost: int = 0
    fees: int = 0
    trades: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, name: str, args: Mapping[str, Any]) -> None:
        if name == "Listed":
            lid = int(args["listingId"])
            lots = tuple(
                (int(c), int(u))
                for c, u in zip(args["certificateIds"], args["certificateUnits"], strict=True)
            )
            self.listings[lid] = ListingView(
                id=lid,
                seller=to_checksum_address(str(args["seller"])),
                status="Open",
                unit_price=int(args["unitPrice"]),
                units=int(args["units"]),
                remaining=int(args["units"]),
                expiry=int(args["expiry"]),
                fee_bps=int(args["feeBps"]),
                method=method_name(int(args["method"])),
                period_start=int(args["periodStart"]),
                period_end=int(args["periodEnd"]),
                lots=lots,
            )
        elif name == "Bought":
            lid = int(args["listingId"])
            current = self.listings[lid]
            taken: dict[int, int] = {}
            for c, u in zip(args["certificateIds"], args["certificateUnits"], strict=True):
                taken[int(c)] = taken.get(int(c), 0) + int(u)
            lots = tuple(
                (c, u - taken.get(c, 0)) for c, u in current.lots if u - taken.get(c, 0) > 0
            )
            remaining = int(args["remaining"])
            self.listings[lid] = replace(
                current,
                remaining=remaining,
                status="Filled" if remaining == 0 else current.status,
                lots=lots,
            )
            self.volume_units += int(args["units"])
            self.volume_cost += int(args["cost"])
            self.fees += int(args["fee"])
            self.trades.append({k: args[k] for k in ("listingId", "buyer", "units", "cost", "fee")})
        elif name == "PriceUpdated":
            lid = int(args["listingId"])
            self.listings[lid] = replace(self.listings[lid], unit_price=int(args["newUnitPrice"]))
        elif name == "Cancelled":
            lid = int(args["listingId"])
            self.listings[lid] = replace(
                self.listings[lid], status="Cancelled", remaining=0, lots=()
            )
        elif name in ("Deposited", "Withdrawn", "DepositUsed"):
            sign = 1 if name == "Deposited" else -1
            seller = to_checksum_address(str(args["seller"]))
            for c, u in zip(args["certificateIds"], args["certificateUnits"], strict=True):
                key = (seller, int(c))
                left = self.deposits.get(key, 0) + sign * int(u)
                if left:
                    self.deposits[key] = left
                else:
                    self.deposits.pop(key, None)

    @classmethod
    def from_events(cls, events: Iterable[tuple[str, Mapping[str, Any]]]) -> OrderBook:
        book = cls()
        for name, args in events:
            book.apply(name, args)
        return book

    def open(self, now: int) -> list[ListingView]:
        """Live listings, cheapest first."""
        live = [v for v in self.listings.values() if v.is_live(now)]
        return sorted(live, key=lambda v: (v.unit_price, v.id))


def fetch_market_events(
    market: Any, start_block: int, stop_block: int | None = None, page: int = LOG_PAGE_BLOCKS
) -> list[tuple[str, dict[str, Any]]]:
    """The market's order-book events in chain order, paged by block range (providers limit
    log queries; never scan from block 0 when the deployment block is known)."""
    from ape import chain

    last = chain.blocks.height if stop_block is None else stop_block
    found: list[tuple[int, int, str, dict[str, Any]]] = []
    for name in MARKET_EVENTS:
        event = getattr(market, name)
        for first in range(start_block, last + 1, page):
            for entry in event.range(first, min(first + page, last + 1)):
                found.append(
                    (
                        int(entry.block_number),
                        int(entry.log_index),
                        name,
                        dict(entry.event_arguments),
                    )
                )
    found.sort(key=lambda item: (item[0], item[1]))
    return [(name, args) for _, _, name, args in found]


# ---------------------------------------------------------------------------- deployment


def deploy_mock_yen(deployer: Any, minter: str | None = None) -> Any:
    """JPYT for a devnet: DEFAULT_ADMIN_ROLE to the deployer, MINTER_ROLE to `minter`
    (the operator)."""
    from ape import project

    return deployer.deploy(project.MockYenToken, deployer, minter or deployer)


def deploy_market(
    deployer: Any,
    zcv: Any,
    payment_token: Any,
    fee_bps: int,
    fee_recipient: Any,
    *,
    operator: Any = None,
    treasury: Any = None,
    settlement_rate: int = 0,
) -> Any:
    """Deploys ZcvMarket. The deployer keeps DEFAULT_ADMIN_ROLE (fees, treasury); `operator`
    (default: the deployer) gets OPERATOR_ROLE (statements, conversion rate); `treasury`
    (default: the operator) receives statement payments. A non-zero `settlement_rate`
    (payment-token base units per ZCV unit) is set when the deployer is the operator."""
    from ape import project

    operator_address = str(getattr(operator, "address", operator) or deployer.address)
    treasury_address = str(getattr(treasury, "address", treasury) or operator_address)
    market = deployer.deploy(
        project.ZcvMarket,
        deployer,
        operator_address,
        zcv,
        payment_token,
        fee_bps,
        fee_recipient,
        treasury_address,
    )
    if settlement_rate:
        if operator_address != str(deployer.address):
            raise MarketProblem("settlement_rate: only the operator can set it; set it as them")
        market.setSettlementRate(settlement_rate, sender=deployer)
    return market


# ---------------------------------------------------------------------------- client


@dataclass(frozen=True)
class StatementView:
    id: str
    member: str
    payee: str
    due_at: int
    status: str
    amount_due: int
    units_due: int


class MarketClient(ZcxClient):
    """A ZcxClient that also trades on the market recorded as "ZcvMarket" in the deployment
    (or at `market_address`)."""

    def __init__(self, deployment: Any, project: Any, market_address: str | None = None) -> None:
        super().__init__(deployment, project)
        self._market_address = market_address

    @classmethod
    def of(cls, client: ZcxClient, market_address: str | None = None) -> MarketClient:
        return cls(client.deployment, client._project, market_address)

    # -- wiring

    @cached_property
    def market(self) -> Any:
        address = self._market_address
        if address is None:
            try:
                address = self.deployment.address(MARKET_CONTRACT)
            except KeyError:
                raise MarketProblem(
                    f"the deployment for chain {self.deployment.chain_id} records no ZcvMarket: "
                    "deploy it (`ape run deploy`) or pass --market ADDRESS"
                ) from None
        return self._project.get_contract(MARKET_CONTRACT).at(address)

    @cached_property
    def payment_token(self) -> Any:
        """The market's payment token, through the JPYT ABI (plain ERC-20 + mint)."""
        return self._project.get_contract(PAYMENT_TOKEN_CONTRACT).at(self.market.paymentToken())

    def _token_of(self, contract: Any) -> tuple[str, int] | None:
        # The market itself moves the payment token from buyers and payers.
        if str(contract.address) == str(self.market.address):
            contract = self.payment_token
        return super()._token_of(contract)

    @cached_property
    def token_decimals(self) -> int:
        return int(self.payment_token.decimals())

    @cached_property
    def token_symbol(self) -> str:
        return str(self.payment_token.symbol())

    @cached_property
    def decoder(self) -> ErrorDecoder:
        abis = []
        for name in (*CONTRACT_NAMES, MARKET_CONTRACT, PAYMENT_TOKEN_CONTRACT):
            contract_type = self._project.get_contract(name).contract_type
            abis.append([e.model_dump(mode="json", by_alias=True) for e in contract_type.abi])
        return ErrorDecoder(abis)

    def decode_revert(self, data: bytes | str | None, fallback: str = "") -> DecodedError:
        error = super().decode_revert(data, fallback)
        template = MARKET_SENTENCES.get(error.name)
        if template is None:
            return error
        return _MarketError(error.name, error.args, template)

    def _now(self) -> int:
        from ape import chain

        return int(chain.pending_timestamp)

    # -- reads

    def listing(self, listing_id: int) -> ListingView:
        raw = self._view(self.market, "listing", listing_id)
        lots = tuple(
            (int(lot.certificateId), int(lot.units)) for lot in self.market.listingLots(listing_id)
        )
        return ListingView(
            id=listing_id,
            seller=str(raw.seller),
            status=LISTING_STATUSES[int(raw.status)],
            unit_price=int(raw.unitPrice),
            units=int(raw.units),
            remaining=int(raw.remaining),
            expiry=int(raw.expiry),
            fee_bps=int(raw.feeBps),
            method=method_name(int(raw.method)),
            period_start=int(raw.periodStart),
            period_end=int(raw.periodEnd),
            lots=lots,
        )

    def listings(self) -> list[ListingView]:
        """Every listing from the contract's views (one call per listing; fine for a devnet)."""
        return [self.listing(i) for i in range(1, int(self.market.listingCount()) + 1)]

    def order_book(self, start_block: int | None = None) -> OrderBook:
        """Every listing rebuilt from the market's events (paged from the deployment block)."""
        first = self.deployment.deployment_block if start_block is None else start_block
        return OrderBook.from_events(fetch_market_events(self.market, first))

    def deposit_of(self, seller: str, certificate_ids: Iterable[int]) -> dict[int, int]:
        """Units of these certificates in the seller's deposit at the market (one view each)."""
        found = {c: int(self.market.depositOf(seller, c)) for c in certificate_ids}
        return {c: u for c, u in found.items() if u}

    def deposits(self, seller: str, start_block: int | None = None) -> dict[int, int]:
        """Every certificate in the seller's deposit at the market, from the events."""
        wanted = to_checksum_address(seller)
        book = self.order_book(start_block)
        return {c: u for (s, c), u in sorted(book.deposits.items()) if s == wanted}

    def wallet_units(self, holder: str, certificate_id: int) -> int:
        """Units of one certificate in a wallet (O(1) on the ledger)."""
        return int(self.zcv.lotBalance(holder, certificate_id))

    def quote(self, listing_id: int, units: int) -> tuple[int, int]:
        cost, fee = self._view(self.market, "quote", listing_id, units)
        return int(cost), int(fee)

    def statement(self, statement_id: str) -> StatementView:
        ref = statement_reference(statement_id)
        s = self._view(self.market, "statement", ref)
        return StatementView(
            id=statement_id,
            member=str(s.member),
            payee=str(s.payee),
            due_at=int(s.dueAt),
            status=STATEMENT_STATUSES[int(s.status)],
            amount_due=int(s.amountDue),
            units_due=int(s.unitsDue),
        )

    def zcv_paid_for(self, statement_id: str, start_block: int | None = None) -> int:
        """Units the statement's member paid its payee with `zcv.pay(..., statementId)`, from the
        token's Paid events (the evidence behind a ZCV settlement)."""
        from ape import chain

        ref = statement_reference(statement_id)
        view = self.statement(statement_id)
        first = self.deployment.deployment_block if start_block is None else start_block
        last = chain.blocks.height
        total = 0
        for lo in range(first, last + 1, LOG_PAGE_BLOCKS):
            hi = min(lo + LOG_PAGE_BLOCKS, last + 1)
            for entry in self.zcv.Paid.range(lo, hi, search_topics={"paymentReference": ref}):
                args = entry.event_arguments
                if (
                    str(args["from"]).lower() == view.member.lower()
                    and str(args["to"]).lower() == view.payee.lower()
                ):
                    total += int(args["units"])
        return total

    # -- seller actions

    def _approve_zcv(self, sender: Any, units: int) -> None:
        """Lets the market pull `units` from the sender's wallet (`transferLotsFrom` spends the
        ZCV allowance), when the current allowance is short."""
        owner, market = str(sender.address), str(self.market.address)
        if units and int(self.zcv.allowance(owner, market)) < units:
            self._send(self.zcv, "approve", (market, units), sender)

    def _resolve_wallet(
        self, holder: str, wants: Sequence[tuple[int, int | None]]
    ) -> list[tuple[int, int]]:
        """[(id, units or None for all)] -> [(id, units)] from the holder's wallet."""
        out = []
        for certificate_id, units in wants:
            have = self.wallet_units(holder, certificate_id)
            want = have if units is None else units
            if want <= 0:
                raise MarketProblem(f"your wallet holds no units of certificate {certificate_id}")
            if want > have:
                raise MarketProblem(
                    f"certificate {certificate_id}: your wallet holds {have} units, {want} asked"
                )
            out.append((certificate_id, want))
        return listing_lots(out)

    def deposit(self, sender: Any, wants: Sequence[tuple[int, int | None]]) -> TxResult:
        """Moves the named certificates' units [(id, units or None for all)] from the sender's
        wallet to its deposit at the market (optional: `list_lots` pulls from the wallet)."""
        lots = self._resolve_wallet(str(sender.address), wants)
        self._approve_zcv(sender, sum(u for _, u in lots))
        receipt = self._send(self.market, "deposit", ([list(x) for x in lots],), sender)
        return self._result(receipt, units=sum(u for _, u in lots))

    def list_lots(
        self,
        sender: Any,
        wants: Sequence[tuple[int, int]],
        unit_price: int,
        expiry: int,
        method: int = ANY_METHOD,
        period: tuple[int, int] = (0, 0),
    ) -> TxResult:
        """Lists [(certificate id, units)] at `unit_price` (base units per ZCV unit) in one
        transaction: the contract takes each certificate from the seller's deposit first and pulls
        the rest from the wallet, for which this approves the market when the allowance is short."""
        seller = str(sender.address)
        lots = listing_lots(wants)
        if expiry <= self._now():
            raise MarketProblem("expiry: must be in the future")
        deposits = self.deposit_of(seller, [c for c, _ in lots])
        _, from_wallet = split_from_deposit(lots, deposits)
        for certificate_id, units in from_wallet:
            have = self.wallet_units(seller, certificate_id)
            if units > have:
                raise MarketProblem(
                    f"certificate {certificate_id}: {units} units to list from your wallet, "
                    f"which holds {have}"
                )
        self._approve_zcv(sender, sum(u for _, u in from_wallet))
        args = ([list(lot) for lot in lots], unit_price, expiry, method, period[0], period[1])
        receipt = self._send(self.market, "list", args, sender)
        (event,) = receipt.decode_logs(self.market.Listed)
        return self._result(receipt, listing_id=int(event.listingId), units=int(event.units))

    def update_price(self, sender: Any, listing_id: int, unit_price: int) -> TxResult:
        receipt = self._send(self.market, "updatePrice", (listing_id, unit_price), sender)
        return self._result(receipt, listing_id=listing_id, unit_price=unit_price)

    def cancel(self, sender: Any, listing_id: int) -> TxResult:
        receipt = self._send(self.market, "cancel", (listing_id,), sender)
        (event,) = receipt.decode_logs(self.market.Cancelled)
        return self._result(
            receipt,
            listing_id=listing_id,
            returned_units=int(event.returnedUnits),
            frozen_units=int(event.frozenUnits),
        )

    def withdraw(self, sender: Any, wants: Sequence[tuple[int, int | None]]) -> TxResult:
        """Returns units from the sender's deposit at the market to its wallet
        [(id, units or None for the whole deposit of that certificate)]."""
        deposits = self.deposit_of(str(sender.address), [c for c, _ in wants])
        lots = []
        for certificate_id, units in wants:
            have = deposits.get(certificate_id, 0)
            want = have if units is None else units
            if want <= 0:
                raise MarketProblem(
                    f"your deposit at the market holds no units of certificate {certificate_id}"
                )
            lots.append((certificate_id, want))
        receipt = self._send(
            self.market, "withdraw", ([list(x) for x in listing_lots(lots)],), sender
        )
        return self._result(receipt, units=sum(u for _, u in lots))

    # -- buyer actions

    def buy(
        self,
        sender: Any,
        listing_id: int,
        units: int,
        max_total: int | None = None,
        deadline: int | None = None,
    ) -> TxResult:
        """Buys `units` of a listing. `max_total` defaults to the current quote (no slippage):
        if the seller raises the price before the buy is mined, it reverts. Approves exactly
        `max_total` of the payment token when the allowance is short."""
        cost, _ = self.quote(listing_id, units)
        limit = cost if max_total is None else max_total
        buyer = str(sender.address)
        market = str(self.market.address)
        if int(self.payment_token.allowance(buyer, market)) < limit:
            self._send(self.payment_token, "approve", (market, limit), sender)
        until = deadline if deadline is not None else self._now() + DEFAULT_DEADLINE_SECONDS
        receipt = self._send(self.market, "buy", (listing_id, units, limit, until), sender)
        (event,) = receipt.decode_logs(self.market.Bought)
        return self._result(
            receipt,
            listing_id=listing_id,
            units=int(event.units),
            cost=int(event.cost),
            fee=int(event.fee),
            certificates=list(
                zip(map(int, event.certificateIds), map(int, event.certificateUnits), strict=True)
            ),
        )

    # -- statements

    def pay_statement(self, sender: Any, statement_id: str, in_zcv: bool = False) -> TxResult:
        """Pays an open statement: in the payment token through the market, or in ZCV with
        `zcv.pay(payee, unitsDue, statementId)` (counted as the sender's used coins; the operator
        then confirms it)."""
        view = self.statement(statement_id)
        if view.status != "Open":
            raise MarketProblem(f"statement {statement_id} is {view.status}, not open")
        ref = statement_reference(statement_id)
        if in_zcv:
            if view.units_due == 0:
                raise MarketProblem(f"statement {statement_id} cannot be paid in ZCV (no rate)")
            if view.member.lower() != str(sender.address).lower():
                raise MarketProblem("only the member pays its statement in ZCV (used coins)")
            receipt = self._send(self.zcv, "pay", (view.payee, view.units_due, ref), sender)
            return self._result(receipt, statement=statement_id, units=view.units_due, kind="zcv")
        market = str(self.market.address)
        if int(self.payment_token.allowance(str(sender.address), market)) < view.amount_due:
            self._send(self.payment_token, "approve", (market, view.amount_due), sender)
        receipt = self._send(self.market, "payStatement", (ref, view.amount_due), sender)
        return self._result(receipt, statement=statement_id, amount=view.amount_due, kind="token")

    def post_statement(
        self, sender: Any, statement_id: str, member: str, amount_due: int, due_at: int
    ) -> TxResult:
        ref = statement_reference(statement_id)
        receipt = self._send(
            self.market, "postStatement", (ref, member, amount_due, due_at), sender
        )
        (event,) = receipt.decode_logs(self.market.StatementPosted)
        return self._result(receipt, statement=statement_id, units_due=int(event.unitsDue))

    def confirm_zcv_payment(self, sender: Any, statement_id: str) -> TxResult:
        """Operator: marks a statement paid in ZCV, after checking the token's Paid events."""
        view = self.statement(statement_id)
        paid = self.zcv_paid_for(statement_id)
        if paid < view.units_due:
            raise MarketProblem(
                f"statement {statement_id}: the member paid {paid} of {view.units_due} units "
                "with this reference; nothing to confirm yet"
            )
        ref = statement_reference(statement_id)
        receipt = self._send(self.market, "confirmZcvPayment", (ref,), sender)
        return self._result(receipt, statement=statement_id, units=paid)


@dataclass(frozen=True)
class _MarketError(DecodedError):
    template: str = ""

    @property
    def sentence(self) -> str:
        try:
            return self.template.format(**self.args)
        except (KeyError, IndexError):
            return self.template


def describe_listing(view: ListingView, decimals: int, symbol: str) -> dict[str, str]:
    """One order-book row in words."""
    period = "any"
    if view.period_start or view.period_end:
        period = f"{domain.iso_time(view.period_start)} – {domain.iso_time(view.period_end)}"
    return {
        "id": str(view.id),
        "seller": view.seller[:10] + "…",
        "price": f"{format_kwh_price(view.unit_price, decimals)} {symbol}/kWh",
        "remaining": f"{format_zcv(view.remaining)} ZCV",
        "method": view.method,
        "period": period,
        "certificates": ", ".join(str(c) for c, _ in view.lots),
        "fee": f"{view.fee_bps / 100:g} %",
        "expires": domain.iso_time(view.expiry),  # --tz / ZCX_TZ, with its offset
        "status": view.status,
    }


__all__ = [
    "ANY_METHOD",
    "ChainRevert",
    "ListingView",
    "MarketClient",
    "MarketProblem",
    "OrderBook",
    "StatementView",
    "deploy_market",
    "deploy_mock_yen",
    "describe_listing",
    "fetch_market_events",
    "listing_lots",
    "split_from_deposit",
    "statement_reference",
    "unit_price_from_kwh",
    "units_due",
]
