"""ZCX's shared vocabulary: one definition of each concept that contracts, SDK and reports share.

Nothing here touches the chain; everything above imports it.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils import keccak

_BYTES32_HEX = re.compile(r"0x[0-9a-fA-F]{64}")


class PaymentReferenceError(ValueError):
    """A payment or statement reference that cannot be encoded."""


def payment_reference(reference: str) -> bytes:
    """The bytes32 that `ZeroCarbonValue.pay`, the operator's statements and the market's
    `payStatement` all use for one bill or statement id: keccak256 of the id's UTF-8 text
    (surrounding spaces ignored), or a 0x-prefixed 32-byte value taken as is.

    One encoding everywhere, so a member who pays a statement with `zcx holder pay --reference
    <statement id>` is credited by the statements and by the market's settlement.
    """
    text = reference.strip()
    if not text:
        raise PaymentReferenceError("reference: must not be empty (give the bill or statement id)")
    if _BYTES32_HEX.fullmatch(text):
        return bytes.fromhex(text[2:])
    return keccak(text=text)


# ---------------------------------------------------------------------------- display time

_display_zone: tzinfo | None = None


def display_zone() -> tzinfo:
    """The zone times are shown in: `--tz`, else ZCX_TZ (e.g. Asia/Tokyo), else UTC."""
    return _display_zone or zone(os.environ.get("ZCX_TZ") or "UTC")


def set_display_zone(name: str | None) -> None:
    """The zone of this command run; None goes back to ZCX_TZ or UTC. Each `zcx` invocation
    sets it, so one run's --tz never carries into the next in the same process (tests)."""
    global _display_zone
    _display_zone = zone(name) if name else None


def zone(name: str) -> tzinfo:
    """An IANA zone by name; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Tokyo)") from None


def iso_time(timestamp: int) -> str:
    """Unix seconds as ISO 8601 with the zone's offset, to the minute: 2026-11-20T10:00+09:00."""
    return datetime.fromtimestamp(int(timestamp), display_zone()).isoformat(timespec="minutes")
