"""Seeded uuids, so the same scenario and seed give the same ids."""
from __future__ import annotations

import random
import threading
import uuid


class IdSource:
    """Seeded in a harness; with seed None (production) it draws from the operating system."""

    def __init__(self, seed: int | str | None, namespace: str):
        self._rng = random.Random(None if seed is None else f"{seed}:{namespace}")
        self._lock = threading.Lock()

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def rng(self, purpose: str) -> random.Random:
        """An independent generator for one purpose (answers, codes...), itself seeded from this source."""
        with self._lock:
            return random.Random(f"{self._rng.getrandbits(64)}:{purpose}")
