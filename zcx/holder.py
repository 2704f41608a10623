"""A thin SDK over the deployed ZCX contracts for wallet holders and the operator.

What the `zcx holder` and `zcx operator` commands (and any script or notebook) call:

    with open_client(network="ethereum:local:foundry", rpc="http://127.0.0.1:8545") as zcx:
        alice = zcx.account("TEST::3")
        zcx.claim(alice, "ALICE-PV")
        zcx.balance(alice.address).lots

Two layers:
- pure helpers (amount, date, reference and meter parsing; lot planning), no chain access;
- `ZcxClient`, bound to one connected provider and one recorded deployment
  (deployments/<chain_id>.json). Every transaction is first simulated with `eth_call`, so a
  revert comes back as the contract's custom error (`ChainRevert`, e.g.
  "ZcvCertificateRevoked: certificate 3 is revoked; ...") before anything is signed or sent.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_utils import is_hex_address, to_checksum_address

from zcx import deployments, domain
from zcx.certificates import CERTIFICATE_FIELDS, Web3MemberDirectory, static_attributes
from zcx.deployments import Deployment
from zcx.errors import DecodedError, ErrorDecoder, name_token
from zcx.ids import meter_id, meter_label

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NETWORK = "ethereum:local:foundry"
DEFAULT_LOCAL_RPC = "http://127.0.0.1:8545"
DECIMALS = 3
UNITS_PER_ZCV = 10**DECIMALS
UINT256_MAX = 2**256 - 1
CONTRACT_NAMES = ("MemberRegistry", "GenerationRegistry", "ZeroCarbonValue", "ValueExchange")

# Solidity enum orders (contracts/interfaces/IMemberRegistry.sol).
GENERATION_METHODS = ("Solar", "Wind", "Geothermal", "Biomass", "Hydro")
MEMBER_KINDS = ("Household", "PublicFacility", "Business", "Generator", "Operator")

_TEST_ALIAS = re.compile(r"^TEST::(\d+)$", re.IGNORECASE)


class HolderError(ValueError):
    """A request the SDK refuses before it reaches the chain (bad input, nothing to do)."""


class ConnectionProblem(RuntimeError):
    """No usable node, or the node does not hold the recorded deployment."""


class ChainRevert(Exception):
    """The chain refused a call or transaction; `error` is the decoded custom error."""

    def __init__(self, error: DecodedError) -> None:
        super().__init__(str(error))
        self.error = error

    @property
    def name(self) -> str:
        return self.error.name

    @property
    def sentence(self) -> str:
        return self.error.sentence


# ---------------------------------------------------------------------------- pure helpers


def parse_amount(text: str, *, units: bool = False) -> int:
    """ZCV decimals ("1.5" -> 1500 units) or, with `units`, a whole number of units ("1500")."""
    cleaned = text.strip().replace("_", "")
    if units:
        if not cleaned.isdigit():
            raise HolderError(f"amount {text!r}: with --units give a whole number of units")
        value = int(cleaned)
    else:
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            raise HolderError(f"amount {text!r}: not a number (e.g. 1.5 for 1.500 ZCV)") from None
        if not amount.is_finite():
            raise HolderError(f"amount {text!r}: not a finite number")
        scaled = amount * UNITS_PER_ZCV
        if scaled != scaled.to_integral_value():
            raise HolderError(
                f"amount {text!r}: ZCV has {DECIMALS} decimals (1 unit = 0.001 ZCV); "
                "round it or pass whole units with --units"
            )
        value = int(scaled)
    if value <= 0:
        raise HolderError(f"amount {text!r}: must be more than zero")
    if value > UINT256_MAX:
        raise HolderError(f"amount {text!r}: too large")
    return value


def format_zcv(units: int) -> str:
    """1500 -> '1.500' (ZCV, 3 decimals)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), UNITS_PER_ZCV)
    return f"{sign}{whole:,}.{frac:0{DECIMALS}d}"


def payment_reference(text: str) -> bytes:
    """A bill or statement id as the bytes32 `pay` records (zcx.domain.payment_reference)."""
    try:
        return domain.payment_reference(text)
    except domain.PaymentReferenceError as err:
        raise HolderError(f"payment {err}") from None


def reference_label(reference: bytes) -> str:
    """The bytes32 payment reference as 0x-hex (it is a hash of the bill or statement id)."""
    return "0x" + bytes(reference).hex()


def parse_meter(text: str) -> bytes:
    """A meter label ("ALICE-PV") or a 0x-prefixed 32-byte meter id."""
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text[2:])
    try:
        return meter_id(text)
    except ValueError as err:
        raise HolderError(str(err)) from None


def describe_meter(meter: bytes) -> str:
    """The label of a bytes32 meter id, or its 0x-hex when it is not a text label."""
    return _bytes32_label(bytes(meter))


def _bytes32_label(raw: bytes) -> str:
    stripped = raw.rstrip(b"\x00")
    if stripped and b"\x00" not in stripped:
        try:
            text = meter_label(raw)
        except UnicodeDecodeError:
            pass
        else:
            if text.isprintable():
                return text
    return "0x" + raw.hex()


def parse_time(text: str, *, end: bool = False) -> int:
    """An ISO date or date-time as unix seconds, in the display zone (--tz / ZCX_TZ, default
    UTC) unless an offset is given: the zone the same command shows times in.

    A bare date is a whole day: as a start it is that day's 00:00; as an `end` it is inclusive,
    i.e. the next day's 00:00 ("--from 2026-04-01 --to 2026-04-30" is April, in the zone's
    days: with ZCX_TZ=Asia/Tokyo the Japanese April a monthly statement covers). A date-time end
    is exclusive and taken as is. Plain integers are unix seconds.
    """
    value = text.strip()
    if value.isdigit():
        return int(value)
    zone = domain.display_zone()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HolderError(
            f"time {text!r}: use an ISO date (2026-04-01) or date-time (2026-04-01T09:00+09:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp())


def format_time(timestamp: int) -> str:
    """ISO 8601 with its offset in the display zone (--tz / ZCX_TZ, default UTC)."""
    if not timestamp:
        return "-"
    return domain.iso_time(timestamp)


def format_period(start: int, end: int) -> str:
    """Both ends in ISO 8601 with their offsets; the end is exclusive."""
    return f"{format_time(start)} – {format_time(end)}"


def choice_index(name: str, options: Sequence[str], what: str) -> int:
    """Case- and dash-insensitive lookup of an enum name ("public-facility" -> 1)."""
    wanted = name.replace("-", "").replace("_", "").lower()
    for index, option in enumerate(options):
        if option.lower() == wanted:
            return index
    raise HolderError(f"{what} {name!r}: use one of {', '.join(o.lower() for o in options)}")


@dataclass(frozen=True)
class LotPick:
    """One entry of `transferLots`/`retireLots`: `units` of the holder's lot of `certificate_id`."""

    certificate_id: int
    units: int

    def as_tuple(self) -> tuple[int, int]:
        return (self.certificate_id, self.units)


# How many certificates one transferLots/retireLots names at most (about 45,000 gas each when the
# recipient has no lot of the certificate yet: 200 picks stay well inside a 30M-gas block).
PICKS_PER_TX = 200
# Lots per lotsOf page (a view: about 2 storage reads per lot).
LOTS_PAGE = 500
BALANCE_LOTS_SHOWN = 1_000


JST = timezone(timedelta(hours=9))


def vintage_year_of(timestamp: int) -> int:
    """The vintage year of a time: its calendar year in JST, as ZeroCarbonValue.vintageYear."""
    return datetime.fromtimestamp(timestamp, UTC).astimezone(JST).year


def plan_lot_picks(
    held: Mapping[int, int], wants: Sequence[tuple[int, int | None]]
) -> list[LotPick]:
    """Lot picks that take `wants` [(certificate id, units or None for all)] from `held`
    {certificate id: units the holder has} (one lot per certificate): one pick per certificate,
    in the strictly ascending certificate order the contract requires."""
    wanted: dict[int, int | None] = {}
    for certificate_id, units in wants:
        if certificate_id in wanted:
            before = wanted[certificate_id]
            wanted[certificate_id] = None if before is None or units is None else before + units
        else:
            wanted[certificate_id] = units
    if not wanted:
        raise HolderError("name at least one certificate to move (--cert ID:AMOUNT)")
    picks: list[LotPick] = []
    for certificate_id in sorted(wanted):
        have = held.get(certificate_id, 0)
        if have == 0:
            raise HolderError(f"you hold no units of certificate {certificate_id}")
        units = wanted[certificate_id]
        take = have if units is None else units
        if take > have:
            raise HolderError(
                f"you hold {format_zcv(have)} ZCV ({have} units) of certificate "
                f"{certificate_id}; {take} units asked"
            )
        picks.append(LotPick(certificate_id, take))
    return picks


@dataclass(frozen=True)
class SpendStep:
    """One transaction of a split plain spend: `units` to move, or (when a stretch of the spend
    order holds only lots of revoked certificates) those lots to `evict` first."""

    units: int
    evict: tuple[int, ...] = ()


def _frozen_after_last_take(visited: list[int], frozen: set[int]) -> list[int]:
    """The frozen certificate ids that trail the last lot a step takes from."""
    tail: list[int] = []
    for certificate_id in reversed(visited):
        if certificate_id not in frozen:
            break
        tail.insert(0, certificate_id)
    return tail


def split_plain_spend(
    lots: Sequence[tuple[int, int]], frozen: Iterable[int], units: int, max_lots: int
) -> list[SpendStep]:
    """Consecutive plain transfers (or payments, retirements) that together move `units`, each
    visiting at most `max_lots` lots. `lots` is `lotsOf` order (the contract's spend order); a
    lot of a `frozen` certificate on the way counts as a visit (the spend moves it to the frozen
    ledger) but gives no units. Raises HolderError when the free units fall short."""
    frozen = set(frozen)
    steps: list[SpendStep] = []
    chunk, visited = 0, list[int]()
    remaining = units
    for certificate_id, lot_units in lots:
        if remaining == 0:
            break
        if len(visited) == max_lots:
            steps.append(SpendStep(chunk) if chunk else SpendStep(0, tuple(visited)))
            # A transaction stops at its last take: frozen lots after it are visited (and
            # frozen) by the next one, so they count against the next one's bound.
            visited = _frozen_after_last_take(visited, frozen) if chunk else []
            chunk = 0
        visited.append(certificate_id)
        if certificate_id in frozen:
            continue
        take = min(remaining, lot_units)
        chunk += take
        remaining -= take
    if remaining:
        raise HolderError(
            f"only {format_zcv(units - remaining)} ZCV ({units - remaining} units) are free to "
            f"move; {units} units asked (the rest of the balance is frozen)"
        )
    if chunk:
        steps.append(SpendStep(chunk))
    return steps


def parse_cert_pick(text: str, *, units: bool = False) -> tuple[int, int | None]:
    """'3:1.5' -> (3, 1500); '3:all' -> (3, None) (all units of certificate 3). A bare '3' is
    refused: moving a whole certificate is irreversible, so it must be asked for by name."""
    head, _, amount = text.partition(":")
    if not head.strip().isdigit() or int(head) == 0 or not amount.strip():
        raise HolderError(f"certificate pick {text!r}: use ID:AMOUNT, e.g. 3:1.5 or 3:all")
    if amount.strip().lower() == "all":
        return int(head), None
    return int(head), parse_amount(amount, units=units)


def humanize(error: DecodedError) -> DecodedError:
    """The same error with arguments a person can read: bytes32 meter ids as labels, bytes as
    0x-hex, addresses checksummed."""
    args: dict[str, Any] = {}
    for key, value in error.args.items():
        if isinstance(value, bytes | bytearray):
            args[key] = _bytes32_label(bytes(value)) if len(value) == 32 else "0x" + value.hex()
        elif isinstance(value, str) and is_hex_address(value):
            args[key] = to_checksum_address(value)
        else:
            args[key] = value
    return DecodedError(error.name, args)


# ---------------------------------------------------------------------------- views


@dataclass(frozen=True)
class LotView:
    index: int
    certificate_id: int
    units: int
    kwh: str
    meter: str
    method: str
    period_start: int
    period_end: int
    revoked: bool


@dataclass(frozen=True)
class Balance:
    address: str
    units: int
    purchased: int
    used: int
    amortized: int
    lots: list[LotView]
    frozen: int = 0  # units of revoked certificates: held, never spendable
    lot_count: int = 0  # all lots; `lots` lists the first BALANCE_LOTS_SHOWN in spend order

    @property
    def zcv(self) -> str:
        return format_zcv(self.units)


@dataclass(frozen=True)
class CertificateView:
    id: int
    schema_version: int
    registry: str
    meter: str
    owner_name: str
    method: str
    wh: int
    period_start: int
    period_end: int
    zone: str
    capacity_w: int
    evidence: str
    issued_at: int
    issued_to: str
    units: int
    retired_units: int
    revoked: bool
    expires_at: int = 0  # from then on its units are frozen (ZeroCarbonValue.expiresAt)
    vintage_year: int = 0  # retirements consume within this JST calendar year
    frozen: bool = False  # revoked or expired: its units can neither move nor be retired


@dataclass(frozen=True)
class RetirementView:
    id: int
    schema_version: int
    holder: str
    beneficiary: str
    reason: str
    consumption_start: int
    consumption_end: int
    retired_at: int
    units: int
    certificates: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class MeterView:
    meter: str
    owner: str
    method: str
    capacity_w: int
    zone: str
    commissioned_at: int
    active: bool
    flagged: bool
    unclaimed_wh: int


@dataclass(frozen=True)
class MemberView:
    account: str
    name: str
    kind: str
    active: bool
    meters: int


@dataclass(frozen=True)
class TxResult:
    """A mined transaction and what it did."""

    txn_hash: str
    block: int
    values: dict[str, Any] = field(default_factory=dict)


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


# ---------------------------------------------------------------------------- client


class ZcxClient:
    """The deployed contracts on the connected chain, with holder and operator actions."""

    def __init__(self, deployment: Deployment, project: Any) -> None:
        self.deployment = deployment
        self._project = project

    # -- wiring

    def _at(self, name: str) -> Any:
        return self._project.get_contract(name).at(self.deployment.address(name))

    @cached_property
    def members(self) -> Any:
        return self._at("MemberRegistry")

    @cached_property
    def registry(self) -> Any:
        return self._at("GenerationRegistry")

    @cached_property
    def zcv(self) -> Any:
        return self._at("ZeroCarbonValue")

    @cached_property
    def exchange(self) -> Any:
        return self._at("ValueExchange")

    @cached_property
    def _directory(self) -> Web3MemberDirectory:
        """Where schema-2 certificates' static attributes are read (zcx.certificates)."""
        return Web3MemberDirectory(self.zcv.provider.web3)

    @cached_property
    def decoder(self) -> ErrorDecoder:
        abis = []
        for name in CONTRACT_NAMES:
            contract = self._project.get_contract(name)
            if contract is None:  # left out of this build (see ape-config.yaml)
                continue
            contract_type = contract.contract_type
            abis.append([e.model_dump(mode="json", by_alias=True) for e in contract_type.abi])
        return ErrorDecoder(abis)

    @property
    def is_local(self) -> bool:
        from ape import networks

        provider = networks.active_provider
        return provider is not None and provider.network.name in ("local", "test")

    # -- accounts

    def account(self, alias: str) -> Any:
        """An Ape account by alias (`ape accounts import/generate`), or TEST::<n> on a local
        devnet (the public test mnemonic: never on a real network)."""
        from ape import accounts
        from ape.exceptions import AccountsError

        match = _TEST_ALIAS.match(alias.strip())
        if match:
            if not self.is_local:
                raise HolderError(
                    f"{alias}: test accounts exist only on a local devnet; use an Ape account alias"
                )
            index = int(match.group(1))
            test_accounts = accounts.test_accounts
            if index >= len(test_accounts):
                raise HolderError(f"{alias}: there are only {len(test_accounts)} test accounts")
            return test_accounts[index]
        try:
            return accounts.load(alias)
        except (AccountsError, IndexError, KeyError):
            raise HolderError(
                f"no Ape account with alias {alias!r}: see `ape accounts list`, or create one with "
                "`ape accounts import <alias>`"
            ) from None

    def address_of(self, who: str) -> str:
        """A checksummed address from a 0x address, an Ape account alias or TEST::<n>."""
        text = who.strip()
        if is_hex_address(text):
            return to_checksum_address(text)
        return str(self.account(text).address)

    # -- errors

    def decode_revert(self, data: bytes | str | None, fallback: str = "") -> DecodedError:
        raw = _revert_bytes(data)
        if raw is None or len(raw) < 4:
            return DecodedError("Reverted", {"message": fallback or "no reason given"})
        return humanize(self.decoder.decode(raw))

    def _raise_from_ape(self, err: Exception) -> ChainRevert:
        """The ChainRevert for an Ape ContractLogicError (custom-error subclasses included)."""
        data = _find_revert_data(err)
        if data is not None:
            return ChainRevert(self.decode_revert(data))
        abi = getattr(err, "abi", None)
        inputs = getattr(err, "inputs", None)
        if abi is not None and isinstance(inputs, Mapping):
            return ChainRevert(humanize(DecodedError(str(abi.name), dict(inputs))))
        message = str(getattr(err, "revert_message", "") or err)
        return ChainRevert(DecodedError("Reverted", {"message": message}))

    def _token_of(self, contract: Any) -> tuple[str, int] | None:
        """(symbol, decimals) of the token whose ERC-20 errors a call to `contract` raises."""
        try:
            return str(contract.symbol()), int(contract.decimals())
        except Exception:  # noqa: BLE001 - not a token: its errors name no token
            return None

    def _named(self, contract: Any, revert: ChainRevert) -> ChainRevert:
        token = self._token_of(contract)
        if token is None or not revert.name.startswith("ERC20Insufficient"):
            return revert
        return ChainRevert(name_token(revert.error, *token))

    def _simulate(self, contract: Any, method: str, args: Sequence[Any], sender: str) -> None:
        """eth_call the transaction first: a revert raises ChainRevert with the custom error,
        before anything is signed (and without the node's revert trace noise)."""
        from web3.exceptions import ContractLogicError as Web3LogicError

        handler = getattr(contract, method)
        calldata = handler.encode_input(*args)
        web3 = contract.provider.web3
        tx = {"from": sender, "to": str(contract.address), "data": _hex(calldata)}
        try:
            web3.eth.call(tx)
        except Web3LogicError as err:
            data = err.data.get("data") if isinstance(err.data, dict) else err.data
            raise ChainRevert(self.decode_revert(data, str(err))) from None

    def _send(self, contract: Any, method: str, args: Sequence[Any], sender: Any) -> Any:
        from ape.exceptions import ContractLogicError

        try:
            self._simulate(contract, method, args, str(sender.address))
        except ChainRevert as revert:
            raise self._named(contract, revert) from None
        try:
            receipt = getattr(contract, method)(*args, sender=sender)
        except ContractLogicError as err:  # state changed between simulation and mining
            raise self._named(contract, self._raise_from_ape(err)) from None
        log.info(
            "%s.%s mined in block %s: %s",
            contract.contract_type.name,
            method,
            receipt.block_number,
            receipt.txn_hash,
        )
        return receipt

    def _view(self, contract: Any, method: str, *args: Any) -> Any:
        """A view that may revert (unknown ids): simulated first so the revert decodes."""
        self._simulate(contract, method, args, "0x" + "00" * 20)
        return getattr(contract, method)(*args)

    @staticmethod
    def _result(receipt: Any, **values: Any) -> TxResult:
        return TxResult(_hex(receipt.txn_hash), int(receipt.block_number), values)

    # -- reads

    def certificate(self, certificate_id: int) -> CertificateView:
        c = self._view(self.zcv, "certificate", certificate_id)
        attrs = static_attributes(
            {name: getattr(c, name) for name in CERTIFICATE_FIELDS}, self._directory
        )
        return CertificateView(
            id=int(c.id),
            schema_version=int(c.schemaVersion),
            registry=str(c.registry),
            meter=describe_meter(bytes(c.meterId)),
            owner_name=attrs.owner_name,
            method=GENERATION_METHODS[attrs.method],
            wh=int(c.wh),
            period_start=int(c.periodStart),
            period_end=int(c.periodEnd),
            zone=attrs.zone,
            capacity_w=attrs.capacity_w,
            evidence=_hex(c.evidence),
            issued_at=int(c.issuedAt),
            issued_to=str(c.issuedTo),
            units=int(c.units),
            retired_units=int(c.retiredUnits),
            revoked=bool(c.revoked),
            expires_at=int(self.zcv.expiresAt(certificate_id)),
            vintage_year=int(self.zcv.vintageYear(certificate_id)),
            frozen=bool(self.zcv.isFrozen(certificate_id)),
        )

    def lots(self, address: str, enough: int | None = None) -> list[tuple[int, int]]:
        """(certificate id, units) per lot in `lotsOf` order (the spend order: current lot, size
        classes largest first, frozen ledger last), read page by page; with `enough`, stops once
        the lots read hold that many units."""
        out: list[tuple[int, int]] = []
        count = int(self.zcv.lotCount(address))
        while len(out) < count and (enough is None or sum(u for _, u in out) < enough):
            page = self.zcv.lotsOf(address, len(out), LOTS_PAGE)
            if not page:
                break
            out += [(int(lot.certificateId), int(lot.units)) for lot in page]
        return out

    def revoked_ids(self) -> set[int]:
        return {int(cid) for cid in self.zcv.revokedCertificateIds()}

    def frozen_ids(self, lots: Iterable[tuple[int, int]]) -> set[int]:
        """The certificates among `lots` whose units cannot move: revoked or expired."""
        return {cid for cid, _ in lots if self.zcv.isFrozen(cid)}

    def balance(self, address: str) -> Balance:
        counters = self.zcv.counters(address)
        certificates: dict[int, CertificateView] = {}
        lots = []
        for index, (certificate_id, units) in enumerate(self.lots(address)[:BALANCE_LOTS_SHOWN]):
            if certificate_id not in certificates:
                certificates[certificate_id] = self.certificate(certificate_id)
            cert = certificates[certificate_id]
            wh = units * cert.wh / cert.units if cert.units else 0
            lots.append(
                LotView(
                    index=index,
                    certificate_id=certificate_id,
                    units=units,
                    kwh=f"{wh / 1000:.3f}",
                    meter=cert.meter,
                    method=cert.method,
                    period_start=cert.period_start,
                    period_end=cert.period_end,
                    revoked=cert.revoked,
                )
            )
        return Balance(
            address=to_checksum_address(address),
            units=int(counters.balance),
            purchased=int(counters.purchased),
            used=int(counters.used),
            amortized=int(counters.amortized),
            lots=lots,
            frozen=int(self.zcv.frozenBalanceOf(address)),
            lot_count=int(self.zcv.lotCount(address)),
        )

    def retirement(self, retirement_id: int) -> RetirementView:
        count = int(self.zcv.retirementCount())
        if not 1 <= retirement_id <= count:
            raise HolderError(f"no retirement {retirement_id}: ids run from 1 to {count}")
        r = self.zcv.retirement(retirement_id)
        return RetirementView(
            id=int(r.id),
            schema_version=int(r.schemaVersion),
            holder=str(r.holder),
            beneficiary=str(r.beneficiary),
            reason=str(r.reason),
            consumption_start=int(r.consumptionStart),
            consumption_end=int(r.consumptionEnd),
            retired_at=int(r.retiredAt),
            units=int(r.units),
            certificates=[
                (int(c), int(u)) for c, u in zip(r.certificateIds, r.certificateUnits, strict=True)
            ],
        )

    def meters(self, owner: str) -> list[MeterView]:
        views = []
        for mid in self.members.metersOf(owner):
            views.append(self.meter(bytes(mid)))
        return views

    def meter(self, meter: bytes) -> MeterView:
        m = self._view(self.members, "meter", meter)
        spec = m.spec
        return MeterView(
            meter=describe_meter(meter),
            owner=str(spec.owner),
            method=GENERATION_METHODS[int(spec.method)],
            capacity_w=int(spec.capacityW),
            zone=str(m.zone),
            commissioned_at=int(spec.commissionedAt),
            active=bool(spec.active),
            flagged=bool(spec.flagged),
            unclaimed_wh=int(self.registry.unclaimedWh(meter)),
        )

    # -- holder actions

    def claim(self, sender: Any, meter: bytes, registry: str | None = None) -> TxResult:
        """Claims `meter`'s unclaimed verified generation as ZCV: one certificate per clock hour
        with eligible generation. Sends the meter's readings recorded since its last claim
        (read from the registry's logs), which the exchange checks against the evidence head."""
        from zcx.claims import claim_args

        registry_address = registry or self.deployment.address("GenerationRegistry")
        web3 = self.exchange.provider.web3
        args = claim_args(web3, registry_address, meter)
        receipt = self._send(self.exchange, "claim", args, sender)
        (event,) = receipt.decode_logs(self.exchange.Claimed)
        issued = receipt.decode_logs(self.zcv.CertificateIssued)
        return self._result(
            receipt,
            meter=describe_meter(meter),
            certificate_id=int(event.firstCertificateId),
            certificates=int(event.certificates),
            wh=int(event.wh),
            eligible_wh=int(event.eligibleWh),
            forfeited_wh=int(event.forfeitedWh),
            units=int(event.units),
            hours=[
                {
                    "certificate_id": int(e.certificateId),
                    "hour_start": int(e.periodStart),
                    "wh": int(e.wh),
                    "units": int(e.units),
                }
                for e in issued
            ],
        )

    def claimable_meters(self, owner: str) -> list[MeterView]:
        """The owner's meters that a claim would pay out now (unclaimed, active, not flagged)."""
        return [m for m in self.meters(owner) if m.unclaimed_wh > 0 and not m.flagged]

    def transfer(self, sender: Any, to: str, units: int) -> TxResult:
        """A plain ERC-20 transfer in spend order (largest lots first; revoked lots are frozen,
        never moved). Split into several transfers when it needs more lots than one may visit."""
        return self._spend_split(sender, units, lambda part: ("transfer", (to, part)), to=to)[0]

    def transfer_lots(
        self, sender: Any, to: str, wants: Sequence[tuple[int, int | None]]
    ) -> TxResult:
        """Moves units of the named certificates [(id, units or None for all)], in transactions
        of at most PICKS_PER_TX certificates."""
        picks = self._plan_picks(str(sender.address), wants)
        return self._picks_split(sender, picks, lambda chunk: ("transferLots", (to, chunk)), to=to)[
            0
        ]

    def pay(self, sender: Any, to: str, units: int, reference: str) -> TxResult:
        """Settles a bill: a transfer counted as used coins, tagged with the bill's id (split
        like `transfer`, every part carrying the same reference)."""
        ref = payment_reference(reference)
        return self._spend_split(
            sender,
            units,
            lambda part: ("pay", (to, part, ref)),
            to=to,
            reference=reference.strip(),
            reference_hash=reference_label(ref),
        )[0]

    def retire(
        self,
        sender: Any,
        units: int | None,
        beneficiary: str,
        reason: str,
        consumption_start: int,
        consumption_end: int,
        wants: Sequence[tuple[int, int | None]] = (),
    ) -> TxResult:
        """Burns units for the beneficiary's consumption period: `units` in spend order, or the
        named certificates (`wants`) through retireLots. A retirement that needs more lots than
        one transaction may take is split into several retirements (one record each)."""
        tail = (beneficiary, reason, consumption_start, consumption_end)
        if wants:
            if units is not None:
                raise HolderError("give either an amount or --cert picks, not both")
            picks = self._plan_picks(str(sender.address), wants)
            result, receipts = self._picks_split(
                sender, picks, lambda chunk: ("retireLots", (chunk, *tail))
            )
        else:
            if units is None:
                raise HolderError("give the amount to retire, or --cert picks")
            picks = self._vintage_picks(
                str(sender.address), units, consumption_start, consumption_end
            )
            if picks:
                result, receipts = self._picks_split(
                    sender, picks, lambda chunk: ("retireLots", (chunk, *tail))
                )
            else:
                result, receipts = self._spend_split(
                    sender, units, lambda part: ("retire", (part, *tail))
                )
        retirements = [self._retired(r) for r in receipts if r.decode_logs(self.zcv.Retired)]
        return TxResult(
            result.txn_hash,
            result.block,
            {
                **result.values,
                "retirement_id": retirements[-1][0],
                "retirement_ids": [r for r, _ in retirements],
                "beneficiary": beneficiary,
                "certificates": [c for _, certs in retirements for c in certs],
            },
        )

    def _retired(self, receipt: Any) -> tuple[int, list[tuple[int, int]]]:
        (event,) = receipt.decode_logs(self.zcv.Retired)
        certificates = zip(
            map(int, event.certificateIds), map(int, event.certificateUnits), strict=True
        )
        return int(event.retirementId), list(certificates)

    def _vintage_picks(self, holder: str, units: int, start: int, end: int) -> list[LotPick]:
        """A retirement consumes within its certificates' vintage year (JST). When a plain retire
        in spend order would meet a live lot of another vintage (e.g. a large lot a stranger
        sent, which plain spends visit first), names the holder's lots of the period's vintage
        instead, in spend order; empty when the plain retire is fine, or when nothing can help
        (the chain's refusal then says why)."""
        year = vintage_year_of(start)
        if end <= start or vintage_year_of(end - 1) != year:
            return []
        vintages: dict[int, int] = {}

        def usable(cid: int) -> bool:
            if cid not in vintages:
                frozen = bool(self.zcv.isFrozen(cid))
                vintages[cid] = -1 if frozen else int(self.zcv.vintageYear(cid))
            return vintages[cid] == year

        first = self.lots(holder, enough=units)
        taken = 0
        for cid, lot_units in first:
            if taken >= units:
                return []
            if not self.zcv.isFrozen(cid):
                if not usable(cid):
                    break
                taken += lot_units
        else:
            return []
        picks, wanted = [], units
        for cid, lot_units in self.lots(holder):
            if wanted and usable(cid):
                picks.append(LotPick(cid, min(wanted, lot_units)))
                wanted -= picks[-1].units
        if wanted:
            return []
        log.info("retiring lots of vintage %d by name: the spend order meets another vintage", year)
        return sorted(picks, key=lambda pick: pick.certificate_id)

    def _plan_picks(self, holder: str, wants: Sequence[tuple[int, int | None]]) -> list[LotPick]:
        held = {cid: int(self.zcv.lotBalance(holder, cid)) for cid, _ in wants}
        # A revoked certificate is left to the chain: the simulation names it.
        return plan_lot_picks(held, wants)

    def _picks_split(
        self,
        sender: Any,
        picks: Sequence[LotPick],
        call: Callable[[list[tuple[int, int]]], tuple[str, tuple[Any, ...]]],
        **values: Any,
    ) -> tuple[TxResult, list[Any]]:
        chunks = [picks[i : i + PICKS_PER_TX] for i in range(0, len(picks), PICKS_PER_TX)]
        if len(chunks) > 1:
            log.warning(
                "%d certificates: split into %d transactions of at most %d certificates",
                len(picks),
                len(chunks),
                PICKS_PER_TX,
            )
        steps = [[p.as_tuple() for p in chunk] for chunk in chunks]
        return self._run_steps(sender, [call(step) for step in steps], **values)

    def _spend_split(
        self,
        sender: Any,
        units: int,
        call: Callable[[int], tuple[str, tuple[Any, ...]]],
        **values: Any,
    ) -> tuple[TxResult, list[Any]]:
        holder = str(sender.address)
        max_lots = int(self.zcv.MAX_LOTS_PER_TRANSFER())
        try:
            lots = self.lots(holder, enough=units) if units else []
            steps = split_plain_spend(lots, self.frozen_ids(lots), units, max_lots)
        except HolderError:
            # Too little balance, or too little of it free: one call, so the chain's own
            # refusal (ERC20InsufficientBalance, ZcvCertificateRevoked) is what the user sees.
            steps = [SpendStep(units)]
        if not steps:  # zero units: the plain call (a no-op the chain may still refuse)
            steps = [SpendStep(0)]
        if len(steps) > 1:
            log.warning(
                "%d units span more than %d lots: split into %d transactions",
                units,
                max_lots,
                len(steps),
            )
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for step in steps:
            calls += [("evict", (holder, cid)) for cid in step.evict]
            if step.units or not step.evict:
                calls.append(call(step.units))
        return self._run_steps(sender, calls, **values)

    def _run_steps(
        self, sender: Any, calls: Sequence[tuple[str, tuple[Any, ...]]], **values: Any
    ) -> tuple[TxResult, list[Any]]:
        """Sends the calls in order. The result is the last transaction's, with every
        transaction listed under "transactions" and all moved lots under "lots"; the receipts
        come along for callers that decode more events."""
        transactions: list[dict[str, Any]] = []
        receipts = []
        for method, args in calls:
            receipt = self._send(self.zcv, method, args, sender)
            receipts.append(receipt)
            moved = self._moved(receipt)
            transactions.append(
                {
                    "method": method,
                    "txn_hash": _hex(receipt.txn_hash),
                    "block": int(receipt.block_number),
                    "units": sum(u for _, u in moved),
                    "lots": moved,
                }
            )
        result = self._result(
            receipts[-1],
            **values,
            units=sum(t["units"] for t in transactions),
            lots=[lot for t in transactions for lot in t["lots"]],
            transactions=transactions,
        )
        return result, receipts

    def _moved(self, receipt: Any) -> list[tuple[int, int]]:
        return [
            (int(e.certificateId), int(e.units)) for e in receipt.decode_logs(self.zcv.LotMoved)
        ]

    # -- operator actions

    def register_member(self, sender: Any, account: str, name: str, kind: int) -> TxResult:
        receipt = self._send(self.members, "registerMember", (account, name, kind), sender)
        return self._result(receipt, account=account, name=name, kind=MEMBER_KINDS[kind])

    def register_meter(
        self,
        sender: Any,
        meter: bytes,
        owner: str,
        method: int,
        capacity_w: int,
        zone: str,
        commissioned_at: int,
    ) -> TxResult:
        args = (meter, owner, method, capacity_w, zone, commissioned_at)
        receipt = self._send(self.members, "registerMeter", args, sender)
        return self._result(
            receipt, meter=describe_meter(meter), owner=owner, method=GENERATION_METHODS[method]
        )

    def flag_meter(self, sender: Any, meter: bytes, flagged: bool, reason: str) -> TxResult:
        receipt = self._send(self.members, "setMeterFlagged", (meter, flagged, reason), sender)
        return self._result(receipt, meter=describe_meter(meter), flagged=flagged)

    def set_meter_active(self, sender: Any, meter: bytes, active: bool) -> TxResult:
        """Deactivates (or reactivates) a meter: the registry then refuses its readings."""
        receipt = self._send(self.members, "setMeterActive", (meter, active), sender)
        return self._result(receipt, meter=describe_meter(meter), active=active)

    def member_list(self) -> list[MemberView]:
        """Every registered member, in registration order."""
        views = []
        for account in self.members.members():
            m = self._view(self.members, "member", account)
            views.append(
                MemberView(
                    account=str(account),
                    name=str(m.name),
                    kind=MEMBER_KINDS[int(m.kind)],
                    active=bool(m.active),
                    meters=len(self.members.metersOf(account)),
                )
            )
        return views

    def revoke_certificate(self, sender: Any, certificate_id: int, reason: str) -> TxResult:
        receipt = self._send(self.zcv, "revokeCertificate", (certificate_id, reason), sender)
        return self._result(receipt, certificate_id=certificate_id)


def _revert_bytes(data: bytes | str | None) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    text = str(data)
    if re.fullmatch(r"0x([0-9a-fA-F]{2})*", text):
        return bytes.fromhex(text[2:])
    return None


def _find_revert_data(err: BaseException) -> bytes | None:
    """The raw revert data behind an Ape error: web3's ContractLogicError in the cause chain
    carries it as `.data`; some providers put it in the message."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (getattr(current, "data", None), getattr(current, "revert_message", None)):
            raw = _revert_bytes(candidate) if isinstance(candidate, bytes | str) else None
            if raw is not None and len(raw) >= 4:
                return raw
        current = current.__cause__ or current.__context__
    return None


# ---------------------------------------------------------------------------- connecting


def _project(root: Path = PROJECT_ROOT) -> Any:
    """The ZCX Ape project (compiled contract types), wherever the command runs from."""
    from ape import Project, project

    if Path(project.path).resolve() == root.resolve():
        return project
    return Project(root)


def provider_settings_for(network: str, rpc: str | None) -> dict[str, Any]:
    """Settings that make the local Foundry provider ATTACH to a running Anvil at `rpc` (default
    http://127.0.0.1:8545) and never start a fresh, empty one. Other networks are left as Ape
    resolves them (ape-config.yaml, ad-hoc URIs, plugins)."""
    parts = network.split(":")
    ecosystem = parts[0] or "ethereum"
    net = parts[1] if len(parts) > 1 and parts[1] else "local"
    provider = parts[2] if len(parts) > 2 and parts[2] else "foundry"
    if ecosystem == "ethereum" and net == "local" and provider == "foundry":
        return {"host": rpc or DEFAULT_LOCAL_RPC, "manage_process": False}
    return {}


def load_live_deployment(chain_id: int, directory: Path = deployments.DEFAULT_DIR) -> Deployment:
    """The recorded deployment, checked against the connected chain."""
    from zcx.deploy import is_live

    try:
        record = deployments.load(chain_id, directory)
    except FileNotFoundError as err:
        raise ConnectionProblem(
            f"{err}. Deploy with `ape run deploy --network <same network>` first"
        ) from None
    if not is_live(record):
        raise ConnectionProblem(
            f"{deployments.path_for(chain_id, directory)} records block "
            f"{record.deployment_block} and contracts this chain does not hold (an Anvil restarted "
            "since the deploy?). Run `ape run deploy` against this node, or point --rpc at the "
            "node that holds the deployment"
        )
    return record


@contextmanager
def open_client(
    network: str | None = None,
    rpc: str | None = None,
    deployments_dir: Path = deployments.DEFAULT_DIR,
) -> Iterator[ZcxClient]:
    """A ZcxClient on the connected provider when one is already connected and no `network` is
    asked for (inside `ape test`, `ape console`, `ape run`); else connects to `network` and
    disconnects afterwards (a node started by someone else keeps running)."""
    from ape import chain, networks
    from ape.exceptions import ApeException

    active = networks.active_provider
    if network is None and active is not None and active.is_connected:
        yield ZcxClient(load_live_deployment(chain.chain_id, deployments_dir), _project())
        return
    choice = network or DEFAULT_NETWORK
    settings = provider_settings_for(choice, rpc)
    env_host = os.environ.get("APE_FOUNDRY_HOST")
    if settings and env_host and rpc and env_host.rstrip("/") != rpc.rstrip("/"):
        log.warning(
            "APE_FOUNDRY_HOST=%s takes precedence over --rpc %s (Ape reads it)", env_host, rpc
        )
    try:
        context = networks.parse_network_choice(choice, provider_settings=settings)
        context.__enter__()
    except ApeException as err:
        where = settings.get("host") or choice
        raise ConnectionProblem(
            f"cannot connect to {where} ({type(err).__name__}: {err}). Start the node first "
            "(e.g. `anvil` or `make demo`), or pass --rpc/--network"
        ) from None
    try:
        yield ZcxClient(load_live_deployment(chain.chain_id, deployments_dir), _project())
    finally:
        context.__exit__(None, None, None)
