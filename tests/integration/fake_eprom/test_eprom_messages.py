"""Letters to citizens through the app: POST /api/v2/messagetocitizen, the PUT /api/MessageToCitizen status
callback through the same delivery machinery as order callbacks, and scripted delivery-partner faults."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from eprom_protocol import messages, schemas


def test_a_letter_is_answered_at_once_and_its_status_comes_later(sim, ids):
    got = sim.sent()
    assert set(got) == {"messageToCitizenId", "notificationChannel"}
    assert uuid.UUID(got["messageToCitizenId"]).version == 4 and got["notificationChannel"] == 1
    assert schemas.violations("messagetocitizen-response", got) == []
    assert sim.transport.sent == []  # pump off: nothing until the timeline runs
    sim.settle()
    [exchange] = sim.transport.sent
    assert (exchange.method, exchange.url) == ("PUT", "http://eprox.test/api/MessageToCitizen")
    assert exchange.request_body == {"apiKey": ids.KEY, "messageToCitizenId": got["messageToCitizenId"],
                                     "notificationChannel": 1, "sentStatus": "Sent"}
    assert schemas.violations("message-status-callback", exchange.request_body) == []
    [listed] = sim.client.get("/_sim/messages").get_json()
    assert listed["status"] == "Sent" and listed["notificationChannel"] == "Helsenorge"
    assert listed["documents"] == [{"title": "Brev", "fileName": None, "bytes": len(ids.PDF), "isMainDocument": True}]
    assert sim.client.get(f"/_sim/messages/{got['messageToCitizenId']}").get_json() == listed


def test_the_priority_list_decides_the_channel_names_or_numbers(sim, ids):
    nid = sim.patient(profile={"helsenorgeConsent": "none"})["nationalId"]
    first = sim.sent(nationalId=nid, notificationPriorityList=[1, "digitalmailbox", "PhysicalMailbox"])
    second = sim.sent(nationalId=nid, notificationPriorityList=["4"])
    assert (first["notificationChannel"], second["notificationChannel"]) == (2, 4)
    sim.settle()
    assert [b["notificationChannel"] for b in sim.message_bodies()] == [2, 4]


def test_an_unreachable_citizen_gets_channel_0_and_an_error_status(sim):
    nid = sim.patient(reachable=[])["nationalId"]
    got = sim.sent(nationalId=nid)
    assert got["notificationChannel"] == 0
    sim.settle()
    assert sim.message_bodies()[0] == {"apiKey": "key-eprox", "messageToCitizenId": got["messageToCitizenId"],
                                       "notificationChannel": 0, "sentStatus": "Error"}


def test_a_strict_population_does_not_know_the_citizen(make_sim, ids):
    sim = make_sim(population="strict")
    got = sim.sent()
    assert got["notificationChannel"] == 0
    sim.settle()
    assert sim.message_bodies()[0]["sentStatus"] == "Error"


def test_research_reservation_and_channel_format_apply_to_letters(sim, ids):
    nid = sim.patient(reservedAgainstResearch=True)["nationalId"]
    got = sim.sent(key=ids.RESEARCH_KEY, nationalId=nid)
    assert got["notificationChannel"] == 2
    sim.settle()
    assert sim.transport.sent[0].url == "http://research.test/api/MessageToCitizen"
    assert sim.message_bodies()[0]["notificationChannel"] == "DigitalMailbox"


def test_test_mode_letters_get_no_callback(sim):
    sim.sent(testMode=True)
    sim.advance(days=2)
    assert sim.transport.sent == [] and sim.deliveries() == []
    assert sim.client.get("/_sim/messages").get_json()[0]["status"] == "Sent"


def test_message_callbacks_are_retried_like_order_callbacks(sim):
    sim.transport.script = [500, "false"]
    got = sim.sent()
    sim.settle()
    sim.advance(minutes=6)
    deliveries = sim.deliveries(messageToCitizenId=got["messageToCitizenId"])
    assert [(d["attempt"], d["at"][11:16], d["acknowledged"], d["kind"]) for d in deliveries] == [
        (1, "08:00", False, "messageStatus"), (2, "08:01", False, "messageStatus"),
        (3, "08:06", True, "messageStatus")]
    assert deliveries[0]["orderId"] is None and deliveries[0]["sentStatus"] == "Sent"
    assert deliveries[0]["url"] == "http://eprox.test/api/MessageToCitizen"


def test_message_and_order_callbacks_do_not_hold_each_other_back(sim):
    sim.transport.script = [500]
    letter = sim.sent()
    order = sim.ordered()
    sim.settle()
    assert [(e.request_body.get("messageToCitizenId") or e.request_body["formOrderId"], e.status)
            for e in sim.transport.sent] == [(letter["messageToCitizenId"], 500), (order["id"], 200)]


def test_status_delay_applies_to_letters(make_sim):
    sim = make_sim(status_delay=timedelta(hours=1))
    sim.sent()
    sim.settle()
    assert sim.transport.sent == []
    assert sim.client.get("/_sim/messages").get_json()[0]["status"] == "Pending"
    sim.advance(hours=1)
    assert len(sim.transport.sent) == 1


# --- delivery-partner faults ---------------------------------------------------------------------------------
def test_scripted_bad_gateway_and_gateway_timeout(sim):
    assert sim.client.get("/_sim/message-faults").get_json() == {"badGateway": 0, "gatewayTimeout": 0}
    set_faults = sim.client.post("/_sim/message-faults", json={"badGateway": 1, "gatewayTimeout": 2})
    assert set_faults.get_json() == {"badGateway": 1, "gatewayTimeout": 2}
    replies = [sim.letter() for _ in range(4)]
    assert [r.status_code for r in replies] == [502, 504, 504, 200]
    assert replies[0].get_json() == {"message": "Unable to communicate with Helsenorge. No message sent."}
    assert replies[1].get_json() == {"message": "Timeout while waiting for response from Helsenorge"}
    assert sim.client.get("/_sim/message-faults").get_json() == {"badGateway": 0, "gatewayTimeout": 0}
    sim.settle()
    assert len(sim.client.get("/_sim/messages").get_json()) == 1 and len(sim.message_bodies()) == 1


def test_a_fault_does_not_use_up_an_id(make_sim):
    faulty, clean = make_sim(seed=4), make_sim(seed=4)
    faulty.client.post("/_sim/message-faults", json={"gatewayTimeout": 1})
    assert faulty.letter().status_code == 504
    assert faulty.sent()["messageToCitizenId"] == clean.sent()["messageToCitizenId"]


def test_invalid_letters_do_not_use_up_a_fault(sim):
    sim.client.post("/_sim/message-faults", json={"badGateway": 1})
    assert sim.letter(documentCollection=None).get_json() == {"message": messages.MAIN_DOCUMENT_MISSING}
    assert sim.letter().status_code == 502


def test_setting_one_fault_leaves_the_other(sim):
    sim.client.post("/_sim/message-faults", json={"badGateway": 3, "gatewayTimeout": 1})
    assert sim.client.post("/_sim/message-faults", json={"badGateway": 0}).get_json() == \
        {"badGateway": 0, "gatewayTimeout": 1}


@pytest.mark.parametrize("body, text", [
    ({"badGateway": -1}, "badGateway: must be a whole number from 0 to 10000"),
    ({"gatewayTimeout": True}, "gatewayTimeout: must be a whole number from 0 to 10000"),
    ({"gatewayTimeout": 1.5}, "gatewayTimeout: must be a whole number from 0 to 10000"),
    ({"timeout": 1}, "unknown field(s) timeout; use any of: badGateway, gatewayTimeout"),
])
def test_bad_fault_scripts(sim, body, text):
    response = sim.client.post("/_sim/message-faults", json=body)
    assert (response.status_code, response.get_json()) == (400, {"message": text})
    assert sim.client.get("/_sim/message-faults").get_json() == {"badGateway": 0, "gatewayTimeout": 0}


# --- refusals -------------------------------------------------------------------------------------------------
def test_auth_and_documented_errors(sim, letter):
    assert sim.client.post("/api/v2/messagetocitizen", json=letter()).status_code == 401
    unknown = sim.letter(key="nope")
    assert (unknown.status_code, unknown.get_json()) == (400, {"message": "apiKey 'nope' doesn't exists"})
    missing = sim.letter(documentCollection={"documents": []})
    assert (missing.status_code, missing.get_json()) == (400, {"message": "Main document in MessageToCitizen is "
                                                                          "missing"})
    assert sim.client.get("/_sim/messages").get_json() == []


def test_body_limits_64_mb_for_letters_1_mb_for_orders(sim, ids):
    """Refused from the Content-Length, before reading: over HTTP the server would close on a sender still
    sending, so this is checked here."""
    headers = {"Authorization": f"Basic {ids.KEY}", "Content-Type": "application/json"}
    huge = sim.client.post("/api/v2/messagetocitizen", data=b'{"nationalId": "' + b"1" * (64 * 1024 * 1024) + b'"}',
                           headers=headers)
    assert (huge.status_code, huge.get_json()) == (400, {"message": messages.BODY_TOO_LARGE})
    big = sim.client.post("/api/v2/formorder", data=b'{"metadata": "' + b"x" * (1024 * 1024) + b'"}', headers=headers)
    assert (big.status_code, big.get_json()) == (400, {"message": messages.BODY_TOO_LARGE})
    assert sim.client.get("/_sim/messages").get_json() == [] and sim.orders() == []


def test_unknown_message_is_404(sim):
    response = sim.client.get("/_sim/messages/nope")
    assert (response.status_code, response.get_json()) == (404, {"message": "no message with id 'nope'"})
