"""Bulk-load a proxy database with N stored orders, straight through proxy/store.py's SCHEMA with
executemany (no HTTP), so a store of 10^6 orders takes about a minute.

What one stored order brings (a year of traffic as the proxy would have kept it):
- one eprom_orders row, ordered at a random time in the last 360 days (so still inside the lifetime),
  state Ordered (62 %), Completed (28 %), Expired (8 %) or Error (2 %), over the catalog's forms;
- one registry_orders link, and a second from another registry for 30 % of the orders;
- one `updates` row for its status callback (Ordered) and one more for the answer or expiry;
- one delivered (`done`, body cleared) `deliveries` row per update and linked registry.

The first `targets` orders are for known, valid patients (the benchmark's link targets): ordered a day
ago by registry reg-00, Ordered, nothing else linked, so registry reg-01 links to them (rule 3)."""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from proxy import store as proxy_store
from proxy.store import ts

from .common import EPROX_KEY, RAND12, registry_name

FORMS = ["1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "1279fd55-3f22-4a7a-b4c5-84b582f88c54",
         "4de7d33a-334f-41de-b2ed-9451bd942280"]
ORDER_REPLY = json.dumps({"notificationChannel": 1, "loginUrl": "https://proms2.hemit.org/Proms",
                          "singleUseCode": None})
LIFETIME = timedelta(days=365)
CHUNK = 20_000

# what each table's rows fill in; every NOT NULL column without a default must be among them
COLUMNS = {
    "eprom_orders": ("key", "eprom_id", "national_id", "form_id", "ordered_at", "lifetime_ends_at", "state",
                     "order_reply"),
    "registry_orders": ("id", "registry", "order_key", "created_at", "rule"),
    "updates": ("order_key", "status", "final", "body", "received_at"),
    "deliveries": ("id", "registry", "registry_order", "order_key", "path", "status", "body", "state", "attempts",
                   "created_at", "next_attempt_at", "last_attempt_at"),
}


def status_body(eprom_id: str, at: datetime) -> str:
    return json.dumps({"apiKey": EPROX_KEY, "formOrderId": eprom_id, "notificationChannel": 1,
                       "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S"), "timestampUtc": ts(at),
                       "formOrderStatus": "Ordered", "formOrderStatusErrorCode": "None"})


def returned_body(eprom_id: str, status: str, at: datetime, rng: random.Random) -> str:
    form_data = None
    if status == "Completed":
        form_data = json.dumps({"q1": rng.randint(1, 5), "q2": rng.randint(1, 5), "q3": "ok", "score": rng.random()})
    return json.dumps({"apiKey": EPROX_KEY, "formOrderId": eprom_id, "formData": form_data, "formOrderStatus": status,
                       "signedFormId": "00000000-0000-0000-0000-000000000000", "timestamp": ts(at),
                       "timestampUtc": ts(at), "scannedPaperId": None, "formDataWarnings": [],
                       "notificationChannel": 1, "isPatientInitiated": False, "patientInitiatedValues": None,
                       "formOrderEventLog": [{"eventType": "FormDelivered", "questionId": None,
                                              "timestampUtc": ts(at)}] if form_data else [],
                       "filledOutBy": None})


def create_schema(db_path: Path) -> None:
    """The schema exactly as the proxy makes it: by opening a ProxyStore on the new file (tables, migrations,
    indexes and pragmas, whatever proxy/store.py does today), then closing it."""
    try:
        store = proxy_store.ProxyStore(db_path)
    except TypeError:  # a constructor that wants more than the path: fall back to the schema text
        db = sqlite3.connect(str(db_path), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(proxy_store.SCHEMA)
        if hasattr(proxy_store, "INDEXES"):
            db.executescript(proxy_store.INDEXES)
        db.close()
        return
    store.close()


def check_schema(db: sqlite3.Connection) -> None:
    """Fail clearly if proxy/store.py's schema now needs a column this loader does not fill."""
    for table, filled in COLUMNS.items():
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        if not info:
            raise RuntimeError(f"proxy/store.py's schema has no table {table}: update bench/loader.py")
        names = {row[1] for row in info}
        missing = [row[1] for row in info if row[3] and row[4] is None and not row[5] and row[1] not in filled]
        unknown = [c for c in filled if c not in names]
        if missing or unknown:
            raise RuntimeError(f"bench/loader.py is out of date with proxy/store.py's table {table}: "
                               f"required columns not filled {missing}, columns gone {unknown}")


def load(db_path: Path, orders: int, targets: list[str], *, seed: int = 1, registries: int = 20,
         now: datetime | None = None, progress=None) -> dict:
    """Write `orders` stored orders (the first len(targets) of them link targets) into a new database."""
    if len(targets) > orders:
        raise ValueError("more link targets than orders")
    now = now or datetime.now(timezone.utc)
    rng = random.Random(seed)
    started = time.monotonic()
    create_schema(db_path)
    db = sqlite3.connect(str(db_path), isolation_level=None)
    check_schema(db)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")  # 1 GB of page cache for the load only
    sql = {t: f"INSERT INTO {t} ({', '.join(c)}) VALUES ({', '.join('?' * len(c))})" for t, c in COLUMNS.items()}
    rows: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
    counts = {t: 0 for t in COLUMNS}

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def flush() -> None:
        db.execute("BEGIN")
        for table, batch in rows.items():
            db.executemany(sql[table], batch)
            counts[table] += len(batch)
            batch.clear()
        db.execute("COMMIT")

    for i in range(orders):
        key, eprom_id = uid(), uid()
        if i < len(targets):
            patient, form, state = targets[i], RAND12, "Ordered"
            ordered = now - timedelta(days=1, seconds=i)
            registries_linked = [0]
        else:
            patient = f"9{(i * 7919) % 10**10:010d}"  # distinct, spread over the index, never a bench patient
            form = FORMS[i % len(FORMS)]
            roll = rng.random()
            state = "Ordered" if roll < 0.62 else "Completed" if roll < 0.90 else "Expired" if roll < 0.98 else "Error"
            ordered = now - timedelta(days=1 + rng.random() * 359)
            first = rng.randrange(registries)
            registries_linked = [first] + ([(first + 1 + rng.randrange(registries - 1)) % registries]
                                           if rng.random() < 0.30 else [])
        ordered_ts = ts(ordered)
        rows["eprom_orders"].append((key, eprom_id, patient, form, ordered_ts, ts(ordered + LIFETIME), state,
                                     ORDER_REPLY))
        links = []
        for n, reg in enumerate(registries_linked):
            link_id = uid()
            links.append((link_id, registry_name(reg)))
            rows["registry_orders"].append((link_id, registry_name(reg), key, ordered_ts, 2 if n == 0 else 3))
        updates = [("Ordered", 0, status_body(eprom_id, ordered))]
        if state in ("Completed", "Expired"):
            at = ordered + timedelta(days=rng.random() * 30)
            updates.append((state, 1, returned_body(eprom_id, state, at, rng)))
        for status, final, body in updates:
            rows["updates"].append((key, status, final, body, ordered_ts))
            for link_id, reg in links:
                rows["deliveries"].append((uid(), reg, link_id, key, "/api/PromsFormOrder", status, None, "done", 1,
                                           ordered_ts, ordered_ts, ordered_ts))
        if len(rows["eprom_orders"]) >= CHUNK:
            flush()
            if progress:
                progress(i + 1, orders)
    flush()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.sync()  # the database at rest on disk: no write-back of the load left to compete with the measurement
    size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
    return {"orders": orders, "rows": counts, "bytes": size, "seconds": time.monotonic() - started}
