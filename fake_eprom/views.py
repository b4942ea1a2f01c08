"""The ePROM v2 protocol endpoints the fake serves (SPEC §1)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from service_kit.web import after_response, api_key_from_header, json_object_body

from .service import FakeEprom


def protocol_blueprint(eprom: FakeEprom) -> Blueprint:
    bp = Blueprint("eprom_protocol", __name__)

    @bp.post("/api/v2/formorder")
    def formorder():
        system = eprom.system_for_key(api_key_from_header())
        placed = eprom.place_order(system, json_object_body())
        response = jsonify(placed.response)
        if placed.order_id is not None:
            order_id = placed.order_id
            # the order's callbacks go only once the ordering system has its id (DESIGN.md, "Time"); the
            # timeline's hold makes settle() wait for that, the scheduler's gate makes every run wait for it
            after_response(response, eprom.runtime.timeline.hold, lambda: eprom.release(order_id))
        return response

    return bp
