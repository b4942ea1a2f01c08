"""Patient-initiated forms (the form's owner gets the answer) and signed documents
(GET /api/ExternalDocument/{signedFormId}), through the app."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from pypdf import PdfReader

from eprom_protocol import schemas
from eprom_protocol.messages import ZERO_UUID
from fake_eprom.config import EpromConfig, OrderingSystem
from fake_eprom.forms import default_catalog


def initiated(sim) -> list[dict]:
    return [b for b in sim.bodies() if b["isPatientInitiated"]]


# --- patient-initiated ------------------------------------------------------------------------------------
def test_a_patient_orders_a_form_themself_and_its_owner_gets_the_answer(owned_sim, ids):
    sim = owned_sim
    patient = sim.patient(initiates=[{"formId": ids.SIGNED_FORM, "after": "P2D", "answer": {"after": "PT15M"}}])
    sim.advance(days=2)
    [order] = sim.orders(nationalId=patient["nationalId"])
    assert (order["isPatientInitiated"], order["status"], order["orderingSystem"]) == (True, "Ordered", "eprox")
    assert (order["expiryDate"], order["distributionRule"]) == (None, None)
    assert sim.transport.sent == []  # no status callback: nobody ordered it but the patient
    sim.advance(minutes=15)
    [returned] = sim.bodies()
    assert returned["formOrderId"] == order["id"] and returned["apiKey"] == ids.KEY
    assert returned["isPatientInitiated"] is True
    assert returned["patientInitiatedValues"] == {
        "formId": ids.SIGNED_FORM, "nationalId": patient["nationalId"],
        "orderTimestamp": "2025-01-08T09:00:00.000000", "orderTimestampUTC": "2025-01-08T08:00:00.000000Z"}
    assert returned["formOrderStatus"] == "Completed" and returned["notificationChannel"] == 0
    assert returned["signedFormId"] != ZERO_UUID  # the form must be signed, patient-initiated or not
    assert returned["timestampUtc"] == "2025-01-08T08:15:00.000000Z"
    assert schemas.violations("returned-form-callback", returned) == []
    assert sim.transport.sent[0].url == "http://eprox.test/api/PromsFormOrder"


def test_the_owner_is_the_forms_not_whoever_orders_most(make_sim, ids):
    forms = [replace(f, owner="research-registry") if f.id == ids.PAPER_FORM else f for f in default_catalog()]
    sim = make_sim(forms=forms)
    sim.patient(initiates=[{"formId": ids.PAPER_FORM, "after": "PT1H", "answer": {"formData": {"helse_skala": 70}}}])
    sim.advance(hours=2)
    [returned] = sim.bodies()
    assert returned["apiKey"] == ids.RESEARCH_KEY and returned["notificationChannel"] == "None"  # names, for it
    assert json.loads(returned["formData"]) == {"helse_skala": 70}
    assert sim.transport.sent[0].url == "http://research.test/api/PromsFormOrder"


def test_several_initiated_forms_and_replacing_the_patient_cancels_the_old_plan(owned_sim, ids):
    sim = owned_sim
    first = sim.patient(nationalId=ids.GUIDE_PATIENT,
                        initiates=[{"formId": ids.SIGNED_FORM, "after": "P1D"}, {"formId": ids.PAPER_FORM,
                                                                                 "after": "P1D"}])
    assert len(first["initiates"]) == 2
    sim.advance(days=1, minutes=10)
    assert {b["patientInitiatedValues"]["formId"] for b in initiated(sim)} == {ids.SIGNED_FORM, ids.PAPER_FORM}
    sim.patient(nationalId=ids.GUIDE_PATIENT, initiates=[{"formId": ids.PAPER_FORM, "after": "P3D"}])
    sim.patient(nationalId=ids.GUIDE_PATIENT, initiates=[{"formId": ids.SIGNED_FORM, "after": "P5D"}])
    sim.advance(days=10)
    later = [b["patientInitiatedValues"] for b in initiated(sim)][2:]
    assert [(v["formId"], v["orderTimestampUTC"][:10]) for v in later] == [(ids.SIGNED_FORM, "2025-01-12")]


def test_a_patient_initiated_order_can_be_answered_through_the_control_api(owned_sim, ids):
    sim = owned_sim
    nid = sim.patient(initiates=[{"formId": ids.PAPER_FORM, "after": "PT0S", "answer": {"after": "P1D"}}])
    sim.settle()
    [order] = sim.orders(nationalId=nid["nationalId"])
    assert sim.answer(order["id"], {"formData": {"helse_skala": 10}}).status_code == 200
    sim.advance(days=2)
    [returned] = initiated(sim)  # once: the planned answer was cancelled
    assert json.loads(returned["formData"]) == {"helse_skala": 10}


def test_forms_with_an_unknown_owner_are_refused_at_configuration():
    forms = [replace(f, owner="nobody") for f in default_catalog()]
    with pytest.raises(ValueError, match="its owner 'nobody' is not an ordering system"):
        EpromConfig([OrderingSystem("eprox", "k", "http://x")], forms=forms)


def test_a_refused_patient_changes_nothing(owned_sim, ids):
    response = owned_sim.client.post("/_sim/patients", json={"initiates": [{"formId": ids.RAND_12, "after": "P1D"}]})
    assert response.status_code == 400
    owned_sim.advance(days=5)
    assert owned_sim.client.get("/_sim/patients").get_json() == [] and owned_sim.orders() == []


# --- signed documents ---------------------------------------------------------------------------------------
def signed_order(sim, ids, **fields) -> tuple[dict, str]:
    got = sim.ordered(formId=ids.SIGNED_FORM, **fields)
    sim.settle()
    sim.answer(got["id"], {"formData": {"samtykke_registrering": 1, "samtykke_kontakt": 2,
                                        "samtykke_kommentar": "Jeg vil ha kopi"}})
    sim.settle()
    return got, sim.bodies(got["id"], "Completed")[0]["signedFormId"]


def test_the_signed_pdf_is_served_to_the_ordering_system(sim, ids):
    got, signed = signed_order(sim, ids, signingText="Jeg samtykker")
    response = sim.document(signed)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{signed}.pdf"'
    text = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert "Samtykke til registrering i kvalitetsregister" in text
    assert "Jeg vil ha kopi" in text and "Jeg samtykker" in text
    assert sim.document(signed.upper()).data == response.data
    [listed] = sim.client.get("/_sim/documents").get_json()
    assert listed == {"signedFormId": signed, "orderId": got["id"], "orderingSystem": "eprox",
                      "formId": ids.SIGNED_FORM, "signedAt": "2025-01-06T08:00:00+00:00",
                      "availableUntil": "2025-02-05T08:00:00+00:00"}
    assert sim.orders()[0]["signedFormId"] == signed


def test_for_30_days_and_then_no_more(sim, ids):
    _, signed = signed_order(sim, ids)
    sim.advance(days=30)
    assert sim.document(signed).status_code == 200
    sim.advance(seconds=1)
    gone = sim.document(signed)
    assert gone.status_code == 404 and gone.get_json() == {"message": f"No signed document with id '{signed}'"}


def test_another_ordering_system_gets_the_same_404_as_for_no_document(sim, ids):
    _, signed = signed_order(sim, ids)
    other = sim.document(signed, key=ids.RESEARCH_KEY)
    nothing = sim.document("00000000-0000-4000-8000-000000000000", key=ids.RESEARCH_KEY)
    assert (other.status_code, nothing.status_code) == (404, 404)
    assert other.get_json() == {"message": f"No signed document with id '{signed}'"}
    assert nothing.get_json() == {"message": "No signed document with id '00000000-0000-4000-8000-000000000000'"}
    assert sim.document("not-a-uuid").status_code == 404


def test_document_downloads_need_a_known_key(sim, ids):
    _, signed = signed_order(sim, ids)
    assert sim.client.get(f"/api/ExternalDocument/{signed}").status_code == 401
    unknown = sim.document(signed, key="nope")
    assert (unknown.status_code, unknown.get_json()) == (400, {"message": "apiKey 'nope' doesn't exists"})


def test_unsigned_orders_leave_no_document(sim):
    got = sim.ordered()
    sim.settle()
    sim.answer(got["id"])
    sim.settle()
    assert sim.client.get("/_sim/documents").get_json() == []
    assert sim.bodies(got["id"], "Completed")[0]["signedFormId"] == ZERO_UUID


def test_retention_is_configurable_upwards_only(make_sim, ids):
    sim = make_sim(signed_document_days=90)
    _, signed = signed_order(sim, ids)
    sim.advance(days=60)
    assert sim.document(signed).status_code == 200
    with pytest.raises(ValueError, match="at least 30 days"):
        make_sim(signed_document_days=10)
