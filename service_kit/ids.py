"""Seeded uuids, so the same scenario and seed give the same ids."""
from __future__ import annotations

import random
import threading
import uuid


class IdSource:
    def __init__(self, seed: int | str, namespace: str):
        self._rng = random.Random(f"{seed}:{namespace}")
        self._lock = threading.Lock()

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def rng(self, purpose: str) -> random.Random:
        """An independent generator for one purpose (answers, codes...), itself seeded from this source."""
        with self._lock:
            return random.Random(f"{self._rng.getrandbits(64)}:{purpose}")
