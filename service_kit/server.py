"""A real HTTP server on a loopback port, in a thread: what the harness and the e2e tests run."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines would carry ids: keep them out
log = logging.getLogger(__name__)

RESPONSE_KEY = "service_kit.response"  # where keeping_responses() leaves a request's response iterable


class ClosingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, except that a response is closed even when its client has gone.

    When the client resets the connection around the end of the answer, werkzeug's handler raises out of
    its clean-up (it reads what the client might still send) before it calls the response's close(); and
    close() runs what a view deferred until its answer was sent (service_kit.web.after_response): a fake
    ePROM order's callbacks, a proxy's hold. Skipped, those would wait for ever, and every settle() for its
    whole timeout. werkzeug reports that case here."""

    def connection_dropped(self, error: BaseException, environ=None) -> None:
        response = environ.pop(RESPONSE_KEY, None) if environ is not None else None
        close = getattr(response, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing the response of a dropped connection failed")
        super().connection_dropped(error, environ)


def keeping_responses(app: Callable) -> Callable:
    """The WSGI app, leaving each response iterable in the environ for ClosingRequestHandler."""
    def app_keeping_its_response(environ, start_response):
        response = app(environ, start_response)
        environ[RESPONSE_KEY] = response
        return response
    return app_keeping_its_response


def make_closing_server(host: str, port: int, app: Callable) -> BaseWSGIServer:
    """werkzeug's threaded server with ClosingRequestHandler: what every werkzeug server here runs on."""
    return make_server(host, port, keeping_responses(app), threaded=True, request_handler=ClosingRequestHandler)


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    return [b'{"message": "starting"}']


class LiveServer:
    """Binds a free port first (so every server's URL is known before any app is built), serves later."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0):
        self.name = name
        self._app: Callable = _not_ready
        self._server: BaseWSGIServer = make_closing_server(host, port, self._dispatch)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def _dispatch(self, environ, start_response):
        return self._app(environ, start_response)

    def mount(self, app: Callable) -> None:
        self._app = app

    def start(self) -> None:
        # a short poll interval: stop() waits for the serve loop to notice, 0.5 s by default
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"http-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever(), so only after start()
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
