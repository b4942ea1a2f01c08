"""The processes a benchmark runs against, each in its own process on its own loopback port:

- receivers: one asyncio process playing every registry (bench/receivers.py);
- the fake ePROM, simulated clock, pump on: under gunicorn (one gthread worker of 16 threads: its state is in
  memory, so one process; keep-alive both ways) when gunicorn is installed, else the werkzeug threaded server.
  It stands in for a remote service whose CPU would not be on this machine at all, so it runs the cheapest
  way there is; the server under test is never changed by this;
- the proxy under test, under werkzeug (service_kit.server.LiveServer, as the harness runs it) or under
  gunicorn (gthread worker: 1 worker, GUNICORN_THREADS threads), production-style (system clock, pump on);
- the bare Flask + SQLite insert handler, under the same server with the same threads.

The load generator is the benchmark's own process. With pin=True the server under test (proxy or bare)
gets CPU 1 to itself and everything else (load generator, fake ePROM, receivers) shares CPU 0."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from .common import EPROX_KEY, HOST, Child, call_json, free_port, registry_key, registry_name, start_child

SERVERS = ("werkzeug", "gunicorn")
GUNICORN_WORKERS, GUNICORN_THREADS = 1, 16


def parse_server(spec: str) -> tuple[str, int, int]:
    """'werkzeug', 'gunicorn' (1 worker, 16 threads) or 'gunicorn:WxT' -> (kind, workers, threads)."""
    kind, _, shape = spec.partition(":")
    if kind == "werkzeug" and not shape:
        return kind, 1, 0
    if kind == "gunicorn":
        if not shape:
            return kind, GUNICORN_WORKERS, GUNICORN_THREADS
        workers, _, threads = shape.partition("x")
        if workers.isdigit() and threads.isdigit() and int(workers) >= 1 and int(threads) >= 1:
            return kind, int(workers), int(threads)
    raise ValueError(f"unknown server {spec!r}: werkzeug, gunicorn or gunicorn:WORKERSxTHREADS")
UNDER_TEST_CPU, OTHERS_CPU = {1}, {0}


def default_eprom_server() -> str:
    return "gunicorn:1x16" if importlib.util.find_spec("gunicorn") is not None else "werkzeug"


def parse_eprom_server(spec: str) -> str:
    """The fake ePROM keeps its state in memory: one process, whatever the server."""
    if parse_server(spec)[1] != 1:
        raise ValueError(f"the fake ePROM runs in one process: {spec!r} has more than one worker")
    return spec


class World:
    def __init__(self, workdir: Path, registries: int = 20, pin: bool = False, eprom_server: str | None = None):
        self.workdir = workdir
        self.eprom_server = parse_eprom_server(eprom_server or default_eprom_server())
        self.pin = pin and (os.cpu_count() or 1) >= 2
        self.registry_ports = [free_port() for _ in range(registries)]
        self.control_port = free_port()
        self.proxy_port = free_port()
        self.eprom_port = free_port()
        self.children: list[Child] = []
        self.receivers: Child | None = None
        self.eprom: Child | None = None
        if self.pin:
            os.sched_setaffinity(0, OTHERS_CPU)

    # --- lifecycle ------------------------------------------------------------------------
    def start_common(self) -> None:
        """Receivers and fake ePROM: started once, shared by every proxy started later."""
        self.receivers = self._start("receivers", ["-m", "bench.receivers", str(self.control_port),
                                                   ",".join(map(str, self.registry_ports))], self.control_port)
        config = self._write("eprom", {"eprom_api_key": EPROX_KEY, "proxy_url": f"http://{HOST}:{self.proxy_port}"})
        self.eprom = self._start_app("eprom", self.eprom_server, config, self.eprom_port, ready_path="/_sim/clock",
                                     pin=False)
        for child in (self.receivers, self.eprom):
            if self.pin:
                child.pin(OTHERS_CPU)

    def start_proxy(self, server: str, state_dir: Path) -> Child:
        """A proxy on the fixed proxy port (the fake ePROM calls back there); stop the previous one first."""
        config = self._write(f"proxy-{state_dir.name}", {
            "eprom_url": f"http://{HOST}:{self.eprom_port}", "eprom_api_key": EPROX_KEY,
            "state_dir": str(state_dir),
            "registries": [{"name": registry_name(i), "api_key": registry_key(i),
                            "api_base_url": f"http://{HOST}:{port}"} for i, port in enumerate(self.registry_ports)],
        })
        return self._start_app("proxy", server, config, self.proxy_port)

    def start_bare(self, server: str, db: Path) -> Child:
        config = self._write(f"bare-{db.stem}", {"db": str(db)})
        return self._start_app("bare", server, config, free_port())

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    # --- receivers' control API -------------------------------------------------------------
    @property
    def control_url(self) -> str:
        return f"http://{HOST}:{self.control_port}"

    def received_total(self) -> int:
        """Distinct callbacks the registries acknowledged so far (a redelivered one counts once)."""
        return call_json("GET", f"{self.control_url}/counts")[1]["unique"]

    def counts(self) -> dict:
        return call_json("GET", f"{self.control_url}/counts")[1]

    def wait_total(self, count: int, timeout: float = 60.0) -> bool:
        return call_json("POST", f"{self.control_url}/wait_total", {"count": count, "timeout": timeout},
                         timeout=timeout + 10)[1]["done"]

    def wait_acks(self, ids: list[str], status: str, timeout: float = 10.0) -> dict:
        return call_json("POST", f"{self.control_url}/wait", {"ids": ids, "status": status, "timeout": timeout},
                         timeout=timeout + 10)[1]

    # --- internals ------------------------------------------------------------------------
    def _write(self, name: str, config: dict) -> Path:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(config))
        return path

    def _start(self, name: str, argv: list[str], port: int, env: dict | None = None, ready_path: str = "/") -> Child:
        child = start_child(name, argv, port, self.workdir, env=env, ready_path=ready_path)
        self.children.append(child)
        return child

    def _start_app(self, kind: str, server: str, config: Path, port: int, ready_path: str = "/",
                   pin: bool = True) -> Child:
        name, workers, threads = parse_server(server)
        if name == "werkzeug":
            child = self._start(f"{kind}-werkzeug", ["-m", "bench.serve", kind, str(port), str(config)], port,
                                ready_path=ready_path)
        else:
            child = self._start(f"{kind}-gunicorn-{workers}x{threads}", [
                "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
                "-b", f"{HOST}:{port}", "--log-level", "warning", "--graceful-timeout", "3", "--keep-alive", "5",
                "bench.wsgi:create()"], port, env={"BENCH_APP": kind, "BENCH_CONFIG": str(config)},
                ready_path=ready_path)
        if self.pin and pin:
            child.pin(UNDER_TEST_CPU)
        return child
