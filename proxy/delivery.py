"""How the proxy delivers its outbox: the retry policy for a callback a registry did not acknowledge
(pure), and the delivery lanes, one per registry, that keep a slow or failing registry from holding up
any other."""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Generic, Iterable, TypeVar

log = logging.getLogger(__name__)

Work = TypeVar("Work")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: 30 s, 1 min, 2 min ... capped at 1 h between attempts, for at least 3 days."""

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(days=3)

    def delay(self, failed_attempts: int) -> timedelta:
        exponent = min(max(failed_attempts - 1, 0), 30)
        return min(self.first_delay * (2 ** exponent), self.max_delay)

    def next_attempt(self, window_start: datetime, failed_attempts: int, now: datetime) -> datetime | None:
        """When to try again after `failed_attempts` failures in a retry window that began at
        `window_start`, or None: park the delivery as dead."""
        if now - window_start >= self.give_up_after:
            return None
        return now + self.delay(failed_attempts)


def no_hold() -> Callable[[], None]:
    return lambda: None


class DeliveryLanes(Generic[Work]):
    """One lane per registry, each with at most `width` deliveries in flight on threads of its own.

    Work reaches a lane two ways. `offer()` hands over work the caller has already leased (deliveries a
    process made and leased in the same transaction): it starts at once when the lane has room, and
    otherwise waits in memory, ahead of anything in the database, for the lane's next free drain.
    `dispatch()` claims due work from the database for every lane that has room, in the order the
    registries are given (so the first sends of a fan-out start in a fixed order). Either way a drain
    thread delivers the work and goes on with the lane's queued work; a drain that `dispatch()` started
    also keeps claiming for the same registry until none is due. A registry that answers slowly or not at
    all only ever occupies its own lane. A lane found full (by `saturated()` or `dispatch()`) calls `wake`
    once it has room again, so the work left waiting in the database for it is claimed; a lane nobody
    found full wakes no one. `wait_idle()` returns once no lane has work in flight or queued: what a
    simulated clock needs before it moves on."""

    def __init__(self, claim: Callable[[str], Work | None], deliver: Callable[[Work], None], *, width: int = 4,
                 hold: Callable[[], Callable[[], None]] = no_hold, wake: Callable[[], None] = lambda: None,
                 max_threads: int = 256):
        if width < 1:
            raise ValueError("a lane needs room for at least one delivery")
        self._claim = claim
        self._deliver = deliver
        self.width = width
        self._hold = hold
        self._wake = wake
        self._active: dict[str, int] = {}
        self._passed_over: set[str] = set()  # lanes found full: due work may wait in the database for their room
        self._queued: dict[str, deque[Work]] = {}
        self._idle = threading.Condition()
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="proxy-lane")

    def saturated(self, registry: str) -> bool:
        """Whether the lane is full; a full lane calls `wake` once it has room again."""
        with self._idle:
            return self._full(registry)

    def _full(self, registry: str) -> bool:
        full = self._active.get(registry, 0) >= self.width
        if full:
            self._passed_over.add(registry)
        return full

    def busy(self) -> int:
        with self._idle:
            return sum(self._active.values()) + sum(map(len, self._queued.values()))

    def offer(self, registry: str, work: Work) -> bool:
        """Deliver work that is already this process's; False once the lanes are closed (its lease then
        runs out, or its process's death is noticed, and another process sends it)."""
        with self._idle:
            if self._closed:
                return False
            if self._active.get(registry, 0) >= self.width:
                self._queued.setdefault(registry, deque()).append(work)
                return True
            self._active[registry] = self._active.get(registry, 0) + 1
        return self._start(registry, work, claim_more=False)

    def dispatch(self, registries: Iterable[str]) -> int:
        """Start deliveries on every lane with due work and room; returns how many were started."""
        started = 0
        for registry in registries:
            while not self._closed:
                with self._idle:
                    if self._full(registry):
                        break
                    self._active[registry] = self._active.get(registry, 0) + 1  # reserve room before claiming
                try:
                    work = self._claim(registry)
                except Exception:
                    log.exception("claiming a delivery to %s failed", registry)
                    work = None
                if work is None:
                    self._finished(registry)
                    break
                if not self._start(registry, work, claim_more=True):
                    break
                started += 1
        return started

    def _start(self, registry: str, work: Work, claim_more: bool) -> bool:
        release = self._hold()
        try:
            self._pool.submit(self._drain, registry, work, release, claim_more)
        except RuntimeError:  # shut down meanwhile: the lease runs out and someone else sends it
            release()
            self._finished(registry)
            return False
        return True

    def _drain(self, registry: str, work: Work, release: Callable[[], None], claim_more: bool) -> None:
        try:
            while work is not None:
                try:
                    self._deliver(work)
                except Exception:  # a bug in one delivery must not stop the lane
                    log.exception("delivering to %s failed", registry)
                work = self._next(registry, claim_more)
        finally:
            release()

    def _next(self, registry: str, claim_more: bool) -> Work | None:
        """The lane's next work: queued work first, then (for a claiming drain) the database. When there is
        none, the drain's room is given back in the same step, so work queued meanwhile is never stranded."""
        if claim_more and not self._closed and not self._has_queued(registry):
            try:
                claimed = self._claim(registry)
            except Exception:
                log.exception("claiming a delivery to %s failed", registry)
                claimed = None
            if claimed is not None:
                return claimed
        with self._idle:
            queue = self._queued.get(registry)
            if queue and not self._closed:
                work = queue.popleft()
                if not queue:
                    del self._queued[registry]
                return work
            passed_over = self._give_room(registry)
        if passed_over:
            self._wake()  # the lane was found full: work that fell due meanwhile waits for its room
        return None

    def _has_queued(self, registry: str) -> bool:
        with self._idle:
            return bool(self._queued.get(registry))

    def _finished(self, registry: str) -> None:
        with self._idle:
            passed_over = self._give_room(registry)
        if passed_over:
            self._wake()

    def _give_room(self, registry: str) -> bool:
        """Give back a lane's room; whether someone found the lane full meanwhile (and so left work for it)."""
        passed_over = registry in self._passed_over
        self._passed_over.discard(registry)
        self._active[registry] = self._active.get(registry, 0) - 1
        if self._active[registry] <= 0:
            del self._active[registry]
        self._idle.notify_all()
        return passed_over

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Queued work counts as in flight: it is only ever queued behind a running drain, which takes it."""
        with self._idle:
            return self._idle.wait_for(lambda: not any(self._active.values()), timeout=timeout)

    def close(self, wait: bool = True) -> None:
        with self._idle:
            self._closed = True
            self._queued.clear()  # leased work not started: its leases run out or its process is gone
            self._idle.notify_all()
        self._pool.shutdown(wait=wait)
