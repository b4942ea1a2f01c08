"""The bodies of the callbacks ePROM PUTs to `{ApiBaseUrl}/api/PromsFormOrder` (SPEC §2). Pure functions.

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
)
from eprom_protocol.messages import ZERO_UUID
from eprom_protocol.timefmt import local_timestamp, utc_timestamp

from .config import OrderingSystem

STATUS = "status"
RETURNED_FORM = "returnedForm"

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


def completed_body(*, system: OrderingSystem, order_id: str, channel: Channel, form_data: str, answered_at: datetime,
                   reached_at: datetime, signed_form_id: str | None, scanned_paper_id: str | None,
                   on_behalf_of: bool, recipient_national_id: str) -> dict[str, Any]:
    """A returned form the patient (or a parent on behalf of a child) filled out."""
    opened = max(reached_at, answered_at - FILL_OUT_TIME)
    events = [(Event.FormOpened, opened)]
    if signed_form_id is not None:
        events += [(Event.SigningStarted, max(opened, answered_at - SIGNING_TIME)),
                   (Event.SigningCompleted, answered_at)]
    events.append((Event.FormDelivered, answered_at))
    if on_behalf_of:
        filled_out_by = {"filledOutByActNationalId": recipient_national_id,
                         "filledOutByActType": FilledOutByActType.Foreldrerepresentasjon.name}
    else:
        filled_out_by = {"filledOutByActNationalId": None, "filledOutByActType": FilledOutByActType.SegSelv.name}
    return _returned_form(system, order_id, channel, FormOrderStatus.Completed, answered_at,
                          formData=form_data, signedFormId=signed_form_id or ZERO_UUID,
                          scannedPaperId=scanned_paper_id,
                          formOrderEventLog=[{"eventType": kind.name, "questionId": None,
                                              "timestampUtc": utc_timestamp(at)} for kind, at in events],
                          filledOutBy=filled_out_by)


def expired_body(*, system: OrderingSystem, order_id: str, channel: Channel, expired_at: datetime) -> dict[str, Any]:
    """A returned form nobody filled out before its expiryDate."""
    return _returned_form(system, order_id, channel, FormOrderStatus.Expired, expired_at, formData=None,
                          signedFormId=ZERO_UUID, scannedPaperId=None, formOrderEventLog=[], filledOutBy=None)


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
        "formDataWarnings": [],
        "notificationChannel": channel_value(channel, system),
        "isPatientInitiated": False,
        "patientInitiatedValues": None,
        "formOrderEventLog": fields["formOrderEventLog"],
        "filledOutBy": fields["filledOutBy"],
    }
