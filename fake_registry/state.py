"""The registry's state, with no HTTP: callbacks received, orders placed, and how the next callbacks are
answered (faults). Every piece is thread-safe: callbacks arrive on server threads."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from eprom_protocol.enums import RETURNED_FORM_STATUSES, FormOrderStatus
from eprom_protocol.messages import ProtocolError
from eprom_protocol.schemas import violations

PROMS_FORM_ORDER = "/api/PromsFormOrder"
MESSAGE_TO_CITIZEN = "/api/MessageToCitizen"

#: callback kinds and the schema each must follow
ORDER_STATUS = "orderStatus"
RETURNED_FORM = "returnedForm"
MESSAGE_STATUS = "messageStatus"
SCHEMA_OF_KIND = {
    ORDER_STATUS: "order-status-callback",
    RETURNED_FORM: "returned-form-callback",
    MESSAGE_STATUS: "message-status-callback",
}

MAX_DELAY_SECONDS = 300.0
MAX_FAULT_COUNT = 1_000_000  # callbacks; a count beyond what JSON numbers hold exactly in every client is refused
FAULT_FIELDS = ("failNext", "successFalse", "delaySeconds")
MAX_RECORDED_TEXT = 10_000  # characters of a non-JSON body kept for the inbox


def callback_kind(path: str, body: Any) -> str:
    """Which callback a PUT is: the path tells messages from orders; the status tells a returned form
    (Completed, Expired) from an order status. A body without a readable status counts as a returned
    form when it carries formData, otherwise as an order status."""
    if path == MESSAGE_TO_CITIZEN:
        return MESSAGE_STATUS
    if not isinstance(body, dict):
        return ORDER_STATUS
    status = body.get("formOrderStatus")
    if FormOrderStatus.is_valid(status):
        return RETURNED_FORM if FormOrderStatus.parse(status) in RETURNED_FORM_STATUSES else ORDER_STATUS
    return RETURNED_FORM if "formData" in body else ORDER_STATUS


@dataclass
class Callback:
    """One callback as received, and how it was answered."""

    seq: int
    method: str
    path: str
    kind: str
    body: Any
    body_is_json: bool
    headers: dict[str, str]
    received_at: str
    api_key_matches: bool
    schema_violations: list[str]
    answer_status: int
    answer_body: dict
    fault: str | None  # "failNext", "successFalse", or "delaySeconds" when the sender gave up during the delay
    answered: bool = True  # False while a delaySeconds delay holds the answer back

    @property
    def acknowledged(self) -> bool:
        """Only once the answer has gone out, and was read: a callback still in its delay may yet be given up by
        its sender, and one it gave up on (fault delaySeconds) it never read."""
        return (self.answered and self.fault is None and self.answer_status == 200
                and self.answer_body.get("success") is True)

    def as_json(self) -> dict:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "body": self.body,
            "bodyIsJson": self.body_is_json,
            "headers": self.headers,
            "receivedAt": self.received_at,
            "acknowledged": self.acknowledged,
            "answered": self.answered,
            "fault": self.fault,
            "answer": {"status": self.answer_status, "body": self.answer_body},
            "schema": SCHEMA_OF_KIND[self.kind],
            "conforms": not self.schema_violations,
            "schemaViolations": self.schema_violations,
            "apiKeyMatches": self.api_key_matches,
        }


def check_callback(kind: str, body: Any, body_is_json: bool, api_key: str) -> tuple[list[str], bool]:
    """(schema violations, whether the body's apiKey is this registry's key)."""
    if not body_is_json:
        return ["the body is not valid JSON"], False
    found = violations(SCHEMA_OF_KIND[kind], body)
    matches = isinstance(body, dict) and body.get("apiKey") == api_key
    return found, matches


@dataclass
class FaultPlan:
    fail_next: int = 0
    success_false: int = 0
    delay_seconds: float = 0.0

    def as_json(self) -> dict:
        return {"failNext": self.fail_next, "successFalse": self.success_false,
                "delaySeconds": self.delay_seconds}


def parse_fault_settings(body: dict) -> dict[str, float]:
    """Validate a POST /_sim/faults body (any subset of the three fields); 400 naming what is wrong."""
    unknown = sorted(set(body) - set(FAULT_FIELDS))
    if unknown:
        raise ProtocolError(f"unknown field(s) {', '.join(unknown)}; use any of: {', '.join(FAULT_FIELDS)}")
    settings: dict[str, float] = {}
    for name, value in body.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{name}: must be a number, not {value!r}")
        if value < 0:
            raise ProtocolError(f"{name}: must not be negative")
        if name == "delaySeconds":
            if value > MAX_DELAY_SECONDS:
                raise ProtocolError(f"delaySeconds: at most {MAX_DELAY_SECONDS:g} seconds")
            settings[name] = float(value)
        else:
            if value != int(value):
                raise ProtocolError(f"{name}: must be a whole number of callbacks")
            if value > MAX_FAULT_COUNT:
                raise ProtocolError(f"{name}: at most {MAX_FAULT_COUNT} callbacks")
            settings[name] = int(value)
    return settings


class Faults:
    """How the next callbacks are answered: failNext HTTP 500s, then successFalse {"success": false}s,
    every answer after the given real delay (the one real wait in the harness: a slow registry)."""

    def __init__(self) -> None:
        self._plan = FaultPlan()
        self._lock = threading.Lock()

    def update(self, settings: dict[str, float]) -> FaultPlan:
        """Set the given fields; the others keep their current value."""
        with self._lock:
            if "failNext" in settings:
                self._plan.fail_next = int(settings["failNext"])
            if "successFalse" in settings:
                self._plan.success_false = int(settings["successFalse"])
            if "delaySeconds" in settings:
                self._plan.delay_seconds = float(settings["delaySeconds"])
            return self.snapshot_locked()

    def snapshot(self) -> FaultPlan:
        with self._lock:
            return self.snapshot_locked()

    def snapshot_locked(self) -> FaultPlan:
        return FaultPlan(self._plan.fail_next, self._plan.success_false, self._plan.delay_seconds)

    def take(self) -> tuple[str | None, float]:
        """The fault for the callback arriving now (consuming it) and the delay to answer it with."""
        with self._lock:
            if self._plan.fail_next > 0:
                self._plan.fail_next -= 1
                return "failNext", self._plan.delay_seconds
            if self._plan.success_false > 0:
                self._plan.success_false -= 1
                return "successFalse", self._plan.delay_seconds
            return None, self._plan.delay_seconds


@dataclass
class PlacedOrder:
    seq: int
    placed_at: str
    request: Any
    status: int | None  # the target's HTTP status; None when it did not answer
    body: Any
    error: str | None = None

    def as_json(self) -> dict:
        return {"seq": self.seq, "placedAt": self.placed_at, "request": self.request,
                "status": self.status, "body": self.body, "error": self.error}


@dataclass
class RegistryState:
    callbacks: list[Callback] = field(default_factory=list)
    orders: list[PlacedOrder] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _callback_seq: int = 0  # keeps counting across a cleared inbox

    def record_callback(self, **fields: Any) -> Callback:
        with self._lock:
            self._callback_seq += 1
            callback = Callback(seq=self._callback_seq, **fields)
            self.callbacks.append(callback)
            return callback

    def delay_ended(self, callback: Callback, sender_gone: bool) -> None:
        """A delayed answer's end. If the sender closed the connection before it, it counts the callback as not
        received and sends it again, so the inbox must not show it acknowledged."""
        with self._lock:
            callback.answered = True
            if sender_gone:
                callback.fault = "delaySeconds"

    def inbox(self) -> list[dict]:
        with self._lock:
            return [c.as_json() for c in self.callbacks]

    def clear_inbox(self) -> int:
        with self._lock:
            cleared = len(self.callbacks)
            self.callbacks.clear()
            return cleared

    def record_order(self, **fields: Any) -> PlacedOrder:
        with self._lock:
            order = PlacedOrder(seq=len(self.orders) + 1, **fields)
            self.orders.append(order)
            return order

    def placed_orders(self) -> list[dict]:
        with self._lock:
            return [o.as_json() for o in self.orders]
