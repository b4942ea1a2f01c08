"""Every row of SPEC §3's linking table, black-box: a real `eprox-harness up` process, HTTP only."""
from __future__ import annotations

import json

import pytest
import requests

from harness.client import HarnessClient

pytestmark = pytest.mark.e2e

ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def h(harness_client: HarnessClient) -> HarnessClient:
    return harness_client


def new_patient(h: HarnessClient, **script) -> str:
    script.setdefault("reachable", ["Helsenorge"])
    script.setdefault("answer", None)
    return h.add_patient(**script)["nationalId"]


def order(h: HarnessClient, registry: str, patient: str, **fields) -> str:
    reply = h.order(registry, nationalId=patient, **fields)
    assert reply["status"] == 200, reply
    h.settle()
    return reply["body"]["id"]


def eprom_count(h: HarnessClient, patient: str) -> int:
    return len(h.eprom_orders(national_id=patient, form_id=h.default_form_id))


def assert_own_callbacks(h: HarnessClient, registry: str, own_id: str, statuses: list[str]) -> list[dict]:
    callbacks = h.inbox(registry, own_id)
    assert [c["body"]["formOrderStatus"] for c in callbacks] == statuses
    for c in callbacks:
        assert c["body"]["apiKey"] == h.api_key(registry)
        assert c["method"] == "PUT" and c["path"] == "/api/PromsFormOrder"
    return callbacks


def test_row1_create_new_order_true_makes_a_new_order_although_one_could_be_linked(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    forced = order(h, "registry-b", patient, metadata={"CREATE_NEW_ORDER": True})
    assert eprom_count(h, patient) == 2
    assert_own_callbacks(h, "registry-b", forced, ["Ordered"])


def test_row2_no_active_order_makes_a_new_order_even_with_create_new_order_false(h):
    patient = new_patient(h)
    own = order(h, "registry-a", patient, metadata={"CREATE_NEW_ORDER": False})
    assert own != ZERO
    assert eprom_count(h, patient) == 1
    assert_own_callbacks(h, "registry-a", own, ["Ordered"])


def test_row2_an_error_order_is_not_active(h):
    patient = new_patient(h, reachable=[])
    first = order(h, "registry-a", patient)
    assert_own_callbacks(h, "registry-a", first, ["Error"])
    second = order(h, "registry-b", patient)
    assert eprom_count(h, patient) == 2
    assert_own_callbacks(h, "registry-b", second, ["Error"])


def test_row3_link_gives_one_eprom_order_and_each_registry_its_own_id_and_key(h):
    patient = new_patient(h)
    a = order(h, "registry-a", patient)
    b = order(h, "registry-b", patient)
    assert a != b
    assert eprom_count(h, patient) == 1
    eprom_ids = {o["id"] for o in h.eprom_orders(national_id=patient)}
    assert not eprom_ids & {a, b}, "ePROM's ids must stay inside ePROX"
    (eprom_id,) = eprom_ids
    h.answer(eprom_id)
    h.settle()
    answers = [assert_own_callbacks(h, r, i, ["Ordered", "Completed"])[-1] for r, i in
               (("registry-a", a), ("registry-b", b))]
    assert answers[0]["body"]["formData"] == answers[1]["body"]["formData"]
    json.loads(answers[0]["body"]["formData"])  # stringified JSON, as ePROM sends it


def test_row3_relevant_date_on_the_order_date_links(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    today = h.now().date().isoformat()
    b = order(h, "registry-b", patient, metadata={"RELEVANT_DATE": today})
    assert eprom_count(h, patient) == 1
    assert_own_callbacks(h, "registry-b", b, ["Ordered"])


def test_row4_create_new_order_false_with_nothing_linkable_gives_the_zero_id(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    again = h.order("registry-a", nationalId=patient, metadata={"CREATE_NEW_ORDER": False})
    assert again["status"] == 200 and again["body"]["id"] == ZERO
    assert eprom_count(h, patient) == 1


def test_row4_relevant_date_after_the_active_order_with_create_new_order_false_gives_the_zero_id(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    h.advance(days=2)
    tomorrow = h.now().date().isoformat()
    reply = h.order("registry-b", nationalId=patient, metadata={"RELEVANT_DATE": tomorrow, "CREATE_NEW_ORDER": False})
    assert reply["body"]["id"] == ZERO
    assert eprom_count(h, patient) == 1


def test_row5_the_same_registry_again_makes_a_new_order_and_others_link_to_the_newest(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    h.advance(hours=1)
    order(h, "registry-a", patient)
    assert eprom_count(h, patient) == 2
    b = order(h, "registry-b", patient)
    assert eprom_count(h, patient) == 2
    newest = max(h.eprom_orders(national_id=patient), key=lambda o: o["orderedAt"])
    h.answer(newest["id"])
    h.settle()
    assert_own_callbacks(h, "registry-b", b, ["Ordered", "Completed"])


def test_row5_relevant_date_after_every_active_order_makes_a_new_order(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    h.advance(days=3)
    b = order(h, "registry-b", patient, metadata={"RELEVANT_DATE": h.now().isoformat()})
    assert eprom_count(h, patient) == 2
    assert_own_callbacks(h, "registry-b", b, ["Ordered"])


def test_lifetime_end_makes_the_next_order_new(h):
    patient = new_patient(h)
    order(h, "registry-a", patient)
    h.advance(days=365)
    b = order(h, "registry-b", patient)
    assert eprom_count(h, patient) == 2
    assert_own_callbacks(h, "registry-b", b, ["Ordered"])


# --- trust at the edges ---------------------------------------------------------------------
def test_a_forged_eprom_callback_is_refused_and_changes_nothing(h):
    patient = new_patient(h)
    own = order(h, "registry-a", patient)
    (eprom_order,) = h.eprom_orders(national_id=patient)
    forged = {"apiKey": h.api_key("registry-a"), "formOrderId": eprom_order["id"], "formOrderStatus": "Completed",
              "formData": json.dumps({"forged": True})}
    reply = requests.put(f"{h.proxy_url}/api/PromsFormOrder", json=forged, timeout=30)
    assert reply.json()["success"] is False
    h.settle()
    assert_own_callbacks(h, "registry-a", own, ["Ordered"])


def test_unknown_and_missing_registry_keys(h):
    body = {"formId": h.default_form_id, "nationalId": "26670271527", "expiryDate": "2030-01-01"}
    unknown = requests.post(f"{h.proxy_url}/api/v2/formorder", json=body,
                            headers={"Authorization": "Basic no-such-key"}, timeout=30)
    assert unknown.status_code == 400 and unknown.json() == {"message": "apiKey 'no-such-key' doesn't exists"}
    missing = requests.post(f"{h.proxy_url}/api/v2/formorder", json=body, timeout=30)
    assert missing.status_code == 401


def test_eprom_errors_reach_the_registry_with_the_documented_text(h):
    unpublished = next(f for f in h.info["forms"] if not f["published"])
    reply = h.order("registry-a", nationalId=new_patient(h), formId=unpublished["id"])
    assert reply == {"status": 400, "body": {"message": "The ordered form is not Published"}}
