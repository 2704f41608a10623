"""The portal's event index: every ZCX event the pages need, in SQLite, kept up to date
incrementally from the deployment block.

Pages never scan the chain: they query this file. `sync()` reads only the blocks added since the
last call (through zcx.audit.events.EventReader: paged eth_getLogs that halves a refused page),
inside one SQLite transaction, so a crash leaves the index at the previous block and never
half a page. A reorg (or an Anvil reverted to a snapshot) is noticed by the stored block hash of
the last indexed block; the index then starts again from the deployment block.

Readings are kept one row each (the operator's statements price them per slot); every other
table is small (one row per member, meter, certificate, transfer, payment, retirement).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zcx.audit.events import POS_SHIFT, Abi, EventReader, EventTable
from zcx.deployments import Deployment
from zcx.holder import describe_meter

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
INDEXED_CONTRACTS = ("MemberRegistry", "GenerationRegistry", "ZeroCarbonValue")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    account TEXT PRIMARY KEY, name TEXT NOT NULL, kind INTEGER NOT NULL,
    active INTEGER NOT NULL, pos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meters (
    meter TEXT PRIMARY KEY, owner TEXT NOT NULL, method INTEGER NOT NULL,
    capacity_w INTEGER NOT NULL, zone TEXT NOT NULL, commissioned_at INTEGER NOT NULL,
    active INTEGER NOT NULL, flagged INTEGER NOT NULL, flag_reason TEXT NOT NULL,
    pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS meters_owner ON meters(owner);
CREATE TABLE IF NOT EXISTS readings (
    meter TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    generated_wh INTEGER NOT NULL, consumed_wh INTEGER NOT NULL,
    sold_wh INTEGER NOT NULL, purchased_wh INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (
    id INTEGER PRIMARY KEY, meter TEXT NOT NULL, issued_to TEXT NOT NULL,
    units INTEGER NOT NULL, wh INTEGER NOT NULL, period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL, evidence TEXT NOT NULL, block INTEGER NOT NULL,
    tx TEXT NOT NULL, retired_units INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0, revoke_reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS transfers (
    pos INTEGER PRIMARY KEY, block INTEGER NOT NULL, tx TEXT NOT NULL,
    sender TEXT NOT NULL, recipient TEXT NOT NULL, units INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transfers_sender ON transfers(sender, pos);
CREATE INDEX IF NOT EXISTS transfers_recipient ON transfers(recipient, pos);
CREATE TABLE IF NOT EXISTS payments (
    pos INTEGER PRIMARY KEY, block INTEGER NOT NULL, tx TEXT NOT NULL,
    sender TEXT NOT NULL, recipient TEXT NOT NULL, units INTEGER NOT NULL,
    reference TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_tx ON payments(tx);
CREATE TABLE IF NOT EXISTS retirements (
    id INTEGER PRIMARY KEY, pos INTEGER NOT NULL, block INTEGER NOT NULL, tx TEXT NOT NULL,
    holder TEXT NOT NULL, beneficiary TEXT NOT NULL, units INTEGER NOT NULL,
    consumption_start INTEGER NOT NULL, consumption_end INTEGER NOT NULL,
    reason TEXT NOT NULL, certificates TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS retirements_holder ON retirements(holder, id);
CREATE INDEX IF NOT EXISTS retirements_tx ON retirements(tx);
CREATE TABLE IF NOT EXISTS lot_moves (
    pos INTEGER PRIMARY KEY, block INTEGER NOT NULL, tx TEXT NOT NULL,
    sender TEXT NOT NULL, recipient TEXT NOT NULL, certificate_id INTEGER NOT NULL,
    units INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lot_moves_certificate ON lot_moves(certificate_id, pos);
CREATE TABLE IF NOT EXISTS block_times (block INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
"""
TABLES = (
    "members",
    "meters",
    "readings",
    "certificates",
    "transfers",
    "payments",
    "retirements",
    "lot_moves",
    "block_times",
)


class _HashKeepingReader(EventReader):
    """EventReader that also remembers each non-reading log's transaction hash by position
    (pages link every row to its transaction; readings, a million of them, do not need it)."""

    def __init__(self, *args: Any, skip_topics: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip_topics = skip_topics
        self.tx_hashes: dict[int, str] = {}

    def fetch_page(self, first: int, last: int) -> list[dict[str, Any]]:
        logs = super().fetch_page(first, last)
        for entry in logs:
            topics = entry.get("topics") or []
            if topics and topics[0] not in self.skip_topics:
                pos = int(entry["blockNumber"], 16) << POS_SHIFT | int(entry["logIndex"], 16)
                self.tx_hashes[pos] = entry["transactionHash"]
        return logs


class PortalIndex:
    """SQLite file of the events one deployment emitted, synced on demand (thread-safe)."""

    def __init__(
        self,
        path: Path | str,
        w3: Any,
        deployment: Deployment,
        abis: Mapping[str, Abi],
        page_blocks: int = 5_000,
    ) -> None:
        self.path = str(path)
        self.w3 = w3
        self.deployment = deployment
        self.abis = {name: abis[name] for name in INDEXED_CONTRACTS}
        self.page_blocks = page_blocks
        self._lock = threading.Lock()
        self._local = threading.local()
        with self.connect() as db:
            db.executescript(SCHEMA)
            self._check_identity(db)

    # -- connections

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per thread (SQLite connections must not cross threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        yield db

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.connect() as db:
            return db.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def _meta(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, db: sqlite3.Connection, key: str, value: object) -> None:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def _identity(self) -> str:
        contracts = ",".join(f"{n}={self.deployment.contracts[n]}" for n in INDEXED_CONTRACTS)
        return f"v{SCHEMA_VERSION};chain={self.deployment.chain_id};{contracts}"

    def _check_identity(self, db: sqlite3.Connection) -> None:
        """An index file built for another deployment (or schema) is emptied, never mixed."""
        if self._meta(db, "identity") != self._identity():
            self._reset(db)
            self._set_meta(db, "identity", self._identity())
            db.commit()

    def _reset(self, db: sqlite3.Connection) -> None:
        for table in TABLES:
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        db.execute("DELETE FROM meta WHERE key IN ('last_block', 'last_hash')")

    def block_times(self, blocks: set[int]) -> dict[int, int]:
        """Timestamps of `blocks`, from the cache or the node (then cached)."""
        if not blocks:
            return {}
        wanted = sorted(blocks)
        marks = ",".join("?" * len(wanted))
        found = {
            int(r[0]): int(r[1])
            for r in self.query(
                f"SELECT block, ts FROM block_times WHERE block IN ({marks})",  # noqa: S608
                wanted,
            )
        }
        missing = [b for b in wanted if b not in found]
        if missing:
            for number in missing:
                block = self.w3.provider.make_request("eth_getBlockByNumber", [hex(number), False])
                if block.get("result"):
                    found[number] = int(block["result"]["timestamp"], 16)
            with self.connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO block_times VALUES (?, ?)",
                    [(b, found[b]) for b in missing if b in found],
                )
                db.commit()
        return found

    # -- syncing

    @property
    def last_block(self) -> int:
        with self.connect() as db:
            value = self._meta(db, "last_block")
        return int(value) if value is not None else self.deployment.deployment_block - 1

    def _block_hash(self, number: int) -> str | None:
        block = self.w3.provider.make_request("eth_getBlockByNumber", [hex(number), False])
        result = block.get("result")
        return None if not result else str(result["hash"])

    def sync(self, to_block: int | None = None) -> int:
        """Indexes every block up to `to_block` (default: the node's latest); returns it."""
        with self._lock, self.connect() as db:
            stored = self._meta(db, "last_block")
            if to_block is None:
                latest = self.w3.provider.make_request("eth_getBlockByNumber", ["latest", False])
                head = int(latest["result"]["number"], 16)
                # The common case, one call: nothing new and the last indexed block unchanged.
                if stored is not None and int(stored) == head:
                    if latest["result"]["hash"] == self._meta(db, "last_hash"):
                        return head
            else:
                head = to_block
            if stored is not None:
                last = int(stored)
                if last > head or self._block_hash(last) != self._meta(db, "last_hash"):
                    log.warning("block %s changed on the node (reorg?); re-indexing", last)
                    self._reset(db)
                    db.commit()
                    stored = None
            first = int(stored) + 1 if stored is not None else self.deployment.deployment_block
            if first > head:
                return head
            self._index_range(db, first, head)
            return head

    def _index_range(self, db: sqlite3.Connection, first: int, head: int) -> None:
        addresses = {n: self.deployment.contracts[n] for n in INDEXED_CONTRACTS}
        reader = _HashKeepingReader(
            self.w3, addresses, self.abis, self.page_blocks, skip_topics=set()
        )
        reader.skip_topics = {
            spec.topic0
            for spec in reader.specs.values()
            if spec.name in ("ReadingRecorded", "ReadingRejected")
        }
        # Pages of blocks, one transaction each: a crash keeps what was committed.
        start = first
        step = max(self.page_blocks * 20, 1)
        while start <= head:
            end = min(start + step - 1, head)
            tables = reader.read(start, end)
            self._store(db, tables, reader.tx_hashes)
            reader.tx_hashes.clear()
            self._set_meta(db, "last_block", end)
            self._set_meta(db, "last_hash", self._block_hash(end))
            db.commit()
            start = end + 1
        log.info("indexed blocks %s..%s (%s logs)", first, head, reader.stats.logs)

    def _store(
        self, db: sqlite3.Connection, tables: Mapping[str, EventTable], hashes: Mapping[int, str]
    ) -> None:
        # Replay in chain order across event kinds where order matters (member/meter updates).
        self._store_registry(db, tables)
        self._store_readings(db, tables["GenerationRegistry.ReadingRecorded"])
        self._store_token(db, tables, hashes)

    def _store_registry(self, db: sqlite3.Connection, tables: Mapping[str, EventTable]) -> None:
        events: list[tuple[int, str, dict[str, Any]]] = []
        for key in (
            "MemberRegistered",
            "MemberUpdated",
            "MemberActiveSet",
            "MeterRegistered",
            "MeterUpdated",
            "MeterActiveSet",
            "MeterFlagged",
        ):
            table = tables.get(f"MemberRegistry.{key}")
            if table is None:
                continue
            for row in _rows(table):
                events.append((row["_pos"], key, row))
        for pos, key, row in sorted(events, key=lambda e: e[0]):
            self._apply_registry_event(db, pos, key, row)

    @staticmethod
    def _apply_registry_event(
        db: sqlite3.Connection, pos: int, key: str, row: dict[str, Any]
    ) -> None:
        if key == "MemberRegistered":
            db.execute(
                "INSERT OR REPLACE INTO members VALUES (?, ?, ?, 1, ?)",
                (row["account"], row["name"], int(row["kind"]), pos),
            )
        elif key == "MemberUpdated":
            db.execute(
                "UPDATE members SET name = ?, kind = ? WHERE account = ?",
                (row["name"], int(row["kind"]), row["account"]),
            )
        elif key == "MemberActiveSet":
            db.execute(
                "UPDATE members SET active = ? WHERE account = ?",
                (int(bool(row["active"])), row["account"]),
            )
        elif key == "MeterRegistered":
            db.execute(
                "INSERT OR REPLACE INTO meters VALUES (?, ?, ?, ?, ?, ?, 1, 0, '', ?)",
                (
                    _meter(row["meterId"]),
                    row["owner"],
                    int(row["method"]),
                    int(row["capacityW"]),
                    row["zone"],
                    int(row["commissionedAt"]),
                    pos,
                ),
            )
        elif key == "MeterUpdated":
            db.execute(
                "UPDATE meters SET capacity_w = ?, zone = ? WHERE meter = ?",
                (int(row["capacityW"]), row["zone"], _meter(row["meterId"])),
            )
        elif key == "MeterActiveSet":
            db.execute(
                "UPDATE meters SET active = ? WHERE meter = ?",
                (int(bool(row["active"])), _meter(row["meterId"])),
            )
        elif key == "MeterFlagged":
            db.execute(
                "UPDATE meters SET flagged = ?, flag_reason = ? WHERE meter = ?",
                (int(bool(row["flagged"])), row["reason"], _meter(row["meterId"])),
            )

    @staticmethod
    def _store_readings(db: sqlite3.Connection, table: EventTable) -> None:
        if not len(table):
            return
        cols = table.columns
        labels: dict[str, str] = {}
        meters = [labels.setdefault(m, _meter(m)) for m in cols["meterId"]]
        db.executemany(
            "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)",
            zip(
                meters,
                cols["start"],
                cols["end"],
                cols["generatedWh"],
                cols["consumedWh"],
                cols["soldWh"],
                cols["purchasedWh"],
                strict=True,
            ),
        )

    def _store_token(
        self, db: sqlite3.Connection, tables: Mapping[str, EventTable], hashes: Mapping[int, str]
    ) -> None:
        def tx(row: dict[str, Any]) -> str:
            return hashes.get(row["_pos"], "")

        for row in _rows(tables["ZeroCarbonValue.CertificateIssued"]):
            db.execute(
                "INSERT OR REPLACE INTO certificates"
                "(id, meter, issued_to, units, wh, period_start, period_end, evidence, block, tx)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(row["certificateId"]),
                    _meter(row["meterId"]),
                    row["to"],
                    int(row["units"]),
                    int(row["wh"]),
                    int(row["periodStart"]),
                    int(row["periodEnd"]),
                    row["evidence"],
                    row["_pos"] >> POS_SHIFT,
                    tx(row),
                ),
            )
        db.executemany(
            "INSERT OR REPLACE INTO transfers VALUES (?, ?, ?, ?, ?, ?)",
            [
                (r["_pos"], r["_pos"] >> POS_SHIFT, tx(r), r["from"], r["to"], int(r["value"]))
                for r in _rows(tables["ZeroCarbonValue.Transfer"])
            ],
        )
        db.executemany(
            "INSERT OR REPLACE INTO lot_moves VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["_pos"],
                    r["_pos"] >> POS_SHIFT,
                    tx(r),
                    r["from"],
                    r["to"],
                    int(r["certificateId"]),
                    int(r["units"]),
                )
                for r in _rows(tables["ZeroCarbonValue.LotMoved"])
            ],
        )
        db.executemany(
            "INSERT OR REPLACE INTO payments VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["_pos"],
                    r["_pos"] >> POS_SHIFT,
                    tx(r),
                    r["from"],
                    r["to"],
                    int(r["units"]),
                    r["paymentReference"],
                )
                for r in _rows(tables["ZeroCarbonValue.Paid"])
            ],
        )
        for r in _rows(tables["ZeroCarbonValue.Retired"]):
            certs = [
                [int(c), int(u)]
                for c, u in zip(r["certificateIds"], r["certificateUnits"], strict=True)
            ]
            db.execute(
                "INSERT OR REPLACE INTO retirements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(r["retirementId"]),
                    r["_pos"],
                    r["_pos"] >> POS_SHIFT,
                    tx(r),
                    r["holder"],
                    r["beneficiary"],
                    int(r["units"]),
                    int(r["consumptionStart"]),
                    int(r["consumptionEnd"]),
                    r["reason"],
                    json.dumps(certs),
                ),
            )
            db.executemany(
                "UPDATE certificates SET retired_units = retired_units + ? WHERE id = ?",
                [(u, c) for c, u in certs],
            )
        for r in _rows(tables["ZeroCarbonValue.CertificateRevoked"]):
            db.execute(
                "UPDATE certificates SET revoked = 1, revoke_reason = ? WHERE id = ?",
                (r["reason"], int(r["certificateId"])),
            )


def _rows(table: EventTable) -> Iterator[dict[str, Any]]:
    names = list(table.columns)
    for values in zip(*(table.columns[n] for n in names), strict=True):
        yield dict(zip(names, values, strict=True))


def _meter(value: str | bytes) -> str:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    return describe_meter(raw)
