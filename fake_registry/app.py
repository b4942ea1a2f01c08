"""The fake registry's app factory: callback endpoints always, the control API in sim mode."""
from __future__ import annotations

from flask import Flask

from service_kit.runtime import Runtime
from service_kit.sim_api import sim_clock_blueprint
from service_kit.web import install_error_handlers

from .client import TargetClient
from .config import RegistryConfig
from .control import control_blueprint
from .state import RegistryState
from .views import callbacks_blueprint

MAX_CALLBACK_BODY = 32 * 1024 * 1024  # returned forms can be large; a registry should not refuse them


def create_app(config: RegistryConfig, runtime: Runtime) -> Flask:
    app = Flask(f"fake_registry[{config.name}]")
    app.config["MAX_CONTENT_LENGTH"] = MAX_CALLBACK_BODY
    install_error_handlers(app)
    state = RegistryState()
    app.extensions["fake_registry"] = state  # for in-process tests
    app.register_blueprint(callbacks_blueprint(config, state, runtime.clock))
    if runtime.sim:
        client = TargetClient(config, runtime.transport(config.name))
        app.register_blueprint(control_blueprint(state, client, runtime.clock))
        app.register_blueprint(sim_clock_blueprint(runtime.timeline))
    return app
