"""service_kit.server: werkzeug skips a response's close() when its client resets the connection around
the end of the answer (seen in the proxy crash test: a fake ePROM order's hold leaked, and settle() waited
its whole timeout). ClosingRequestHandler closes it when werkzeug reports the dropped connection, so the
work a view deferred until its answer was sent still runs, once."""
from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.test import EnvironBuilder

from service_kit.server import RESPONSE_KEY, ClosingRequestHandler, keeping_responses
from service_kit.web import after_response


def make_app(released: list, holds: list) -> Flask:
    app = Flask("t")

    @app.post("/order")
    def order():
        response = jsonify({"id": "x"})

        def hold():
            holds.append("held")
            return lambda: holds.append("released")

        after_response(response, hold, lambda: released.append("order"))
        return response

    return app


def test_a_dropped_connection_still_runs_the_work_deferred_until_the_answer_was_sent():
    released, holds = [], []
    app = keeping_responses(make_app(released, holds))
    environ = EnvironBuilder(method="POST", path="/order", json={}).get_environ()
    response = app(environ, lambda status, headers, exc_info=None: None)
    assert environ[RESPONSE_KEY] is response
    assert released == [] and holds == ["held"]  # werkzeug would now write, then fail before close()

    handler = ClosingRequestHandler.__new__(ClosingRequestHandler)  # only its drop path, no socket
    handler.connection_dropped(ConnectionResetError(104, "Connection reset by peer"), environ)
    assert released == ["order"] and holds == ["held", "released"]

    response.close()  # werkzeug did close after all (the drop came later): nothing runs twice
    assert released == ["order"] and holds == ["held", "released"]


def test_a_connection_dropped_before_any_response_closes_nothing():
    handler = ClosingRequestHandler.__new__(ClosingRequestHandler)
    handler.connection_dropped(ConnectionResetError(104, "reset"), {})  # no response yet: nothing to do
    handler.connection_dropped(ConnectionResetError(104, "reset"), None)
