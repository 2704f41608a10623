"""Helpers shared by the token, exchange and invariant tests: exact revert checks, lot views,
certificate minting through the real registry and exchange, and a Python model of the lot stacks.

The model mirrors ZeroCarbonValue's documented provenance rules (one lot per holder and certificate;
the current lot, then size classes largest first; relinking on credit and debit; revoked lots met
by a plain spend or evicted move to the frozen ledger; MAX_LOTS_PER_TRANSFER) so tests can
predict every holder's exact lots, in `lotsOf` order, and every revert reason.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

import ape
from ape.exceptions import CustomError
from ape.pytest.contextmanagers import RevertInfo
from clock_support import epoch_for, jst_year_start
from conftest import INTERVAL, reading
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes
from registry_helpers import claim_hourly
from web3.exceptions import ContractCustomError

from zcx.deploy import error_decoder
from zcx.errors import ErrorDecoder
from zcx.ids import meter_id

MAX_LOTS = 32
READING_TYPEHASH = keccak(
    text="Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,"
    "uint64 soldWh,uint64 purchasedWh)"
)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


JST = timezone(timedelta(hours=9))


def _plain(value: Any) -> Any:
    """Accounts and contracts compare by address; everything else as is."""
    address = getattr(value, "address", None)
    if address is not None:
        value = str(address)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    return value


@contextlib.contextmanager
def reverts_with(name: str | tuple[str, ...], **inputs: Any) -> Iterator[RevertInfo]:
    """Like `ape.reverts(Contract.Error, **inputs)` but strict: the revert must decode to a custom
    error of exactly this name (ape.reverts lets an undecoded revert pass) with these inputs."""
    names = (name,) if isinstance(name, str) else name
    with ape.reverts() as info:
        yield info
    error = info.value
    if isinstance(error, CustomError):
        actual, args = type(error).__name__, dict(error.inputs)
    else:
        actual, args = _decode_call_revert(str(error.revert_message))
    assert actual in names, f"expected {names}, got {actual}{args}"
    for key, expected in inputs.items():
        got = args[key]
        assert _plain(got) == _plain(expected), (
            f"{actual}.{key}: expected {expected!r}, got {got!r}"
        )


@functools.cache
def _decoder() -> ErrorDecoder:
    return error_decoder()


def _decode_call_revert(message: str) -> tuple[str, dict[str, Any]]:
    """Ape leaves eth_call (view) reverts undecoded; Anvil reports them as
    "custom error 0x<selector>: <arguments>"."""
    match = re.fullmatch(r"custom error 0x([0-9a-f]{8}):? ?(.*)", message, flags=re.S)
    assert match, f"not a custom error revert: {message!r}"
    args = match.group(2)
    # Anvil prints the arguments as hex, or as text when they happen to be valid UTF-8.
    if re.fullmatch(r"(?:[0-9a-f]{64})*", args):
        body = bytes.fromhex(args)
    else:
        body = args.encode("utf-8")
    raw = bytes.fromhex(match.group(1)) + body
    decoded = _decoder().decode(raw)
    return decoded.name, decoded.args


def call_reverts(
    method: Any, *args: Any, sender: Any, name: str | tuple[str, ...], **inputs: Any
) -> None:
    """Fast exact revert check for property tests: runs the transaction `method(*args)` from
    `sender` as an eth_call on the pending block (no transaction, no trace) and asserts that it
    reverts with the custom error `name` and these inputs."""
    names = (name,) if isinstance(name, str) else name
    request = {
        "from": str(sender.address),
        "to": str(method.contract.address),
        "data": HexBytes(method.encode_input(*args)),
    }
    try:
        ape.chain.provider.web3.eth.call(request, "pending")  # type: ignore[arg-type]
    except ContractCustomError as err:
        decoded = _decoder().decode(HexBytes(str(err.data)))
    else:
        raise AssertionError(f"expected {names}, but the call succeeded")
    assert decoded.name in names, f"expected {names}, got {decoded}"
    for key, expected in inputs.items():
        got = decoded.args[key]
        assert _plain(got) == _plain(expected), (
            f"{decoded.name}.{key}: expected {expected!r}, got {got!r}"
        )


def lots(zcv: Any, holder: Any, page: int = 200) -> list[tuple[int, int]]:
    """A holder's lots as (certificate id, units) in spend order (`lotsOf`, read page by page)."""
    out: list[tuple[int, int]] = []
    while True:
        chunk = zcv.lotsOf(holder, len(out), page)
        out += [(int(lot.certificateId), int(lot.units)) for lot in chunk]
        if len(chunk) < page:
            return out


def event_args(tx: Any, event: Any) -> list[dict[str, Any]]:
    """The decoded arguments of every `event` log of a receipt, in log order."""
    return [dict(log.event_arguments) for log in tx.decode_logs(event)]


def reading_hash(r: Any) -> bytes:
    """EIP-712 hashStruct(Reading), as the registry folds it into a meter's evidence head."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "uint64", "uint64", "uint64", "uint64", "uint64", "uint64"],
            [READING_TYPEHASH, *r.as_tuple()],
        )
    )


def evidence_head(readings: Sequence[Any], previous: bytes = b"\x00" * 32) -> bytes:
    """The rolling evidence digest keccak(previous ‖ readingHash) over recorded readings."""
    head = previous
    for r in readings:
        head = keccak(head + reading_hash(r))
    return head


def next_start(zcx: Any, label: str, epoch: int) -> int:
    """The next clock hour at or after the meter's watermark: certificates are hourly and an hour
    is issued once, so each `mint` starts a fresh hour."""
    last = int(zcx.registry.lastEnd(meter_id(label)))
    return -(-last // 3600) * 3600 if last else epoch


def record(
    zcx: Any, submit: Callable[..., Any], label: str, whs: Sequence[int], epoch: int
) -> list:
    """Submits one reading per Wh figure, back to back from the meter's watermark."""
    start = next_start(zcx, label, epoch)
    readings = [
        reading(label, start + i * INTERVAL, gen=wh, cons=0, sold=wh, bought=0)
        for i, wh in enumerate(whs)
    ]
    submit(readings)
    return readings


def mint(
    zcx: Any, submit: Callable[..., Any], owner: Any, label: str, whs: Sequence[int], epoch: int
) -> int:
    """Records readings for `label` and lets `owner` claim them; returns the first certificate
    id (one certificate per clock hour: two readings from an hour-aligned start make one)."""
    record(zcx, submit, label, whs, epoch)
    tx = claim_hourly(zcx.exchange, zcx.registry, meter_id(label), sender=owner)
    (claimed,) = event_args(tx, zcx.exchange.Claimed)
    return int(claimed["firstCertificateId"])


# --------------------------------------------------------------------------- lot model


class ModelRevert(Exception):
    """The model predicts that the contract reverts with this custom error."""

    def __init__(self, *names: str) -> None:
        super().__init__(names)
        self.names = names


TOP_CLASS = 63


def size_class(units: int) -> int:
    """floor(log2(units)) capped at 63, as the contract's `_sizeClass` (0 for 0 or 1 unit)."""
    return min(max(units.bit_length() - 1, 0), TOP_CLASS)


@dataclass
class Holding:
    """One holder in the model: the current lot, the size-class lists (head first) with their
    lots' units, and the frozen ledger (head first)."""

    current: list[int] | None = None  # [certificate id, units]
    classes: dict[int, list[int]] = field(default_factory=dict)
    listed: dict[int, int] = field(default_factory=dict)
    frozen: list[int] = field(default_factory=list)
    frozen_units: dict[int, int] = field(default_factory=dict)

    def copy(self) -> Holding:
        return Holding(
            list(self.current) if self.current else None,
            {c: list(ids) for c, ids in self.classes.items()},
            dict(self.listed),
            list(self.frozen),
            dict(self.frozen_units),
        )

    def view(self) -> list[tuple[int, int]]:
        """lotsOf order: current, classes largest first (head first), then the frozen ledger."""
        out = [tuple(self.current)] if self.current else []
        for c in sorted(self.classes, reverse=True):
            out += [(cid, self.listed[cid]) for cid in self.classes[c]]
        out += [(cid, self.frozen_units[cid]) for cid in self.frozen]
        return out  # type: ignore[return-value]

    def push(self, cid: int, units: int) -> None:
        self.classes.setdefault(size_class(units), []).insert(0, cid)
        self.listed[cid] = units

    def unlink(self, cid: int) -> None:
        c = size_class(self.listed[cid])
        self.classes[c].remove(cid)
        if not self.classes[c]:
            del self.classes[c]
        del self.listed[cid]

    def pop_largest(self) -> tuple[int, int]:
        c = max(self.classes)
        cid = self.classes[c][0]
        units = self.listed[cid]
        self.unlink(cid)
        return cid, units

    def freeze(self, cid: int, units: int) -> None:
        self.frozen.insert(0, cid)
        self.frozen_units[cid] = units


@dataclass
class LotBook:
    """Python mirror of ZeroCarbonValue's lot ledger v2 (docs/provenance.md) and certificate
    bookkeeping: it predicts every holder's exact `lotsOf` order and every revert reason."""

    holdings: dict[str, Holding] = field(default_factory=dict)
    units: dict[int, int] = field(default_factory=dict)
    retired: dict[int, int] = field(default_factory=dict)
    revoked: set[int] = field(default_factory=set)
    total_issued: int = 0
    total_retired: int = 0

    def of(self, holder: str) -> Holding:
        return self.holdings.setdefault(holder, Holding())

    def view(self, holder: str) -> list[tuple[int, int]]:
        return self.of(holder).view()

    def balance(self, holder: str) -> int:
        return sum(u for _, u in self.view(holder))

    def movable(self, holder: str) -> int:
        return sum(u for c, u in self.view(holder) if c not in self.revoked)

    def held(self, holder: str, certificate_id: int) -> int:
        return sum(u for c, u in self.view(holder) if c == certificate_id)

    def snapshot(self) -> tuple[Any, ...]:
        return (
            {h: x.copy() for h, x in self.holdings.items()},
            dict(self.retired),
            self.total_retired,
        )

    def restore(self, saved: tuple[Any, ...]) -> None:
        self.holdings, self.retired, self.total_retired = saved[0], dict(saved[1]), saved[2]

    def issue(self, holder: str, certificate_id: int, units: int) -> None:
        self.units[certificate_id] = units
        self.retired[certificate_id] = 0
        self.total_issued += units
        self._credit(holder, certificate_id, units)

    def _credit(self, holder: str, cid: int, units: int) -> None:
        h = self.of(holder)
        if h.current and h.current[0] == cid:
            h.current[1] += units
            return
        if cid in h.frozen_units:
            h.frozen_units[cid] += units
            return
        if cid in h.listed:
            total = h.listed[cid] + units
            if size_class(total) == size_class(h.listed[cid]):
                h.listed[cid] = total
                return
            h.unlink(cid)
        else:
            total = units
            if not h.view():
                h.current = [cid, total]
                return
        top_listed = max(h.classes, default=0)
        if h.current and size_class(total) > max(size_class(h.current[1]), top_listed):
            h.push(*h.current)
            h.current = [cid, total]
        else:
            h.push(cid, total)

    def _spend(self, holder: str, to: str | None, units: int) -> list[tuple[int, int]]:
        """Plain spend order; `to` None is a burn. Mutates only on success."""
        saved = self.snapshot()
        h = self.of(holder)
        taken: list[tuple[int, int]] = []
        remaining, visited = units, 0
        try:
            while remaining:
                if h.current:
                    cid, available = h.current
                else:
                    if not h.classes:
                        raise ModelRevert("ZcvCertificateRevoked")
                    cid, available = h.pop_largest()
                if visited == MAX_LOTS:
                    raise ModelRevert("ZcvTooManyLots")
                visited += 1
                h.current = None
                if cid in self.revoked:
                    h.freeze(cid, available)
                    continue
                take = min(remaining, available)
                remaining -= take
                if available > take:
                    h.current = [cid, available - take]
                if to is not None:
                    self._credit(to, cid, take)
                taken.append((cid, take))
        except ModelRevert:
            self.restore(saved)
            raise
        return taken

    def transfer(self, holder: str, to: str, units: int) -> list[tuple[int, int]]:
        """transfer / transferFrom / pay (after the allowance check)."""
        if to == ZERO_ADDRESS:
            raise ModelRevert("ERC20InvalidReceiver")
        if units > self.balance(holder):
            raise ModelRevert("ERC20InsufficientBalance")
        if holder == to or units == 0:
            return []
        return self._spend(holder, to, units)

    def pay(self, holder: str, to: str, units: int) -> list[tuple[int, int]]:
        """pay refuses paying oneself (it would count "used" coins with nothing moving)."""
        if to == holder:
            raise ModelRevert("ERC20InvalidReceiver")
        return self.transfer(holder, to, units)

    def retire(self, holder: str, units: int) -> list[tuple[int, int]]:
        if units == 0:
            raise ModelRevert("ZcvZeroUnits")
        if units > self.balance(holder):
            raise ModelRevert("ERC20InsufficientBalance")
        taken = self._spend(holder, None, units)
        self._burned(taken)
        return taken

    def evict(self, holder: str, cid: int) -> int:
        """Permissionless eviction of a revoked certificate's lot into the frozen ledger."""
        h = self.of(holder)
        if cid not in self.revoked:
            raise ModelRevert("ZcvNothingToEvict")
        if h.current and h.current[0] == cid:
            units = h.current[1]
            h.current = None
            h.freeze(cid, units)
            if h.classes:  # the evictor puts the next lot in place
                h.current = list(h.pop_largest())
            return units
        if cid not in h.listed:
            raise ModelRevert("ZcvNothingToEvict")
        units = h.listed[cid]
        h.unlink(cid)
        h.freeze(cid, units)
        return units

    def take_picks(
        self, holder: str, to: str | None, picks: Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """transferLots (`to` an address) or retireLots (`to` None): picks (cert, units)."""
        if to == ZERO_ADDRESS:
            raise ModelRevert("ERC20InvalidReceiver")
        if not picks:
            raise ModelRevert("ZcvZeroUnits")
        if to == holder:
            raise ModelRevert("ERC20InvalidReceiver")
        saved = self.snapshot()
        h = self.of(holder)
        previous = 0
        taken: list[tuple[int, int]] = []
        try:
            for cid, units in picks:
                if cid <= previous:
                    raise ModelRevert("ZcvLotPicksUnordered")
                previous = cid
                if units == 0:
                    raise ModelRevert("ZcvZeroUnits")
                if cid in self.revoked:
                    raise ModelRevert("ZcvCertificateRevoked")
                self._debit_named(h, cid, units)
                if to is not None:
                    self._credit(to, cid, units)
                taken.append((cid, units))
        except ModelRevert:
            self.restore(saved)
            raise
        if to is None:
            self._burned(taken)
        return taken

    @staticmethod
    def _debit_named(h: Holding, cid: int, units: int) -> None:
        if h.current and h.current[0] == cid:
            if units > h.current[1]:
                raise ModelRevert("ZcvLotTooSmall")
            h.current[1] -= units
            if not h.current[1]:
                h.current = None
            return
        available = h.listed.get(cid, 0)
        if units > available:
            raise ModelRevert("ZcvLotTooSmall")
        rest = available - units
        if rest and size_class(rest) == size_class(available):
            h.listed[cid] = rest
            return
        h.unlink(cid)
        if rest:
            h.push(cid, rest)

    def take_picks_from(
        self, holder: str, to: str, picks: Sequence[tuple[int, int]], allowance: int
    ) -> list[tuple[int, int]]:
        """transferLotsFrom: the picks are checked first, then the spender's allowance."""
        saved = self.snapshot()
        taken = self.take_picks(holder, to, picks)
        if sum(units for _, units in taken) > allowance:
            self.restore(saved)
            raise ModelRevert("ERC20InsufficientAllowance")
        return taken

    def _burned(self, taken: Sequence[tuple[int, int]]) -> None:
        for cert, units in taken:
            self.retired[cert] += units
            self.total_retired += units


# --------------------------------------------------------------------------- direct issuance


# Retirements consume within the certificates' vintage year (JST). The tests' hourly
# certificates date from the `epoch` fixture (epoch_for the chain's clock, which starts at the
# wall clock), so the test vintage is that year, and schema-1 test certificates are dated in it
# too: the tests keep passing whatever day of the year they run on.
VINTAGE_START = jst_year_start(epoch_for(time.time()))
CONSUMPTION = (VINTAGE_START, VINTAGE_START + 31 * 86400)  # the vintage's January


def certificate_input(units: int, serial: int = 0, wh: int | None = None) -> tuple:
    """A CertificateInput for direct `issue` calls by a test issuer (no registry behind it),
    dated in the test vintage year (serial hours after its start)."""
    period_start = VINTAGE_START + serial * 3600
    return (
        ZERO_ADDRESS,
        meter_id(f"BULK-{serial}"),
        "Bulk test generator",
        0,
        wh if wh is not None else units,
        period_start,
        period_start + 3600,
        "TEPCO-13",
        5_000,
        keccak(text=f"evidence {serial}"),
        units,
    )
