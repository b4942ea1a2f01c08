"""HTTP out: one small client per server, which records every exchange for transcripts and reports. It
speaks HTTP/1.1 over keep-alive `http.client` connections, one set per thread (a fraction of requests'
cost per call: under load the proxy spent a third of its time in requests); calls through an HTTP proxy
from the environment (HTTP_PROXY and friends) go through requests, which knows how."""
from __future__ import annotations

import http.client
import itertools
import json
import select
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

import requests

from .clock import Clock

DEFAULT_TIMEOUT = 15.0  # seconds, as the most trusted webhook senders use

_send_order = itertools.count(1)  # process-wide: a tap sees exchanges as they finish, a transcript wants them as sent


@dataclass
class Exchange:
    """One request one server sent, and what came back (status None: no HTTP answer at all)."""

    at: datetime
    sender: str
    method: str
    url: str
    request_body: Any
    status: int | None = None
    response_body: Any = None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seq: int = field(default_factory=lambda: next(_send_order))  # when it was sent, relative to the others

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def acknowledged(self) -> bool:
        """A callback counts as received only on HTTP 2xx with {"success": true}."""
        return self.ok and isinstance(self.response_body, dict) and self.response_body.get("success") is True


Tap = Callable[[Exchange], None]


class ThreadSessions:
    """One requests.Session per thread (a Session is not thread-safe), for what KeepAliveClient leaves to
    requests: calls through an HTTP proxy, binary downloads."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


class KeepAliveClient:
    """JSON requests over keep-alive http.client connections, one set per thread."""

    RETRY_STALE = frozenset({"GET", "PUT"})  # idempotent: sent again once when a kept connection had gone stale

    def __init__(self, timeout: float, sessions: ThreadSessions | None = None):
        self.timeout = timeout
        self._sessions = sessions or ThreadSessions()
        self._local = threading.local()
        self._proxied: dict[str, bool] = {}

    def _via_proxy(self, scheme: str, host: str) -> bool:
        key = f"{scheme}://{host}"
        if key not in self._proxied:
            proxies = urllib.request.getproxies()
            self._proxied[key] = scheme in proxies and not urllib.request.proxy_bypass(host)
        return self._proxied[key]

    def request(self, method: str, url: str, body: Any, headers: dict[str, str],
                timeout: float | None = None) -> tuple[int, bytes]:
        """(status, response bytes); raises OSError or http.client.HTTPException when there is no answer."""
        timeout = timeout or self.timeout
        parts = urlsplit(url)
        if self._via_proxy(parts.scheme, parts.hostname or ""):
            reply = self._sessions.get().request(method, url, json=body, headers=headers, timeout=timeout)
            return reply.status_code, reply.content
        sent = dict(headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent.update({"Content-Type": "application/json", "Content-Length": str(len(payload))})
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        pool = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):
            connection = pool.pop(key, None)
            if connection is not None and closed_while_idle(connection.sock):
                connection.close()  # the other side's idle timeout: a new connection, never a failed call
                connection = None
            reused = connection is not None
            if connection is None:
                kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                connection = kind(parts.hostname, parts.port, timeout=timeout)
            else:
                connection.sock.settimeout(timeout)
            try:
                connection.request(method, target, body=payload, headers=sent)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if reused and attempt == 1 and method in self.RETRY_STALE:
                    continue  # closed just as it was sent (after the idle check): once more on a new one
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


def closed_while_idle(sock: socket.socket | None) -> bool:
    """Whether a kept connection, idle in the pool, is no longer fit to send on: it is readable although no
    answer is due, i.e. the other side closed it (a server's keep-alive timeout) or said something unasked
    before closing. The check urllib3 makes before reusing a connection; without it the next POST on it
    would fail, and a POST is never sent twice."""
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed descriptor
        return True


def error_kind(err: BaseException) -> str:
    """What kind of failure left a call without an answer, the same whichever client met it."""
    if isinstance(err, (socket.timeout, TimeoutError, requests.Timeout)):
        return "Timeout"
    if isinstance(err, (ConnectionError, requests.ConnectionError)):
        return "ConnectionError"
    return type(err).__name__


class Transport:
    def __init__(self, sender: str, clock: Clock, tap: Tap | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.sender = sender
        self.clock = clock
        self.tap = tap
        self.timeout = timeout
        self.sessions = ThreadSessions()
        self.client = KeepAliveClient(timeout, self.sessions)

    def send(self, method: str, url: str, body: Any = None, *, api_key: str | None = None,
             headers: dict[str, str] | None = None, timeout: float | None = None) -> Exchange:
        sent_headers = dict(headers or {})
        if api_key is not None:
            sent_headers["Authorization"] = f"Basic {api_key}"
        return self.complete(Exchange(self.clock.now(), self.sender, method, url, body, headers=sent_headers),
                             timeout)

    def complete(self, exchange: Exchange, timeout: float | None = None) -> Exchange:
        """Send an exchange made beforehand (its place in a transcript fixed when it was made), fill in
        what came back, and tap it."""
        try:
            status, data = self.client.request(exchange.method, exchange.url, exchange.request_body,
                                               exchange.headers, timeout or self.timeout)
            exchange.status = status
            try:
                exchange.response_body = json.loads(data)
            except ValueError:
                exchange.response_body = data.decode("utf-8", "replace")[:2000]
        except (OSError, http.client.HTTPException, requests.RequestException) as err:
            exchange.error = f"{error_kind(err)}: {err}"[:500]
        if self.tap is not None:
            self.tap(exchange)
        return exchange
