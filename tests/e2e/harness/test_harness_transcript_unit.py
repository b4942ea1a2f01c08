"""Unit tests of the transcript: one readable line per message, masked national ids, never answer data.
(Fast; they start nothing.)"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from harness.transcript import Transcript
from service_kit.http import Exchange

AT = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
EPROM, PROXY, REG_A = "http://127.0.0.1:5001", "http://127.0.0.1:5002", "http://127.0.0.1:5003"
RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PATIENT = "26723916517"  # synthetic (month + 65)
REG_ORDER = "89ba3d19-1111-4111-8111-111111111111"
EPROM_ORDER = "e81d11c5-2222-4222-8222-222222222222"


def transcript() -> Transcript:
    return Transcript({EPROM: "eprom", PROXY: "proxy", REG_A: "registry-a"}, {RAND_12: "RAND-12"})


def order_exchange(status=200, answer=None, **body) -> Exchange:
    request = {"formId": RAND_12, "nationalId": PATIENT, "expiryDate": "2025-02-01", **body}
    return Exchange(AT, "whatever", "POST", f"{PROXY}/api/v2/formorder", request, status=status,
                    response_body=answer if answer is not None else {**request, "id": REG_ORDER})


def callback(url_base=REG_A, **body) -> Exchange:
    return Exchange(AT, "proxy", "PUT", f"{url_base}/api/PromsFormOrder", {"apiKey": "k", "formOrderId": REG_ORDER, **body},
                    status=200, response_body={"success": True})


def only_line(t: Transcript) -> str:
    [line] = t.lines()
    return line


def test_an_order_line_names_time_sender_receiver_form_masked_patient_order_and_result():
    t = transcript()
    t.record(order_exchange(), "registry-a")
    line = only_line(t)
    assert line.startswith("2025-01-06 08:00:00Z")
    assert re.search(r"registry-a → proxy\s+POST formorder RAND-12 patient 267239\*{5}\s+order 89ba3d19\s+200$", line), line
    assert PATIENT not in line


def test_the_sender_is_the_name_the_harness_tapped_it_under():
    t = transcript()
    t.tap_for("registry-a")(order_exchange())
    assert "registry-a → proxy" in only_line(t)


def test_status_callbacks_show_status_and_channel_by_name_whatever_the_wire_used():
    for channel in (1, "Helsenorge", "1"):
        t = transcript()
        t.record(callback(formOrderStatus="Ordered", formOrderStatusErrorCode="None", notificationChannel=channel))
        assert re.search(r"proxy → registry-a\s+PUT PromsFormOrder Ordered \(Helsenorge\)\s+order 89ba3d19\s+200 success$",
                         only_line(t))
    t = transcript()
    t.record(callback(formOrderStatus=3, formOrderStatusErrorCode=1, notificationChannel=0))
    assert "PUT PromsFormOrder Error PatientUnreachable (None)" in only_line(t)


def test_a_returned_form_shows_its_status_but_never_its_answers_or_ids_inside():
    t = transcript()
    t.record(callback(formOrderStatus="Completed", formData='{"secret": "answer", "fnr": "26723916517"}',
                      filledOutBy={"filledOutByActNationalId": PATIENT, "filledOutByActType": "SegSelv"}))
    line = only_line(t)
    assert re.search(r"PUT PromsFormOrder Completed\s+order 89ba3d19\s+200 success$", line), line
    assert "secret" not in line and "answer" not in line and PATIENT not in line


def test_refusals_failures_and_silence_are_shown():
    t = transcript()
    t.record(order_exchange(status=400, answer={"message": "The ordered form is not Published"}), "registry-a")
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/PromsFormOrder", {"formOrderStatus": "Ordered"}, status=500,
                      response_body={"success": False, "message": "simulated failure (failNext)"}), "proxy")
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/PromsFormOrder", {"formOrderStatus": "Ordered"}, status=200,
                      response_body={"success": False}), "proxy")
    t.record(Exchange(AT, "proxy", "PUT", "http://10.0.0.9:81/api/PromsFormOrder", {"formOrderStatus": "Expired"},
                      error="ConnectionError: refused"), "proxy")
    refused, failed, declined, silent = t.lines()
    assert refused.endswith("400 'The ordered form is not Published'")
    assert failed.endswith("500 success=false 'simulated failure (failNext)'")
    assert declined.endswith("200 success=false")
    assert "proxy → 10.0.0.9:81" in silent and silent.endswith("no answer (ConnectionError)")


def test_the_zero_id_and_ePROX_directives_are_visible():
    t = transcript()
    zero = "00000000-0000-0000-0000-000000000000"
    t.record(order_exchange(answer={"id": zero}, metadata='{"CREATE_NEW_ORDER": false, "age": 76}'), "registry-a")
    line = only_line(t)
    assert "[CREATE_NEW_ORDER=false]" in line and "age" not in line
    assert "zero id: no order" in line


def test_messages_to_citizens_and_documents():
    t = transcript()
    t.record(Exchange(AT, "registry-a", "POST", f"{PROXY}/api/v2/messagetocitizen", {"nationalId": PATIENT},
                      status=200, response_body={"messageToCitizenId": EPROM_ORDER, "notificationChannel": 2}))
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/MessageToCitizen",
                      {"messageToCitizenId": EPROM_ORDER, "notificationChannel": 2, "sentStatus": 0},
                      status=200, response_body={"success": True}))
    t.record(Exchange(AT, "registry-a", "GET", f"{PROXY}/api/ExternalDocument/{EPROM_ORDER}", None, status=200,
                      response_body="%PDF"))
    sent, status, document = t.lines()
    assert re.search(r"POST messagetocitizen\s+message e81d11c5\s+200$", sent)
    assert re.search(r"PUT MessageToCitizen Sent \(DigitalMailbox\)\s+message e81d11c5\s+200 success$", status)
    assert re.search(r"GET ExternalDocument\s+document e81d11c5\s+200$", document)
    assert PATIENT not in "\n".join(t.lines())


def test_lines_come_in_the_order_messages_were_sent_not_finished():
    t = transcript()
    outer = order_exchange()  # sent first (lower seq) ...
    inner = Exchange(AT, "proxy", "POST", f"{EPROM}/api/v2/formorder", {"formId": RAND_12, "nationalId": PATIENT},
                     status=200, response_body={"id": EPROM_ORDER})
    t.record(inner, "proxy")  # ... but the nested call finishes (and reaches the tap) first
    t.record(outer, "registry-a")
    assert [line.split()[2] for line in t.lines()] == ["registry-a", "proxy"]
    assert t.exchanges() == [outer, inner]


def test_lines_since_a_mark_and_live_listeners():
    t = transcript()
    heard = []
    t.subscribe(heard.append)
    t.record(order_exchange(), "registry-a")
    mark = len(t)
    t.record(callback(formOrderStatus="Expired"), "proxy")
    assert len(t.lines(mark)) == 1 and "Expired" in t.lines(mark)[0]
    assert heard == t.lines()
    assert t.render() == "\n".join(t.lines())


def test_any_stray_eleven_digit_number_is_masked():
    t = transcript()
    t.record(order_exchange(status=400, answer={"message": "nationalId: 26723916517 is odd"}), "registry-a")
    assert PATIENT not in only_line(t) and "267239*****" in only_line(t)
