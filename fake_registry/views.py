"""The registry's protocol side: the two callback endpoints ePROX (or ePROM) calls."""
from __future__ import annotations

import socket
import time
from typing import Any

from flask import Blueprint, jsonify, request

from eprom_protocol import json_text
from eprom_protocol.messages import BODY_NOT_JSON
from eprom_protocol.timefmt import iso
from service_kit.clock import Clock
from service_kit.http import closed_while_idle

from .config import RegistryConfig
from .state import MAX_RECORDED_TEXT, MESSAGE_TO_CITIZEN, PROMS_FORM_ORDER, RegistryState, callback_kind, check_callback

SIMULATED_FAILURE = "simulated failure (failNext)"
SIMULATED_REFUSAL = "simulated refusal (successFalse)"


def _headers_of_interest() -> dict[str, str]:
    """Content-Type and every X-* header (X-Delivery-Id and the like): what a test may assert on."""
    return {name: value for name, value in request.headers.items()
            if name.lower() == "content-type" or name.lower().startswith("x-")}


def _sender_gone() -> bool:
    """Whether the sender closed the connection while the answer was delayed (its timeout ran out): the socket
    then reads as closed (readable, and at its end). Only on the werkzeug server the harness runs, which hands
    the socket over."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None or not closed_while_idle(sock):  # nothing to read: still there
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset, or closed already
        return True


def _read_body() -> tuple[Any, bool]:
    """(body, is_json): any JSON value is accepted; anything else is kept as (truncated) text."""
    raw = request.get_data(cache=True)
    try:
        return json_text.loads(raw.decode("utf-8")), True
    except ValueError:  # not UTF-8, not JSON, or NaN and the like, which JSON does not have
        return raw.decode("utf-8", errors="replace")[:MAX_RECORDED_TEXT], False


def callbacks_blueprint(config: RegistryConfig, state: RegistryState, clock: Clock) -> Blueprint:
    bp = Blueprint("callbacks", __name__)

    def receive():
        path = request.path
        body, is_json = _read_body()
        kind = callback_kind(path, body)
        found, key_matches = check_callback(kind, body, is_json, config.api_key)
        if not is_json:
            # A sender bug, not a registry fault: answered at once and no fault is used up.
            fault, delay = None, state.faults.snapshot().delay_seconds
            status, answer = 400, {"success": False, "message": BODY_NOT_JSON}
        else:
            fault, delay = state.faults.take()
            if fault == "failNext":
                status, answer = 500, {"success": False, "message": SIMULATED_FAILURE}
            elif fault == "successFalse":
                status, answer = 200, {"success": False, "message": SIMULATED_REFUSAL}
            else:
                status, answer = 200, {"success": True}
        callback = state.record_callback(
            method=request.method, path=path, kind=kind, body=body, body_is_json=is_json,
            headers=_headers_of_interest(), received_at=iso(clock.now()), api_key_matches=key_matches,
            schema_violations=found, answer_status=status, answer_body=answer, fault=fault, answered=delay <= 0,
        )
        if delay > 0:
            time.sleep(delay)  # deliberately real: this simulates a slow registry
            state.delay_ended(callback, sender_gone=_sender_gone())
        return jsonify(answer), status

    bp.add_url_rule(PROMS_FORM_ORDER, "proms_form_order", receive, methods=["PUT"])
    bp.add_url_rule(MESSAGE_TO_CITIZEN, "message_to_citizen", receive, methods=["PUT"])
    return bp
