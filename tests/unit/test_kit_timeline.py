"""service_kit.timeline: due work of several participants run in global time order under a SimClock,
and the pump thread that runs work due now. Fake DueWork objects, no HTTP."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import pytest

from service_kit.clock import DEFAULT_SIM_START, SimClock, SystemClock
from service_kit.timeline import Timeline

START = DEFAULT_SIM_START  # the conftest clock starts here


def at(**delta) -> datetime:
    return START + timedelta(**delta)


class FakeWork:
    """Pending instants; run_due does every one due at or before `now` and records what it saw."""

    def __init__(self, name: str, clock: SimClock, journal: list, dues=(), *, fail: bool = False,
                 on_run=None):
        self.name = name
        self.clock = clock
        self.journal = journal
        self.dues = sorted(dues)
        self.fail = fail
        self.on_run = on_run
        self.calls = 0

    def add(self, *instants: datetime) -> None:
        self.dues = sorted(self.dues + list(instants))

    def next_due(self):
        return self.dues[0] if self.dues else None

    def run_due(self, now: datetime) -> None:
        self.calls += 1
        if self.fail:
            raise RuntimeError(f"{self.name} is broken")
        ready = [d for d in self.dues if d <= now]
        self.dues = [d for d in self.dues if d > now]
        for due in ready:
            self.journal.append((self.name, due, now, self.clock.now()))
        if self.on_run is not None:
            self.on_run(self, now)


@pytest.fixture
def journal():
    return []


def names_and_dues(journal):
    return [(name, due) for name, due, _now, _clock in journal]


# --- advance ---------------------------------------------------------------------------

def test_advance_runs_work_in_global_time_order_across_participants(clock, timeline, journal):
    a = FakeWork("A", clock, journal, [at(hours=1), at(hours=3)])
    b = FakeWork("B", clock, journal, [at(hours=2), at(hours=4)])
    c = FakeWork("C", clock, journal, [at(minutes=30)])
    for work in (a, b, c):
        timeline.register(work)

    result = timeline.advance(timedelta(hours=5))

    assert names_and_dues(journal) == [
        ("C", at(minutes=30)), ("A", at(hours=1)), ("B", at(hours=2)), ("A", at(hours=3)), ("B", at(hours=4))]
    assert result == at(hours=5)
    assert clock.now() == at(hours=5)


def test_advance_moves_the_clock_to_each_due_instant_before_running_it(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [at(minutes=10), at(hours=2, seconds=1)]))
    timeline.register(FakeWork("B", clock, journal, [at(days=1)]))

    timeline.advance(timedelta(days=2))

    assert len(journal) == 3
    for _name, due, now, clock_now in journal:
        assert now == due
        assert clock_now == due


def test_advance_ends_at_the_target_and_leaves_later_work(clock, timeline, journal):
    a = FakeWork("A", clock, journal, [at(hours=1), at(hours=6)])
    timeline.register(a)

    assert timeline.advance(timedelta(hours=5)) == at(hours=5)
    assert names_and_dues(journal) == [("A", at(hours=1))]
    assert a.next_due() == at(hours=6)

    assert timeline.advance(timedelta(hours=1)) == at(hours=6)
    assert names_and_dues(journal) == [("A", at(hours=1)), ("A", at(hours=6))]


def test_work_due_exactly_at_the_target_runs(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [at(hours=5)]))
    timeline.advance(timedelta(hours=5))
    assert names_and_dues(journal) == [("A", at(hours=5))]


@pytest.mark.parametrize("order", [("A", "B", "C"), ("C", "A", "B"), ("B", "C", "A")])
def test_ties_are_broken_by_registration_order(clock, timeline, journal, order):
    for name in order:
        timeline.register(FakeWork(name, clock, journal, [at(hours=1)]))
    timeline.advance(timedelta(hours=2))
    assert [name for name, *_ in journal] == list(order)


def test_work_created_during_a_run_is_run_in_order_when_due_before_the_target(clock, timeline, journal):
    b = FakeWork("B", clock, journal, [at(hours=2)])

    def create_more(work, now):
        if work.calls == 1:
            b.add(at(hours=1, minutes=30), at(hours=10))  # one before the target, one after
            work.add(now)  # and one due right now, at the current instant

    a = FakeWork("A", clock, journal, [at(hours=1)], on_run=create_more)
    timeline.register(a)
    timeline.register(b)

    timeline.advance(timedelta(hours=3))

    assert names_and_dues(journal) == [
        ("A", at(hours=1)), ("A", at(hours=1)), ("B", at(hours=1, minutes=30)), ("B", at(hours=2))]
    assert [clock_now for *_, clock_now in journal] == [at(hours=1), at(hours=1), at(hours=1, minutes=30),
                                                        at(hours=2)]
    assert b.next_due() == at(hours=10)


def test_a_participant_that_raises_does_not_stop_the_others(clock, timeline, journal, caplog):
    broken = FakeWork("broken", clock, journal, [at(hours=1)], fail=True)
    b = FakeWork("B", clock, journal, [at(hours=2)])
    c = FakeWork("C", clock, journal, [at(hours=3)])
    for work in (broken, b, c):
        timeline.register(work)

    with caplog.at_level(logging.ERROR, logger="service_kit.timeline"):
        assert timeline.advance(timedelta(hours=4)) == at(hours=4)

    assert names_and_dues(journal) == [("B", at(hours=2)), ("C", at(hours=3))]
    assert [clock_now for *_, clock_now in journal] == [at(hours=2), at(hours=3)]
    assert broken.calls >= 1
    assert any("broken" in r.getMessage() for r in caplog.records)


def test_advance_with_zero_runs_work_due_now(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [START - timedelta(minutes=5), START]))
    assert timeline.advance(timedelta(0)) == START
    assert len(journal) == 2


def test_past_due_work_runs_without_moving_the_clock_backwards(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [START - timedelta(hours=1)]))
    timeline.advance(timedelta(hours=1))
    assert journal == [("A", START - timedelta(hours=1), START, START)]


def test_advance_refuses_a_negative_delta(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [START]))
    with pytest.raises(ValueError):
        timeline.advance(timedelta(seconds=-1))
    assert clock.now() == START
    assert journal == []


def test_advance_refuses_a_system_clock():
    timeline = Timeline(SystemClock(), pump=False)
    with pytest.raises(RuntimeError):
        timeline.advance(timedelta(seconds=1))


# --- settle and pending_now --------------------------------------------------------------

def test_settle_runs_due_now_work_and_returns_zero(clock, timeline, journal):
    a = FakeWork("A", clock, journal, [START - timedelta(seconds=1), START, at(seconds=1)])
    timeline.register(a)
    assert timeline.pending_now() == 1

    assert timeline.settle() == 0

    assert names_and_dues(journal) == [("A", START - timedelta(seconds=1)), ("A", START)]
    assert clock.now() == START  # settle never moves a simulated clock
    assert a.next_due() == at(seconds=1)
    assert timeline.pending_now() == 0


def test_pending_now_counts_participants_with_due_work(clock, timeline, journal):
    timeline.register(FakeWork("A", clock, journal, [START]))
    timeline.register(FakeWork("B", clock, journal, [START - timedelta(days=1)]))
    timeline.register(FakeWork("C", clock, journal, [at(seconds=1)]))
    timeline.register(FakeWork("D", clock, journal, []))
    assert timeline.pending_now() == 2


# --- the pump --------------------------------------------------------------------------

def _pump_threads():
    return {t for t in threading.enumerate() if t.name == "timeline-pump"}


def test_pump_runs_work_due_now_after_notify_and_stop_joins(clock, journal, monkeypatch):
    timeline = Timeline(clock, pump=True)
    # Make the pump's idle wait long, so only notify() can wake it within the bounded wait below.
    monkeypatch.setattr(timeline, "_idle_wait", lambda: 60.0)
    ran = threading.Event()
    seen = {}

    def record(work, now):
        seen["thread"] = threading.current_thread().name
        seen["now"] = now
        ran.set()

    work = FakeWork("A", clock, journal, [], on_run=record)
    polled = threading.Event()
    original_next_due = work.next_due

    def next_due():
        polled.set()
        return original_next_due()

    work.next_due = next_due
    timeline.register(work)

    before = _pump_threads()
    timeline.start()
    try:
        started = _pump_threads() - before
        assert len(started) == 1
        assert polled.wait(timeout=5), "the pump never looked at the registered work"

        work.add(clock.now())
        timeline.notify()

        assert ran.wait(timeout=5), "the pump did not run work due now after notify()"
        assert seen == {"thread": "timeline-pump", "now": START}
        assert names_and_dues(journal) == [("A", START)]
    finally:
        timeline.stop()
    (thread,) = started
    assert not thread.is_alive()
    assert clock.now() == START


def test_no_pump_thread_when_pump_is_off(clock):
    timeline = Timeline(clock, pump=False)
    before = _pump_threads()
    timeline.start()
    try:
        assert _pump_threads() - before == set()
    finally:
        timeline.stop()


def test_advance_waits_for_held_work_before_moving_the_clock(timeline, clock):
    """A request still answering made work that belongs to the present: advance must not overtake it."""
    release = timeline.hold()
    journal = []
    work = FakeWork("held", clock, journal)
    timeline.register(work)
    start = clock.now()
    releaser = threading.Thread(target=lambda: (work.add(start), release()))
    timer = threading.Timer(0.05, releaser.start)  # the response finishes while advance waits
    timer.start()
    timeline.advance(timedelta(days=1))
    timer.join()
    assert [now for _, _, now, _ in journal] == [start], \
        "held work must run at the instant it was made, before the clock moved"


def test_a_released_hold_wakes_settle_but_never_the_pump(clock, monkeypatch):
    """Every request holds and releases: waking the pump for it would cost a thread switch per request
    (measured: 8 of a link's 37 context switches), and the pump has nothing to do for it."""
    timeline = Timeline(clock, pump=True)
    monkeypatch.setattr(timeline, "_idle_wait", lambda: 60.0)
    pump_wakes = []
    notify_all = timeline._wake.notify_all
    monkeypatch.setattr(timeline._wake, "notify_all", lambda: (pump_wakes.append(1), notify_all()))
    timeline.start()
    try:
        for _ in range(20):
            timeline.hold()()
        release = timeline.hold()
        waiter = threading.Thread(target=timeline.settle)
        waiter.start()
        release()
        waiter.join(timeout=10)
        assert not waiter.is_alive(), "settle() was not woken by the release of the last hold"
        assert pump_wakes == []
        timeline.notify()  # the pump's own wake-up still goes to the pump
        assert pump_wakes == [1]
    finally:
        timeline.stop()


def test_release_of_a_hold_is_idempotent(clock):
    timeline = Timeline(clock, pump=False)
    first, second = timeline.hold(), timeline.hold()
    first()
    first()
    assert timeline.pending_now() == 1
    second()
    assert timeline.pending_now() == 0


def test_in_pump_is_true_only_on_the_pump_thread():
    seen, ran = [], threading.Event()
    clock = SimClock()
    timeline = Timeline(clock, pump=True)
    probe = FakeWork("probe", clock, [], on_run=lambda work, now: (seen.append(timeline.in_pump()), ran.set()))
    timeline.register(probe)
    assert timeline.in_pump() is False  # not started: no pump at all
    timeline.start()
    try:
        probe.add(clock.now())
        timeline.notify()
        assert ran.wait(timeout=10)
        assert seen == [True]
        probe.add(clock.now())  # no notify(): the pump sleeps on
        timeline.settle()  # runs due work on this thread, which is not the pump
        assert False in seen and timeline.in_pump() is False
    finally:
        timeline.stop()
