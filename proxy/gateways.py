"""HTTP out of the proxy: orders, messages and document downloads to ePROM with ePROX's key, and callbacks
to registries with a stable X-Delivery-Id."""
from __future__ import annotations

import http.client
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from service_kit.http import (AnswerTooLarge, Exchange, Transport, UnsendableRequest, decode_answer, describe_error,
                              error_kind)

from .config import RegistryAccount
from .service import Reply

log = logging.getLogger(__name__)

DELIVERY_ID_HEADER = "X-Delivery-Id"
#: A signed form's PDF is far smaller; a larger answer is refused instead of held in memory.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
#: A document may take this many times a JSON call's timeout in all (it may be megabytes, not a few hundred
#: bytes); the whole download, not each read, is bounded by it.
DOCUMENT_TIMEOUT_FACTOR = 4


@dataclass(frozen=True)
class Document:
    """A binary answer from ePROM (status None: no HTTP answer at all)."""

    status: int | None
    content: bytes
    content_type: str
    error: str | None = None  # why there is no usable answer: the kind of failure, or what was refused
    answered: bool = False  # with an error: ePROM did answer, with something ePROX does not pass on
    message: str | None = None  # the "message" of an answer that is not the document, if it has one


class HttpEprom:
    def __init__(self, transport: Transport, base_url: str, api_key: str):
        self.transport = transport
        self.base = base_url.rstrip("/")
        self.api_key = api_key

    def place_order(self, body: dict[str, Any]) -> Reply:
        return self._post("/api/v2/formorder", body)

    def send_message(self, body: dict[str, Any]) -> Reply:
        return self._post("/api/v2/messagetocitizen", body)

    def _post(self, path: str, body: dict[str, Any]) -> Reply:
        exchange = self.transport.send("POST", self.base + path, body, api_key=self.api_key)
        if (exchange.error or "").startswith(UnsendableRequest.__name__):  # the registry sees a 502
            log.error("no request to ePROM can be made with the proxy's ePROM URL and key: check the configuration")
        return Reply(exchange.status, exchange.response_body, exchange.error)

    def fetch_document(self, signed_form_id: str) -> Document:
        url = f"{self.base}/api/ExternalDocument/{quote(signed_form_id, safe='')}"
        headers = {"Authorization": f"Basic {self.api_key}"}
        exchange = Exchange(self.transport.clock.now(), self.transport.sender, "GET", url, None, headers=headers)
        try:
            answer = self.transport.client.call("GET", url, None, headers, max_answer=MAX_DOCUMENT_BYTES,
                                                timeout=self.transport.timeout * DOCUMENT_TIMEOUT_FACTOR)
            exchange.status = answer.status
            content_type = answer.content_type or "application/octet-stream"
            exchange.response_body = (f"<{len(answer.data)} bytes {content_type}>"
                                      if exchange.ok else decode_answer(answer.data))
            refusal = exchange.response_body if isinstance(exchange.response_body, dict) else {}
            message = refusal.get("message") if isinstance(refusal.get("message"), str) else None
            document = Document(answer.status, answer.data, content_type, message=message)
        except AnswerTooLarge as err:
            document = Document(None, b"", "", f"larger than the {MAX_DOCUMENT_BYTES >> 20} MiB ePROX passes on",
                                answered=True)
            exchange.error = describe_error(err)
        except (OSError, http.client.HTTPException, requests.RequestException) as err:
            document = Document(None, b"", "", error_kind(err))
            exchange.error = describe_error(err)
        if self.transport.tap is not None:
            self.transport.tap(exchange)
        return document


class PreparedDelivery:
    """One callback attempt whose Exchange exists before it is sent: the lanes make these in a fixed order,
    so a transcript lists a fan-out the same way on every run, however the threads interleave."""

    def __init__(self, gateway: "HttpRegistries", registry: RegistryAccount, path: str, body: dict[str, Any],
                 delivery_id: str):
        self._gateway = gateway
        headers = {DELIVERY_ID_HEADER: delivery_id}
        url = registry.api_base_url.rstrip("/") + path
        self.exchange = Exchange(gateway.transport.clock.now(), gateway.transport.sender, "PUT", url, body,
                                 headers=headers)

    def send(self) -> Reply:
        ex = self._gateway.transport.complete(self.exchange)
        return Reply(ex.status, ex.response_body, ex.error)


class HttpRegistries:
    def __init__(self, transport: Transport):
        self.transport = transport

    def prepare(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> PreparedDelivery:
        return PreparedDelivery(self, registry, path, body, delivery_id)

    def deliver(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> Reply:
        return self.prepare(registry, path, body, delivery_id).send()

    def cut_calls_short(self) -> None:
        """Deliveries in flight end now as failed attempts (sent again later); later ones fail at once."""
        self.transport.cut_calls_short()
