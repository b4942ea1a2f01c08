"""Time for one answer to reach 20 linked registries.

Per repetition: registry reg-00 orders for a fresh patient (a new ePROM order), reg-01..reg-19 order the
same form for the same patient (each links), and we wait until all 20 have acknowledged the Ordered status.
Then the benchmark, acting as ePROM, PUTs one Completed callback (bench/loader.py's returned_body: the guide's
returned-form body with the proxy's key and ePROM's order id) to the proxy and measures, with the system-wide monotonic clock,
until each of the 20 receivers has written its `{"success": true}` for it."""
from __future__ import annotations

import http.client
import json
import random
import shutil
import time
from dataclasses import dataclass
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from .common import HOST, RAND12, call_json, national_ids, order_body, registry_key
from .loader import returned_body
from .world import World


@dataclass
class FanoutRun:
    intake_ms: float  # PUT callback -> the proxy's 200 {"success": true}
    first_ms: float  # -> the first registry acknowledged
    all_ms: float  # -> the last of the registries acknowledged
    acked: int


def _eprom_id(world: World, patient: str, database: Path | None) -> str:
    """ePROM's id for the patient's one order: from the fake ePROM's control API, else the proxy's database."""
    status, orders = call_json("GET", f"{world.eprom.url}/_sim/orders?nationalId={patient}&formId={RAND12}")
    if status == 200 and isinstance(orders, list) and len(orders) == 1 and "id" in orders[0]:
        return orders[0]["id"]
    if database is not None:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT eprom_id FROM eprom_orders WHERE national_id = ?", (patient,)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
    raise RuntimeError(f"expected one ePROM order for the patient, got {orders!r:.300}")


def one(world: World, proxy_url: str, proxy_port: int, patient: str, registries: int,
        database: Path | None = None) -> FanoutRun:
    ids = []
    for i in range(registries):
        status, reply = call_json("POST", f"{proxy_url}/api/v2/formorder", order_body(patient), api_key=registry_key(i))
        if status != 200:
            raise RuntimeError(f"order from registry {i} failed: HTTP {status} {reply}")
        ids.append(reply["id"])
    if not world.wait_acks(ids, "Ordered", timeout=30)["done"]:
        raise RuntimeError("the Ordered status did not reach every linked registry within 30 s")
    payload = returned_body(_eprom_id(world, patient, database), "Completed", datetime.now(timezone.utc),
                            random.Random(patient)).encode()
    conn = http.client.HTTPConnection(HOST, proxy_port, timeout=30)
    conn.connect()
    t0 = time.monotonic()
    conn.request("PUT", "/api/PromsFormOrder", body=payload, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    answer = reply.read()
    t_intake = time.monotonic()
    conn.close()
    if reply.status != 200 or json.loads(answer).get("success") is not True:
        raise RuntimeError(f"the proxy refused the Completed callback: HTTP {reply.status} {answer[:200]!r}")
    acks = world.wait_acks(ids, "Completed", timeout=30)
    times = [e["t"] for e in acks["events"].values()]
    if not times:
        raise RuntimeError("no registry acknowledged the Completed callback within 30 s")
    return FanoutRun((t_intake - t0) * 1000, (min(times) - t0) * 1000, (max(times) - t0) * 1000, len(times))


def run(world: World, servers: list[str], repetitions: int, warmup: int = 2, registries: int = 20,
        log=print) -> dict[str, list[FanoutRun]]:
    results: dict[str, list[FanoutRun]] = {}
    for server in servers:
        state_dir = world.workdir / f"fanout-{server.replace(':', '-')}"
        state_dir.mkdir()
        proxy = world.start_proxy(server, state_dir)
        try:
            patients = national_ids(warmup + repetitions, start=2_000_000 + 10_000 * len(results))
            runs = [one(world, proxy.url, proxy.port, p, registries, state_dir / "eprox.sqlite3") for p in patients]
            results[server] = runs[warmup:]
            incomplete = [r for r in results[server] if r.acked < registries]
            log(f"  {server:12} fan-out to {registries}: {len(results[server])} runs"
                + (f", {len(incomplete)} incomplete" if incomplete else ""))
        finally:
            world.stop(proxy)
            shutil.rmtree(state_dir, ignore_errors=True)
    return results
