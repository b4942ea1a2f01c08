"""A real HTTP server on a loopback port, in a thread: what the harness and the e2e tests run."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from werkzeug.serving import BaseWSGIServer, make_server

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines would carry ids: keep them out


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    return [b'{"message": "starting"}']


class LiveServer:
    """Binds a free port first (so every server's URL is known before any app is built), serves later."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0):
        self.name = name
        self._app: Callable = _not_ready
        self._server: BaseWSGIServer = make_server(host, port, self._dispatch, threaded=True)
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
