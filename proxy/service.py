"""The proxy's use cases: a registry places an order, ePROM calls back, the outbox delivers and the
lifetime ends. Plain Python over three ports (store, ePROM gateway, registry gateway): Flask-free, so
the Hypothesis state machine drives exactly this code."""
from __future__ import annotations

import hmac
import logging
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator, Protocol

from eprom_protocol import national_id, schemas
from eprom_protocol.enums import FormOrderStatus, NotificationChannel, RETURNED_FORM_STATUSES
from eprom_protocol.messages import ZERO_UUID, ProtocolError, no_such_form
from eprom_protocol.timefmt import parse_instant
from service_kit.clock import Clock

from .config import ProxyConfig, RegistryAccount
from .delivery import KeyedLocks, RetryPolicy
from .linking import PENDING, Decision, Outcome, decide, split_metadata
from .store import Delivery, Link, ProxyStore

log = logging.getLogger(__name__)

FORM_ORDER_PATH = "/api/PromsFormOrder"
#: What ePROM answers to an order that linked registries get too.
ORDER_REPLY_FIELDS = ("notificationChannel", "loginUrl", "singleUseCode")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer from ePROM or a registry (status None: no HTTP answer at all)."""

    status: int | None
    body: Any
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return (self.status is not None and 200 <= self.status < 300 and isinstance(self.body, dict)
                and self.body.get("success") is True)


class EpromGateway(Protocol):
    def place_order(self, body: dict[str, Any]) -> Reply: ...


class RegistryGateway(Protocol):
    def deliver(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> Reply: ...


class Ids(Protocol):
    def uuid(self) -> str: ...


@dataclass(frozen=True)
class OrderResult:
    status: int
    body: dict[str, Any]
    decision: Decision | None = None
    hold: str | None = None  # release with ProxyService.release() once the answer has been sent


class ProxyService:
    name = "proxy"

    def __init__(self, config: ProxyConfig, store: ProxyStore, clock: Clock, eprom: EpromGateway,
                 registries: RegistryGateway, ids: Ids, notify: Callable[[], None] = lambda: None,
                 retry: RetryPolicy = RetryPolicy()):
        self.config = config
        self.store = store
        self.clock = clock
        self.eprom = eprom
        self.registries = registries
        self.ids = ids
        self.notify = notify
        self.retry = retry
        self._locks = KeyedLocks()
        self._calls_in_flight: set[int] = set()
        self._calls_done = threading.Condition()
        self._call_counter = 0
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(config.registries))),
                                        thread_name_prefix="proxy-delivery")

    # --- a registry orders ---------------------------------------------------------------
    def place_order(self, registry: RegistryAccount, body: dict[str, Any]) -> OrderResult:
        schemas.validate("formorder-request", body)
        patient = national_id.require_orderable(body["nationalId"]).value
        if body.get("onBehalfOfNationalId"):
            national_id.require_orderable(body["onBehalfOfNationalId"], "onBehalfOfNationalId")
        parse_instant(body["expiryDate"], "expiryDate")
        directives, forwarded_metadata = split_metadata(body.get("metadata"))
        form_id = body["formId"].lower()
        if registry.allowed_forms is not None and form_id not in registry.allowed_forms:
            raise ProtocolError(no_such_form(body["formId"]))

        with self._locks.hold((patient, form_id)):
            now = self.clock.now()
            candidates = self.store.candidates(patient, form_id, since=now - self.config.lifetime)
            decision = decide(registry.name, directives, candidates, now, self.config.lifetime)
            if decision.outcome is Outcome.NO_ORDER:
                return OrderResult(200, self._reply(body, ZERO_UUID, {}), decision)
            if decision.outcome is Outcome.LINK:
                return self._link(registry, body, decision, now)
            forward = {**body, "metadata": forwarded_metadata}
            return self._new_order(registry, body, forward, patient, form_id, decision)

    def _link(self, registry: RegistryAccount, body: dict, decision: Decision, now: datetime) -> OrderResult:
        registry_order = self.ids.uuid()
        with self.store.transaction() as db:
            self.store.insert_link(db, registry_order=registry_order, registry=registry.name,
                                   order_key=decision.link_to, created_at=now, rule=decision.rule)
            link = Link(registry_order, registry.name)
            for update in replay_order(self.store.updates(db, decision.link_to)):
                self._enqueue(db, link, decision.link_to, update.status, update.body, now, hold=registry_order)
        order = self.store.order(decision.link_to)
        log.info("%s linked to order %s (rule %d)", registry.name, decision.link_to[:8], decision.rule)
        return OrderResult(200, self._reply(body, registry_order, order.order_reply), decision, hold=registry_order)

    def _new_order(self, registry: RegistryAccount, body: dict, forward: dict, patient: str, form_id: str,
                   decision: Decision) -> OrderResult:
        with self._eprom_call():
            return self._forward_order(registry, body, forward, patient, form_id, decision)

    def _forward_order(self, registry: RegistryAccount, body: dict, forward: dict, patient: str, form_id: str,
                       decision: Decision) -> OrderResult:
        reply = self.eprom.place_order(forward)
        if reply.status is None:
            raise ProtocolError(f"ePROM did not answer: {reply.error}", status=502)
        if reply.status != 200 or not isinstance(reply.body, dict):
            message = reply.body.get("message") if isinstance(reply.body, dict) else None
            if message is None:
                raise ProtocolError(f"ePROM answered HTTP {reply.status} without a message", status=502)
            raise ProtocolError(message, status=reply.status if 400 <= reply.status < 500 else 502)
        eprom_id = str(reply.body.get("id", ""))
        order_reply = {k: reply.body.get(k) for k in ORDER_REPLY_FIELDS}
        if eprom_id == ZERO_UUID:
            return OrderResult(200, self._reply(body, ZERO_UUID, order_reply), decision)
        now = self.clock.now()
        order_key, registry_order = self.ids.uuid(), self.ids.uuid()
        with self.store.transaction() as db:
            self.store.insert_order(db, key=order_key, eprom_id=eprom_id, national_id=patient, form_id=form_id,
                                    ordered_at=now, lifetime_ends_at=now + self.config.lifetime, state=PENDING,
                                    order_reply=order_reply)
            self.store.insert_link(db, registry_order=registry_order, registry=registry.name,
                                   order_key=order_key, created_at=now, rule=decision.rule)
        self.notify()  # a lifetime end is now scheduled
        log.info("%s made new ePROM order %s for %s (rule %d)", registry.name, order_key[:8],
                 national_id.mask(patient), decision.rule)
        return OrderResult(200, self._reply(body, registry_order, order_reply), decision)

    @contextmanager
    def _eprom_call(self) -> Iterator[None]:
        """Marks an order on its way to ePROM until its id is stored (see _wait_for_orders_in_flight)."""
        with self._calls_done:
            self._call_counter += 1
            token = self._call_counter
            self._calls_in_flight.add(token)
        try:
            yield
        finally:
            with self._calls_done:
                self._calls_in_flight.discard(token)
                self._calls_done.notify_all()

    def _wait_for_orders_in_flight(self, timeout: float = 10.0) -> None:
        """ePROM may call back before we have stored the id it just gave us: let those orders finish."""
        with self._calls_done:
            waiting_for = set(self._calls_in_flight)
            self._calls_done.wait_for(lambda: not (waiting_for & self._calls_in_flight), timeout=timeout)

    @staticmethod
    def _reply(body: dict, order_id: str, order_reply: dict) -> dict:
        channel = order_reply.get("notificationChannel")
        return {**body, "id": order_id, "loginUrl": order_reply.get("loginUrl"),
                "singleUseCode": order_reply.get("singleUseCode"),
                "notificationChannel": NotificationChannel.None_.value if channel is None else channel}

    def release(self, hold: str) -> None:
        """The registry has its answer: its replayed callbacks may go now."""
        self.store.release_hold(hold)
        self.notify()

    # --- ePROM calls back ----------------------------------------------------------------
    def accept_callback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Record one ePROM callback and queue it for every linked registry; idempotent."""
        key = body.get("apiKey")
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.config.eprom_api_key.encode()):
            return 401, {"success": False, "message": "apiKey is not ePROX's key at ePROM"}
        problems = [p for p in schemas.violations("returned-form-callback", body)
                    if p.split(":")[0] in ("formOrderId", "formOrderStatus")]
        if problems:
            return 400, {"success": False, "message": problems[0]}
        status = FormOrderStatus.parse(body["formOrderStatus"])
        order = self.store.order_by_eprom_id(body["formOrderId"])
        if order is None:
            self._wait_for_orders_in_flight()
            order = self.store.order_by_eprom_id(body["formOrderId"])
        if order is None:
            return 404, {"success": False, "message": "unknown formOrderId"}
        final = status in RETURNED_FORM_STATUSES
        now = self.clock.now()
        with self.store.transaction() as db:
            if not self.store.insert_update(db, order_key=order.key, status=status.name, final=final,
                                            body=body, received_at=now):
                return 200, {"success": True}  # resent: already queued once
            if final or order.state not in {s.name for s in RETURNED_FORM_STATUSES}:
                self.store.set_state(db, order.key, status.name)
            for link in self.store.links(db, order.key):
                self._enqueue(db, link, order.key, status.name, body, now, hold=None)
        self.notify()
        return 200, {"success": True}

    def _enqueue(self, db, link: Link, order_key: str, status: str, eprom_body: dict | None, now: datetime,
                 hold: str | None) -> None:
        account = self.config.registry_by_name.get(link.registry)
        if account is None or eprom_body is None:
            return  # a registry removed from the configuration, or an answer already deleted
        self.store.add_delivery(db, id=self.ids.uuid(), registry=link.registry, registry_order=link.registry_order,
                                order_key=order_key, path=FORM_ORDER_PATH, status=status,
                                body=for_registry(eprom_body, link.registry_order, account), due=now, hold=hold)

    # --- due work: the outbox and lifetime ends ------------------------------------------
    def next_due(self) -> datetime | None:
        dues = [d for d in (self.store.next_delivery_due(), self.store.next_lifetime_end()) if d is not None]
        return min(dues) if dues else None

    def run_due(self, now: datetime) -> None:
        lifetime_end = self.store.next_lifetime_end()
        if lifetime_end is not None and lifetime_end <= now:
            purged = self.store.purge_ended(now)
            log.info("lifetime ended for %d order(s): stored answers deleted", purged)
        while batch := self.store.due_deliveries(now):
            by_registry: dict[str, list[Delivery]] = {}
            for delivery in batch:
                by_registry.setdefault(delivery.registry, []).append(delivery)
            # one slow or failing registry never holds up another
            for future in [self._pool.submit(self._deliver_all, group, now) for group in by_registry.values()]:
                future.result()

    def _deliver_all(self, group: list[Delivery], now: datetime) -> None:
        for delivery in group:
            self._deliver(delivery, now)

    def _deliver(self, delivery: Delivery, now: datetime) -> None:
        account = self.config.registry_by_name.get(delivery.registry)
        if account is None or delivery.body is None:
            self.store.mark_failed(delivery.id, now, "registry no longer configured", retry_at=None)
            return
        reply = self.registries.deliver(account, delivery.path, delivery.body, delivery.id)
        if reply.acknowledged:
            self.store.mark_delivered(delivery.id, now)
            return
        error = reply.error or f"HTTP {reply.status}: {str(reply.body)[:200]}"
        retry_at = self.retry.next_attempt(delivery.created_at, delivery.attempts + 1, now)
        self.store.mark_failed(delivery.id, now, error, retry_at)
        log.warning("delivery %s to %s failed (%s); %s", delivery.id[:8], delivery.registry, error[:80],
                    f"retry at {retry_at:%Y-%m-%d %H:%M:%S}" if retry_at else "parked as dead")

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def for_registry(eprom_body: dict[str, Any], registry_order: str, account: RegistryAccount) -> dict[str, Any]:
    """ePROM's callback as one registry must see it: its own order id and its own key, nothing else changed."""
    return {**eprom_body, "apiKey": account.api_key, "formOrderId": registry_order}


def replay_order(updates: list) -> list:
    """What a late linker is told at once: the status updates first, then the answer or expiry."""
    return [u for u in updates if not u.final] + [u for u in updates if u.final]
