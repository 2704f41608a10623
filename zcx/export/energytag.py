"""ZCX's hourly certificates as EnergyTag GC bundles and actions (issue 12 point 6).

Pure code: `build_export` turns what was read from the chain (`ChainRecord`, see
`zcx.export.source`) into the records an EnergyTag registry serves; `write_export` validates them
against the JSON Schemas in `schemas/energytag/` and writes them. docs/energytag.md has the
field mapping.

Bundle ranges. A ZCX lot is (holder, certificate, units): the units of one certificate are
fungible and carry no ids. EnergyTag bundles are ranges of Wh-certificate ids. The exporter gives
certificate c the ids 1..units(c) within its own issuance id and replays every `LotMoved` in
chain order; a move of k units takes the k lowest ids its sender holds of that certificate,
splitting a bundle when it takes part of one. The same chain always gives the same ranges.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "energytag"
FILES = ("bundles.json", "actions.json")
MANIFEST = "export.json"
# ZCX issues only its own certificates; no other attribute certificate is issued or cancelled
# alongside them by ZCX (EnergyTag v2 configuration 1). FIT meters' exported power, sold as FIT
# non-fossil certificates, is kept out by the SelfConsumption policy (invariant 11).
REGISTRY_CONFIGURATION = 1
METHODS = ("Solar", "Wind", "Geothermal", "Biomass", "Hydro")
SUPPORT = ("None", "FIT", "FIP", "post-FIT")
POLICIES = ("Generation", "SelfConsumption")
DISSEMINATION = {"Generation": "Total generation", "SelfConsumption": "Self-consumed"}
# Direct emissions at the device (kgCO2e/MWh); life-cycle factors are left to the reader.
ZERO_EMISSION_METHODS = {"Solar", "Wind", "Hydro"}
POS_SHIFT = 24  # zcx.audit.events: pos = block << 24 | log index


class ExportError(ValueError):
    """The chain's events do not replay into consistent bundles, or a record fails its schema."""


# --------------------------------------------------------------------------- what is read


@dataclass(frozen=True)
class Device:
    """A meter's attributes, read from the member registry at the export block."""

    meter_id: str  # 0x bytes32
    label: str
    owner_name: str
    method: str
    capacity_w: int
    commissioned_at: int
    zone: str
    support_status: int  # today's; a certificate's own is the one its claim recorded


@dataclass(frozen=True)
class Issued:
    """One CertificateIssued log."""

    pos: int
    certificate_id: int
    meter_id: str
    holder: str
    units: int
    wh: int
    period_start: int
    period_end: int
    evidence: str


@dataclass(frozen=True)
class Claim:
    """One HourlyIssued log: certificates first .. first + count - 1 of one claim."""

    issuance_id: int
    first_certificate_id: int
    count: int
    support_status: int


@dataclass(frozen=True)
class Move:
    """One LotMoved log (target zero: burnt by a retirement in the same transaction)."""

    pos: int
    tx: int
    source: str
    target: str
    certificate_id: int
    units: int


@dataclass(frozen=True)
class Retirement:
    pos: int
    tx: int
    retirement_id: int
    holder: str
    beneficiary: str
    reason: str
    consumption_start: int
    consumption_end: int
    certificate_units: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Revocation:
    pos: int
    certificate_id: int
    reason: str


@dataclass
class ChainRecord:
    """Everything the export needs, read from one chain up to `to_block`."""

    chain_id: int
    token: str
    exchange: str
    from_block: int
    to_block: int
    issued: list[Issued]
    claims: list[Claim]
    moves: list[Move]
    retirements: list[Retirement]
    revocations: list[Revocation]
    devices: dict[str, Device]
    policies: dict[int, int]  # certificate id -> IssuancePolicy, from `hourlyCertificate`
    block_times: dict[int, int]
    expiry_seconds: int  # ZCV's expiryMonths x SECONDS_PER_MONTH: expiry = hour end + this


# --------------------------------------------------------------------------- the replay


@dataclass
class Segment:
    """A bundle while replaying: a range of one certificate's Wh ids and where it is."""

    certificate_id: int
    start: int
    end: int
    hash: str
    holder: str
    status: str = "Active"
    retirement: Retirement | None = None
    revocation_reason: str | None = None

    @property
    def quantity(self) -> int:
        return self.end - self.start + 1

    def split_at(self, units: int) -> tuple[Segment, Segment]:
        """The first `units` ids and the rest, each hashed onto this bundle's hash."""
        cut = self.start + units
        return self._child(self.start, cut - 1), self._child(cut, self.end)

    def _child(self, start: int, end: int) -> Segment:
        return Segment(
            self.certificate_id, start, end, chained_hash(self.hash, start, end), self.holder
        )


@dataclass
class Action:
    pos: int
    part: int
    action_type: str
    segment: Segment
    source: str
    target: str | None = None
    retirement: Retirement | None = None
    revocation_reason: str | None = None


@dataclass
class Export:
    bundles: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    manifest: dict[str, Any]
    skipped: list[int] = field(default_factory=list)


def chained_hash(parent: str, start: int, end: int) -> str:
    """A child bundle's hash: sha256 over its parent's hash and its own range."""
    return hashlib.sha256(f"{parent}:{start}-{end}".encode()).hexdigest()


def root_hash(properties: Mapping[str, Any]) -> str:
    """An issuance's hash: sha256 of its properties as canonical JSON (sorted keys)."""
    text = json.dumps(properties, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issuance_id(chain_id: int, token: str, certificate_id: int) -> str:
    return f"ZCX-{chain_id}-{token}-{certificate_id}"


class _Replay:
    """Holds every certificate's bundles per holder while the logs are applied in chain order."""

    def __init__(self) -> None:
        self.held: dict[tuple[int, str], list[Segment]] = {}
        self.done: list[Segment] = []  # cancelled and withdrawn bundles
        # tx -> (move, its n-th range, the range) burnt, awaiting the Retired log of that tx
        self.burns: dict[int, list[tuple[Move, int, Segment]]] = {}
        self.actions: list[Action] = []

    def issue(self, cert: Issued, hash_: str) -> None:
        self.held[(cert.certificate_id, cert.holder)] = [
            Segment(cert.certificate_id, 1, cert.units, hash_, cert.holder)
        ]

    def take(self, certificate_id: int, holder: str, units: int) -> list[Segment]:
        """The `units` lowest ids `holder` holds of the certificate, split off as needed."""
        held = self.held.get((certificate_id, holder), [])
        taken: list[Segment] = []
        remaining = units
        while remaining:
            if not held:
                raise ExportError(
                    f"certificate {certificate_id}: {holder} moves {units} units but holds "
                    f"{units - remaining} in the replay (logs missing from the read?)"
                )
            segment = held[0]
            if segment.quantity <= remaining:
                taken.append(held.pop(0))
                remaining -= segment.quantity
            else:
                head, held[0] = segment.split_at(remaining)
                taken.append(head)
                remaining = 0
        return taken

    def give(self, holder: str, segments: Iterable[Segment]) -> None:
        for segment in segments:
            segment.holder = holder
            held = self.held.setdefault((segment.certificate_id, holder), [])
            bisect.insort(held, segment, key=lambda s: s.start)

    def move(self, move: Move) -> None:
        taken = self.take(move.certificate_id, move.source, move.units)
        if move.target == ZERO_ADDRESS:
            self.burns.setdefault(move.tx, []).extend((move, i, s) for i, s in enumerate(taken))
            return
        for part, segment in enumerate(taken):
            self.actions.append(
                Action(move.pos, part, "transfer", segment, move.source, target=move.target)
            )
        self.give(move.target, taken)

    def retire(self, retirement: Retirement, exported: set[int]) -> None:
        # Logs are applied in order, so the pending burns of this transaction are exactly this
        # retirement's: a later retirement in the same transaction burns after this log.
        burnt = self.burns.pop(retirement.tx, [])
        by_certificate: dict[int, int] = {}
        for move, part, segment in burnt:
            segment.status, segment.retirement = "Cancelled", retirement
            by_certificate[segment.certificate_id] = (
                by_certificate.get(segment.certificate_id, 0) + segment.quantity
            )
            self.actions.append(
                Action(move.pos, part, "cancel", segment, move.source, retirement=retirement)
            )
            self.done.append(segment)
        stated = {c: u for c, u in retirement.certificate_units if c in exported}
        if by_certificate != stated:
            raise ExportError(
                f"retirement {retirement.retirement_id}: its burnt lots {by_certificate} differ "
                f"from its record {stated}"
            )

    def revoke(self, revocation: Revocation) -> None:
        holders = sorted(h for (c, h) in self.held if c == revocation.certificate_id)
        segments = [s for h in holders for s in self.held.pop((revocation.certificate_id, h))]
        # One log withdraws every holder's bundles: number them across holders.
        for part, segment in enumerate(segments):
            segment.status, segment.revocation_reason = "Withdrawn", revocation.reason
            self.actions.append(
                Action(
                    revocation.pos,
                    part,
                    "withdraw",
                    segment,
                    segment.holder,
                    revocation_reason=revocation.reason,
                )
            )
            self.done.append(segment)

    def bundles(self) -> list[Segment]:
        active = [s for held in self.held.values() for s in held]
        return sorted(active + self.done, key=lambda s: (s.certificate_id, s.start))


def hourly_certificates(record: ChainRecord) -> tuple[dict[int, Issued], dict[int, Claim]]:
    """The schema-2 certificates (those inside an HourlyIssued run) and the claim of each."""
    claim_of: dict[int, Claim] = {}
    for claim in record.claims:
        for cid in range(claim.first_certificate_id, claim.first_certificate_id + claim.count):
            claim_of[cid] = claim
    hourly = {c.certificate_id: c for c in record.issued if c.certificate_id in claim_of}
    return hourly, claim_of


def build_export(record: ChainRecord, actions_from_block: int | None = None) -> Export:
    """Replays the record's logs into bundles (state at `to_block`) and actions (from
    `actions_from_block`, default the first block read)."""
    hourly, claim_of = hourly_certificates(record)
    exported = set(hourly)
    replay = _Replay()
    stream: list[tuple[int, Any]] = [(c.pos, c) for c in hourly.values()]
    stream += [(m.pos, m) for m in record.moves if m.certificate_id in exported]
    stream += [(r.pos, r) for r in record.retirements]
    stream += [(r.pos, r) for r in record.revocations if r.certificate_id in exported]
    for _, item in sorted(stream, key=lambda entry: entry[0]):
        if isinstance(item, Issued):
            device = record.devices[item.meter_id]
            replay.issue(item, root_hash(_issuance_properties(record, item, device)))
        elif isinstance(item, Move):
            replay.move(item)
        elif isinstance(item, Retirement):
            replay.retire(item, exported)
        else:
            replay.revoke(item)
    if replay.burns:
        raise ExportError(f"burnt lots without a Retired log in transactions {list(replay.burns)}")
    first_action_block = record.from_block if actions_from_block is None else actions_from_block
    context = _Context(record, hourly, claim_of)
    bundles = [context.bundle(s) for s in replay.bundles()]
    actions = [
        context.action(a)
        for a in sorted(replay.actions, key=lambda a: (a.pos, a.part))
        if a.pos >> POS_SHIFT >= first_action_block
    ]
    skipped = sorted(c.certificate_id for c in record.issued if c.certificate_id not in exported)
    manifest = {
        "format": "zcx-energytag-export/1",
        "chain_id": record.chain_id,
        "token": record.token,
        "exchange": record.exchange,
        "issuing_body": issuing_body(record),
        "registry_configuration": REGISTRY_CONFIGURATION,
        "replayed_from_block": record.from_block,
        "actions_from_block": first_action_block,
        "to_block": record.to_block,
        "exported_at": iso_utc(record.block_times[record.to_block]),
        "bundle_count": len(bundles),
        "action_count": len(actions),
        "skipped_schema1_certificates": skipped,
    }
    return Export(bundles, actions, manifest, skipped)


def issuing_body(record: ChainRecord) -> str:
    return f"ZCX ValueExchange {record.exchange} (chain {record.chain_id})"


def _issuance_properties(record: ChainRecord, cert: Issued, device: Device) -> dict[str, Any]:
    return {
        "issuance_id": issuance_id(record.chain_id, record.token, cert.certificate_id),
        "device_id": device.label,
        "meter_id": cert.meter_id,
        "production_starting_interval": iso_utc(cert.period_start),
        "production_ending_interval": iso_utc(cert.period_end),
        "wh": cert.wh,
        "units": cert.units,
        "evidence": cert.evidence,
    }


def grid_of(zone: str) -> str:
    """The transmission area of a ZCX zone: its prefix before the dash ("TEPCO-13" -> TEPCO)."""
    return zone.split("-", 1)[0]


@dataclass
class _Context:
    record: ChainRecord
    hourly: dict[int, Issued]
    claim_of: dict[int, Claim]

    def time(self, pos: int) -> str:
        return iso_utc(self.record.block_times[pos >> POS_SHIFT])

    def issuance(self, certificate_id: int) -> str:
        return issuance_id(self.record.chain_id, self.record.token, certificate_id)

    def bundle(self, segment: Segment) -> dict[str, Any]:
        cert = self.hourly[segment.certificate_id]
        device = self.record.devices[cert.meter_id]
        policy = POLICIES[self.record.policies[cert.certificate_id]]
        retirement = segment.retirement
        zero = device.method in ZERO_EMISSION_METHODS
        expires_at = cert.period_end + self.record.expiry_seconds
        # ZCV freezes a certificate from its expiry on (ZeroCarbonValue._isFrozen): units still
        # held then are Expired; retired or withdrawn ones keep their final status.
        status = segment.status
        if status == "Active" and self.record.block_times[self.record.to_block] >= expires_at:
            status = "Expired"
        return {
            "issuance_id": self.issuance(cert.certificate_id),
            "hash": segment.hash,
            "certificate_status": status,
            "account_id": segment.holder,
            "bundle_id_range_start": segment.start,
            "bundle_id_range_end": segment.end,
            "bundle_quantity": segment.quantity,
            "energy_carrier": "Electricity",
            "energy_source": device.method,
            "face_value": 1,
            "issuance_post_energy_carrier_conversion": False,
            "registry_configuration": REGISTRY_CONFIGURATION,
            "device_id": device.label,
            "device_name": device.owner_name,
            "device_technology_type": device.method,
            "device_production_start_date": iso_utc(device.commissioned_at),
            "device_capacity": device.capacity_w,
            "device_location": None,
            "device_type": "Production Device",
            "production_starting_interval": iso_utc(cert.period_start),
            "production_ending_interval": iso_utc(cert.period_end),
            "expiry_datestamp": iso_utc(expires_at)[:10],
            "is_storage": False,
            "sdr_allocation_id": None,
            "storage_efficiency_factor": None,
            "discharging_start_datetime": None,
            "discharging_end_datetime": None,
            "country_of_issuance": "JP",
            "connected_grid_identification": grid_of(device.zone),
            "issuing_body": issuing_body(self.record),
            "legal_status": None,
            "quality_scheme_reference": None,
            "issuance_purpose": None,
            "support_received": SUPPORT[self.claim_of[cert.certificate_id].support_status],
            "dissemination_level": DISSEMINATION[policy],
            "issue_market_zone": device.zone,
            "emissions_factor_production_device": 0.0 if zero else None,
            "emissions_factor_source": "direct emissions at the device" if zero else None,
            "zcx": {
                "certificate_id": cert.certificate_id,
                "claim_issuance_id": self.claim_of[cert.certificate_id].issuance_id,
                "meter_id": cert.meter_id,
                "certificate_wh": cert.wh,
                "certificate_units": cert.units,
                "evidence": cert.evidence,
                "issuance_policy": policy,
                "device_support_status": SUPPORT[device.support_status],
                "issued_block": cert.pos >> POS_SHIFT,
                "issued_at": self.time(cert.pos),
                "expires_at": iso_utc(expires_at),
                **_retirement_fields(retirement, "retirement_reason"),
                "revocation_reason": segment.revocation_reason,
            },
        }

    def action(self, action: Action) -> dict[str, Any]:
        segment, cert = action.segment, self.hourly[action.segment.certificate_id]
        retirement = action.retirement
        when = self.time(action.pos)
        reason = retirement.reason if retirement is not None else action.revocation_reason
        fields = _retirement_fields(retirement, "reason")
        return {
            "action_id": f"{action.pos >> POS_SHIFT}-{action.pos & ((1 << POS_SHIFT) - 1)}-"
            f"{action.part}",
            "action_type": action.action_type,
            "source_id": action.source,
            "target_id": action.target,
            "source_certificate_issuance_id": self.issuance(cert.certificate_id),
            "source_certificate_bundle_id_range_start": segment.start,
            "source_certificate_bundle_id_range_end": segment.end,
            "certificate_quantity": segment.quantity,
            "beneficiary": fields["beneficiary"],
            "certificate_period_start": iso_utc(cert.period_start),
            "certificate_period_end": iso_utc(cert.period_end),
            # One transaction both asks and completes: a refused request leaves no log.
            "action_request_datetime": when,
            "action_completed_datetime": when,
            "action_response_status": "accepted",
            "zcx": {
                "certificate_id": cert.certificate_id,
                "block": action.pos >> POS_SHIFT,
                "log_index": action.pos & ((1 << POS_SHIFT) - 1),
                "retirement_id": fields["retirement_id"],
                "reason": reason,
                "consumption_start": fields["consumption_start"],
                "consumption_end": fields["consumption_end"],
            },
        }


def _retirement_fields(retirement: Retirement | None, reason_key: str) -> dict[str, Any]:
    if retirement is None:
        return dict.fromkeys(
            ("retirement_id", "beneficiary", reason_key, "consumption_start", "consumption_end")
        )
    return {
        "retirement_id": retirement.retirement_id,
        "beneficiary": retirement.beneficiary,
        reason_key: retirement.reason,
        "consumption_start": iso_utc(retirement.consumption_start),
        "consumption_end": iso_utc(retirement.consumption_end),
    }


# --------------------------------------------------------------------------- schema and files


def load_schema(name: str) -> dict[str, Any]:
    """One of the JSON Schemas: "bundles", "actions" or "export"."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return schema


def schema_errors(name: str, document: Any) -> list[str]:
    """Every way `document` fails the schema, as "path: message" lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def documents(export: Export) -> dict[str, dict[str, Any]]:
    """file name -> document; the manifest carries the other files' sha256."""
    docs: dict[str, dict[str, Any]] = {
        "bundles.json": {"format": "zcx-energytag-bundles/1", "bundles": export.bundles},
        "actions.json": {"format": "zcx-energytag-actions/1", "actions": export.actions},
    }
    texts = {name: _dump(doc) for name, doc in docs.items()}
    manifest = {
        **export.manifest,
        "files": {name: hashlib.sha256(t.encode()).hexdigest() for name, t in texts.items()},
    }
    docs[MANIFEST] = manifest
    return docs


def _dump(document: Any) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write_export(export: Export, out: Path) -> dict[str, Path]:
    """Validates every file against its schema, then writes them (each atomically); nothing
    is written when any record fails."""
    docs = documents(export)
    for name, document in docs.items():
        problems = schema_errors(name.removesuffix(".json"), document)
        if problems:
            raise ExportError(f"{name} fails its schema: {problems[0]} ({len(problems)} errors)")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, document in docs.items():
        path = out / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(_dump(document))
        tmp.replace(path)
        written[name] = path
    return written


def validate_directory(out: Path) -> list[str]:
    """Problems with an export folder: schema failures and sha256 mismatches (empty when good)."""
    problems = []
    manifest = json.loads((out / MANIFEST).read_text())
    problems += [f"{MANIFEST} {p}" for p in schema_errors("export", manifest)]
    for name in FILES:
        text = (out / name).read_text()
        problems += [
            f"{name} {p}" for p in schema_errors(name.removesuffix(".json"), json.loads(text))
        ]
        if manifest.get("files", {}).get(name) != hashlib.sha256(text.encode()).hexdigest():
            problems.append(f"{name}: sha256 differs from {MANIFEST}")
    return problems
