"""The proxy's configuration: its registries, its account at ePROM, lifetime and where state lives."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .linking import DEFAULT_LIFETIME


@dataclass(frozen=True)
class RegistryAccount:
    name: str
    api_key: str
    api_base_url: str  # callbacks go to {api_base_url}/api/PromsFormOrder and /api/MessageToCitizen
    allowed_forms: frozenset[str] | None = None  # None: every form in ePROX's catalog


@dataclass
class ProxyConfig:
    eprom_url: str
    eprom_api_key: str  # ePROX's own key at ePROM; ePROM's callbacks must carry it
    registries: list[RegistryAccount]
    state_dir: Path
    lifetime: timedelta = DEFAULT_LIFETIME
    registry_by_key: dict[str, RegistryAccount] = field(init=False, repr=False)
    registry_by_name: dict[str, RegistryAccount] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        names = [r.name for r in self.registries]
        keys = [r.api_key for r in self.registries]
        if len(set(names)) != len(names) or len(set(keys)) != len(keys):
            raise ValueError("every registry needs its own name and its own apiKey")
        if self.eprom_api_key in keys:
            raise ValueError("a registry must not share ePROX's key at ePROM")
        self.registry_by_key = {r.api_key: r for r in self.registries}
        self.registry_by_name = {r.name: r for r in self.registries}

    @property
    def database_path(self) -> Path:
        return self.state_dir / "eprox.sqlite3"
