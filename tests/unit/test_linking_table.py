"""Every row of SPEC §3's linking table, and the metadata directives, against the pure rules."""
from datetime import datetime, timedelta, timezone

import pytest

from eprom_protocol.messages import ProtocolError
from proxy.linking import Candidate, Directives, Outcome, decide, is_active, split_metadata

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def order(key, days_ago, state="Ordered", linked=(), seq=0):
    return Candidate(key, NOW - days_ago * DAY, state, frozenset(linked), seq)


def test_row1_create_new_order_true_forces_a_new_order_even_when_one_could_be_linked():
    d = decide("A", Directives(create_new=True), [order("o1", 1, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 1)


def test_row2_no_active_order_makes_a_new_order():
    d = decide("A", Directives(), [], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 2)


def test_row2_applies_even_when_create_new_order_is_false():
    d = decide("A", Directives(create_new=False), [order("old", 400, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 2)


@pytest.mark.parametrize("state", ["Error"])
def test_row2_error_orders_are_not_active(state):
    d = decide("A", Directives(), [order("failed", 1, state=state, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 2)


def test_row2_an_order_at_the_end_of_its_lifetime_is_not_active():
    exactly_365 = order("o", 365, linked={"B"})
    just_inside = Candidate("p", NOW - 365 * DAY + timedelta(seconds=1), "Completed", frozenset({"B"}))
    assert not is_active(exactly_365, NOW)
    assert is_active(just_inside, NOW)
    assert decide("A", Directives(), [exactly_365], NOW).rule == 2


@pytest.mark.parametrize("state", ["Pending", "Ordered", "Expired", "Completed", "PhysicalMailReturned"])
def test_row3_links_to_an_active_order_in_any_active_state(state):
    d = decide("A", Directives(), [order("o1", 10, state=state, linked={"B"})], NOW)
    assert (d.outcome, d.rule, d.link_to) == (Outcome.LINK, 3, "o1")


def test_row3_links_to_the_newest_order_the_registry_is_not_linked_to():
    candidates = [order("old", 30, linked={"B"}, seq=1), order("new", 5, linked={"C"}, seq=2),
                  order("mine", 1, linked={"A"}, seq=3)]
    d = decide("A", Directives(), candidates, NOW)
    assert (d.outcome, d.link_to) == (Outcome.LINK, "new")


def test_row3_orders_placed_at_the_same_instant_are_told_apart_by_creation_order():
    candidates = [order("first", 1, linked={"B"}, seq=1), order("second", 1, linked={"C"}, seq=2)]
    assert decide("A", Directives(), candidates, NOW).link_to == "second"


def test_row3_relevant_date_keeps_only_orders_placed_on_or_after_it():
    candidates = [order("before", 20, linked={"B"}, seq=1), order("on", 10, linked={"C"}, seq=2)]
    on_the_day = Directives(relevant_date=NOW - 10 * DAY)
    assert decide("A", on_the_day, candidates, NOW).link_to == "on"
    later = Directives(relevant_date=NOW - 15 * DAY)
    assert decide("A", later, candidates[:1], NOW).outcome is Outcome.NEW_ORDER


def test_row3_create_new_order_false_still_links():
    d = decide("A", Directives(create_new=False), [order("o1", 3, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.LINK, 3)


def test_row4_create_new_order_false_with_nothing_linkable_gives_no_order():
    d = decide("A", Directives(create_new=False), [order("mine", 3, linked={"A"})], NOW)
    assert (d.outcome, d.rule, d.link_to) == (Outcome.NO_ORDER, 4, None)


def test_row4_relevant_date_after_every_active_order_and_create_new_false_gives_no_order():
    d = decide("A", Directives(create_new=False, relevant_date=NOW - DAY), [order("o", 3, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NO_ORDER, 4)


def test_row5_same_registry_again_makes_a_new_order():
    d = decide("A", Directives(), [order("mine", 3, linked={"A"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 5)


def test_row5_relevant_date_after_every_active_order_makes_a_new_order():
    d = decide("A", Directives(relevant_date=NOW - DAY), [order("o", 3, linked={"B"})], NOW)
    assert (d.outcome, d.rule) == (Outcome.NEW_ORDER, 5)


def test_lifetime_is_configurable():
    candidate = order("o", 40, linked={"B"})
    assert decide("A", Directives(), [candidate], NOW, lifetime=30 * DAY).rule == 2
    assert decide("A", Directives(), [candidate], NOW, lifetime=60 * DAY).rule == 3


# --- metadata directives ---------------------------------------------------------------------
def test_directives_are_removed_and_other_metadata_passes_through():
    directives, rest = split_metadata('{"age": 76, "RELEVANT_DATE": "2026-05-01", "CREATE_NEW_ORDER": false}')
    assert directives.create_new is False
    assert directives.relevant_date == datetime(2026, 4, 30, 22, 0, tzinfo=timezone.utc)  # 00:00 Oslo (CEST)
    assert rest == '{"age": 76}'


def test_metadata_with_only_directives_is_not_forwarded():
    directives, rest = split_metadata('{"CREATE_NEW_ORDER": true}')
    assert directives.create_new is True and rest is None


def test_metadata_without_directives_is_forwarded_byte_for_byte():
    original = '{ "age":76 }'
    assert split_metadata(original) == (Directives(), original)
    assert split_metadata(None) == (Directives(), None)


@pytest.mark.parametrize("text", ["true", "TRUE", "false"])
def test_create_new_order_accepts_boolean_strings(text):
    directives, _ = split_metadata('{"CREATE_NEW_ORDER": "%s"}' % text)
    assert directives.create_new is (text.lower() == "true")


@pytest.mark.parametrize("metadata, fragment", [
    ('{"CREATE_NEW_ORDER": "yes"}', "CREATE_NEW_ORDER: must be true or false"),
    ('{"CREATE_NEW_ORDER": 1}', "CREATE_NEW_ORDER: must be true or false"),
    ('{"RELEVANT_DATE": "last week"}', "RELEVANT_DATE"),
    ("{not json", "JSON in metadata is not valid: "),
    ('{"age": NaN, "CREATE_NEW_ORDER": false}', "JSON in metadata is not valid: NaN is not a JSON value"),
    ('{"age": 1e999}', "JSON in metadata is not valid: a number too large for JSON (beyond a double)"),
    ("[" * 50_000, "JSON in metadata is not valid: nested too deeply (at most 64 levels)"),
])
def test_bad_directives_and_bad_metadata_are_clear_400s(metadata, fragment):
    with pytest.raises(ProtocolError) as err:
        split_metadata(metadata)
    assert err.value.status == 400 and fragment in err.value.message
