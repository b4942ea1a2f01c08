"""Live worlds for the proxy's tests: a fake ePROM, the proxy (in this process, or a real process of its
own) and recording registries, each a real HTTP server on a loopback port.

A `Recorder` is a registry's callback endpoint that a test can script: answer ok, fail with a status,
answer success false, or block every callback until the test opens its gate. It records what arrived
with the X-Delivery-Id and lets a test wait for a condition on what arrived (a condition variable, no
sleeping)."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import requests
import yaml
from werkzeug.wrappers import Request, Response

from harness.pytest_plugin import wait_for_ready_file
from service_kit.clock import SimClock
from service_kit.runtime import Runtime
from service_kit.server import LiveServer
from service_kit.timeline import Timeline

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
EPROX_KEY = "eprox-key-at-eprom"
REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds a test waits for something that should happen at once


def key_of(name: str) -> str:
    return f"{name}-secret-key"


@dataclass
class Call:
    delivery_id: str | None
    path: str
    body: Any
    answered: int  # the HTTP status it was answered with (0: still waiting at its gate)
    acknowledged: bool
    at: datetime | None = None  # the (simulated) time it arrived, when the recorder has a clock


class Recorder:
    """A registry's callback endpoint. Modes: "ok", "fail" (HTTP 500), "false" ({"success": false}),
    "empty" (200 {}), "nan" (200 {"success": true, "score": NaN}: not JSON, so no acknowledgement), and a gate: while closed, every callback waits for it before it is answered."""

    def __init__(self, name: str, clock=None):
        self.name = name
        self.clock = clock
        self.api_key = key_of(name)
        self.calls: list[Call] = []
        self.mode = "ok"
        self._changed = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self.waiting = 0  # callbacks held at the closed gate right now

    # --- scripting ----------------------------------------------------------------------
    def close_gate(self) -> None:
        self._gate.clear()

    def open_gate(self) -> None:
        self._gate.set()

    # --- the WSGI app ---------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            body = request.get_data(as_text=True)
        call = Call(request.headers.get("X-Delivery-Id"), request.path, body, 0, False,
                    self.clock.now() if self.clock else None)
        with self._changed:
            self.calls.append(call)
            mode = self.mode
            gated = not self._gate.is_set()
            if gated:
                self.waiting += 1
            self._changed.notify_all()
        if gated:
            self._gate.wait()
            with self._changed:
                self.waiting -= 1
        status, answer = {"ok": (200, {"success": True}), "fail": (500, {"success": False}),
                          "false": (200, {"success": False}), "empty": (200, {}),
                          "nan": (200, {"success": True, "score": float("nan")})}[mode]
        with self._changed:
            call.answered = status
            call.acknowledged = status == 200 and answer.get("success") is True and mode != "nan"
            self._changed.notify_all()
        return Response(json.dumps(answer), status=status, content_type="application/json")(environ, start_response)

    # --- looking ---------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[["Recorder"], bool], timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    def snapshot(self) -> list[Call]:
        with self._changed:
            return list(self.calls)

    def statuses(self, order_id: str) -> list[str]:
        """The statuses it acknowledged for its order id, in order."""
        return [c.body.get("formOrderStatus") for c in self.snapshot()
                if c.acknowledged and isinstance(c.body, dict) and c.body.get("formOrderId") == order_id]

    def acknowledged(self) -> list[Call]:
        return [c for c in self.snapshot() if c.acknowledged]


def fire(calls):
    """Run every call on its own thread, all released at once by a barrier; return their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        with requests.Session() as session:
            barrier.wait()
            results[i] = call(session)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EpromSide:
    """A fake ePROM on its own simulated clock, in this process, whose ordering system "eprox" calls back
    `proxy_url`; plus the recorders. What a test runs around a proxy process of its own."""

    def __init__(self, proxy_url: str, registries: list[str], *, pump: bool = True,
                 start: datetime | None = None):
        from fake_eprom.app import EXTENSION, create_app
        from fake_eprom.config import EpromConfig, OrderingSystem

        self.clock = SimClock(start or datetime.now(timezone.utc).replace(microsecond=0))
        self.timeline = Timeline(self.clock, pump=pump)
        self.server = LiveServer("eprom")
        app = create_app(EpromConfig(ordering_systems=[OrderingSystem("eprox", EPROX_KEY, proxy_url)]),
                         Runtime(self.clock, self.timeline, seed=1, sim=True))
        self.eprom = app.extensions[EXTENSION]
        self.server.mount(app)
        self.recorders = {name: Recorder(name) for name in registries}
        self.recorder_servers = {name: LiveServer(name) for name in registries}
        for name, server in self.recorder_servers.items():
            server.mount(self.recorders[name])

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> "EpromSide":
        self.server.start()
        for server in self.recorder_servers.values():
            server.start()
        self.timeline.start()
        return self

    @property
    def stopped(self) -> bool:
        return self.session is None

    def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.open_gate()
        self.timeline.stop()
        self.server.stop()
        for server in self.recorder_servers.values():
            server.stop()

    def registry_url(self, name: str) -> str:
        return self.recorder_servers[name].url

    def proxy_config(self, database: Path, **extra) -> dict:
        """A proxy configuration file's content for this side (docs/PROXY.md's format)."""
        return {
            "eprom": {"url": self.url, "apiKey": EPROX_KEY},
            "database": str(database),
            "logLevel": "INFO",
            "registries": [{"name": name, "apiKey": key_of(name), "callbackBaseUrl": self.registry_url(name)}
                           for name in self.recorders],
            **extra,
        }

    def add_patient(self, **body) -> str:
        reply = requests.post(f"{self.url}/_sim/patients", json=body, timeout=WAIT)
        assert reply.status_code in (200, 201), reply.text
        return reply.json()["nationalId"]

    def orders(self, national_id: str | None = None) -> list[dict]:
        reply = requests.get(f"{self.url}/_sim/orders", params={"nationalId": national_id} if national_id else None,
                             timeout=WAIT)
        return reply.json()

    def answer(self, order_id: str, form_data: dict | None = None) -> dict:
        reply = requests.post(f"{self.url}/_sim/orders/{order_id}/answer",
                              json={"formData": form_data} if form_data is not None else {}, timeout=WAIT)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def settle(self, timeout: float = 30.0) -> int:
        return self.timeline.settle(timeout)


def order_body(national_id: str, form_id: str = RAND_12, **fields) -> dict:
    expiry = (datetime.now(timezone.utc) + timedelta(days=3650)).date().isoformat()
    body = {"formId": form_id, "nationalId": national_id, "expiryDate": expiry}
    body.update(fields)
    return body


def place(proxy_url: str, registry: str, national_id: str, session: requests.Session | None = None,
          **fields) -> requests.Response:
    return (session or requests).post(f"{proxy_url}/api/v2/formorder", json=order_body(national_id, **fields),
                                      headers={"Authorization": f"Basic {key_of(registry)}"}, timeout=WAIT)


class ProxyProcess:
    """`python -m proxy serve --config FILE` as a real process of its own (system clock, production mode)."""

    def __init__(self, workdir: Path, config: dict, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "eprox.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self, timeout: float = 60.0) -> "ProxyProcess":
        self.runs += 1
        ready = self.workdir / f"ready-{self.runs}.json"
        log = open(self.workdir / f"proxy-{self.runs}.log", "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("EPROX_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--config", str(self.config_path), "--port", str(self.port),
             "--ready-file", str(ready)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        wait_for_ready_file(ready, self.proc, timeout, self.log, "the proxy")
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(timeout=30)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("proxy-*.log")))


def done_ids(database: Path) -> set[str]:
    """The ids of the deliveries a proxy's database records as done (read by another process)."""
    db = sqlite3.connect(database)
    try:
        return {row[0] for row in db.execute("SELECT id FROM deliveries WHERE state = 'done'")}
    finally:
        db.close()


def open_deliveries(database: Path) -> int:
    """How many deliveries in a proxy's database are not done (pending or dead)."""
    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT count(*) FROM deliveries WHERE state != 'done'").fetchone()[0]
    finally:
        db.close()


def eventually(check: Callable[[], bool], timeout: float = WAIT, every: float = 0.05) -> bool:
    """For state in another process that cannot signal us: look every 50 ms until it holds or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)  # sleep-ok: a production-mode proxy on the system clock has no settle call


@dataclass
class InProcessWorld:
    """Fake ePROM, the proxy and recorders in this process, on one simulated clock (what the harness does,
    with recorders instead of fake registries so tests can hold callbacks at a gate)."""

    state_dir: Path
    registries: list[str] = field(default_factory=lambda: ["registry-a", "registry-b"])
    pump: bool = False
    lifetime_days: float = 365
    tap: Callable | None = None
    allowed_forms: dict[str, frozenset[str]] = field(default_factory=dict)
    seed: int = 3  # another seed: another fake ePROM's ids (a world started again on kept state needs one)
    keys: dict[str, str] = field(default_factory=dict)  # registry name -> its key at the proxy, if not key_of()
    callback_urls: dict[str, str] = field(default_factory=dict)  # registry name -> its callback base URL, if not its recorder's

    def __post_init__(self) -> None:
        from fake_eprom.app import EXTENSION as EPROM_EXTENSION, create_app as create_eprom
        from fake_eprom.config import EpromConfig, OrderingSystem
        from proxy.app import EXTENSION, create_app as create_proxy
        from proxy.config import ProxyConfig, RegistryAccount

        self.clock = SimClock()
        self.timeline = Timeline(self.clock, pump=self.pump)
        self.eprom_server, self.proxy_server = LiveServer("eprom"), LiveServer("proxy")
        self.recorders = {name: Recorder(name, self.clock) for name in self.registries}
        self.recorder_servers = {name: LiveServer(name) for name in self.registries}
        eprom_app = create_eprom(
            EpromConfig(ordering_systems=[OrderingSystem("eprox", EPROX_KEY, self.proxy_server.url)]),
            Runtime(self.clock, self.timeline, seed=self.seed, tap=self.tap, sim=True))
        self.eprom = eprom_app.extensions[EPROM_EXTENSION]
        self.config = ProxyConfig(
            eprom_url=self.eprom_server.url, eprom_api_key=EPROX_KEY, state_dir=self.state_dir,
            lifetime=timedelta(days=self.lifetime_days),
            registries=[RegistryAccount(name, self.keys.get(name, key_of(name)),
                                        self.callback_urls.get(name, self.recorder_servers[name].url),
                                        self.allowed_forms.get(name)) for name in self.registries])
        proxy_app = create_proxy(self.config, Runtime(self.clock, self.timeline, seed=self.seed, tap=self.tap, sim=True))
        self.service = proxy_app.extensions[EXTENSION]
        self.eprom_server.mount(eprom_app)
        self.proxy_server.mount(proxy_app)
        for name, server in self.recorder_servers.items():
            server.mount(self.recorders[name])
        for server in [self.eprom_server, self.proxy_server, *self.recorder_servers.values()]:
            server.start()
        self.timeline.start()
        self.session = requests.Session()

    @property
    def proxy_url(self) -> str:
        return self.proxy_server.url

    @property
    def eprom_url(self) -> str:
        return self.eprom_server.url

    @property
    def stopped(self) -> bool:
        return self.session is None

    def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.open_gate()
        self.timeline.stop()
        for server in [self.eprom_server, self.proxy_server, *self.recorder_servers.values()]:
            server.stop()
        self.service.close()
        self.service.store.close()
        self.session.close()
        self.session = None

    # --- driving ------------------------------------------------------------------------
    def add_patient(self, **body) -> str:
        body.setdefault("reachable", ["Helsenorge"])
        body.setdefault("answer", None)
        reply = self.session.post(f"{self.eprom_url}/_sim/patients", json=body, timeout=WAIT)
        assert reply.status_code in (200, 201), reply.text
        return reply.json()["nationalId"]

    def order(self, registry: str, national_id: str, **fields) -> dict:
        reply = place(self.proxy_url, registry, national_id, self.session, **fields)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def call(self, method: str, path: str, registry: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if registry is not None:
            headers["Authorization"] = f"Basic {key_of(registry)}"
        return self.session.request(method, f"{self.proxy_url}{path}", headers=headers, timeout=WAIT, **kwargs)

    def eprom_orders(self, national_id: str) -> list[dict]:
        return self.session.get(f"{self.eprom_url}/_sim/orders", params={"nationalId": national_id},
                                timeout=WAIT).json()

    def answered_order(self, registry: str = "registry-a", form_data: dict | None = None,
                       **fields) -> tuple[str, str, str]:
        """A new patient ordered by `registry`, its Ordered status delivered, then answered and that
        delivered too: (patient, the registry's order id, ePROM's order id)."""
        patient = self.add_patient()
        own = self.order(registry, patient, **fields)["id"]
        self.settle()
        (eprom_order,) = self.eprom_orders(patient)
        self.answer(eprom_order["id"], form_data)
        self.settle()
        return patient, own, eprom_order["id"]

    def answer(self, eprom_order_id: str, form_data: dict | None = None) -> None:
        reply = self.session.post(f"{self.eprom_url}/_sim/orders/{eprom_order_id}/answer",
                                  json={"formData": form_data} if form_data is not None else {}, timeout=WAIT)
        assert reply.status_code == 200, reply.text

    def settle(self) -> int:
        return self.timeline.settle()

    def advance(self, **units: float) -> datetime:
        return self.timeline.advance(timedelta(**units))

    def deliveries(self, **filters) -> list:
        return self.service.store.deliveries(**filters)
