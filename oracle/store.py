"""The oracle's durable outbox: SQLite in WAL mode with synchronous=FULL, so a reading is on disk
before its 202 goes out, and every state change of a reading or batch is one transaction.

Reading states: accepted -> batched -> submitted (tx hash) -> confirmed (block) | rejected (reason).
Batch states (leader): signing -> signed -> sending -> submitted -> confirmed, or replaced
(a whole-batch revert not about the batch as such: its readings were rejected, re-batched or
returned to the queue).
Batch states (peer that attested): attested -> confirmed, or expired (nobody submitted it in
time: its readings went back to the queue), superseded (a peer proposed them again in another
batch) or settled (every reading was recorded on chain by other batches).
A leader's batch stuck in signing past the quorum timeout, or holding a reading recorded on chain
by another batch, is expired: its open readings go back to the queue and are batched again.
A batch's content (and so its EIP-712 digest) is fixed when it is created and never changes; an
expired batch formed again with the same content is revived (same digest, same row).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.chain import MeterSpec
from oracle.redact import create_private_file, make_private
from oracle.validation import Issue, WireReading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gateways (
    name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    meter TEXT PRIMARY KEY, gateway TEXT NOT NULL REFERENCES gateways(name) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS meters (
    meter TEXT PRIMARY KEY, owner TEXT NOT NULL, capacity_w INTEGER NOT NULL,
    commissioned_at INTEGER NOT NULL, method INTEGER NOT NULL, active INTEGER NOT NULL,
    flagged INTEGER NOT NULL, fetched_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    meter TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    gen INTEGER NOT NULL, cons INTEGER NOT NULL, sold INTEGER NOT NULL, purchased INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'accepted',
    batch_id INTEGER, batch_pos INTEGER,
    tx_hash TEXT, block INTEGER, reason TEXT,
    source TEXT NOT NULL, accepted_at REAL NOT NULL, final_at REAL,
    UNIQUE (meter, start));
CREATE INDEX IF NOT EXISTS readings_state_start ON readings (state, start);
CREATE INDEX IF NOT EXISTS readings_batch ON readings (batch_id, batch_pos);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, role TEXT NOT NULL, state TEXT NOT NULL,
    size INTEGER NOT NULL, created_at REAL NOT NULL,
    tx_hash BLOB, block INTEGER, gas_used INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX IF NOT EXISTS batches_state ON batches (state);
CREATE TABLE IF NOT EXISTS signatures (
    batch_id INTEGER NOT NULL, signer TEXT NOT NULL, signature BLOB NOT NULL,
    PRIMARY KEY (batch_id, signer));
CREATE TABLE IF NOT EXISTS txs (
    tx_hash BLOB PRIMARY KEY, batch_id INTEGER NOT NULL, nonce INTEGER NOT NULL,
    raw BLOB NOT NULL, created_at REAL NOT NULL, sent INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS txs_batch ON txs (batch_id);
CREATE TABLE IF NOT EXISTS chain_recorded (
    meter TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    gen INTEGER NOT NULL, cons INTEGER NOT NULL, sold INTEGER NOT NULL, purchased INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (meter, start));
CREATE TABLE IF NOT EXISTS peers (
    name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
"""

FINAL_READING_STATES = ("confirmed", "rejected")
# Every state a reading passes through before the chain's verdict (listed, not "NOT IN final",
# so that counting them uses the (state, start) index instead of scanning every reading).
OPEN_READING_STATES = ("accepted", "batched", "submitted")
OPEN_BATCH_STATES = ("signing", "signed", "sending", "submitted", "attested")
# Retired batches: nothing of them is pending; a batch formed again with the same content
# (same digest) revives the row.
RETIRED_BATCH_STATES = ("replaced", "expired", "superseded", "settled")


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredReading:
    id: int
    meter: str
    start: int
    end: int
    gen: int
    cons: int
    sold: int
    purchased: int
    state: str
    batch_id: int | None
    batch_pos: int | None
    tx_hash: str | None
    block: int | None
    reason: str | None
    accepted_at: float

    def wire(self) -> WireReading:
        return WireReading(
            self.meter, self.start, self.end, self.gen, self.cons, self.sold, self.purchased
        )


@dataclass(frozen=True)
class Batch:
    id: int
    digest: bytes
    role: str
    state: str
    size: int
    created_at: float
    tx_hash: bytes | None
    block: int | None
    attempts: int
    next_attempt_at: float
    error: str | None


READING_COLS = (
    "id, meter, start, end, gen, cons, sold, purchased, state, batch_id, batch_pos, tx_hash, "
    "block, reason, accepted_at"
)
READING_COLS_R = ", ".join("r." + c.strip() for c in READING_COLS.split(","))
BATCH_COLS = (
    "id, digest, role, state, size, created_at, tx_hash, block, attempts, next_attempt_at, error"
)


class Conflict(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(f"{len(issues)} conflicting readings")
        self.issues = issues


class Store:
    """One SQLite connection shared by the API threads and the submitter, behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # SQLite creates the -wal and -shm files with the database file's mode, so a private
        # database file keeps them private too (they hold the same readings).
        create_private_file(self.path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for suffix in ("-wal", "-shm"):  # left by an older version or another umask
            make_private(self.path.with_name(self.path.name + suffix))
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def ping(self) -> bool:
        try:
            return self._query("SELECT 1")[0][0] == 1
        except sqlite3.Error:
            return False

    # ---------------------------------------------------------------- meta

    def get_meta(self, key: str) -> Any | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # ---------------------------------------------------------------- gateways

    def add_gateway(self, name: str) -> str:
        """Creates a gateway; returns its token (shown once, stored hashed)."""
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM gateways WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"gateway {name!r} exists; use `gateways rotate` for a new token")
            db.execute(
                "INSERT INTO gateways (name, token_hash, created_at) VALUES (?, ?, ?)",
                (name, hash_token(token), time.time()),
            )
        return token

    def rotate_token(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE gateways SET token_hash = ? WHERE name = ?", (hash_token(token), name)
            )
            if cur.rowcount == 0:
                raise ValueError(f"no gateway {name!r}")
        return token

    def remove_gateway(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM bindings WHERE gateway = ?", (name,))
            if db.execute("DELETE FROM gateways WHERE name = ?", (name,)).rowcount == 0:
                raise ValueError(f"no gateway {name!r}")

    def bind(self, name: str, meters: Iterable[str]) -> None:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM gateways WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"no gateway {name!r}")
            for meter in meters:
                row = db.execute(
                    "SELECT gateway FROM bindings WHERE meter = ?", (meter,)
                ).fetchone()
                if row and row[0] != name:
                    raise ValueError(
                        f"meter {meter!r} is bound to gateway {row[0]!r}; unbind it first"
                    )
                db.execute(
                    "INSERT OR IGNORE INTO bindings (meter, gateway) VALUES (?, ?)", (meter, name)
                )

    def unbind(self, name: str, meters: Iterable[str]) -> None:
        with self._tx() as db:
            for meter in meters:
                db.execute("DELETE FROM bindings WHERE meter = ? AND gateway = ?", (meter, name))

    def gateways(self) -> list[tuple[str, int]]:
        return [
            (str(r[0]), int(r[1]))
            for r in self._query(
                "SELECT g.name, COUNT(b.meter) FROM gateways g LEFT JOIN bindings b "
                "ON b.gateway = g.name GROUP BY g.name ORDER BY g.name"
            )
        ]

    def bindings(self) -> dict[str, list[str]]:
        """Every gateway (by name) with the meters it may report, sorted."""
        out: dict[str, list[str]] = {}
        for gateway, meter in self._query(
            "SELECT g.name, b.meter FROM gateways g LEFT JOIN bindings b ON b.gateway = g.name "
            "ORDER BY g.name, b.meter"
        ):
            meters = out.setdefault(str(gateway), [])
            if meter is not None:
                meters.append(str(meter))
        return out

    def authenticate(self, token: str) -> str | None:
        rows = self._query("SELECT name FROM gateways WHERE token_hash = ?", (hash_token(token),))
        return str(rows[0][0]) if rows else None

    # ---------------------------------------------------------------- peer credentials

    def add_peer(self, name: str) -> str:
        """Creates the credential peer oracle NAME presents on POST /v1/attestations; returns
        its token (shown once, stored hashed, like gateway tokens)."""
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM peers WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"peer {name!r} exists; use `peers rotate` for a new token")
            db.execute(
                "INSERT INTO peers (name, token_hash, created_at) VALUES (?, ?, ?)",
                (name, hash_token(token), time.time()),
            )
        return token

    def rotate_peer(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE peers SET token_hash = ? WHERE name = ?", (hash_token(token), name)
            )
            if cur.rowcount == 0:
                raise ValueError(f"no peer {name!r}")
        return token

    def remove_peer(self, name: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM peers WHERE name = ?", (name,)).rowcount == 0:
                raise ValueError(f"no peer {name!r}")

    def peer_names(self) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT name FROM peers ORDER BY name")]

    def authenticate_peer(self, token: str) -> str | None:
        rows = self._query("SELECT name FROM peers WHERE token_hash = ?", (hash_token(token),))
        return str(rows[0][0]) if rows else None

    def unbound(self, gateway: str, meters: Iterable[str]) -> set[str]:
        """The meters of `meters` not bound to `gateway` (one query per request)."""
        wanted = sorted(set(meters))
        bound: set[str] = set()
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            bound.update(
                str(row[0])
                for row in self._query(
                    f"SELECT meter FROM bindings WHERE gateway = ? AND meter IN ({marks})",
                    (gateway, *chunk),
                )
            )
        return set(wanted) - bound

    def is_bound(self, gateway: str, meter: str) -> bool:
        return bool(
            self._query("SELECT 1 FROM bindings WHERE meter = ? AND gateway = ?", (meter, gateway))
        )

    # ---------------------------------------------------------------- meter cache

    def cached_meter(self, meter: str) -> tuple[MeterSpec, float] | None:
        rows = self._query(
            "SELECT owner, capacity_w, commissioned_at, method, active, flagged, fetched_at "
            "FROM meters WHERE meter = ?",
            (meter,),
        )
        if not rows:
            return None
        o, c, t, m, a, f, fetched = rows[0]
        return MeterSpec(o, c, t, m, bool(a), bool(f)), float(fetched)

    def cache_meter(self, meter: str, spec: MeterSpec) -> None:
        self.cache_meters([(meter, spec)])

    def cache_meters(self, specs: Sequence[tuple[str, MeterSpec]]) -> None:
        """Stores looked-up meter specs (one transaction for all of them)."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m,
                        s.owner,
                        s.capacity_w,
                        s.commissioned_at,
                        s.method,
                        int(s.active),
                        int(s.flagged),
                        now,
                    )
                    for m, s in specs
                ],
            )

    def cached_meters(self) -> dict[str, tuple[MeterSpec, float]]:
        """Every cached meter spec with the time it was fetched (warms the in-memory cache)."""
        return {
            str(meter): (MeterSpec(o, c, t, m, bool(a), bool(f)), float(fetched))
            for meter, o, c, t, m, a, f, fetched in self._query(
                "SELECT meter, owner, capacity_w, commissioned_at, method, active, flagged, "
                "fetched_at FROM meters"
            )
        }

    # ---------------------------------------------------------------- ingest

    def accept(self, readings: Sequence[WireReading], source: str) -> list[str]:
        """Stores the readings atomically. Returns 'accepted' or 'duplicate' per reading, or
        raises Conflict (nothing stored) listing every reading that clashes with stored data."""
        statuses: list[str] = []
        issues: list[Issue] = []
        rows: list[tuple[Any, ...]] = []
        now = time.time()
        with self._tx() as db:
            for i, r in enumerate(readings):
                found = db.execute(
                    "SELECT start, end, gen, cons, sold, purchased FROM readings "
                    "WHERE meter = ? AND start < ? AND end > ?",
                    (r.meter, r.end, r.start),
                ).fetchall()
                if found:
                    if (
                        len(found) == 1
                        and found[0][0] == r.start
                        and tuple(found[0][1:]) == r.values()
                    ):
                        statuses.append("duplicate")
                        continue
                    issues.append(
                        Issue(
                            i,
                            "interval_start",
                            "an interval of this meter overlapping this one was already accepted "
                            "with different values; readings are never overwritten",
                            "conflict",
                        )
                    )
                    continue
                late = db.execute(
                    "SELECT start FROM readings WHERE meter = ? AND start >= ? "
                    "AND state != 'accepted' LIMIT 1",
                    (r.meter, r.end),
                ).fetchone()
                if late:
                    issues.append(
                        Issue(
                            i,
                            "interval_start",
                            f"a later interval of this meter (start {late[0]}) was already sent to "
                            "the chain, which records each meter's intervals in order",
                            "conflict",
                        )
                    )
                    continue
                rows.append(
                    (
                        r.meter,
                        r.start,
                        r.end,
                        r.generated_wh,
                        r.consumed_wh,
                        r.sold_wh,
                        r.purchased_wh,
                        source,
                        now,
                    )
                )
                statuses.append("accepted")
            if issues:
                raise Conflict(issues)
            db.executemany(
                "INSERT INTO readings (meter, start, end, gen, cons, sold, purchased, source, "
                "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return statuses

    # ---------------------------------------------------------------- status

    def readings_of(self, meter: str, start: int | None, end: int | None) -> list[StoredReading]:
        sql = f"SELECT {READING_COLS} FROM readings WHERE meter = ?"
        args: list[Any] = [meter]
        if start is not None:
            sql += " AND end > ?"
            args.append(start)
        if end is not None:
            sql += " AND start < ?"
            args.append(end)
        return [StoredReading(*row) for row in self._query(sql + " ORDER BY start", args)]

    def count_readings(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM readings")[0][0])

    def state_counts(self) -> dict[str, int]:
        rows = self._query("SELECT state, COUNT(*) FROM readings GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    def queue_depth(self) -> int:
        return int(
            self._query(
                "SELECT COUNT(*) FROM readings WHERE state NOT IN ('confirmed', 'rejected')"
            )[0][0]
        )

    def open_readings(self) -> int:
        """Readings waiting for the chain's verdict (the backlog that backpressure bounds)."""
        marks = ",".join("?" * len(OPEN_READING_STATES))
        return int(
            self._query(
                f"SELECT COUNT(*) FROM readings WHERE state IN ({marks})", OPEN_READING_STATES
            )[0][0]
        )

    def oldest_open_age(self) -> float:
        rows = self._query("SELECT MIN(accepted_at) FROM readings WHERE state = 'accepted'")
        return time.time() - float(rows[0][0]) if rows and rows[0][0] is not None else 0.0

    # ---------------------------------------------------------------- batching (leader)

    def candidates(self, limit: int, max_end: int) -> list[StoredReading]:
        """Open readings of the meters waiting longest, each meter's in order of start (so what
        is left behind starts later). Meters with readings in an open batch wait for it: the
        registry records a meter's intervals in order, so a later batch must not overtake."""
        return [
            StoredReading(*row[:-1])
            for row in self._query(
                "WITH m AS (SELECT meter, MIN(id) AS first FROM readings "
                "WHERE state = 'accepted' AND end <= ? AND meter NOT IN "
                "(SELECT meter FROM readings WHERE state IN ('batched', 'submitted')) "
                "GROUP BY meter ORDER BY first LIMIT ?) "
                f"SELECT {READING_COLS_R}, m.first FROM readings r JOIN m ON m.meter = r.meter "
                "WHERE r.state = 'accepted' AND r.end <= ? ORDER BY m.first, r.start LIMIT ?",
                (max_end, limit, max_end, limit),
            )
        ]

    def readings_by_ids(self, ids: Iterable[int]) -> list[StoredReading]:
        wanted = sorted(ids)
        out: list[StoredReading] = []
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += [
                StoredReading(*row)
                for row in self._query(
                    f"SELECT {READING_COLS} FROM readings WHERE id IN ({marks})", chunk
                )
            ]
        return out

    def reject_open(self, reasons: dict[int, str]) -> None:
        """Rejects open readings (by id) the registry refuses, with its reason."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE readings SET state = 'rejected', reason = ?, final_at = ? "
                "WHERE id = ? AND state = 'accepted'",
                [(reason, now, rid) for rid, reason in reasons.items()],
            )

    def count_ready(self, max_end: int) -> int:
        return int(
            self._query(
                "SELECT COUNT(*) FROM readings WHERE state = 'accepted' AND end <= ?", (max_end,)
            )[0][0]
        )

    def create_batch(self, readings: Sequence[StoredReading], digest: bytes, role: str) -> int:
        """Fixes a batch's content: the readings, in order, move to 'batched'. A retired batch
        with the same digest (the same content formed again) is revived, keeping its
        signatures, which are still valid for that digest."""
        state = "signing" if role == "lead" else "attested"
        now = time.time()
        with self._tx() as db:
            old = db.execute("SELECT id, state FROM batches WHERE digest = ?", (digest,)).fetchone()
            if old is not None and old[1] not in RETIRED_BATCH_STATES:
                raise Conflict([Issue(0, "digest", f"batch is already {old[1]}", "conflict")])
            if old is not None:
                batch_id = int(old[0])
                db.execute(
                    "UPDATE batches SET role = ?, state = ?, size = ?, created_at = ?, "
                    "attempts = 0, next_attempt_at = 0, error = NULL WHERE id = ?",
                    (role, state, len(readings), now, batch_id),
                )
            else:
                cur = db.execute(
                    "INSERT INTO batches (digest, role, state, size, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (digest, role, state, len(readings), now),
                )
                batch_id = int(cur.lastrowid or 0)
            changed = db.executemany(
                "UPDATE readings SET state = 'batched', batch_id = ?, batch_pos = ? "
                "WHERE id = ? AND state = 'accepted'",
                [(batch_id, pos, r.id) for pos, r in enumerate(readings)],
            ).rowcount
            if changed != len(readings):
                raise Conflict([Issue(0, "state", "a reading is no longer open", "conflict")])
        return batch_id

    def retire_batch(self, batch_id: int, state: str, note: str) -> int:
        """Retires an open batch that will not be submitted as it is (expired, superseded):
        in one transaction its readings that are not final go back to the queue. Returns how
        many went back. Readings already final (recorded on chain by another batch) stay."""
        assert state in RETIRED_BATCH_STATES
        with self._tx() as db:
            back = db.execute(
                "UPDATE readings SET state = 'accepted', batch_id = NULL, batch_pos = NULL, "
                "tx_hash = NULL WHERE batch_id = ? AND state IN ('batched', 'submitted')",
                (batch_id,),
            ).rowcount
            db.execute(
                "UPDATE batches SET state = ?, error = ? WHERE id = ?", (state, note, batch_id)
            )
        return int(back)

    def adopt_batch(self, batch_id: int) -> None:
        """A leader takes over a batch it attested for another leader: same content, same
        digest (so it can still be applied only once), now signed and submitted by us."""
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET role = 'lead', state = 'signing', created_at = ?, "
                "attempts = 0, next_attempt_at = 0, error = 'adopted' WHERE id = ? "
                "AND state = 'attested'",
                (time.time(), batch_id),
            )

    def touch_batch(self, batch_id: int) -> None:
        """Restarts an attested batch's expiry clock (its leader asked for it again)."""
        with self._tx() as db:
            db.execute("UPDATE batches SET created_at = ? WHERE id = ?", (time.time(), batch_id))

    def open_positions(self, batch_id: int) -> int:
        """How many readings of the batch are still waiting for the chain."""
        return int(
            self._query(
                "SELECT COUNT(*) FROM readings WHERE batch_id = ? "
                "AND state IN ('batched', 'submitted')",
                (batch_id,),
            )[0][0]
        )

    def batches_overtaken(self, states: Sequence[str]) -> list[int]:
        """Ids of batches in `states` holding a reading that is already final: another batch
        recorded it on chain (seen in the registry's events)."""
        marks = ",".join("?" * len(states))
        return [
            int(row[0])
            for row in self._query(
                f"SELECT DISTINCT b.id FROM batches b JOIN readings r ON r.batch_id = b.id "
                f"WHERE b.state IN ({marks}) AND r.state IN ('confirmed', 'rejected')",
                states,
            )
        ]

    def confirm_recorded(
        self, recorded: Sequence[tuple[str, int, tuple[int, ...], str, int]]
    ) -> tuple[int, int]:
        """Applies ReadingRecorded events seen on chain: (meter, start, (end, gen, cons, sold,
        purchased), tx hash, block). Our copy with the same values becomes confirmed, whatever
        batch it was in (the chain is the truth); a copy with other values becomes rejected,
        since the interval is taken. An event for an interval we do not hold yet is kept (a
        gateway may deliver it later: `match_recorded`). Returns (confirmed, rejected) counts
        of changed rows."""
        now = time.time()
        confirmed = rejected = 0
        with self._tx() as db:
            for meter, start, values, tx, block in recorded:
                if not db.execute(
                    "SELECT 1 FROM readings WHERE meter = ? AND start = ?", (meter, start)
                ).fetchone():
                    db.execute(
                        "INSERT OR IGNORE INTO chain_recorded VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (meter, start, *values, tx, block),
                    )
                    continue
                confirmed += db.execute(
                    "UPDATE readings SET state = 'confirmed', tx_hash = ?, block = ?, "
                    "reason = NULL, final_at = ? WHERE meter = ? AND start = ? AND end = ? "
                    "AND gen = ? AND cons = ? AND sold = ? AND purchased = ? "
                    "AND state != 'confirmed'",
                    (tx, block, now, meter, start, *values),
                ).rowcount
                rejected += db.execute(
                    "UPDATE readings SET state = 'rejected', block = ?, final_at = ?, "
                    "reason = ? WHERE meter = ? AND start = ? AND state NOT IN "
                    "('confirmed', 'rejected') AND (end, gen, cons, sold, purchased) != "
                    "(?, ?, ?, ?, ?)",
                    (
                        block,
                        now,
                        f"the chain recorded other values for this interval (tx {tx})",
                        meter,
                        start,
                        *values,
                    ),
                ).rowcount
        return confirmed, rejected

    def replace_batch(
        self,
        batch_id: int,
        rejected: dict[int, str],
        successors: Sequence[tuple[bytes, Sequence[int]]],
        back: Sequence[int],
        note: str,
    ) -> list[int]:
        """Retires a batch that can never be applied as it is (its transaction was never
        mined, or reverted as a whole): in one transaction, the readings at the `rejected`
        positions become rejected with their reason, the others move into new batches
        (digest, positions) ready to sign, or at the `back` positions return to the queue.
        Returns the new batch ids."""
        now = time.time()
        ids: list[int] = []
        with self._tx() as db:
            db.executemany(
                "UPDATE readings SET state = 'rejected', reason = ?, final_at = ?, tx_hash = NULL "
                "WHERE batch_id = ? AND batch_pos = ?",
                [(reason, now, batch_id, pos) for pos, reason in rejected.items()],
            )
            for digest, positions in successors:
                cur = db.execute(
                    "INSERT INTO batches (digest, role, state, size, created_at) "
                    "VALUES (?, 'lead', 'signing', ?, ?)",
                    (digest, len(positions), now),
                )
                new_id = int(cur.lastrowid or 0)
                ids.append(new_id)
                db.executemany(
                    "UPDATE readings SET state = 'batched', batch_id = ?, batch_pos = ?, "
                    "tx_hash = NULL WHERE batch_id = ? AND batch_pos = ?",
                    [(new_id, new_pos, batch_id, old) for new_pos, old in enumerate(positions)],
                )
            db.executemany(
                "UPDATE readings SET state = 'accepted', batch_id = NULL, batch_pos = NULL, "
                "tx_hash = NULL WHERE batch_id = ? AND batch_pos = ?",
                [(batch_id, pos) for pos in back],
            )
            db.execute(
                "UPDATE batches SET state = 'replaced', error = ? WHERE id = ?", (note, batch_id)
            )
        return ids

    def batch(self, batch_id: int) -> Batch:
        return Batch(*self._query(f"SELECT {BATCH_COLS} FROM batches WHERE id = ?", (batch_id,))[0])

    def batch_by_digest(self, digest: bytes) -> Batch | None:
        rows = self._query(f"SELECT {BATCH_COLS} FROM batches WHERE digest = ?", (digest,))
        return Batch(*rows[0]) if rows else None

    def batches(self, states: Sequence[str]) -> list[Batch]:
        marks = ",".join("?" * len(states))
        return [
            Batch(*row)
            for row in self._query(
                f"SELECT {BATCH_COLS} FROM batches WHERE state IN ({marks}) ORDER BY id", states
            )
        ]

    def batch_readings(self, batch_id: int) -> list[StoredReading]:
        return [
            StoredReading(*row)
            for row in self._query(
                f"SELECT {READING_COLS} FROM readings WHERE batch_id = ? ORDER BY batch_pos",
                (batch_id,),
            )
        ]

    def add_signature(self, batch_id: int, signer: str, signature: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO signatures (batch_id, signer, signature) VALUES (?, ?, ?)",
                (batch_id, signer, signature),
            )

    def signatures(self, batch_id: int) -> list[tuple[str, bytes]]:
        return [
            (str(s), bytes(sig))
            for s, sig in self._query(
                "SELECT signer, signature FROM signatures WHERE batch_id = ?", (batch_id,)
            )
        ]

    def clear_signatures(self, batch_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM signatures WHERE batch_id = ?", (batch_id,))

    def set_batch_state(
        self, batch_id: int, state: str, error: str | None = None, retry_in: float | None = None
    ) -> None:
        with self._tx() as db:
            if retry_in is not None:
                db.execute(
                    "UPDATE batches SET state = ?, error = ?, attempts = attempts + 1, "
                    "next_attempt_at = ? WHERE id = ?",
                    (state, error, time.time() + retry_in, batch_id),
                )
            else:
                db.execute(
                    "UPDATE batches SET state = ?, error = COALESCE(?, error) WHERE id = ?",
                    (state, error, batch_id),
                )
            if state in ("signing", "signed"):
                db.execute(
                    "UPDATE readings SET state = 'batched' WHERE batch_id = ? "
                    "AND state = 'submitted'",
                    (batch_id,),
                )

    # ---------------------------------------------------------------- transactions

    def record_tx(self, batch_id: int, tx_hash: bytes, nonce: int, raw: bytes) -> None:
        """Written BEFORE the transaction is sent: a crash after sending still knows the hash."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO txs (tx_hash, batch_id, nonce, raw, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (tx_hash, batch_id, nonce, raw, time.time()),
            )
            db.execute(
                "UPDATE batches SET state = 'sending', tx_hash = ? WHERE id = ?",
                (tx_hash, batch_id),
            )
            db.execute(
                "UPDATE readings SET state = 'submitted', tx_hash = ? WHERE batch_id = ? "
                "AND state = 'batched'",
                ("0x" + tx_hash.hex(), batch_id),
            )

    def drop_tx(self, batch_id: int, tx_hash: bytes) -> None:
        """Forgets a transaction the node refused outright (it is in no pool); the batch is
        signed again."""
        with self._tx() as db:
            db.execute("DELETE FROM txs WHERE tx_hash = ? AND sent = 0", (tx_hash,))
            db.execute("UPDATE batches SET state = 'signed' WHERE id = ?", (batch_id,))
            db.execute(
                "UPDATE readings SET state = 'batched', tx_hash = NULL WHERE batch_id = ? "
                "AND state = 'submitted'",
                (batch_id,),
            )

    def mark_sent(self, batch_id: int, tx_hash: bytes) -> None:
        with self._tx() as db:
            db.execute("UPDATE txs SET sent = 1 WHERE tx_hash = ?", (tx_hash,))
            db.execute(
                "UPDATE batches SET state = 'submitted' WHERE id = ? AND state = 'sending'",
                (batch_id,),
            )

    def tx_sent_at(self, tx_hash: bytes) -> float | None:
        rows = self._query("SELECT created_at FROM txs WHERE tx_hash = ?", (tx_hash,))
        return float(rows[0][0]) if rows else None

    def txs_of(self, batch_id: int) -> list[tuple[bytes, int, bytes]]:
        return [
            (bytes(h), int(n), bytes(raw))
            for h, n, raw in self._query(
                "SELECT tx_hash, nonce, raw FROM txs WHERE batch_id = ? ORDER BY nonce", (batch_id,)
            )
        ]

    def max_nonce(self) -> int | None:
        rows = self._query("SELECT MAX(nonce) FROM txs")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def finish_batch(
        self,
        batch_id: int,
        tx_hash: bytes,
        block: int,
        gas_used: int,
        outcomes: dict[int, str | None],
    ) -> None:
        """Applies an on-chain result: outcomes maps batch position -> None (recorded) or the
        decoded rejection reason. Every reading of the batch must be in `outcomes`."""
        now = time.time()
        tx = "0x" + tx_hash.hex()
        with self._tx() as db:
            # A reading the chain event sync already saw recorded (by another batch) stays
            # confirmed even though this batch's copy was refused as an overlap.
            db.executemany(
                "UPDATE readings SET state = ?, tx_hash = ?, block = ?, reason = ?, "
                "final_at = ? WHERE batch_id = ? AND batch_pos = ? "
                "AND NOT (state = 'confirmed' AND ?)",
                [
                    (
                        "rejected" if reason else "confirmed",
                        tx,
                        block,
                        reason,
                        now,
                        batch_id,
                        pos,
                        reason is not None,
                    )
                    for pos, reason in outcomes.items()
                ],
            )
            db.execute(
                "UPDATE batches SET state = 'confirmed', tx_hash = ?, block = ?, gas_used = ?, "
                "error = NULL WHERE id = ?",
                (tx_hash, block, gas_used, batch_id),
            )

    def match_recorded(self) -> tuple[int, int]:
        """Readings accepted since the last call whose interval the chain already recorded
        (events seen before the reading reached us) are settled as `confirm_recorded` does.
        Only the new readings are looked up, so this is cheap to run on every sync."""
        since = int(self.get_meta("chain_match_id") or 0)
        top = int(self._query("SELECT COALESCE(MAX(id), 0) FROM readings")[0][0])
        if top == since:
            return 0, 0
        rows = self._query(
            "SELECT r.meter, r.start, c.end, c.gen, c.cons, c.sold, c.purchased, c.tx_hash, "
            "c.block FROM readings r JOIN chain_recorded c ON c.meter = r.meter "
            "AND c.start = r.start WHERE r.id > ? AND r.id <= ?",
            (since, top),
        )
        counts = (0, 0)
        if rows:
            with self._tx() as db:
                db.executemany(
                    "DELETE FROM chain_recorded WHERE meter = ? AND start = ?",
                    [(r[0], r[1]) for r in rows],
                )
            counts = self.confirm_recorded(
                [(m, st, (e, g, c, so, p), tx, b) for m, st, e, g, c, so, p, tx, b in rows]
            )
        self.set_meta("chain_match_id", top)
        return counts

    def final_times(self) -> list[tuple[float, float]]:
        """(accepted_at, final_at) of finished readings (latency figures)."""
        return [
            (float(a), float(f))
            for a, f in self._query(
                "SELECT accepted_at, final_at FROM readings WHERE final_at IS NOT NULL"
            )
        ]
