"""The delivery retry policy (pure) and the delivery lanes: one registry's slow or stuck deliveries never
occupy another's lane, a lane never has more than its width in flight, and wait_idle() waits for all."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from proxy.delivery import DeliveryLanes, RetryPolicy

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


def schedule(policy: RetryPolicy) -> list[datetime]:
    """The attempt times of a delivery that always fails, first attempt at T0."""
    attempts, now, failures = [T0], T0, 0
    while True:
        failures += 1
        nxt = policy.next_attempt(T0, failures, now)
        if nxt is None:
            return attempts
        attempts.append(nxt)
        now = nxt


def test_the_default_policy_retries_within_a_minute_at_most_hourly_for_at_least_three_days():
    attempts = schedule(RetryPolicy())
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] == timedelta(seconds=30)
    assert gaps[:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(gaps) == timedelta(hours=1) and gaps == sorted(gaps)
    assert attempts[-1] - attempts[0] >= timedelta(days=3)
    assert attempts[-1] - attempts[0] < timedelta(days=3, hours=1)
    assert 70 < len(attempts) < 90


def test_huge_failure_counts_do_not_overflow():
    assert RetryPolicy().delay(10_000) == timedelta(hours=1)


class FakeQueue:
    """Work per registry; deliver() of a gated registry blocks until the test releases it."""

    def __init__(self, work: dict[str, int]):
        self.work = {r: list(range(n)) for r, n in work.items()}
        self.lock = threading.Lock()
        self.gates: dict[str, threading.Event] = {}
        self.done: list[tuple[str, int]] = []
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self.changed = threading.Condition()

    def claim(self, registry):
        with self.lock:
            return (registry, self.work[registry].pop(0)) if self.work[registry] else None

    def deliver(self, item):
        registry, n = item
        with self.changed:
            self.in_flight[registry] = self.in_flight.get(registry, 0) + 1
            self.most_in_flight[registry] = max(self.most_in_flight.get(registry, 0), self.in_flight[registry])
            self.changed.notify_all()
        if registry in self.gates:
            self.gates[registry].wait()
        with self.changed:
            self.in_flight[registry] -= 1
            self.done.append(item)
            self.changed.notify_all()


def test_a_stuck_registry_holds_up_only_its_own_lane():
    queue = FakeQueue({"slow": 10, "quick": 20})
    queue.gates["slow"] = threading.Event()
    lanes = DeliveryLanes(queue.claim, queue.deliver, width=3)
    try:
        lanes.dispatch(["slow", "quick"])
        with queue.changed:
            assert queue.changed.wait_for(
                lambda: len([d for d in queue.done if d[0] == "quick"]) == 20 and queue.in_flight.get("slow") == 3,
                timeout=10)
        assert lanes.saturated("slow") and not lanes.saturated("quick")
        assert not lanes.wait_idle(timeout=0.05)
        queue.gates["slow"].set()
        assert lanes.wait_idle(timeout=10)
        assert sorted(n for r, n in queue.done if r == "slow") == list(range(10))
        assert queue.most_in_flight["slow"] == 3
    finally:
        queue.gates["slow"].set()
        lanes.close()


def test_dispatch_claims_in_the_order_registries_are_given_and_reports_what_it_started():
    claims, lock = [], threading.Lock()

    def claim(registry):
        with lock:
            first = registry not in claims
            claims.append(registry)
        return registry if first else None  # one piece of work per registry

    lanes = DeliveryLanes(claim, lambda item: None, width=1)
    try:
        assert lanes.dispatch(["c", "a", "b"]) == 3
        assert lanes.wait_idle(timeout=10)
        assert list(dict.fromkeys(claims)) == ["c", "a", "b"], "the first sends start in the given order"
    finally:
        lanes.close()


def test_a_failing_delivery_or_claim_does_not_kill_the_lane():
    calls = []

    def deliver(item):
        calls.append(item)
        if item == 0:
            raise RuntimeError("bug in one delivery")

    items = iter([0, 1, 2])
    lanes = DeliveryLanes(lambda r: next(items, None), deliver, width=1)
    try:
        lanes.dispatch(["r"])
        assert lanes.wait_idle(timeout=10)
        assert calls == [0, 1, 2]
    finally:
        lanes.close()


def test_width_must_be_positive():
    with pytest.raises(ValueError):
        DeliveryLanes(lambda r: None, lambda w: None, width=0)


def test_offered_work_beyond_the_lane_width_waits_in_memory_and_goes_in_order():
    gate, sent, lock = threading.Event(), [], threading.Lock()

    def deliver(item):
        gate.wait(timeout=10)
        with lock:
            sent.append(item)

    lanes = DeliveryLanes(lambda r: pytest.fail("offered work needs no claim"), deliver, width=2)
    try:
        for n in range(6):
            assert lanes.offer("r", n)
        assert lanes.saturated("r") and lanes.busy() == 6  # 2 in flight, 4 queued: all count as busy
        assert not lanes.wait_idle(timeout=0.05)
        gate.set()
        assert lanes.wait_idle(timeout=10)
        assert sorted(sent) == list(range(6)) and sent.index(2) < sent.index(5)  # queued ones in order
        assert lanes.busy() == 0
    finally:
        gate.set()
        lanes.close()


def test_a_closed_lane_refuses_offered_work():
    lanes = DeliveryLanes(lambda r: None, lambda w: None, width=1)
    lanes.close()
    assert lanes.offer("r", 1) is False
    assert lanes.busy() == 0


def test_a_lane_wakes_the_pump_only_when_it_was_found_full():
    """The pump skips full lanes, so a lane that was found full must wake it once it has room (the work the
    pump skipped is still in the database); a lane nobody found full wakes nobody."""
    gate, wakes, lock = threading.Event(), [], threading.Lock()

    def deliver(item):
        gate.wait(timeout=10)

    def wake():
        with lock:
            wakes.append("wake")

    lanes = DeliveryLanes(lambda r: None, deliver, width=2, wake=wake)
    try:
        for n in range(3):  # full, and one more queued in memory: nobody had to be turned away
            assert lanes.offer("r", n)
        gate.set()
        assert lanes.wait_idle(timeout=10)
        assert wakes == []

        gate.clear()
        for n in range(2):
            assert lanes.offer("r", n)
        assert lanes.saturated("r")  # what the pump asks before it claims for a lane
        gate.set()
        assert lanes.wait_idle(timeout=10)
        assert wakes == ["wake"]
    finally:
        gate.set()
        lanes.close()


def test_dispatch_stopped_by_a_full_lane_is_woken_when_the_lane_has_room():
    gate, wakes = threading.Event(), []
    items = iter(range(3))  # three due, room for two

    def claim(registry):
        return next(items, None)

    lanes = DeliveryLanes(claim, lambda item: gate.wait(timeout=10), width=2, wake=lambda: wakes.append(1))
    try:
        assert lanes.dispatch(["r"]) == 2
        gate.set()
        assert lanes.wait_idle(timeout=10)
        assert wakes, "the pump must hear that the lane it found full has room again"
    finally:
        gate.set()
        lanes.close()
