"""A barrage of malformed requests against the live fake ePROM: each one gets 400 (401 without a key) with a
JSON message, never a 500, and leaves the orders, letters and patients exactly as they were. Hypothesis,
derandomized: the same requests on every run."""
from __future__ import annotations

import base64
import binascii
from datetime import date

import pytest
import requests
from hypothesis import given, strategies as st
from jsonschema import Draft202012Validator

from eprom_protocol.enums import DistributionRule, NotificationChannel
from eprom_protocol.messages import ProtocolError
from eprom_protocol.timefmt import parse_instant
from fake_eprom.patient_schema import PATIENT_SCHEMA

from bad_input import BARRAGE, JSON, NOT_BOOL, NOT_STRING, bad_national_ids, fails, not_json_object_text

pytestmark = pytest.mark.e2e

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PAPER_FORM = "1279fd55-3f22-4a7a-b4c5-84b582f88c54"
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
UNPUBLISHED_FORM = "71dda605-8068-4905-9939-f2c27ba58386"
CATALOG = {RAND_12, PAPER_FORM, SIGNED_FORM, UNPUBLISHED_FORM}
PDF_B64 = base64.b64encode(b"%PDF-1.4\n%x\n").decode()
TIMEOUT = 10
PATIENTS = Draft202012Validator(PATIENT_SCHEMA)

def _bad_instant(value) -> bool:
    """Unparsable, or not after the simulated clock's start (2025-01-06T08:00Z)."""
    try:
        return parse_instant(value, "x").isoformat() <= "2025-01-06T08:00:00+00:00"
    except ProtocolError:
        return True


BAD_ORDER_FIELDS = {
    "formId": st.one_of(NOT_STRING, st.text(max_size=40), st.uuids().map(str).filter(lambda u: u not in CATALOG),
                        st.just(UNPUBLISHED_FORM)),
    "nationalId": bad_national_ids(),
    "onBehalfOfNationalId": bad_national_ids(),
    "expiryDate": st.one_of(NOT_STRING, st.text(max_size=30),
                            st.dates(max_value=date(2025, 1, 6)).map(str)).filter(_bad_instant),
    "reminderDate": st.one_of(NOT_STRING, st.text(max_size=30)).filter(lambda v: fails(lambda x: parse_instant(x, "r"),
                                                                                      v)),
    "metadata": st.one_of(NOT_STRING, st.text(max_size=30).filter(not_json_object_text)),
    "distributionRule": JSON.filter(lambda v: v is not None and not DistributionRule.is_valid(v)),
    "dontStoreCompletedFormInPha": NOT_BOOL,
    "mustBeSigned": NOT_BOOL,
    "testMode": NOT_BOOL,
    "signingText": NOT_STRING,
    "physicalAddress": st.one_of(NOT_STRING.filter(lambda v: not isinstance(v, dict)),
                                 st.fixed_dictionaries({"postalCode": NOT_STRING})),
}


def _set(field, strategy):
    return strategy.map(lambda value: ("set", field, value))


ORDER_MUTATIONS = st.one_of(
    *[_set(field, strategy) for field, strategy in BAD_ORDER_FIELDS.items()],
    st.sampled_from(["formId", "nationalId", "expiryDate"]).map(lambda f: ("drop", f, None)),
    st.sampled_from([3, 4, 5, "PaperOnly", "basicorpaper"]).map(lambda r: ("paper-rule", None, r)),
    st.sampled_from([2, "NoDistribution"]).map(lambda r: ("signed-no-distribution", None, r)),
    st.just(("signed-on-behalf", None, None)),
)


def mutate(body: dict, mutations) -> dict:
    body = dict(body)
    for kind, field, value in mutations:
        if kind == "set":
            body[field] = value
        elif kind == "drop":
            body.pop(field, None)
        elif kind == "paper-rule":
            body.update(formId=RAND_12, distributionRule=value)
        elif kind == "signed-no-distribution":
            body.update(formId=SIGNED_FORM, distributionRule=value)
        else:
            body.update(formId=SIGNED_FORM, onBehalfOfNationalId="26670271527")
    return body


def valid_order() -> dict:
    return {"formId": PAPER_FORM, "nationalId": "26723916517", "expiryDate": "2025-01-20",
            "distributionRule": "BasicOrPaper", "metadata": "{\"age\": 76}"}


def refused(response: requests.Response, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"]


@pytest.fixture
def world(live):
    assert live.order(**valid_order()).status_code == 200  # a valid order before the barrage: it must stay alone
    before = live.get("/_sim/orders")
    yield live, before


@BARRAGE
@given(mutations=st.lists(ORDER_MUTATIONS, min_size=1, max_size=3))
def test_malformed_orders_are_refused_and_change_nothing(world, mutations):
    live, before = world
    refused(live.send("/api/v2/formorder", mutate(valid_order(), mutations)))
    assert live.get("/_sim/orders") == before


@BARRAGE
@given(body=st.one_of(JSON.filter(lambda v: not isinstance(v, dict)), st.dictionaries(st.text(max_size=8), JSON,
                                                                                      max_size=4)))
def test_bodies_that_are_not_order_objects(world, body):
    live, before = world
    refused(live.send("/api/v2/formorder", body))
    assert live.get("/_sim/orders") == before


@BARRAGE
@given(raw=st.binary(max_size=200))
def test_bytes_that_are_not_json(world, raw):
    live, before = world
    refused(live.send("/api/v2/formorder", data=raw))
    refused(live.send("/api/v2/messagetocitizen", data=raw))
    assert live.get("/_sim/orders") == before and live.get("/_sim/messages") == []


@BARRAGE
@given(key=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                        max_size=20).filter(lambda k: k not in ("key-a", "key-b", "key-gone"))))
def test_missing_or_unknown_keys(world, key):
    live, before = world
    refused(live.send("/api/v2/formorder", valid_order(), key=key), 401 if key is None else 400)
    assert live.get("/_sim/orders") == before


# --- letters ---------------------------------------------------------------------------------------------------
def valid_letter() -> dict:
    return {"nationalId": "26723916517", "senderInfo": {"organisationName": "Register"},
            "messageInfo": {"title": "Brev"},
            "documentCollection": {"documents": [{"isMainDocument": True, "content": PDF_B64}]},
            "notificationPriorityList": ["Helsenorge"]}


def _letter_doc(content=PDF_B64, main=True):
    return {"documents": [{"isMainDocument": main, "content": content}]}


LETTER_MUTATIONS = st.one_of(
    _set("nationalId", bad_national_ids()),
    _set("senderInfo", st.one_of(NOT_STRING.filter(lambda v: not isinstance(v, dict)),
                                 st.fixed_dictionaries({"organisationName": NOT_STRING}))),
    _set("messageInfo", st.one_of(NOT_STRING.filter(lambda v: not isinstance(v, dict)),
                                  st.fixed_dictionaries({"title": NOT_STRING}))),
    _set("documentCollection", st.one_of(
        st.just(None), st.just({}), st.just({"documents": []}), st.just(_letter_doc(main=False)),
        st.just({"documents": [{"isMainDocument": True, "content": PDF_B64}] * 2}), st.just([]),
        st.just({"mainDocument": None, "attachments": [{"content": PDF_B64}]}),
        st.text(max_size=20).filter(lambda t: t != ""),
        st.text(max_size=40).filter(lambda t: not _is_pdf_base64(t)).map(_letter_doc),
        NOT_STRING.map(_letter_doc))),
    _set("notificationPriorityList", st.one_of(
        st.just([]), st.just(["None"]), st.just([0]),
        st.lists(JSON.filter(lambda v: v is not None and not NotificationChannel.is_valid(v)), min_size=1,
                 max_size=3),
        NOT_STRING.filter(lambda v: not isinstance(v, list)))),
    _set("testMode", NOT_BOOL),
    _set("paperColorPrint", NOT_BOOL),
    st.sampled_from(["nationalId", "documentCollection"]).map(lambda f: ("drop", f, None)),
)


def _is_pdf_base64(text: str) -> bool:
    try:
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True).startswith(b"%PDF-")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


@BARRAGE
@given(mutations=st.lists(LETTER_MUTATIONS, min_size=1, max_size=3))
def test_malformed_letters_are_refused_and_change_nothing(live, mutations):
    refused(live.send("/api/v2/messagetocitizen", mutate(valid_letter(), mutations)))
    assert live.get("/_sim/messages") == []
    assert live.get("/_sim/message-faults") == {"badGateway": 0, "gatewayTimeout": 0}


# --- control calls --------------------------------------------------------------------------------------------
PATIENT_KEYS = ["nationalId", "birthDate", "age", "name", "reachable", "profile", "answer", "formData",
                "reservedAgainstResearch", "behaviour", "initiates"]
#: A field and a value that the patient contract (PATIENT_SCHEMA) refuses: the fake must refuse it too.
BAD_PATIENT_FIELDS = st.one_of(
    st.tuples(st.sampled_from(PATIENT_KEYS), JSON).filter(lambda kv: not PATIENTS.is_valid({kv[0]: kv[1]})),
    st.tuples(st.sampled_from(["answer", "profile"]), st.dictionaries(st.sampled_from(
        ["after", "partial", "onPaper", "helsenorgeConsent", "digitalMailbox", "postalAddress", "x"]), JSON,
        min_size=1, max_size=3)).filter(lambda kv: not PATIENTS.is_valid({kv[0]: kv[1]})),
    st.tuples(st.text(max_size=10).filter(lambda k: k not in PATIENT_KEYS), JSON),
)


@BARRAGE
@given(fields=st.lists(BAD_PATIENT_FIELDS, min_size=1, max_size=3))
def test_malformed_patients_are_refused_and_change_nothing(live, fields):
    body = dict(fields)
    response = live.post("/_sim/patients", body)
    refused(response)
    assert live.get("/_sim/patients") == []
    assert live.get("/_sim/orders") == []


@BARRAGE
@given(body=JSON)
def test_malformed_control_bodies(live, body):
    advance = live.post("/_sim/clock/advance", body)
    if advance.status_code != 200:
        refused(advance)
    faults = live.post("/_sim/message-faults", body)
    if faults.status_code != 200:
        refused(faults)
    assert live.get("/_sim/messages") == [] and live.get("/_sim/orders") == []
    answer = live.post("/_sim/orders/00000000-0000-4000-8000-000000000000/answer", body)
    assert answer.status_code in (400, 404) and set(answer.json()) == {"message"}
    requests.post(f"{live.url}/_sim/message-faults", json={"badGateway": 0, "gatewayTimeout": 0}, timeout=TIMEOUT)
