"""The proxy as it runs in production: system clock, no /_sim API, ids from the operating system, its
delivery pump running in this process. Used by `proxy serve` and by the WSGI entry (proxy/wsgi.py)."""
from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from flask import Flask

from service_kit.clock import SystemClock
from service_kit.runtime import Runtime
from service_kit.server import make_closing_server
from service_kit.timeline import Timeline

from .app import EXTENSION, create_app
from .config import ProxyConfig
from .privacy import RedactingFilter, redact_handlers
from .service import ProxyService

log = logging.getLogger(__name__)


def redact_logger(name: str) -> None:
    """Mask national ids in whatever this logger itself writes (gunicorn's access and error logs, which do not
    propagate to the root's handlers), through any handler it has now or gets later (gunicorn makes its
    handlers anew when it reopens its logs): a filter on the logger, not on its handlers."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with a redacting filter, unless the host (gunicorn, a test) already set logging up."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    redact_handlers()
    logging.getLogger("proxy").setLevel(level)
    if root.level == logging.NOTSET or root.level > logging.getLevelName(level):
        root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines: kept out


class ProductionProxy:
    """One running proxy: its Flask app, its timeline on the system clock and its pump."""

    def __init__(self, config: ProxyConfig):
        configure_logging(config.log_level)
        self.config = config
        clock = SystemClock()
        self.timeline = Timeline(clock, pump=True)
        runtime = Runtime(clock, self.timeline, seed=None, tap=None, sim=False,
                          delivery_timeout=config.delivery_timeout)
        self.app: Flask = create_app(config, runtime)
        self.service: ProxyService = self.app.extensions[EXTENSION]
        # Built once per server process: what exists now (modules, the app, compiled schemas) lives as long as
        # the process, so the garbage collector's full passes need not walk it again and again (each such
        # pass was a 12-26 ms pause of every request in flight, now about 1 ms; see bench/README.md).
        gc.freeze()
        self.timeline.start()  # resumes whatever the outbox holds: pending, or sent by a process that died
        log.info("ePROX proxy started (pid %d, %d registries, database %s)", os.getpid(),
                 len(config.registries), config.database_path)

    def close(self) -> None:
        self.timeline.stop()
        self.service.close()
        self.service.store.close()


class WsgiEntry:
    """A WSGI callable that builds the proxy in the process that serves it: the configuration comes from
    the environment (EPROX_CONFIG and friends), and a process forked after building (a preloading server)
    builds its own, since threads and database connections do not survive fork()."""

    def __init__(self, load: Callable[[], ProxyConfig]):
        self._load = load
        self._lock = threading.Lock()
        self._proxy: ProductionProxy | None = None
        self._pid: int | None = None

    def start(self) -> ProductionProxy:
        with self._lock:
            if self._proxy is None or self._pid != os.getpid():
                self._proxy, self._pid = ProductionProxy(self._load()), os.getpid()
            return self._proxy

    def close(self) -> None:
        with self._lock:
            if self._proxy is not None and self._pid == os.getpid():
                self._proxy.close()
            self._proxy = None

    def __call__(self, environ, start_response):
        proxy = self._proxy if self._pid == os.getpid() else None
        return (proxy or self.start()).app(environ, start_response)


def write_ready_file(path: Path, info: dict) -> None:
    """Through a temporary file and a rename, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    os.replace(temp, path)


class StartupError(Exception):
    """The proxy could not start; the message says why in one line."""


def serve(config: ProxyConfig, host: str = "127.0.0.1", port: int = 8000, ready_file: Path | None = None) -> int:
    """Serve until SIGTERM or SIGINT with werkzeug's threaded server: one process. For several worker
    processes run it under gunicorn instead (docs/PROXY.md). The port is bound before the proxy starts, so
    a port in use leaves no proxy half started (its pump running, "started" logged)."""
    built: list[Callable] = []  # the proxy's app, once built; nothing is served before
    said = io.StringIO()  # werkzeug prints why it cannot bind, and exits: said here in one line instead
    try:
        with contextlib.redirect_stderr(said):
            server = make_closing_server(host, port, lambda environ, start_response: built[0](environ, start_response))
    except (SystemExit, OSError, OverflowError) as err:
        reason = said.getvalue().strip().splitlines()[:1] or [str(err)]
        raise StartupError(f"cannot listen on {host}:{port}: {reason[0]}") from None
    try:
        proxy = ProductionProxy(config)
    except (OSError, sqlite3.Error) as err:
        server.server_close()
        raise StartupError(f"cannot start on its database {config.database_path}: {err}") from None
    built.append(proxy.app)
    stopping = threading.Event()

    def stop(signum, frame):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    url = f"http://{host}:{server.server_port}"
    try:
        if ready_file is not None:
            write_ready_file(ready_file, {"url": url, "pid": os.getpid()})
        log.info("serving on %s", url)
        server.serve_forever()
    finally:
        server.server_close()
        proxy.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0
