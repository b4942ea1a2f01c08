"""The fake ePROM's whole documented API over real HTTP (issue 3's features, black-box): every documented
refusal, every distribution rule against patients who can and cannot be reached on each channel, behaviours,
signed PDFs, patient-initiated forms and letters, with callbacks to real receivers on the simulated clock."""
from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import pytest
from pypdf import PdfReader

from eprom_protocol import messages, schemas
from eprom_protocol.messages import ZERO_UUID

pytestmark = pytest.mark.e2e

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PAPER_FORM = "1279fd55-3f22-4a7a-b4c5-84b582f88c54"
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
UNPUBLISHED_FORM = "71dda605-8068-4905-9939-f2c27ba58386"
PDF = b"%PDF-1.4\n% a letter\n"
H_NUMBER = "26473900032"  # month + 40: a well-formed H-nummer


def order_body(**fields) -> dict:
    return {"formId": RAND_12, "nationalId": "26723916517", "expiryDate": "2025-01-20", **fields}


def letter(**fields) -> dict:
    return {"nationalId": "26723916517", "senderInfo": {"organisationName": "Hoftebruddregisteret"},
            "messageInfo": {"title": "Informasjon"},
            "documentCollection": {"documents": [{"title": "Brev", "isMainDocument": True,
                                                  "content": base64.b64encode(PDF).decode()}]}, **fields}


# --- every documented refusal, exactly ---------------------------------------------------------------------
DOCUMENTED = [
    ({"formId": UNPUBLISHED_FORM}, "The ordered form is not Published"),
    ({"formId": "ABCDEF00-2607-49EB-94F0-6AF955BBD79A"},
     "No form with id='ABCDEF00-2607-49EB-94F0-6AF955BBD79A' exists"),
    ({"formId": SIGNED_FORM, "distributionRule": "NoDistribution"},
     "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."),
    ({"mustBeSigned": True, "distributionRule": 2},
     "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."),
    ({"formId": SIGNED_FORM, "onBehalfOfNationalId": "26670271527"},
     "The ordered form needs to be signed. This is not possible when the form is ordered on behalf of someone."),
    ({"distributionRule": "PaperOnly"}, f"Form with id='{RAND_12}' is not paper enabled"),
    ({"distributionRule": 4}, f"Form with id='{RAND_12}' is not paper enabled"),
    ({"metadata": "{age: 76}"}, "JSON in metadata is not valid: Expecting property name enclosed in double quotes: "
                                "line 1 column 2 (char 1)"),
    ({"nationalId": "81234567890"}, "nationalId: FH-nummer is not supported as national ID. The national ID must "
                                    "be either Norsk fødselsnummer or D-nummer."),
    ({"nationalId": H_NUMBER}, "nationalId: H-nummer is not supported as national ID. The national ID must be "
                               "either Norsk fødselsnummer or D-nummer."),
]


@pytest.mark.parametrize("fields, text", DOCUMENTED)
def test_every_documented_formorder_refusal_over_http(live, fields, text):
    response = live.order(**fields)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": text}
    assert live.get("/_sim/orders") == []


def test_api_key_refusals_over_http(live):
    for path in ("/api/v2/formorder", "/api/v2/messagetocitizen"):
        assert live.send(path, order_body(), key=None).status_code == 401
        unknown = live.send(path, order_body(), key="not-a-key")
        assert (unknown.status_code, unknown.json()) == (400, {"message": "apiKey 'not-a-key' doesn't exists"})


def test_the_zero_id_for_someone_a_strict_population_does_not_know(live_strict):
    got = live_strict.ordered()
    assert got["id"] == ZERO_UUID and got["notificationChannel"] == 0
    known = live_strict.patient()["nationalId"]
    assert live_strict.ordered(nationalId=known)["id"] != ZERO_UUID
    live_strict.timeline.settle()
    assert len(live_strict.a.received) == 1 and len(live_strict.get("/_sim/orders")) == 1


# --- every rule against patients who can and cannot be reached on each channel ---------------------------
ONLY = {  # a profile reaching the patient on one channel only
    "Helsenorge": {"digitalMailbox": False, "contactRegister": None, "postalAddress": None},
    "DigitalMailbox": {"helsenorgeConsent": "limited", "contactRegister": None, "postalAddress": None},
    "Unsecure": {"helsenorgeConsent": "none", "digitalMailbox": False, "postalAddress": None},
    "PhysicalMailbox": {"helsenorgeConsent": "none", "digitalMailbox": False, "contactRegister": None},
}
BUT_NOT = {  # the same, with the one fact that keeps that channel away too
    "Helsenorge": ({"age": 15}, {}),
    "DigitalMailbox": ({"age": 17}, {}),
    "Unsecure": ({}, {"contactRegister": {"email": "kari@example.org", "mobile": None, "lastUpdated": "2023-07-05"}}),
    "PhysicalMailbox": ({}, {"postalAddress": None}),
}
PREFERENCE = {
    "Basic": ["Helsenorge", "DigitalMailbox"], "AllowUnsecure": ["Helsenorge", "DigitalMailbox", "Unsecure"],
    "NoDistribution": [], "BasicOrPaper": ["Helsenorge", "DigitalMailbox", "PhysicalMailbox"],
    "AllowUnsecureOrPaper": ["Helsenorge", "DigitalMailbox", "Unsecure", "PhysicalMailbox"],
    "PaperOnly": ["PhysicalMailbox"], "HelsenorgeOnly": ["Helsenorge"], "DigitalMailboxOnly": ["DigitalMailbox"],
    "UnsecureOnly": ["Unsecure"],
}
NUMBER = {"None": 0, "Helsenorge": 1, "DigitalMailbox": 2, "Unsecure": 3, "PhysicalMailbox": 4}


def test_every_rule_picks_the_channel_for_patients_who_can_and_cannot_be_reached_on_each(live):
    expected = {}
    for channel, profile in ONLY.items():
        can = live.patient(age=40, profile=profile)
        extra_body, extra_profile = BUT_NOT[channel]
        cannot = live.patient(**{"age": 40, **extra_body}, profile={**profile, **extra_profile})
        assert can["reachable"] == [channel] and cannot["reachable"] == []
        for rule, preference in PREFERENCE.items():
            for patient, reached in ((can, True), (cannot, False)):
                got = live.ordered(formId=PAPER_FORM, nationalId=patient["nationalId"], distributionRule=rule)
                if rule == "NoDistribution":
                    want = ("Ordered", "None", "None")
                    assert got["singleUseCode"] and got["loginUrl"]
                elif reached and channel in preference:
                    want = ("Ordered", channel, "None")
                else:
                    want = ("Error", "None", "PatientUnreachable")
                assert got["notificationChannel"] == NUMBER[want[1]], (rule, channel, reached)
                expected[got["id"]] = want
    assert len(expected) == 4 * 2 * 9
    assert live.timeline.settle() == 0
    for body in live.a.bodies():
        want = expected.pop(body["formOrderId"])
        got = (body["formOrderStatus"], body["notificationChannel"], body["formOrderStatusErrorCode"])
        assert got == (want[0], NUMBER[want[1]], want[2])
        assert schemas.violations("order-status-callback", body) == []
    assert expected == {}


def test_research_systems_do_not_reach_reserved_patients_on_helsenorge(live):
    nid = live.patient(profile={"reservedAgainstResearch": True})["nationalId"]
    ordinary, research = live.ordered("key-a", nationalId=nid), live.ordered("key-b", nationalId=nid)
    assert (ordinary["notificationChannel"], research["notificationChannel"]) == (1, 2)


# --- behaviours ---------------------------------------------------------------------------------------------
def test_scripted_patients_over_http(live):
    partial = live.patient(answer={"after": "P1D", "partial": True})["nationalId"]
    opener = live.patient(behaviour="opensNeverDelivers", answer={"after": "P2D"})["nationalId"]
    late = live.patient(behaviour="answersAfterExpiry", answer={"after": "P20D"})["nationalId"]
    signer = live.patient(behaviour="cancelsSigningThenSigns", answer={"after": "P3D"})["nationalId"]
    returned_mail = live.patient(behaviour="paperMailReturned")["nationalId"]
    orders = {
        "partial": live.ordered(nationalId=partial)["id"],
        "opener": live.ordered(nationalId=opener)["id"],
        "late": live.ordered(nationalId=late, expiryDate="2025-01-10")["id"],
        "signer": live.ordered(nationalId=signer, formId=SIGNED_FORM)["id"],
        "mail": live.ordered(nationalId=returned_mail, formId=PAPER_FORM, distributionRule="PaperOnly")["id"],
    }
    assert live.post("/_sim/clock/advance", {"days": 40}).status_code == 200
    seen = {name: live.a.bodies(order_id) for name, order_id in orders.items()}
    assert [b["formOrderStatus"] for b in seen["partial"]] == ["Ordered", "Completed"]
    assert seen["partial"][1]["formDataWarnings"]
    assert len(json.loads(seen["partial"][1]["formData"])) + len(seen["partial"][1]["formDataWarnings"]) == 12
    assert [b["formOrderStatus"] for b in seen["opener"]] == ["Ordered", "Expired"]
    assert seen["opener"][1]["formOrderEventLog"][0]["eventType"] == "FormOpened"
    assert [b["formOrderStatus"] for b in seen["late"]] == ["Ordered", "Expired"]
    assert live.get(f"/_sim/orders/{orders['late']}")["refusedAttempts"][0]["at"] == "2025-01-26T08:00:00+00:00"
    assert [e["eventType"] for e in seen["signer"][1]["formOrderEventLog"]][-5:] == [
        "SigningStarted", "SigningCancelled", "SigningStarted", "SigningCompleted", "FormDelivered"]
    assert [b["formOrderStatus"] for b in seen["mail"]] == ["Ordered", "PhysicalMailReturned", "Expired"]
    for bodies in seen.values():
        for body in bodies:
            kind = ("returned-form-callback" if body["formOrderStatus"] in ("Completed", "Expired")
                    else "order-status-callback")
            assert schemas.violations(kind, body) == []


def test_the_returned_form_carries_everything(live):
    nid = live.patient(answer={"after": "PT30M"})["nationalId"]
    got = live.ordered(nationalId=nid, onBehalfOfNationalId="26670271527", dontStoreCompletedFormInPha=True)
    live.timeline.advance(timedelta(hours=1))
    returned = live.a.bodies(got["id"])[1]
    assert returned["filledOutBy"] == {"filledOutByActNationalId": nid, "filledOutByActType": "Foreldrerepresentasjon"}
    log = returned["formOrderEventLog"]
    assert [e["eventType"] for e in log] == ["FormOpened"] + ["QuestionAccessed"] * 12 + ["FormDelivered"]
    assert [e["questionId"] for e in log if e["eventType"] == "QuestionAccessed"] == \
        [f"rand12_{i}" for i in range(1, 13)]
    assert (returned["isPatientInitiated"], returned["patientInitiatedValues"]) == (False, None)
    listed = live.get(f"/_sim/orders/{got['id']}")
    assert (listed["dontStoreCompletedFormInPha"], listed["onBehalfOfNationalId"]) == (True, "26670271527")
    assert listed["formOrderEventLog"] == log


def test_test_mode_orders_send_nothing_over_http(live):
    nid = live.patient(answer={"after": "PT1H"})["nationalId"]
    got = live.ordered(nationalId=nid, testMode=True)
    live.timeline.advance(timedelta(days=2))
    assert live.a.received == [] and live.get(f"/_sim/orders/{got['id']}")["status"] == "Completed"


# --- signed documents -----------------------------------------------------------------------------------------
def test_a_signed_pdf_over_http_only_for_its_ordering_system_and_for_30_days(live):
    nid = live.patient(answer={"after": "P1D"}, name="Kari Nordmann")["nationalId"]
    got = live.ordered(nationalId=nid, formId=SIGNED_FORM)
    live.timeline.advance(timedelta(days=1))
    signed = live.a.bodies(got["id"])[1]["signedFormId"]
    assert signed != ZERO_UUID
    response = live.document(signed)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = reader.pages[0].extract_text()
    assert "Samtykke til registrering i kvalitetsregister" in text and "Kari Nordmann" in text
    other = live.document(signed, key="key-b")
    assert (other.status_code, other.json()) == (404, {"message": f"No signed document with id '{signed}'"})
    live.post("/_sim/clock/advance", {"days": 30})
    assert live.document(signed).status_code == 200
    live.post("/_sim/clock/advance", {"seconds": 1})
    assert live.document(signed).status_code == 404


# --- patient-initiated -----------------------------------------------------------------------------------------
def test_patient_initiated_forms_over_http_go_to_the_forms_owner(live):
    patient = live.patient(initiates=[{"formId": SIGNED_FORM, "after": "P1D"},
                                      {"formId": PAPER_FORM, "after": "P2D", "answer": {"after": "PT5M"}}])
    live.post("/_sim/clock/advance", {"days": 3})
    [to_a] = live.a.bodies()
    [to_b] = live.b.bodies()
    assert to_a["isPatientInitiated"] is True and to_a["apiKey"] == "key-a"
    assert to_a["patientInitiatedValues"]["formId"] == SIGNED_FORM
    assert to_a["patientInitiatedValues"]["nationalId"] == patient["nationalId"]
    assert to_a["patientInitiatedValues"]["orderTimestampUTC"] == "2025-01-07T08:00:00.000000Z"
    assert to_a["timestampUtc"] == "2025-01-07T08:10:00.000000Z" and to_a["signedFormId"] != ZERO_UUID
    assert live.document(to_a["signedFormId"]).status_code == 200
    assert to_b["apiKey"] == "key-b" and to_b["patientInitiatedValues"]["formId"] == PAPER_FORM
    assert to_b["timestampUtc"] == "2025-01-08T08:05:00.000000Z"
    assert all(schemas.violations("returned-form-callback", b) == [] for b in (to_a, to_b))


# --- letters ----------------------------------------------------------------------------------------------------
def test_a_letter_over_http_and_its_status_callback(live):
    response = live.send("/api/v2/messagetocitizen", letter(notificationPriorityList=["DigitalMailbox", 1]))
    assert response.status_code == 200
    got = response.json()
    assert got["notificationChannel"] == 2
    live.timeline.settle()
    [status] = live.a.message_bodies()
    assert status == {"apiKey": "key-a", "messageToCitizenId": got["messageToCitizenId"], "notificationChannel": 2,
                      "sentStatus": "Sent"}
    assert live.a.received[0]["path"] == "/api/MessageToCitizen"
    [delivery] = live.get("/_sim/deliveries", messageToCitizenId=got["messageToCitizenId"])
    assert delivery["acknowledged"] is True and delivery["kind"] == "messageStatus"


def test_letter_refusals_and_faults_over_http(live):
    missing = live.send("/api/v2/messagetocitizen", letter(documentCollection={"documents": []}))
    assert (missing.status_code, missing.json()) == (400, {"message": messages.MAIN_DOCUMENT_MISSING})
    live.post("/_sim/message-faults", {"badGateway": 1, "gatewayTimeout": 1})
    bad = live.send("/api/v2/messagetocitizen", letter())
    slow = live.send("/api/v2/messagetocitizen", letter())
    assert (bad.status_code, bad.json()) == (502, {"message": "Unable to communicate with Helsenorge. No message "
                                                              "sent."})
    assert (slow.status_code, slow.json()) == (504, {"message": "Timeout while waiting for response from Helsenorge"})
    assert live.send("/api/v2/messagetocitizen", letter()).status_code == 200
    live.timeline.settle()
    assert len(live.a.message_bodies()) == 1 and len(live.get("/_sim/messages")) == 1


def test_the_30_mb_limit_over_http(live):
    limit = messages.MAX_MESSAGE_DOCUMENT_BYTES
    exactly = PDF + b"0" * (limit - len(PDF))
    ok = live.send("/api/v2/messagetocitizen", letter(documentCollection={"documents": [
        {"isMainDocument": True, "content": base64.b64encode(exactly).decode()}]}))
    assert ok.status_code == 200, ok.text
    over = live.send("/api/v2/messagetocitizen", letter(documentCollection={"documents": [
        {"isMainDocument": True, "content": base64.b64encode(exactly + b"0").decode()}]}))
    assert (over.status_code, over.json()) == (400, {"message": messages.document_too_large(
        "documentCollection.documents.0", limit + 1)})
    assert len(live.get("/_sim/messages")) == 1
