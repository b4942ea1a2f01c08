"""HTTP out of the proxy: orders to ePROM with ePROX's key, callbacks to registries with a stable
X-Delivery-Id."""
from __future__ import annotations

from typing import Any

from service_kit.http import Transport

from .config import RegistryAccount
from .service import Reply


class HttpEprom:
    def __init__(self, transport: Transport, base_url: str, api_key: str):
        self.transport = transport
        self.url = base_url.rstrip("/") + "/api/v2/formorder"
        self.api_key = api_key

    def place_order(self, body: dict[str, Any]) -> Reply:
        exchange = self.transport.send("POST", self.url, body, api_key=self.api_key)
        return Reply(exchange.status, exchange.response_body, exchange.error)


class HttpRegistries:
    def __init__(self, transport: Transport):
        self.transport = transport

    def deliver(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> Reply:
        exchange = self.transport.send("PUT", registry.api_base_url.rstrip("/") + path, body,
                                       headers={"X-Delivery-Id": delivery_id})
        return Reply(exchange.status, exchange.response_body, exchange.error)
