"""Builds the proxy app from its configuration and runtime; nothing happens at import time."""
from __future__ import annotations

from flask import Flask, jsonify

from eprom_protocol.messages import ProtocolError
from service_kit.runtime import Runtime
from service_kit.sim_api import sim_clock_blueprint
from service_kit.web import install_error_handlers

from .config import ProxyConfig
from .gateways import HttpEprom, HttpRegistries
from .privacy import redact
from .service import ProxyService
from .store import ProxyStore
from .views import protocol_blueprint, sim_blueprint

EXTENSION = "eprox"  # app.extensions[EXTENSION] is the ProxyService behind the app


def build_service(config: ProxyConfig, runtime: Runtime) -> ProxyService:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    store = ProxyStore(config.database_path, synchronous=config.synchronous)
    generation = store.next_generation()
    transport = runtime.transport("proxy")
    return ProxyService(
        config, store, runtime.clock,
        eprom=HttpEprom(transport, config.eprom_url, config.eprom_api_key),
        registries=HttpRegistries(transport),
        ids=runtime.ids(f"proxy:{generation}"),
        notify=runtime.timeline.notify,
        in_pump=runtime.timeline.in_pump,
        generation=generation,
    )


def create_app(config: ProxyConfig, runtime: Runtime) -> Flask:
    service = build_service(config, runtime)
    app = Flask("proxy")
    install_error_handlers(app)

    @app.errorhandler(ProtocolError)
    def _protocol_error(err: ProtocolError):  # every error text passes here: no national id, no ePROX key
        return jsonify({"message": redact(err.message, secrets=(config.eprom_api_key,))}), err.status

    app.register_blueprint(protocol_blueprint(service, runtime.timeline))
    if runtime.sim:
        app.register_blueprint(sim_clock_blueprint(runtime.timeline))
        app.register_blueprint(sim_blueprint(service))
    app.extensions[EXTENSION] = service
    runtime.timeline.register(service)
    return app
