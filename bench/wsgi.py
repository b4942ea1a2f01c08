"""The WSGI apps under test, built the same way for every server: the proxy (production-style: system
clock, pump on, no /_sim API), a bare Flask + SQLite insert handler, and the fake ePROM (sim mode).

gunicorn loads `bench.wsgi:create()` in its worker, with BENCH_APP (proxy | bare | eprom) and
BENCH_CONFIG (a JSON file) in the environment; bench/serve.py builds the same apps for werkzeug."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from pathlib import Path


def create():
    """gunicorn's app factory."""
    return build(os.environ["BENCH_APP"], json.loads(Path(os.environ["BENCH_CONFIG"]).read_text()))


def build(kind: str, config: dict):
    if kind == "proxy":
        return proxy_app(config)
    if kind == "bare":
        return bare_app(config["db"])
    if kind == "eprom":
        return eprom_app(config)
    raise ValueError(f"unknown app {kind!r}")


def proxy_app(config: dict):
    """The proxy as production runs it: proxy.production.ProductionProxy when the proxy has it (system clock,
    its logging set-up, pump started), else the same built by hand from proxy.app.create_app."""
    from proxy.config import ProxyConfig, RegistryAccount

    proxy_config = ProxyConfig(
        eprom_url=config["eprom_url"], eprom_api_key=config["eprom_api_key"],
        registries=[RegistryAccount(name=r["name"], api_key=r["api_key"], api_base_url=r["api_base_url"])
                    for r in config["registries"]],
        state_dir=Path(config["state_dir"]),
    )
    try:
        from proxy.production import ProductionProxy
    except ImportError:
        ProductionProxy = None
    if ProductionProxy is not None:
        return ProductionProxy(proxy_config).app

    from proxy.app import create_app
    from service_kit.clock import SystemClock
    from service_kit.runtime import Runtime
    from service_kit.timeline import Timeline

    clock = SystemClock()
    runtime = Runtime(clock, Timeline(clock, pump=True), seed=None, sim=False)
    app = create_app(proxy_config, runtime)
    runtime.timeline.start()
    return app


def eprom_app(config: dict):
    from fake_eprom.app import create_app
    from fake_eprom.config import EpromConfig, OrderingSystem
    from service_kit.clock import SimClock
    from service_kit.runtime import Runtime
    from service_kit.timeline import Timeline

    clock = SimClock()
    runtime = Runtime(clock, Timeline(clock, pump=True), seed=0, sim=True)
    app = create_app(EpromConfig(
        ordering_systems=[OrderingSystem(name="eprox", api_key=config["eprom_api_key"],
                                         api_base_url=config["proxy_url"])],
        population="open",
    ), runtime)
    runtime.timeline.start()
    return app


BARE_SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
)"""


def bare_app(db_path: str):
    """The yardstick: parse the JSON body, insert one row in one SQLite WAL transaction (synchronous=NORMAL,
    BEGIN IMMEDIATE ... COMMIT, a connection per thread: what proxy/store.py does), answer JSON."""
    from flask import Flask, jsonify, request

    local = threading.local()

    def db() -> sqlite3.Connection:
        conn = getattr(local, "db", None)
        if conn is None:
            conn = sqlite3.connect(db_path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            local.db = conn
        return conn

    db().execute(BARE_SCHEMA)
    app = Flask("bare")

    @app.post("/api/v2/formorder")
    def formorder():
        body = request.get_json(force=True)
        order_id = str(uuid.uuid4())
        conn = db()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO orders (id, body) VALUES (?, ?)", (order_id, json.dumps(body)))
        conn.execute("COMMIT")
        return jsonify({**body, "id": order_id})

    return app
