"""Demand response: the ERAB "High 4 of 5" baseline, reductions and rewards, and a small client.

The operator (the patent's operator 60) announces an event on chain (contracts/DemandResponse.sol)
for a zone and a run of 30-minute slots. Afterwards each member's reduction is measured from the
registry's `ReadingRecorded` events alone, so the operator, the portal and any auditor get the same
figures (docs/demand-response.md has the rule and a worked example):

- demand: the member's purchased energy PQ4 (grid demand), summed over its meters in the event's
  zone, per slot;
- like days: the days before the event day of the same type (weekday, or weekend/Japanese public
  holiday, in Japan time), skipping earlier demand-response days of the zone and days whose event
  slots are not all recorded, looking back at most `LOOKBACK_DAYS`; the 5 most recent are the
  candidates;
- High 4 of 5: of the 5, the 4 with the highest demand over the event's slots (ties: the more
  recent day); the baseline of a slot is the mean of those 4 days at that slot;
- no same-day adjustment (why: docs/demand-response.md);
- reduction = max(0, sum over the event's slots of (baseline - actual)), in whole Wh, rounded
  down: floor(max(0, S4 - 4 x A) / 4) with S4 the 4 days' total and A the event day's total, so
  it is exact integer arithmetic that any reader reproduces;
- reward = floor(reduction x rewardPerKwh / 1000), as the contract pays.

Pure functions first (no I/O), then `DemandResponseClient`, a `ZcxClient` that announces, reads
results from the chain and settles in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import jpholiday
import pandas as pd
from eth_utils import to_checksum_address

from zcx.errors import DecodedError, ErrorDecoder
from zcx.holder import CONTRACT_NAMES, HolderError, TxResult, ZcxClient

log = logging.getLogger(__name__)

DR_CONTRACT = "DemandResponse"
PAYMENT_TOKEN_CONTRACT = "MockYenToken"
JST = dt.timezone(dt.timedelta(hours=9), "JST")
DAY_SECONDS = 86_400
CANDIDATE_DAYS = 5
CHOSEN_DAYS = 4
LOOKBACK_DAYS = 30
WH_PER_KWH = 1000
STATUSES = ("None", "Announced", "Cancelled", "Settled")
WEEKDAY, DAY_OFF = "weekday", "day off"
MAX_SLOTS = 48  # DemandResponse.MAX_SLOTS: one day of 30-minute slots
MAX_SLOTS_HINT = f"1 to {MAX_SLOTS}"

# Plain sentences for the contract's custom errors (the NatSpec in IDemandResponse says the same).
DR_SENTENCES: dict[str, str] = {
    "DemandResponseZeroAddress": "the payment token and registry must be set",
    "DemandResponseEmptyZone": "an event needs a grid zone",
    "DemandResponseStartNotAligned": "the start {start} is not on the {slotSeconds}-second grid",
    "DemandResponseStartNotInFuture": "the start {start} is not after the chain's time {nowTs}",
    "DemandResponseBadSlots": "the number of slots must be 1 to {maxSlots} (got {slots})",
    "DemandResponseZeroRate": "the reward rate must be more than zero",
    "DemandResponseTooManyParticipants": "at most {maxParticipants} participants (got {count})",
    "DemandResponseMembersUnsorted": "members must be strictly ascending, without duplicates "
    "(at index {index}: {member})",
    "DemandResponseNotMember": "{member} is not a registered member",
    "DemandResponseNotParticipant": "{member} was not invited to event {eventId}",
    "DemandResponseUnknownEvent": "there is no demand-response event {eventId}",
    "DemandResponseNotAnnounced": "event {eventId} is cancelled or already settled",
    "DemandResponseAlreadyStarted": "event {eventId} started at {start}; it can no longer be "
    "cancelled",
    "DemandResponseNotEnded": "event {eventId} ends at {end}; settle it after that",
    "DemandResponseLengthMismatch": "{members} members but {reductions} reductions",
    "DemandResponseNoMembers": "a settlement must pay at least one member",
}


class DemandResponseProblem(HolderError):
    """A demand-response request refused before it reaches the chain."""


# ---------------------------------------------------------------------------- pure rule


@dataclass(frozen=True)
class DrEvent:
    """An announced event as the chain records it."""

    event_id: int
    zone: str
    start: int
    slot_seconds: int
    slots: int
    target_wh: int
    reward_per_kwh: int
    participants: tuple[str, ...] = ()
    status: str = "Announced"

    @property
    def end(self) -> int:
        return self.start + self.slots * self.slot_seconds

    @property
    def slot_starts(self) -> list[int]:
        return [self.start + i * self.slot_seconds for i in range(self.slots)]

    @property
    def local_date(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.start, JST).date()

    @property
    def open_to_zone(self) -> bool:
        return not self.participants


def day_type(date: dt.date) -> str:
    """ERAB like-day classes: weekdays, and days off (weekends and Japanese public holidays)."""
    return DAY_OFF if date.weekday() >= 5 or jpholiday.is_holiday(date) else WEEKDAY


def reward_for(reduced_wh: int, reward_per_kwh: int) -> int:
    """What the contract pays: floor(reducedWh x rate / 1000)."""
    return reduced_wh * reward_per_kwh // WH_PER_KWH


@dataclass
class MemberBaseline:
    """Every figure behind one member's reduction. `candidates`: the like days looked at (date,
    day type, demand over the event slots, rank, chosen); `slots`: per event slot, the baseline
    (mean of the chosen days), the actual demand and the difference. Wh throughout."""

    member: str
    meters: tuple[str, ...]
    status: str  # "measured", or why not: "no meter in zone", "too few like days", ...
    candidates: pd.DataFrame
    slots: pd.DataFrame
    baseline_wh: float = 0.0
    actual_wh: int = 0
    reduced_wh: int = 0
    reward: int = 0

    def summary(self) -> dict[str, Any]:
        chosen = self.candidates[self.candidates["chosen"]] if len(self.candidates) else None
        return {
            "member": self.member,
            "meters": len(self.meters),
            "status": self.status,
            "candidate_days": ", ".join(str(d) for d in self.candidates.get("date", [])),
            "chosen_days": ", ".join(str(d) for d in chosen["date"]) if chosen is not None else "",
            "baseline_wh": round(self.baseline_wh, 2),
            "actual_wh": self.actual_wh,
            "reduced_wh": self.reduced_wh,
            "reward": self.reward,
        }


def member_demand(readings: pd.DataFrame, meter_ids: Iterable[str]) -> dict[int, int]:
    """PQ4 per slot start summed over `meter_ids`. `readings` needs columns meter_id, start,
    pq4 (one row per recorded reading: the registry never records a (meter, slot) twice)."""
    wanted = {m.lower() for m in meter_ids}
    if not wanted or readings.empty:
        return {}
    mine = readings[readings["meter_id"].astype(str).str.lower().isin(wanted)]
    grouped = mine.groupby("start", sort=False)["pq4"].sum()
    return {int(k): int(v) for k, v in grouped.items()}


def _slot_day_values(demand: Mapping[int, int], event: DrEvent, days_back: int) -> list[int] | None:
    """The demand of the event's slots `days_back` days earlier; None when any slot is missing."""
    shift = days_back * DAY_SECONDS  # Japan has no daylight saving: a day is always 86,400 s
    values = [demand.get(start - shift) for start in event.slot_starts]
    return None if any(v is None for v in values) else [int(v) for v in values if v is not None]


def baseline_high4of5(
    readings: pd.DataFrame,
    member: str,
    meter_ids: Sequence[str],
    event: DrEvent,
    excluded_dates: Iterable[dt.date] = (),
    lookback_days: int = LOOKBACK_DAYS,
) -> MemberBaseline:
    """The member's ERAB High 4 of 5 baseline for `event`, its actual demand and its reduction,
    from the recorded readings (see the module docstring for the rule)."""
    excluded = set(excluded_dates)
    demand = member_demand(readings, meter_ids)
    event_day = event.local_date
    wanted_type = day_type(event_day)
    days: list[tuple[dt.date, int, list[int]]] = []  # (date, days back, event-slot demand)
    for back in range(1, lookback_days + 1):
        date = event_day - dt.timedelta(days=back)
        if day_type(date) != wanted_type or date in excluded:
            continue
        values = _slot_day_values(demand, event, back)
        if values is None:
            continue  # a like day must have every event slot recorded
        days.append((date, back, values))
        if len(days) == CANDIDATE_DAYS:
            break
    totals = [sum(values) for _, _, values in days]
    # Highest demand first; on a tie the more recent day (fewer days back) wins.
    order = sorted(range(len(days)), key=lambda i: (-totals[i], days[i][1]))
    rank = {i: position + 1 for position, i in enumerate(order)}
    candidates = pd.DataFrame(
        {
            "date": [d for d, _, _ in days],
            "day_type": [wanted_type] * len(days),
            "days_back": [b for _, b, _ in days],
            "event_slots_wh": totals,
            "rank": [rank[i] for i in range(len(days))],
        },
        columns=["date", "day_type", "days_back", "event_slots_wh", "rank"],
    )
    candidates["chosen"] = candidates["rank"] <= CHOSEN_DAYS
    actual = _slot_day_values(demand, event, 0)
    result = MemberBaseline(
        member=member,
        meters=tuple(meter_ids),
        status="measured",
        candidates=candidates,
        slots=pd.DataFrame(columns=["slot_start", "baseline_wh", "actual_wh", "difference_wh"]),
    )
    if not meter_ids:
        result.status = "no meter in zone"
        return result
    if len(days) < CANDIDATE_DAYS:
        result.status = f"too few like days ({len(days)} of {CANDIDATE_DAYS})"
        return result
    if actual is None:
        result.status = "event slots not all recorded"
        return result
    chosen = [days[i][2] for i in order[:CHOSEN_DAYS]]
    per_slot_sum4 = [sum(day[k] for day in chosen) for k in range(event.slots)]
    result.slots = pd.DataFrame(
        {
            "slot_start": event.slot_starts,
            "baseline_wh": [s / CHOSEN_DAYS for s in per_slot_sum4],
            "actual_wh": actual,
            "difference_wh": [
                s / CHOSEN_DAYS - a for s, a in zip(per_slot_sum4, actual, strict=True)
            ],
        }
    )
    total4, total_actual = sum(per_slot_sum4), sum(actual)
    result.baseline_wh = total4 / CHOSEN_DAYS
    result.actual_wh = total_actual
    # Exact integers: floor(max(0, S4 - 4A) / 4) Wh.
    result.reduced_wh = max(0, total4 - CHOSEN_DAYS * total_actual) // CHOSEN_DAYS
    result.reward = reward_for(result.reduced_wh, event.reward_per_kwh)
    return result


def zone_meters(meters: pd.DataFrame, zone: str) -> dict[str, list[str]]:
    """owner -> its meter ids in `zone`, from a frame with meter_id, owner, zone."""
    found: dict[str, list[str]] = {}
    for row in meters[meters["zone"] == zone].itertuples(index=False):
        found.setdefault(to_checksum_address(row.owner), []).append(str(row.meter_id).lower())
    return found


def excluded_dates_for(event: DrEvent, others: Iterable[DrEvent]) -> set[dt.date]:
    """Earlier demand-response days of the same zone (not cancelled): not like days (ERAB)."""
    return {
        o.local_date
        for o in others
        if o.zone == event.zone
        and o.status != "Cancelled"
        and o.start < event.start
        and o.local_date != event.local_date
    }


@dataclass
class EventResults:
    """One event's figures for every eligible member, members in ascending address order (the
    order `settle` needs)."""

    event: DrEvent
    members: list[MemberBaseline] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        columns = list(MemberBaseline("", (), "", pd.DataFrame(), pd.DataFrame()).summary())
        return pd.DataFrame([m.summary() for m in self.members], columns=columns)

    @property
    def total_reduced_wh(self) -> int:
        return sum(m.reduced_wh for m in self.members)

    @property
    def total_reward(self) -> int:
        return sum(m.reward for m in self.members)

    def payout(self) -> tuple[list[str], list[int]]:
        """(members, reducedWh) for `settle`: every measured member, ascending."""
        paid = [m for m in self.members if m.status == "measured"]
        return [m.member for m in paid], [m.reduced_wh for m in paid]


def event_results(
    readings: pd.DataFrame,
    meters: pd.DataFrame,
    event: DrEvent,
    other_events: Iterable[DrEvent] = (),
) -> EventResults:
    """Baselines and reductions of every member of `event`: the invited members, or every owner
    of a meter in the zone when the event is open to the zone."""
    in_zone = zone_meters(meters, event.zone)
    members = event.participants or tuple(in_zone)
    excluded = excluded_dates_for(event, other_events)
    ordered = sorted({to_checksum_address(m) for m in members}, key=lambda a: int(a, 16))
    return EventResults(
        event,
        [baseline_high4of5(readings, m, in_zone.get(m, []), event, excluded) for m in ordered],
    )


# ---------------------------------------------------------------------------- chain frames


def frames_from_tables(tables: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(readings, meters) from EventReader tables of GenerationRegistry and MemberRegistry:
    readings with pos, meter_id, start, pq4; meters with meter_id, owner, zone (latest zone)."""
    rec = tables["GenerationRegistry.ReadingRecorded"].columns
    readings = pd.DataFrame(
        {
            "pos": pd.Series(rec["_pos"], dtype="int64"),
            "meter_id": pd.Series(rec["meterId"], dtype=object),
            "start": pd.Series(rec["start"], dtype="int64"),
            "pq4": pd.Series(rec["purchasedWh"], dtype="int64"),
        }
    )
    zones: dict[str, tuple[str, str]] = {}
    reg = tables["MemberRegistry.MeterRegistered"].columns
    for meter_id, owner, zone in zip(reg["meterId"], reg["owner"], reg["zone"], strict=True):
        zones[meter_id] = (owner, zone)
    upd = tables["MemberRegistry.MeterUpdated"].columns
    updates = sorted(zip(upd["_pos"], upd["meterId"], upd["zone"], strict=True))
    for _pos, meter_id, zone in updates:  # in chain order: the latest zone wins
        if meter_id in zones:
            zones[meter_id] = (zones[meter_id][0], zone)
    meters = pd.DataFrame(
        [(m, o, z) for m, (o, z) in zones.items()], columns=["meter_id", "owner", "zone"]
    )
    return readings, meters


def events_from_tables(tables: Mapping[str, Any]) -> dict[int, DrEvent]:
    """Every event from DemandResponse's logs, with its status (Announced, Cancelled, Settled)."""
    ann = tables[f"{DR_CONTRACT}.DemandResponseAnnounced"].columns
    events: dict[int, DrEvent] = {}
    for i, event_id in enumerate(ann["eventId"]):
        events[int(event_id)] = DrEvent(
            event_id=int(event_id),
            zone=str(ann["zone"][i]),
            start=int(ann["start"][i]),
            slot_seconds=int(ann["slotSeconds"][i]),
            slots=int(ann["slots"][i]),
            target_wh=int(ann["targetWh"][i]),
            reward_per_kwh=int(ann["rewardPerKwh"][i]),
            participants=tuple(to_checksum_address(a) for a in ann["participants"][i]),
        )
    for name, status in (
        ("DemandResponseCancelled", "Cancelled"),
        ("DemandResponseSettled", "Settled"),
    ):
        for event_id in tables[f"{DR_CONTRACT}.{name}"].columns["eventId"]:
            events[int(event_id)] = replace(events[int(event_id)], status=status)
    return events


def rewards_frame(tables: Mapping[str, Any]) -> pd.DataFrame:
    """Every DemandResponseRewarded: pos, event_id, member, reduced_wh, amount."""
    c = tables[f"{DR_CONTRACT}.DemandResponseRewarded"].columns
    return pd.DataFrame(
        {
            "pos": pd.Series(c["_pos"], dtype="int64"),
            "event_id": [int(x) for x in c["eventId"]],
            "member": [to_checksum_address(x) for x in c["member"]],
            "reduced_wh": [int(x) for x in c["reducedWh"]],
            "amount": [int(x) for x in c["amount"]],
        }
    )


# ---------------------------------------------------------------------------- deployment


def deploy_demand_response(deployer: Any, operator: Any, payment_token: Any, registry: Any) -> Any:
    """Deploys DemandResponse: DEFAULT_ADMIN_ROLE to the deployer, OPERATOR_ROLE to `operator`;
    rewards in `payment_token`; slots on `registry`'s interval grid."""
    from ape import project

    operator_address = str(getattr(operator, "address", operator))
    return deployer.deploy(
        project.DemandResponse, deployer, operator_address, payment_token, registry
    )


# ---------------------------------------------------------------------------- client


@dataclass(frozen=True)
class _DrError(DecodedError):
    template: str = ""

    @property
    def sentence(self) -> str:
        try:
            return self.template.format(**self.args)
        except (KeyError, IndexError):
            return self.template


class DemandResponseClient(ZcxClient):
    """A ZcxClient that also runs the deployment's DemandResponse contract."""

    @classmethod
    def of(cls, client: ZcxClient) -> DemandResponseClient:
        return cls(client.deployment, client._project)

    @cached_property
    def dr(self) -> Any:
        try:
            address = self.deployment.address(DR_CONTRACT)
        except KeyError:
            raise DemandResponseProblem(
                f"the deployment for chain {self.deployment.chain_id} records no DemandResponse: "
                "deploy it (`ape run deploy`)"
            ) from None
        return self._project.get_contract(DR_CONTRACT).at(address)

    @cached_property
    def payment_token(self) -> Any:
        return self._project.get_contract(PAYMENT_TOKEN_CONTRACT).at(self.dr.paymentToken())

    @cached_property
    def decoder(self) -> ErrorDecoder:
        abis = []
        for name in (*CONTRACT_NAMES, DR_CONTRACT, PAYMENT_TOKEN_CONTRACT):
            contract_type = self._project.get_contract(name).contract_type
            abis.append([e.model_dump(mode="json", by_alias=True) for e in contract_type.abi])
        return ErrorDecoder(abis)

    def decode_revert(self, data: bytes | str | None, fallback: str = "") -> DecodedError:
        error = super().decode_revert(data, fallback)
        template = DR_SENTENCES.get(error.name)
        return error if template is None else _DrError(error.name, error.args, template)

    # -- reads

    def tables(self, to_block: int | None = None) -> dict[str, Any]:
        """Registry, member-registry and DemandResponse events, paged from the deployment block."""
        from zcx.audit.events import EventReader, abis_from_ape

        abis = abis_from_ape()
        abis[DR_CONTRACT] = [
            e.model_dump(mode="json", by_alias=True)
            for e in self._project.get_contract(DR_CONTRACT).contract_type.abi
        ]
        addresses = {
            name: self.deployment.address(name)
            for name in ("GenerationRegistry", "MemberRegistry", DR_CONTRACT)
        }
        reader = EventReader(self.dr.provider.web3, addresses, abis)
        return reader.read(self.deployment.deployment_block, to_block)

    def events(self) -> dict[int, DrEvent]:
        return events_from_tables(self.tables())

    def results(self, event_id: int) -> EventResults:
        """The event's baselines and reductions from the readings on chain now."""
        tables = self.tables()
        events = events_from_tables(tables)
        if event_id not in events:
            raise DemandResponseProblem(f"EVENT_ID: there is no demand-response event {event_id}")
        readings, meters = frames_from_tables(tables)
        return event_results(readings, meters, events[event_id], events.values())

    # -- operator actions

    def announce(
        self,
        sender: Any,
        zone: str,
        start: int,
        slots: int,
        target_wh: int,
        reward_per_kwh: int,
        participants: Sequence[str] = (),
    ) -> TxResult:
        ordered = sorted({to_checksum_address(p) for p in participants}, key=lambda a: int(a, 16))
        receipt = self._send(
            self.dr, "announce", [zone, start, slots, target_wh, reward_per_kwh, ordered], sender
        )
        (log_entry,) = [e for e in receipt.events if e.event_name == "DemandResponseAnnounced"]
        return self._result(receipt, event_id=int(log_entry.eventId))

    def cancel(self, sender: Any, event_id: int) -> TxResult:
        return self._result(self._send(self.dr, "cancel", [event_id], sender), event_id=event_id)

    def ensure_ended(self, event: DrEvent) -> None:
        """Refuses before the event's end (the chain would: DemandResponseNotEnded)."""
        from ape import chain

        if int(chain.pending_timestamp) < event.end:
            ends = dt.datetime.fromtimestamp(event.end, JST).isoformat()
            raise DemandResponseProblem(
                f"EVENT_ID: event {event.event_id} ends at {ends}; settle it after that, once "
                "its readings are on chain"
            )

    def settle(self, sender: Any, results: EventResults) -> TxResult:
        """Pays `results` in one transaction; approves the payment token first when the
        allowance is short."""
        self.ensure_ended(results.event)
        members, reduced = results.payout()
        if not members:
            raise DemandResponseProblem(
                f"EVENT_ID: event {results.event.event_id} has no measured member to pay"
            )
        total = sum(reward_for(r, results.event.reward_per_kwh) for r in reduced)
        owner = str(sender.address)
        if int(self.payment_token.allowance(owner, self.dr.address)) < total:
            self._send(self.payment_token, "approve", [self.dr.address, total], sender)
        receipt = self._send(self.dr, "settle", [results.event.event_id, members, reduced], sender)
        return self._result(
            receipt,
            event_id=results.event.event_id,
            members=len(members),
            total_paid=total,
            total_reduced_wh=sum(reduced),
        )
