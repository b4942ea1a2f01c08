"""The proxy's durable state in SQLite: ePROM orders, registry links, the updates ePROM sent, messages to
citizens, holds, and the delivery outbox with its leases. Every change is one short write transaction or
one atomic statement; nothing here knows HTTP or the linking rules. Several processes may share the file
(gunicorn workers): every read-decide-write sequence is either one statement or one BEGIN IMMEDIATE."""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .linking import ERROR, Candidate
from .locks import WriteGate

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eprom_orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,              -- ePROX's own key for the order
    eprom_id TEXT NOT NULL UNIQUE,         -- ePROM's form order id: never leaves ePROX
    national_id TEXT NOT NULL,             -- masked once the lifetime has ended
    form_id TEXT NOT NULL,
    ordered_at TEXT NOT NULL,
    lifetime_ends_at TEXT NOT NULL,
    state TEXT NOT NULL,
    order_reply TEXT NOT NULL,             -- what ePROM answered that linked registries also get
    purged INTEGER NOT NULL DEFAULT 0,
    on_behalf_of TEXT,                     -- the person the form is about, if not national_id; masked as it is
    test_mode INTEGER NOT NULL DEFAULT 0   -- a testMode order: ePROM calls nobody back, so nobody links to it
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
    signed_form_id TEXT,                   -- a signed answer's document id (what ExternalDocument serves)
    UNIQUE (order_key, status)
);
CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY,                  -- ePROX's own key for a message to a citizen
    eprom_id TEXT NOT NULL UNIQUE,         -- ePROM's messageToCitizenId: never leaves ePROX
    registry TEXT NOT NULL,                -- the only registry that hears about it
    registry_message_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at);
CREATE TABLE IF NOT EXISTS message_updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key TEXT NOT NULL REFERENCES messages (key),
    sent_status TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (message_key, sent_status)
);
CREATE TABLE IF NOT EXISTS holds (
    hold TEXT PRIMARY KEY,                 -- a registry order or message id whose HTTP answer is not sent yet
    owner TEXT NOT NULL                    -- the proxy process answering it (see proxy/locks.py)
);
CREATE TABLE IF NOT EXISTS early_callbacks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, -- a callback that came before the proxy had stored its ePROM id
    kind TEXT NOT NULL,                    -- 'order' or 'message'
    eprom_id TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (kind, eprom_id, status)
);
CREATE INDEX IF NOT EXISTS early_callbacks_received ON early_callbacks (received_at);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,               -- stable X-Delivery-Id, the same on every attempt
    registry TEXT NOT NULL,
    registry_order TEXT NOT NULL,          -- the registry's order id (or message id): its ordering lane
    order_key TEXT NOT NULL,               -- eprom_orders.key, or 'message:' + messages.key
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT,                             -- NULL once delivered (the answer is not kept twice)
    state TEXT NOT NULL DEFAULT 'pending', -- pending | done | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_error TEXT,
    hold TEXT,                             -- its registry_order, when made while that id's answer was unsent: waits while holds has it
    lease_owner TEXT,                      -- the process sending it right now
    lease_until REAL,                      -- wall-clock end of that lease (unix seconds)
    window_start TEXT,                     -- its first failed attempt (since a replay): retries run 3 days from it
    window_failures INTEGER NOT NULL DEFAULT 0
);
"""

#: Indexes of the outbox, created after any migration (their columns may be new). Partial indexes keep the
#: hot queries independent of how many delivered rows the table holds.
INDEXES = """
DROP TABLE IF EXISTS calls_in_flight;  -- calls to ePROM in flight are a flock now (proxy/locks.py)
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_registry_order;
DROP INDEX IF EXISTS deliveries_hold;  -- a hold is its lane's id: deliveries_lane_open finds what it holds
DROP INDEX IF EXISTS deliveries_lane;  -- pending only: a lane is also held by a dead delivery now
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries (registry, next_attempt_at, seq) WHERE state = 'pending';
-- a registry order's deliveries not done; queries name it (INDEXED BY) and say "state != 'done'"
CREATE INDEX IF NOT EXISTS deliveries_lane_open ON deliveries (registry_order, seq) WHERE state != 'done';
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (order_key);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (state, seq) WHERE state != 'done';
CREATE INDEX IF NOT EXISTS updates_signed ON updates (signed_form_id) WHERE signed_form_id IS NOT NULL;
"""

NOT_LINKABLE = "the order is no longer active"


class NotLinkable(Exception):
    """The order a link was decided for stopped being active before the link was written (ePROM reported an
    error for it, or its lifetime ended): decide again."""


class DuplicateEpromId(Exception):
    """ePROM gave a new order or message the id of one stored already (never the real ePROM; a simulator
    started afresh on kept state)."""


@contextmanager
def _new_eprom_id(table: str, eprom_id: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as err:
        if str(err) == f"UNIQUE constraint failed: {table}.eprom_id":
            raise DuplicateEpromId(eprom_id) from err
        raise


#: Write-through views, one per hot write: the write is one INSERT into the view, and its trigger makes
#: every row in the same statement. Why: each statement is a round trip through Python's GIL while the
#: database's single writer lock is held, and under load every such round trip waits for other threads'
#: Python (bench/README.md, "Where the time went"); one statement keeps the lock for one round trip. TEMP:
#: made on each connection from this code, never stored in the database file.
WRITE_VIEWS = """
CREATE TEMP VIEW IF NOT EXISTS link_writes AS
    SELECT NULL AS registry_order, NULL AS registry, NULL AS order_key, NULL AS created_at, NULL AS rule,
           NULL AS owner, NULL AS lease_until, NULL AS api_key, NULL AS path WHERE 0;
-- a registry linked to an order: its link, its hold, and the order's updates so far queued for it
-- (statuses first, then the answer), leased to the process that will send them once the hold goes;
-- ids as delivery_id() makes them, bodies as proxy.service.for_registry() makes them. Not when the order
-- stopped being active since the decision (ePROM's callbacks do not wait for the linking lock): NotLinkable
CREATE TEMP TRIGGER IF NOT EXISTS link_writes_insert INSTEAD OF INSERT ON link_writes BEGIN
    SELECT RAISE(ABORT, '{not_linkable}') FROM eprom_orders
        WHERE key = NEW.order_key AND (state = '{error}' OR purged);
    INSERT INTO registry_orders (id, registry, order_key, created_at, rule)
        VALUES (NEW.registry_order, NEW.registry, NEW.order_key, NEW.created_at, NEW.rule);
    INSERT INTO holds (hold, owner) VALUES (NEW.registry_order, NEW.owner);
    INSERT INTO deliveries (id, registry, registry_order, order_key, path, status, body, created_at,
                            next_attempt_at, hold, lease_owner, lease_until)
        SELECT NEW.registry_order || '.' || u.status, NEW.registry, NEW.registry_order, NEW.order_key, NEW.path,
               u.status, json_set(u.body, '$.apiKey', NEW.api_key, '$.formOrderId', NEW.registry_order),
               NEW.created_at, NEW.created_at, NEW.registry_order, NEW.owner, NEW.lease_until
        FROM updates u WHERE u.order_key = NEW.order_key AND u.body IS NOT NULL ORDER BY u.final, u.seq;
END;
-- a delivery attempted under a hold means its registry has had the answer with that id (a leased replay
-- goes only once the answer is sent, anything else only once the hold is gone): the hold has served
CREATE TEMP TRIGGER IF NOT EXISTS attempts_end_holds AFTER UPDATE OF attempts ON deliveries
    WHEN NEW.hold IS NOT NULL BEGIN
    DELETE FROM holds WHERE hold = NEW.hold;
END;
CREATE TEMP VIEW IF NOT EXISTS order_writes AS
    SELECT NULL AS key, NULL AS eprom_id, NULL AS national_id, NULL AS form_id, NULL AS ordered_at,
           NULL AS lifetime_ends_at, NULL AS state, NULL AS order_reply, NULL AS registry_order,
           NULL AS registry, NULL AS rule, NULL AS owner, NULL AS on_behalf_of, NULL AS test_mode WHERE 0;
-- a new ePROM order, the link of the registry that made it, and its hold
CREATE TEMP TRIGGER IF NOT EXISTS order_writes_insert INSTEAD OF INSERT ON order_writes BEGIN
    INSERT INTO eprom_orders (key, eprom_id, national_id, form_id, ordered_at, lifetime_ends_at, state, order_reply,
                              on_behalf_of, test_mode)
        VALUES (NEW.key, NEW.eprom_id, NEW.national_id, NEW.form_id, NEW.ordered_at, NEW.lifetime_ends_at,
                NEW.state, NEW.order_reply, NEW.on_behalf_of, NEW.test_mode);
    INSERT INTO registry_orders (id, registry, order_key, created_at, rule)
        VALUES (NEW.registry_order, NEW.registry, NEW.key, NEW.ordered_at, NEW.rule);
    INSERT INTO holds (hold, owner) VALUES (NEW.registry_order, NEW.owner);
END;
""".format(not_linkable=NOT_LINKABLE, error=ERROR)

#: Columns added since the first schema: (table, column, declaration) for databases made before them.
MIGRATIONS = (
    ("eprom_orders", "on_behalf_of", "TEXT"),
    ("eprom_orders", "test_mode", "INTEGER NOT NULL DEFAULT 0"),
    ("updates", "signed_form_id", "TEXT"),
    ("deliveries", "lease_owner", "TEXT"),
    ("deliveries", "lease_until", "REAL"),
    ("deliveries", "window_start", "TEXT"),
    ("deliveries", "window_failures", "INTEGER NOT NULL DEFAULT 0"),
)

#: Stored data brought in line with a rule that changed: (name, statement), run once per database.
DATA_MIGRATIONS = (
    # an order whose onBehalfOfNationalId names its recipient is about the recipient: it links with those without
    ("on_behalf_of_self", "UPDATE eprom_orders SET on_behalf_of = NULL WHERE on_behalf_of = national_id"),
)

DELIVERY_STATES = ("pending", "done", "dead")
#: An update waiting in one registry order's lane that no process is sending: only a pump claim will (it must
#: be woken). Stated once, asked by waiting_in_lane and, about the lane of the delivery it records, by
#: mark_delivered.
UNLEASED_IN_LANE = ("SELECT 1 FROM deliveries AS w INDEXED BY deliveries_lane_open WHERE w.registry_order = {lane} "
                    "AND w.state != 'done' AND w.state = 'pending' AND w.lease_owner IS NULL")
_WAITING_IN_LANE = UNLEASED_IN_LANE.format(lane="?") + " LIMIT 1"
_WAITING_BEHIND = UNLEASED_IN_LANE.format(lane="deliveries.registry_order") + " AND w.id != deliveries.id"
MESSAGE_PREFIX = "message:"


def delivery_id(registry_order: str, status: str) -> str:
    """The stable X-Delivery-Id of one update for one registry order (or message): there is one delivery
    per pair, so the id says which it is, and the same every time. (WRITE_VIEWS builds it the same way in SQL;
    tests/unit/test_proxy_store_replay.py holds the two equal.)"""
    return f"{registry_order}.{status}"


def ts(instant: datetime) -> str:
    """Fixed-width UTC text (2025-01-06T08:00:00.000000Z), so SQLite compares instants as strings."""
    u = instant.astimezone(timezone.utc)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class OrderRow:
    key: str
    eprom_id: str
    national_id: str
    form_id: str
    ordered_at: datetime
    state: str
    order_reply: dict[str, Any]
    lifetime_ends_at: datetime | None = None
    purged: bool = False


@dataclass(frozen=True)
class Link:
    registry_order: str
    registry: str
    held: bool = False  # its registry has not got the HTTP answer with this id yet


@dataclass(frozen=True)
class MessageRow:
    key: str
    eprom_id: str
    registry: str
    registry_message_id: str
    held: bool = False


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
    last_attempt_at: datetime | None = None
    window_start: datetime | None = None
    window_failures: int = 0
    lease_until: float | None = None  # wall clock: until when the process that leased it may send it

    @property
    def failed(self) -> bool:
        """Pending, but at least one attempt failed: what `proxy deliveries --state failed` lists."""
        return self.state == "pending" and self.attempts > 0

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "registry": self.registry, "registryOrderId": self.registry_order,
                "path": self.path, "status": self.status, "state": self.state, "attempts": self.attempts,
                "createdAt": self.created_at.isoformat(), "nextAttemptAt": self.next_attempt_at.isoformat(),
                "lastAttemptAt": self.last_attempt_at.isoformat() if self.last_attempt_at else None,
                "lastError": self.last_error}


class _Lease:
    """A thread's hold on a pooled connection: when the thread ends, its thread-local storage goes, and
    with it this object, which gives the connection back to the pool."""

    __slots__ = ("store", "db")

    def __init__(self, store: "ProxyStore", db: sqlite3.Connection):
        self.store, self.db = store, db

    def __del__(self) -> None:
        try:
            self.store._give_back(self.db)
        except Exception:  # interpreter shutdown and the like
            pass


@dataclass(frozen=True)
class StoredCandidate(Candidate):
    """A candidate as the store read it: with what ePROM answered to its order, so that a registry linking
    to it gets that answer without a second read."""

    order_reply_json: str = "{}"

    @property
    def order_reply(self) -> dict[str, Any]:
        return json.loads(self.order_reply_json)


class ProxyStore:
    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL", read_only: bool = False):
        """read_only: for a connection that may only read (an operator's listing, a read-only file system):
        the schema is taken as it is, never brought up to date (which writes)."""
        self.path = str(path)
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        self._idle: list[sqlite3.Connection] = []  # connections of threads that have ended, for reuse
        self._all: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self._schema_ready = False  # the write views refer to the tables: made once they exist
        plain = not (self.path.startswith("file:") or self.path == ":memory:")
        self._gate = WriteGate(Path(self.path + ".locks") / "write.lock") if plain else None
        if not read_only:
            self._migrate()

    # --- connections and transactions ---------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This thread's connection. A thread borrows one from the pool (or opens one) and gives it back
        when it ends: werkzeug serves every HTTP connection on a new thread, and a connection per thread
        ever seen would pile up (SQLite even keeps a closed connection's file descriptor open while any
        other connection of the process holds a lock on the file)."""
        lease = getattr(self._local, "lease", None)
        if lease is None:
            with self._pool_lock:
                db = self._idle.pop() if self._idle else None
            if db is None:
                db = self._connect()
            lease = self._local.lease = _Lease(self, db)
        return lease.db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False,
                             uri=self.path.startswith("file:"))
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL loses nothing when the process is killed (committed pages are in the OS's
        # cache); FULL also survives a power cut, at an fsync per commit (docs/PROXY.md).
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA secure_delete=ON")  # deleted answers are overwritten, not just unlinked
        if self._schema_ready:
            db.executescript(WRITE_VIEWS)
        with self._pool_lock:
            self._all.append(db)
        return db

    def _give_back(self, db: sqlite3.Connection) -> None:
        with self._pool_lock:
            if not self._closed:
                if db.in_transaction:  # never hand on an open transaction (cannot happen: belt and braces)
                    db.rollback()
                self._idle.append(db)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        db = self._db()
        with self._writing():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self._gate is None:
            yield
        else:
            with self._gate.hold():
                yield

    def _migrate(self) -> None:
        db = self._db()
        with self._writing():
            db.executescript(SCHEMA)  # CREATE ... IF NOT EXISTS: a no-op on an existing database
            db.execute("BEGIN IMMEDIATE")
            try:
                for table, column, declaration in MIGRATIONS:
                    columns = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                    if column not in columns:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                for name, statement in DATA_MIGRATIONS:  # each once per database
                    if db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 'done')",
                                  (f"migration:{name}",)).rowcount:
                        db.execute(statement)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            db.executescript(INDEXES)
        db.executescript(WRITE_VIEWS)
        self._schema_ready = True

    def close(self) -> None:
        """Close every connection this store opened, from any thread."""
        with self._pool_lock:
            self._closed = True
            connections, self._all, self._idle = self._all, [], []
        for db in connections:
            try:
                db.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    # --- meta ---------------------------------------------------------------------------
    def next_generation(self) -> int:
        """Counts starts of the proxy on this state, so seeded ids never repeat after a restart."""
        with self.transaction() as db:
            generation = self.latest_generation(db) + 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)", (str(generation),))
        return generation

    def align_lifetimes(self, lifetime: timedelta, now: datetime) -> int:
        """Make every order not yet ended end by the lifetime configured now: an operator may change it between
        runs, and the linking rules (which read the configuration) and the purge of answers (which reads each
        order's stored end) must agree, both ways. Cheap when nothing changed (the lifetime last aligned to is
        kept in meta); returns how many orders' ends moved. An order that has ended stays ended, purged or
        not yet (its end may have passed while no proxy ran): a longer lifetime must not bring it back."""
        seconds = lifetime.total_seconds()
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'lifetime_seconds'").fetchone()
            if row is not None and float(row["value"]) == seconds:
                return 0
            stale = db.execute(  # julianday reads milliseconds: ends within 2 ms of the lifetime are right
                """SELECT key, ordered_at FROM eprom_orders WHERE purged = 0 AND lifetime_ends_at > ?
                   AND abs((julianday(lifetime_ends_at) - julianday(ordered_at)) * 86400.0 - ?) > 0.002""",
                (ts(now), seconds)).fetchall()
            db.executemany("UPDATE eprom_orders SET lifetime_ends_at = ? WHERE key = ?",
                           [(ts(from_ts(r["ordered_at"]) + lifetime), r["key"]) for r in stale])
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('lifetime_seconds', ?)", (repr(seconds),))
        return len(stale)

    # --- orders and links ---------------------------------------------------------------
    def candidates(self, national_id: str, form_id: str, since: datetime, now: datetime,
                   on_behalf_of: str | None = None) -> list[StoredCandidate]:
        """The orders of a form for the same recipient about the same person (on_behalf_of: the person the
        form is about, if not the recipient), placed after `since`, that have not ended by `now` (by their
        stored end, purged or not: an order whose end passed while no proxy ran is not purged yet) and are
        not test-mode orders (nobody hears of those). The index is named: given the end's condition, SQLite
        picked the lifetime index and read every order not yet ended (seconds per order at 10^6 orders)."""
        rows = self._db().execute(
            """SELECT o.seq, o.key, o.ordered_at, o.state, o.order_reply,
                      group_concat(r.registry, char(31)) AS linked
               FROM eprom_orders o INDEXED BY eprom_orders_patient_form
                    LEFT JOIN registry_orders r ON r.order_key = o.key
               WHERE o.national_id = ? AND o.form_id = ? AND o.ordered_at > ? AND o.purged = 0
                     AND o.lifetime_ends_at > ? AND o.on_behalf_of IS ? AND o.test_mode = 0
               GROUP BY o.key""",
            (national_id, form_id, ts(since), ts(now), on_behalf_of),
        ).fetchall()
        return [
            StoredCandidate(key=r["key"], ordered_at=from_ts(r["ordered_at"]), state=r["state"],
                            linked=frozenset((r["linked"] or "").split("\x1f")) - {""}, seq=r["seq"],
                            order_reply_json=r["order_reply"])
            for r in rows
        ]

    def order(self, key: str) -> OrderRow | None:
        row = self._db().execute("SELECT * FROM eprom_orders WHERE key = ?", (key,)).fetchone()
        return self._order_row(row)

    def order_by_eprom_id(self, eprom_id: str, db: sqlite3.Connection | None = None) -> OrderRow | None:
        row = (db or self._db()).execute("SELECT * FROM eprom_orders WHERE eprom_id = ?", (eprom_id,)).fetchone()
        return self._order_row(row)

    @staticmethod
    def _order_row(row: sqlite3.Row | None) -> OrderRow | None:
        if row is None:
            return None
        return OrderRow(row["key"], row["eprom_id"], row["national_id"], row["form_id"],
                        from_ts(row["ordered_at"]), row["state"], json.loads(row["order_reply"]),
                        from_ts(row["lifetime_ends_at"]), bool(row["purged"]))

    @staticmethod
    def set_state(db: sqlite3.Connection, key: str, state: str) -> None:
        db.execute("UPDATE eprom_orders SET state = ? WHERE key = ?", (state, key))

    def add_link(self, *, registry_order: str, registry: str, order_key: str, created_at: datetime, rule: int,
                 owner: str, api_key: str, path: str, lease_until: float) -> list[Delivery]:
        """Link a registry to an order and hold its id, queueing the order's updates so far for it, leased
        to `owner` (one statement: see WRITE_VIEWS); returns those deliveries in the order they go. Raises
        NotLinkable, having written nothing, when the order is no longer active (an Error, or purged)."""
        try:
            with self._writing():
                self._db().execute(
                    """INSERT INTO link_writes (registry_order, registry, order_key, created_at, rule, owner,
                                                lease_until, api_key, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (registry_order, registry, order_key, ts(created_at), rule, owner, lease_until, api_key, path))
        except sqlite3.IntegrityError as err:
            if str(err) == NOT_LINKABLE:
                raise NotLinkable(order_key) from err
            raise
        rows = self._db().execute(  # by the lane's index; leased to `owner`: nothing else changes them meanwhile
            "SELECT * FROM deliveries INDEXED BY deliveries_lane_open WHERE registry_order = ? AND state != 'done' "
            "AND state = 'pending' ORDER BY seq",
            (registry_order,)).fetchall()
        return [self._delivery(r) for r in rows if r["lease_owner"] == owner]

    def add_order(self, *, key: str, eprom_id: str, national_id: str, form_id: str, ordered_at: datetime,
                  lifetime_ends_at: datetime, state: str, order_reply: dict[str, Any], registry_order: str,
                  registry: str, rule: int, owner: str, on_behalf_of: str | None = None,
                  test_mode: bool = False) -> None:
        """A new ePROM order with the link of the registry that made it, held (one statement). Raises
        DuplicateEpromId, having written nothing, when an order with that ePROM id is stored already."""
        with self._writing(), _new_eprom_id("eprom_orders", eprom_id):
            self._db().execute(
                """INSERT INTO order_writes (key, eprom_id, national_id, form_id, ordered_at, lifetime_ends_at, state,
                                             order_reply, registry_order, registry, rule, owner, on_behalf_of,
                                             test_mode)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (key, eprom_id, national_id, form_id, ts(ordered_at), ts(lifetime_ends_at), state,
                 json.dumps(order_reply), registry_order, registry, rule, owner, on_behalf_of, int(test_mode)))

    @staticmethod
    def links(db: sqlite3.Connection, order_key: str) -> list[Link]:
        rows = db.execute(
            """SELECT r.id, r.registry, h.hold IS NOT NULL AS held
               FROM registry_orders r LEFT JOIN holds h ON h.hold = r.id
               WHERE r.order_key = ? ORDER BY r.created_at, r.rowid""",
            (order_key,),
        ).fetchall()
        return [Link(r["id"], r["registry"], bool(r["held"])) for r in rows]

    def registry_may_see_document(self, registry: str, signed_form_id: str) -> bool:
        """Whether `registry` is linked to an order whose returned form carried this signedFormId."""
        row = self._db().execute(
            """SELECT 1 FROM updates u JOIN registry_orders r ON r.order_key = u.order_key
               WHERE u.signed_form_id = ? AND r.registry = ? LIMIT 1""",
            (signed_form_id.lower(), registry),
        ).fetchone()
        return row is not None

    # --- updates from ePROM -------------------------------------------------------------
    @staticmethod
    def insert_update(db: sqlite3.Connection, *, order_key: str, status: str, final: bool,
                      body: dict[str, Any] | None, received_at: datetime, signed_form_id: str | None = None) -> bool:
        """False when ePROM already sent this status for this order (a resent callback). Without a body, the
        update is known (a resend of it is recognised) but never sent, nor replayed to a registry linking later."""
        cursor = db.execute(
            """INSERT OR IGNORE INTO updates (order_key, status, final, body, received_at, signed_form_id)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (order_key, status, int(final), None if body is None else json.dumps(body), ts(received_at),
             signed_form_id.lower() if signed_form_id else None),
        )
        return cursor.rowcount == 1

    # --- messages to citizens -----------------------------------------------------------
    @staticmethod
    def insert_message(db: sqlite3.Connection, *, key: str, eprom_id: str, registry: str,
                       registry_message_id: str, created_at: datetime) -> None:
        """Raises DuplicateEpromId when a message with that ePROM id is stored already."""
        with _new_eprom_id("messages", eprom_id):
            db.execute(
                """INSERT INTO messages (key, eprom_id, registry, registry_message_id, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (key, eprom_id, registry, registry_message_id, ts(created_at)),
            )

    def message_by_eprom_id(self, eprom_id: str, db: sqlite3.Connection | None = None) -> MessageRow | None:
        row = (db or self._db()).execute(
            """SELECT m.*, h.hold IS NOT NULL AS held FROM messages m
               LEFT JOIN holds h ON h.hold = m.registry_message_id WHERE m.eprom_id = ?""",
            (eprom_id,),
        ).fetchone()
        if row is None:
            return None
        return MessageRow(row["key"], row["eprom_id"], row["registry"], row["registry_message_id"], bool(row["held"]))

    @staticmethod
    def insert_message_update(db: sqlite3.Connection, *, message_key: str, sent_status: str,
                              received_at: datetime) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO message_updates (message_key, sent_status, received_at) VALUES (?, ?, ?)",
            (message_key, sent_status, ts(received_at)),
        )
        return cursor.rowcount == 1

    @staticmethod
    def message_statuses(db: sqlite3.Connection, message_key: str) -> list[str]:
        """The sentStatus values ePROM has sent for a message, first first."""
        return [r["sent_status"] for r in db.execute(
            "SELECT sent_status FROM message_updates WHERE message_key = ? ORDER BY seq", (message_key,))]

    # --- callbacks that overtake the call to ePROM whose id they carry --------------------
    @staticmethod
    def add_early(db: sqlite3.Connection, *, kind: str, eprom_id: str, status: str, body: dict[str, Any],
                  received_at: datetime) -> None:
        db.execute("""INSERT OR IGNORE INTO early_callbacks (kind, eprom_id, status, body, received_at)
                      VALUES (?, ?, ?, ?, ?)""", (kind, eprom_id, status, json.dumps(body), ts(received_at)))

    def has_early(self, kind: str, eprom_id: str) -> bool:
        return self._db().execute("SELECT 1 FROM early_callbacks WHERE kind = ? AND eprom_id = ? LIMIT 1",
                                  (kind, eprom_id)).fetchone() is not None

    @staticmethod
    def take_early(db: sqlite3.Connection, kind: str, eprom_id: str) -> list[dict[str, Any]]:
        """The callbacks that came for this id before it was stored, oldest first; they are removed."""
        rows = db.execute("SELECT seq, body FROM early_callbacks WHERE kind = ? AND eprom_id = ? ORDER BY seq",
                          (kind, eprom_id)).fetchall()
        if rows:
            db.execute("DELETE FROM early_callbacks WHERE kind = ? AND eprom_id = ?", (kind, eprom_id))
        return [json.loads(r["body"]) for r in rows]

    def next_early_end(self, keep) -> datetime | None:
        row = self._db().execute("SELECT received_at FROM early_callbacks ORDER BY received_at LIMIT 1").fetchone()
        return from_ts(row["received_at"]) + keep if row else None

    # --- holds: callbacks wait until their registry has the id they carry -----------------
    @staticmethod
    def add_hold(db: sqlite3.Connection, hold: str, owner: str) -> None:
        db.execute("INSERT OR REPLACE INTO holds (hold, owner) VALUES (?, ?)", (hold, owner))

    def release_hold(self, hold: str) -> bool:
        """Let the deliveries held under `hold` go (one statement: a delivery's hold counts only while its
        row in holds exists); returns whether any that nobody has leased wait in its lane (a hold is its
        lane's registry order id)."""
        with self._writing():
            self._db().execute("DELETE FROM holds WHERE hold = ?", (hold,))
        return self.waiting_in_lane(hold)

    def hold_owners(self) -> list[str]:
        return [r["owner"] for r in self._db().execute("SELECT DISTINCT owner FROM holds")]

    def release_holds_of(self, owner: str) -> int:
        """A process died before it answered: what it held may go (the registry never got those ids, but
        the link exists and is the registry's to find out about, as after any lost answer)."""
        with self._writing():
            return self._db().execute("DELETE FROM holds WHERE owner = ?", (owner,)).rowcount

    # --- the outbox ---------------------------------------------------------------------
    @staticmethod
    def add_delivery(db: sqlite3.Connection, *, registry: str, registry_order: str, order_key: str,
                     path: str, status: str, body: dict[str, Any], due: datetime, hold: str | None,
                     lease_owner: str | None = None, lease_until: float | None = None) -> Delivery:
        """Queue one callback; with a lease it is the writing process's to send from the start (no claim)."""
        id = delivery_id(registry_order, status)
        cursor = db.execute(
            """INSERT INTO deliveries (id, registry, registry_order, order_key, path, status, body,
                                       created_at, next_attempt_at, hold, lease_owner, lease_until)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (id, registry, registry_order, order_key, path, status, json.dumps(body), ts(due), ts(due), hold,
             lease_owner, lease_until),
        )
        return Delivery(cursor.lastrowid, id, registry, registry_order, order_key, path, status, body, "pending",
                        0, due, due, None, lease_until=lease_until)

    def waiting_in_lane(self, registry_order: str) -> bool:
        """Whether a delivery nobody has leased waits in this registry order's lane (behind one just sent)."""
        return self._db().execute(_WAITING_IN_LANE, (registry_order,)).fetchone() is not None

    @staticmethod
    def pending_lanes(db: sqlite3.Connection, order_key: str) -> set[str]:
        """The registry order ids of an order that have a delivery not yet done (pending, or dead and waiting
        for a replay): a new one for them must queue behind it (status before answer)."""
        return {r[0] for r in db.execute(
            "SELECT DISTINCT registry_order FROM deliveries WHERE order_key = ? AND state != 'done'", (order_key,))}

    #: A delivery that may be attempted: pending, not held, not leased (or its lease ran out), and the
    #: oldest one of its registry order not yet done (status before answer). A dead one blocks its lane: what
    #: came after it waits, unattempted, until it is replayed and acknowledged, so a replayed status never
    #: arrives after the answer.
    _READY = """d.state = 'pending' AND (d.lease_owner IS NULL OR d.lease_until < :wall)
                AND (d.hold IS NULL OR NOT EXISTS (SELECT 1 FROM holds h WHERE h.hold = d.hold))
                AND NOT EXISTS (SELECT 1 FROM deliveries e
                                WHERE e.registry_order = d.registry_order AND e.state != 'done'
                                  AND e.seq < d.seq)"""

    def pending_registries(self) -> list[str]:
        """The registries with any pending delivery: a skip-scan over the index, one seek per registry,
        however long the queue (the hot path asks this after every order and callback)."""
        return [r[0] for r in self._db().execute(
            """WITH RECURSIVE r(registry) AS (
                   SELECT min(registry) FROM deliveries WHERE state = 'pending'
                   UNION ALL
                   SELECT (SELECT min(registry) FROM deliveries WHERE state = 'pending' AND registry > r.registry)
                   FROM r WHERE r.registry IS NOT NULL)
               SELECT registry FROM r WHERE registry IS NOT NULL""")]

    def next_ready(self, registry: str, wall: float) -> datetime | None:
        """When the earliest delivery to `registry` that nobody is sending falls due."""
        row = self._db().execute(
            f"""SELECT d.next_attempt_at FROM deliveries d WHERE d.registry = :registry AND {self._READY}
                ORDER BY d.next_attempt_at, d.seq LIMIT 1""",
            {"registry": registry, "wall": wall},
        ).fetchone()
        return from_ts(row["next_attempt_at"]) if row else None

    def claim(self, registry: str, now: datetime, owner: str, wall: float, lease_seconds: float) -> Delivery | None:
        """Lease the next delivery to `registry` that is due at `now`, atomically: among all processes
        sharing the database exactly one gets it."""
        args = {"owner": owner, "until": wall + lease_seconds, "registry": registry, "now": ts(now), "wall": wall}
        pick = f"""SELECT d.seq FROM deliveries d
                   WHERE d.registry = :registry AND d.next_attempt_at <= :now AND {self._READY}
                   ORDER BY d.next_attempt_at, d.seq LIMIT 1"""
        db = self._db()
        if db.execute(pick, args).fetchone() is None:  # a read first: no write when nothing is due
            return None
        with self._writing():
            rows = db.execute(f"UPDATE deliveries SET lease_owner = :owner, lease_until = :until "
                              f"WHERE seq = ({pick}) RETURNING *", args).fetchall()  # all: ends the statement
        return self._delivery(rows[0]) if rows else None

    def lease_owners(self) -> list[str]:
        return [r["lease_owner"] for r in self._db().execute(
            "SELECT DISTINCT lease_owner FROM deliveries WHERE lease_owner IS NOT NULL")]

    def drop_leases_of(self, owner: str) -> int:
        """Its process is gone: what it was sending goes back to the queue (same id, same due time)."""
        with self.transaction() as db:
            return db.execute("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
                              (owner,)).rowcount

    def mark_delivered(self, delivery_id: str, at: datetime) -> bool:
        """Record an acknowledged delivery; returns whether an update nobody has leased waits behind it in
        its lane (what waiting_in_lane answers, asked in the same statement)."""
        with self._writing():  # one statement: SQLite makes it its own transaction
            rows = self._db().execute(
                f"""UPDATE deliveries SET state = 'done', body = NULL, attempts = attempts + 1,
                           last_attempt_at = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL
                    WHERE id = ? AND state = 'pending' RETURNING EXISTS ({_WAITING_BEHIND})""",
                (ts(at), delivery_id),
            ).fetchall()
        return bool(rows and rows[0][0])

    def mark_failed(self, delivery_id: str, at: datetime, error: str, retry_at: datetime | None) -> None:
        """Schedule the next attempt, or park the delivery as dead when retry_at is None."""
        with self._writing():
            self._db().execute(
                """UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                          window_start = coalesce(window_start, ?), window_failures = window_failures + 1,
                          state = CASE WHEN ? IS NULL THEN 'dead' ELSE 'pending' END,
                          next_attempt_at = coalesce(?, next_attempt_at),
                          lease_owner = NULL, lease_until = NULL
                   WHERE id = ? AND state = 'pending'""",
                (ts(at), error[:500], ts(at), retry_at and ts(retry_at), retry_at and ts(retry_at), delivery_id),
            )

    def give_back(self, delivery_ids: tuple[str, ...], owner: str) -> int:
        """Deliveries this process leased and will not send after all go back to the queue."""
        if not delivery_ids:
            return 0
        with self._writing():
            return self._db().execute(
                f"""UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
                    WHERE id IN ({','.join('?' * len(delivery_ids))}) AND state = 'pending' AND lease_owner = ?""",
                (*delivery_ids, owner)).rowcount

    def renew_lease(self, delivery_id: str, owner: str, held_until: float, until: float) -> bool:
        """Extend this process's lease on a pending delivery, only if it is still exactly the lease this
        process took (`held_until`): a lease that ran out may have been claimed anew, by another process or
        by this one's own pump, and then this copy must not be sent. False in that case."""
        with self._writing():
            return self._db().execute(
                """UPDATE deliveries SET lease_until = ?
                   WHERE id = ? AND lease_owner = ? AND lease_until = ? AND state = 'pending'""",
                (until, delivery_id, owner, held_until)).rowcount == 1

    def park_unconfigured(self, registries: list[str], at: datetime) -> list[tuple[str, str]]:
        """Deliveries to registries no longer in the configuration can never go: park them as dead; returns
        (delivery id, registry) of each parked."""
        marks = ",".join("?" * len(registries)) or "''"
        with self.transaction() as db:
            return [(r["id"], r["registry"]) for r in db.execute(
                f"""UPDATE deliveries SET state = 'dead', last_error = 'registry no longer configured',
                           last_attempt_at = ?, lease_owner = NULL, lease_until = NULL
                    WHERE state = 'pending' AND registry NOT IN ({marks}) RETURNING id, registry""",
                (ts(at), *registries)).fetchall()]

    def latest_generation(self, db: sqlite3.Connection | None = None) -> int:
        """The generation of the proxy process started last on this database (see next_generation; 0: none)."""
        row = (db or self._db()).execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row["value"]) if row else 0

    def revive(self, delivery_ids: list[str] | None) -> int:
        """Put dead deliveries (all, or the given ones) back in the queue, due at once on any clock, with a
        fresh retry window that starts at their next attempt; returns how many."""
        sql = """UPDATE deliveries SET state = 'pending', next_attempt_at = created_at, window_start = NULL,
                        window_failures = 0, lease_owner = NULL, lease_until = NULL
                 WHERE state = 'dead' AND body IS NOT NULL"""
        with self.transaction() as db:
            if delivery_ids is None:
                return db.execute(sql).rowcount
            total = 0
            for start in range(0, len(delivery_ids), 500):
                chunk = delivery_ids[start:start + 500]
                total += db.execute(f"{sql} AND id IN ({','.join('?' * len(chunk))})", chunk).rowcount
            return total

    def waiting_behind(self) -> dict[str, tuple[str, str]]:
        """Pending deliveries held back by an earlier one of their registry order that is not done (status
        before answer): their id -> (that one's id, "dead", "failing" or "pending"). A dead one must be
        replayed first; a failing one holds them until its retry gets through."""
        rows = self._db().execute(
            """SELECT d.id, b.id AS behind, b.state, b.attempts FROM deliveries d
               JOIN deliveries b ON b.id = (SELECT e.id FROM deliveries e INDEXED BY deliveries_lane_open
                                            WHERE e.registry_order = d.registry_order AND e.state != 'done'
                                              AND e.seq < d.seq ORDER BY e.seq LIMIT 1)
               WHERE d.state = 'pending'""").fetchall()
        return {r["id"]: (r["behind"], "dead" if r["state"] == "dead" else "failing" if r["attempts"] else "pending")
                for r in rows}

    def deliveries(self, state: str | None = None, registry: str | None = None,
                   ids: list[str] | None = None) -> list[Delivery]:
        """The outbox, oldest first; state is pending, failed (pending after a failed attempt), done or dead."""
        sql, args = "SELECT * FROM deliveries d WHERE 1 = 1", []
        if state == "failed":
            sql += " AND d.state = 'pending' AND d.attempts > 0"
        elif state:
            sql += " AND d.state = ?"
            args.append(state)
        if registry:
            sql += " AND d.registry = ?"
            args.append(registry)
        if ids:
            sql += f" AND d.id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        return [self._delivery(r) for r in self._db().execute(sql + " ORDER BY d.seq", args).fetchall()]

    @staticmethod
    def _delivery(r: sqlite3.Row) -> Delivery:
        return Delivery(r["seq"], r["id"], r["registry"], r["registry_order"], r["order_key"], r["path"],
                        r["status"], json.loads(r["body"]) if r["body"] else None, r["state"], r["attempts"],
                        from_ts(r["created_at"]), from_ts(r["next_attempt_at"]), r["last_error"],
                        from_ts(r["last_attempt_at"]) if r["last_attempt_at"] else None,
                        from_ts(r["window_start"]) if r["window_start"] else None, r["window_failures"],
                        r["lease_until"])

    # --- lifetime ends --------------------------------------------------------------------
    def next_lifetime_end(self) -> datetime | None:
        row = self._db().execute(
            "SELECT lifetime_ends_at FROM eprom_orders WHERE purged = 0 ORDER BY lifetime_ends_at LIMIT 1"
        ).fetchone()
        return from_ts(row["lifetime_ends_at"]) if row else None

    def next_message_end(self, lifetime) -> datetime | None:
        row = self._db().execute("SELECT created_at FROM messages ORDER BY created_at LIMIT 1").fetchone()
        return from_ts(row["created_at"]) + lifetime if row else None

    def purge_early(self, before: datetime) -> int:
        """Callbacks that came early for an id that was never stored (its order failed after ePROM made it)."""
        with self.transaction() as db:
            return db.execute("DELETE FROM early_callbacks WHERE received_at <= ?", (ts(before),)).rowcount

    def purge_ended(self, now: datetime, lifetime=None, mask=None, batch: int = 500,
                    undelivered: Callable[[str, int], None] = lambda order_key, count: None) -> int:
        """Delete what the proxy stored about orders whose lifetime has ended: the answers, every outbox row
        (delivered, dead or still pending: the lifetime bounds what is kept, delivered or not), the signed
        document's id and the full national id; and messages to citizens older than the lifetime. At most
        `batch` of each per call (short write transactions); returns how many orders and messages ended, and
        tells `undelivered` of each order whose deleted rows held callbacks not delivered."""
        with self.transaction() as db:
            rows = db.execute(
                """SELECT key, national_id, on_behalf_of FROM eprom_orders WHERE purged = 0 AND lifetime_ends_at <= ?
                   ORDER BY lifetime_ends_at LIMIT ?""", (ts(now), batch)).fetchall()
            for row in rows:
                key = row["key"]
                db.execute("UPDATE updates SET body = NULL, signed_form_id = NULL WHERE order_key = ?", (key,))
                states = db.execute("DELETE FROM deliveries WHERE order_key = ? RETURNING state", (key,)).fetchall()
                if lost := sum(r["state"] != "done" for r in states):
                    undelivered(key, lost)
                masked = [mask(v) if mask and v is not None else v for v in (row["national_id"], row["on_behalf_of"])]
                db.execute("""UPDATE eprom_orders SET purged = 1, national_id = ?, on_behalf_of = ?,
                                     order_reply = json_replace(order_reply, '$.singleUseCode', NULL) WHERE key = ?""",
                           (*masked, key))  # the single-use code opens the patient's form: gone too
            old = []
            if lifetime is not None:
                old = db.execute("SELECT key FROM messages WHERE created_at <= ? ORDER BY created_at LIMIT ?",
                                 (ts(now - lifetime), batch)).fetchall()
                for message in old:
                    db.execute("DELETE FROM deliveries WHERE order_key = ?", (MESSAGE_PREFIX + message["key"],))
                    db.execute("DELETE FROM message_updates WHERE message_key = ?", (message["key"],))
                    db.execute("DELETE FROM messages WHERE key = ?", (message["key"],))
        if rows or old:
            self.checkpoint()
        return len(rows) + len(old)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database and empty it, so deleted answers do not linger in
        old WAL frames (secure_delete already zeroes them in the database file). Best effort: readers in
        other threads or processes may make SQLite skip it until the next purge."""
        db = self._db()
        db.execute("PRAGMA busy_timeout = 200")  # never stall the caller behind long readers
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:
            pass
        finally:
            db.execute("PRAGMA busy_timeout = 60000")
