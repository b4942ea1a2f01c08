"""The patient contract: the JSON Schema of a `POST /_sim/patients` body (and of a scenario file's patient).

Plain JSON Schema (draft 2020-12), no custom keywords, so other tools can embed it. An optional field may
also be null, which means the same as leaving it out, except `profile.contactRegister` and
`profile.postalAddress`, where null says "has none". The schema checks shapes; the fake ePROM also checks
what a schema cannot (check digits, real dates, that birthDate and age agree with the id, that an initiated
form exists and has an owner, that a behaviour and an answer go together, that a wait is at most 100 years in
all, that nobody named was born after today, that a made-up id's birth year is one an id can tell) and answers
those with a 400 naming the field."""
from __future__ import annotations

from typing import Any

from eprom_protocol.enums import FilledOutByActType, NotificationChannel
from eprom_protocol.schemas import UUID_PATTERN
from eprom_protocol.timefmt import LONGEST_DURATION_TEXT

# "$(?!\n)": Python's re lets "$" match before a final newline; in ECMA-262 the lookahead is a no-op.
#: ISO-8601 durations in weeks, days, hours, minutes, seconds, each may have a decimal fraction (PT1.5H,
#: P0.5D): no years or months, their length varies (written as zero, P0Y0M3D, they are allowed).
_N = r"[0-9]+(\.[0-9]+)?"
DURATION_PATTERN = (rf"^P(?!$)(0+Y)?(0+M)?({_N}W)?({_N}D)?(T(?=[0-9])({_N}H)?({_N}M)?({_N}S)?)?$(?!\n)")
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$(?!\n)"
NATIONAL_ID_PATTERN = r"^[0-9]{11}$(?!\n)"

HELSENORGE_CONSENTS = ("full", "limited", "none")
BEHAVIOURS = ("answers", "never", "opensNeverDelivers", "answersAfterExpiry", "cancelsSigningThenSigns",
              "paperMailReturned")
REAL_CHANNEL_NAMES = tuple(c.wire_name for c in NotificationChannel if c is not NotificationChannel.None_)


def _or_null(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


_NATIONAL_ID = {"type": "string", "pattern": NATIONAL_ID_PATTERN,
                "description": "11 digits: a fødselsnummer or D-nummer (synthetic month+65 / month+80 ids too)"}
_DURATION = {"type": "string", "pattern": DURATION_PATTERN,
             "description": "ISO-8601 duration such as P3D or PT12H (weeks, days, hours, minutes, seconds), at "
                            f"most {LONGEST_DURATION_TEXT} in all"}
_DATE = {"type": "string", "pattern": DATE_PATTERN, "description": "YYYY-MM-DD"}
_BOOL = {"type": "boolean"}
_CHANNEL = {
    "description": "a notification channel by name or number (None/0 is not a channel)",
    "anyOf": [{"type": "string", "enum": list(REAL_CHANNEL_NAMES)},
              {"type": "integer", "minimum": 1, "maximum": len(REAL_CHANNEL_NAMES)}],
}
_POSTAL_ADDRESS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["fullName", "addressLine1", "postalCode", "postalPlace"],
    "properties": {k: {"type": "string", "minLength": 1}
                   for k in ("fullName", "addressLine1", "postalCode", "postalPlace")},
}
_CONTACT_REGISTER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lastUpdated"],
    "properties": {
        "email": {"type": ["string", "null"]},
        "mobile": {"type": ["string", "null"]},
        "lastUpdated": {**_DATE, "description": "digitally active = updated within 18 months of the clock's now"},
    },
}
_FORM_DATA = {"type": ["object", "null"], "description": "fixed answers: question id -> answer (null: generated)"}
_WARNINGS = {
    "type": ["array", "null"],
    "items": {"type": "object", "additionalProperties": False, "required": ["fieldName", "warning"],
              "properties": {"fieldName": {"type": "string"}, "warning": {"type": "string"}}},
}
_FILLED_OUT_BY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["actType"],
    "properties": {"nationalId": _or_null(_NATIONAL_ID),
                   "actType": {"type": "string", "enum": [m.name for m in FilledOutByActType]}},
}


def _answer_schema(after_required: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["after"] if after_required else [],
        "properties": {
            "after": _DURATION if after_required else _or_null(_DURATION),
            "formData": _FORM_DATA,
            "partial": {**_or_null(_BOOL), "description": "leave some questions out: they come back as "
                                                          "formDataWarnings"},
            "warnings": _WARNINGS,
            "onPaper": {**_or_null(_BOOL), "description": "answered on paper (scannedPaperId); needs the "
                                                          "PhysicalMailbox channel. null: on paper when the "
                                                          "order went by paper"},
            "filledOutBy": _or_null(_FILLED_OUT_BY),
        },
    }


#: An answer as `answer` takes it: `after` counts from when the order reached the patient.
ANSWER_SCHEMA = _answer_schema(after_required=True)

PATIENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "fake-eprom-patient",
    "title": "A simulated patient of the fake ePROM",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "nationalId": {**_or_null(_NATIONAL_ID),
                       "description": "absent: a synthetic month+65 id for birthDate/age (seeded)"},
        "birthDate": {**_or_null(_DATE), "description": "not after today; must agree with nationalId if both"},
        "age": {**_or_null({"type": "integer", "minimum": 0, "maximum": 120}),
                "description": "years on the simulated clock's today (default 45); must agree with nationalId"},
        "name": {**_or_null({"type": "string", "minLength": 1}), "description": "default: a seeded Faker name"},
        "reachable": {**_or_null({"type": "array", "items": _CHANNEL, "uniqueItems": True}),
                      "description": "overrides the profile: exactly these channels ([] = nobody reaches them)"},
        "profile": _or_null({
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "helsenorgeConsent": _or_null({"type": "string", "enum": list(HELSENORGE_CONSENTS)}),
                "representedBy": {**_or_null(_NATIONAL_ID),
                                  "description": "a parent or guardian: Helsenorge reaches a child under 16"},
                "reservedAgainstResearch": _or_null(_BOOL),
                "digitalMailbox": {**_or_null(_BOOL), "description": "has a secure digital mailbox (needs 18+)"},
                "contactRegister": {**_or_null(_CONTACT_REGISTER),
                                    "description": "absent: seeded Faker e-mail and mobile updated 30 days "
                                                   "before the clock's start; null: none"},
                "postalAddress": {**_or_null(_POSTAL_ADDRESS),
                                  "description": "absent: a seeded Faker address; null: none"},
            },
        }),
        "answer": {**_or_null(ANSWER_SCHEMA), "description": "null: never answers"},
        "formData": _FORM_DATA,
        "reservedAgainstResearch": {**_or_null(_BOOL), "description": "same as profile.reservedAgainstResearch"},
        "behaviour": {**_or_null({"type": "string", "enum": list(BEHAVIOURS)}),
                      "description": "default: answers when an answer is given, else never"},
        "initiates": _or_null({
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["formId", "after"],
                "properties": {
                    "formId": {"type": "string", "pattern": UUID_PATTERN},
                    "after": {**_DURATION, "description": "from when the patient was added"},
                    "answer": {**_or_null(_answer_schema(after_required=False)),
                               "description": "after counts from the patient's own order (default PT10M)"},
                },
            },
        }),
    },
}
