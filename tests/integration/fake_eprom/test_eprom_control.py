"""The fake ePROM's control API (SPEC §4): patients, orders, answers, deliveries; clear 400/404/409s."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from eprom_protocol.national_id import Synthetic, age_on, classify
from fake_eprom.forms import default_catalog


NESTED_40: list = [1]
for _ in range(39):
    NESTED_40 = [NESTED_40]


def message(response) -> str:
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"message"}, body
    return body["message"]


# --- patients -------------------------------------------------------------------------
def test_a_patient_without_an_id_gets_a_synthetic_adult_test_id(sim):
    patient = sim.patient(reachable=["Helsenorge"], answer={"after": "P3D"})
    nid = classify(patient["nationalId"])
    assert nid.synthetic is Synthetic.TEST
    assert age_on(nid, date(2025, 1, 6)) == 45  # the default age
    assert patient["birthDate"] == nid.birth_date.isoformat() and patient["age"] == 45
    assert (patient["reachable"], patient["reachableFrom"], patient["answer"], patient["behaviour"]) == \
        (["Helsenorge"], "reachable", {"after": "P3D"}, "answers")
    assert (patient["formData"], patient["reservedAgainstResearch"], patient["initiates"]) == (None, False, [])


def test_synthetic_ids_are_seeded_and_distinct(make_sim):
    def ids(seed):
        s = make_sim(seed=seed)
        return [s.patient()["nationalId"] for _ in range(20)]

    assert ids(4) == ids(4)
    assert ids(4) != ids(5)
    assert len(set(ids(4))) == 20


def test_defaults_reachable_everywhere_and_never_answers(sim, ids):
    patient = sim.patient(nationalId=ids.GUIDE_PATIENT)
    assert patient["reachable"] == ["Helsenorge", "DigitalMailbox", "Unsecure", "PhysicalMailbox"]
    assert patient["reachableFrom"] == "profile"
    assert patient["answer"] is None and patient["behaviour"] == "never"


def test_channels_by_name_or_number_and_durations_normalised(sim):
    patient = sim.patient(reachable=[4, "DigitalMailbox", 3], answer={"after": "PT36H"})
    assert patient["reachable"] == ["DigitalMailbox", "Unsecure", "PhysicalMailbox"]
    assert patient["answer"] == {"after": "P1DT12H"}


def test_posting_a_known_id_replaces_the_patient(sim, ids):
    sim.patient(nationalId=ids.GUIDE_PATIENT, reachable=["Helsenorge"])
    sim.patient(nationalId=ids.GUIDE_PATIENT, reachable=[])
    [listed] = sim.client.get("/_sim/patients").get_json()
    assert (listed["nationalId"], listed["reachable"]) == (ids.GUIDE_PATIENT, [])


@pytest.mark.parametrize("body, text", [
    ({"reachable": "Helsenorge"},
     'reachable: must be a list of channels such as ["Helsenorge", "DigitalMailbox"] ([] = unreachable)'),
    ({"reachable": ["Fax"]}, "reachable: 'Fax' is not a channel; use the names Helsenorge, DigitalMailbox, "
                             "Unsecure, PhysicalMailbox or the numbers 1 to 4"),
    ({"reachable": ["helsenorge"]}, "reachable: 'helsenorge' is not a channel; use the names Helsenorge, "
                                    "DigitalMailbox, Unsecure, PhysicalMailbox or the numbers 1 to 4"),
    ({"reachable": ["Helsenorge", 1.0, 1]}, "reachable: 1 is listed twice"),
    ({"reachable": [0]}, "reachable: None is not a channel; use [] for a patient nobody can reach"),
    ({"reachable": ["None"]}, "reachable: None is not a channel; use [] for a patient nobody can reach"),
    ({"answer": "P3D"}, 'answer: must be an object such as {"after": "P3D"}, or null (never answers)'),
    ({"answer": {"after": "P3D", "when": 1}},
     "answer: unknown field(s) when; an answer has: after, formData, partial, warnings, onPaper, filledOutBy"),
    ({"answer": {}}, "answer.after: is required (an ISO-8601 duration such as 'P3D')"),
    ({"answer": {"after": None}}, "answer.after: must be an ISO-8601 duration string such as 'P3D'"),
    ({"answer": {"after": 3}}, "answer.after: must be an ISO-8601 duration string such as 'P3D'"),
    ({"answer": {"after": "soon"}}, "answer.after: 'soon' is not an ISO-8601 duration such as 'P3D'"),
    ({"answer": {"after": "P1M"}}, "answer.after: 'P1M': use days, hours, minutes or seconds, not years or months"),
    ({"formData": [1, 2]}, "formData: must be a JSON object (question id -> answer) or null"),
    ({"formData": {"a": NESTED_40}}, 
     "formData: nested deeper than 32 levels"),
    ({"nationalId": "123"}, "nationalId: not a valid national ID (it must be exactly 11 digits). The national ID "
                            "must be either Norsk fødselsnummer or D-nummer."),
    ({"nationalId": 26723916517}, "nationalId: not a valid national ID (it must be a string of 11 digits). The "
                                  "national ID must be either Norsk fødselsnummer or D-nummer."),
    ({"nationalId": "81234567890"}, "nationalId: FH-nummer is not supported as national ID. The national ID must "
                                    "be either Norsk fødselsnummer or D-nummer."),
    ({"answer": {"after": "P1D", "filledOutBy": {"nationalId": "80000000000", "actType": "Fullmakt"}}},
     "answer.filledOutBy.nationalId: FH-nummer is not supported as national ID. The national ID must be either "
     "Norsk fødselsnummer or D-nummer."),
    ({"profile": {"representedBy": "26473941634"}}, "profile.representedBy: H-nummer is not supported as national "
                                                    "ID. The national ID must be either Norsk fødselsnummer or "
                                                    "D-nummer."),
    ({"reachable": [True]}, "reachable: true is not a channel; use the names Helsenorge, DigitalMailbox, Unsecure, "
                            "PhysicalMailbox or the numbers 1 to 4"),
    ({"reachable": [None]}, "reachable: null is not a channel; use the names Helsenorge, DigitalMailbox, Unsecure, "
                            "PhysicalMailbox or the numbers 1 to 4"),
    ({"reservedAgainstResearch": "yes"}, "reservedAgainstResearch: must be true or false"),
    ({"reachabel": []}, "unknown field(s) reachabel; a patient has: nationalId, birthDate, age, name, reachable, "
                        "profile, answer, formData, reservedAgainstResearch, behaviour, initiates"),
])
def test_bad_patients_are_refused_clearly(sim, body, text):
    response = sim.client.post("/_sim/patients", json=body)
    assert response.status_code == 400
    assert message(response) == text
    assert sim.client.get("/_sim/patients").get_json() == []


def long_wait(where: str, wait: str, form_id: str) -> dict:
    """A patient body whose wait at `where` is `wait`."""
    if where == "answer.after":
        return {"answer": {"after": wait}}
    if where == "initiates[0].after":
        return {"initiates": [{"formId": form_id, "after": wait}]}
    return {"initiates": [{"formId": form_id, "after": "PT1S", "answer": {"after": wait}}]}


@pytest.mark.parametrize("where, wait", [
    ("answer.after", "P36526D"), ("answer.after", "P5218W"), ("answer.after", "P999999999D"),
    ("answer.after", "PT99999999999999999999H"), ("initiates[0].after", "P99999999D"),
    ("initiates[0].answer.after", "P99999999D"),
])
def test_a_wait_longer_than_100_years_is_refused_and_stores_nothing(owned_sim, ids, where, wait):
    """Such waits were taken and overflowed the calendar when planned: a 500 that still stored the patient
    (initiates), or a crash of the due work when the patient was ordered for."""
    body = {"nationalId": ids.TEST_PERSON, **long_wait(where, wait, ids.SIGNED_FORM)}
    response = owned_sim.client.post("/_sim/patients", json=body)
    assert response.status_code == 400
    assert message(response) == f"{where}: {wait!r} is too long: at most 100 years (P36525D)"
    assert owned_sim.client.get("/_sim/patients").get_json() == []


def test_a_100_year_wait_near_the_end_of_the_calendar_is_planned_without_a_crash(make_sim, ids):
    """The due work adds the wait to the clock; past year 9999 that overflowed and the run failed."""
    forms = [replace(f, owner="eprox") if f.id == ids.SIGNED_FORM else f for f in default_catalog()]
    sim = make_sim(start=datetime(9990, 1, 1, tzinfo=timezone.utc), forms=forms)
    sim.patient(nationalId=ids.TEST_PERSON, answer={"after": "P36525D"},
                initiates=[{"formId": ids.SIGNED_FORM, "after": "PT1H", "answer": {"after": "P36525D"}}])
    got = sim.ordered(nationalId=ids.TEST_PERSON, expiryDate="9999-12-31T23:59:59")
    assert sim.settle() == 0
    sim.advance(hours=1)
    assert [o["status"] for o in sim.orders(nationalId=ids.TEST_PERSON)] == ["Ordered", "Ordered"]
    assert [b["formOrderStatus"] for b in sim.bodies(got["id"])] == ["Ordered"]


def test_a_patient_with_no_body_at_all_is_a_default_patient_as_with_an_empty_object(sim):
    """Every field is optional (SPEC §4); a client that sends no body was refused ('not valid JSON')."""
    bare = sim.client.post("/_sim/patients")
    empty = sim.client.post("/_sim/patients", json={})
    assert (bare.status_code, empty.status_code) == (201, 201)
    assert bare.get_json().keys() == empty.get_json().keys()
    assert bare.get_json()["nationalId"] != empty.get_json()["nationalId"]
    assert len(sim.client.get("/_sim/patients").get_json()) == 2


@pytest.mark.parametrize("raw", ["not json", "[]", "{\"formData\": " + "[" * 5000 + "]" * 5000 + "}"])
def test_patient_bodies_that_are_not_json_objects(sim, raw):
    response = sim.client.post("/_sim/patients", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert message(response)


def test_a_deeply_nested_patient_is_refused_for_its_nesting(sim):
    """As every JSON body (eprom_protocol.json_text.MAX_DEPTH); shallower, formData's own rule speaks."""
    response = sim.client.post("/_sim/patients", data="{\"formData\": " + "[" * 500 + "]" * 500 + "}",
                               content_type="application/json")
    assert response.status_code == 400
    assert message(response) == "The request body is not valid JSON: nested too deeply (at most 64 levels)"
    response = sim.client.post("/_sim/patients", data="{\"formData\": " + "[" * 60 + "]" * 60 + "}",
                               content_type="application/json")
    assert response.status_code == 400
    assert message(response) == "formData: must be a JSON object (question id -> answer) or null"


# --- orders ---------------------------------------------------------------------------
def test_orders_list_and_filters(sim, ids):
    a = sim.ordered()
    b = sim.ordered(formId=ids.SIGNED_FORM)
    c = sim.ordered(nationalId=ids.TEST_PERSON, key=ids.RESEARCH_KEY, expiryDate="2025-02-01T12:00:00Z")
    listed = sim.orders()
    assert [o["id"] for o in listed] == [a["id"], b["id"], c["id"]]
    assert listed[2] == {
        "id": c["id"], "orderingSystem": "research-registry", "formId": ids.RAND_12, "nationalId": ids.TEST_PERSON,
        "status": "Pending", "notificationChannel": None, "preferredChannel": "Helsenorge",
        "orderedAt": "2025-01-06T08:00:00+00:00", "expiryDate": "2025-02-01T12:00:00+00:00",
        "distributionRule": "Basic", "testMode": False, "dontStoreCompletedFormInPha": False, "mustBeSigned": False,
        "onBehalfOfNationalId": None, "isPatientInitiated": False, "singleUseCode": None, "reachedAt": None,
        "finishedAt": None, "mailReturnedAt": None, "signedFormId": None, "scannedPaperId": None,
        "formDataWarnings": None, "filledOutBy": None, "formOrderEventLog": [], "refusedAttempts": []}
    assert [o["id"] for o in sim.orders(nationalId=ids.GUIDE_PATIENT)] == [a["id"], b["id"]]
    assert [o["id"] for o in sim.orders(formId=ids.SIGNED_FORM)] == [b["id"]]
    assert [o["id"] for o in sim.orders(formId=ids.RAND_12.upper(), nationalId=ids.TEST_PERSON)] == [c["id"]]
    assert sim.orders(nationalId="00000000000") == []
    sim.settle()
    assert {o["status"] for o in sim.orders()} == {"Ordered"}
    assert sim.client.get(f"/_sim/orders/{a['id']}").get_json()["notificationChannel"] == "Helsenorge"


def test_unknown_order_is_404_json(sim):
    for response in (sim.client.get("/_sim/orders/nope"), sim.answer("nope"),
                     sim.answer("00000000-0000-4000-8000-000000000000")):
        assert response.status_code == 404
        assert message(response).startswith("no order with id ")


def test_answering_twice_is_a_conflict(sim):
    got = sim.ordered()
    sim.settle()
    first = sim.answer(got["id"])
    assert first.status_code == 200 and first.get_json()["status"] == "Completed"
    second = sim.answer(got["id"])
    assert second.status_code == 409
    assert message(second) == f"order {got['id']} was already answered at 2025-01-06T08:00:00+00:00"


def test_answering_an_order_not_yet_with_the_patient_is_a_conflict(sim):
    got = sim.ordered()
    response = sim.answer(got["id"])
    assert response.status_code == 409
    assert message(response) == (f"order {got['id']} has not reached the patient yet (its status is due at "
                                 "2025-01-06T08:00:00+00:00): settle or advance the clock first")


def test_answering_error_and_expired_orders_is_a_conflict(sim):
    nobody = sim.patient(reachable=[])["nationalId"]
    error = sim.ordered(nationalId=nobody)
    expired = sim.ordered(expiryDate="2025-01-07")
    sim.advance(days=2)
    assert message(sim.answer(error["id"])) == (f"order {error['id']} is in Error (the patient could not be "
                                                "reached), so it cannot be answered")
    assert message(sim.answer(expired["id"])) == (f"order {expired['id']} expired at 2025-01-06T23:00:00+00:00, "
                                                  "so it can no longer be answered")


@pytest.mark.parametrize("body, text", [
    ({"formdata": {}}, "unknown field(s) formdata; an answer may have: formData"),
    ({"formData": "{\"a\": 1}"}, "formData: must be a JSON object (question id -> answer) or null"),
])
def test_bad_answer_bodies(sim, body, text):
    got = sim.ordered()
    sim.settle()
    response = sim.answer(got["id"], body)
    assert response.status_code == 400
    assert message(response) == text
    assert sim.orders()[0]["status"] == "Ordered"


def test_deliveries_list_and_filter(sim):
    a, b = sim.ordered(), sim.ordered()
    sim.settle()
    all_deliveries = sim.deliveries()
    assert [d["orderId"] for d in all_deliveries] == [a["id"], b["id"]]
    assert set(all_deliveries[0]) == {"id", "orderId", "messageToCitizenId", "orderingSystem", "kind",
                                      "formOrderStatus", "sentStatus", "attempt", "at", "url", "status",
                                      "acknowledged", "error", "nextAttemptAt"}
    assert (all_deliveries[0]["messageToCitizenId"], all_deliveries[0]["sentStatus"]) == (None, None)
    assert [d["orderId"] for d in sim.deliveries(orderId=b["id"])] == [b["id"]]


def test_forms_and_clock_are_served(sim, ids):
    forms = sim.client.get("/_sim/forms").get_json()
    assert forms[0] == {"id": ids.RAND_12, "name": "RAND-12", "published": True, "paperEnabled": False,
                        "mustBeSigned": False}
    assert sim.client.get("/_sim/clock").get_json() == {"now": "2025-01-06T08:00:00+00:00"}
    moved = sim.client.post("/_sim/clock/advance", json={"days": 1})
    assert moved.get_json() == {"now": "2025-01-07T08:00:00+00:00"}


def test_no_control_api_outside_sim_mode(make_sim):
    production_like = make_sim(sim=False)
    assert production_like.client.get("/_sim/orders").status_code == 404
    assert production_like.client.get("/_sim/clock").status_code == 404
    assert production_like.order().status_code == 200


@pytest.mark.parametrize("start, born", [(datetime(1880, 6, 1, tzinfo=timezone.utc), 1835),
                                         (datetime(2090, 6, 1, tzinfo=timezone.utc), 2045)])
def test_a_default_patient_no_national_id_can_tell_is_refused_not_a_500(make_sim, start, born):
    """With the clock far from today, the default patient's birth year had no national id: a KeyError or a
    ValueError, a 500 (found by a helper's hunt)."""
    sim = make_sim(start=start)
    response = sim.client.post("/_sim/patients", json={})
    assert response.status_code == 400
    assert message(response) == (f"(no nationalId, birthDate or age) the default patient, 45 years old on "
                                 f"{start.date().isoformat()}, was born about {born}; national ids tell births from "
                                 "1854 to 2039 only (start the clock nearer today)")
    aged = sim.client.post("/_sim/patients", json={"age": 30})
    assert message(aged) == (f"age: someone 30 years old on {start.date().isoformat()}, was born about "
                             f"{start.year - 30}; national ids tell births from 1854 to 2039 only (start the clock "
                             "nearer today)")
    assert sim.client.get("/_sim/patients").get_json() == []
