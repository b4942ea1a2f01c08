"""Instants on the wire: parsing request dates, and the two timestamp styles ePROM sends
(`timestamp` in Norwegian local time without offset, `timestampUtc` with Z)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import isodate

from .json_text import shown
from .messages import ProtocolError

OSLO = ZoneInfo("Europe/Oslo")


def parse_instant(value: object, field: str) -> datetime:
    """An aware UTC datetime from an ISO-8601 date or date-time.

    A date-time without offset is Norwegian local time (as ePROM, a .NET service in Norway,
    reads it); a bare date means 00:00 local time that day."""
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(f"{field}: must be an ISO-8601 date or date-time string")
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0, 0))
        else:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ProtocolError(f"{field}: {value!r} is not an ISO-8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=OSLO)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # the first or last hours of year 1 or 9999, which UTC takes past the calendar
        raise ProtocolError(f"{field}: {value!r} is at the very edge of the calendar, outside the dates "
                            "from 0001-01-02 to 9999-12-30") from None


#: The longest duration anything here takes (a patient's wait, a status delay, when a scripted order comes and
#: how long it lasts): 100 years is longer than any run; more (P99999999D) only overflowed the calendar later.
LONGEST_DURATION = timedelta(days=36525)
LONGEST_DURATION_TEXT = f"100 years (P{LONGEST_DURATION.days}D)"


def not_a_duration(value: object, field: str) -> str:
    """The one text for a value that is no duration a client may give."""
    return f"{field}: {shown(value)} is not an ISO-8601 duration such as 'P3D'"


def parse_duration(value: object, field: str) -> timedelta:
    """An ISO-8601 duration such as P3D or PT12H (no years or months: their length is ambiguous), at most
    LONGEST_DURATION."""
    def too_long() -> ProtocolError:
        return ProtocolError(f"{field}: {shown(value)} is too long: at most {LONGEST_DURATION_TEXT}")

    try:
        parsed = isodate.parse_duration(str(value))
    except OverflowError:  # more days than a timedelta holds
        raise too_long() from None
    except (isodate.ISO8601Error, ValueError):
        raise ProtocolError(not_a_duration(value, field)) from None
    if not isinstance(parsed, timedelta):
        raise ProtocolError(f"{field}: {shown(value)}: use days, hours, minutes or seconds, not years or months")
    if parsed < timedelta(0):
        raise ProtocolError(f"{field}: {shown(value)} must not be negative")
    if parsed > LONGEST_DURATION:
        raise too_long()
    return parsed


def utc_timestamp(instant: datetime) -> str:
    """`timestampUtc` style: 2023-03-29T08:20:10.1804332Z (we give microseconds)."""
    return instant.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


#: The calendar's last instant. An order may expire late in year 9999 ("never", as .NET writes it), so times
#: computed from such an instant stop here rather than overflow.
END_OF_CALENDAR = datetime.max.replace(tzinfo=timezone.utc)


def later(instant: datetime, delta: timedelta) -> datetime:
    """instant + delta, or the calendar's last instant when that is past it: planning a step after an expiry late
    in 9999 must not crash the due-work run."""
    try:
        return instant + delta
    except OverflowError:
        return END_OF_CALENDAR


def _in_norway(instant: datetime) -> datetime:
    """Norwegian local time, no offset. The last hours of 9999 in UTC are already past the calendar in Norway:
    they are its last instant."""
    try:
        return instant.astimezone(OSLO).replace(tzinfo=None)
    except OverflowError:
        return datetime.max


def local_timestamp(instant: datetime) -> str:
    """`timestamp` style: Norwegian local time, no offset."""
    return _in_norway(instant).isoformat(timespec="microseconds")


def norwegian_date(instant: datetime) -> date:
    """The date in Norway at `instant`: what ages and "within 18 months" count by, as ePROM's local
    `timestamp` does (00:30 on 7 January in Oslo is still 6 January in UTC)."""
    return _in_norway(instant).date()


def iso(instant: datetime) -> str:
    """The control API's style: ISO-8601 with an explicit UTC offset."""
    return instant.astimezone(timezone.utc).isoformat()
