"""How the proxy retries a callback a registry did not acknowledge (pure policy), and the per-key locks
that keep concurrent orders for one patient and form from racing."""
from __future__ import annotations

import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Hashable, Iterator


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: 30 s, 1 min, 2 min ... capped at 1 h between attempts, for at least 3 days."""

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(days=3)

    def delay(self, failed_attempts: int) -> timedelta:
        exponent = min(max(failed_attempts - 1, 0), 30)
        return min(self.first_delay * (2 ** exponent), self.max_delay)

    def next_attempt(self, created_at: datetime, failed_attempts: int, now: datetime) -> datetime | None:
        """When to try again after `failed_attempts` failures, or None: park the delivery as dead."""
        if now - created_at >= self.give_up_after:
            return None
        return now + self.delay(failed_attempts)


class KeyedLocks:
    """One lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._users: dict[Hashable, int] = defaultdict(int)

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            self._users[key] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                self._users[key] -= 1
                if self._users[key] == 0:
                    del self._users[key], self._locks[key]
