"""HTTP out: one small client per server, which records every exchange for transcripts and reports."""
from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

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


class Transport:
    def __init__(self, sender: str, clock: Clock, tap: Tap | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.sender = sender
        self.clock = clock
        self.tap = tap
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, method: str, url: str, body: Any = None, *, api_key: str | None = None,
             headers: dict[str, str] | None = None, timeout: float | None = None) -> Exchange:
        sent_headers = dict(headers or {})
        if api_key is not None:
            sent_headers["Authorization"] = f"Basic {api_key}"
        exchange = Exchange(self.clock.now(), self.sender, method, url, body, headers=sent_headers)
        try:
            reply = self._session().request(method, url, json=body, headers=sent_headers,
                                            timeout=timeout or self.timeout)
            exchange.status = reply.status_code
            try:
                exchange.response_body = reply.json()
            except (ValueError, json.JSONDecodeError):
                exchange.response_body = reply.text[:2000]
        except requests.RequestException as err:
            exchange.error = f"{type(err).__name__}: {err}"[:500]
        if self.tap is not None:
            self.tap(exchange)
        return exchange
