"""service_kit.sim_api: parsing an advance request, and the /_sim clock blueprint via a Flask test client."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from eprom_protocol.messages import BODY_NOT_OBJECT, ProtocolError, body_not_json
from service_kit.clock import DEFAULT_SIM_START
from service_kit.sim_api import parse_advance, sim_clock_blueprint
from service_kit.web import install_error_handlers

START = DEFAULT_SIM_START  # the conftest clock starts here
UNITS = "use any of: days, hours, minutes, seconds"


# --- parse_advance ---------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ({"days": 3}, timedelta(days=3)),
    ({"hours": 12}, timedelta(hours=12)),
    ({"minutes": 90}, timedelta(minutes=90)),
    ({"seconds": 1}, timedelta(seconds=1)),
    ({"hours": 2, "minutes": 30}, timedelta(hours=2, minutes=30)),
    ({"days": 1, "seconds": 5}, timedelta(days=1, seconds=5)),
    ({"days": 1, "hours": 1, "minutes": 1, "seconds": 1}, timedelta(days=1, hours=1, minutes=1, seconds=1)),
    ({"seconds": 0.5}, timedelta(milliseconds=500)),
    ({"days": 0}, timedelta(0)),
    ({"days": 3660}, timedelta(days=3660)),  # ten years of 366 days: the most allowed
])
def test_parse_advance_accepts_any_subset(body, expected):
    assert parse_advance(body) == expected


def _rejected(body) -> str:
    with pytest.raises(ProtocolError) as err:
        parse_advance(body)
    assert err.value.status == 400
    return err.value.message


def test_rejects_unknown_keys_and_lists_the_allowed_ones():
    assert _rejected({"weeks": 1}) == f"unknown field(s) weeks; {UNITS}"
    assert _rejected({"days": 1, "years": 1, "Hours": 2}) == f"unknown field(s) Hours, years; {UNITS}"


def test_rejects_an_empty_body():
    assert _rejected({}) == "say how far to move the clock with any of: days, hours, minutes, seconds"


@pytest.mark.parametrize("unit", ["days", "hours", "minutes", "seconds"])
def test_rejects_negatives(unit):
    assert _rejected({unit: -1}) == f"{unit}: the clock only moves forward, so it must not be negative"


@pytest.mark.parametrize("value", [True, False, "1", "P1D", None, [1], {"n": 1}])
def test_rejects_booleans_strings_and_other_non_numbers(value):
    assert _rejected({"hours": value}) == "hours: must be a number"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_rejects_non_finite_numbers(value):
    assert _rejected({"days": value}) == "days: must be a number"


@pytest.mark.parametrize("body", [
    {"days": 3661},
    {"days": 3660, "seconds": 1},
    {"hours": 24 * 3661},
    {"days": 10**10},  # beyond what timedelta can hold
    {"seconds": 1e300},
    {"minutes": 10**400},
])
def test_rejects_more_than_ten_years(body):
    assert _rejected(body) == "the clock moves at most ten years in one call"


# --- the blueprint ---------------------------------------------------------------------

class DueAt:
    def __init__(self, name, clock, dues):
        self.name, self.clock, self.dues, self.ran = name, clock, list(dues), []

    def next_due(self):
        return min(self.dues) if self.dues else None

    def run_due(self, now):
        self.ran += [(d, self.clock.now()) for d in self.dues if d <= now]
        self.dues = [d for d in self.dues if d > now]


@pytest.fixture
def client(timeline):
    app = Flask("sim-api-test")
    install_error_handlers(app)
    app.register_blueprint(sim_clock_blueprint(timeline))
    return app.test_client()


def test_get_clock(client):
    reply = client.get("/_sim/clock")
    assert reply.status_code == 200
    assert reply.get_json() == {"now": "2025-01-06T08:00:00+00:00"}


def test_advance_returns_the_new_now_and_runs_due_work(client, clock, timeline):
    work = DueAt("w", clock, [START + timedelta(hours=1), START + timedelta(hours=3)])
    timeline.register(work)

    reply = client.post("/_sim/clock/advance", json={"hours": 2, "minutes": 30})

    assert reply.status_code == 200
    assert reply.get_json() == {"now": "2025-01-06T10:30:00+00:00"}
    assert clock.now() == START + timedelta(hours=2, minutes=30)
    assert work.ran == [(START + timedelta(hours=1), START + timedelta(hours=1))]
    assert client.get("/_sim/clock").get_json() == {"now": "2025-01-06T10:30:00+00:00"}


def test_advance_across_days(client):
    reply = client.post("/_sim/clock/advance", json={"days": 3})
    assert reply.get_json() == {"now": "2025-01-09T08:00:00+00:00"}


@pytest.mark.parametrize("data, message", [
    ("{days: 1", body_not_json("Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")),
    ("not json", body_not_json("Expecting value: line 1 column 1 (char 0)")),
    ("[1, 2]", BODY_NOT_OBJECT),
    ("null", BODY_NOT_OBJECT),
    ('{"weeks": 1}', f"unknown field(s) weeks; {UNITS}"),
    ('{"days": -1}', "days: the clock only moves forward, so it must not be negative"),
    ('{"days": "1"}', "days: must be a number"),
    ('{"days": true}', "days: must be a number"),
    ('{"days": 99999999999}', "the clock moves at most ten years in one call"),
    ("", "say how far to move the clock with any of: days, hours, minutes, seconds"),
    ("{}", "say how far to move the clock with any of: days, hours, minutes, seconds"),
])
def test_advance_rejects_bad_bodies_with_a_json_message(client, clock, data, message):
    reply = client.post("/_sim/clock/advance", data=data, content_type="application/json")
    assert reply.status_code == 400
    assert reply.is_json
    assert reply.get_json() == {"message": message}
    assert clock.now() == START


@pytest.mark.parametrize("data, constant", [('{"days": NaN}', "NaN"), ('{"hours": Infinity}', "Infinity"),
                                            ('{"days": -Infinity}', "-Infinity")])
def test_advance_rejects_non_finite_json_numbers_with_a_400(client, clock, data, constant):
    """Python's JSON parser (which Flask uses) accepts NaN and Infinity: they must be a 400, not a 500."""
    reply = client.post("/_sim/clock/advance", data=data, content_type="application/json")
    assert reply.status_code == 400
    assert reply.get_json()["message"] == body_not_json(f"{constant} is not a JSON value")
    assert clock.now() == START


def test_settle_runs_due_now_work_and_reports_zero_pending(client, clock, timeline):
    work = DueAt("w", clock, [START, START + timedelta(minutes=1)])
    timeline.register(work)

    reply = client.post("/_sim/settle")

    assert reply.status_code == 200
    assert reply.get_json() == {"pending": 0}
    assert work.ran == [(START, START)]
    assert clock.now() == START


def test_wrong_method_is_a_json_error(client):
    reply = client.get("/_sim/clock/advance")
    assert reply.status_code == 405
    assert reply.is_json and "message" in reply.get_json()
