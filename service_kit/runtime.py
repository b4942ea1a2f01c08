"""What a server is given instead of reading globals: clock, timeline, seed and the wire tap."""
from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .http import Tap, Transport
from .ids import IdSource
from .timeline import Timeline


@dataclass
class Runtime:
    clock: Clock
    timeline: Timeline
    seed: int | str | None = 0  # None: ids from the operating system's randomness (production)
    tap: Tap | None = None
    sim: bool = True  # serve /_sim/... (the production proxy runs with sim=False)
    delivery_timeout: float = 15.0

    def transport(self, sender: str) -> Transport:
        return Transport(sender, self.clock, self.tap, timeout=self.delivery_timeout)

    def ids(self, namespace: str) -> IdSource:
        return IdSource(self.seed, namespace)
