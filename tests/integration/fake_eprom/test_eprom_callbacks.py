"""What ePROM PUTs to the ordering system and when (SPEC §2, DESIGN.md "Time"): status, answers, expiry,
retries, order per order, testMode, the channel format and the response gate."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from eprom_protocol import schemas
from eprom_protocol.messages import ZERO_UUID


def schema_ok(body: dict) -> bool:
    kind = "order-status-callback" if body["formOrderStatus"] in ("Ordered", "Error") else "returned-form-callback"
    return schemas.violations(kind, body) == []


def test_status_callback(sim, ids):
    got = sim.ordered()
    assert sim.transport.sent == []  # nothing goes before the timeline runs it (pump off)
    assert sim.settle() == 0
    [exchange] = sim.transport.sent
    assert exchange.method == "PUT"
    assert exchange.url == "http://eprox.test/api/PromsFormOrder"
    assert exchange.request_body == {
        "apiKey": ids.KEY,
        "formOrderId": got["id"],
        "notificationChannel": 1,
        "timestamp": "2025-01-06T09:00:00.000000",  # Oslo time, no offset
        "timestampUtc": "2025-01-06T08:00:00.000000Z",
        "formOrderStatus": "Ordered",
        "formOrderStatusErrorCode": "None",
    }
    assert schema_ok(exchange.request_body)


def test_unreachable_patient_gets_error_and_never_expires_or_answers(sim):
    nid = sim.patient(reachable=[], answer={"after": "PT1H"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.settle()
    [body] = sim.bodies(got["id"])
    assert (body["formOrderStatus"], body["formOrderStatusErrorCode"], body["notificationChannel"]) == \
        ("Error", "PatientUnreachable", 0)
    assert schema_ok(body)
    sim.advance(days=60)
    assert len(sim.bodies(got["id"])) == 1
    assert sim.answer(got["id"]).status_code == 409


def test_no_distribution_is_ordered_with_no_channel(sim):
    got = sim.ordered(distributionRule="NoDistribution")
    sim.settle()
    [body] = sim.bodies(got["id"])
    assert (body["formOrderStatus"], body["notificationChannel"], body["formOrderStatusErrorCode"]) == \
        ("Ordered", 0, "None")


def test_returned_form_when_the_patient_answers_on_their_own(sim, ids):
    nid = sim.patient(reachable=["DigitalMailbox"], answer={"after": "P3D"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.settle()
    sim.advance(days=2, hours=23, minutes=59)
    assert len(sim.bodies(got["id"])) == 1  # not yet
    sim.advance(minutes=1)
    status, returned = sim.bodies(got["id"])
    assert returned["apiKey"] == ids.KEY and returned["formOrderId"] == got["id"]
    assert returned["formOrderStatus"] == "Completed"
    assert returned["timestampUtc"] == "2025-01-09T08:00:00.000000Z"
    assert returned["timestamp"] == "2025-01-09T09:00:00.000000"
    assert returned["notificationChannel"] == 2
    assert returned["signedFormId"] == ZERO_UUID
    assert returned["scannedPaperId"] is None
    assert returned["isPatientInitiated"] is False
    assert returned["formDataWarnings"] == []
    assert returned["filledOutBy"] == {"filledOutByActNationalId": None, "filledOutByActType": "SegSelv"}
    log = returned["formOrderEventLog"]
    assert [e["eventType"] for e in log] == ["FormOpened"] + ["QuestionAccessed"] * 12 + ["FormDelivered"]
    assert [e["questionId"] for e in log[1:-1]] == [f"rand12_{i}" for i in range(1, 13)]
    assert log[0]["questionId"] is None and log[-1]["questionId"] is None
    assert (log[0]["timestampUtc"], log[-1]["timestampUtc"]) == \
        ("2025-01-09T07:50:00.000000Z", "2025-01-09T08:00:00.000000Z")
    stamps = [e["timestampUtc"] for e in log]
    assert stamps == sorted(stamps) and len(set(stamps[1:-1])) == 12  # one after another, in the form's order
    answers = json.loads(returned["formData"])
    assert set(answers) == {f"rand12_{i}" for i in range(1, 13)}
    assert schema_ok(returned)
    assert sim.orders()[0]["status"] == "Completed"


def test_a_form_that_must_be_signed_comes_back_signed(sim, ids):
    nid = sim.patient(answer={"after": "PT5M"})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.SIGNED_FORM)
    sim.advance(hours=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["signedFormId"] != ZERO_UUID
    assert [e["eventType"] for e in returned["formOrderEventLog"]] == \
        ["FormOpened"] + ["QuestionAccessed"] * 3 + ["SigningStarted", "SigningCompleted", "FormDelivered"]
    # the patient opened it no earlier than it reached them
    assert returned["formOrderEventLog"][0]["timestampUtc"] == "2025-01-06T08:00:00.000000Z"


def test_request_demanding_signature_is_signed_too(sim):
    got = sim.ordered(mustBeSigned=True)
    sim.settle()
    sim.answer(got["id"])
    sim.settle()
    assert sim.bodies(got["id"], "Completed")[0]["signedFormId"] != ZERO_UUID


def test_paper_answers_carry_a_scanned_paper_id(sim, ids):
    got = sim.ordered(formId=ids.PAPER_FORM, distributionRule="PaperOnly")
    sim.settle()
    assert sim.answer(got["id"]).status_code == 200
    sim.settle()
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 4
    assert returned["scannedPaperId"]


def test_on_behalf_of_a_child_is_filled_out_by_the_parent(sim, ids):
    got = sim.ordered(onBehalfOfNationalId=ids.TEST_PERSON)
    sim.settle()
    sim.answer(got["id"])
    sim.settle()
    assert sim.bodies(got["id"], "Completed")[0]["filledOutBy"] == {
        "filledOutByActNationalId": ids.GUIDE_PATIENT, "filledOutByActType": "Foreldrerepresentasjon"}


def test_expired_when_nobody_answers_before_the_expiry_date(sim):
    got = sim.ordered(expiryDate="2025-01-20")  # 00:00 Oslo time = 23:00 UTC the day before
    sim.advance(days=13, hours=14, minutes=59)
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered"]
    sim.advance(minutes=1)
    status, expired = sim.bodies(got["id"])
    assert expired["formOrderStatus"] == "Expired"
    assert expired["formData"] is None and expired["signedFormId"] == ZERO_UUID
    assert expired["timestampUtc"] == "2025-01-19T23:00:00.000000Z"
    assert expired["notificationChannel"] == 1
    assert schema_ok(expired)
    assert sim.answer(got["id"]).status_code == 409
    sim.advance(days=100)
    assert len(sim.bodies(got["id"])) == 2


def test_an_answer_planned_after_the_expiry_never_comes(sim):
    nid = sim.patient(answer={"after": "P10D"})["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-10")
    sim.advance(days=30)
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered", "Expired"]


def test_an_answer_cancels_the_expiry(sim):
    got = sim.ordered(expiryDate="2025-01-10")
    sim.settle()
    sim.answer(got["id"])
    sim.advance(days=30)
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered", "Completed"]


def test_test_mode_orders_get_no_callbacks_at_all(sim):
    nid = sim.patient(answer={"after": "P1D"})["nationalId"]
    answered = sim.ordered(nationalId=nid, testMode=True)
    expires = sim.ordered(testMode=True, expiryDate="2025-01-08")
    answered_by_hand = sim.ordered(testMode=True)
    sim.settle()
    assert sim.answer(answered_by_hand["id"]).status_code == 200
    sim.advance(days=5)
    assert sim.transport.sent == []
    assert sim.deliveries() == []
    statuses = {o["id"]: o["status"] for o in sim.orders()}
    assert statuses == {answered["id"]: "Completed", expires["id"]: "Expired", answered_by_hand["id"]: "Completed"}


def test_channel_as_a_name_for_systems_that_want_names(sim, ids):
    got = sim.ordered(key=ids.RESEARCH_KEY)
    sim.settle()
    sim.answer(got["id"])
    sim.settle()
    status, returned = sim.bodies(got["id"])
    assert status["notificationChannel"] == "Helsenorge" and returned["notificationChannel"] == "Helsenorge"
    assert status["apiKey"] == returned["apiKey"] == ids.RESEARCH_KEY
    assert sim.transport.sent[0].url == "http://research.test/api/PromsFormOrder"
    assert schema_ok(status) and schema_ok(returned)


def test_status_delay_and_answer_after_counted_from_the_status(make_sim):
    sim = make_sim(status_delay=timedelta(hours=2))
    nid = sim.patient(answer={"after": "P1D"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.settle()
    assert sim.transport.sent == []
    assert sim.orders()[0]["status"] == "Pending"
    assert sim.answer(got["id"]).status_code == 409  # it has not reached the patient yet
    sim.advance(hours=2)
    [status] = sim.bodies(got["id"])
    assert sim.transport.sent[0].at.isoformat() == "2025-01-06T10:00:00+00:00"
    assert status["timestampUtc"] == "2025-01-06T08:00:00.000000Z"  # when the order was made
    sim.advance(days=1)
    assert sim.bodies(got["id"])[1]["timestampUtc"] == "2025-01-07T10:00:00.000000Z"


# --- delivery and retries -------------------------------------------------------------
def test_a_callback_counts_only_when_acknowledged_and_is_retried_with_backoff(sim):
    sim.transport.script = ["down", 500, "false", 204, "ok"]
    got = sim.ordered()
    sim.settle()
    sim.advance(hours=3)
    attempts = sim.deliveries(orderId=got["id"])
    assert [(d["attempt"], d["at"], d["status"], d["acknowledged"]) for d in attempts] == [
        (1, "2025-01-06T08:00:00+00:00", None, False),
        (2, "2025-01-06T08:01:00+00:00", 500, False),
        (3, "2025-01-06T08:06:00+00:00", 200, False),
        (4, "2025-01-06T08:36:00+00:00", 204, False),
        (5, "2025-01-06T10:36:00+00:00", 200, True),
    ]
    assert attempts[0]["error"].startswith("ConnectionError")
    assert attempts[1]["error"] == "HTTP 500"
    assert attempts[2]["error"] == 'answered without {"success": true}'
    assert attempts[0]["nextAttemptAt"] == "2025-01-06T08:01:00+00:00"
    assert attempts[-1]["nextAttemptAt"] is None and attempts[-1]["error"] is None
    assert {d["id"] for d in attempts} == {attempts[0]["id"]}  # one callback, five attempts
    assert all(d["kind"] == "status" and d["orderingSystem"] == "eprox" for d in attempts)
    assert len({json.dumps(e.request_body) for e in sim.transport.sent}) == 1  # the same body each time


def test_gives_up_after_ten_attempts(sim):
    sim.transport.script = [500] * 10
    got = sim.ordered()
    sim.advance(days=10)
    attempts = sim.deliveries(orderId=got["id"])
    assert [d["at"][:16] for d in attempts] == [
        "2025-01-06T08:00", "2025-01-06T08:01", "2025-01-06T08:06", "2025-01-06T08:36", "2025-01-06T10:36",
        "2025-01-06T16:36", "2025-01-07T04:36", "2025-01-08T04:36", "2025-01-09T04:36", "2025-01-10T04:36"]
    assert attempts[-1]["attempt"] == 10 and attempts[-1]["nextAttemptAt"] is None
    sim.advance(days=30)  # the expiry still goes (the stub answers "ok" now), the status is not tried again
    assert [d["kind"] for d in sim.deliveries(orderId=got["id"])][10:] == ["returnedForm"]


def test_per_order_the_status_goes_before_the_returned_form(sim):
    sim.transport.script = [500, 500]
    nid = sim.patient(answer={"after": "PT0S"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.settle()
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered"]  # answered, but waits its turn
    assert sim.orders()[0]["status"] == "Completed"
    sim.advance(minutes=6)
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered", "Ordered", "Ordered", "Completed"]


def test_one_orders_failing_callbacks_do_not_hold_back_anothers(sim):
    sim.transport.script = [500]
    first = sim.ordered()
    second = sim.ordered()
    sim.settle()
    assert [(e.request_body["formOrderId"], e.status) for e in sim.transport.sent] == [
        (first["id"], 500), (second["id"], 200)]


def test_callbacks_run_in_time_order_across_orders(sim):
    early = sim.patient(answer={"after": "PT1H"})["nationalId"]
    late = sim.patient(answer={"after": "PT30M"})["nationalId"]
    a = sim.ordered(nationalId=early)
    sim.advance(minutes=45)
    b = sim.ordered(nationalId=late)
    sim.advance(hours=2)
    sent = [(e.request_body["formOrderId"], e.request_body["formOrderStatus"], e.at.isoformat()[11:16])
            for e in sim.transport.sent]
    assert sent == [(a["id"], "Ordered", "08:00"), (b["id"], "Ordered", "08:45"),
                    (a["id"], "Completed", "09:00"), (b["id"], "Completed", "09:15")]


# --- the response gate ----------------------------------------------------------------
def test_callbacks_wait_for_the_order_response_to_close(sim):
    response = sim.client.post("/api/v2/formorder", headers={"Authorization": "Basic key-eprox"},
                               json={"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a",
                                     "nationalId": "26723916517", "expiryDate": "2025-01-20"})
    assert response.status_code == 200  # not closed yet: the gate is shut

    def close_later():
        sim.transport.log.append("closed")
        response.close()

    timer = threading.Timer(0.2, close_later)
    timer.start()
    try:
        assert sim.settle() == 0
    finally:
        timer.join()
    assert sim.transport.log == ["closed", "sent"]


def test_a_gate_nobody_opens_is_opened_after_a_bounded_wait(sim):
    """settle() waits for the response (the timeline's hold); a run of due work waits only so long."""
    sim.eprom.scheduler.gate_wait = 0.05
    response = sim.client.post("/api/v2/formorder", headers={"Authorization": "Basic key-eprox"},
                               json={"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a",
                                     "nationalId": "26723916517", "expiryDate": "2025-01-20"})
    assert sim.timeline.pending_now() == 2  # the hold and the gated status work
    sim.advance(seconds=0)  # runs what is due now, without waiting for holds
    assert len(sim.transport.sent) == 1
    assert sim.timeline.pending_now() == 1  # the hold, until the response closes
    response.close()
    assert sim.settle() == 0 and len(sim.transport.sent) == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_same_requests_and_seed_give_the_same_messages(make_sim, ids, seed):
    def run():
        sim = make_sim(seed=seed)
        sim.transport.script = [500]
        nid = sim.patient(answer={"after": "P2D"})["nationalId"]
        sim.ordered(nationalId=nid)
        sim.ordered(formId=ids.SIGNED_FORM, nationalId=nid)
        third = sim.ordered(formId=ids.PAPER_FORM, distributionRule="PaperOnly")
        sim.settle()
        sim.answer(third["id"])
        sim.advance(days=20)
        return [(e.at, e.url, e.request_body) for e in sim.transport.sent], sim.deliveries()

    assert run() == run()
