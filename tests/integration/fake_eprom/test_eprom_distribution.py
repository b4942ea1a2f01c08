"""How the channel is chosen: every distribution rule against every set of reachable channels, both as the
pure decision and as what the status callback says (SPEC §1, "Distribution rules")."""
from __future__ import annotations

from datetime import timedelta
from itertools import combinations

import pytest

from eprom_protocol.enums import DistributionRule, FormOrderStatus, FormOrderStatusErrorCode, NotificationChannel
from fake_eprom.distribution import choose_channel, decide

CHANNELS = ["Helsenorge", "DigitalMailbox", "Unsecure", "PhysicalMailbox"]
ALL_REACHABILITY = [frozenset(c) for n in range(len(CHANNELS) + 1) for c in combinations(CHANNELS, n)]

# The guide's rules, written out by hand: the channels each rule tries, best first.
PREFERENCE = {
    "Basic": ["Helsenorge", "DigitalMailbox"],
    "AllowUnsecure": ["Helsenorge", "DigitalMailbox", "Unsecure"],
    "NoDistribution": [],
    "BasicOrPaper": ["Helsenorge", "DigitalMailbox", "PhysicalMailbox"],
    "AllowUnsecureOrPaper": ["Helsenorge", "DigitalMailbox", "Unsecure", "PhysicalMailbox"],
    "PaperOnly": ["PhysicalMailbox"],
    "HelsenorgeOnly": ["Helsenorge"],
    "DigitalMailboxOnly": ["DigitalMailbox"],
    "UnsecureOnly": ["Unsecure"],
}


def expected(rule: str, reachable: frozenset[str]) -> tuple[str, str, str]:
    """(status, channel, error code) as the status callback should say it."""
    if rule == "NoDistribution":
        return "Ordered", "None", "None"
    for channel in PREFERENCE[rule]:
        if channel in reachable:
            return "Ordered", channel, "None"
    return "Error", "None", "PatientUnreachable"


def test_the_table_covers_every_rule():
    assert set(PREFERENCE) == {r.name for r in DistributionRule}
    assert len(ALL_REACHABILITY) == 16


@pytest.mark.parametrize("rule", list(PREFERENCE))
@pytest.mark.parametrize("reachable", ALL_REACHABILITY, ids=lambda r: "+".join(sorted(r)) or "nobody")
def test_decide(rule, reachable):
    decision = decide(DistributionRule[rule], {NotificationChannel[c] for c in reachable})
    status, channel, error = expected(rule, reachable)
    assert (decision.status.name, decision.channel.wire_name, decision.error_code.wire_name) == (status, channel, error)
    chosen = choose_channel(DistributionRule[rule], {NotificationChannel[c] for c in reachable})
    assert (None if chosen is None else chosen.name) == (None if rule == "NoDistribution" or status == "Error"
                                                         else channel)


def test_a_few_cases_spelt_out():
    H, D, U, P = (NotificationChannel[c] for c in CHANNELS)
    assert decide(DistributionRule.Basic, {D, H}).channel is H
    assert decide(DistributionRule.Basic, {U, P}).status is FormOrderStatus.Error
    assert decide(DistributionRule.Basic, {U, P}).error_code is FormOrderStatusErrorCode.PatientUnreachable
    assert decide(DistributionRule.AllowUnsecure, {U, P}).channel is U
    assert decide(DistributionRule.AllowUnsecureOrPaper, {P}).channel is P
    assert decide(DistributionRule.BasicOrPaper, {U, P}).channel is P
    assert decide(DistributionRule.NoDistribution, set()).status is FormOrderStatus.Ordered
    assert decide(DistributionRule.PaperOnly, {H, D, U}).status is FormOrderStatus.Error


@pytest.mark.parametrize("rule", list(PREFERENCE))
def test_status_callbacks_for_every_reachability(sim, ids, rule):
    """Through the app: sixteen patients, one order each under the rule, one status callback each."""
    orders = {}
    for reachable in ALL_REACHABILITY:
        patient = sim.patient(reachable=sorted(reachable))
        got = sim.ordered(formId=ids.PAPER_FORM, nationalId=patient["nationalId"], distributionRule=rule)
        preferred = expected(rule, reachable)[1]
        assert got["notificationChannel"] == NotificationChannel[preferred if preferred != "None" else "None_"]
        orders[got["id"]] = reachable
    assert sim.settle() == 0
    for order_id, reachable in orders.items():
        [body] = sim.bodies(order_id)
        status, channel, error = expected(rule, reachable)
        assert body["formOrderStatus"] == status
        assert body["formOrderStatusErrorCode"] == error
        assert body["notificationChannel"] == (0 if channel == "None" else NotificationChannel[channel].value)
    listed = {o["id"]: o for o in sim.orders()}
    for order_id, reachable in orders.items():
        status, channel, _ = expected(rule, reachable)
        assert (listed[order_id]["status"], listed[order_id]["notificationChannel"]) == (status, channel)


def test_patients_reserved_against_research_are_not_reached_on_helsenorge_by_research_systems(sim, ids):
    nid = sim.patient(reachable=["Helsenorge", "DigitalMailbox"], reservedAgainstResearch=True)["nationalId"]
    ordinary = sim.ordered(nationalId=nid)
    research = sim.ordered(nationalId=nid, key=ids.RESEARCH_KEY)
    assert (ordinary["notificationChannel"], research["notificationChannel"]) == (1, 2)
    only_helsenorge = sim.ordered(nationalId=nid, key=ids.RESEARCH_KEY, distributionRule="HelsenorgeOnly")
    sim.settle()
    assert sim.bodies(ordinary["id"])[0]["notificationChannel"] == 1
    assert sim.bodies(research["id"])[0]["notificationChannel"] == "DigitalMailbox"  # this system wants names
    assert sim.bodies(only_helsenorge["id"])[0]["formOrderStatus"] == "Error"


def test_the_actual_channel_is_decided_when_the_order_reaches_the_patient(make_sim):
    sim = make_sim(status_delay=timedelta(hours=1))
    nid = sim.patient(reachable=["Helsenorge", "DigitalMailbox"])["nationalId"]
    got = sim.ordered(nationalId=nid)
    assert got["notificationChannel"] == 1  # preferred, at order time
    sim.patient(nationalId=nid, reachable=["DigitalMailbox"])  # the patient leaves Helsenorge meanwhile
    sim.advance(hours=1)
    assert sim.bodies(got["id"])[0]["notificationChannel"] == 2  # actual
