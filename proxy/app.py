"""Builds the proxy app from its configuration and runtime; nothing happens at import time."""
from __future__ import annotations

from flask import Flask

from service_kit.runtime import Runtime
from service_kit.sim_api import sim_clock_blueprint
from service_kit.web import install_error_handlers

from .config import ProxyConfig
from .gateways import HttpEprom, HttpRegistries
from .service import ProxyService
from .store import ProxyStore
from .views import protocol_blueprint, sim_blueprint


def build_service(config: ProxyConfig, runtime: Runtime) -> ProxyService:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    store = ProxyStore(config.database_path)
    generation = store.next_generation()
    store.release_all_holds()  # no request of an earlier run is still waiting for its answer
    transport = runtime.transport("proxy")
    return ProxyService(
        config, store, runtime.clock,
        eprom=HttpEprom(transport, config.eprom_url, config.eprom_api_key),
        registries=HttpRegistries(transport),
        ids=runtime.ids(f"proxy:{generation}"),
        notify=runtime.timeline.notify,
    )


def create_app(config: ProxyConfig, runtime: Runtime) -> Flask:
    service = build_service(config, runtime)
    app = Flask("proxy")
    install_error_handlers(app)
    app.register_blueprint(protocol_blueprint(service, runtime.timeline))
    if runtime.sim:
        app.register_blueprint(sim_clock_blueprint(runtime.timeline))
        app.register_blueprint(sim_blueprint(service))
    app.extensions["eprox"] = service
    runtime.timeline.register(service)
    return app
