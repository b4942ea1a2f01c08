"""Scripted patients (the patient contract's behaviours) and profiles, through the app: what ePROM sends and
what the control API shows, on the simulated clock."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from eprom_protocol import schemas
from eprom_protocol.messages import ZERO_UUID
from fake_eprom.forms import default_catalog


def statuses(sim, order_id) -> list[str]:
    return [b["formOrderStatus"] for b in sim.bodies(order_id)]


def kinds(body) -> list[str]:
    return [e["eventType"] for e in body["formOrderEventLog"]]


def schema_ok(body) -> bool:
    kind = "returned-form-callback" if body["formOrderStatus"] in ("Completed", "Expired") else "order-status-callback"
    return schemas.violations(kind, body) == []


# --- answers ----------------------------------------------------------------------------------------
def test_answers_after_the_given_duration(sim):
    nid = sim.patient(answer={"after": "P2DT3H"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(days=2, hours=2, minutes=59)
    assert statuses(sim, got["id"]) == ["Ordered"]
    sim.advance(minutes=1)
    assert statuses(sim, got["id"]) == ["Ordered", "Completed"]


@pytest.mark.parametrize("after, just_before, then", [
    ("PT1.5H", {"hours": 1, "minutes": 29}, {"minutes": 1}),
    ("P0.5D", {"hours": 11, "minutes": 59}, {"minutes": 1}),
    ("P0Y0M3D", {"days": 2, "hours": 23}, {"hours": 1}),
])
def test_a_fractional_or_zero_year_duration_is_iso_8601_too(sim, after, just_before, then):
    """They were refused as 'not an ISO-8601 duration' (only seconds took a fraction)."""
    nid = sim.patient(answer={"after": after})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(**just_before)
    assert statuses(sim, got["id"]) == ["Ordered"]
    sim.advance(**then)
    assert statuses(sim, got["id"]) == ["Ordered", "Completed"]


def test_never_answers_and_expires(sim):
    nid = sim.patient(behaviour="never")["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-10")
    sim.advance(days=30)
    assert statuses(sim, got["id"]) == ["Ordered", "Expired"]
    assert sim.client.get(f"/_sim/orders/{got['id']}").get_json()["formOrderEventLog"] == []


def test_a_partial_answer_comes_with_warnings(sim):
    nid = sim.patient(answer={"after": "PT1H", "partial": True,
                              "warnings": [{"fieldName": "rand12_1", "warning": "Usikkert svar"}]})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(hours=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    answers = json.loads(returned["formData"])
    assert 0 < len(answers) < 12
    warnings = returned["formDataWarnings"]
    left_out = [f"rand12_{i}" for i in range(1, 13) if f"rand12_{i}" not in answers]
    assert warnings == [{"fieldName": q, "warning": "Required question is not answered"} for q in left_out] + \
        [{"fieldName": "rand12_1", "warning": "Usikkert svar"}]
    assert schema_ok(returned)
    assert sim.orders()[0]["formDataWarnings"] == warnings  # the control API shows them too


def test_fixed_answers_of_the_answer_win_over_the_patients_form_data(sim):
    nid = sim.patient(formData={"rand12_1": 1}, answer={"after": "PT1H", "formData": {"rand12_1": 4}})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(hours=1)
    assert json.loads(sim.bodies(got["id"], "Completed")[0]["formData"]) == {"rand12_1": 4}


def test_filled_out_by_as_scripted(sim, ids):
    nid = sim.patient(answer={"after": "PT1H", "filledOutBy": {"nationalId": ids.TEST_PERSON,
                                                               "actType": "Fullmakt"}})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(hours=1)
    assert sim.bodies(got["id"], "Completed")[0]["filledOutBy"] == {"filledOutByActNationalId": ids.TEST_PERSON,
                                                                    "filledOutByActType": "Fullmakt"}


def test_on_behalf_of_the_recipient_themself_is_filled_out_by_themself(sim, ids):
    """It said Foreldrerepresentasjon by the recipient, as if they were their own parent."""
    sim.patient(nationalId=ids.TEST_PERSON, answer={"after": "PT1H"})
    itself = sim.ordered(nationalId=ids.TEST_PERSON, onBehalfOfNationalId=ids.TEST_PERSON)["id"]
    plain = sim.ordered(nationalId=ids.TEST_PERSON)["id"]
    child = sim.ordered(nationalId=ids.TEST_PERSON, onBehalfOfNationalId=ids.GUIDE_PATIENT)["id"]
    sim.advance(hours=1)
    filled = {o: sim.bodies(o, "Completed")[0]["filledOutBy"] for o in (itself, plain, child)}
    assert filled[itself] == filled[plain] == {"filledOutByActNationalId": None, "filledOutByActType": "SegSelv"}
    assert filled[child] == {"filledOutByActNationalId": ids.TEST_PERSON,
                             "filledOutByActType": "Foreldrerepresentasjon"}


def test_a_child_represented_by_a_parent(sim, ids):
    child = sim.patient(age=9, profile={"representedBy": ids.GUIDE_PATIENT}, answer={"after": "P1D"})
    assert child["reachable"] == ["Helsenorge", "PhysicalMailbox"]
    got = sim.ordered(nationalId=child["nationalId"])
    assert got["notificationChannel"] == 1
    sim.advance(days=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 1
    assert returned["filledOutBy"] == {"filledOutByActNationalId": ids.GUIDE_PATIENT,
                                       "filledOutByActType": "Foreldrerepresentasjon"}


def test_a_child_without_a_representative_is_reached_only_on_paper(sim, ids):
    child = sim.patient(age=9)["nationalId"]
    basic = sim.ordered(nationalId=child)
    paper = sim.ordered(nationalId=child, formId=ids.PAPER_FORM, distributionRule="BasicOrPaper")
    assert (basic["notificationChannel"], paper["notificationChannel"]) == (0, 4)
    sim.settle()
    assert sim.bodies(basic["id"])[0]["formOrderStatusErrorCode"] == "PatientUnreachable"
    assert sim.bodies(paper["id"])[0]["notificationChannel"] == 4


# --- paper ------------------------------------------------------------------------------------------
def test_paper_answers_carry_a_scanned_paper_id_and_no_screen_events(sim, ids):
    nid = sim.patient(answer={"after": "P5D"})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="PaperOnly")
    sim.advance(days=5)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 4 and returned["scannedPaperId"]
    assert kinds(returned) == ["FormDelivered"]
    assert returned["filledOutBy"] == {"filledOutByActNationalId": None, "filledOutByActType": "Ukjent"}
    assert sim.orders()[0]["scannedPaperId"] == returned["scannedPaperId"]


def test_a_paper_letter_answered_digitally(sim, ids):
    nid = sim.patient(answer={"after": "P5D", "onPaper": False})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="PaperOnly")
    sim.advance(days=5)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 4 and returned["scannedPaperId"] is None
    assert kinds(returned)[0] == "FormOpened"


def test_on_paper_only_when_the_order_went_by_paper(sim, ids):
    nid = sim.patient(answer={"after": "P1D", "onPaper": True})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="BasicOrPaper")
    sim.advance(days=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 1 and returned["scannedPaperId"] is None


def test_the_orders_physical_address_makes_paper_possible(sim, ids):
    nid = sim.patient(profile={"postalAddress": None, "helsenorgeConsent": "none", "digitalMailbox": False})
    without = sim.ordered(nationalId=nid["nationalId"], formId=ids.PAPER_FORM, distributionRule="PaperOnly")
    with_address = sim.ordered(nationalId=nid["nationalId"], formId=ids.PAPER_FORM, distributionRule="PaperOnly",
                               physicalAddress={"fullName": "A", "addressLine1": "Gata 1", "postalCode": "0150",
                                                "postalPlace": "Oslo"})
    assert (without["notificationChannel"], with_address["notificationChannel"]) == (0, 4)
    sim.settle()
    assert [b["formOrderStatus"] for b in sim.bodies()] == ["Error", "Ordered"]


def test_paper_mail_returned(sim, ids):
    nid = sim.patient(behaviour="paperMailReturned")["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="PaperOnly", expiryDate="2025-02-20")
    sim.advance(days=6, hours=23)
    assert statuses(sim, got["id"]) == ["Ordered"]
    sim.advance(hours=1)
    assert statuses(sim, got["id"]) == ["Ordered", "PhysicalMailReturned"]
    returned = sim.bodies(got["id"])[1]
    assert (returned["notificationChannel"], returned["formOrderStatusErrorCode"]) == (4, "None")
    assert returned["timestampUtc"] == "2025-01-06T08:00:00.000000Z"  # the order's instant, as for Ordered
    assert schema_ok(returned)
    listed = sim.orders()[0]
    assert (listed["status"], listed["mailReturnedAt"]) == ("PhysicalMailReturned", "2025-01-13T08:00:00+00:00")
    sim.advance(days=60)
    assert statuses(sim, got["id"]) == ["Ordered", "PhysicalMailReturned", "Expired"]


def test_paper_mail_returned_does_nothing_when_the_order_did_not_go_by_paper(sim, ids):
    nid = sim.patient(behaviour="paperMailReturned")["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="BasicOrPaper", expiryDate="2025-02-20")
    sim.advance(days=60)
    assert statuses(sim, got["id"]) == ["Ordered", "Expired"]


def test_an_order_whose_mail_came_back_can_still_be_answered(sim, ids):
    nid = sim.patient(behaviour="paperMailReturned")["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.PAPER_FORM, distributionRule="PaperOnly", expiryDate="2025-02-20")
    sim.advance(days=8)
    assert sim.answer(got["id"]).status_code == 200
    sim.settle()
    assert statuses(sim, got["id"]) == ["Ordered", "PhysicalMailReturned", "Completed"]


# --- opens, never delivers --------------------------------------------------------------------------
def test_opens_but_never_delivers(sim):
    nid = sim.patient(behaviour="opensNeverDelivers", answer={"after": "P2D"})["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-20")
    sim.advance(days=2)
    detail = sim.client.get(f"/_sim/orders/{got['id']}").get_json()
    assert detail["status"] == "Ordered"
    assert [e["eventType"] for e in detail["formOrderEventLog"]] == ["FormOpened"] + ["QuestionAccessed"] * 6
    assert detail["formOrderEventLog"][0]["timestampUtc"] == "2025-01-08T08:00:00.000000Z"
    sim.advance(days=30)
    assert statuses(sim, got["id"]) == ["Ordered", "Expired"]
    expired = sim.bodies(got["id"], "Expired")[0]
    assert kinds(expired) == ["FormOpened"] + ["QuestionAccessed"] * 6  # the registry sees that it was opened
    assert expired["formData"] is None and schema_ok(expired)


def test_opens_without_a_given_time_opens_a_day_later_or_halfway_to_the_expiry(sim):
    nid = sim.patient(behaviour="opensNeverDelivers")["nationalId"]
    late = sim.ordered(nationalId=nid, expiryDate="2025-01-20")
    soon = sim.ordered(nationalId=nid, expiryDate="2025-01-06T20:00:00Z")
    sim.advance(days=30)
    opened = {o["id"]: o["formOrderEventLog"][0]["timestampUtc"] for o in sim.orders()}
    assert opened == {late["id"]: "2025-01-07T08:00:00.000000Z", soon["id"]: "2025-01-06T14:00:00.000000Z"}


# --- answers after the expiry ---------------------------------------------------------------------------
def test_an_answer_after_the_expiry_is_refused_and_recorded(sim):
    nid = sim.patient(behaviour="answersAfterExpiry", answer={"after": "P10D"})["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-10")
    sim.advance(days=30)
    assert statuses(sim, got["id"]) == ["Ordered", "Expired"]
    detail = sim.client.get(f"/_sim/orders/{got['id']}").get_json()
    assert detail["status"] == "Expired"
    assert detail["refusedAttempts"] == [{"at": "2025-01-16T08:00:00+00:00",
                                          "reason": "the order expired at 2025-01-09T23:00:00+00:00; ePROM refused "
                                                    "the answer"}]


@pytest.mark.parametrize("answer", [{"after": "PT1H"}, None])
def test_an_answer_after_the_expiry_with_no_later_time_tries_an_hour_after_it(sim, answer):
    nid = sim.patient(behaviour="answersAfterExpiry", answer=answer)["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-10")
    sim.advance(days=30)
    [refused] = sim.client.get(f"/_sim/orders/{got['id']}").get_json()["refusedAttempts"]
    assert refused["at"] == "2025-01-10T00:00:00+00:00"
    assert statuses(sim, got["id"]) == ["Ordered", "Expired"]


def test_an_expiry_at_the_very_end_of_the_calendar_plans_the_late_answer_without_a_crash(sim):
    """An hour after 9999-12-31T23:30Z is past the calendar: the due work crashed (settle said pending 1)."""
    nid = sim.patient(behaviour="answersAfterExpiry")["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="9999-12-31T23:30:00Z")
    assert sim.settle() == 0
    assert statuses(sim, got["id"]) == ["Ordered"]


def test_an_order_expiring_in_the_last_hours_of_the_calendar_expires_without_a_crash(make_sim, ids):
    """Norwegian time is past the calendar there: the Expired callback's timestamp is its last instant."""
    sim = make_sim(start=datetime(9999, 12, 31, 20, 0, tzinfo=timezone.utc))
    nid = sim.patient(nationalId=ids.TEST_PERSON, behaviour="answersAfterExpiry")["nationalId"]
    opener = sim.patient(nationalId=ids.GUIDE_PATIENT, behaviour="opensNeverDelivers")["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="9999-12-31T23:30:00Z")
    opened = sim.ordered(nationalId=opener, expiryDate="9999-12-31T23:58:00Z")
    sim.advance(hours=3, minutes=59)
    [expired] = sim.bodies(got["id"], "Expired")
    assert (expired["timestamp"], expired["timestampUtc"]) == ("9999-12-31T23:59:59.999999",
                                                               "9999-12-31T23:30:00.000000Z")
    assert kinds(sim.bodies(opened["id"], "Expired")[0])[0] == "FormOpened" and sim.settle() == 0


def test_no_refusal_when_the_order_was_answered_in_time_by_hand(sim):
    nid = sim.patient(behaviour="answersAfterExpiry")["nationalId"]
    got = sim.ordered(nationalId=nid, expiryDate="2025-01-10")
    sim.settle()
    sim.answer(got["id"])
    sim.advance(days=30)
    assert sim.client.get(f"/_sim/orders/{got['id']}").get_json()["refusedAttempts"] == []


# --- signing --------------------------------------------------------------------------------------------
def test_cancels_signing_then_signs(sim, ids):
    nid = sim.patient(behaviour="cancelsSigningThenSigns", answer={"after": "P1D"})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.SIGNED_FORM)
    sim.advance(days=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert kinds(returned)[-5:] == ["SigningStarted", "SigningCancelled", "SigningStarted", "SigningCompleted",
                                    "FormDelivered"]
    stamps = [e["timestampUtc"] for e in returned["formOrderEventLog"]]
    assert stamps == sorted(stamps)
    assert returned["signedFormId"] != ZERO_UUID and schema_ok(returned)


def test_cancels_signing_on_a_form_that_needs_no_signature_just_answers(sim):
    nid = sim.patient(behaviour="cancelsSigningThenSigns", answer={"after": "P1D"})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(days=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert not any(k.startswith("Signing") for k in kinds(returned)) and returned["signedFormId"] == ZERO_UUID


def test_a_signed_form_on_paper_is_answered_digitally(make_sim, ids):
    forms = [replace(f, paper_enabled=True) if f.id == ids.SIGNED_FORM else f for f in default_catalog()]
    sim = make_sim(forms=forms)
    nid = sim.patient(answer={"after": "P1D"})["nationalId"]
    got = sim.ordered(nationalId=nid, formId=ids.SIGNED_FORM, distributionRule="PaperOnly")
    sim.advance(days=1)
    returned = sim.bodies(got["id"], "Completed")[0]
    assert returned["notificationChannel"] == 4 and returned["scannedPaperId"] is None
    assert returned["signedFormId"] != ZERO_UUID and "SigningCompleted" in kinds(returned)


# --- recorded fields ---------------------------------------------------------------------------------------
def test_dont_store_in_pha_signing_text_and_on_behalf_of_are_recorded(sim, ids):
    got = sim.ordered(dontStoreCompletedFormInPha=True, onBehalfOfNationalId=ids.TEST_PERSON)
    listed = sim.client.get(f"/_sim/orders/{got['id']}").get_json()
    assert (listed["dontStoreCompletedFormInPha"], listed["onBehalfOfNationalId"]) == (True, ids.TEST_PERSON)
    assert sim.orders()[0]["dontStoreCompletedFormInPha"] is True


def test_the_profile_decides_the_actual_channel_when_the_order_arrives(make_sim):
    sim = make_sim(status_delay=timedelta(days=400))
    nid = sim.patient(profile={"helsenorgeConsent": "none", "digitalMailbox": False,
                               "contactRegister": {"email": "a@example.org", "mobile": None,
                                                   "lastUpdated": "2023-09-01"}})["nationalId"]
    got = sim.ordered(nationalId=nid, distributionRule="AllowUnsecure", expiryDate="2027-01-01")
    assert got["notificationChannel"] == 3  # digitally active today
    sim.advance(days=400)
    [status] = sim.bodies(got["id"])
    assert (status["formOrderStatus"], status["notificationChannel"]) == ("Error", 0)  # not any more


# 00:30 on 7 January in Oslo, still 6 January in UTC: ages and "digitally active" go by the Norwegian date
JUST_AFTER_MIDNIGHT_IN_OSLO = datetime(2025, 1, 6, 23, 30, tzinfo=timezone.utc)


def test_a_patient_turns_18_at_midnight_norwegian_time(make_sim):
    """Counted on the UTC date they were 17 until 01:00 in Oslo: no digital mailbox, so unreachable."""
    sim = make_sim(start=JUST_AFTER_MIDNIGHT_IN_OSLO)
    patient = sim.patient(birthDate="2007-01-07", profile={"helsenorgeConsent": "none", "contactRegister": None,
                                                           "postalAddress": None})
    assert (patient["age"], patient["reachable"]) == (18, ["DigitalMailbox"])
    got = sim.ordered(nationalId=patient["nationalId"], expiryDate="2025-02-01")
    assert got["notificationChannel"] == 2
    sim.settle()
    [status] = sim.bodies(got["id"])
    assert (status["formOrderStatus"], status["notificationChannel"]) == ("Ordered", 2)
    assert sim.patient(birthDate="2025-01-07")["age"] == 0  # born today in Norway: not in the future


def test_digitally_active_ends_at_midnight_norwegian_time(make_sim):
    """Updated 2023-07-06: on 7 January 2025 in Norway that is 18 months and a day ago."""
    sim = make_sim(start=JUST_AFTER_MIDNIGHT_IN_OSLO)
    nid = sim.patient(age=40, profile={"helsenorgeConsent": "none", "digitalMailbox": False, "postalAddress": None,
                                       "contactRegister": {"email": "a@example.org", "mobile": None,
                                                           "lastUpdated": "2023-07-06"}})["nationalId"]
    got = sim.ordered(nationalId=nid, distributionRule="UnsecureOnly", expiryDate="2025-02-01")
    assert got["notificationChannel"] == 0
    sim.settle()
    [status] = sim.bodies(got["id"])
    assert (status["formOrderStatus"], status["formOrderStatusErrorCode"]) == ("Error", "PatientUnreachable")


@pytest.mark.parametrize("behaviour", ["answers", "opensNeverDelivers", "answersAfterExpiry",
                                       "cancelsSigningThenSigns"])
def test_behaviours_are_deterministic(make_sim, ids, behaviour):
    def run():
        sim = make_sim(seed=11)
        nid = sim.patient(behaviour=behaviour, answer={"after": "P2D", "partial": True})["nationalId"]
        sim.ordered(nationalId=nid, formId=ids.SIGNED_FORM, expiryDate="2025-01-07")
        sim.ordered(nationalId=nid, expiryDate="2025-01-20")
        sim.advance(days=40)
        return [e.request_body for e in sim.transport.sent], sim.orders()

    assert run() == run()
