"""POST /api/v2/formorder: what a 200 says (SPEC §1), seeded ids, and the strict population's zero id."""
from __future__ import annotations

import re
import uuid

from eprom_protocol import schemas
from eprom_protocol.messages import ZERO_UUID
from eprom_protocol.national_id import check_digits

INPUT_FIELDS = ["formId", "nationalId", "expiryDate", "reminderDate", "metadata", "dontStoreCompletedFormInPha",
                "distributionRule", "mustBeSigned", "signingText", "physicalAddress", "testMode",
                "onBehalfOfNationalId"]


def test_the_response_repeats_every_input_field_and_adds_the_order_fields(sim, ids):
    body = {
        "formId": ids.PAPER_FORM, "nationalId": ids.GUIDE_PATIENT, "expiryDate": "2025-01-13T12:00:00",
        "reminderDate": "2025-01-10", "metadata": "{\"age\": 76}", "dontStoreCompletedFormInPha": True,
        "distributionRule": "BasicOrPaper", "mustBeSigned": False, "signingText": "Signer her",
        "physicalAddress": {"fullName": "Test Testesen", "addressLine1": "Testeveien 1", "postalCode": "1234",
                            "postalPlace": "Testestad"},
        "testMode": False, "onBehalfOfNationalId": ids.TEST_PERSON,
    }
    response = sim.order(body)
    assert response.status_code == 200
    got = response.get_json()
    assert list(got) == INPUT_FIELDS + ["id", "singleUseCode", "loginUrl", "notificationChannel"]
    for field in INPUT_FIELDS:
        expected = 3 if field == "distributionRule" else body[field]  # the rule comes back as its number
        assert got[field] == expected, field
    assert uuid.UUID(got["id"]).version == 4
    assert got["singleUseCode"] is None
    assert got["loginUrl"] == "https://proms2.hemit.org/Proms"
    assert got["notificationChannel"] == 1  # preferred: Helsenorge, a number
    assert schemas.violations("formorder-response", got) == []


def test_fields_left_out_come_back_with_their_defaults(sim, ids):
    got = sim.ordered()
    assert got["reminderDate"] is None and got["metadata"] is None and got["signingText"] is None
    assert got["dontStoreCompletedFormInPha"] is False and got["mustBeSigned"] is False and got["testMode"] is False
    assert got["distributionRule"] == 0
    assert got["physicalAddress"] is None and got["onBehalfOfNationalId"] is None


def test_no_distribution_gives_a_single_use_code_and_no_preferred_channel(sim):
    got = sim.ordered(distributionRule="NoDistribution")
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", got["singleUseCode"])
    assert got["notificationChannel"] == 0
    other = sim.ordered(distributionRule=2)
    assert other["singleUseCode"] != got["singleUseCode"]


def test_the_preferred_channel_follows_rule_and_patient(sim):
    mailbox_only = sim.patient(reachable=["DigitalMailbox", "Unsecure"])["nationalId"]
    nobody = sim.patient(reachable=[])["nationalId"]
    assert sim.ordered(nationalId=mailbox_only)["notificationChannel"] == 2
    assert sim.ordered(nationalId=mailbox_only, distributionRule="UnsecureOnly")["notificationChannel"] == 3
    assert sim.ordered(nationalId=mailbox_only, distributionRule="HelsenorgeOnly")["notificationChannel"] == 0
    assert sim.ordered(nationalId=nobody)["notificationChannel"] == 0


def test_ids_are_seeded(make_sim):
    def run(seed):
        s = make_sim(seed=seed)
        return [s.ordered()["id"], s.ordered(distributionRule="NoDistribution")["singleUseCode"],
                s.ordered()["id"]]

    assert run(11) == run(11)
    assert run(11) != run(12)
    first = run(11)
    assert first[0] != first[2]


def test_each_ordering_system_orders_from_the_whole_catalog(sim, ids):
    for form in (ids.RAND_12, ids.PAPER_FORM, ids.SIGNED_FORM):
        assert sim.order(formId=form, key=ids.RESEARCH_KEY).status_code == 200
    assert {o["orderingSystem"] for o in sim.orders()} == {"research-registry"}


# --- strict population ----------------------------------------------------------------
def test_strict_population_answers_the_zero_id_for_someone_it_does_not_know(make_sim, ids):
    strict = make_sim(population="strict")
    response = strict.order()
    assert response.status_code == 200
    got = response.get_json()
    assert got["id"] == ZERO_UUID
    assert got["nationalId"] == ids.GUIDE_PATIENT and got["formId"] == ids.RAND_12
    assert got["singleUseCode"] is None and got["notificationChannel"] == 0
    strict.advance(days=30)
    assert strict.orders() == []
    assert strict.transport.sent == []


def test_strict_population_orders_for_patients_it_was_told_about(make_sim, ids):
    strict = make_sim(population="strict")
    strict.patient(nationalId=ids.GUIDE_PATIENT, reachable=["DigitalMailbox"])
    got = strict.ordered()
    assert got["id"] != ZERO_UUID and got["notificationChannel"] == 2
    strict.settle()
    assert [b["formOrderStatus"] for b in strict.bodies(got["id"])] == ["Ordered"]


def test_strict_population_still_refuses_bad_requests(make_sim):
    strict = make_sim(population="strict")
    assert strict.order(metadata="{").status_code == 400


def test_open_population_takes_any_valid_id_as_a_default_patient(sim, ids):
    got = sim.ordered(nationalId=ids.TEST_PERSON, distributionRule="AllowUnsecureOrPaper", formId=ids.PAPER_FORM)
    assert got["notificationChannel"] == 1
    sim.advance(days=30)
    statuses = [b["formOrderStatus"] for b in sim.bodies(got["id"])]
    assert statuses == ["Ordered", "Expired"]  # reachable, but never answers on their own


UNBORN = "01713080396"  # synthetic (month + 65), born 2030-06-01: after the simulated clock's today


def test_an_id_born_after_today_is_nobody_yet_so_the_zero_id_and_no_letter(sim, ids):
    """It was a default patient aged -6, reached on paper; ePROM answers the zero id for an id that does not
    exist. A letter to it reaches nobody (notificationChannel 0, then Error)."""
    got = sim.ordered(nationalId=UNBORN, distributionRule="BasicOrPaper", formId=ids.PAPER_FORM)
    assert (got["id"], got["notificationChannel"]) == (ZERO_UUID, 0)
    letter = sim.sent(nationalId=UNBORN)
    assert letter["notificationChannel"] == 0
    sim.advance(days=30)
    assert sim.orders() == []
    assert [b["sentStatus"] for b in sim.message_bodies()] == ["Error"]


def test_d_number_is_orderable(sim):
    for individual in range(100, 200):
        nine = f"660739{individual:03d}"  # day 26 + 40
        if (digits := check_digits(nine)) is not None:
            break
    got = sim.ordered(nationalId=nine + digits)
    assert got["nationalId"] == nine + digits
