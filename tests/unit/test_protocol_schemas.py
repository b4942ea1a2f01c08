"""JSON Schemas of the ePROM v2 messages: the guide's examples pass; every violation is one clear
sentence naming the field; validate() raises ProtocolError(400)."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from eprom_protocol.messages import ProtocolError
from eprom_protocol.schemas import SCHEMAS, field_violations, validate, violations

ORDER_ID = "184738d0-3c39-e611-9c2a-34e6d72e03c7"  # the guide's example formOrderId
RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"

# seeds/002: "Eksempel request fra Proms (JSON)", both examples, verbatim.
GUIDE_STATUS_ORDERED = {
    "apiKey": "",
    "formOrderId": ORDER_ID,
    "notificationChannel": "Helsenorge",
    "timestamp": "2023-03-29T10:20:10.1804332",
    "timestampUtc": "2023-03-29T08:20:10.1804332Z",
    "formOrderStatus": "Ordered",
    "formOrderStatusErrorCode": "None",
}
GUIDE_STATUS_ERROR = {
    "apiKey": "",
    "formOrderId": ORDER_ID,
    "notificationChannel": "None",
    "formOrderStatus": "Error",
    "formOrderStatusErrorCode": "PatientUnreachable",
}
# seeds/004: the message status example, verbatim.
GUIDE_MESSAGE_STATUS = {
    "apiKey": "",
    "messageToCitizenId": ORDER_ID,
    "notificationChannel": "Helsenorge",
    "sentStatus": "Sent",
}
# seeds/002: the client-side order example (javascript), as JSON.
GUIDE_ORDER = {
    "formId": RAND_12,
    "nationalId": "26723916517",
    "expiryDate": "2023-04-05T10:20:10.180Z",
    "metadata": "{\"age\":76}",
    "dontStoreCompletedFormInPha": False,
    "distributionRule": "Basic",
    "mustBeSigned": False,
    "signingText": None,
    "physicalAddress": None,
    "testMode": False,
    "onBehalfOfNationalId": None,
}
PHYSICAL_ADDRESS = {"fullName": "Test Testesen", "addressLine1": "Testeveien 1",
                    "postalCode": "1234", "postalPlace": "Testestad"}
ORDER_RESPONSE = {**GUIDE_ORDER, "id": ORDER_ID, "singleUseCode": None,
                  "loginUrl": "https://example.invalid/login", "notificationChannel": 1}
RETURNED_FORM = {
    "apiKey": "key-a",
    "formOrderId": ORDER_ID,
    "formData": "{\"q1\": 3}",
    "formOrderStatus": "Completed",
    "signedFormId": "00000000-0000-0000-0000-000000000000",
    "timestamp": "2023-03-29T10:20:10.1804332",
    "timestampUtc": "2023-03-29T08:20:10.1804332Z",
    "scannedPaperId": None,
    "formDataWarnings": [{"fieldName": "q2", "warning": "out of range"}],
    "notificationChannel": 1,
    "isPatientInitiated": False,
    "patientInitiatedValues": {"formId": RAND_12, "nationalId": "26723916517",
                               "orderTimestamp": None, "orderTimestampUTC": None},
    "formOrderEventLog": [{"eventType": "FormOpened", "questionId": None,
                           "timestampUtc": "2023-03-29T08:21:00Z"},
                          {"eventType": 6, "timestampUtc": "2023-03-29T08:25:00Z"}],
    "filledOutBy": {"filledOutByActNationalId": "26723916517", "filledOutByActType": "SegSelv"},
}
EXPIRED_FORM = {"apiKey": "key-a", "formOrderId": ORDER_ID, "formData": None, "formOrderStatus": "Expired",
                "signedFormId": "00000000-0000-0000-0000-000000000000",
                "timestamp": "2023-03-29T10:20:10.1804332"}

VALID = [
    ("order-status-callback", GUIDE_STATUS_ORDERED),
    ("order-status-callback", GUIDE_STATUS_ERROR),
    ("message-status-callback", GUIDE_MESSAGE_STATUS),
    ("formorder-request", GUIDE_ORDER),
    ("formorder-request", {**GUIDE_ORDER, "physicalAddress": PHYSICAL_ADDRESS, "distributionRule": 5}),
    ("formorder-request", {"formId": RAND_12, "nationalId": "26723916517", "expiryDate": "2025-02-01"}),
    ("formorder-response", ORDER_RESPONSE),
    ("returned-form-callback", RETURNED_FORM),
    ("returned-form-callback", EXPIRED_FORM),
]


@pytest.mark.parametrize("schema_id, body", VALID, ids=[f"{s}-{i}" for i, (s, _) in enumerate(VALID)])
def test_valid_examples_pass(schema_id, body):
    assert violations(schema_id, body) == []
    validate(schema_id, body)  # does not raise


def test_status_callback_accepts_channel_as_number_and_name():
    """Current ePROM sends notificationChannel as a number, older examples as a name (SPEC §2)."""
    for channel in (0, 1, 4, "1", "Helsenorge", "helsenorge", "PhysicalMailbox"):
        assert violations("order-status-callback", {**GUIDE_STATUS_ORDERED, "notificationChannel": channel}) == []


def test_schema_ids():
    assert set(SCHEMAS) == {"formorder-request", "formorder-response", "order-status-callback",
                            "returned-form-callback", "message-status-callback", "messagetocitizen-request",
                            "messagetocitizen-response"}


# --- required fields -------------------------------------------------------------------

REQUIRED = [
    ("formorder-request", GUIDE_ORDER, ["formId", "nationalId", "expiryDate"]),
    ("formorder-response", ORDER_RESPONSE, ["id", "formId", "nationalId", "expiryDate", "notificationChannel"]),
    ("order-status-callback", GUIDE_STATUS_ORDERED,
     ["apiKey", "formOrderId", "notificationChannel", "formOrderStatus", "formOrderStatusErrorCode"]),
    ("returned-form-callback", RETURNED_FORM, ["apiKey", "formOrderId", "formOrderStatus", "timestamp"]),
    ("message-status-callback", GUIDE_MESSAGE_STATUS,
     ["apiKey", "messageToCitizenId", "notificationChannel", "sentStatus"]),
]


@pytest.mark.parametrize("schema_id, body, field", [
    (schema_id, body, field) for schema_id, body, fields in REQUIRED for field in fields
])
def test_missing_required_field_is_named(schema_id, body, field):
    broken = {k: v for k, v in body.items() if k != field}
    assert violations(schema_id, broken) == [f"{field}: is required"]
    with pytest.raises(ProtocolError) as err:
        validate(schema_id, broken)
    assert err.value.status == 400
    assert err.value.message == f"{field}: is required"


def test_optional_fields_are_optional():
    minimal = {k: GUIDE_ORDER[k] for k in ("formId", "nationalId", "expiryDate")}
    assert violations("formorder-request", minimal) == []


# --- wrong types -----------------------------------------------------------------------

@pytest.mark.parametrize("schema_id, body, field, value, expected", [
    ("formorder-request", GUIDE_ORDER, "formId", 123, "formId: must be of type string, not integer"),
    ("formorder-request", GUIDE_ORDER, "nationalId", 26723916517, "nationalId: must be of type string, not integer"),
    ("formorder-request", GUIDE_ORDER, "nationalId", None, "nationalId: must be of type string, not null"),
    ("formorder-request", GUIDE_ORDER, "expiryDate", ["2025-01-01"], "expiryDate: must be of type string, not array"),
    ("formorder-request", GUIDE_ORDER, "metadata", {"age": 76},
     "metadata: must be of type string or null, not object"),
    ("formorder-request", GUIDE_ORDER, "testMode", "true", "testMode: must be of type boolean or null, not string"),
    ("formorder-request", GUIDE_ORDER, "dontStoreCompletedFormInPha", 0,
     "dontStoreCompletedFormInPha: must be of type boolean or null, not integer"),
    ("formorder-request", GUIDE_ORDER, "physicalAddress", "Testeveien 1",
     "physicalAddress: must be of type object or null, not string"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "apiKey", None, "apiKey: must be of type string, not null"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "timestamp", 20230329, "timestamp: must be of type string or null, not integer"),
    ("returned-form-callback", RETURNED_FORM, "formData", {"q1": 3},
     "formData: must be of type string or null, not object"),
    ("returned-form-callback", RETURNED_FORM, "isPatientInitiated", 1.5,
     "isPatientInitiated: must be of type boolean or null, not number"),
])
def test_wrong_type_is_named(schema_id, body, field, value, expected):
    assert violations(schema_id, {**body, field: value}) == [expected]


def test_nested_wrong_type_names_the_path():
    body = copy.deepcopy(RETURNED_FORM)
    body["formDataWarnings"][0]["fieldName"] = 7
    assert violations("returned-form-callback", body) == [
        "formDataWarnings.0.fieldName: must be of type string or null, not integer"]
    body = {**GUIDE_ORDER, "physicalAddress": {**PHYSICAL_ADDRESS, "postalCode": 1234}}
    assert violations("formorder-request", body) == [
        "physicalAddress.postalCode: must be of type string or null, not integer"]


def test_nested_missing_field_names_the_path():
    body = copy.deepcopy(RETURNED_FORM)
    del body["formOrderEventLog"][1]["timestampUtc"]
    assert violations("returned-form-callback", body) == ["formOrderEventLog.1: timestampUtc: is required"]


@pytest.mark.parametrize("body, kind", [([], "array"), ("{}", "string"), (None, "null"), (3, "integer")])
def test_body_that_is_not_an_object(body, kind):
    with pytest.raises(ProtocolError) as err:
        validate("formorder-request", body)
    assert err.value.message == f"must be of type object, not {kind}"


# --- enums -----------------------------------------------------------------------------

@pytest.mark.parametrize("schema_id, body, field, value, enum", [
    ("formorder-request", GUIDE_ORDER, "distributionRule", "Fax", "DistributionRule"),
    ("formorder-request", GUIDE_ORDER, "distributionRule", 9, "DistributionRule"),
    ("formorder-request", GUIDE_ORDER, "distributionRule", True, "DistributionRule"),
    ("formorder-request", GUIDE_ORDER, "distributionRule", "", "DistributionRule"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "notificationChannel", "Pigeon", "NotificationChannel"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "notificationChannel", None, "NotificationChannel"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "formOrderStatus", "Cancelled", "FormOrderStatus"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "formOrderStatusErrorCode", 3, "FormOrderStatusErrorCode"),
    ("message-status-callback", GUIDE_MESSAGE_STATUS, "sentStatus", "Delivered", "SentStatus"),
    ("message-status-callback", GUIDE_MESSAGE_STATUS, "sentStatus", -1, "SentStatus"),
])
def test_bad_enum_value_names_field_and_allowed_values(schema_id, body, field, value, enum):
    found = violations(schema_id, {**body, field: value})
    assert len(found) == 1
    spelt = repr(value) if isinstance(value, str) else json.dumps(value)  # null and true, not None and True
    assert found[0].startswith(f"{field}: {spelt} is not a valid {enum}; expected one of: 0 ")


def test_bad_enum_message_lists_every_allowed_value():
    found = violations("message-status-callback", {**GUIDE_MESSAGE_STATUS, "sentStatus": "Delivered"})
    assert found == ["sentStatus: 'Delivered' is not a valid SentStatus; expected one of: 0 Sent, 1 Error"]


def test_optional_enum_accepts_null_but_not_nonsense():
    assert violations("formorder-request", {**GUIDE_ORDER, "distributionRule": None}) == []
    assert violations("returned-form-callback", {**RETURNED_FORM, "notificationChannel": None}) == []
    assert len(violations("returned-form-callback", {**RETURNED_FORM, "notificationChannel": "Fax"})) == 1


def test_nested_enum_names_the_path():
    body = copy.deepcopy(RETURNED_FORM)
    body["formOrderEventLog"][0]["eventType"] = "FormBurnt"
    body["filledOutBy"]["filledOutByActType"] = "Boss"
    assert [v.split(":")[0] for v in violations("returned-form-callback", body)] == [
        "filledOutBy.filledOutByActType", "formOrderEventLog.0.eventType"]


# --- uuids -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["not-a-uuid", "", "1bc5f9f0-2607-49eb-94f0-6af955bbd79", "1bc5f9f026074 9eb94f06af955bbd79a",
                                   "{1bc5f9f0-2607-49eb-94f0-6af955bbd79a}", "1bc5f9f0-2607-49eb-94f0-6af955bbd79g",
                                   "1bc5f9f0-2607-49eb-94f0-6af955bbd79a\n"])
def test_bad_uuid_is_named(value):
    assert violations("formorder-request", {**GUIDE_ORDER, "formId": value}) == [f"formId: {value!r} is not a valid uuid"]


def test_uuid_any_case_accepted():
    assert violations("formorder-request", {**GUIDE_ORDER, "formId": RAND_12.upper()}) == []


@pytest.mark.parametrize("schema_id, body, field", [
    ("formorder-response", ORDER_RESPONSE, "id"),
    ("order-status-callback", GUIDE_STATUS_ORDERED, "formOrderId"),
    ("returned-form-callback", RETURNED_FORM, "signedFormId"),
    ("message-status-callback", GUIDE_MESSAGE_STATUS, "messageToCitizenId"),
])
def test_every_id_field_is_a_uuid(schema_id, body, field):
    assert violations(schema_id, {**body, field: "42"}) == [f"{field}: '42' is not a valid uuid"]


# --- validate and the shape of messages ------------------------------------------------

def test_validate_raises_the_first_violation_as_a_400():
    body = {"formId": "nope", "nationalId": 5}
    found = violations("formorder-request", body)
    assert len(found) == 3  # expiryDate missing, formId not a uuid, nationalId not a string
    with pytest.raises(ProtocolError) as err:
        validate("formorder-request", body)
    assert err.value.status == 400
    assert err.value.message == found[0]
    assert err.value.body() == {"message": found[0]}


def test_violations_are_in_a_stable_order():
    body = {"nationalId": 5, "formId": "nope", "testMode": "x"}
    assert violations("formorder-request", body) == violations("formorder-request", dict(reversed(body.items())))


def test_every_violation_is_one_sentence_naming_its_field():
    body = {"formId": 1, "nationalId": [], "expiryDate": {}, "metadata": 3, "distributionRule": "x",
            "testMode": "x", "physicalAddress": {"fullName": 1}}
    found = violations("formorder-request", body)
    assert len(found) == 7
    for sentence, field in zip(found, ["distributionRule", "expiryDate", "formId", "metadata", "nationalId",
                                       "physicalAddress.fullName", "testMode"]):
        assert sentence.startswith(f"{field}: ")
        assert "\n" not in sentence


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=False)
                     | st.sampled_from(["", " 1 ", "Ordered", "completed", "Sent", "nonsense", ORDER_ID, RAND_12,
                                        ORDER_ID.upper(), ORDER_ID + "\n", "00000000-0000-0000-0000-000000000000"]),
                     lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
                     max_leaves=4)


@pytest.mark.parametrize("schema_id, base, fields", [
    ("returned-form-callback", RETURNED_FORM, ("formOrderId", "formOrderStatus")),
    ("message-status-callback", GUIDE_MESSAGE_STATUS, ("messageToCitizenId", "sentStatus")),
    ("formorder-request", GUIDE_ORDER, ("formId", "distributionRule")),
])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_field_violations_are_exactly_the_full_checks_sentences_about_those_fields(schema_id, base, fields, data):
    body = dict(base)
    for name in sorted(set(base) | set(fields)):
        choice = data.draw(st.sampled_from(["keep", "drop", "replace"]), label=name)
        if choice == "drop":
            body.pop(name, None)
        elif choice == "replace":
            body[name] = data.draw(_JSON, label=f"{name} value")
    expected = [p for p in violations(schema_id, body) if p.split(":")[0] in fields]
    assert field_violations(schema_id, body, fields) == expected


@pytest.mark.parametrize("schema_id, body, path", [
    ("order-status-callback", GUIDE_STATUS_ORDERED, ("timestamp",)),
    ("order-status-callback", GUIDE_STATUS_ORDERED, ("timestampUtc",)),
    ("returned-form-callback", RETURNED_FORM, ("timestamp",)),
    ("returned-form-callback", RETURNED_FORM, ("formDataWarnings", 0, "fieldName")),
    ("returned-form-callback", RETURNED_FORM, ("filledOutBy", "filledOutByActType")),
])
def test_a_callback_field_ePROM_may_leave_unset_may_be_null(schema_id, body, path):
    """.NET sends null for what it leaves unset; the proxy refuses a callback its schema refuses, and one
    refused is never delivered (an Error with null timestamps was a 400 for ever)."""
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    assert path[-1] in target, "the example has the field"
    target[path[-1]] = None
    assert violations(schema_id, body) == []
