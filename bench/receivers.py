"""Registry receivers for the benchmarks: one asyncio process listening on one loopback port per registry,
answering every callback `{"success": true}` at once (keep-alive), and recording when it acknowledged
what (time.monotonic(), which is system-wide on Linux and so comparable with the benchmark's own).

`python -m bench.receivers CONTROL_PORT PORT,PORT,...`. The control port answers:
  GET  /                      ready check
  GET  /counts                {"total", "unique", "byStatus", "duplicates"}
  POST /wait   {"ids": [...], "status": "Completed", "timeout": 5}
               waits until every registry order id in ids has acknowledged a callback with that status;
               answers {"done", "events": {id: {"registry", "t", "deliveryId"}}}
  POST /wait_total {"count": N, "timeout": 30}   waits until N distinct callbacks (by X-Delivery-Id, else by
               registry, status and order id) have been acknowledged; answers {"done", "unique"}
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

ACK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"success": true}'
MAX_SECONDS = 3600


class Recorder:
    def __init__(self) -> None:
        self.total = 0
        self.unique: set = set()
        self.by_status: Counter = Counter()
        self.first: dict[tuple[str, str], dict] = {}  # (status, formOrderId) -> first acknowledgement
        self.seen_delivery_ids: set[str] = set()
        self.duplicates = 0
        self.changed = asyncio.Condition()

    async def record(self, registry: int, body: bytes, delivery_id: str | None, t: float) -> None:
        try:
            data = json.loads(body)
            status, order_id = str(data.get("formOrderStatus")), str(data.get("formOrderId"))
        except (ValueError, AttributeError):
            status, order_id = "?", "?"
        self.total += 1
        self.by_status[status] += 1
        if delivery_id:
            if delivery_id in self.seen_delivery_ids:
                self.duplicates += 1
            self.seen_delivery_ids.add(delivery_id)
        self.unique.add(delivery_id or (registry, status, order_id))
        self.first.setdefault((status, order_id), {"registry": registry, "t": t, "deliveryId": delivery_id})
        async with self.changed:
            self.changed.notify_all()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    return method, path, headers, body


def keep_alive(answer):
    """An asyncio connection handler serving HTTP/1.1 requests one after another on one connection:
    `await answer(writer, method, path, headers, body)` writes each reply and returns True to close."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (req := await read_request(reader)) is not None:
                if await answer(writer, *req):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
    return handle


def registry_handler(index: int, rec: Recorder):
    async def answer(writer, method, path, headers, body) -> bool:
        writer.write(ACK)
        await rec.record(index, body, headers.get("x-delivery-id"), time.monotonic())
        return headers.get("connection", "").lower() == "close"
    return keep_alive(answer)


def control_handler(rec: Recorder):
    def reply(writer, obj) -> None:
        payload = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
                     + payload)

    async def wait_for(predicate, timeout: float) -> bool:
        try:
            async with rec.changed:
                await asyncio.wait_for(rec.changed.wait_for(predicate), timeout)
            return True
        except asyncio.TimeoutError:
            return predicate()

    async def answer(writer, method, path, headers, body) -> bool:
        args = json.loads(body) if body else {}
        if path == "/counts":
            reply(writer, {"total": rec.total, "unique": len(rec.unique), "byStatus": dict(rec.by_status),
                           "duplicates": rec.duplicates})
        elif path == "/wait":
            ids, status = args["ids"], args["status"]
            done = await wait_for(lambda: all((status, i) in rec.first for i in ids), float(args.get("timeout", 5)))
            reply(writer, {"done": done, "events": {i: rec.first[(status, i)] for i in ids
                                                    if (status, i) in rec.first}})
        elif path == "/wait_total":
            count = int(args["count"])
            done = await wait_for(lambda: len(rec.unique) >= count, float(args.get("timeout", 30)))
            reply(writer, {"done": done, "unique": len(rec.unique)})
        else:
            reply(writer, {"ok": True})
        return False
    return keep_alive(answer)


async def main_async(control_port: int, ports: list[int]) -> None:
    rec = Recorder()
    servers = [await asyncio.start_server(registry_handler(i, rec), "127.0.0.1", port) for i, port in enumerate(ports)]
    servers.append(await asyncio.start_server(control_handler(rec), "127.0.0.1", control_port))
    parent = os.getppid()
    for _ in range(MAX_SECONDS):  # bounded: stops with its benchmark, or after an hour
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            break
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main_async(int(sys.argv[1]), [int(p) for p in sys.argv[2].split(",")]))
