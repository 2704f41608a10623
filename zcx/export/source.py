"""Reads what the EnergyTag export needs from the chain: ZeroCarbonValue's logs through the
audit's paged event reader (`zcx.audit.events.EventReader`), block times, and from the member
registry the issuance policy schedules and each meter's attributes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eth_utils import to_checksum_address

from zcx.audit.events import DEFAULT_PAGE_BLOCKS, Abi, EventReader, EventTable
from zcx.audit.ledger import block_timestamps
from zcx.export.energytag import (
    METHODS,
    POS_SHIFT,
    ChainRecord,
    Claim,
    Device,
    Issued,
    Move,
    Retirement,
    Revocation,
)
from zcx.ids import meter_label

TOKEN = "ZeroCarbonValue"


def _rows(table: EventTable) -> list[dict[str, Any]]:
    columns = table.columns
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def read_record(
    w3: Any,
    addresses: Mapping[str, str],
    abis: Mapping[str, Abi],
    from_block: int,
    to_block: int | None = None,
    page_blocks: int = DEFAULT_PAGE_BLOCKS,
    progress: Callable[[int], None] | None = None,
) -> ChainRecord:
    """Reads ZeroCarbonValue's logs from `from_block` (the deployment block: bundles need the
    whole history) to `to_block` (default latest), then the views the logs do not carry."""
    reader = EventReader(w3, {TOKEN: addresses[TOKEN]}, {TOKEN: abis[TOKEN]}, page_blocks)
    last = reader.latest_block() if to_block is None else to_block
    tables = reader.read(from_block, last, progress=progress)
    issued = [
        Issued(
            r["_pos"],
            r["certificateId"],
            r["meterId"],
            r["to"],
            r["units"],
            r["wh"],
            r["periodStart"],
            r["periodEnd"],
            r["evidence"],
        )
        for r in _rows(tables[f"{TOKEN}.CertificateIssued"])
    ]
    claims = [
        Claim(r["issuanceId"], r["firstCertificateId"], r["count"], r["supportStatus"])
        for r in _rows(tables[f"{TOKEN}.HourlyIssued"])
    ]
    moves = [
        Move(r["_pos"], r["_tx"], r["from"], r["to"], r["certificateId"], r["units"])
        for r in _rows(tables[f"{TOKEN}.LotMoved"])
    ]
    retirements = [
        Retirement(
            r["_pos"],
            r["_tx"],
            r["retirementId"],
            r["holder"],
            r["beneficiary"],
            r["reason"],
            r["consumptionStart"],
            r["consumptionEnd"],
            tuple(zip(r["certificateIds"], r["certificateUnits"], strict=True)),
        )
        for r in _rows(tables[f"{TOKEN}.Retired"])
    ]
    revocations = [
        Revocation(r["_pos"], r["certificateId"], r["reason"])
        for r in _rows(tables[f"{TOKEN}.CertificateRevoked"])
    ]
    members = w3.eth.contract(
        address=to_checksum_address(addresses["MemberRegistry"]), abi=abis["MemberRegistry"]
    )
    status_of = {
        cid: claim.support_status
        for claim in claims
        for cid in range(claim.first_certificate_id, claim.first_certificate_id + claim.count)
    }
    hourly_ids = set(status_of)
    schedules = {
        status: members.functions.issuancePolicies(status).call(block_identifier=last)
        for status in set(status_of.values())
    }
    policies = {
        c.certificate_id: policy_at(schedules[status_of[c.certificate_id]], c.period_start)
        for c in issued
        if c.certificate_id in hourly_ids
    }
    meters = {c.meter_id for c in issued if c.certificate_id in hourly_ids}
    blocks = {p >> POS_SHIFT for p in [*(c.pos for c in issued), *(m.pos for m in moves)]}
    blocks |= {r.pos >> POS_SHIFT for r in retirements} | {last}
    blocks |= {r.pos >> POS_SHIFT for r in revocations}
    token = w3.eth.contract(address=to_checksum_address(addresses[TOKEN]), abi=abis[TOKEN])
    expiry_seconds = token.functions.expiryMonths().call(
        block_identifier=last
    ) * token.functions.SECONDS_PER_MONTH().call(block_identifier=last)
    return ChainRecord(
        chain_id=int(w3.eth.chain_id),
        token=to_checksum_address(addresses[TOKEN]),
        exchange=to_checksum_address(addresses["ValueExchange"]),
        from_block=from_block,
        to_block=last,
        issued=issued,
        claims=claims,
        moves=moves,
        retirements=retirements,
        revocations=revocations,
        devices={m: read_device(members, m, last) for m in sorted(meters)},
        policies=policies,
        block_times=block_timestamps(w3, blocks),
        expiry_seconds=int(expiry_seconds),
    )


def policy_at(schedule: list[tuple[int, int]], hour_start: int) -> int:
    """The issuance policy in force at `hour_start` in a status's (effectiveFrom, policy)
    schedule, as `MemberRegistry.issuancePolicyAt` finds it. The schedule only grows, and never
    with a past effective time, so today's schedule gives the policy each claimed hour was
    issued under (a few calls instead of one `hourlyCertificate` view per certificate)."""
    for effective_from, policy in reversed(schedule):
        if effective_from <= hour_start:
            return int(policy)
    raise ValueError(f"no issuance policy in force at {hour_start}: the schedule starts later")


def _label(raw: bytes) -> str:
    try:
        return meter_label(raw)
    except UnicodeDecodeError:  # not a text label: the id itself
        return "0x" + raw.hex()


def read_device(members: Any, meter_id: str, block: int) -> Device:
    """A meter's attributes from the member registry (schema 2 references them, never copies)."""
    raw = bytes.fromhex(meter_id[2:])
    spec, zone = members.functions.meter(raw).call(block_identifier=block)
    owner, capacity_w, commissioned_at, method, _active, _flagged = spec
    owner_name = members.functions.member(owner).call(block_identifier=block)[0]
    support_status, _opt_in = members.functions.meterAttributes(raw).call(block_identifier=block)
    return Device(
        meter_id=meter_id,
        label=_label(raw),
        owner_name=owner_name,
        method=METHODS[method],
        capacity_w=int(capacity_w),
        commissioned_at=int(commissioned_at),
        zone=zone,
        support_status=int(support_status),
    )
