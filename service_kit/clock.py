"""Clocks: the simulated one a harness shares between its servers, and the system one for production."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Protocol

DEFAULT_SIM_START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


class Clock(Protocol):
    simulated: bool

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC; the production proxy runs on this."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimClock:
    """Simulated UTC time that moves only forward and only when a Timeline moves it."""

    simulated = True

    def __init__(self, start: datetime = DEFAULT_SIM_START):
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware start time")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def move_to(self, instant: datetime) -> None:
        with self._lock:
            if instant > self._now:
                self._now = instant
