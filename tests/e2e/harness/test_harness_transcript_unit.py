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
    assert failed.endswith("500 success=false")  # a callback's answer: no text (see below)
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


def test_an_id_cut_short_is_masked_before_the_cut():
    """The cut came first: 8 characters of an id as a form or order id, 10 at the end of a long message (with
    the check digits, 9 give back the whole id)."""
    t = transcript()
    t.record(order_exchange(formId=PATIENT, answer={"id": PATIENT}), "registry-a")
    message = "x" * 90 + PATIENT + " is not one of the channels"
    t.record(order_exchange(status=400, answer={"message": message}), "registry-a")
    ordered, refused = t.lines()
    assert "POST formorder 267239** patient 267239*****" in ordered and "order 267239**" in ordered, ordered
    assert refused.endswith("x" * 90 + "267239****'…"), refused
    assert PATIENT[:8] not in ordered and PATIENT[6:10] not in refused


def test_an_id_with_a_tab_or_no_break_space_in_a_refusal_is_masked_before_repr_escapes_it():
    t = transcript()
    t.record(order_exchange(status=400, answer={"message": f"{PATIENT[:6]}\t{PATIENT[6:]} and "
                                                           f"{PATIENT[:6]}\u00a0{PATIENT[6:]}"}), "registry-a")
    assert only_line(t).endswith("400 '267239\\t***** and 267239\\xa0*****'"), only_line(t)


def test_what_a_registry_answers_a_callback_is_never_shown_only_its_status_and_flag():
    """A registry may echo what it was sent, answers included; the proxy's and fake ePROM's refusals of orders
    are their own texts and stay."""
    t = transcript()
    echo = 'cannot store formData {"q1": "ANSWERMARKER"}'
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/PromsFormOrder", {"formOrderStatus": "Completed"},
                      status=400, response_body={"success": False, "message": echo}), "proxy")
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/MessageToCitizen/", {"sentStatus": 0},
                      status=500, response_body={"message": echo}), "proxy")
    t.record(Exchange(AT, "proxy", "PUT", f"{REG_A}/api/PromsFormOrder", {"formOrderStatus": "Ordered"},
                      status=200, response_body={"success": "ANSWERMARKER"}), "proxy")
    t.record(order_exchange(status=400, answer={"message": "The ordered form is not Published"}), "registry-a")
    completed, message, odd_flag, refused = t.lines()
    assert completed.endswith("400 success=false"), completed
    assert message.endswith("500"), message
    assert odd_flag.endswith("200 success=(text)"), odd_flag
    assert refused.endswith("400 'The ordered form is not Published'"), refused
    assert "ANSWERMARKER" not in t.render() and "formData" not in t.render()
