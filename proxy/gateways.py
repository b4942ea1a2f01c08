"""HTTP out of the proxy: orders, messages and document downloads to ePROM with ePROX's key, and callbacks
to registries with a stable X-Delivery-Id."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from service_kit.http import Exchange, Transport

from .config import RegistryAccount
from .service import Reply

DELIVERY_ID_HEADER = "X-Delivery-Id"


class _Sessions:
    """One requests.Session per thread (a Session is not thread-safe), for calls Transport.send cannot
    make: binary downloads, and sends whose Exchange is made before the call."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


@dataclass(frozen=True)
class Document:
    """A binary answer from ePROM (status None: no HTTP answer at all)."""

    status: int | None
    content: bytes
    content_type: str
    error: str | None = None


class HttpEprom:
    def __init__(self, transport: Transport, base_url: str, api_key: str):
        self.transport = transport
        self.base = base_url.rstrip("/")
        self.api_key = api_key
        self._sessions = _Sessions()

    def place_order(self, body: dict[str, Any]) -> Reply:
        exchange = self.transport.send("POST", self.base + "/api/v2/formorder", body, api_key=self.api_key)
        return Reply(exchange.status, exchange.response_body, exchange.error)

    def send_message(self, body: dict[str, Any]) -> Reply:
        exchange = self.transport.send("POST", self.base + "/api/v2/messagetocitizen", body, api_key=self.api_key)
        return Reply(exchange.status, exchange.response_body, exchange.error)

    def fetch_document(self, signed_form_id: str) -> Document:
        url = f"{self.base}/api/ExternalDocument/{quote(signed_form_id, safe='')}"
        headers = {"Authorization": f"Basic {self.api_key}"}
        exchange = Exchange(self.transport.clock.now(), self.transport.sender, "GET", url, None, headers=headers)
        try:
            reply = self._sessions.get().get(url, headers=headers, timeout=self.transport.timeout)
            document = Document(reply.status_code, reply.content,
                                reply.headers.get("Content-Type", "application/octet-stream"))
            exchange.status = reply.status_code
            exchange.response_body = (f"<{len(reply.content)} bytes {document.content_type}>"
                                      if reply.ok else _json_or_text(reply))
        except requests.RequestException as err:
            document = Document(None, b"", "", f"{type(err).__name__}")
            exchange.error = f"{type(err).__name__}: {err}"[:500]
        if self.transport.tap is not None:
            self.transport.tap(exchange)
        return document


def _json_or_text(reply: requests.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return reply.text[:2000]


class KeepAliveClient:
    """PUTs JSON over keep-alive http.client connections, one set per thread: the outbox's hot path, at a
    fraction of requests' cost per call. Calls through an HTTP proxy from the environment (HTTP_PROXY and
    friends) go through requests instead, which knows how."""

    def __init__(self, timeout: float, sessions: _Sessions):
        self.timeout = timeout
        self._sessions = sessions
        self._local = threading.local()
        self._proxied: dict[str, bool] = {}

    def _via_proxy(self, scheme: str, host: str) -> bool:
        key = f"{scheme}://{host}"
        if key not in self._proxied:
            proxies = urllib.request.getproxies()
            self._proxied[key] = scheme in proxies and not urllib.request.proxy_bypass(host)
        return self._proxied[key]

    def put(self, url: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, response bytes); raises OSError or http.client.HTTPException when there is no answer."""
        parts = urlsplit(url)
        if self._via_proxy(parts.scheme, parts.hostname or ""):
            reply = self._sessions.get().put(url, json=body, headers=headers, timeout=self.timeout)
            return reply.status_code, reply.content
        payload = json.dumps(body).encode()
        sent = {**headers, "Content-Type": "application/json", "Content-Length": str(len(payload))}
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        pool = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):
            connection = pool.pop(key, None)
            reused = connection is not None
            if connection is None:
                kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                connection = kind(parts.hostname, parts.port, timeout=self.timeout)
            try:
                connection.request("PUT", target or "/", body=payload, headers=sent)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if reused and attempt == 1:
                    continue  # the registry had closed the idle connection: once more on a new one
                raise
            except (OSError, http.client.HTTPException):
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                pool[key] = connection
            return response.status, data
        raise http.client.HTTPException("unreachable")  # pragma: no cover


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
        ex, transport = self.exchange, self._gateway.transport
        try:
            status, data = self._gateway.client.put(ex.url, ex.request_body, ex.headers)
            ex.status = status
            try:
                ex.response_body = json.loads(data)
            except ValueError:
                ex.response_body = data.decode("utf-8", "replace")[:2000]
        except (OSError, http.client.HTTPException, requests.RequestException) as err:
            kind = "Timeout" if isinstance(err, (socket.timeout, TimeoutError)) else type(err).__name__
            ex.error = f"{kind}: {err}"[:500]
        if transport.tap is not None:
            transport.tap(ex)
        return Reply(ex.status, ex.response_body, ex.error)


class HttpRegistries:
    def __init__(self, transport: Transport):
        self.transport = transport
        self.sessions = _Sessions()
        self.client = KeepAliveClient(transport.timeout, self.sessions)

    def prepare(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> PreparedDelivery:
        return PreparedDelivery(self, registry, path, body, delivery_id)

    def deliver(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> Reply:
        return self.prepare(registry, path, body, delivery_id).send()
