"""Flask edge helpers shared by the three servers: JSON errors (never an HTML page, never a 500 for bad
input), strict JSON-object bodies and the `Authorization: Basic <apiKey>` header."""
from __future__ import annotations

import logging
from typing import Any, Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from eprom_protocol import json_text
from eprom_protocol.messages import (
    BODY_NOT_OBJECT,
    BODY_TOO_LARGE,
    MISSING_AUTHORIZATION,
    ProtocolError,
    body_not_json,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024


def install_error_handlers(app: Flask) -> None:
    app.config.setdefault("MAX_CONTENT_LENGTH", DEFAULT_MAX_BODY)

    @app.errorhandler(ProtocolError)
    def _protocol_error(err: ProtocolError):
        return jsonify(err.body()), err.status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(err):
        return jsonify({"message": BODY_TOO_LARGE}), 400

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return jsonify({"message": err.description or err.name}), err.code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # a bug: say so plainly, leak nothing
        log.exception("unhandled error in %s %s", request.method, request.path)
        return jsonify({"message": "Internal error in the server; see its log"}), 500


def json_object_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    if len(raw) > (request.max_content_length or DEFAULT_MAX_BODY):
        raise ProtocolError(BODY_TOO_LARGE)
    try:
        body = json_text.loads(raw)  # strict: no NaN or Infinity, which Flask's get_json would take
    except ValueError as err:
        raise ProtocolError(body_not_json(str(err))) from None
    if not isinstance(body, dict):
        raise ProtocolError(BODY_NOT_OBJECT)
    return body


def optional_json_object_body() -> dict[str, Any]:
    """Like json_object_body, but an empty body is an empty object (control calls with no options)."""
    if not request.get_data(cache=True).strip():
        return {}
    return json_object_body()


def api_key_from_header() -> str:
    """The raw key of `Authorization: Basic <apiKey>`; 401 when the header is missing."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise ProtocolError(MISSING_AUTHORIZATION, status=401)
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "basic" or not key.strip():
        raise ProtocolError(MISSING_AUTHORIZATION, status=401)
    return key.strip()


def after_response(response: Response, hold: Callable[[], Callable[[], None]], release: Callable[[], None]) -> None:
    """Run release() once the response has been sent, and make the timeline's settle() wait for that:
    callbacks a request created must not reach anyone before the caller has its own answer."""
    timeline_release = hold()
    done = False

    def _release() -> None:
        nonlocal done
        if done:  # a response may be closed twice, on its thread (see service_kit.server.ClosingRequestHandler)
            return
        done = True
        try:
            release()
        finally:
            timeline_release()

    response.call_on_close(_release)
