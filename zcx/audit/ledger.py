"""Rebuilds the whole ledger from the chain as pandas DataFrames.

`build_ledger` reads every event of the four contracts from the deployment block (in pages, see
`events.EventReader`), turns each event family into a DataFrame and reads the handful of views
the checks compare against (supply, counters, certificates, lots), all at the audited block.

Every frame carries `pos` (block << 24 | log index: a total order of logs on the chain) and
`block`. Amounts are Python ints in `object` columns where they may exceed int64 (token units),
int64 elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from zcx.audit.events import POS_SHIFT, Abi, EventReader, EventTable, _abi_type
from zcx.certificates import CallableDirectory, MeterRecord, static_attributes
from zcx.errors import ErrorDecoder
from zcx.ids import meter_label

log = logging.getLogger(__name__)

MEMBER_KINDS = ("Household", "PublicFacility", "Business", "Generator", "Operator")
METHODS = ("Solar", "Wind", "Geothermal", "Biomass", "Hydro")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
PQ = ["pq1", "pq2", "pq3", "pq4"]


@dataclass
class ChainState:
    """Views read at the audited block, to compare with what the events add up to."""

    total_supply: int
    total_issued: int
    total_retired: int
    balances: dict[str, int]
    counters: dict[str, tuple[int, int, int, int]]
    lots: dict[str, list[tuple[int, int]]]
    certificates: dict[int, dict[str, Any]]
    meter_totals: dict[str, tuple[int, int, int, int]]
    member_totals: dict[str, tuple[int, int, int, int]]
    signers: list[str]
    quorum: int
    capacity_margin_bps: int


@dataclass
class Ledger:
    chain_id: int
    addresses: dict[str, str]
    from_block: int
    to_block: int
    members: pd.DataFrame
    meters: pd.DataFrame
    meter_history: pd.DataFrame
    readings: pd.DataFrame
    rejected: pd.DataFrame
    batches: pd.DataFrame
    claims: pd.DataFrame
    certificates: pd.DataFrame
    lot_moves: pd.DataFrame
    transfers: pd.DataFrame
    payments: pd.DataFrame
    retirements: pd.DataFrame
    revocations: pd.DataFrame
    rates: pd.DataFrame
    signer_history: pd.DataFrame
    config_history: pd.DataFrame
    reading_hashes: list[bytes]
    rejected_hashes: list[bytes]
    state: ChainState | None
    block_times: dict[int, int] = field(default_factory=dict)
    tx_hashes: dict[int, str] = field(default_factory=dict)  # `tx` key -> transaction hash
    read_stats: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The exportable frames by name."""
        return {
            "members": self.members,
            "meters": self.meters,
            "readings": self.readings,
            "rejected_readings": self.rejected,
            "batches": self.batches,
            "claims": self.claims,
            "certificates": self.certificates,
            "lot_moves": self.lot_moves,
            "transfers": self.transfers,
            "payments": self.payments,
            "retirements": self.retirements,
            "revocations": self.revocations,
            "rates": self.rates,
            "signer_history": self.signer_history,
            "config_history": self.config_history,
        }


def _frame(table: EventTable, rename: Mapping[str, str] | None = None) -> pd.DataFrame:
    cols = {k: v for k, v in table.columns.items() if k != "_hash"}
    frame = pd.DataFrame(cols)
    if frame.empty:
        frame = pd.DataFrame(
            {k: pd.Series(dtype="int64" if k in ("_pos", "_tx") else object) for k in cols}
        )
    frame = frame.rename(columns={"_pos": "pos", "_tx": "tx", **(rename or {})})
    frame.insert(1, "block", np.right_shift(frame["pos"].to_numpy(dtype="int64"), POS_SHIFT))
    return frame


def _label(meter_hex: str) -> str:
    try:
        return meter_label(bytes.fromhex(meter_hex[2:]))
    except UnicodeDecodeError:
        return meter_hex


def _rpc(w3: Any, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)
    if "error" in response:
        raise RuntimeError(f"{method} failed: {response['error']}")
    return response["result"]


def block_timestamps(w3: Any, blocks: set[int]) -> dict[int, int]:
    times = {}
    for block in sorted(blocks):
        result = _rpc(w3, "eth_getBlockByNumber", [hex(block), False])
        times[block] = int(result["timestamp"], 16)
    return times


def _members(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    reg = _frame(tables["MemberRegistry.MemberRegistered"])
    upd = _frame(tables["MemberRegistry.MemberUpdated"])
    act = _frame(tables["MemberRegistry.MemberActiveSet"])
    rows: dict[str, dict[str, Any]] = {}
    for r in reg.sort_values("pos").itertuples(index=False):
        rows[r.account] = {
            "account": r.account,
            "name": r.name,
            "kind": MEMBER_KINDS[r.kind],
            "active": True,
            "registered_block": r.block,
        }
    for r in upd.sort_values("pos").itertuples(index=False):
        if r.account in rows:
            rows[r.account].update(name=r.name, kind=MEMBER_KINDS[r.kind])
    for r in act.sort_values("pos").itertuples(index=False):
        if r.account in rows:
            rows[r.account]["active"] = bool(r.active)
    columns = ["account", "name", "kind", "active", "registered_block"]
    return pd.DataFrame(list(rows.values()), columns=columns)


def _meters(tables: Mapping[str, EventTable]) -> tuple[pd.DataFrame, pd.DataFrame]:
    reg = _frame(tables["MemberRegistry.MeterRegistered"], {"meterId": "meter_id"})
    upd = _frame(tables["MemberRegistry.MeterUpdated"], {"meterId": "meter_id"})
    act = _frame(tables["MemberRegistry.MeterActiveSet"], {"meterId": "meter_id"})
    flag = _frame(tables["MemberRegistry.MeterFlagged"], {"meterId": "meter_id"})
    rows: dict[str, dict[str, Any]] = {}
    for r in reg.sort_values("pos").itertuples(index=False):
        rows[r.meter_id] = {
            "meter_id": r.meter_id,
            "meter": _label(r.meter_id),
            "owner": r.owner,
            "method": METHODS[r.method],
            "capacity_w": int(r.capacityW),
            "zone": r.zone,
            "commissioned_at": int(r.commissionedAt),
            "active": True,
            "flagged": False,
            "flag_reason": "",
            "registered_block": r.block,
        }
    for r in upd.sort_values("pos").itertuples(index=False):
        if r.meter_id in rows:
            rows[r.meter_id].update(capacity_w=int(r.capacityW), zone=r.zone)
    for r in act.sort_values("pos").itertuples(index=False):
        if r.meter_id in rows:
            rows[r.meter_id]["active"] = bool(r.active)
    for r in flag.sort_values("pos").itertuples(index=False):
        if r.meter_id in rows:
            rows[r.meter_id].update(flagged=bool(r.flagged), flag_reason=r.reason)
    columns = [
        "meter_id",
        "meter",
        "owner",
        "method",
        "capacity_w",
        "zone",
        "commissioned_at",
        "active",
        "flagged",
        "flag_reason",
        "registered_block",
    ]
    meters = pd.DataFrame(list(rows.values()), columns=columns)
    history = pd.concat(
        [
            reg[["pos", "meter_id", "capacityW", "zone"]],
            upd[["pos", "meter_id", "capacityW", "zone"]],
        ],
        ignore_index=True,
    ).rename(columns={"capacityW": "capacity_w"})
    history["capacity_w"] = history["capacity_w"].astype("int64")
    history["pos"] = history["pos"].astype("int64")
    return meters, history.sort_values("pos", ignore_index=True)


def _readings(
    tables: Mapping[str, EventTable], batches: pd.DataFrame
) -> tuple[pd.DataFrame, list[bytes]]:
    table = tables["GenerationRegistry.ReadingRecorded"]
    c = table.columns
    readings = pd.DataFrame(
        {
            "pos": np.asarray(c["_pos"], dtype="int64"),
            "tx": np.asarray(c["_tx"], dtype="int64"),
            "meter_id": pd.Categorical(c["meterId"]),
            "start": np.asarray(c["start"], dtype="int64"),
            "end": np.asarray(c["end"], dtype="int64"),
            "pq1": np.asarray(c["generatedWh"], dtype="int64"),
            "pq2": np.asarray(c["consumedWh"], dtype="int64"),
            "pq3": np.asarray(c["soldWh"], dtype="int64"),
            "pq4": np.asarray(c["purchasedWh"], dtype="int64"),
        }
    )
    readings.insert(1, "block", np.right_shift(readings["pos"].to_numpy(), POS_SHIFT))
    cats = readings["meter_id"].cat.categories
    readings.insert(
        4, "meter", readings["meter_id"].cat.rename_categories([_label(m) for m in cats])
    )
    readings["batch"] = _assign_batch(readings, batches)
    return readings, list(c["_hash"])


def _assign_batch(frame: pd.DataFrame, batches: pd.DataFrame) -> pd.Series:
    """Batch number of each reading log: the next BatchApplied of the same transaction."""
    if frame.empty:
        return pd.Series(dtype="int64", index=frame.index)
    if batches.empty:
        return pd.Series(-1, index=frame.index, dtype="int64")
    left = frame[["pos", "tx"]].reset_index()
    right = batches[["pos", "tx", "batch"]].astype("int64").sort_values("pos")
    merged = pd.merge_asof(left.sort_values("pos"), right, on="pos", by="tx", direction="forward")
    out = merged.set_index("index")["batch"].reindex(frame.index)
    return out.fillna(-1).astype("int64")


def _rejected(
    tables: Mapping[str, EventTable], batches: pd.DataFrame, decoder: ErrorDecoder
) -> tuple[pd.DataFrame, list[bytes]]:
    table = tables["GenerationRegistry.ReadingRejected"]
    frame = _frame(table, {"meterId": "meter_id"})
    fields = ["r_meter_id", "start", "end", "pq1", "pq2", "pq3", "pq4"]
    if frame.empty:
        for name in [*fields, "meter", "error", "message", "batch"]:
            frame[name] = pd.Series(dtype=object)
        return frame.drop(columns=["reading", "reason"], errors="ignore"), []
    parts = pd.DataFrame(frame["reading"].tolist(), columns=fields, index=frame.index)
    frame = pd.concat([frame, parts], axis=1)
    decoded = [decoder.decode(bytes.fromhex(r[2:])) for r in frame["reason"]]
    frame["error"] = [d.name for d in decoded]
    frame["message"] = [d.sentence for d in decoded]
    frame["meter"] = [_label(m) for m in frame["meter_id"]]
    frame["index"] = frame["index"].astype("int64")
    frame["batch"] = _assign_batch(frame, batches)
    return frame.drop(columns=["reading"]), list(table.columns["_hash"])


def _batches(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    frame = _frame(tables["GenerationRegistry.BatchApplied"])
    frame = frame.sort_values("pos", ignore_index=True)
    frame.insert(0, "batch", np.arange(len(frame), dtype="int64"))
    frame["n_signers"] = (
        [len(s) for s in frame["signers"]] if len(frame) else pd.Series(dtype="int64")
    )
    return frame


def _signer_history(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    parts = []
    for key, action, column in (
        ("GenerationRegistry.OracleSignerAdded", "add", "signer"),
        ("GenerationRegistry.OracleSignerRemoved", "remove", "signer"),
        ("GenerationRegistry.QuorumSet", "quorum", "quorum"),
    ):
        frame = _frame(tables[key])
        parts.append(
            pd.DataFrame(
                {
                    "pos": frame["pos"],
                    "block": frame["block"],
                    "action": action,
                    "signer": frame[column] if column == "signer" else None,
                    "quorum": frame[column] if column == "quorum" else None,
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("pos", ignore_index=True)


def _config_history(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    parts = []
    for key, name, column in (
        ("GenerationRegistry.CapacityMarginSet", "capacity_margin_bps", "marginBps"),
        ("GenerationRegistry.IntervalSecondsSet", "interval_seconds", "intervalSeconds"),
    ):
        frame = _frame(tables[key])
        parts.append(
            pd.DataFrame(
                {
                    "pos": frame["pos"],
                    "block": frame["block"],
                    "setting": name,
                    "value": frame[column],
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values("pos", ignore_index=True)


def _rates(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    """The rate schedule's history in log order: RateScheduled rows (cancel_index -1) and
    RateCancelled rows (cancel_index = the entry removed), so a replay can rebuild the schedule
    as it stood at any log position."""
    names = {"unitsPerKwh": "units_per_kwh", "effectiveFrom": "effective_from"}
    scheduled = _frame(tables["ValueExchange.RateScheduled"], names)
    scheduled["cancel_index"] = -1
    cancelled = _frame(tables["ValueExchange.RateCancelled"], {**names, "index": "cancel_index"})
    frames = [f for f in (scheduled, cancelled) if not f.empty] or [scheduled]
    return pd.concat(frames, ignore_index=True).sort_values("pos", ignore_index=True)


def _claims(tables: Mapping[str, EventTable]) -> pd.DataFrame:
    ex = _frame(
        tables["ValueExchange.Claimed"],
        {
            "meterId": "meter_id",
            "firstCertificateId": "first_certificate_id",
            "eligibleWh": "eligible_wh",
            "forfeitedWh": "forfeited_wh",
        },
    )
    reg = _frame(tables["GenerationRegistry.GenerationClaimed"], {"meterId": "meter_id"})
    reg = reg.rename(
        columns={
            "wh": "registry_wh",
            "periodStart": "period_start",
            "periodEnd": "period_end",
            "pos": "registry_pos",
        }
    )
    merged = ex.merge(
        reg[["tx", "meter_id", "registry_pos", "registry_wh", "period_start", "period_end"]],
        on=["tx", "meter_id"],
        how="outer",
    )
    merged["meter"] = [_label(m) for m in merged["meter_id"]]
    return merged.sort_values("pos", ignore_index=True)


def read_state(
    w3: Any,
    addresses: Mapping[str, str],
    abis: Mapping[str, Abi],
    block: int,
    holders: set[str],
    certificate_ids: list[int],
    meter_ids: list[str],
    members: list[str],
) -> ChainState:
    """The views the checks compare the replay against, all at `block`."""

    def contract(name: str) -> Any:
        return w3.eth.contract(address=to_checksum_address(addresses[name]), abi=abis[name])

    zcv, reg = contract("ZeroCarbonValue"), contract("GenerationRegistry")

    def call(fn: Any) -> Any:
        # Raw eth_call (one HTTP request, where web3's call path makes several), with an explicit
        # gas cap: nodes default eth_call gas to the block limit, which some answer slowly.
        data = fn._encode_transaction_data()
        result = _rpc(
            w3, "eth_call", [{"to": fn.address, "data": data, "gas": hex(50_000_000)}, hex(block)]
        )
        values = abi_decode([_abi_type(o) for o in fn.abi["outputs"]], bytes.fromhex(result[2:]))
        return values[0] if len(values) == 1 else values

    certificates = {}
    names = [
        "schema_version",
        "id",
        "registry",
        "meter_id",
        "owner_name",
        "method",
        "wh",
        "period_start",
        "period_end",
        "zone",
        "capacity_w",
        "evidence",
        "issued_at",
        "issued_to",
        "units",
        "retired_units",
        "revoked",
    ]
    for cid in certificate_ids:
        values = call(zcv.functions.certificate(cid))
        record = dict(zip(names, values, strict=True))
        record["meter_id"] = "0x" + bytes(record["meter_id"]).hex()
        record["evidence"] = "0x" + bytes(record["evidence"]).hex()
        certificates[cid] = record
    return ChainState(
        total_supply=call(zcv.functions.totalSupply()),
        total_issued=call(zcv.functions.totalIssued()),
        total_retired=call(zcv.functions.totalRetired()),
        balances={h: call(zcv.functions.balanceOf(h)) for h in holders},
        counters={a: tuple(call(zcv.functions.counters(a))) for a in holders | set(members)},
        lots={h: _all_lots(call, zcv, h) for h in holders},
        certificates=certificates,
        meter_totals={
            m: tuple(call(reg.functions.meterTotals(bytes.fromhex(m[2:])))) for m in meter_ids
        },
        member_totals={a: tuple(call(reg.functions.memberTotals(a))) for a in members},
        signers=[to_checksum_address(s) for s in call(reg.functions.signers())],
        quorum=call(reg.functions.quorum()),
        capacity_margin_bps=call(reg.functions.capacityMarginBps()),
    )


def build_ledger(
    w3: Any,
    chain_id: int,
    addresses: Mapping[str, str],
    abis: Mapping[str, Abi],
    from_block: int,
    to_block: int | None = None,
    page_blocks: int = 5_000,
    with_state: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Ledger:
    """Reads the chain from `from_block` (the deployment block) to `to_block` (default: latest)
    and builds every frame of the ledger."""
    reader = EventReader(w3, addresses, abis, page_blocks=page_blocks)
    last = reader.latest_block() if to_block is None else to_block
    tables = reader.read(from_block, last, progress=progress)
    decoder = ErrorDecoder(abis.values())

    members = _members(tables)
    meters, meter_history = _meters(tables)
    batches = _batches(tables)
    readings, reading_hashes = _readings(tables, batches)
    rejected, rejected_hashes = _rejected(tables, batches, decoder)
    claims = _claims(tables)
    issued = _frame(
        tables["ZeroCarbonValue.CertificateIssued"],
        {
            "certificateId": "certificate_id",
            "meterId": "meter_id",
            "periodStart": "period_start",
            "periodEnd": "period_end",
        },
    )
    lot_moves = _frame(tables["ZeroCarbonValue.LotMoved"], {"certificateId": "certificate_id"})
    transfers = _frame(tables["ZeroCarbonValue.Transfer"])
    payments = _frame(tables["ZeroCarbonValue.Paid"], {"paymentReference": "payment_reference"})
    retirements = _frame(
        tables["ZeroCarbonValue.Retired"],
        {
            "retirementId": "retirement_id",
            "consumptionStart": "consumption_start",
            "consumptionEnd": "consumption_end",
            "certificateIds": "certificate_ids",
            "certificateUnits": "certificate_units",
        },
    )
    revocations = _frame(
        tables["ZeroCarbonValue.CertificateRevoked"], {"certificateId": "certificate_id"}
    )
    rates = _rates(tables)

    wanted = set(claims["block"]) | set(retirements["block"]) | set(revocations["block"])
    wanted |= set(batches["block"]) | set(payments["block"])
    # Every exported event gets its time (audit exports): few blocks beyond the batches'.
    wanted |= set(issued["block"]) | set(lot_moves["block"]) | set(transfers["block"])
    wanted |= set(rejected["block"]) | set(members["registered_block"])
    wanted |= set(meters["registered_block"])
    times = block_timestamps(w3, {int(b) for b in wanted})
    for frame in (claims, retirements, revocations, batches, payments):
        frame["timestamp"] = [times.get(int(b)) for b in frame["block"]]

    state = None
    if with_state:
        holders = {a for a in set(transfers["from"]) | set(transfers["to"]) if a != ZERO_ADDRESS}
        state = read_state(
            w3,
            addresses,
            abis,
            last,
            holders,
            sorted(int(c) for c in issued["certificate_id"]),
            sorted(meters["meter_id"]),
            sorted(members["account"]),
        )
    certificates = _certificates(issued, meters, members, state)
    return Ledger(
        chain_id=chain_id,
        addresses=dict(addresses),
        from_block=from_block,
        to_block=last,
        members=members,
        meters=meters,
        meter_history=meter_history,
        readings=readings,
        rejected=rejected,
        batches=batches,
        claims=claims,
        certificates=certificates,
        lot_moves=lot_moves,
        transfers=transfers,
        payments=payments,
        retirements=retirements,
        revocations=revocations,
        rates=rates,
        signer_history=_signer_history(tables),
        config_history=_config_history(tables),
        reading_hashes=reading_hashes,
        rejected_hashes=rejected_hashes,
        state=state,
        block_times=times,
        tx_hashes=reader.tx_hashes,
        read_stats=vars(reader.stats),
    )


def _certificates(
    issued: pd.DataFrame, meters: pd.DataFrame, members: pd.DataFrame, state: ChainState | None
) -> pd.DataFrame:
    frame = issued.copy()
    frame["meter"] = [_label(m) for m in frame["meter_id"]]
    frame = frame.merge(
        meters[["meter_id", "method", "zone", "capacity_w"]], on="meter_id", how="left"
    )
    if state is not None and len(frame):
        directory = _event_directory(meters, members)
        rows = []
        for cid, c in state.certificates.items():
            # Schema 2 leaves the static attributes to the member registry: resolved from its
            # events here, the way every other reader resolves them (zcx.certificates).
            attrs = static_attributes(_abi_names(c), directory)
            rows.append(
                {
                    "certificate_id": cid,
                    "owner_name": attrs.owner_name,
                    "issued_at": c["issued_at"],
                    "registry": c["registry"],
                    "schema_version": c["schema_version"],
                    "view_retired_units": c["retired_units"],
                    "revoked": c["revoked"],
                    "cert_zone": attrs.zone,
                    "cert_capacity_w": attrs.capacity_w,
                    "cert_method": METHODS[attrs.method],
                }
            )
        extra = pd.DataFrame(rows)
        frame = frame.merge(extra, on="certificate_id", how="left")
    return frame.sort_values("pos", ignore_index=True)


def _abi_names(c: Mapping[str, Any]) -> dict[str, Any]:
    """A state certificate record (snake_case, hex meter id) under the view's ABI names."""
    return {
        "schemaVersion": c["schema_version"],
        "registry": c["registry"],
        "meterId": bytes.fromhex(str(c["meter_id"])[2:]),
        "ownerName": c["owner_name"],
        "method": c["method"],
        "zone": c["zone"],
        "capacityW": c["capacity_w"],
    }


def _event_directory(meters: pd.DataFrame, members: pd.DataFrame) -> CallableDirectory:
    """The member registry as its events left it (one deployment: one member registry). A meter
    or member the events do not name reads as blank rather than failing the whole audit."""
    by_meter = {
        str(m["meter_id"]): MeterRecord(
            str(m["owner"]), METHODS.index(m["method"]), str(m["zone"]), int(m["capacity_w"])
        )
        for m in meters.to_dict("records")
    }
    names = {
        str(a).lower(): str(n) for a, n in zip(members["account"], members["name"], strict=True)
    }

    def read_meter(registry: str, meter_id: bytes) -> MeterRecord:
        return by_meter.get("0x" + meter_id.hex(), MeterRecord("", 0, "", 0))

    return CallableDirectory(read_meter, lambda registry, owner: names.get(owner.lower(), ""))


def _all_lots(call: Any, zcv: Any, holder: str, page: int = 500) -> list[tuple[int, int]]:
    """A holder's lots (certificate id, units), read through the paged `lotsOf` view."""
    lots: list[tuple[int, int]] = []
    while True:
        chunk = [tuple(lot) for lot in call(zcv.functions.lotsOf(holder, len(lots), page))]
        lots += chunk
        if len(chunk) < page:
            return lots
