"""Helpers shared by the token, exchange and invariant tests: exact revert checks, lot views,
certificate minting through the real registry and exchange, and a Python model of the lot stacks.

The model mirrors ZeroCarbonValue's documented provenance rules (top-first walk that skips revoked
lots, the contract's refill rule for emptied lots, merge into the recipient's top lot,
MAX_LOTS_PER_TRANSFER) so tests can predict every holder's exact lots and every revert reason.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ape
from ape.exceptions import CustomError
from ape.pytest.contextmanagers import RevertInfo
from conftest import INTERVAL, reading
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes
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


def lots(zcv: Any, holder: Any) -> list[tuple[int, int]]:
    """A holder's lots as (certificate id, units), bottom first (the last is the top)."""
    return [(int(lot.certificateId), int(lot.units)) for lot in zcv.lotsOf(holder)]


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
    last = int(zcx.registry.lastEnd(meter_id(label)))
    return last if last else epoch


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
    """Records readings for `label` and lets `owner` claim them; returns the certificate id."""
    record(zcx, submit, label, whs, epoch)
    tx = zcx.exchange.claim(zcx.registry, meter_id(label), sender=owner)
    (claimed,) = event_args(tx, zcx.exchange.Claimed)
    return int(claimed["certificateId"])


# --------------------------------------------------------------------------- lot model


class ModelRevert(Exception):
    """The model predicts that the contract reverts with this custom error."""

    def __init__(self, *names: str) -> None:
        super().__init__(names)
        self.names = names


@dataclass
class LotBook:
    """Python mirror of ZeroCarbonValue's per-holder lot stacks and certificate bookkeeping."""

    lots: dict[str, list[list[int]]] = field(default_factory=dict)
    units: dict[int, int] = field(default_factory=dict)
    retired: dict[int, int] = field(default_factory=dict)
    revoked: set[int] = field(default_factory=set)
    total_issued: int = 0
    total_retired: int = 0

    def stack(self, holder: str) -> list[list[int]]:
        return self.lots.setdefault(holder, [])

    def view(self, holder: str) -> list[tuple[int, int]]:
        return [(c, u) for c, u in self.stack(holder)]

    def balance(self, holder: str) -> int:
        return sum(u for _, u in self.stack(holder))

    def movable(self, holder: str) -> int:
        return sum(u for c, u in self.stack(holder) if c not in self.revoked)

    def held(self, holder: str, certificate_id: int) -> int:
        return sum(u for c, u in self.stack(holder) if c == certificate_id)

    def issue(self, holder: str, certificate_id: int, units: int) -> None:
        self.units[certificate_id] = units
        self.retired[certificate_id] = 0
        self.total_issued += units
        self._credit(holder, certificate_id, units)

    def _credit(self, holder: str, certificate_id: int, units: int) -> None:
        stack = self.stack(holder)
        if stack and stack[-1][0] == certificate_id:
            stack[-1][1] += units
        else:
            stack.append([certificate_id, units])

    def _debit(self, holder: str, index: int, take: int) -> None:
        stack = self.stack(holder)
        if take < stack[index][1]:
            stack[index][1] -= take
            return
        # As the contract: an emptied top is popped (the lot below becomes the top); an emptied
        # lower lot is refilled by the highest lot below the top, and the top stays in place.
        top = len(stack) - 1
        if index == top:
            stack.pop()
            return
        last = top - 1
        if index != last:
            stack[index] = stack[last]
        del stack[last]

    def _take_top(self, holder: str, to: str | None, units: int) -> list[tuple[int, int]]:
        """Returns (certificate, units) taken; `to` None is a burn. Mutates only on success."""
        stack = [list(lot) for lot in self.stack(holder)]
        saved = self.lots.get(holder)
        self.lots[holder] = stack
        taken: list[tuple[int, int]] = []
        index, remaining, visited, first_revoked = len(stack), units, 0, 0
        try:
            while remaining:
                if index == 0:
                    raise ModelRevert("ZcvCertificateRevoked")
                if visited == MAX_LOTS:
                    raise ModelRevert("ZcvTooManyLots")
                index -= 1
                visited += 1
                cert, available = stack[index]
                if cert in self.revoked:
                    first_revoked = first_revoked or cert
                    continue
                take = min(remaining, available)
                remaining -= take
                self._debit(holder, index, take)
                taken.append((cert, take))
        except ModelRevert:
            self.lots[holder] = saved if saved is not None else []
            raise
        for cert, take in taken:
            if to is not None:
                self._credit(to, cert, take)
        return taken

    def transfer(self, holder: str, to: str, units: int) -> list[tuple[int, int]]:
        """transfer / transferFrom / pay (after the allowance check)."""
        if to == ZERO_ADDRESS:
            raise ModelRevert("ERC20InvalidReceiver")
        if units > self.balance(holder):
            raise ModelRevert("ERC20InsufficientBalance")
        if holder == to or units == 0:
            return []
        return self._take_top(holder, to, units)

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
        taken = self._take_top(holder, None, units)
        self._burned(taken)
        return taken

    def take_picks(
        self, holder: str, to: str | None, picks: Sequence[tuple[int, int, int]]
    ) -> list[tuple[int, int]]:
        """transferLots (`to` an address) or retireLots (`to` None): picks (index, cert, units)."""
        if to == ZERO_ADDRESS:
            raise ModelRevert("ERC20InvalidReceiver")
        if not picks:
            raise ModelRevert("ZcvZeroUnits")
        if len(picks) > MAX_LOTS:
            raise ModelRevert("ZcvTooManyLots")
        if to == holder:
            raise ModelRevert("ERC20InvalidReceiver")
        saved = [list(lot) for lot in self.stack(holder)]
        previous = None
        taken: list[tuple[int, int]] = []
        try:
            for index, cert, units in picks:
                stack = self.stack(holder)
                if previous is not None and index >= previous:
                    raise ModelRevert("ZcvLotPicksUnordered")
                previous = index
                if index >= len(stack) or stack[index][0] != cert:
                    raise ModelRevert("ZcvLotMismatch")
                if cert in self.revoked:
                    raise ModelRevert("ZcvCertificateRevoked")
                if units == 0:
                    raise ModelRevert("ZcvZeroUnits")
                if units > stack[index][1]:
                    raise ModelRevert("ZcvLotTooSmall")
                self._debit(holder, index, units)
                taken.append((cert, units))
        except ModelRevert:
            self.lots[holder] = saved
            raise
        for cert, units in taken:
            if to is not None:
                self._credit(to, cert, units)
        if to is None:
            self._burned(taken)
        return taken

    def take_picks_from(
        self, holder: str, to: str, picks: Sequence[tuple[int, int, int]], allowance: int
    ) -> list[tuple[int, int]]:
        """transferLotsFrom: the picks are checked first, then the spender's allowance."""
        saved = [list(lot) for lot in self.stack(holder)], [list(lot) for lot in self.stack(to)]
        taken = self.take_picks(holder, to, picks)
        if sum(units for _, units in taken) > allowance:
            self.lots[holder], self.lots[to] = saved
            raise ModelRevert("ERC20InsufficientAllowance")
        return taken

    def _burned(self, taken: Sequence[tuple[int, int]]) -> None:
        for cert, units in taken:
            self.retired[cert] += units
            self.total_retired += units
