"""How ePROM picks the channel that notifies a patient (SPEC §1, "Distribution rules"). Pure functions."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from eprom_protocol.enums import (
    DistributionRule as Rule,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel as Channel,
)

_BASIC = (Channel.Helsenorge, Channel.DigitalMailbox)
_ALLOW_UNSECURE = _BASIC + (Channel.Unsecure,)

#: The channels each rule tries, in order of preference.
PRIORITIES: dict[Rule, tuple[Channel, ...]] = {
    Rule.Basic: _BASIC,
    Rule.AllowUnsecure: _ALLOW_UNSECURE,
    Rule.NoDistribution: (),
    Rule.BasicOrPaper: _BASIC + (Channel.PhysicalMailbox,),
    Rule.AllowUnsecureOrPaper: _ALLOW_UNSECURE + (Channel.PhysicalMailbox,),
    Rule.PaperOnly: (Channel.PhysicalMailbox,),
    Rule.HelsenorgeOnly: (Channel.Helsenorge,),
    Rule.DigitalMailboxOnly: (Channel.DigitalMailbox,),
    Rule.UnsecureOnly: (Channel.Unsecure,),
}

#: Rules that may end on paper: the ordered form must be paper enabled.
PAPER_RULES = frozenset(rule for rule, channels in PRIORITIES.items() if Channel.PhysicalMailbox in channels)

#: The channels a patient can be reached on at all (None is not a channel).
REAL_CHANNELS = (Channel.Helsenorge, Channel.DigitalMailbox, Channel.Unsecure, Channel.PhysicalMailbox)


def choose_channel(rule: Rule, reachable: Iterable[Channel]) -> Channel | None:
    """The first channel of the rule the patient is reachable on; None when there is none (or when the
    rule is NoDistribution, which notifies nobody)."""
    reachable = set(reachable)
    return next((channel for channel in PRIORITIES[rule] if channel in reachable), None)


@dataclass(frozen=True)
class Decision:
    """What the order-status callback says: Ordered on a channel, Ordered with no channel
    (NoDistribution: the patient uses the single-use code) or Error / PatientUnreachable."""

    status: FormOrderStatus
    channel: Channel
    error_code: FormOrderStatusErrorCode

    @property
    def ordered(self) -> bool:
        return self.status is FormOrderStatus.Ordered


def decide(rule: Rule, reachable: Iterable[Channel]) -> Decision:
    if rule is Rule.NoDistribution:
        return Decision(FormOrderStatus.Ordered, Channel.None_, FormOrderStatusErrorCode.None_)
    channel = choose_channel(rule, reachable)
    if channel is None:
        return Decision(FormOrderStatus.Error, Channel.None_, FormOrderStatusErrorCode.PatientUnreachable)
    return Decision(FormOrderStatus.Ordered, channel, FormOrderStatusErrorCode.None_)
