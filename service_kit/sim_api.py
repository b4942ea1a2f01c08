"""The clock part of the control API that every server in sim mode serves (SPEC §4)."""
from __future__ import annotations

import math
from datetime import timedelta

from flask import Blueprint, jsonify

from eprom_protocol.messages import ProtocolError
from eprom_protocol.timefmt import iso

from .timeline import Timeline
from .web import optional_json_object_body

ADVANCE_UNITS = ("days", "hours", "minutes", "seconds")
MAX_ADVANCE = timedelta(days=366 * 10)


def parse_advance(body: dict) -> timedelta:
    unknown = sorted(set(body) - set(ADVANCE_UNITS))
    if unknown:
        raise ProtocolError(f"unknown field(s) {', '.join(unknown)}; use any of: {', '.join(ADVANCE_UNITS)}")
    if not body:
        raise ProtocolError(f"say how far to move the clock with any of: {', '.join(ADVANCE_UNITS)}")
    parts = {}
    for unit, value in body.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):  # NaN, Infinity: not JSON numbers
            raise ProtocolError(f"{unit}: must be a number")
        if value < 0:
            raise ProtocolError(f"{unit}: the clock only moves forward, so it must not be negative")
        parts[unit] = value
    try:
        delta = timedelta(**parts)
    except OverflowError:  # beyond what timedelta holds (e.g. days=1e10): far more than ten years
        delta = timedelta.max
    if delta > MAX_ADVANCE:
        raise ProtocolError("the clock moves at most ten years in one call")
    return delta


def sim_clock_blueprint(timeline: Timeline) -> Blueprint:
    bp = Blueprint("sim_clock", __name__, url_prefix="/_sim")

    @bp.get("/clock")
    def clock():
        return jsonify({"now": iso(timeline.clock.now())})

    @bp.post("/clock/advance")
    def advance():
        delta = parse_advance(optional_json_object_body())
        return jsonify({"now": iso(timeline.advance(delta))})

    @bp.post("/settle")
    def settle():
        return jsonify({"pending": timeline.settle()})

    return bp
