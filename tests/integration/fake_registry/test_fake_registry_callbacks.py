"""The fake registry's callback endpoints and control API, through the Flask test client."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from eprom_protocol.timefmt import iso
from fake_registry.app import create_app
from fake_registry.config import RegistryConfig
from service_kit.clock import DEFAULT_SIM_START, SimClock
from service_kit.runtime import Runtime
from service_kit.timeline import Timeline

KEY = "registry-a-key"
ORDER_ID = "3f2a9c1e-0000-4000-8000-000000000001"


@pytest.fixture
def timeline():
    return Timeline(SimClock(DEFAULT_SIM_START), pump=False)


@pytest.fixture
def client(timeline):
    app = create_app(RegistryConfig("registry-a", KEY, "http://127.0.0.1:9"), Runtime(timeline.clock, timeline))
    return app.test_client()


def status_callback(**changes):
    body = {"apiKey": KEY, "formOrderId": ORDER_ID, "notificationChannel": 1,
            "timestamp": "2025-01-06T09:00:00.000000", "timestampUtc": "2025-01-06T08:00:00.000000Z",
            "formOrderStatus": "Ordered", "formOrderStatusErrorCode": "None"}
    return {**body, **changes}


def returned_form(**changes):
    body = {"apiKey": KEY, "formOrderId": ORDER_ID, "formData": "{\"q1\": 3}", "formOrderStatus": "Completed",
            "signedFormId": "00000000-0000-0000-0000-000000000000", "timestamp": "2025-01-09T09:00:00.000000",
            "notificationChannel": 1}
    return {**body, **changes}


def message_status(**changes):
    body = {"apiKey": KEY, "messageToCitizenId": ORDER_ID, "notificationChannel": 2, "sentStatus": "Sent"}
    return {**body, **changes}


def test_a_status_callback_is_acknowledged_and_recorded_with_everything_a_test_needs(client):
    reply = client.put("/api/PromsFormOrder", json=status_callback(), headers={"X-Delivery-Id": "d-1"})
    assert reply.status_code == 200
    assert reply.get_json() == {"success": True}
    [entry] = client.get("/_sim/inbox").get_json()
    assert entry["method"] == "PUT"
    assert entry["path"] == "/api/PromsFormOrder"
    assert entry["kind"] == "orderStatus"
    assert entry["schema"] == "order-status-callback"
    assert entry["body"] == status_callback()
    assert entry["headers"]["X-Delivery-Id"] == "d-1"
    assert entry["receivedAt"] == iso(DEFAULT_SIM_START)
    assert entry["acknowledged"] is True
    assert entry["fault"] is None
    assert entry["conforms"] is True and entry["schemaViolations"] == []
    assert entry["apiKeyMatches"] is True
    assert entry["answer"] == {"status": 200, "body": {"success": True}}


def test_each_callback_kind_is_checked_against_its_own_schema(client):
    client.put("/api/PromsFormOrder", json=returned_form())
    client.put("/api/PromsFormOrder", json=returned_form(formOrderStatus=1, formData=None))  # Expired, as a number
    client.put("/api/MessageToCitizen", json=message_status())
    client.put("/api/PromsFormOrder", json=status_callback(formOrderStatus="Error",
                                                           formOrderStatusErrorCode="PatientUnreachable"))
    inbox = client.get("/_sim/inbox").get_json()
    assert [e["kind"] for e in inbox] == ["returnedForm", "returnedForm", "messageStatus", "orderStatus"]
    assert [e["schema"] for e in inbox] == ["returned-form-callback", "returned-form-callback",
                                            "message-status-callback", "order-status-callback"]
    assert all(e["conforms"] for e in inbox), [e["schemaViolations"] for e in inbox]


def test_a_callback_that_breaks_the_schema_or_carries_another_key_is_still_acknowledged_but_flagged(client):
    reply = client.put("/api/PromsFormOrder", json=status_callback(apiKey="registry-b-key", formOrderId="nope",
                                                                   notificationChannel="Pigeon"))
    assert reply.get_json() == {"success": True}
    [entry] = client.get("/_sim/inbox").get_json()
    assert entry["apiKeyMatches"] is False
    assert entry["conforms"] is False
    assert any("formOrderId" in v for v in entry["schemaViolations"])
    assert any("notificationChannel" in v for v in entry["schemaViolations"])


def test_any_json_is_accepted_even_when_it_is_not_an_object(client):
    reply = client.put("/api/PromsFormOrder", json=[1, 2])
    assert reply.status_code == 200
    [entry] = client.get("/_sim/inbox").get_json()
    assert entry["body"] == [1, 2]
    assert entry["bodyIsJson"] is True
    assert entry["conforms"] is False
    assert entry["apiKeyMatches"] is False


def test_a_body_that_is_not_json_is_recorded_and_answered_400_without_using_up_a_fault(client):
    client.post("/_sim/faults", json={"failNext": 1})
    reply = client.put("/api/PromsFormOrder", data=b"formOrderId=1", content_type="text/plain")
    assert reply.status_code == 400
    assert reply.get_json()["success"] is False
    assert reply.get_json()["message"]
    [entry] = client.get("/_sim/inbox").get_json()
    assert entry["body"] == "formOrderId=1"
    assert entry["bodyIsJson"] is False
    assert entry["acknowledged"] is False
    assert entry["conforms"] is False
    assert client.get("/_sim/faults").get_json()["failNext"] == 1


def test_the_inbox_keeps_arrival_order_and_simulated_receive_times(client, timeline):
    client.put("/api/PromsFormOrder", json=status_callback())
    timeline.advance(timedelta(days=3))
    client.put("/api/PromsFormOrder", json=returned_form())
    inbox = client.get("/_sim/inbox").get_json()
    assert [e["seq"] for e in inbox] == [1, 2]
    assert [e["receivedAt"] for e in inbox] == [iso(DEFAULT_SIM_START), iso(DEFAULT_SIM_START + timedelta(days=3))]


def test_the_inbox_can_be_cleared_and_numbering_goes_on(client):
    client.put("/api/PromsFormOrder", json=status_callback())
    client.put("/api/PromsFormOrder", json=status_callback())
    assert client.delete("/_sim/inbox").get_json() == {"cleared": 2}
    assert client.get("/_sim/inbox").get_json() == []
    client.put("/api/PromsFormOrder", json=status_callback())
    assert [e["seq"] for e in client.get("/_sim/inbox").get_json()] == [3]


def test_faults_apply_in_order_500s_then_success_false_then_normal(client):
    reply = client.post("/_sim/faults", json={"failNext": 2, "successFalse": 1})
    assert reply.get_json() == {"failNext": 2, "successFalse": 1, "delaySeconds": 0.0}
    answers = [client.put("/api/PromsFormOrder", json=status_callback()) for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 500, 200, 200]
    assert [a.get_json()["success"] for a in answers] == [False, False, False, True]
    inbox = client.get("/_sim/inbox").get_json()
    assert [e["acknowledged"] for e in inbox] == [False, False, False, True]
    assert [e["fault"] for e in inbox] == ["failNext", "failNext", "successFalse", None]
    assert [e["answer"]["status"] for e in inbox] == [500, 500, 200, 200]
    assert client.get("/_sim/faults").get_json() == {"failNext": 0, "successFalse": 0, "delaySeconds": 0.0}


def test_get_faults_counts_down_and_a_partial_update_keeps_the_other_settings(client):
    client.post("/_sim/faults", json={"failNext": 2, "successFalse": 3})
    client.put("/api/MessageToCitizen", json=message_status())
    assert client.get("/_sim/faults").get_json()["failNext"] == 1
    assert client.post("/_sim/faults", json={"failNext": 0}).get_json() == \
        {"failNext": 0, "successFalse": 3, "delaySeconds": 0.0}
    assert client.post("/_sim/faults").get_json()["successFalse"] == 3  # no body: nothing changes


@pytest.mark.parametrize("body, words", [
    ({"failNext": 1, "sometimes": True}, ["unknown", "sometimes"]),
    ({"failNext": -1}, ["failNext", "negative"]),
    ({"successFalse": "2"}, ["successFalse", "number"]),
    ({"failNext": True}, ["failNext", "number"]),
    ({"failNext": 1.5}, ["failNext", "whole"]),
    ({"delaySeconds": -0.1}, ["delaySeconds", "negative"]),
    ({"delaySeconds": 10_000}, ["delaySeconds", "at most"]),
    ({"failNext": 1e30}, ["failNext", "at most"]),
    ({"successFalse": 1_000_001}, ["successFalse", "at most 1000000"]),
])
def test_bad_fault_settings_are_refused_with_a_400_naming_the_problem(client, body, words):
    reply = client.post("/_sim/faults", json=body)
    assert reply.status_code == 400
    message = reply.get_json()["message"]
    assert all(word in message for word in words), message
    assert client.get("/_sim/faults").get_json() == {"failNext": 0, "successFalse": 0, "delaySeconds": 0.0}


@pytest.mark.parametrize("data", [b"[1]", b"not json"])
def test_fault_settings_must_be_a_json_object(client, data):
    reply = client.post("/_sim/faults", data=data, content_type="application/json")
    assert reply.status_code == 400
    assert "message" in reply.get_json()


def test_a_delay_holds_every_answer_for_real_seconds(client):
    client.post("/_sim/faults", json={"delaySeconds": 0.2, "failNext": 1})
    started = time.monotonic()
    first = client.put("/api/PromsFormOrder", json=status_callback())
    second = client.put("/api/PromsFormOrder", json=status_callback())
    assert time.monotonic() - started >= 0.4
    assert (first.status_code, second.status_code) == (500, 200)


def test_callbacks_are_put_only_and_errors_are_json(client):
    reply = client.post("/api/PromsFormOrder", json=status_callback())
    assert reply.status_code == 405
    assert "message" in reply.get_json()
    assert client.get("/_sim/inbox").get_json() == []


def test_it_serves_the_shared_clock_in_sim_mode(client, timeline):
    assert client.get("/_sim/clock").get_json() == {"now": iso(DEFAULT_SIM_START)}
    assert client.post("/_sim/clock/advance", json={"hours": 2}).get_json() == \
        {"now": iso(DEFAULT_SIM_START + timedelta(hours=2))}
    assert timeline.clock.now() == DEFAULT_SIM_START + timedelta(hours=2)


def test_without_sim_mode_there_is_no_control_api_but_callbacks_still_work(timeline):
    app = create_app(RegistryConfig("r", KEY, "http://127.0.0.1:9"), Runtime(timeline.clock, timeline, sim=False))
    client = app.test_client()
    assert client.put("/api/PromsFormOrder", json=status_callback()).status_code == 200
    assert client.get("/_sim/inbox").status_code == 404
    assert client.get("/_sim/clock").status_code == 404


def test_a_callback_whose_sender_gave_up_during_the_delay_is_not_shown_acknowledged(timeline):
    """The proxy waits 15 s for an answer; with delaySeconds beyond that it gives up and sends the callback
    again. The inbox showed the first attempt acknowledged anyway, and then a second acknowledged copy: a test
    counting acknowledged deliveries saw one delivered twice."""
    from service_kit.http import KeepAliveClient
    from service_kit.server import LiveServer

    server = LiveServer("registry")
    server.mount(create_app(RegistryConfig("registry-a", KEY, "http://127.0.0.1:9"), Runtime(timeline.clock, timeline)))
    server.start()
    try:
        KeepAliveClient(5).request("POST", server.url + "/_sim/faults", {"delaySeconds": 0.6}, {})
        with pytest.raises(TimeoutError):
            KeepAliveClient(0.2).request("PUT", server.url + "/api/PromsFormOrder", status_callback(), {})
        # sent after the first sender gave up, answered after the first answer's delay ran out
        assert KeepAliveClient(5).request("PUT", server.url + "/api/PromsFormOrder", status_callback(), {})[0] == 200
        status, data = KeepAliveClient(5).request("GET", server.url + "/_sim/inbox", None, {})
        inbox = json.loads(data)
        assert [(e["acknowledged"], e["fault"]) for e in inbox] == [(False, "delaySeconds"), (True, None)]
    finally:
        server.stop()


def test_a_callback_in_its_delay_is_not_shown_acknowledged_before_its_answer_goes_out(timeline):
    """The inbox showed it acknowledged from the moment it came: a test that settled once the proxy had given up
    (15 s) and read the inbox before the delay (20 s) ended saw that attempt acknowledged, and then its resend
    too: one delivery seemingly acknowledged twice (found by a helper's hunt)."""
    import threading
    import time

    from service_kit.http import KeepAliveClient
    from service_kit.server import LiveServer

    server = LiveServer("registry")
    server.mount(create_app(RegistryConfig("registry-a", KEY, "http://127.0.0.1:9"), Runtime(timeline.clock, timeline)))
    server.start()
    try:
        KeepAliveClient(5).request("POST", server.url + "/_sim/faults", {"delaySeconds": 3}, {})
        sent = threading.Thread(target=KeepAliveClient(30).request,
                                args=("PUT", server.url + "/api/PromsFormOrder", status_callback(), {}), daemon=True)
        sent.start()

        def inbox() -> list[dict]:
            return json.loads(KeepAliveClient(5).request("GET", server.url + "/_sim/inbox", None, {})[1])

        deadline = time.monotonic() + 10
        while not inbox() and time.monotonic() < deadline:
            time.sleep(0.02)  # sleep-ok: the callback arrives on another thread; the delay is real time on purpose
        [during] = inbox()
        assert (during["answered"], during["acknowledged"]) == (False, False)
        sent.join(timeout=30)
        [after] = inbox()
        assert (after["answered"], after["acknowledged"], after["fault"]) == (True, True, None)
    finally:
        server.stop()
