"""The proxy's configuration: its registries, its account at ePROM, lifetime, where state lives and how it
delivers. (Reading it from a file and the environment: proxy/settings.py.)"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .linking import DEFAULT_LIFETIME

DATABASE_NAME = "eprox.sqlite3"
#: A lifetime is kept within a century: instants an order's lifetime away must stay within what a date can hold
#: (a lifetime of 10^8 days made every order a 500).
MAX_LIFETIME_DAYS = 36500
LIFETIME_DAYS_SCHEMA = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_LIFETIME_DAYS}
#: What a lifetime must at least be once in days: 1e-300 days passes the schema but is no time at all, and ended
#: every order as it was made.
MIN_LIFETIME = timedelta(seconds=1)


def lifetime_problem(days: float) -> str | None:
    """What is wrong with a lifetime in days that its schema lets through, if anything (NaN and infinities are
    the schema's to refuse)."""
    if math.isfinite(days) and timedelta(days=days) < MIN_LIFETIME:
        return "must be at least a second (1/86400 days); a shorter lifetime ends every order as it is made"
    return None


@dataclass(frozen=True)
class RegistryAccount:
    name: str
    api_key: str
    api_base_url: str  # callbacks go to {api_base_url}/api/PromsFormOrder and /api/MessageToCitizen
    allowed_forms: frozenset[str] | None = None  # None: every form in ePROX's catalog

    def __post_init__(self) -> None:
        if self.allowed_forms is not None:  # form ids compare in lower case, as the proxy stores them
            object.__setattr__(self, "allowed_forms", frozenset(f.lower() for f in self.allowed_forms))


@dataclass
class ProxyConfig:
    eprom_url: str
    eprom_api_key: str  # ePROX's own key at ePROM; ePROM's callbacks must carry it
    registries: list[RegistryAccount]
    state_dir: Path
    lifetime: timedelta = DEFAULT_LIFETIME
    database: Path | None = None  # default: {state_dir}/eprox.sqlite3
    delivery_timeout: float = 15.0  # seconds for one HTTP call to a registry or ePROM
    lane_width: int = 4  # deliveries in flight at once to one registry
    lease_seconds: float = 300.0  # a delivery being sent is this process's for this long at most
    synchronous: str = "NORMAL"  # SQLite: NORMAL survives a killed process, FULL also a power cut
    log_level: str = "INFO"
    registry_by_key: dict[str, RegistryAccount] = field(init=False, repr=False)
    registry_by_name: dict[str, RegistryAccount] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if self.database is not None:
            self.database = Path(self.database)
        names = [r.name for r in self.registries]
        keys = [r.api_key for r in self.registries]
        if len(set(names)) != len(names) or len(set(keys)) != len(keys):
            raise ValueError("every registry needs its own name and its own apiKey")
        if self.eprom_api_key in keys:
            raise ValueError("a registry must not share ePROX's key at ePROM")
        if self.lane_width < 1:
            raise ValueError("lane_width must be at least 1")
        if self.delivery_timeout <= 0 or self.lease_seconds <= self.delivery_timeout:
            raise ValueError("delivery_timeout must be positive and lease_seconds longer than it")
        self.registry_by_key = {r.api_key: r for r in self.registries}
        self.registry_by_name = {r.name: r for r in self.registries}

    @property
    def database_path(self) -> Path:
        return self.database if self.database is not None else self.state_dir / DATABASE_NAME
