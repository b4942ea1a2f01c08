"""JSON Schemas of the ePROM v2 messages, built from the enums so each fact lives once, and a validator
that turns the first violation into one clear sentence."""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from .enums import (
    DistributionRule,
    FilledOutByActType,
    FormOrderEventLogType,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel,
    RETURNED_FORM_STATUSES,
    SentStatus,
    WireEnum,
)
from .messages import ProtocolError

# "(?!\n)": Python's re (which jsonschema uses) lets "$" match before a final newline.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$(?!\n)"
UUID_RE = re.compile(UUID_PATTERN)  # the same pattern for code that checks ids outside a schema


ENUMS: dict[str, type[WireEnum]] = {
    cls.__name__: cls
    for cls in (DistributionRule, NotificationChannel, FormOrderStatus, FormOrderStatusErrorCode,
                SentStatus, FormOrderEventLogType, FilledOutByActType)
}


def _enum(cls: type[WireEnum]) -> dict:
    """A name (any case, as .NET reads it) or a number of the enum: checked by the wireEnum keyword."""
    return {"wireEnum": cls.__name__,
            "description": "one of: " + ", ".join(f"{m.value} {m.wire_name}" for m in cls)}


def _check_wire_enum(validator, enum_name, instance, schema):
    if instance is None and schema.get("nullable"):
        return
    if not ENUMS[enum_name].is_valid(instance):
        yield ValidationError(ENUMS[enum_name]._expected(instance))


def _opt(schema: dict) -> dict:
    """The same schema, also accepting JSON null (.NET clients send null for unset optionals)."""
    if "wireEnum" in schema:
        return {**schema, "nullable": True}
    kind = schema["type"]
    return {**schema, "type": (kind if isinstance(kind, list) else [kind]) + ["null"]}


STRING = {"type": "string"}
BOOL = {"type": "boolean"}
UUID = {"type": "string", "pattern": UUID_PATTERN}

PHYSICAL_ADDRESS = {
    "type": "object",
    "properties": {k: _opt(STRING) for k in ("fullName", "addressLine1", "postalCode", "postalPlace")},
}

FORM_ORDER_REQUEST = {
    "$id": "formorder-request",
    "type": "object",
    "required": ["formId", "nationalId", "expiryDate"],
    "properties": {
        "formId": UUID,
        "nationalId": STRING,
        "expiryDate": STRING,
        "reminderDate": _opt(STRING),
        "metadata": _opt(STRING),
        "dontStoreCompletedFormInPha": _opt(BOOL),
        "distributionRule": _opt(_enum(DistributionRule)),
        "mustBeSigned": _opt(BOOL),
        "signingText": _opt(STRING),
        "physicalAddress": _opt(PHYSICAL_ADDRESS),
        "testMode": _opt(BOOL),
        "onBehalfOfNationalId": _opt(STRING),
    },
}

FORM_ORDER_RESPONSE = {
    "$id": "formorder-response",
    "type": "object",
    "required": ["id", "formId", "nationalId", "expiryDate", "notificationChannel"],
    "properties": {
        **FORM_ORDER_REQUEST["properties"],
        "id": UUID,
        "singleUseCode": _opt(STRING),
        "loginUrl": _opt(STRING),
        "notificationChannel": _enum(NotificationChannel),
    },
}

ORDER_STATUS_CALLBACK = {
    "$id": "order-status-callback",
    "type": "object",
    # No timestamp/timestampUtc: the guide's own Error example (seeds/002) has neither.
    "required": ["apiKey", "formOrderId", "notificationChannel", "formOrderStatus", "formOrderStatusErrorCode"],
    "properties": {
        "apiKey": STRING,
        "formOrderId": UUID,
        "notificationChannel": _enum(NotificationChannel),
        "timestamp": _opt(STRING),
        "timestampUtc": _opt(STRING),
        "formOrderStatus": _enum(FormOrderStatus),
        "formOrderStatusErrorCode": _enum(FormOrderStatusErrorCode),
    },
}

# What ePROM may leave unset it may send as null (.NET): every field but the id, the key and the status takes
# null, also inside lists and objects. The proxy refuses a callback that breaks these (docs/PROXY.md), so
# they must never be stricter than what ePROM sends.
RETURNED_FORM_CALLBACK = {
    "$id": "returned-form-callback",
    "type": "object",
    "required": ["apiKey", "formOrderId", "formOrderStatus", "timestamp"],
    "properties": {
        "apiKey": STRING,
        "formOrderId": UUID,
        "formData": _opt(STRING),
        "formOrderStatus": _enum(FormOrderStatus),
        "signedFormId": _opt(UUID),
        "timestamp": _opt(STRING),
        "timestampUtc": _opt(STRING),
        "scannedPaperId": _opt(STRING),
        "formDataWarnings": _opt({
            "type": "array",
            "items": {"type": "object", "required": ["fieldName", "warning"],
                      "properties": {"fieldName": _opt(STRING), "warning": _opt(STRING)}},
        }),
        "notificationChannel": _opt(_enum(NotificationChannel)),
        "isPatientInitiated": _opt(BOOL),
        "patientInitiatedValues": _opt({
            "type": "object",
            "properties": {"formId": _opt(UUID), "nationalId": _opt(STRING), "orderTimestamp": _opt(STRING),
                           "orderTimestampUTC": _opt(STRING)},
        }),
        "formOrderEventLog": _opt({
            "type": "array",
            "items": {"type": "object", "required": ["eventType", "timestampUtc"],
                      "properties": {"eventType": _enum(FormOrderEventLogType),
                                     "questionId": _opt(STRING), "timestampUtc": _opt(STRING)}},
        }),
        "filledOutBy": _opt({
            "type": "object",
            "properties": {"filledOutByActNationalId": _opt(STRING),
                           "filledOutByActType": _opt(_enum(FilledOutByActType))},
        }),
    },
}

MESSAGE_STATUS_CALLBACK = {
    "$id": "message-status-callback",
    "type": "object",
    "required": ["apiKey", "messageToCitizenId", "notificationChannel", "sentStatus"],
    "properties": {
        "apiKey": STRING,
        "messageToCitizenId": UUID,
        "notificationChannel": _opt(_enum(NotificationChannel)),
        "sentStatus": _enum(SentStatus),
    },
}

# Our reading of `documentCollection` (the guide names it but does not spell it out). Accepted: an object
# {"documents": [document...]} where the main one has isMainDocument true, an object {"mainDocument": document,
# "attachments": [document...]}, or a bare list of documents. Each document is a base64 PDF. No main document:
# MAIN_DOCUMENT_MISSING, ePROM's own text.
MESSAGE_DOCUMENT = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "title": _opt(STRING),
        "fileName": _opt(STRING),
        "mimeType": _opt(STRING),
        "isMainDocument": _opt(BOOL),
        "content": {**STRING, "description": "the PDF, base64"},
    },
}

MESSAGE_TO_CITIZEN_REQUEST = {
    "$id": "messagetocitizen-request",
    "type": "object",
    "properties": {
        # checked after the main document, so that the documented error comes first
        "nationalId": _opt(STRING),
        "senderInfo": _opt({"type": "object",
                            "properties": {"organisationName": _opt(STRING), "organisationNr": _opt(STRING)}}),
        "messageInfo": _opt({"type": "object", "properties": {"title": _opt(STRING), "description": _opt(STRING),
                                                               "merknad": _opt(STRING)}}),
        "documentCollection": {
            "type": ["object", "array", "null"],
            "properties": {"documents": _opt({"type": "array", "items": MESSAGE_DOCUMENT}),
                           "mainDocument": _opt(MESSAGE_DOCUMENT),
                           "attachments": _opt({"type": "array", "items": MESSAGE_DOCUMENT})},
            "items": MESSAGE_DOCUMENT,
        },
        "notificationPriorityList": _opt({"type": "array", "items": _enum(NotificationChannel)}),
        "testMode": _opt(BOOL),
        "paperColorPrint": _opt(BOOL),
    },
}

MESSAGE_TO_CITIZEN_RESPONSE = {
    "$id": "messagetocitizen-response",
    "type": "object",
    "required": ["messageToCitizenId", "notificationChannel"],
    "properties": {
        "messageToCitizenId": UUID,
        "notificationChannel": _enum(NotificationChannel),  # 0 (None): the citizen cannot be reached
    },
}

SCHEMAS: dict[str, dict] = {
    s["$id"]: s
    for s in (FORM_ORDER_REQUEST, FORM_ORDER_RESPONSE, ORDER_STATUS_CALLBACK,
              RETURNED_FORM_CALLBACK, MESSAGE_STATUS_CALLBACK, MESSAGE_TO_CITIZEN_REQUEST,
              MESSAGE_TO_CITIZEN_RESPONSE)
}


_WireValidator = validators.extend(Draft202012Validator, {"wireEnum": _check_wire_enum})


def _is_json_number(checker, instance: Any) -> bool:
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and math.isfinite(instance)


#: For documents read from YAML (configurations, scenario files): YAML has .nan and .inf, JSON has neither,
#: and a NaN passes every bound a schema sets (NaN > 120 is false, and so is NaN <= 0): a lifetime or a
#: timeout of NaN was taken. Here "number" means a JSON number, as the wire's strict parser does.
DocumentValidator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_json_number))


@lru_cache(maxsize=None)
def _validator(schema_id: str) -> Draft202012Validator:
    return _WireValidator(SCHEMAS[schema_id])


def violations(schema_id: str, body: Any) -> list[str]:
    """Every violation of the schema as one readable sentence each, in a stable order."""
    return _sentences(_validator(schema_id), body)


@lru_cache(maxsize=None)
def _fields_validator(schema_id: str, fields: tuple[str, ...]) -> Draft202012Validator:
    schema = SCHEMAS[schema_id]
    return _WireValidator({"type": "object",
                           "required": [f for f in schema.get("required", ()) if f in fields],
                           "properties": {f: schema["properties"][f] for f in fields}})


def field_violations(schema_id: str, body: Any, fields: tuple[str, ...]) -> list[str]:
    """violations() of only these top-level fields (what they must be, and whether they must be there):
    for a caller that needs just those, at a fraction of the cost of checking everything."""
    return _sentences(_fields_validator(schema_id, fields), body)


def form_order_callback_schema(status: FormOrderStatus) -> str:
    """Which schema a PUT to /api/PromsFormOrder answers to: a returned form (Completed, Expired) or an
    order status (every other status): the proxy's intake checks a callback against it."""
    return "returned-form-callback" if status in RETURNED_FORM_STATUSES else "order-status-callback"


def _sentences(validator: Draft202012Validator, body: Any) -> list[str]:
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(map(str, e.path)), e.validator))
    return [_describe(e) for e in errors]


def validate(schema_id: str, body: Any) -> None:
    """Raise ProtocolError(400) naming the first violation, if any."""
    found = violations(schema_id, body)
    if found:
        raise ProtocolError(found[0])


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    where = f"{path}: " if path else ""
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{where}{missing}: is required"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where}must be of type {expected}, not {_json_type(error.instance)}"
    if error.validator == "pattern" and error.validator_value == UUID_PATTERN:
        return f"{where}{error.instance!r} is not a valid uuid"
    return f"{where}{error.message}"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
