"""The bodies of the callbacks ePROM PUTs to `{ApiBaseUrl}/api/PromsFormOrder` and `/api/MessageToCitizen`
(SPEC §2), and the event logs a returned form carries. Pure functions.

Enums travel as names, except notificationChannel, which follows the ordering system's channel_format
(a number, as today's ePROM sends it, or a name, as the guide's older examples show)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from eprom_protocol.enums import (
    FilledOutByActType,
    FormOrderEventLogType as Event,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel as Channel,
    SentStatus,
)
from eprom_protocol.messages import ZERO_UUID
from eprom_protocol.timefmt import later, local_timestamp, utc_timestamp

from .config import OrderingSystem

STATUS = "status"
RETURNED_FORM = "returnedForm"
MESSAGE_STATUS = "messageStatus"

FILL_OUT_TIME = timedelta(minutes=10)  # the patient opens the form this long before delivering it
SIGNING_TIME = timedelta(minutes=2)  # and starts signing this long before


def channel_value(channel: Channel, system: OrderingSystem) -> int | str:
    return channel.wire_name if system.channel_format == "name" else int(channel)


def order_status_body(*, system: OrderingSystem, order_id: str, channel: Channel, status: FormOrderStatus,
                      error_code: FormOrderStatusErrorCode, timestamp: datetime) -> dict[str, Any]:
    return {
        "apiKey": system.api_key,
        "formOrderId": order_id,
        "notificationChannel": channel_value(channel, system),
        "timestamp": local_timestamp(timestamp),
        "timestampUtc": utc_timestamp(timestamp),
        "formOrderStatus": status.name,
        "formOrderStatusErrorCode": error_code.wire_name,
    }


Events = list[tuple[Event, "str | None", datetime]]


def filling_events(question_ids: list[str], reached_at: datetime, answered_at: datetime, *, signed: bool,
                   cancel_signing_first: bool = False, on_paper: bool = False) -> Events:
    """The event log of a form filled out and delivered at answered_at: opened FILL_OUT_TIME before (never
    before it reached the patient), each question accessed in turn, signing at the end, then delivered.
    A paper answer is only delivered (scanned): nobody saw the patient open it."""
    if on_paper:
        return [(Event.FormDelivered, None, answered_at)]
    opened = max(reached_at, answered_at - FILL_OUT_TIME)
    events: Events = [(Event.FormOpened, None, opened)]
    signing_from = answered_at
    if signed:
        signing_from = max(opened, answered_at - SIGNING_TIME * (2 if cancel_signing_first else 1))
    events += [(Event.QuestionAccessed, qid, at) for qid, at in zip(question_ids, _spread(opened, signing_from,
                                                                                         len(question_ids)))]
    if signed and cancel_signing_first:
        cancelled, again = _spread(signing_from, answered_at, 2)
        events += [(Event.SigningStarted, None, signing_from), (Event.SigningCancelled, None, cancelled),
                   (Event.SigningStarted, None, again), (Event.SigningCompleted, None, answered_at)]
    elif signed:
        events += [(Event.SigningStarted, None, signing_from), (Event.SigningCompleted, None, answered_at)]
    events.append((Event.FormDelivered, None, answered_at))
    return events


def opening_events(question_ids: list[str], opened: datetime) -> Events:
    """A patient who opens the form, looks at the first half of the questions (a minute each) and leaves."""
    looked_at = question_ids[:(len(question_ids) + 1) // 2]
    return [(Event.FormOpened, None, opened)] + [
        (Event.QuestionAccessed, qid, later(opened, timedelta(minutes=i + 1))) for i, qid in enumerate(looked_at)]


def _spread(start: datetime, end: datetime, n: int) -> list[datetime]:
    """n instants evenly inside (start, end), whole seconds after start."""
    span = max(0.0, (end - start).total_seconds())
    return [start + timedelta(seconds=int(span * (i + 1) / (n + 1))) for i in range(n)]


def event_log(events: Events) -> list[dict]:
    return [{"eventType": kind.name, "questionId": qid, "timestampUtc": utc_timestamp(at)} for kind, qid, at in events]


def filled_out_by(*, given: tuple[str | None, FilledOutByActType] | None, on_behalf_of: bool,
                  recipient_national_id: str, representative: str | None, on_paper: bool) -> dict[str, Any]:
    """Who filled the form out: a scripted answer says so; else the recipient on behalf of someone (a
    parent), a child's representative, nobody knows (paper), or the patient."""
    if given is not None:
        national_id, act = given
    elif on_behalf_of:
        national_id, act = recipient_national_id, FilledOutByActType.Foreldrerepresentasjon
    elif representative is not None:
        national_id, act = representative, FilledOutByActType.Foreldrerepresentasjon
    elif on_paper:
        national_id, act = None, FilledOutByActType.Ukjent
    else:
        national_id, act = None, FilledOutByActType.SegSelv
    return {"filledOutByActNationalId": national_id, "filledOutByActType": act.name}


def patient_initiated_values(*, form_id: str, national_id: str, ordered_at: datetime) -> dict[str, Any]:
    return {"formId": form_id, "nationalId": national_id, "orderTimestamp": local_timestamp(ordered_at),
            "orderTimestampUTC": utc_timestamp(ordered_at)}


def completed_body(*, system: OrderingSystem, order_id: str, channel: Channel, form_data: str, answered_at: datetime,
                   signed_form_id: str | None, scanned_paper_id: str | None, warnings: list[dict],
                   events: Events, filled_out_by: dict[str, Any],
                   patient_initiated: dict[str, Any] | None = None) -> dict[str, Any]:
    """A returned form the patient (or someone for them) filled out."""
    return _returned_form(system, order_id, channel, FormOrderStatus.Completed, answered_at,
                          formData=form_data, signedFormId=signed_form_id or ZERO_UUID,
                          scannedPaperId=scanned_paper_id, formDataWarnings=warnings,
                          formOrderEventLog=event_log(events), filledOutBy=filled_out_by,
                          patientInitiatedValues=patient_initiated)


def expired_body(*, system: OrderingSystem, order_id: str, channel: Channel, expired_at: datetime,
                 events: Events = ()) -> dict[str, Any]:
    """A returned form nobody delivered before its expiryDate (its log shows it if the patient opened it)."""
    return _returned_form(system, order_id, channel, FormOrderStatus.Expired, expired_at, formData=None,
                          signedFormId=ZERO_UUID, scannedPaperId=None, formDataWarnings=[],
                          formOrderEventLog=event_log(list(events)), filledOutBy=None, patientInitiatedValues=None)


def message_status_body(*, system: OrderingSystem, message_id: str, channel: Channel,
                        status: SentStatus) -> dict[str, Any]:
    """PUT {ApiBaseUrl}/api/MessageToCitizen: the letter was sent on a channel, or could not be (None)."""
    return {
        "apiKey": system.api_key,
        "messageToCitizenId": message_id,
        "notificationChannel": channel_value(channel, system),
        "sentStatus": status.name,
    }


def _returned_form(system: OrderingSystem, order_id: str, channel: Channel, status: FormOrderStatus, at: datetime,
                   **fields: Any) -> dict[str, Any]:
    return {
        "apiKey": system.api_key,
        "formOrderId": order_id,
        "formData": fields["formData"],
        "formOrderStatus": status.name,
        "signedFormId": fields["signedFormId"],
        "timestamp": local_timestamp(at),
        "timestampUtc": utc_timestamp(at),
        "scannedPaperId": fields["scannedPaperId"],
        "formDataWarnings": fields["formDataWarnings"],
        "notificationChannel": channel_value(channel, system),
        "isPatientInitiated": fields["patientInitiatedValues"] is not None,
        "patientInitiatedValues": fields["patientInitiatedValues"],
        "formOrderEventLog": fields["formOrderEventLog"],
        "filledOutBy": fields["filledOutBy"],
    }
