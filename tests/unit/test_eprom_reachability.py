"""Which channels reach a patient (SPEC §1, "Reachability facts"), and what every distribution rule then
decides for patients who can and cannot be reached on each channel. Pure functions, no server."""
from __future__ import annotations

from datetime import date
from itertools import product

import pytest

from eprom_protocol.enums import DistributionRule as Rule, NotificationChannel as Channel
from fake_eprom.distribution import decide
from fake_eprom.reachability import ContactRegister, Profile, age_on, channels, digitally_active
from fake_eprom.synthetic import PostalAddress

TODAY = date(2025, 1, 6)
H, D, U, P = Channel.Helsenorge, Channel.DigitalMailbox, Channel.Unsecure, Channel.PhysicalMailbox
ADDRESS = PostalAddress("Kari Nordmann", "Storgata 1", "0155", "Oslo")
CONTACT = ContactRegister("kari@example.org", "41234567", date(2024, 12, 7))
FULL = Profile(contact_register=CONTACT, postal_address=ADDRESS)
NOTHING = Profile(helsenorge_consent="none", digital_mailbox=False)


def born_years_ago(years: int, days_after_birthday: int = 0) -> date:
    """Someone who turned `years` days_after_birthday days ago (0: today is the birthday)."""
    birthday = TODAY.replace(year=TODAY.year - years)
    return date.fromordinal(birthday.toordinal() - days_after_birthday)


def reach(profile: Profile = FULL, age: int = 45, *, research: bool = False, order_has_address: bool = False,
          birth: date | None = None) -> frozenset[Channel]:
    return channels(profile, birth or born_years_ago(age), TODAY, research=research,
                    order_has_address=order_has_address)


def test_an_adult_with_the_full_profile_is_reached_everywhere():
    assert reach() == {H, D, U, P}
    assert reach(NOTHING) == frozenset()


# --- Helsenorge ---------------------------------------------------------------------------
@pytest.mark.parametrize("age, represented, reached", [
    (15, False, False), (16, False, True), (15, True, True), (3, True, True), (80, False, True)])
def test_helsenorge_needs_16_or_a_representative(age, represented, reached):
    profile = Profile(represented_by="26723916517" if represented else None)
    assert (H in reach(profile, age)) is reached


def test_helsenorge_the_day_before_and_on_the_16th_birthday():
    day_before = date(TODAY.year - 16, TODAY.month, TODAY.day + 1)
    assert age_on(day_before, TODAY) == 15 and H not in reach(Profile(), birth=day_before)
    assert H in reach(Profile(), birth=born_years_ago(16))


@pytest.mark.parametrize("consent, reached", [("full", True), ("limited", False), ("none", False)])
def test_helsenorge_needs_full_consent(consent, reached):
    assert (H in reach(Profile(helsenorge_consent=consent))) is reached
    assert (H in reach(Profile(helsenorge_consent=consent, represented_by="26723916517"), 10)) is reached


@pytest.mark.parametrize("reserved, research, reached", [
    (False, False, True), (False, True, True), (True, False, True), (True, True, False)])
def test_a_reservation_against_research_only_keeps_research_systems_off_helsenorge(reserved, research, reached):
    found = reach(Profile(reserved_against_research=reserved, contact_register=CONTACT, postal_address=ADDRESS),
                  research=research)
    assert (H in found) is reached
    assert {D, U, P} <= found  # the other channels are not affected


# --- digital mailbox ----------------------------------------------------------------------
@pytest.mark.parametrize("age, has_mailbox, reached", [
    (17, True, False), (18, True, True), (50, True, True), (50, False, False)])
def test_digital_mailbox_needs_one_and_18(age, has_mailbox, reached):
    assert (D in reach(Profile(digital_mailbox=has_mailbox), age)) is reached


def test_a_representative_does_not_open_the_childs_digital_mailbox():
    assert D not in reach(Profile(represented_by="26723916517"), 10)


# --- unsecure (contact register) --------------------------------------------------------------
@pytest.mark.parametrize("email, mobile, reached", [
    ("a@example.org", None, True), (None, "41234567", True), ("a@example.org", "41234567", True),
    (None, None, False), ("", "", False)])
def test_unsecure_needs_an_email_or_a_mobile(email, mobile, reached):
    profile = Profile(contact_register=ContactRegister(email, mobile, date(2024, 6, 1)))
    assert (U in reach(profile)) is reached


@pytest.mark.parametrize("age, reached", [(12, False), (13, True), (14, True)])
def test_unsecure_needs_13(age, reached):
    assert (U in reach(Profile(contact_register=CONTACT), age)) is reached


def test_no_contact_register_entry_means_no_unsecure():
    assert U not in reach(Profile(contact_register=None))


@pytest.mark.parametrize("updated, active", [
    (date(2025, 1, 6), True), (date(2023, 7, 6), True),  # exactly 18 months ago still counts
    (date(2023, 7, 5), False), (date(2023, 7, 7), True), (date(2020, 1, 1), False),
    (date(2023, 8, 31), True)])
def test_digitally_active_means_updated_within_18_months(updated, active):
    assert digitally_active(updated, TODAY) is active
    profile = Profile(contact_register=ContactRegister("a@example.org", None, updated))
    assert (U in reach(profile)) is active


def test_the_18_months_at_a_month_end():
    assert digitally_active(date(2023, 8, 31), date(2025, 2, 28)) is True
    assert digitally_active(date(2023, 8, 31), date(2025, 3, 1)) is False


# --- paper --------------------------------------------------------------------------------
@pytest.mark.parametrize("address, order_address, reached", [
    (ADDRESS, False, True), (None, False, False), (None, True, True), (ADDRESS, True, True)])
def test_paper_needs_a_postal_address_the_patients_or_the_orders(address, order_address, reached):
    assert (P in reach(Profile(postal_address=address), order_has_address=order_address)) is reached


def test_paper_reaches_children_too():
    assert P in reach(Profile(postal_address=ADDRESS), 2)


# --- every rule against profiles that can and cannot be reached on each channel ----------------
#: For each channel: a profile (and age) that reaches the patient on that channel only, and reasons it fails.
ONLY = {
    H: [(Profile(digital_mailbox=False), 30)],
    D: [(Profile(helsenorge_consent="limited"), 30)],
    U: [(Profile(helsenorge_consent="none", digital_mailbox=False, contact_register=CONTACT), 30)],
    P: [(Profile(helsenorge_consent="none", digital_mailbox=False, postal_address=ADDRESS), 30)],
}
NOT = {  # profiles that would reach the patient on the channel but for one fact
    H: [(Profile(digital_mailbox=False), 15), (Profile(digital_mailbox=False, helsenorge_consent="limited"), 30)],
    D: [(Profile(helsenorge_consent="none"), 17), (Profile(helsenorge_consent="none", digital_mailbox=False), 30)],
    U: [(Profile(helsenorge_consent="none", digital_mailbox=False, contact_register=CONTACT), 12),
        (Profile(helsenorge_consent="none", digital_mailbox=False,
                 contact_register=ContactRegister("a@example.org", None, date(2022, 1, 1))), 30)],
    P: [(Profile(helsenorge_consent="none", digital_mailbox=False, postal_address=None), 30)],
}
PREFERENCE = {
    Rule.Basic: [H, D], Rule.AllowUnsecure: [H, D, U], Rule.NoDistribution: [], Rule.BasicOrPaper: [H, D, P],
    Rule.AllowUnsecureOrPaper: [H, D, U, P], Rule.PaperOnly: [P], Rule.HelsenorgeOnly: [H],
    Rule.DigitalMailboxOnly: [D], Rule.UnsecureOnly: [U],
}


def test_the_profiles_reach_exactly_what_they_claim():
    for channel, cases in ONLY.items():
        for profile, age in cases:
            assert reach(profile, age) == {channel}, channel
    for channel, cases in NOT.items():
        for profile, age in cases:
            assert reach(profile, age) == frozenset(), channel


@pytest.mark.parametrize("rule", list(Rule), ids=lambda r: r.name)
@pytest.mark.parametrize("channel", [H, D, U, P], ids=lambda c: c.name)
def test_every_rule_for_a_patient_reached_only_on_one_channel(rule, channel):
    for profile, age in ONLY[channel]:
        decision = decide(rule, reach(profile, age))
        if rule is Rule.NoDistribution:
            assert (decision.status.name, decision.channel) == ("Ordered", Channel.None_)
        elif channel in PREFERENCE[rule]:
            assert (decision.status.name, decision.channel) == ("Ordered", channel)
        else:
            assert (decision.status.name, decision.channel, decision.error_code.name) == \
                ("Error", Channel.None_, "PatientUnreachable")
    for profile, age in NOT[channel]:
        decision = decide(rule, reach(profile, age))
        expected = "Ordered" if rule is Rule.NoDistribution else "Error"
        assert (decision.status.name, decision.channel) == (expected, Channel.None_)


@pytest.mark.parametrize("rule", list(Rule), ids=lambda r: r.name)
def test_every_rule_for_every_combination_of_reachable_channels(rule):
    """All 16 profiles built from the four facts (consent, mailbox, contact data, address)."""
    for has_h, has_d, has_u, has_p in product([False, True], repeat=4):
        profile = Profile(helsenorge_consent="full" if has_h else "none", digital_mailbox=has_d,
                          contact_register=CONTACT if has_u else None, postal_address=ADDRESS if has_p else None)
        reachable = reach(profile)
        assert reachable == {c for c, on in zip([H, D, U, P], [has_h, has_d, has_u, has_p]) if on}
        decision = decide(rule, reachable)
        first = next((c for c in PREFERENCE[rule] if c in reachable), None)
        if rule is Rule.NoDistribution:
            assert decision.channel is Channel.None_ and decision.status.name == "Ordered"
        elif first is None:
            assert decision.status.name == "Error" and decision.channel is Channel.None_
        else:
            assert decision.status.name == "Ordered" and decision.channel is first
