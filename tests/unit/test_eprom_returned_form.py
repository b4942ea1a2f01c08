"""What a returned form carries, built by pure functions: the event log, who filled it out, partial answers
and their warnings. No server."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from eprom_protocol.enums import FilledOutByActType
from fake_eprom import callbacks
from fake_eprom.answers import (
    MISSING_ANSWER_WARNING,
    filled_form,
    form_data_for,
    missing_answer_warnings,
    partial_form_data,
)
from fake_eprom.forms import default_catalog

REACHED = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
ANSWERED = REACHED + timedelta(days=3)
QUESTIONS = ["q1", "q2", "q3", "q4"]
RAND_12, PAPER, SIGNED = default_catalog()[:3]


def kinds(events) -> list[str]:
    return [kind.name for kind, _, _ in events]


def test_a_form_filled_out_is_opened_walked_through_and_delivered():
    events = callbacks.filling_events(QUESTIONS, REACHED, ANSWERED, signed=False)
    assert kinds(events) == ["FormOpened"] + ["QuestionAccessed"] * 4 + ["FormDelivered"]
    assert [qid for _, qid, _ in events] == [None, *QUESTIONS, None]
    stamps = [at for _, _, at in events]
    assert stamps[0] == ANSWERED - timedelta(minutes=10) and stamps[-1] == ANSWERED
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(at.microsecond == 0 for at in stamps)


def test_the_form_is_never_opened_before_it_reached_the_patient():
    events = callbacks.filling_events(QUESTIONS, REACHED, REACHED + timedelta(minutes=3), signed=True)
    assert events[0][2] == REACHED
    assert all(REACHED <= at <= REACHED + timedelta(minutes=3) for _, _, at in events)
    instant = callbacks.filling_events(QUESTIONS, REACHED, REACHED, signed=True)
    assert {at for _, _, at in instant} == {REACHED}


def test_signing_comes_after_the_questions():
    events = callbacks.filling_events(QUESTIONS, REACHED, ANSWERED, signed=True)
    assert kinds(events)[-3:] == ["SigningStarted", "SigningCompleted", "FormDelivered"]
    last_question = events[4][2]
    assert last_question <= events[5][2] == ANSWERED - timedelta(minutes=2)


def test_cancelling_signing_then_signing():
    events = callbacks.filling_events(QUESTIONS, REACHED, ANSWERED, signed=True, cancel_signing_first=True)
    assert kinds(events)[5:] == ["SigningStarted", "SigningCancelled", "SigningStarted", "SigningCompleted",
                                 "FormDelivered"]
    stamps = [at for _, _, at in events]
    assert stamps == sorted(stamps) and stamps[5] == ANSWERED - timedelta(minutes=4)


def test_a_paper_answer_is_only_delivered():
    events = callbacks.filling_events(QUESTIONS, REACHED, ANSWERED, signed=False, on_paper=True)
    assert events == [(callbacks.Event.FormDelivered, None, ANSWERED)]


def test_opening_without_delivering_looks_at_half_the_questions():
    events = callbacks.opening_events(QUESTIONS + ["q5"], REACHED)
    assert kinds(events) == ["FormOpened"] + ["QuestionAccessed"] * 3
    assert [qid for _, qid, _ in events[1:]] == ["q1", "q2", "q3"]
    assert [at for _, _, at in events] == [REACHED + timedelta(minutes=i) for i in range(4)]


def test_event_log_on_the_wire():
    [opened] = callbacks.event_log(callbacks.opening_events([], REACHED))
    assert opened == {"eventType": "FormOpened", "questionId": None, "timestampUtc": "2025-01-06T08:00:00.000000Z"}


@pytest.mark.parametrize("given, on_behalf_of, representative, on_paper, expected", [
    (None, False, None, False, (None, "SegSelv")),
    (None, True, None, False, ("RECIPIENT", "Foreldrerepresentasjon")),
    (None, False, "PARENT", False, ("PARENT", "Foreldrerepresentasjon")),
    (None, False, None, True, (None, "Ukjent")),
    (("ATTORNEY", FilledOutByActType.Fullmakt), True, "PARENT", True, ("ATTORNEY", "Fullmakt")),
])
def test_who_filled_it_out(given, on_behalf_of, representative, on_paper, expected):
    got = callbacks.filled_out_by(given=given, on_behalf_of=on_behalf_of, recipient_national_id="RECIPIENT",
                                  representative=representative, on_paper=on_paper)
    assert (got["filledOutByActNationalId"], got["filledOutByActType"]) == expected


def test_patient_initiated_values():
    assert callbacks.patient_initiated_values(form_id="f", national_id="n", ordered_at=REACHED) == {
        "formId": "f", "nationalId": "n", "orderTimestamp": "2025-01-06T09:00:00.000000",
        "orderTimestampUTC": "2025-01-06T08:00:00.000000Z"}


# --- partial answers and warnings -----------------------------------------------------------------
def test_a_partial_answer_leaves_out_a_third_including_required_ones():
    full = form_data_for(4, "order", RAND_12)
    for n in range(50):
        partial = partial_form_data(RAND_12, full, random.Random(n))
        assert set(partial) < set(full) and len(full) - len(partial) == 4
        assert all(partial[k] == full[k] for k in partial)


def test_warnings_name_each_required_question_left_out_in_form_order():
    answers = {"rand12_2": 1, "rand12_5": 2}
    warnings = missing_answer_warnings(RAND_12, answers)
    assert [w["fieldName"] for w in warnings] == [f"rand12_{i}" for i in (1, 3, 4, 6, 7, 8, 9, 10, 11, 12)]
    assert {w["warning"] for w in warnings} == {MISSING_ANSWER_WARNING}
    assert missing_answer_warnings(SIGNED, {"samtykke_registrering": 1, "samtykke_kontakt": 2}) == []  # optional


def test_filled_form_generated_partial_fixed_and_scripted_warnings():
    full, none = filled_form(3, "order-1", RAND_12, None, partial=False)
    assert len(full) == 12 and none == []
    partial, warnings = filled_form(3, "order-1", RAND_12, None, partial=True)
    assert set(partial) < set(full) and [w["fieldName"] for w in warnings] == sorted(set(full) - set(partial),
                                                                                      key=lambda q: int(q[7:]))
    assert filled_form(3, "order-1", RAND_12, None, partial=True) == (partial, warnings)  # seeded
    fixed, fixed_warnings = filled_form(3, "order-1", RAND_12, {"rand12_1": 5}, partial=True,
                                        extra_warnings=({"fieldName": "rand12_1", "warning": "Uklart svar"},))
    assert fixed == {"rand12_1": 5}  # fixed answers are sent as given, even when partial
    assert len(fixed_warnings) == 12 and fixed_warnings[-1] == {"fieldName": "rand12_1", "warning": "Uklart svar"}
