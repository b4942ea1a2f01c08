"""A closed-loop HTTP/1.1 load generator that is cheap on CPU: one thread, one selector, N keep-alive
sockets, requests built as bytes beforehand and responses parsed only as far as status and
Content-Length. Each connection sends its next request as soon as its previous response is complete.

It runs in the benchmark's own process; every server under test runs in a process of its own."""
from __future__ import annotations

import json
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from .common import HOST, self_cpu


@dataclass
class LoadResult:
    latencies: list[float]  # seconds, one per completed request, in completion order
    elapsed: float  # first send to last response
    statuses: Counter
    errors: list[str]
    client_cpu: float  # CPU seconds this process spent while the run lasted
    bodies: list[bytes | None] = field(default_factory=list)  # by request index, when kept

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else float("nan")

    def json_bodies(self) -> list[object]:
        return [json.loads(b) if b else None for b in self.bodies]


class _Conn:
    __slots__ = ("sock", "index", "sent_at", "buf", "out")

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.index = -1
        self.sent_at = 0.0
        self.buf = bytearray()
        self.out = b""


def _parse(buf: bytearray) -> tuple[int, bytes, bool] | None:
    """(status, body, close) once a whole response is in buf, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length, close = 0, False
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
        elif name == "transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this load generator")
    if len(buf) < end + 4 + length:
        return None
    body = bytes(buf[end + 4:end + 4 + length])
    del buf[:end + 4 + length]
    return status, body, close


def closed_loop(port: int, requests: list[bytes], concurrency: int, *, keep_bodies: bool = False,
                expect: bytes | None = b'"id"', deadline_s: float = 300.0) -> LoadResult:
    """Send every request once over `concurrency` connections; stop by itself after deadline_s at the latest.
    A 200 whose body lacks `expect` counts as an error (a wrong server on the port, say)."""
    sel = selectors.DefaultSelector()
    conns = [_Conn(port) for _ in range(min(concurrency, len(requests)))]
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []
    bodies: list[bytes | None] = [None] * len(requests) if keep_bodies else []
    next_index = 0
    in_flight = 0
    cpu0 = self_cpu()
    start = time.perf_counter()
    stop_at = start + deadline_s

    def send_next(conn: _Conn) -> bool:
        nonlocal next_index, in_flight
        if next_index >= len(requests):
            return False
        conn.index = next_index
        next_index += 1
        conn.out = requests[conn.index]
        conn.sent_at = time.perf_counter()
        sent = conn.sock.send(conn.out)
        conn.out = conn.out[sent:]
        sel.modify(conn.sock, selectors.EVENT_WRITE if conn.out else selectors.EVENT_READ, conn)
        in_flight += 1
        return True

    for conn in conns:
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    for conn in conns:
        send_next(conn)
    last_done = start
    try:
        while in_flight and time.perf_counter() < stop_at:
            for key, mask in sel.select(timeout=1.0):
                conn: _Conn = key.data
                if mask & selectors.EVENT_WRITE and conn.out:
                    sent = conn.sock.send(conn.out)
                    conn.out = conn.out[sent:]
                    if not conn.out:
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                chunk = conn.sock.recv(65536)
                if not chunk:
                    errors.append(f"request {conn.index}: connection closed before the response")
                    in_flight -= 1
                    sel.unregister(conn.sock)
                    conn.sock.close()
                    replacement = _Conn(port)
                    sel.register(replacement.sock, selectors.EVENT_READ, replacement)
                    send_next(replacement)
                    continue
                conn.buf += chunk
                parsed = _parse(conn.buf)
                if parsed is None:
                    continue
                status, body, close = parsed
                done = time.perf_counter()
                last_done = done
                latencies.append(done - conn.sent_at)
                statuses[status] += 1
                if keep_bodies:
                    bodies[conn.index] = body
                if status != 200 and len(errors) < 20:
                    errors.append(f"request {conn.index}: HTTP {status} {body[:200]!r}")
                elif expect is not None and expect not in body:
                    statuses["200 without " + expect.decode()] += 1
                    if len(errors) < 20:
                        errors.append(f"request {conn.index}: HTTP {status} without {expect!r}: {body[:200]!r}")
                in_flight -= 1
                if close:
                    sel.unregister(conn.sock)
                    conn.sock.close()
                    conn = _Conn(port)
                    sel.register(conn.sock, selectors.EVENT_READ, conn)
                send_next(conn)
        if in_flight:
            errors.append(f"gave up after {deadline_s} s with {in_flight} request(s) in flight")
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return LoadResult(latencies, last_done - start, statuses, errors, self_cpu() - cpu0, bodies)
