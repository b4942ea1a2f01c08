"""HTTP out: the registry places orders at its target with its own key, through the runtime's transport."""
from __future__ import annotations

from typing import Any

from service_kit.http import Exchange, Transport

from .config import RegistryConfig


class TargetClient:
    def __init__(self, config: RegistryConfig, transport: Transport):
        self._config = config
        self._transport = transport
        self._base = config.target_url.rstrip("/")

    def place_order(self, body: Any) -> Exchange:
        return self._transport.send("POST", f"{self._base}/api/v2/formorder", body,
                                    api_key=self._config.api_key)
