"""A barrage of bad input against the live proxy (real HTTP on loopback; fake ePROM and registries behind
it): malformed orders and letters, bodies that are not JSON objects, missing and unknown keys, forged and
malformed ePROM callbacks, documents asked for by made-up ids. Each gets a 4xx with a JSON message (a
callback's also says success false), never a 500; no message echoes a national id or ePROX's key; and
nothing changes: not one row in any of the proxy's tables, not one order or letter at ePROM. Hypothesis,
derandomized: the same requests on every run."""
from __future__ import annotations

import base64
import json
import sqlite3

import pytest
import requests
from hypothesis import given, strategies as st

from eprom_protocol.enums import DistributionRule, FormOrderStatus, SentStatus
from eprom_protocol.national_id import mask_in_text
from eprom_protocol.timefmt import parse_instant
from fake_eprom.forms import default_catalog

from bad_input import (BARRAGE, JSON, NOT_BOOL, NOT_JSON_VALUES, NOT_STRING, bad_national_ids, fails,
                       not_json_object_text, with_raw)
from proxy_world import EPROX_KEY, order_body

CATALOG = {form.id for form in default_catalog()}


def _unparsable_instant(value) -> bool:
    return fails(lambda v: parse_instant(v, "expiryDate"), value)


BAD_ORDER_FIELDS = {
    "formId": st.one_of(NOT_STRING, st.uuids().map(str).filter(lambda u: u not in CATALOG)),
    "nationalId": bad_national_ids(),
    "onBehalfOfNationalId": bad_national_ids(),
    "expiryDate": st.one_of(NOT_STRING, st.text(max_size=30)).filter(_unparsable_instant),
    "metadata": st.one_of(NOT_STRING, st.text(max_size=30).filter(not_json_object_text),
                          NOT_JSON_VALUES.map(lambda raw: '{"age": %s}' % raw), st.just("[" * 5000)),
    "distributionRule": JSON.filter(lambda v: v is not None and not DistributionRule.is_valid(v)),
    "dontStoreCompletedFormInPha": NOT_BOOL,
    "mustBeSigned": NOT_BOOL,
    "testMode": NOT_BOOL,
}
ORDER_MUTATIONS = st.one_of(
    *[strategy.map(lambda value, field=field: (field, value)) for field, strategy in BAD_ORDER_FIELDS.items()],
    st.sampled_from(["formId", "nationalId", "expiryDate"]).map(lambda field: (field, ...)),
)


def mutated(body: dict, mutations: list[tuple[str, object]]) -> dict:
    body = dict(body)
    for field, value in mutations:
        if value is ...:
            body.pop(field, None)
        else:
            body[field] = value
    return body


@pytest.fixture
def barrage(world):
    """One order placed and its Ordered status delivered before the barrage: everything must stay so."""
    patient = world.add_patient()
    world.order("registry-a", patient)
    world.settle()
    before = snapshot(world)
    assert len(before["deliveries"]) == 1 and len(before["eprom orders"]) == 1
    return world, patient, before


def snapshot(world) -> dict[str, object]:
    """Every row of every table of the proxy's database, and the orders and letters ePROM holds."""
    with sqlite3.connect(f"file:{world.config.database_path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        state: dict[str, object] = {t: db.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    session = world.session
    state["eprom orders"] = session.get(f"{world.eprom_url}/_sim/orders", timeout=10).json()
    state["eprom letters"] = session.get(f"{world.eprom_url}/_sim/messages", timeout=10).json()
    return state


def refused(response: requests.Response, statuses=(400,), callback: bool = False) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    message = body.get("message")
    assert isinstance(message, str) and message, body
    assert set(body) == ({"success", "message"} if callback else {"message"}), body
    if callback:
        assert body["success"] is False
    assert mask_in_text(message) == message, f"a national id echoed: {message!r}"
    assert EPROX_KEY not in message


def send(world, path: str, body=None, *, registry: str | None = "registry-a", data: bytes | None = None,
         method: str = "POST") -> requests.Response:
    kwargs = {"data": data, "headers": {"Content-Type": "application/json"}} if data is not None else {"json": body}
    return world.call(method, path, registry, **kwargs)


@BARRAGE
@given(mutations=st.lists(ORDER_MUTATIONS, min_size=1, max_size=3))
def test_malformed_orders_are_refused_and_change_nothing(barrage, mutations):
    world, patient, before = barrage
    registry = "registry-b"  # a valid order of registry-b for this patient would link: none may
    refused(send(world, "/api/v2/formorder", mutated(order_body(patient), mutations), registry=registry))
    assert snapshot(world) == before


@BARRAGE
@given(body=st.one_of(JSON.filter(lambda v: not isinstance(v, dict)),
                      st.dictionaries(st.text(max_size=8), JSON, max_size=4)))
def test_bodies_that_are_not_orders_or_letters(barrage, body):
    world, _, before = barrage
    refused(send(world, "/api/v2/formorder", body))
    refused(send(world, "/api/v2/messagetocitizen", body))
    assert snapshot(world) == before


@BARRAGE
@given(raw=st.binary(max_size=200))
def test_bytes_that_are_not_json(barrage, raw):
    world, _, before = barrage
    refused(send(world, "/api/v2/formorder", data=raw))
    refused(send(world, "/api/v2/messagetocitizen", data=raw))
    for path in ("/api/PromsFormOrder", "/api/MessageToCitizen"):  # bytes that are JSON lack ePROX's key: 401
        refused(send(world, path, data=raw, registry=None, method="PUT"), (400, 401), callback=True)
    assert snapshot(world) == before


@BARRAGE
@given(raw_value=NOT_JSON_VALUES, order_field=st.sampled_from(["formId", "expiryDate", "testMode", "extra"]),
       callback_field=st.sampled_from(["formData", "formOrderStatus", "extra"]))
def test_valid_bodies_but_for_a_value_json_does_not_have(barrage, raw_value, order_field, callback_field):
    """NaN, Infinity, 1e999 (which Python's json reads) in an order that would otherwise link, and in an
    answer ePROM would otherwise deliver: a 400 each, nothing taken in."""
    world, patient, before = barrage
    refused(send(world, "/api/v2/formorder", data=with_raw(order_body(patient), order_field, raw_value),
                 registry="registry-b"))
    (eprom_order,) = world.eprom_orders(patient)
    answer = {"apiKey": EPROX_KEY, "formOrderId": eprom_order["id"], "formOrderStatus": "Completed",
              "formData": {"q1": 4}, "signedFormId": None, "timestamp": "2025-01-06T10:00:00"}
    if callback_field == "formData":
        raw = json.dumps(answer).replace('"q1": 4', f'"q1": {raw_value}').encode()
    else:
        raw = with_raw(answer, callback_field, raw_value)
    refused(send(world, "/api/PromsFormOrder", data=raw, registry=None, method="PUT"), callback=True)
    assert snapshot(world) == before


@BARRAGE
@given(key=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                        max_size=20)))
def test_missing_or_unknown_keys_get_nothing_done(barrage, key):
    world, patient, before = barrage
    headers = {} if key is None else {"Authorization": f"Basic {key}"}
    for path, body in (("/api/v2/formorder", order_body(patient)), ("/api/v2/messagetocitizen", {})):
        response = world.session.post(f"{world.proxy_url}{path}", json=body, headers=headers, timeout=10)
        refused(response, (401,) if key is None else (400,))
    assert snapshot(world) == before


CALLBACKS = {  # path: (its id field, its status field, the statuses it knows)
    "/api/PromsFormOrder": ("formOrderId", "formOrderStatus", [s.name for s in FormOrderStatus]),
    "/api/MessageToCitizen": ("messageToCitizenId", "sentStatus", [s.name for s in SentStatus]),
}
CALLBACK_FIELDS = st.dictionaries(st.sampled_from(["formOrderId", "formOrderStatus", "messageToCitizenId",
                                                   "sentStatus", "apiKey", "formData", "isPatientInitiated",
                                                   "signedFormId", "x"]), JSON, max_size=5)


@BARRAGE
@given(path=st.sampled_from(sorted(CALLBACKS)), body=CALLBACK_FIELDS, with_key=st.booleans(),
       callback_id=st.one_of(st.none(), st.uuids().map(str)), status=st.one_of(st.none(), JSON, st.sampled_from(
           sorted({name for _, _, names in CALLBACKS.values() for name in names}))))
def test_forged_or_malformed_ePROM_callbacks_store_nothing(barrage, path, body, with_key, callback_id, status):
    """Without ePROX's key: 401. With it, an unusable id or status: 400; an id nobody ordered or sent (and no
    call to ePROM in flight that it could belong to): 404. Patient-initiated answers are acknowledged and
    dropped."""
    world, _, before = barrage
    id_field, status_field, _ = CALLBACKS[path]
    body = dict(body)
    if with_key:
        body["apiKey"] = EPROX_KEY
    elif body.get("apiKey") == EPROX_KEY:
        del body["apiKey"]
    if callback_id is not None:
        body[id_field] = callback_id
    if status is not None:
        body[status_field] = status
    response = send(world, path, body, registry=None, method="PUT")
    if response.status_code == 200:  # only an unordered, patient-initiated answer may get a yes
        assert path == "/api/PromsFormOrder" and with_key and body.get("isPatientInitiated") is True
        assert response.json() == {"success": True}
    else:
        refused(response, (401,) if not with_key else (400, 404), callback=True)
    assert snapshot(world) == before


@BARRAGE
@given(document_id=st.one_of(st.uuids().map(str), st.text(alphabet=st.characters(min_codepoint=48,
                                                                                  max_codepoint=122),
                                                           min_size=1, max_size=40)))
def test_documents_by_made_up_ids_are_not_found(barrage, document_id):
    world, _, before = barrage
    response = world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-a")
    refused(response, (404,))
    assert snapshot(world) == before


@pytest.mark.parametrize("fields", [{"onBehalfOfNationalId": ""}, {"onBehalfOfNationalId": "12345678901"},
                                    {"expiryDate": "2020-01-01"}, {"reminderDate": "tomorrow"},
                                    {"expiryDate": "0001-01-01"}, {"reminderDate": "9999-12-31T23:00:00-05:00"}],
                         ids=["empty on-behalf-of", "on-behalf-of not a national id", "expiry in the past",
                              "reminder not a date", "expiry before the calendar in UTC (was a 500)",
                              "reminder after the calendar in UTC (was a 500)"])
def test_an_order_that_would_link_is_refused_in_ePROMs_words_when_ePROM_would_refuse_it(barrage, fields):
    """ePROM never sees an order the proxy links, so the proxy checks it as ePROM would (before ePROM's
    catalog: eprom_protocol.order_request); both give the same message."""
    world, patient, before = barrage
    body = order_body(patient, **fields)
    at_proxy = send(world, "/api/v2/formorder", body, registry="registry-b")
    at_eprom = world.session.post(f"{world.eprom_url}/api/v2/formorder", json=body, timeout=10,
                                  headers={"Authorization": f"Basic {EPROX_KEY}"})
    refused(at_proxy)
    assert at_eprom.status_code == 400 and at_proxy.json() == at_eprom.json()
    assert snapshot(world) == before


@pytest.mark.parametrize("relevant_date", ["0001-01-01", "9999-12-31T23:59:59-01:00"])
def test_a_relevant_date_past_the_calendar_in_utc_is_a_400_not_a_500(barrage, relevant_date):
    world, patient, before = barrage
    body = order_body(patient, metadata='{"RELEVANT_DATE": "%s"}' % relevant_date)
    reply = send(world, "/api/v2/formorder", body, registry="registry-b")
    refused(reply)
    assert reply.json()["message"].startswith(f"metadata.RELEVANT_DATE: '{relevant_date}' is at the very edge")
    assert snapshot(world) == before


PDF_B64 = base64.b64encode(b"%PDF-1.4\n%x\n").decode()


def valid_letter(patient: str) -> dict:
    return {"nationalId": patient, "senderInfo": {"organisationName": "Register"}, "messageInfo": {"title": "Brev"},
            "documentCollection": {"documents": [{"isMainDocument": True, "content": PDF_B64}]},
            "notificationPriorityList": ["Helsenorge"]}


LETTER_MUTATIONS = st.one_of(
    st.tuples(st.just("nationalId"), bad_national_ids()),
    st.tuples(st.sampled_from(["senderInfo", "messageInfo"]), NOT_STRING.filter(lambda v: not isinstance(v, dict))),
    st.tuples(st.just("documentCollection"), st.one_of(
        st.just({}), st.just({"documents": []}), st.just([]), st.text(max_size=20),
        st.text(max_size=40).map(lambda t: {"documents": [{"isMainDocument": True, "content": t}]}),
        NOT_STRING.map(lambda v: {"documents": [{"isMainDocument": True, "content": v}]}))),
    st.tuples(st.just("notificationPriorityList"), st.one_of(st.just([]), st.just(["None"]), NOT_STRING.filter(
        lambda v: not isinstance(v, list)))),
    st.sampled_from(["nationalId", "documentCollection"]).map(lambda field: (field, ...)),
)


def test_a_valid_letter_goes_through(barrage):
    """The barrage below mutates this letter: as it is, ePROM takes it (so the refusals are the mutations')."""
    world, patient, _ = barrage
    response = send(world, "/api/v2/messagetocitizen", valid_letter(patient))
    assert response.status_code == 200, response.text


@BARRAGE
@given(mutations=st.lists(LETTER_MUTATIONS, min_size=1, max_size=3))
def test_malformed_letters_are_refused_and_change_nothing(barrage, mutations):
    world, patient, before = barrage
    response = send(world, "/api/v2/messagetocitizen", mutated(valid_letter(patient), mutations))
    refused(response)
    assert snapshot(world) == before
