"""Instants and durations on the wire: Norwegian local time by default, the two ePROM timestamp styles."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprom_protocol.messages import ProtocolError
from eprom_protocol.timefmt import (
    OSLO,
    iso,
    local_timestamp,
    norwegian_date,
    parse_duration,
    parse_instant,
    utc_timestamp,
)

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parse_instant ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # a bare date is 00:00 Norwegian time: CET (+01:00) in winter, CEST (+02:00) in summer
    ("2025-01-15", utc(2025, 1, 14, 23, 0)),
    ("2025-07-15", utc(2025, 7, 14, 22, 0)),
    # a date-time without offset is Norwegian local time
    ("2025-01-15T10:00:00", utc(2025, 1, 15, 9, 0)),
    ("2025-07-15T10:00:00", utc(2025, 7, 15, 8, 0)),
    ("2025-07-15T10:00", utc(2025, 7, 15, 8, 0)),
    # the day DST starts (2025-03-30 02:00 -> 03:00): midnight is still winter time
    ("2025-03-30", utc(2025, 3, 29, 23, 0)),
    ("2025-03-31", utc(2025, 3, 30, 22, 0)),
    # Z and explicit offsets are respected, not overridden by Oslo
    ("2025-01-15T10:00:00Z", utc(2025, 1, 15, 10, 0)),
    ("2025-07-15T10:00:00Z", utc(2025, 7, 15, 10, 0)),
    ("2025-07-15T10:00:00z", utc(2025, 7, 15, 10, 0)),
    ("2025-07-15T10:00:00+00:00", utc(2025, 7, 15, 10, 0)),
    ("2025-07-15T10:00:00+05:00", utc(2025, 7, 15, 5, 0)),
    ("2025-01-15T10:00:00-03:30", utc(2025, 1, 15, 13, 30)),
    # the guide's timestamps, with seven fractional digits (microseconds are kept)
    ("2023-03-29T08:20:10.1804332Z", utc(2023, 3, 29, 8, 20, 10, 180433)),
    ("2023-03-29T10:20:10.1804332", utc(2023, 3, 29, 8, 20, 10, 180433)),
    ("  2025-01-15  ", utc(2025, 1, 14, 23, 0)),
])
def test_parse_instant(text, expected):
    parsed = parse_instant(text, "expiryDate")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", [
    "garbage", "2025-13-01", "2025-02-30", "2025-01-15T25:00:00", "15.01.2025", "tomorrow",
    "2025-01-15T10:00:00+25:00", "2025-1-5",
])
def test_parse_instant_rejects_garbage_naming_the_field(value):
    with pytest.raises(ProtocolError) as err:
        parse_instant(value, "expiryDate")
    assert err.value.status == 400
    assert err.value.message == f"expiryDate: {value!r} is not an ISO-8601 date or date-time"


@pytest.mark.parametrize("value", ["0001-01-01", "0001-01-01T00:30:00", "0001-01-01T00:00:00+01:00",
                                   "9999-12-31T23:59:59-12:00", "9999-12-31T22:00:00-05:00"])
def test_instants_that_utc_takes_past_the_calendar_are_refused_not_a_crash(value):
    """Before: OverflowError, a 500 at the proxy and the fake ePROM for such an expiryDate or reminderDate."""
    with pytest.raises(ProtocolError) as err:
        parse_instant(value, "expiryDate")
    assert err.value.status == 400
    assert err.value.message.startswith(f"expiryDate: {value!r} is at the very edge of the calendar")


@pytest.mark.parametrize("value", ["0001-01-02", "9999-12-31T23:59:59", "9999-12-31T23:59:59+00:00"])
def test_the_first_and_last_days_that_stay_in_the_calendar_are_taken(value):
    assert parse_instant(value, "expiryDate").tzinfo is not None  # 9999-12-31 stands for "never" in .NET


@pytest.mark.parametrize("value", [None, "", "   ", 20250115, 1.5, ["2025-01-15"], {}])
def test_parse_instant_rejects_non_strings_and_empty_naming_the_field(value):
    with pytest.raises(ProtocolError) as err:
        parse_instant(value, "RELEVANT_DATE")
    assert err.value.status == 400
    assert err.value.message == "RELEVANT_DATE: must be an ISO-8601 date or date-time string"


# --- parse_duration --------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("P3D", timedelta(days=3)),
    ("PT12H", timedelta(hours=12)),
    ("PT30M", timedelta(minutes=30)),
    ("PT45S", timedelta(seconds=45)),
    ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    ("P2W", timedelta(days=14)),
    ("P0D", timedelta(0)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text, "answer.after") == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2D", "P2M3D"])
def test_parse_duration_rejects_months_and_years(text):
    with pytest.raises(ProtocolError) as err:
        parse_duration(text, "answer.after")
    assert err.value.status == 400
    assert err.value.message == f"answer.after: {text!r}: use days, hours, minutes or seconds, not years or months"


def test_parse_duration_rejects_negative():
    with pytest.raises(ProtocolError) as err:
        parse_duration("-P1D", "answer.after")
    assert err.value.message == "answer.after: '-P1D' must not be negative"


@pytest.mark.parametrize("text", ["P36526D", "P5218W", "P99999999999D", "PT99999999999999999999S"])
def test_parse_duration_refuses_more_than_100_years_and_never_overflows(text):
    """A scenario's `at`, `until`, `expiresAfter` and a topology's statusDelay went through here: more days than
    a timedelta holds was an OverflowError traceback, and less only overflowed the calendar later."""
    with pytest.raises(ProtocolError) as err:
        parse_duration(text, "until")
    assert err.value.message == f"until: {text!r} is too long: at most 100 years (P36525D)"
    assert parse_duration("P36525D", "until") == timedelta(days=36525)


@pytest.mark.parametrize("value, spelt", [(None, "null"), (True, "true"), (3, "3"), ("3 days", "'3 days'")])
def test_parse_duration_quotes_the_value_as_json_spells_it(value, spelt):
    with pytest.raises(ProtocolError) as err:
        parse_duration(value, "statusDelay")
    assert err.value.message == f"statusDelay: {spelt} is not an ISO-8601 duration such as 'P3D'"


@pytest.mark.parametrize("value", ["garbage", "", "3 days", "P", "1D", "P3D ", None, 3])
def test_parse_duration_rejects_garbage_naming_the_field(value):
    with pytest.raises(ProtocolError) as err:
        parse_duration(value, "answer.after")
    assert err.value.status == 400
    assert err.value.message.startswith("answer.after: ")


# --- timestamp formats -----------------------------------------------------------------

def test_utc_timestamp_style():
    """timestampUtc: 2023-03-29T08:20:10.1804332Z in the guide; we give microseconds."""
    assert utc_timestamp(utc(2023, 3, 29, 8, 20, 10, 180433)) == "2023-03-29T08:20:10.180433Z"
    assert utc_timestamp(utc(2025, 1, 6, 8, 0)) == "2025-01-06T08:00:00.000000Z"
    oslo = datetime(2023, 3, 29, 10, 20, 10, 180433, tzinfo=OSLO)
    assert utc_timestamp(oslo) == "2023-03-29T08:20:10.180433Z"


@pytest.mark.parametrize("instant, expected", [
    # the guide's pair: timestamp 10:20:10 local for timestampUtc 08:20:10Z (summer, +02:00)
    (utc(2023, 3, 29, 8, 20, 10, 180433), "2023-03-29T10:20:10.180433"),
    (utc(2025, 1, 6, 8, 0), "2025-01-06T09:00:00.000000"),  # winter, +01:00
    (utc(2025, 12, 31, 23, 30), "2026-01-01T00:30:00.000000"),  # across midnight and the year
    (utc(9999, 12, 31, 22, 59, 59), "9999-12-31T23:59:59.000000"),
    # past the calendar in Norway (was an OverflowError in the fake ePROM's due work): its last instant
    (utc(9999, 12, 31, 23, 0), "9999-12-31T23:59:59.999999"),
])
def test_local_timestamp_style(instant, expected):
    assert local_timestamp(instant) == expected


@pytest.mark.parametrize("instant, expected", [
    (utc(2025, 1, 6, 22, 59), date(2025, 1, 6)),
    (utc(2025, 1, 6, 23, 0), date(2025, 1, 7)),  # midnight in Oslo in winter (+01:00)
    (utc(2025, 7, 6, 22, 0), date(2025, 7, 7)),  # and in summer (+02:00)
    (utc(9999, 12, 31, 23, 30), date(9999, 12, 31)),  # past the calendar in Norway: its last day
])
def test_norwegian_date(instant, expected):
    assert norwegian_date(instant) == expected


def test_iso_has_an_explicit_utc_offset():
    assert iso(utc(2025, 1, 6, 8, 0)) == "2025-01-06T08:00:00+00:00"
    assert iso(datetime(2025, 7, 1, 12, 0, tzinfo=OSLO)) == "2025-07-01T10:00:00+00:00"


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_utc_timestamp_and_iso_round_trip(instant):
    assert parse_instant(utc_timestamp(instant), "t") == instant
    assert parse_instant(iso(instant), "t") == instant


@pytest.mark.parametrize("instant", [utc(2025, 1, 15, 12, 0, 0, 1), utc(2025, 7, 15, 12, 0, 0, 999999)])
def test_local_timestamp_round_trips_outside_the_autumn_hour(instant):
    # (In the hour repeated when DST ends, a local time without offset is ambiguous: it cannot round-trip.)
    assert parse_instant(local_timestamp(instant), "t") == instant
