"""What one fake registry is: its name, its key at its target and the target's base URL."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RegistryConfig:
    name: str
    api_key: str  # this registry's key at its target; callbacks should carry it too
    target_url: str  # base URL of the ePROM API it orders from (ePROX, or ePROM itself)
