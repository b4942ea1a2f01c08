"""The fake ePROM over real HTTP: orders in, callbacks out to real receivers, on the simulated clock."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from eprom_protocol import schemas

pytestmark = pytest.mark.e2e


def test_status_callback_goes_to_the_ordering_system_after_settle(live):
    got = live.ordered()
    assert live.a.received == []  # the pump is off: nothing moves until the test says so
    assert live.timeline.settle() == 0
    [received] = live.a.received
    assert received["method"] == "PUT" and received["path"] == "/api/PromsFormOrder"
    body = received["body"]
    assert body["apiKey"] == "key-a" and body["formOrderId"] == got["id"]
    assert (body["formOrderStatus"], body["formOrderStatusErrorCode"], body["notificationChannel"]) == \
        ("Ordered", "None", 1)
    assert schemas.violations("order-status-callback", body) == []
    assert live.b.received == []
    [delivery] = live.get("/_sim/deliveries")
    assert (delivery["orderId"], delivery["status"], delivery["acknowledged"]) == (got["id"], 200, True)
    assert [e.url for e in live.exchanges] == [f"{live.a.url}/api/PromsFormOrder"]  # the tap saw it


def test_a_scripted_patient_answers_after_the_clock_moves(live):
    patient = live.post("/_sim/patients", {"reachable": ["DigitalMailbox"], "answer": {"after": "P3D"}}).json()
    got = live.ordered(nationalId=patient["nationalId"])
    assert live.post("/_sim/settle").json() == {"pending": 0}
    assert len(live.a.bodies(got["id"])) == 1
    assert live.post("/_sim/clock/advance", {"days": 3}).json() == {"now": "2025-01-09T08:00:00+00:00"}
    status, returned = live.a.bodies(got["id"])
    assert returned["formOrderStatus"] == "Completed" and returned["apiKey"] == "key-a"
    assert returned["notificationChannel"] == 2
    assert returned["timestampUtc"] == "2025-01-09T08:00:00.000000Z"
    assert len(json.loads(returned["formData"])) == 12
    assert schemas.violations("returned-form-callback", returned) == []
    [listed] = live.get("/_sim/orders", nationalId=patient["nationalId"])
    assert listed["status"] == "Completed" and listed["notificationChannel"] == "DigitalMailbox"


def test_each_ordering_system_gets_its_own_callbacks_key_and_channel_format(live):
    for_a = live.ordered("key-a")
    for_b = live.ordered("key-b", distributionRule="AllowUnsecure")
    live.timeline.settle()
    assert [b["formOrderId"] for b in live.a.bodies()] == [for_a["id"]]
    assert [b["formOrderId"] for b in live.b.bodies()] == [for_b["id"]]
    assert live.a.bodies()[0]["apiKey"] == "key-a" and live.a.bodies()[0]["notificationChannel"] == 1
    assert live.b.bodies()[0]["apiKey"] == "key-b" and live.b.bodies()[0]["notificationChannel"] == "Helsenorge"


def test_answer_now_and_expiry_through_the_control_api(live):
    answered = live.ordered(expiryDate="2025-01-10")
    left = live.ordered(expiryDate="2025-01-10")
    live.timeline.settle()
    response = live.post(f"/_sim/orders/{answered['id']}/answer", {"formData": {"rand12_1": 2}})
    assert response.status_code == 200 and response.json()["status"] == "Completed"
    live.timeline.settle()
    assert json.loads(live.a.bodies(answered["id"])[1]["formData"]) == {"rand12_1": 2}
    live.timeline.advance(timedelta(days=5))
    assert [b["formOrderStatus"] for b in live.a.bodies(left["id"])] == ["Ordered", "Expired"]
    assert [b["formOrderStatus"] for b in live.a.bodies(answered["id"])] == ["Ordered", "Completed"]
    conflict = live.post(f"/_sim/orders/{left['id']}/answer")
    assert conflict.status_code == 409 and "expired" in conflict.json()["message"]


def test_receiver_faults_are_retried_on_the_simulated_clock(live):
    live.a.faults = [500, "false"]
    got = live.ordered()
    live.timeline.settle()
    assert [r["reply"] for r in live.a.received] == [500]
    live.timeline.advance(timedelta(minutes=1))
    assert [r["reply"] for r in live.a.received] == [500, "false"]
    live.timeline.advance(timedelta(minutes=4, seconds=59))
    assert len(live.a.received) == 2
    live.timeline.advance(timedelta(seconds=1))
    assert [r["reply"] for r in live.a.received] == [500, "false", "ok"]
    assert all(r["body"] == live.a.received[0]["body"] for r in live.a.received)
    deliveries = live.get("/_sim/deliveries", orderId=got["id"])
    assert [(d["attempt"], d["status"], d["acknowledged"]) for d in deliveries] == \
        [(1, 500, False), (2, 200, False), (3, 200, True)]


def test_an_ordering_system_nobody_answers_for_is_retried_then_given_up(live):
    got = live.ordered("key-gone")
    live.timeline.advance(timedelta(days=10))
    deliveries = live.get("/_sim/deliveries", orderId=got["id"])
    assert len(deliveries) == 10
    assert all(d["status"] is None and d["error"] and not d["acknowledged"] for d in deliveries)
    assert deliveries[-1]["nextAttemptAt"] is None


def test_validation_errors_over_http(live):
    response = live.order(nationalId="26723916518")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert "check digits" in response.json()["message"]
    assert live.order("unknown").json() == {"message": "apiKey 'unknown' doesn't exists"}
    live.timeline.settle()
    assert live.a.received == [] and live.get("/_sim/orders") == []


def test_with_the_pump_on_callbacks_flow_without_anyone_moving_the_clock(live_pumped):
    got = live_pumped.ordered()
    live_pumped.timeline.settle()  # waits for the pump's run, if any, then runs what is still due
    [body] = live_pumped.a.bodies(got["id"])
    assert body["formOrderStatus"] == "Ordered"
    assert live_pumped.clock.now().isoformat() == "2025-01-06T08:00:00+00:00"
