"""ZCX's shared vocabulary: one definition of each concept that contracts, SDK and reports share.

Nothing here touches the chain; everything above imports it.
"""

from __future__ import annotations

import re

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
