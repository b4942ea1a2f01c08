"""What every benchmark shares: free loopback ports, child processes we start and stop ourselves, CPU time
read from /proc, valid synthetic national ids and order bodies, and small statistics."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from eprom_protocol.national_id import SYNTHETIC_TEST_OFFSET, check_digits

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
RAND12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"  # a published form in the default catalog
EPROX_KEY = "bench-eprox-key"  # the proxy's key at (fake) ePROM
EXPIRY = "2031-01-01T00:00:00Z"  # in the future for both the real and the simulated clock
CLK_TCK = os.sysconf("SC_CLK_TCK")


_ports = random.Random()
_handed_out: set[int] = set()  # never the same port twice in one run


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, so that no outgoing connection takes it
    between now and the moment its server binds it."""
    low, high = 20000, 32000
    try:
        low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        high = min(high, low_ephemeral)
        low = min(low, high - 2000)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = _ports.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def registry_name(i: int) -> str:
    return f"reg-{i:02d}"


def registry_key(i: int) -> str:
    return f"bench-key-{i:02d}"


# --- national ids -------------------------------------------------------------------------

def national_ids(count: int, start: int = 0) -> list[str]:
    """`count` distinct valid synthetic fødselsnummer (month + 65), the same for the same start.

    Slot n is the birth date 1950-01-01 + n // 500 days with individual number n % 500; about one slot in
    six has no valid check digits and is skipped. Calls whose [start, start + 1.25 * count) ranges do not
    overlap never share an id."""
    out: list[str] = []
    day0 = date(1950, 1, 1)
    for n in range(start, start + 10 * count + 100):
        d = day0 + timedelta(days=n // 500)
        nine = f"{d.day:02d}{d.month + SYNTHETIC_TEST_OFFSET:02d}{d.year % 100:02d}{n % 500:03d}"
        digits = check_digits(nine)
        if digits is not None:
            out.append(nine + digits)
            if len(out) == count:
                return out
    raise ValueError("ran out of ids")


def order_body(national_id: str, form_id: str = RAND12, metadata: str | None = None) -> dict:
    return {"formId": form_id, "nationalId": national_id, "expiryDate": EXPIRY,
            "distributionRule": "Basic", "metadata": metadata}


def http_request(method: str, path: str, body: object, *, host: str = HOST, port: int,
                 api_key: str | None = None) -> bytes:
    """The raw bytes of one keep-alive HTTP/1.1 request with a JSON body."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(payload)}"]
    if api_key is not None:
        head.append(f"Authorization: Basic {api_key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def call_json(method: str, url: str, body: object | None = None, *, api_key: str | None = None,
              timeout: float = 30.0) -> tuple[int, object]:
    """One request with urllib (setup and checks, never inside a measured loop)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if api_key is not None:
        req.add_header("Authorization", f"Basic {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            raw = reply.read()
            status = reply.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# --- child processes ----------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from "state" (field 3) on


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_pids(pid: int) -> list[int]:
    children, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (10 ms resolution)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (every core, from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def self_cpu() -> float:
    """CPU seconds of this whole process (every thread), with nanosecond resolution."""
    return time.process_time()


@dataclass
class Child:
    """A server process this benchmark started, in its own session so it and its workers stop together."""

    name: str
    proc: subprocess.Popen
    port: int
    log: Path
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def refresh_pids(self) -> list[int]:
        self.pids = tree_pids(self.proc.pid)
        return self.pids

    def cpu(self) -> float:
        return cpu_seconds(self.pids or self.refresh_pids())

    def open_files(self) -> int:
        """File descriptors open in the process tree now."""
        total = 0
        for pid in self.refresh_pids():
            try:
                total += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
        return total

    def pin(self, cpus: set[int]) -> None:
        for pid in self.refresh_pids():
            try:
                os.sched_setaffinity(pid, cpus)
                for tid in os.listdir(f"/proc/{pid}/task"):
                    os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own child's group, nobody else's
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_child(name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str] | None = None,
                ready_path: str = "/", timeout: float = 180.0) -> Child:
    log = workdir / f"{name}.log"
    n = 1
    while log.exists():  # one log per process started
        n += 1
        log = workdir / f"{name}.{n}.log"
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    child = Child(name, proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{child.url}{ready_path}", timeout=2) as reply:
                reply.read()
            break
        except urllib.error.HTTPError as err:
            if err.code != 503:
                break  # it answers: serving
        except OSError:
            pass
        time.sleep(0.05)
    else:
        child.stop()
        raise RuntimeError(f"{name} did not serve within {timeout} s:\n{log.read_text()[-3000:]}")
    time.sleep(0.2)  # let a gunicorn worker finish booting before we read its pids
    if proc.poll() is not None:  # something else answered on its port
        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    child.refresh_pids()
    return child


# --- statistics ---------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]
