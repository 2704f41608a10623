"""Server-side checks of every portal form (the browser runs the same checks first).

Pure functions: each takes the form's raw text fields and what it needs to know about the chain
(a `FormContext`), and returns either the contract call to make or the errors, one per field, as
(message key, values) so the page shows them in the reader's language. Parsing goes through the
SDK's helpers (zcx.holder) so the portal accepts exactly what `zcx holder` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from eth_utils import is_hex_address, to_checksum_address

from zcx.holder import (
    GENERATION_METHODS,
    MEMBER_KINDS,
    UNITS_PER_ZCV,
    format_zcv,
    parse_amount,
    parse_time,
    payment_reference,
)
from zcx.ids import METER_ID_MAX_BYTES, meter_id

ZERO_ADDRESS = "0x" + "00" * 20
MAX_TEXT = 200
MAX_NAME = 100
UINT32_MAX = 2**32 - 1
DR_MAX_SLOTS = 48  # DemandResponse.MAX_SLOTS
DR_TIMEZONE = "Asia/Tokyo"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Problem = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class ContractCall:
    """What the browser encodes and sends: contract, function signature, arguments (JSON-able:
    big integers as decimal strings, bytes as 0x-hex) and a readable summary."""

    contract: str
    signature: str
    args: list[Any]
    summary: dict[str, Any]

    @property
    def method(self) -> str:
        return self.signature.split("(", 1)[0]


@dataclass
class FormContext:
    """What the checks know about the chain and the sender."""

    sender: str
    free_units: int = 0
    operator: str = ZERO_ADDRESS
    is_member: Callable[[str], bool] = lambda _address: False
    meter_exists: Callable[[str], bool] = lambda _label: False
    zone_exists: Callable[[str], bool] = lambda _zone: False
    now: int = 0
    slot_seconds: int = 1800


@dataclass
class Checked:
    errors: dict[str, Problem] = field(default_factory=dict)
    call: ContractCall | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.call is not None


def _text(form: Mapping[str, str], name: str) -> str:
    return str(form.get(name, "") or "").strip()


def _address(form: Mapping[str, str], name: str, errors: dict[str, Problem]) -> str | None:
    value = _text(form, name)
    if not value:
        errors[name] = ("err_required", {})
        return None
    if not is_hex_address(value):
        errors[name] = ("err_address", {})
        return None
    if value.lower() == ZERO_ADDRESS:
        errors[name] = ("err_zero_address", {})
        return None
    return to_checksum_address(value)


def _amount(
    form: Mapping[str, str],
    name: str,
    errors: dict[str, Problem],
    free_units: int | None,
    decimals_key: str = "err_amount_decimals",
) -> int | None:
    """A positive amount with at most 3 decimals (ZCV units, or Wh when given in kWh)."""
    value = _text(form, name).replace(",", "")
    if not value:
        errors[name] = ("err_required", {})
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        errors[name] = ("err_amount_number", {})
        return None
    if not number.is_finite():
        errors[name] = ("err_amount_number", {})
        return None
    if number <= 0:
        errors[name] = ("err_amount_positive", {})
        return None
    if number * UNITS_PER_ZCV != (number * UNITS_PER_ZCV).to_integral_value():
        errors[name] = (decimals_key, {})
        return None
    units = parse_amount(value)
    if free_units is not None and units > free_units:
        errors[name] = ("err_amount_balance", {"balance": format_zcv(free_units)})
        return None
    return units


def _bounded_text(
    form: Mapping[str, str], name: str, errors: dict[str, Problem], limit: int, required: bool
) -> str:
    value = _text(form, name)
    if required and not value:
        errors[name] = ("err_required", {})
    elif len(value) > limit:
        errors[name] = ("err_too_long", {"max": limit})
    return value


def _date(form: Mapping[str, str], name: str, errors: dict[str, Problem]) -> date | None:
    value = _text(form, name)
    if not value:
        errors[name] = ("err_required", {})
        return None
    if not _DATE.match(value):
        errors[name] = ("err_date", {})
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = ("err_date", {})
        return None


def _choice(
    form: Mapping[str, str], name: str, options: tuple[str, ...], errors: dict[str, Problem]
) -> int | None:
    value = _text(form, name).lower()
    for index, option in enumerate(options):
        if option.lower() == value:
            return index
    errors[name] = ("err_choice", {})
    return None


def _meter_label(form: Mapping[str, str], name: str, errors: dict[str, Problem]) -> str | None:
    value = _text(form, name)
    if not value:
        errors[name] = ("err_required", {})
        return None
    try:
        meter_id(value)
    except ValueError:
        errors[name] = ("err_meter_id", {"max": METER_ID_MAX_BYTES})
        return None
    return value


def _bytes32(label: str) -> str:
    return "0x" + meter_id(label).hex()


# ---------------------------------------------------------------------------- member forms


def check_transfer(form: Mapping[str, str], ctx: FormContext, zcv: str) -> Checked:
    errors: dict[str, Problem] = {}
    to = _address(form, "to", errors)
    if to is not None and to.lower() == ctx.sender.lower():
        errors["to"] = ("err_self", {})
    units = _amount(form, "amount", errors, ctx.free_units)
    if errors or to is None or units is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            zcv,
            "transfer(address to,uint256 value)",
            [to, str(units)],
            {"to": to, "amount": format_zcv(units)},
        )
    )


def check_retire(form: Mapping[str, str], ctx: FormContext, zcv: str) -> Checked:
    errors: dict[str, Problem] = {}
    units = _amount(form, "amount", errors, ctx.free_units)
    beneficiary = _bounded_text(form, "beneficiary", errors, MAX_NAME, required=True)
    reason = _bounded_text(form, "reason", errors, MAX_TEXT, required=False)
    first = _date(form, "from_date", errors)
    last = _date(form, "to_date", errors)
    if first is not None and last is not None and last < first:
        errors["to_date"] = ("err_date_order", {})
    if errors or units is None or first is None or last is None:
        return Checked(errors)
    start = parse_time(first.isoformat())
    end = parse_time(last.isoformat(), end=True)
    return Checked(
        call=ContractCall(
            zcv,
            "retire(uint256 units,string beneficiary,string reason,uint64 consumptionStart,"
            "uint64 consumptionEnd)",
            [str(units), beneficiary, reason, start, end],
            {
                "amount": format_zcv(units),
                "beneficiary": beneficiary,
                "period": f"{first.isoformat()} – {last.isoformat()}",
            },
        )
    )


def check_pay(form: Mapping[str, str], ctx: FormContext, zcv: str) -> Checked:
    errors: dict[str, Problem] = {}
    to = _address(form, "to", errors)
    units = _amount(form, "amount", errors, ctx.free_units)
    reference = _bounded_text(form, "reference", errors, MAX_NAME, required=True)
    if errors or to is None or units is None:
        return Checked(errors)
    ref = "0x" + payment_reference(reference).hex()
    return Checked(
        call=ContractCall(
            zcv,
            "pay(address to,uint256 units,bytes32 paymentReference)",
            [to, str(units), ref],
            {"to": to, "amount": format_zcv(units), "reference": reference},
        )
    )


# ---------------------------------------------------------------------------- operator forms


def check_register_member(form: Mapping[str, str], ctx: FormContext, members: str) -> Checked:
    errors: dict[str, Problem] = {}
    account = _address(form, "account", errors)
    if account is not None and ctx.is_member(account):
        errors["account"] = ("err_already_member", {})
    name = _bounded_text(form, "name", errors, MAX_NAME, required=True)
    kind = _choice(form, "kind", MEMBER_KINDS, errors)
    if errors or account is None or kind is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            members,
            "registerMember(address account,string name,uint8 kind)",
            [account, name, kind],
            {"account": account, "name": name, "kind": MEMBER_KINDS[kind]},
        )
    )


def check_register_meter(form: Mapping[str, str], ctx: FormContext, members: str) -> Checked:
    errors: dict[str, Problem] = {}
    label = _meter_label(form, "meter", errors)
    if label is not None and ctx.meter_exists(label):
        errors["meter"] = ("err_meter_exists", {})
    owner = _address(form, "owner", errors)
    if owner is not None and not ctx.is_member(owner):
        errors["owner"] = ("err_not_member", {})
    method = _choice(form, "method", GENERATION_METHODS, errors)
    capacity_text = _text(form, "capacity_w").replace(",", "")
    capacity = int(capacity_text) if capacity_text.isdigit() else 0
    if not 1 <= capacity <= UINT32_MAX:
        errors["capacity_w"] = ("err_integer", {"max": f"{UINT32_MAX:,}"})
    zone = _bounded_text(form, "zone", errors, MAX_NAME, required=True)
    commissioned = _date(form, "commissioned", errors)
    if errors or label is None or owner is None or method is None or commissioned is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            members,
            "registerMeter(bytes32 meterId,address owner,uint8 method,uint32 capacityW,"
            "string zone,uint40 commissionedAt)",
            [_bytes32(label), owner, method, capacity, zone, parse_time(commissioned.isoformat())],
            {"meter": label, "owner": owner, "capacity_w": capacity, "zone": zone},
        )
    )


def check_deactivate_meter(form: Mapping[str, str], ctx: FormContext, members: str) -> Checked:
    errors: dict[str, Problem] = {}
    label = _meter_label(form, "meter", errors)
    if label is not None and not ctx.meter_exists(label):
        errors["meter"] = ("err_meter_unknown", {})
    if errors or label is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            members,
            "setMeterActive(bytes32 meterId,bool active)",
            [_bytes32(label), False],
            {"meter": label},
        )
    )


def check_flag_meter(form: Mapping[str, str], ctx: FormContext, members: str) -> Checked:
    errors: dict[str, Problem] = {}
    label = _meter_label(form, "meter", errors)
    if label is not None and not ctx.meter_exists(label):
        errors["meter"] = ("err_meter_unknown", {})
    flagged = _text(form, "flagged").lower() in ("1", "true", "on", "yes")
    reason = _bounded_text(form, "flag_reason", errors, MAX_TEXT, required=flagged)
    if errors or label is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            members,
            "setMeterFlagged(bytes32 meterId,bool flagged,string reason)",
            [_bytes32(label), flagged, reason],
            {"meter": label, "flagged": flagged, "reason": reason},
        )
    )


def _local_start(
    form: Mapping[str, str], name: str, errors: dict[str, Problem], ctx: FormContext
) -> int | None:
    """A local date-time (YYYY-MM-DDTHH:MM, Asia/Tokyo) on the slot grid, in the future."""
    value = _text(form, name)
    if not value:
        errors[name] = ("err_required", {})
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors[name] = ("err_datetime", {})
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(DR_TIMEZONE))
    start = int(moment.timestamp())
    if start % ctx.slot_seconds:
        errors[name] = ("err_slot_grid", {"minutes": ctx.slot_seconds // 60})
        return None
    if start <= ctx.now:
        errors[name] = ("err_future", {})
        return None
    return start


def _whole(
    form: Mapping[str, str], name: str, errors: dict[str, Problem], low: int, high: int
) -> int | None:
    text = _text(form, name).replace(",", "")
    if not text.isdigit() or not low <= int(text) <= high:
        errors[name] = ("err_range", {"min": f"{low:,}", "max": f"{high:,}"})
        return None
    return int(text)


def check_announce_dr(form: Mapping[str, str], ctx: FormContext, dr: str) -> Checked:
    """An open-to-zone event: every member with a meter in the zone takes part."""
    errors: dict[str, Problem] = {}
    zone = _bounded_text(form, "zone", errors, MAX_NAME, required=True)
    if zone and "zone" not in errors and not ctx.zone_exists(zone):
        errors["zone"] = ("err_zone_unknown", {})
    start = _local_start(form, "start", errors, ctx)
    slots = _whole(form, "slots", errors, 1, DR_MAX_SLOTS)
    target = _amount(form, "target_kwh", errors, None, "err_kwh_decimals")  # kWh to whole Wh
    reward = _whole(form, "reward_per_kwh", errors, 0, 10**12)
    if errors or start is None or slots is None or target is None or reward is None:
        return Checked(errors)
    return Checked(
        call=ContractCall(
            dr,
            "announce(string zone,uint64 start,uint16 slots,uint64 targetWh,uint256 rewardPerKwh,"
            "address[] participants)",
            [zone, start, slots, str(target), str(reward), []],
            {"zone": zone, "start": start, "slots": slots, "target_wh": target},
        )
    )


MEMBER_FORMS = {"transfer": check_transfer, "retire": check_retire, "pay": check_pay}
OPERATOR_FORMS = {
    "register_member": check_register_member,
    "register_meter": check_register_meter,
    "deactivate_meter": check_deactivate_meter,
    "flag_meter": check_flag_meter,
    "announce_dr": check_announce_dr,
}
