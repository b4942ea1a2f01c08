"""The scenario script as due work on the shared timeline: each order runs when the clock reaches it, in
time order with the other servers' work, exactly once, and a failing order does not stop time. Fake
placer, no HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta

from harness.scenario import OrderStep, ScriptWork, StepResult, _iso
from service_kit.clock import DEFAULT_SIM_START

START = DEFAULT_SIM_START


def step(index: int, days: float, registry: str = "registry-a") -> OrderStep:
    return OrderStep(index=index, at=timedelta(days=days), registry=registry, patient="kari",
                     form_id="1bc5f9f0-2607-49eb-94f0-6af955bbd79a", form_name="RAND-12")


class Recorder:
    """Stands in for the placer; records (step index, the instant it ran at) in the shared journal."""

    def __init__(self, journal: list, fail_on: set[int] = frozenset()):
        self.journal = journal
        self.fail_on = fail_on

    def __call__(self, order: OrderStep, now: datetime) -> StepResult:
        self.journal.append(("order", order.index, now))
        if order.index in self.fail_on:
            raise ConnectionError("registry down")
        return StepResult(order, now, 200, {"id": f"id-{order.index}"})


class OtherWork:
    """Another server's due work at fixed instants."""

    name = "other"

    def __init__(self, journal: list, instants: list[datetime]):
        self.journal = journal
        self.instants = sorted(instants)

    def next_due(self):
        return self.instants[0] if self.instants else None

    def run_due(self, now):
        while self.instants and self.instants[0] <= now:
            self.journal.append(("other", self.instants.pop(0), now))


def test_orders_run_when_the_clock_reaches_them_in_time_order_with_other_work(timeline):
    journal: list = []
    timeline.register(OtherWork(journal, [START + timedelta(days=1, hours=12), START + timedelta(days=5)]))
    work = ScriptWork([step(0, 3), step(1, 0), step(2, 1), step(3, 1)], START, Recorder(journal))
    timeline.register(work)
    assert work.next_due() == START

    timeline.settle()  # what is due now: the order at P0D
    assert journal == [("order", 1, START)]

    timeline.advance(timedelta(days=4))
    assert journal == [
        ("order", 1, START),
        ("order", 2, START + timedelta(days=1)),  # ties keep the file order
        ("order", 3, START + timedelta(days=1)),
        ("other", START + timedelta(days=1, hours=12), START + timedelta(days=1, hours=12)),
        ("order", 0, START + timedelta(days=3)),
    ]
    assert [r.step.index for r in work.results] == [1, 2, 3, 0]
    assert work.remaining == 0 and work.next_due() is None

    timeline.advance(timedelta(days=10))  # nothing runs twice
    assert [e for e in journal if e[0] == "order"] == [e for e in journal[:5] if e[0] == "order"]


def test_an_order_that_cannot_be_placed_is_recorded_and_time_goes_on(timeline):
    journal: list = []
    work = ScriptWork([step(0, 1), step(1, 2)], START, Recorder(journal, fail_on={0}))
    timeline.register(work)
    timeline.advance(timedelta(days=3))
    first, second = work.results
    assert first.status is None and first.error == "ConnectionError: registry down" and first.order_id is None
    assert "no answer (ConnectionError: registry down)" == first.describe()
    assert second.status == 200 and second.order_id == "id-1"


def test_results_describe_what_the_target_answered():
    order = step(0, 0)
    zero = StepResult(order, START, 200, {"id": "00000000-0000-0000-0000-000000000000"})
    assert zero.describe() == "zero id: no order" and zero.order_id is None
    assert StepResult(order, START, 400, {"message": "No form with id='x' exists"}).describe() == (
        "400 \"No form with id='x' exists\"")
    assert StepResult(order, START, 200, {"id": "abcdef12-0000"}).describe() == "200 order abcdef12"


def test_durations_are_printed_as_scenario_files_write_them():
    assert [_iso(d) for d in (timedelta(0), timedelta(days=3), timedelta(hours=12), timedelta(days=1, minutes=30),
                              timedelta(seconds=1.5))] == ["P0D", "P3D", "PT12H", "P1DT30M", "PT1.5S"]


def test_after_each_order_the_session_hook_runs_before_the_next_order(timeline):
    """ScenarioSession passes timeline.settle here, so an order's held replies are out before time moves."""
    journal: list = []
    work = ScriptWork([step(0, 0), step(1, 0)], START, Recorder(journal),
                      after_each=lambda: journal.append(("after",)))
    timeline.register(work)
    timeline.settle()
    assert [e[0] for e in journal] == ["order", "after", "order", "after"]
