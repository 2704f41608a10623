"""Turns revert data and `ReadingRejected` reasons into the custom error's name, its arguments and
a plain sentence, never a raw revert blob."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import keccak

# Plain sentences for the errors a user or operator meets; {name} placeholders are the ABI inputs.
SENTENCES: dict[str, str] = {
    "RegistryUnknownMeter": "the meter is not registered",
    "RegistryInactiveMeter": "the meter is deactivated",
    "RegistryBadIntervalLength": "the interval does not last exactly {expectedSeconds} seconds",
    "RegistryReadingOverlaps": "the interval [{start}, {end}) covers time already recorded for "
    "this meter (a replay, or other figures for the same time)",
    "RegistryReadingMisaligned": "the interval must start on a multiple of {intervalSeconds} "
    "seconds",
    "RegistryReadingInFuture": "the interval ends in the future",
    "RegistryReadingBeforeCommissioning": "the interval starts before the meter was commissioned",
    "RegistryGenerationExceedsCapacity": "generation {generatedWh} Wh exceeds what the meter's "
    "capacity allows ({maxWh} Wh)",
    "RegistryTotalsOverflow": "the reading would overflow the meter's running totals "
    "(implausible value)",
    "RegistryBatchAlreadyApplied": "this batch was already applied",
    "RegistryQuorumNotMet": "only {validSigners} oracle signatures; {quorum} needed",
    "RegistryDuplicateSigner": "the same oracle signed twice",
    "RegistrySignersNotSorted": "signatures must be ordered by ascending signer address",
    "RegistryUnknownSigner": "a signature is not from a registered oracle signer",
    "RegistryNothingToClaim": "the meter has no unclaimed verified generation",
    "ExchangeNotMeterOwner": "only the meter's owner can claim its coins",
    "ExchangeMeterFlagged": "the operator has flagged this meter; claims are refused",
    "ExchangeUnknownRegistry": "the exchange does not accept this registry",
    "ExchangeGenerationClaimedElsewhere": "generation from {periodStart} may already be claimed "
    "through another registry (claimed up to {claimedUntil})",
    "ExchangeRateInForce": "rate entry {index} is already in force and cannot be cancelled",
    "ExchangeRateNotFound": "no scheduled rate has index {index} and effective time "
    "{effectiveFrom}",
    "ZcvCertificateRevoked": "certificate {certificateId} is revoked; "
    "its units cannot move or be retired",
    "ZcvCertificateExpired": "certificate {certificateId} expired at {expiredAt}; "
    "its units cannot move or be retired",
    "ZcvConsumptionOutsideVintage": "certificate {certificateId} is of vintage {vintageYear}; "
    "the consumption period ({consumptionStart}..{consumptionEnd}) must lie within that "
    "year (JST)",
    "ZcvBadExpiry": "expiry must be 1 to 1200 months, not {expiryMonths}",
    "ZcvTooManyLots": "the transfer would touch more than {maxLots} certificate lots; send less "
    "per transaction (the CLI splits it) or name certificates with transfer-lots",
    "ZcvLotTooSmall": "you hold only {available} units of certificate {certificateId}",
    "ZcvNothingToEvict": "{holder} holds no unfrozen units of revoked or expired certificate "
    "{certificateId}",
    "ZcvEmptyBeneficiary": "a retirement must name its beneficiary",
    "ZcvUnknownCertificate": "there is no certificate {certificateId}",
    "ZcvAlreadyRevoked": "certificate {certificateId} is already revoked",
    "ZcvZeroUnits": "the amount must be more than zero units",
    "ZcvLotPicksUnordered": "lot picks must name strictly ascending certificate ids, each once "
    "(at {certificateId})",
    "MembersZeroAccount": "the zero address cannot be a member",
    "MembersEmptyName": "a member needs a name",
    "MembersAlreadyRegistered": "{account} is already a member",
    "MembersUnknownMember": "{account} is not a registered member",
    "MembersInactiveMember": "member {account} is deactivated",
    "MembersZeroMeterId": "the meter id must not be zero",
    "MembersMeterAlreadyRegistered": "meter {meterId} is already registered",
    "MembersUnknownMeter": "meter {meterId} is not registered",
    "MembersEmptyZone": "a meter needs a grid zone or location code",
    "ERC20InvalidReceiver": "cannot send to {receiver}",
    "ZcvBadConsumptionPeriod": "the consumption period must end after it starts",
    "ERC20InsufficientBalance": "{token} balance {balance} is less than {needed}",
    "ERC20InsufficientAllowance": "{token} allowance {allowance} is less than {needed}",
    "AccessControlUnauthorizedAccount": "account {account} lacks the role this action needs",
    "EnforcedPause": "the contract is paused",
}


@dataclass(frozen=True)
class DecodedError:
    name: str
    args: dict[str, Any]

    @property
    def sentence(self) -> str:
        template = SENTENCES.get(self.name)
        if template is None:
            return self.name
        try:
            return template.format(**{"token": "token", **self.args})
        except (KeyError, IndexError):
            return template

    def __str__(self) -> str:
        return f"{self.name}: {self.sentence}"


def name_token(error: DecodedError, symbol: str, decimals: int) -> DecodedError:
    """An ERC-20 error with the token named and its amounts in the token's own units
    (`ZCV balance 8.400 is less than 9.000`), instead of base units of an unnamed token."""
    if not error.name.startswith("ERC20Insufficient"):
        return error
    amounts = {"balance", "allowance", "needed"}
    args = {
        key: format_amount(int(value), decimals) if key in amounts else value
        for key, value in error.args.items()
    }
    return DecodedError(error.name, {**args, "token": symbol})


def format_amount(base_units: int, decimals: int) -> str:
    """1234000 at 3 decimals -> '1,234.000'."""
    whole, frac = divmod(base_units, 10**decimals)
    return f"{whole:,}.{frac:0{decimals}d}" if decimals else f"{whole:,}"


def _signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"


def _abi_type(item: Mapping[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


class ErrorDecoder:
    """Decodes custom errors of the given ABIs (lists of ABI entry dicts)."""

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]]) -> None:
        self._by_selector: dict[bytes, Mapping[str, Any]] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") == "error":
                    self._by_selector[keccak(text=_signature(entry))[:4]] = entry

    def decode(self, data: bytes) -> DecodedError:
        data = bytes(data)
        entry = self._by_selector.get(data[:4])
        if entry is None:
            return DecodedError(f"unknown error 0x{data[:4].hex()}", {})
        types = [_abi_type(i) for i in entry["inputs"]]
        values = decode(types, data[4:]) if types else ()
        names = [i["name"] or f"arg{n}" for n, i in enumerate(entry["inputs"])]
        return DecodedError(str(entry["name"]), dict(zip(names, values, strict=True)))
