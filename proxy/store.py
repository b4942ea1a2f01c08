"""The proxy's durable state in SQLite: ePROM orders, registry links, the updates ePROM sent, and the
delivery outbox. Every change is one short write transaction; nothing here knows HTTP or the rules."""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .linking import Candidate

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eprom_orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,              -- ePROX's own key for the order
    eprom_id TEXT NOT NULL UNIQUE,         -- ePROM's form order id: never leaves ePROX
    national_id TEXT NOT NULL,
    form_id TEXT NOT NULL,
    ordered_at TEXT NOT NULL,
    lifetime_ends_at TEXT NOT NULL,
    state TEXT NOT NULL,
    order_reply TEXT NOT NULL,             -- what ePROM answered that linked registries also get
    purged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS eprom_orders_patient_form ON eprom_orders (national_id, form_id, ordered_at);
CREATE INDEX IF NOT EXISTS eprom_orders_lifetime ON eprom_orders (purged, lifetime_ends_at);
CREATE TABLE IF NOT EXISTS registry_orders (
    id TEXT PRIMARY KEY,                   -- the id this registry knows the order by
    registry TEXT NOT NULL,
    order_key TEXT NOT NULL REFERENCES eprom_orders (key),
    created_at TEXT NOT NULL,
    rule INTEGER NOT NULL,
    UNIQUE (registry, order_key)
);
CREATE INDEX IF NOT EXISTS registry_orders_order ON registry_orders (order_key);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_key TEXT NOT NULL REFERENCES eprom_orders (key),
    status TEXT NOT NULL,                  -- FormOrderStatus name: one update per status and order
    final INTEGER NOT NULL,                -- 1 for a returned form (Completed, Expired)
    body TEXT,                             -- ePROM's body; NULL once the lifetime has ended
    received_at TEXT NOT NULL,
    UNIQUE (order_key, status)
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,               -- stable X-Delivery-Id, the same on every attempt
    registry TEXT NOT NULL,
    registry_order TEXT NOT NULL,
    order_key TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT,                             -- NULL once delivered (the answer is not kept twice)
    state TEXT NOT NULL DEFAULT 'pending', -- pending | done | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_error TEXT,
    hold TEXT                              -- set while the request that made it has not answered yet
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_registry_order ON deliveries (registry_order, state, seq);
"""


def ts(instant: datetime) -> str:
    """Fixed-width UTC text, so SQLite compares instants as strings."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class OrderRow:
    key: str
    eprom_id: str
    national_id: str
    form_id: str
    ordered_at: datetime
    state: str
    order_reply: dict[str, Any]


@dataclass(frozen=True)
class Link:
    registry_order: str
    registry: str


@dataclass(frozen=True)
class Update:
    status: str
    final: bool
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Delivery:
    seq: int
    id: str
    registry: str
    registry_order: str
    order_key: str
    path: str
    status: str
    body: dict[str, Any] | None
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None


class ProxyStore:
    def __init__(self, path: Path | str):
        self.path = str(path)
        self._local = threading.local()
        self._db().executescript(SCHEMA)

    # --- connections and transactions ---------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False,
                                 uri=self.path.startswith("file:"))
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # --- meta ---------------------------------------------------------------------------
    def next_generation(self) -> int:
        """Counts starts of the proxy on this state, so seeded ids never repeat after a restart."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            generation = int(row["value"]) + 1 if row else 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)", (str(generation),))
        return generation

    # --- orders and links ---------------------------------------------------------------
    def candidates(self, national_id: str, form_id: str, since: datetime) -> list[Candidate]:
        rows = self._db().execute(
            """SELECT o.seq, o.key, o.ordered_at, o.state, group_concat(r.registry, char(31)) AS linked
               FROM eprom_orders o LEFT JOIN registry_orders r ON r.order_key = o.key
               WHERE o.national_id = ? AND o.form_id = ? AND o.ordered_at > ?
               GROUP BY o.key""",
            (national_id, form_id, ts(since)),
        ).fetchall()
        return [
            Candidate(key=r["key"], ordered_at=from_ts(r["ordered_at"]), state=r["state"],
                      linked=frozenset((r["linked"] or "").split("\x1f")) - {""}, seq=r["seq"])
            for r in rows
        ]

    def order(self, key: str) -> OrderRow | None:
        row = self._db().execute("SELECT * FROM eprom_orders WHERE key = ?", (key,)).fetchone()
        return self._order_row(row)

    def order_by_eprom_id(self, eprom_id: str) -> OrderRow | None:
        row = self._db().execute("SELECT * FROM eprom_orders WHERE eprom_id = ?", (eprom_id,)).fetchone()
        return self._order_row(row)

    @staticmethod
    def _order_row(row: sqlite3.Row | None) -> OrderRow | None:
        if row is None:
            return None
        return OrderRow(row["key"], row["eprom_id"], row["national_id"], row["form_id"],
                        from_ts(row["ordered_at"]), row["state"], json.loads(row["order_reply"]))

    @staticmethod
    def insert_order(db: sqlite3.Connection, *, key: str, eprom_id: str, national_id: str, form_id: str,
                     ordered_at: datetime, lifetime_ends_at: datetime, state: str,
                     order_reply: dict[str, Any]) -> None:
        db.execute(
            """INSERT INTO eprom_orders (key, eprom_id, national_id, form_id, ordered_at, lifetime_ends_at,
                                         state, order_reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (key, eprom_id, national_id, form_id, ts(ordered_at), ts(lifetime_ends_at), state,
             json.dumps(order_reply)),
        )

    @staticmethod
    def set_state(db: sqlite3.Connection, key: str, state: str) -> None:
        db.execute("UPDATE eprom_orders SET state = ? WHERE key = ?", (state, key))

    @staticmethod
    def insert_link(db: sqlite3.Connection, *, registry_order: str, registry: str, order_key: str,
                    created_at: datetime, rule: int) -> None:
        db.execute(
            "INSERT INTO registry_orders (id, registry, order_key, created_at, rule) VALUES (?, ?, ?, ?, ?)",
            (registry_order, registry, order_key, ts(created_at), rule),
        )

    @staticmethod
    def links(db: sqlite3.Connection, order_key: str) -> list[Link]:
        rows = db.execute(
            "SELECT id, registry FROM registry_orders WHERE order_key = ? ORDER BY created_at, rowid",
            (order_key,),
        ).fetchall()
        return [Link(r["id"], r["registry"]) for r in rows]

    def link_of(self, registry: str, registry_order: str) -> tuple[Link, str] | None:
        """The link a registry owns under that id, with its order key; None for anyone else's id."""
        row = self._db().execute(
            "SELECT id, registry, order_key FROM registry_orders WHERE id = ? AND registry = ?",
            (registry_order, registry),
        ).fetchone()
        return (Link(row["id"], row["registry"]), row["order_key"]) if row else None

    # --- updates from ePROM -------------------------------------------------------------
    @staticmethod
    def insert_update(db: sqlite3.Connection, *, order_key: str, status: str, final: bool,
                      body: dict[str, Any], received_at: datetime) -> bool:
        """False when ePROM already sent this status for this order (a resent callback)."""
        cursor = db.execute(
            """INSERT OR IGNORE INTO updates (order_key, status, final, body, received_at)
               VALUES (?, ?, ?, ?, ?)""",
            (order_key, status, int(final), json.dumps(body), ts(received_at)),
        )
        return cursor.rowcount == 1

    @staticmethod
    def updates(db: sqlite3.Connection, order_key: str) -> list[Update]:
        rows = db.execute("SELECT status, final, body FROM updates WHERE order_key = ? ORDER BY seq",
                          (order_key,)).fetchall()
        return [Update(r["status"], bool(r["final"]), json.loads(r["body"]) if r["body"] else None)
                for r in rows]

    # --- the outbox ---------------------------------------------------------------------
    @staticmethod
    def add_delivery(db: sqlite3.Connection, *, id: str, registry: str, registry_order: str, order_key: str,
                     path: str, status: str, body: dict[str, Any], due: datetime, hold: str | None) -> None:
        db.execute(
            """INSERT INTO deliveries (id, registry, registry_order, order_key, path, status, body,
                                       created_at, next_attempt_at, hold)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (id, registry, registry_order, order_key, path, status, json.dumps(body), ts(due), ts(due), hold),
        )

    _READY = """d.state = 'pending' AND d.hold IS NULL
                AND NOT EXISTS (SELECT 1 FROM deliveries e
                                WHERE e.registry_order = d.registry_order AND e.state = 'pending'
                                  AND e.seq < d.seq)"""

    def next_delivery_due(self) -> datetime | None:
        row = self._db().execute(f"SELECT min(d.next_attempt_at) AS due FROM deliveries d WHERE {self._READY}"
                                 ).fetchone()
        return from_ts(row["due"]) if row["due"] else None

    def due_deliveries(self, now: datetime, limit: int = 500) -> list[Delivery]:
        """Deliveries to attempt now: per registry order only the oldest pending one (status before answer)."""
        rows = self._db().execute(
            f"""SELECT d.* FROM deliveries d WHERE {self._READY} AND d.next_attempt_at <= ?
                ORDER BY d.next_attempt_at, d.seq LIMIT ?""",
            (ts(now), limit),
        ).fetchall()
        return [self._delivery(r) for r in rows]

    def release_hold(self, hold: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET hold = NULL WHERE hold = ?", (hold,))

    def release_all_holds(self) -> None:
        """After a restart no request is in flight any more: everything held may go."""
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET hold = NULL WHERE hold IS NOT NULL")

    def mark_delivered(self, delivery_id: str, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                """UPDATE deliveries SET state = 'done', body = NULL, attempts = attempts + 1,
                          last_attempt_at = ?, last_error = NULL WHERE id = ? AND state = 'pending'""",
                (ts(at), delivery_id),
            )

    def mark_failed(self, delivery_id: str, at: datetime, error: str, retry_at: datetime | None) -> None:
        """Schedule the next attempt, or park the delivery as dead when retry_at is None."""
        with self.transaction() as db:
            db.execute(
                """UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                          state = CASE WHEN ? IS NULL THEN 'dead' ELSE 'pending' END,
                          next_attempt_at = coalesce(?, next_attempt_at)
                   WHERE id = ? AND state = 'pending'""",
                (ts(at), error[:500], retry_at and ts(retry_at), retry_at and ts(retry_at), delivery_id),
            )

    def revive(self, delivery_ids: list[str] | None, at: datetime) -> int:
        """Put dead (or given) deliveries back in the queue, due at once; returns how many."""
        with self.transaction() as db:
            if delivery_ids is None:
                cursor = db.execute(
                    "UPDATE deliveries SET state = 'pending', next_attempt_at = ? "
                    "WHERE state = 'dead' AND body IS NOT NULL", (ts(at),))
            else:
                marks = ",".join("?" * len(delivery_ids))
                cursor = db.execute(
                    f"UPDATE deliveries SET state = 'pending', next_attempt_at = ? "
                    f"WHERE id IN ({marks}) AND state = 'dead' AND body IS NOT NULL", (ts(at), *delivery_ids))
            return cursor.rowcount

    def deliveries(self, state: str | None = None, registry: str | None = None) -> list[Delivery]:
        sql, args = "SELECT * FROM deliveries d WHERE 1 = 1", []
        if state:
            sql += " AND d.state = ?"
            args.append(state)
        if registry:
            sql += " AND d.registry = ?"
            args.append(registry)
        return [self._delivery(r) for r in self._db().execute(sql + " ORDER BY d.seq", args).fetchall()]

    @staticmethod
    def _delivery(r: sqlite3.Row) -> Delivery:
        return Delivery(r["seq"], r["id"], r["registry"], r["registry_order"], r["order_key"], r["path"],
                        r["status"], json.loads(r["body"]) if r["body"] else None, r["state"], r["attempts"],
                        from_ts(r["created_at"]), from_ts(r["next_attempt_at"]), r["last_error"])

    # --- lifetime ends --------------------------------------------------------------------
    def next_lifetime_end(self) -> datetime | None:
        row = self._db().execute("SELECT min(lifetime_ends_at) AS due FROM eprom_orders WHERE purged = 0"
                                 ).fetchone()
        return from_ts(row["due"]) if row["due"] else None

    def purge_ended(self, now: datetime) -> int:
        """Delete the stored answers (and any copies in the outbox) of orders whose lifetime has ended."""
        with self.transaction() as db:
            keys = [r["key"] for r in db.execute(
                "SELECT key FROM eprom_orders WHERE purged = 0 AND lifetime_ends_at <= ?", (ts(now),))]
            for key in keys:
                db.execute("UPDATE updates SET body = NULL WHERE order_key = ? AND final = 1", (key,))
                db.execute("UPDATE deliveries SET body = NULL WHERE order_key = ? AND state != 'pending'", (key,))
                db.execute("UPDATE eprom_orders SET purged = 1 WHERE key = ?", (key,))
            return len(keys)
