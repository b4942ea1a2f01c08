"""The one place where time-driven work happens: every server registers its due work here, and moving
the clock runs all of it in time order. A pump thread runs work that is due now, so callbacks flow
without anyone advancing the clock."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Callable, Protocol

from .clock import Clock, SimClock

log = logging.getLogger(__name__)

MAX_STEPS_PER_RUN = 200_000
HOLD_WAIT = 10.0  # seconds advance() waits for responses still being sent before it moves the clock


class DueWork(Protocol):
    """Something with work that falls due: patient answers, expiries, callbacks, retries, lifetime ends."""

    name: str

    def next_due(self) -> datetime | None:
        """When the earliest pending piece of work falls due (None: nothing pending)."""

    def run_due(self, now: datetime) -> None:
        """Do every piece of work due at or before `now`, rescheduling what fails to a later time."""


class Timeline:
    def __init__(self, clock: Clock, *, pump: bool = True):
        self.clock = clock
        self._works: list[DueWork] = []
        self._run_lock = threading.RLock()
        # Two conditions on one lock: the pump waits on _wake, settle()/advance() on _released. A request's
        # hold ends on every request, and waking the pump for it would cost a thread switch each time.
        self._state_lock = threading.Lock()
        self._wake = threading.Condition(self._state_lock)
        self._released = threading.Condition(self._state_lock)
        self._woken = False
        self._holds = 0
        self._stopping = False
        self._pump_enabled = pump
        self._thread: threading.Thread | None = None

    # --- wiring -----------------------------------------------------------------------
    def register(self, work: DueWork) -> None:
        self._works.append(work)
        self.notify()

    def start(self) -> None:
        if self._pump_enabled and self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="timeline-pump", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def in_pump(self) -> bool:
        """Whether the calling thread is this timeline's pump: due work the pump runs must not wait for
        slow parties (it would stall everyone's), while advance() and settle() must."""
        return self._thread is not None and threading.current_thread() is self._thread

    def notify(self) -> None:
        """New work may be due: wake the pump (never blocks)."""
        with self._wake:
            self._woken = True
            self._wake.notify_all()

    def hold(self) -> Callable[[], None]:
        """Work a request has made but that may go only after its response has been sent: until the
        returned release() is called, settle() waits for it. release() is idempotent and wakes settle();
        whoever releases the work itself notify()s when it has something due (the pump then runs)."""
        with self._state_lock:
            self._holds += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._state_lock:
                if released:
                    return
                released = True
                self._holds -= 1
                self._released.notify_all()

        return release

    # --- running work -----------------------------------------------------------------
    def advance(self, delta: timedelta) -> datetime:
        """Move a simulated clock by delta, running everything that falls due on the way, in time order."""
        if not isinstance(self.clock, SimClock):
            raise RuntimeError("only a simulated clock can be advanced")
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._wait_for_holds(HOLD_WAIT)  # work made by a request still answering belongs to "now"
        with self._run_lock:
            target = self.clock.now() + delta
            self._run_until(target, move_clock=True)
            self.clock.move_to(target)
            self._run_until(target, move_clock=False)
            return self.clock.now()

    def settle(self, timeout: float = 30.0) -> int:
        """Wait for held work to be released, run everything due now; return how much is still due or
        held (0 unless the bounded wait timed out)."""
        deadline = time.monotonic() + timeout
        self._wait_for_holds(timeout)
        if not self._run_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return self.pending_now()
        try:
            self._run_until(self.clock.now(), move_clock=False)
            return self.pending_now()
        finally:
            self._run_lock.release()

    def _wait_for_holds(self, timeout: float) -> None:
        with self._released:
            self._released.wait_for(lambda: self._holds == 0, timeout=timeout)

    def pending_now(self) -> int:
        now = self.clock.now()
        return self._holds + sum(1 for w in self._works if (due := w.next_due()) is not None and due <= now)

    def _run_until(self, limit: datetime, *, move_clock: bool) -> None:
        broken: set[int] = set()
        for _ in range(MAX_STEPS_PER_RUN):
            due = self._earliest(limit, broken)
            if due is None:
                return
            when, work = due
            if move_clock:
                self.clock.move_to(when)
            try:
                work.run_due(self.clock.now())
            except Exception:  # one broken participant must not stop time for the others
                log.exception("due work of %s failed; skipping it until the next run", work.name)
                broken.add(id(work))
        log.error("gave up after %d steps of due work before %s", MAX_STEPS_PER_RUN, limit)

    def _earliest(self, limit: datetime, broken: set[int]) -> tuple[datetime, DueWork] | None:
        best: tuple[datetime, DueWork] | None = None
        for work in self._works:  # registration order breaks ties: deterministic
            if id(work) in broken:
                continue
            due = work.next_due()
            if due is not None and due <= limit and (best is None or due < best[0]):
                best = (due, work)
        return best

    def _pump(self) -> None:
        while True:
            with self._wake:
                if not (self._woken or self._stopping):
                    self._wake.wait_for(lambda: self._woken or self._stopping, timeout=self._idle_wait())
                self._woken = False
                if self._stopping:
                    return
            with self._run_lock:
                self._run_until(self.clock.now(), move_clock=False)

    def _idle_wait(self) -> float:
        """A simulated clock only moves under advance(), so only notify() wakes the pump; the system
        clock moves by itself, so wake when the next work falls due."""
        if self.clock.simulated:
            return 5.0
        dues = [d for w in self._works if (d := w.next_due()) is not None]
        if not dues:
            return 1.0
        return max(0.0, min(1.0, (min(dues) - self.clock.now()).total_seconds()))
