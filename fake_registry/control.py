"""The registry's part of the control API (SPEC §4): place orders, read the inbox, set faults."""
from __future__ import annotations

from flask import Blueprint, jsonify

from eprom_protocol.timefmt import iso
from service_kit.clock import Clock
from service_kit.web import json_object_body, optional_json_object_body

from .client import TargetClient
from .state import RegistryState, parse_fault_settings


def control_blueprint(state: RegistryState, client: TargetClient, clock: Clock) -> Blueprint:
    bp = Blueprint("registry_control", __name__, url_prefix="/_sim")

    @bp.post("/orders")
    def place_order():
        body = json_object_body()
        exchange = client.place_order(body)
        state.record_order(placed_at=iso(exchange.at), request=body, status=exchange.status,
                           body=exchange.response_body, error=exchange.error)
        if exchange.status is None:
            return jsonify({"message": f"the target did not answer: {exchange.error}"}), 502
        return jsonify({"status": exchange.status, "body": exchange.response_body})

    @bp.get("/orders")
    def placed_orders():
        return jsonify(state.placed_orders())

    @bp.get("/inbox")
    def inbox():
        return jsonify(state.inbox())

    @bp.delete("/inbox")
    def clear_inbox():
        return jsonify({"cleared": state.clear_inbox()})

    @bp.get("/faults")
    def faults():
        return jsonify(state.faults.snapshot().as_json())

    @bp.post("/faults")
    def set_faults():
        settings = parse_fault_settings(optional_json_object_body())
        return jsonify(state.faults.update(settings).as_json())

    return bp
