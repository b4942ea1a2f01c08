"""Every message the servers of a harness send each other, one readable line each: simulated time,
sender → receiver, what it was, which order, and the HTTP result. National ids are masked and answer
data (formData) is never shown, nor what a callback's receiver answered beyond its status (a registry
may echo what it was sent)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from eprom_protocol.enums import (
    STATUS_CALLBACK_STATUSES,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel,
    SentStatus,
    WireEnum,
)
from eprom_protocol import json_text
from eprom_protocol.messages import ZERO_UUID
from eprom_protocol.national_id import mask, mask_in_text
from proxy.service import FORM_ORDER_PATH, MESSAGE_PATH
from service_kit.http import Exchange, Tap

DIRECTIVES = ("CREATE_NEW_ORDER", "RELEVANT_DATE")
MAX_MESSAGE = 100  # characters of an error message shown
CALLBACK_PATHS = tuple(path.lower() for path in (FORM_ORDER_PATH, MESSAGE_PATH))  # ePROM's and ePROX's alike


@dataclass(frozen=True)
class Entry:
    sender: str  # the name of the server that sent it (the harness knows it better than the sender)
    exchange: Exchange

    @property
    def order_key(self) -> int:
        return getattr(self.exchange, "seq", 0)


class Transcript:
    """Collects exchanges from the tap of every server (tap_for(name)) and renders them."""

    def __init__(self, names: dict[str, str] | None = None, form_names: dict[str, str] | None = None):
        self.names: dict[str, str] = dict(names or {})  # base URL (scheme://host:port) -> server name
        self.form_names: dict[str, str] = dict(form_names or {})
        self._entries: list[Entry] = []
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    # --- collecting ---------------------------------------------------------------------
    def tap_for(self, sender: str) -> Tap:
        return lambda exchange: self.record(exchange, sender)

    def record(self, exchange: Exchange, sender: str | None = None) -> None:
        entry = Entry(sender or exchange.sender, exchange)
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:  # live output, in the order the exchanges finish
            listener(self.line(entry))

    def subscribe(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def entries(self, start: int = 0) -> list[Entry]:
        """Entries recorded from position `start` on, in the order they were sent."""
        with self._lock:
            chosen = self._entries[start:]
        return sorted(chosen, key=lambda e: e.order_key)

    def exchanges(self, start: int = 0) -> list[Exchange]:
        return [e.exchange for e in self.entries(start)]

    # --- rendering ----------------------------------------------------------------------
    def lines(self, start: int = 0) -> list[str]:
        return [self.line(e) for e in self.entries(start)]

    def render(self, start: int = 0) -> str:
        return "\n".join(self.lines(start))

    def line(self, entry: Entry) -> str:
        ex = entry.exchange
        width = max([len(n) for n in self.names.values()] + [len(entry.sender), 6])
        receiver = self.receiver_name(ex.url)
        what, ref = self.describe(ex)
        text = (f"{ex.at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}Z  "
                f"{entry.sender:>{width}} → {receiver:<{width}}  {what:<44} {ref:<16} {result(ex)}")
        return mask_in_text(text.rstrip())

    def receiver_name(self, url: str) -> str:
        parts = urlsplit(url)
        return self.names.get(f"{parts.scheme}://{parts.netloc}", parts.netloc or url)

    def describe(self, ex: Exchange) -> tuple[str, str]:
        """(what the message is, which order or message it is about)."""
        path = urlsplit(ex.url).path.rstrip("/")
        last = path.rsplit("/", 1)[-1]
        body = ex.request_body if isinstance(ex.request_body, dict) else {}
        answer = ex.response_body if isinstance(ex.response_body, dict) else {}
        lower = path.lower()
        if lower.endswith("/api/v2/formorder"):
            form = body.get("formId")
            form = self.form_names.get(form, short(form)) if isinstance(form, str) else "?"
            what = f"POST formorder {form} patient {mask(body.get('nationalId'))}"
            flags = directives(body.get("metadata"))
            if flags:
                what += f" [{flags}]"
            return what, ref("order", answer.get("id"))
        if lower.endswith("/api/promsformorder"):
            return f"{ex.method} PromsFormOrder {order_status(body)}", ref("order", body.get("formOrderId"))
        if lower.endswith("/api/messagetocitizen"):
            sent = enum_name(SentStatus, body.get("sentStatus"))
            channel = enum_name(NotificationChannel, body.get("notificationChannel"))
            return f"{ex.method} MessageToCitizen {sent} ({channel})", ref("message", body.get("messageToCitizenId"))
        if lower.endswith("/api/v2/messagetocitizen"):
            return "POST messagetocitizen", ref("message", answer.get("messageToCitizenId"))
        if "/api/externaldocument/" in lower:
            return f"{ex.method} ExternalDocument", ref("document", last)
        return f"{ex.method} {path or '/'}", ""


def short(value: Any) -> str:
    """The first 8 characters, national ids masked first: a cut id would no longer be seen as one."""
    return mask_in_text(str(value))[:8]


def ref(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if value == ZERO_UUID:
        return "zero id: no order" if kind == "order" else "zero id"
    return f"{kind} {short(value)}"


def enum_name(enum: type[WireEnum], value: Any) -> str:
    return enum.parse(value).wire_name if enum.is_valid(value) else repr(value)


def order_status(body: dict) -> str:
    """`Ordered (Helsenorge)`, `Error PatientUnreachable (None)`, `Completed`, `Expired`."""
    raw = body.get("formOrderStatus")
    if not FormOrderStatus.is_valid(raw):
        return f"status {raw!r}"
    status = FormOrderStatus.parse(raw)
    if status not in STATUS_CALLBACK_STATUSES:
        return status.wire_name
    text = status.wire_name
    code = body.get("formOrderStatusErrorCode")
    if FormOrderStatusErrorCode.is_valid(code) and FormOrderStatusErrorCode.parse(code) != FormOrderStatusErrorCode.None_:
        text += f" {FormOrderStatusErrorCode.parse(code).wire_name}"
    return f"{text} ({enum_name(NotificationChannel, body.get('notificationChannel'))})"


def directives(metadata: Any) -> str:
    """The ePROX directives an order's metadata carries, e.g. `CREATE_NEW_ORDER=true`."""
    if not isinstance(metadata, str):
        return ""
    try:
        parsed = json_text.loads(metadata)
    except ValueError:
        return "metadata not JSON"
    if not isinstance(parsed, dict):
        return ""
    return " ".join(f"{k}={json.dumps(parsed[k])}" for k in DIRECTIVES if k in parsed)


def is_callback(ex: Exchange) -> bool:
    return urlsplit(ex.url).path.rstrip("/").lower().endswith(CALLBACK_PATHS)


def flag(value: Any) -> str:
    """A success flag that is not true: false, null or a number as JSON; text, a list or an object only by
    kind, since a registry could fill it with what it was sent."""
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return "(text)" if isinstance(value, str) else "(a list)" if isinstance(value, list) else "(an object)"


def result(ex: Exchange) -> str:
    """Status, success flag and, for a refused order, the refusal's text (the proxy's or fake ePROM's own):
    a callback's answer comes from its receiver (a registry, or the proxy), whose text is not shown."""
    if ex.status is None:
        return f"no answer ({(ex.error or 'unknown error').split(':', 1)[0]})"
    body = ex.response_body if isinstance(ex.response_body, dict) else {}
    text = str(ex.status)
    if "success" in body:
        text += " success" if body["success"] is True else f" success={flag(body['success'])}"
    if ex.status >= 400 and isinstance(body.get("message"), str) and not is_callback(ex):
        message = mask_in_text(body["message"])  # before the cut, which could leave a cut id unmasked
        text += f" {message[:MAX_MESSAGE]!r}" + ("…" if len(message) > MAX_MESSAGE else "")
    return text
