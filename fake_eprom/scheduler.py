"""The fake ePROM's one piece of due work (a service_kit DueWork): a time-ordered queue of jobs (an order
reaching its patient, a planned answer, an expiry, a callback (re)delivery) and the retry policy.

Jobs are state, not closures: a handler given at construction interprets them. A job may wait behind a
*gate* (the order's HTTP response): it is due at its time but does not run before its gate opens, so a
receiver never hears of an order id before the ordering system has it. A gated job that is due makes
run_due wait briefly for the gate; a gate nobody opens within `gate_wait` seconds is opened by force."""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

log = logging.getLogger(__name__)

#: After failed attempt n (1-based) the next attempt comes RETRY_DELAYS[n-1] later, then every RETRY_EVERY.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=6), timedelta(hours=12))
RETRY_EVERY = timedelta(hours=24)
MAX_ATTEMPTS = 10
DEFAULT_GATE_WAIT = 5.0  # seconds a due job waits for its order's response to close


def retry_delay(failed_attempt: int, max_attempts: int = MAX_ATTEMPTS) -> timedelta | None:
    """How long after failed attempt n to try again; None: that was the last attempt, give up."""
    if failed_attempt >= max_attempts:
        return None
    if failed_attempt <= len(RETRY_DELAYS):
        return RETRY_DELAYS[failed_attempt - 1]
    return RETRY_EVERY


@dataclass(eq=False)
class Job:
    due: datetime
    seq: int  # creation order: breaks ties between jobs due at the same instant
    kind: str
    key: str  # what the job is about (an order id)
    gate: str | None = None
    cancelled: bool = False


class Scheduler:
    """Thread-safe: requests schedule and cancel jobs while the timeline runs them. The handler is called
    without the scheduler's lock held, so it may do HTTP and schedule further jobs."""

    name = "fake-eprom"

    def __init__(self, handler: Callable[[Job, datetime], None], *, gate_wait: float = DEFAULT_GATE_WAIT):
        self._handler = handler
        self.gate_wait = gate_wait
        self._heap: list[tuple[datetime, int, Job]] = []
        self._seq = itertools.count()
        self._closed_gates: set[str] = set()
        self._cond = threading.Condition()

    # --- scheduling ---------------------------------------------------------------------
    def schedule(self, due: datetime, kind: str, key: str, *, gate: str | None = None) -> Job:
        with self._cond:
            job = Job(due, next(self._seq), kind, key, gate)
            heapq.heappush(self._heap, (due, job.seq, job))
            self._cond.notify_all()
            return job

    def cancel(self, job: Job) -> None:
        with self._cond:
            job.cancelled = True

    def close_gate(self, gate: str) -> None:
        with self._cond:
            self._closed_gates.add(gate)

    def open_gate(self, gate: str) -> bool:
        """Let the gate's jobs run; False if it was not closed."""
        with self._cond:
            if gate not in self._closed_gates:
                return False
            self._closed_gates.discard(gate)
            self._cond.notify_all()
            return True

    # --- DueWork ------------------------------------------------------------------------
    def next_due(self) -> datetime | None:
        with self._cond:
            self._drop_cancelled()
            return self._heap[0][0] if self._heap else None

    def run_due(self, now: datetime) -> None:
        while (job := self._take(now)) is not None:
            self._handler(job, now)

    def pending(self) -> int:
        with self._cond:
            return sum(1 for _, _, job in self._heap if not job.cancelled)

    # --- internals ----------------------------------------------------------------------
    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def _take(self, now: datetime) -> Job | None:
        with self._cond:
            while True:
                self._drop_cancelled()
                if not self._heap or self._heap[0][0] > now:
                    return None
                job = self._heap[0][2]
                if job.gate is not None and job.gate in self._closed_gates:
                    self._wait_for_gate(job.gate)
                    continue  # the queue may have changed meanwhile
                heapq.heappop(self._heap)
                return job

    def _wait_for_gate(self, gate: str) -> None:
        deadline = time.monotonic() + self.gate_wait
        while gate in self._closed_gates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("gate %s was not opened within %.1f s; running its work anyway", gate, self.gate_wait)
                self._closed_gates.discard(gate)
                return
            self._cond.wait(remaining)
