"""The fake ePROM's Flask application: the ePROM v2 API and, in sim mode, the control API."""
from __future__ import annotations

from flask import Flask

from service_kit.runtime import Runtime
from service_kit.sim_api import sim_clock_blueprint
from service_kit.web import install_error_handlers

from .config import EpromConfig
from .control import control_blueprint
from .service import FakeEprom
from .views import protocol_blueprint

EXTENSION = "fake_eprom"  # app.extensions[EXTENSION] is the FakeEprom behind the app


def create_app(config: EpromConfig, runtime: Runtime) -> Flask:
    """Build a fake ePROM and register its due work (one DueWork named "fake-eprom") on the timeline."""
    app = Flask(__name__)
    app.json.sort_keys = False  # bodies keep the order the protocol lists their fields in
    install_error_handlers(app)
    eprom = FakeEprom(config, runtime)
    app.extensions[EXTENSION] = eprom
    app.register_blueprint(protocol_blueprint(eprom))
    if runtime.sim:
        app.register_blueprint(sim_clock_blueprint(runtime.timeline))
        app.register_blueprint(control_blueprint(eprom))
    runtime.timeline.register(eprom.scheduler)
    return app
