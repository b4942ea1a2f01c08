"""The proxy's use cases: a registry places an order or sends a message, downloads a signed document; ePROM
calls back; the outbox delivers and the lifetime ends. Plain Python over three ports (store, ePROM gateway,
registry gateway): Flask-free, so the Hypothesis state machine drives exactly this code."""
from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Protocol

from eprom_protocol import national_id, schemas
from eprom_protocol.enums import (DistributionRule, FormOrderStatus, NotificationChannel, RETURNED_FORM_STATUSES,
                                  SentStatus)
from eprom_protocol.messages import ZERO_UUID, ProtocolError, no_such_form
from eprom_protocol.order_request import OrderBasics
from eprom_protocol.schemas import UUID_RE
from service_kit.clock import Clock

from .config import ProxyConfig, RegistryAccount
from .delivery import DeliveryLanes, RetryPolicy
from .linking import PENDING, TEST_ORDER, Decision, Outcome, check_in_place_of_eprom, decide, sets_back, take_in
from .locks import CallsInFlight, OwnerToken, StripedLocks, side_dir
from .privacy import redact
from .store import MESSAGE_PREFIX, Delivery, DuplicateEpromId, Link, NotLinkable, ProxyStore

log = logging.getLogger(__name__)

FORM_ORDER_PATH = "/api/PromsFormOrder"
MESSAGE_PATH = "/api/MessageToCitizen"
#: What ePROM answers to an order that linked registries get too.
ORDER_REPLY_FIELDS = ("notificationChannel", "loginUrl", "singleUseCode")
#: How long a callback that came before its id was stored waits for it (then its order failed after all).
EARLY_KEEP = timedelta(hours=1)
SWEEP_EVERY = 2.0  # seconds between looks for leases and holds of proxy processes that died
ENDS_REFRESH = 30.0  # seconds between fresh reads of the next lifetime ends (see ProxyService._ends)


def document_not_found(document_id: str) -> str:
    """The one text for a document that is missing, gone or someone else's (no leak either way)."""
    try:
        from eprom_protocol.messages import no_signed_document
    except ImportError:  # pragma: no cover - older protocol package
        return f"No signed document with id '{document_id}'"
    return no_signed_document(document_id)


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

    @property
    def failure_kind(self) -> str:
        """With no HTTP answer: what kind of failure it was (Timeout, ConnectionError, UnsendableRequest...)."""
        return (self.error or "no answer").split(":", 1)[0]


class EpromGateway(Protocol):
    def place_order(self, body: dict[str, Any]) -> Reply: ...


class PreparedCall(Protocol):
    def send(self) -> Reply: ...


class RegistryGateway(Protocol):
    def prepare(self, registry: RegistryAccount, path: str, body: dict[str, Any], delivery_id: str) -> PreparedCall:
        """One callback attempt, made now and sent later: a run's calls are made in a fixed order, so a
        transcript lists a fan-out the same way however the lanes interleave."""

    def cut_calls_short(self) -> None:
        """Calls in flight end now as failed attempts; later ones fail at once (a harness told to stop)."""


class Ids(Protocol):
    def uuid(self) -> str: ...


@dataclass(frozen=True)
class OrderResult:
    status: int
    body: dict[str, Any]
    decision: Decision | None = None
    hold: str | None = None  # release with ProxyService.release() once the answer has been sent


@dataclass(frozen=True)
class _Attempt:
    """Deliveries to one registry order that this process holds the lease of, sent one after the other:
    one claimed from the outbox, or the run a transaction made and leased at once (a linked order's
    replay, a callback's update) so that no claim is needed."""

    account: RegistryAccount
    deliveries: tuple[Delivery, ...]
    prepared: tuple[PreparedCall, ...]  # the gateway's calls, one per delivery
    hold: str | None = None  # a replay's hold: its first attempt ends it in the database (proxy/store.py)


@dataclass
class _Queued:
    """What one transaction queued: deliveries it leased to this process, and how many it left to the pump."""

    leased: list[Delivery] = field(default_factory=list)
    for_pump: int = 0


class ProxyService:
    name = "proxy"

    def __init__(self, config: ProxyConfig, store: ProxyStore, clock: Clock, eprom: EpromGateway,
                 registries: RegistryGateway, ids: Ids, notify: Callable[[], None] = lambda: None,
                 retry: RetryPolicy = RetryPolicy(), *, in_pump: Callable[[], bool] = lambda: False, owner: OwnerToken | None = None,
                 locks: StripedLocks | None = None, lane_width: int | None = None,
                 lease_seconds: float | None = None, generation: int | None = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.eprom = eprom
        self.registries = registries
        self.ids = ids
        self.notify = notify
        self.retry = retry
        self.generation = generation  # this process's start on the database (None: the only one there is)
        self._in_pump = in_pump
        database = Path(store.path)
        self.owner = owner or OwnerToken(side_dir(database, "owners"))
        self._locks = locks or StripedLocks(side_dir(database, "locks"))
        self.calls = CallsInFlight(side_dir(database, "locks") / "calls-to-eprom.lock")
        self.lease_seconds = lease_seconds if lease_seconds is not None else config.lease_seconds
        self._registry_names = [r.name for r in config.registries]
        self.renew_margin = 2 * config.delivery_timeout + 30  # seconds of lease a send must have left
        self._held_runs: dict[str, _Attempt] = {}  # hold -> the leased replay waiting for that answer
        self._held_runs_lock = threading.Lock()
        self._last_sweep = float("-inf")
        self._sweep_lock = threading.Lock()
        self._ends_lock = threading.Lock()
        self._ends_cache: tuple | None = None
        self._ends_read = 0.0
        self.lanes: DeliveryLanes[_Attempt] = DeliveryLanes(
            self._claim, self._attempt, width=lane_width or config.lane_width, wake=notify)
        if moved := self.store.align_lifetimes(config.lifetime, clock.now()):
            log.info("%d stored order(s) now end by the configured lifetime of %g days", moved,
                     config.lifetime / timedelta(days=1))
        self._sweep(force=True)  # leases and holds of a proxy that was killed go back to the queue
        self._park_unconfigured(at_start=True)

    # --- a registry orders ---------------------------------------------------------------
    def place_order(self, registry: RegistryAccount, body: dict[str, Any]) -> OrderResult:
        intake = take_in(body, self.clock.now())
        basics = intake.basics
        patient, about = basics.national_id, basics.about_someone_else  # only orders to and about the same people link
        form_id = body["formId"].lower()
        if registry.allowed_forms is not None and form_id not in registry.allowed_forms:
            raise ProtocolError(no_such_form(body["formId"]))

        # One decision at a time per (patient, form), across threads and worker processes alike.
        with self._locks.hold(patient, form_id):
            decision = TEST_ORDER if body.get("testMode") is True else None
            while decision is None:
                now = self.clock.now()
                candidates = self.store.candidates(patient, form_id, since=now - self.config.lifetime, now=now,
                                                   on_behalf_of=about)
                decision = decide(registry.name, intake.directives, candidates, now, self.config.lifetime)
                if decision.outcome is not Outcome.NEW_ORDER:  # ePROM never sees it: its checks here
                    rule = check_in_place_of_eprom(body, about)
                if decision.outcome is Outcome.NO_ORDER:
                    return OrderResult(200, self._reply(body, ZERO_UUID, {}), decision)
                if decision.outcome is Outcome.LINK:
                    linked = next(c for c in candidates if c.key == decision.link_to)
                    try:
                        return self._link(registry, body, decision, now, shared_reply(linked.order_reply, rule))
                    except NotLinkable:  # ePROM's Error for it came in meanwhile (callbacks take no lock): again
                        log.info("order %s stopped being active while %s was linked to it; deciding again",
                                 decision.link_to[:8], registry.name)
                        decision = None
            forward = {**body, "metadata": intake.forwarded_metadata}
            with self._eprom_call():
                return self._forward_order(registry, body, forward, basics, form_id, decision)

    def _link(self, registry: RegistryAccount, body: dict, decision: Decision, now: datetime,
              order_reply: dict[str, Any]) -> OrderResult:
        registry_order = self.ids.uuid()
        replay = self.store.add_link(  # the order's updates so far: statuses first, then the answer
            registry_order=registry_order, registry=registry.name, order_key=decision.link_to, created_at=now,
            rule=decision.rule, owner=self.owner.id, api_key=registry.api_key, path=FORM_ORDER_PATH,
            lease_until=time.time() + self.lease_seconds)
        if replay:  # leased to this process: sent the moment the registry has its answer (release)
            with self._held_runs_lock:
                self._held_runs[registry_order] = self._run(registry, replay, hold=registry_order)
        log.info("%s linked to order %s (rule %d)", registry.name, decision.link_to[:8], decision.rule)
        return OrderResult(200, self._reply(body, registry_order, order_reply), decision, hold=registry_order)

    def _forward_order(self, registry: RegistryAccount, body: dict, forward: dict, basics: OrderBasics,
                       form_id: str, decision: Decision) -> OrderResult:
        reply = self.eprom.place_order(forward)
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise self._eprom_refusal(reply)
        eprom_id = str(reply.body.get("id", "")).lower()  # a uuid in any case: callbacks are looked up in lower
        order_reply = {k: reply.body.get(k) for k in ORDER_REPLY_FIELDS}
        if eprom_id == ZERO_UUID:
            return OrderResult(200, self._reply(body, ZERO_UUID, order_reply), decision)
        if not UUID_RE.match(eprom_id):
            raise ProtocolError("ePROM answered the order without a usable id", status=502)
        now = self.clock.now()
        order_key, registry_order = self.ids.uuid(), self.ids.uuid()
        try:
            self.store.add_order(key=order_key, eprom_id=eprom_id, national_id=basics.national_id, form_id=form_id,
                                 ordered_at=now, lifetime_ends_at=now + self.config.lifetime, state=PENDING,
                                 order_reply=order_reply, registry_order=registry_order, registry=registry.name,
                                 rule=decision.rule, owner=self.owner.id, on_behalf_of=basics.about_someone_else,
                                 test_mode=decision is TEST_ORDER)
        except DuplicateEpromId:
            raise self._reused_id("order", eprom_id) from None
        if self.store.has_early("order", eprom_id):  # ePROM called back before the order was stored
            with self.store.transaction() as db:  # (a callback from now on finds the order itself)
                for early in self.store.take_early(db, "order", eprom_id):
                    self._record_update(db, self.store.order_by_eprom_id(eprom_id, db),
                                        FormOrderStatus.parse(early["formOrderStatus"]), early, now, _Queued())
        self._forget_ends()
        log.info("%s made new ePROM order %s for %s (rule %d)", registry.name, order_key[:8],
                 national_id.mask(basics.national_id), decision.rule)
        return OrderResult(200, self._reply(body, registry_order, order_reply), decision, hold=registry_order)

    def _eprom_refusal(self, reply: Reply) -> ProtocolError:
        """ePROM's error as the registry may see it: the documented text and status, with any national id
        masked and never ePROX's own key; anything that is not a client error is a 502."""
        if reply.status is None:
            return ProtocolError(f"ePROM did not answer: {reply.failure_kind}", status=502)
        message = reply.body.get("message") if isinstance(reply.body, dict) else None
        if not isinstance(message, str) or not message:
            return ProtocolError(f"ePROM answered HTTP {reply.status} without a message", status=502)
        if refuses_eproxs_key(reply.status, message):
            return self._credentials_refused(reply.status)
        status = reply.status if 400 <= reply.status < 500 or reply.status in (502, 504) else 502
        return ProtocolError(redact(message, secrets=(self.config.eprom_api_key,)), status=status)

    @staticmethod
    def _credentials_refused(status: int) -> ProtocolError:
        """ePROM refused ePROX's own key: the operator's to fix, never the registry's (which gets no detail)."""
        log.error("ePROM refused ePROX's apiKey (HTTP %s): check the proxy's configuration", status)
        return ProtocolError("ePROM refused ePROX's credentials; the ePROX operator has been told", status=502)

    @staticmethod
    def _reused_id(kind: str, eprom_id: str) -> ProtocolError:
        """ePROM answered with the id of an earlier order or message: never the real ePROM, but a simulator
        started afresh on kept state. Nothing is stored; a 502 that says why, never a 500."""
        log.error("ePROM answered a new %s with the id of an earlier one (%s): not stored", kind, eprom_id[:8])
        return ProtocolError(f"ePROM answered the {kind} with the id of an earlier {kind}; the ePROX operator "
                             "has been told", status=502)

    def _eprom_call(self):
        """Marks a call on its way to ePROM, for every process to see, until the id it returns is stored: a
        callback for an id the proxy does not know yet is kept while any such call is in flight, and taken
        in when the id is stored (see accept_callback)."""
        return self.calls.calling()

    @staticmethod
    def _reply(body: dict, order_id: str, order_reply: dict) -> dict:
        channel = order_reply.get("notificationChannel")
        return {**body, "id": order_id, "loginUrl": order_reply.get("loginUrl"),
                "singleUseCode": order_reply.get("singleUseCode"),
                "notificationChannel": NotificationChannel.None_.value if channel is None else channel}

    def release(self, hold: str) -> None:
        """The registry has its answer: callbacks under that id may go now. A linked order's replay, leased
        to this process when it was made, goes straight to its lane, and no write is needed here."""
        with self._held_runs_lock:
            run = self._held_runs.pop(hold, None)
        if run is not None and self.lanes.offer(run.account.name, run):
            return  # its first attempt ends the hold in the database; what came meanwhile waits behind it anyway
        if self.store.release_hold(hold):
            self.notify()  # callbacks that came meanwhile: the pump claims them

    def _run(self, registry: RegistryAccount, deliveries: list[Delivery], hold: str | None = None) -> _Attempt:
        prepared = tuple(self.registries.prepare(registry, d.path, with_key(d.body, registry.api_key), d.id)
                         for d in deliveries)
        return _Attempt(registry, tuple(deliveries), prepared, hold)

    def _send_now(self, queued: _Queued) -> None:
        """After the commit: leased deliveries go to their lanes in the order they were made; the pump
        hears about the rest."""
        for delivery in queued.leased:
            account = self.config.registry_by_name[delivery.registry]
            self.lanes.offer(account.name, self._run(account, [delivery]))
        if queued.for_pump:
            self.notify()

    # --- a registry sends a letter, or downloads a signed document -------------------------
    def send_message(self, registry: RegistryAccount, body: dict[str, Any]) -> OrderResult:
        """Forward a message to a citizen with ePROX's key; the registry gets its own message id, and the
        status ePROM reports later goes to this registry only."""
        if "nationalId" in body:  # checked here too, so no error text from anywhere can echo it
            national_id.require_orderable(body["nationalId"])
        with self._eprom_call():
            reply = self.eprom.send_message(body)
            if reply.status != 200 or not isinstance(reply.body, dict):
                raise self._eprom_refusal(reply)
            eprom_id = str(reply.body.get("messageToCitizenId", "")).lower()
            if eprom_id == ZERO_UUID:
                return OrderResult(200, dict(reply.body))
            if not UUID_RE.match(eprom_id):
                raise ProtocolError("ePROM answered the message without a usable id", status=502)
            key, own_id = self.ids.uuid(), self.ids.uuid()
            try:
                with self.store.transaction() as db:
                    self.store.insert_message(db, key=key, eprom_id=eprom_id, registry=registry.name,
                                              registry_message_id=own_id, created_at=self.clock.now())
                    self.store.add_hold(db, own_id, self.owner.id)
                    for early in self.store.take_early(db, "message", eprom_id):
                        self._record_message(db, self.store.message_by_eprom_id(eprom_id, db),
                                             SentStatus.parse(early["sentStatus"]), early, self.clock.now(),
                                             _Queued())
            except DuplicateEpromId:
                raise self._reused_id("message", eprom_id) from None
        self._forget_ends()
        log.info("%s sent message %s to a citizen", registry.name, key[:8])
        return OrderResult(200, {**reply.body, "messageToCitizenId": own_id}, hold=own_id)

    def fetch_document(self, registry: RegistryAccount, document_id: str):
        """The signed PDF, only for a registry linked to the order whose returned form carried this id;
        for anyone else the same 404 as for a document that does not exist."""
        if (not UUID_RE.match(document_id) or document_id == ZERO_UUID
                or not self.store.registry_may_see_document(registry.name, document_id)):
            raise ProtocolError(document_not_found(document_id), status=404)
        document = self.eprom.fetch_document(document_id.lower())
        if document.status == 200:
            return document
        if document.status == 404:
            raise ProtocolError(document_not_found(document_id), status=404)
        if document.status is not None and refuses_eproxs_key(document.status, document.message):
            raise self._credentials_refused(document.status)
        if document.status is None:
            if document.answered:
                raise ProtocolError(f"ePROM's document is {document.error}", status=502)
            raise ProtocolError(f"ePROM did not answer: {document.error}", status=502)
        raise ProtocolError(f"ePROM could not provide the document (HTTP {document.status})", status=502)

    # --- ePROM calls back ----------------------------------------------------------------
    def _is_eprom(self, body: dict[str, Any]) -> bool:
        key = body.get("apiKey")
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self.config.eprom_api_key.encode())

    def _refusal(self, body: dict[str, Any], schema_of: Callable[[Any], str], id_field: str,
                 status_field: str) -> tuple[int, dict[str, Any]] | None:
        """Why an ePROM callback is refused before anything is stored: not ePROX's key (401), or not a callback
        of its kind (400: the id and the status first, since they choose the schema, then the whole body; a
        malformed callback taken in would be passed on as it is, and ePROM's correct one after it dropped as
        a resend). None when it may be taken in."""
        if not self._is_eprom(body):
            return 401, {"success": False, "message": "apiKey is not ePROX's key at ePROM"}
        problems = (schemas.field_violations(schema_of(None), body, (id_field, status_field))
                    or schemas.violations(schema_of(body[status_field]), body))
        if problems:
            return 400, {"success": False, "message": problems[0]}
        return None

    def accept_callback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Record one ePROM callback and queue it for every linked registry, in one transaction; answer
        success only once that is committed. Idempotent: a resent callback queues nothing."""
        if refused := self._refusal(body, _form_order_schema, "formOrderId", "formOrderStatus"):
            return refused
        status = FormOrderStatus.parse(body["formOrderStatus"])
        eprom_id = body["formOrderId"].lower()  # a uuid in any case, stored in lower
        now = self.clock.now()
        queued = _Queued()
        with self.store.transaction() as db:
            order = self.store.order_by_eprom_id(eprom_id, db)
            if order is None:
                if body.get("isPatientInitiated") is True:
                    # The patient ordered it, no registry did: nobody to route it to (docs/DESIGN.md).
                    log.info("a patient-initiated answer was acknowledged and not kept: no registry ordered it")
                    return 200, {"success": True}
                return self._early(db, "order", eprom_id, status.name, body, now)
            if order.purged or (order.lifetime_ends_at is not None and order.lifetime_ends_at <= now):
                # Past its lifetime the proxy keeps nothing of an order, so it takes in nothing new for it.
                log.info("a callback for order %s after its lifetime ended was dropped", order.key[:8])
                return 200, {"success": True}
            if not self._record_update(db, order, status, body, now, queued):
                return 200, {"success": True}  # resent: already queued once
        self._send_now(queued)  # before ePROM hears success: settle() then waits for these sends
        return 200, {"success": True}

    def _early(self, db, kind: str, eprom_id: str, status: str, body: dict, now: datetime) -> tuple[int, dict]:
        """A callback for an id the proxy has not stored. While some process has a call to ePROM in flight,
        it is probably that call's (ePROM may call back before the caller has stored the id it got): keep
        it for the call to take in. Otherwise the id is unknown."""
        if self.calls.any():
            self.store.add_early(db, kind=kind, eprom_id=eprom_id, status=status, body=body, received_at=now)
            self._forget_ends()
            return 200, {"success": True}
        return 404, {"success": False, "message": f"unknown {'formOrderId' if kind == 'order' else 'messageToCitizenId'}"}

    def _record_update(self, db, order, status: FormOrderStatus, body: dict, now: datetime,
                       queued: _Queued) -> bool:
        final = status in RETURNED_FORM_STATUSES
        signed = body.get("signedFormId") if status is FormOrderStatus.Completed else None
        signed = signed if isinstance(signed, str) and UUID_RE.match(signed) and signed != ZERO_UUID else None
        # An update that would set the order back (a status after the answer, say, from a callback ePROM had to
        # retry) is passed on to no registry: those linked would be set back by it, and one linking later must
        # hear what the others heard. It is recorded without its body (what a replay skips), for resends.
        stale = sets_back(order.state, status)
        if not self.store.insert_update(db, order_key=order.key, status=status.name, final=final,
                                        body=None if stale else body, received_at=now, signed_form_id=signed):
            return False
        if stale:
            log.info("a %s for order %s came after %s: not passed on", status.name, order.key[:8], order.state)
            return True
        self.store.set_state(db, order.key, status.name)
        links = self.store.links(db, order.key)
        busy = self.store.pending_lanes(db, order.key) if links else set()
        for link in links:  # a lane with something pending, or held, waits for the pump
            self._enqueue(db, link, order.key, status.name, body, now, queued,
                          lease=not link.held and link.registry_order not in busy)
        return True

    def accept_message_callback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """ePROM's status of a message to a citizen: queued for the registry that sent it, and no other."""
        if refused := self._refusal(body, lambda status: "message-status-callback", "messageToCitizenId", "sentStatus"):
            return refused
        sent_status = SentStatus.parse(body["sentStatus"])
        eprom_id = body["messageToCitizenId"].lower()
        now = self.clock.now()
        queued = _Queued()
        with self.store.transaction() as db:
            message = self.store.message_by_eprom_id(eprom_id, db)
            if message is None:
                return self._early(db, "message", eprom_id, sent_status.name, body, now)
            if not self._record_message(db, message, sent_status, body, now, queued):
                return 200, {"success": True}
        self._send_now(queued)
        return 200, {"success": True}

    def _record_message(self, db, message, sent_status: SentStatus, body: dict, now: datetime,
                        queued: _Queued) -> bool:
        earlier = self.store.message_statuses(db, message.key)
        if not self.store.insert_message_update(db, message_key=message.key, sent_status=sent_status.name,
                                                received_at=now):
            return False
        if earlier:  # a letter is sent or not, once: a second, different status is recorded and passed on to nobody
            log.info("a %s for message %s came after %s: not passed on", sent_status.name, message.key[:8],
                     earlier[0])
            return True
        account = self.config.registry_by_name.get(message.registry)
        if account is not None:
            order_key = MESSAGE_PREFIX + message.key
            lease = not message.held and not self.store.pending_lanes(db, order_key)
            self._queue(db, queued, lease, registry=account.name,
                        registry_order=message.registry_message_id, order_key=order_key, path=MESSAGE_PATH,
                        status=sent_status.name,
                        body={**body, "apiKey": account.api_key, "messageToCitizenId": message.registry_message_id},
                        due=now, hold=message.registry_message_id if message.held else None)
        return True

    def _enqueue(self, db, link: Link, order_key: str, status: str, eprom_body: dict | None, now: datetime,
                 queued: _Queued, *, lease: bool) -> None:
        account = self.config.registry_by_name.get(link.registry)
        if account is None or eprom_body is None:
            return  # a registry removed from the configuration, or an answer already deleted
        self._queue(db, queued, lease, registry=link.registry,
                    registry_order=link.registry_order, order_key=order_key, path=FORM_ORDER_PATH, status=status,
                    body=for_registry(eprom_body, link.registry_order, account), due=now,
                    hold=link.registry_order if link.held else None)

    def _queue(self, db, queued: _Queued, lease: bool, **delivery) -> None:
        """Add one delivery to the outbox: leased to this process when it may go at once (it is first in
        its lane; a hold leases it too, for the release to send), else left for the pump to claim."""
        if lease:
            delivery.update(lease_owner=self.owner.id, lease_until=time.time() + self.lease_seconds)
        written = self.store.add_delivery(db, **delivery)
        if lease:
            queued.leased.append(written)
        else:
            queued.for_pump += 1

    # --- due work: the outbox and lifetime ends ------------------------------------------
    def next_due(self) -> datetime | None:
        """The earliest due work. Deliveries in flight count as due now for everyone but the pump: so
        advance() and settle() come into run_due() and wait for them, while the pump, which must not wait,
        does not see them and so does not spin."""
        if self.lanes.busy() and not self._in_pump():
            return self.clock.now()
        dues = [*self._ends(), *self._ready_by_registry(time.time()).values()]
        dues = [d for d in dues if d is not None]
        return min(dues) if dues else None

    def _ready_by_registry(self, wall: float) -> dict[str, datetime]:
        """When each registry's next delivery that nobody is sending falls due; registries whose lane is
        full are left out (a full lane wakes the pump once it has room)."""
        found = {}
        pending = self.store.pending_registries()
        if not set(pending) <= set(self.config.registry_by_name):  # (at start, or a replay of such) they can
            self._park_unconfigured()  # never go
        for registry in pending:
            if (registry in self.config.registry_by_name and not self.lanes.saturated(registry)
                    and (due := self.store.next_ready(registry, wall)) is not None):
                found[registry] = due
        return found

    def _park_unconfigured(self, at_start: bool = False) -> None:
        """Park deliveries to registries this process does not know. While running, only the process started
        last on the database does: during a rolling deploy an older process, whose configuration lacks a
        registry just added, must not park that registry's deliveries (the newer one sends them)."""
        if not at_start and self.generation is not None and self.store.latest_generation() != self.generation:
            return
        for delivery_id, registry in self.store.park_unconfigured(self._registry_names, self.clock.now()):
            log.error("delivery %s to %s parked as dead: the registry is no longer configured; once it is, "
                      "replay it with `proxy replay --id %s`", delivery_id, registry, delivery_id)

    def run_due(self, now: datetime) -> None:
        """Purge what has ended, then start every due delivery on its registry's lane. The timeline's pump
        does not wait for the lanes (a slow registry must not stall the pump, and with it everyone else);
        a simulated clock's advance() and settle() do, so due work is done before they return."""
        self._sweep()
        lifetime_end, message_end, early_end = self._ends()
        if self._is_due(early_end, now):
            dropped = self.store.purge_early(now - EARLY_KEEP)
            self._forget_ends()
            if dropped:
                log.warning("%d callback(s) for ids never stored were dropped (their order or letter failed)",
                            dropped)
        if self._is_due(lifetime_end, now) or self._is_due(message_end, now):
            while ended := self.store.purge_ended(now, self.config.lifetime, national_id.mask,
                                                  undelivered=_warn_undelivered):
                log.info("lifetime ended for %d order(s) or message(s): what was stored for them is deleted", ended)
            self._forget_ends()
        due = self._ready_by_registry(time.time())
        self.lanes.dispatch([r for r in self._registry_names if r in due and due[r] <= now])
        if not self._in_pump():
            self.lanes.wait_idle()

    def _ends(self) -> tuple[datetime | None, datetime | None, datetime | None]:
        """(next lifetime end, next letter end, next early callback's end), cached: the pump asks after
        every order. A new order or letter only ever ends later than those stored before it; a purge by
        another worker leaves the cache early, which costs one empty purge; and it is read afresh every
        ENDS_REFRESH seconds anyway."""
        with self._ends_lock:
            if self._ends_cache is None or time.monotonic() - self._ends_read > ENDS_REFRESH:
                self._ends_cache = (self.store.next_lifetime_end(), self.store.next_message_end(self.config.lifetime),
                                    self.store.next_early_end(EARLY_KEEP))
                self._ends_read = time.monotonic()
            return self._ends_cache

    def _forget_ends(self) -> None:
        with self._ends_lock:
            self._ends_cache = None

    @staticmethod
    def _is_due(when: datetime | None, now: datetime) -> bool:
        return when is not None and when <= now

    def _claim(self, registry: str) -> _Attempt | None:
        while True:
            delivery = self.store.claim(registry, self.clock.now(), self.owner.id, time.time(), self.lease_seconds)
            if delivery is None:
                return None
            account = self.config.registry_by_name.get(delivery.registry)
            if account is not None and delivery.body is not None:
                return self._run(account, [delivery])
            self.store.mark_failed(delivery.id, self.clock.now(), "nothing left to send", retry_at=None)

    def _attempt(self, attempt: _Attempt) -> None:
        """Send a run in order; the first failure schedules its retry and gives the rest back to the queue
        (behind it), so a registry order's updates never overtake each other. Whatever else stops the run
        (a lease that ran out, an error) gives the unsent rest back too."""
        recorded = 0
        try:
            for delivery, prepared in zip(attempt.deliveries, attempt.prepared):
                if not self._still_mine(delivery):
                    log.warning("delivery %s is no longer this process's to send", delivery.id[:8])
                    break
                reply = self._send(attempt.account, delivery, prepared)
                acknowledged = self._record_outcome(delivery, reply)
                recorded += 1
                if not acknowledged:
                    break
        finally:
            ended = recorded == 0 and attempt.hold is not None and self.store.release_hold(attempt.hold)
            if self.store.give_back(tuple(d.id for d in attempt.deliveries[recorded:]), self.owner.id) or ended:
                self.notify()

    def _send(self, account: RegistryAccount, delivery: Delivery, prepared: PreparedCall) -> Reply:
        """One attempt. Whatever stops it is a failed attempt, retried with backoff: an exception given back to
        the queue at once was claimed again at once, for ever (a registry URL with a bad port did that). The
        exception's text is not logged: it may quote a header, and so a key."""
        try:
            return prepared.send()
        except Exception as err:
            log.error("delivery %s to %s could not be sent (%s); retried as a failed attempt", delivery.id[:8],
                      account.name, type(err).__name__)
            return Reply(None, None, f"{type(err).__name__}: could not be sent")

    def _still_mine(self, delivery: Delivery) -> bool:
        """A lease about to run out (work that waited long in a busy lane) is renewed first; False when it
        did run out and the delivery was claimed anew meanwhile (by anyone, this process's pump included)."""
        wall = time.time()
        if delivery.lease_until is None or delivery.lease_until - wall > self.renew_margin:
            return True
        return self.store.renew_lease(delivery.id, self.owner.id, delivery.lease_until, wall + self.lease_seconds)

    def _record_outcome(self, delivery: Delivery, reply: Reply) -> bool:
        """Store what the registry answered; whether it acknowledged."""
        now = self.clock.now()
        if reply.acknowledged:
            if self.store.mark_delivered(delivery.id, now):
                self.notify()  # an update that came meanwhile waited behind this one: the pump sends it now
            return True
        error = describe_failure(reply)
        retry_at = self.retry.next_attempt(delivery.window_start or now, delivery.window_failures + 1, now)
        self.store.mark_failed(delivery.id, now, error, retry_at)
        if retry_at is None:
            log.error("delivery %s to %s parked as dead after %d attempts (%s); later updates of its order "
                      "wait behind it; replay it with `proxy replay --id %s`", delivery.id, delivery.registry,
                      delivery.attempts + 1, error, delivery.id)
        else:
            log.warning("delivery %s to %s failed (%s); retry at %s", delivery.id[:8], delivery.registry, error,
                        f"{retry_at:%Y-%m-%d %H:%M:%S}")
        return False

    def _sweep(self, force: bool = False) -> None:
        """Leases and holds of proxy processes that have died go back to the queue (see proxy/locks.py)."""
        wall = time.monotonic()
        if not force and wall - self._last_sweep < SWEEP_EVERY:
            return
        if not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._last_sweep = wall
            for owner in set(self.store.lease_owners()) - {self.owner.id}:
                if not self.owner.is_alive(owner):
                    count = self.store.drop_leases_of(owner)
                    log.warning("%d delivery(ies) of a stopped proxy process back in the queue", count)
            for owner in set(self.store.hold_owners()) - {self.owner.id}:
                if not self.owner.is_alive(owner):
                    self.store.release_holds_of(owner)
        finally:
            self._sweep_lock.release()

    def close(self, cut_calls: bool = False) -> None:
        """Stop delivering once the deliveries in flight have ended, each within its timeout: a production
        worker lets a slow registry answer. `cut_calls` ends them at once instead, as failed attempts sent
        again at the next start: for a harness that is told to stop."""
        if cut_calls:
            self.lanes.close(wait=False)  # nothing queued starts
            self.registries.cut_calls_short()
        self.lanes.close(wait=True)
        self.owner.close()


def refuses_eproxs_key(status: int, message: str | None) -> bool:
    """Whether an answer of ePROM's refuses ePROX's own key: HTTP 401 or 403, or the "apiKey '...' doesn't
    exists" (a 400) that the integration guide shows for an unknown key."""
    return status in (401, 403) or (isinstance(message, str) and message.startswith("apiKey '"))


def shared_reply(order_reply: dict[str, Any], rule: DistributionRule) -> dict[str, Any]:
    """What of the linked ePROM order's reply a registry linking to it gets: the single-use code (a key to the
    patient's form) only if its own order asked for one (NoDistribution, SPEC §1); the rest as it is."""
    if rule is DistributionRule.NoDistribution:
        return order_reply
    return {**order_reply, "singleUseCode": None}


def _warn_undelivered(order_key: str, count: int) -> None:
    log.warning("order %s reached the end of its lifetime with %d callback(s) to its registries not delivered "
                "(pending or dead): deleted with what was stored for it", order_key[:8], count)


def _form_order_schema(status: Any) -> str:
    """The schema of a PUT to /api/PromsFormOrder with this formOrderStatus (None: either; the id and the
    status are the same in both)."""
    if status is None:
        return "returned-form-callback"
    return schemas.form_order_callback_schema(FormOrderStatus.parse(status))


def describe_failure(reply: Reply) -> str:
    """Why a delivery failed, without the registry's answer body (it may echo what we sent)."""
    if reply.status is None:
        return reply.error or "no answer"
    if 200 <= reply.status < 300:
        return f"HTTP {reply.status} without {{\"success\": true}}"
    return f"HTTP {reply.status}"


def with_key(body: dict[str, Any], api_key: str) -> dict[str, Any]:
    """A stored callback as it goes out now: with the registry's key as configured now (an operator may have
    rotated it since the callback was queued; a retry or replay with the old key would never be accepted)."""
    if body.get("apiKey") == api_key:
        return body
    return {**body, "apiKey": api_key}


def for_registry(eprom_body: dict[str, Any], registry_order: str, account: RegistryAccount) -> dict[str, Any]:
    """ePROM's callback as one registry must see it: its own order id and its own key, nothing else changed.
    (A linked order's replay is made the same way in SQL: proxy/store.py WRITE_VIEWS, json_set;
    tests/unit/test_proxy_store_replay.py holds the two equal, field order included.)"""
    return {**eprom_body, "apiKey": account.api_key, "formOrderId": registry_order}

