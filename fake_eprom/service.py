"""The fake ePROM itself, free of Flask: it takes orders, plays the patients, and calls the ordering
systems back through one scheduler (its DueWork on the shared timeline)."""
from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eprom_protocol import messages
from eprom_protocol.enums import DistributionRule as Rule, FormOrderStatus, NotificationChannel as Channel
from eprom_protocol.messages import ZERO_UUID, ProtocolError
from eprom_protocol.national_id import mask
from eprom_protocol.timefmt import iso
from service_kit.runtime import Runtime

from . import callbacks
from .answers import form_data_for, order_uuid
from .config import EpromConfig, OrderingSystem
from .distribution import choose_channel, decide
from .orders import Callback, Order, validate_order_request
from .patients import Patient, Population, default_patient
from .scheduler import Job, Scheduler, retry_delay

log = logging.getLogger(__name__)

SENDER = "eprom"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud to patients
CODE_LENGTH = 8

# job kinds
REACH, ANSWER, EXPIRE, DELIVER = "reach", "answer", "expire", "deliver"


@dataclass(frozen=True)
class PlacedOrder:
    response: dict  # the 200 body
    order_id: str | None  # None: no order was made (the zero id)


class FakeEprom:
    """Thread-safe: HTTP requests and the timeline's runs call in concurrently. One lock guards the
    state; it is never held during HTTP."""

    def __init__(self, config: EpromConfig, runtime: Runtime):
        self.config = config
        self.runtime = runtime
        self.clock = runtime.clock
        self.scheduler = Scheduler(self._run_job)
        self.population = Population(config.population, runtime.ids("eprom-patients").rng("synthetic-national-ids"))
        self._order_ids = runtime.ids("eprom-orders")
        self._codes = runtime.ids("eprom-single-use-codes").rng("single-use-codes")
        self._transport = runtime.transport(SENDER)
        self._lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._deliveries: list[dict] = []
        self._callback_ids = itertools.count(1)

    # --- the protocol -------------------------------------------------------------------
    def system_for_key(self, api_key: str) -> OrderingSystem:
        system = self.config.system_by_key(api_key)
        if system is None:
            raise ProtocolError(messages.unknown_api_key(api_key))
        return system

    def place_order(self, system: OrderingSystem, body: dict[str, Any]) -> PlacedOrder:
        """Validate and record an order. Its callbacks wait until release(order_id) says the response is out."""
        now = self.clock.now()
        request = validate_order_request(body, self.config.catalog_for(system), now)
        patient = self.population.lookup(request.national_id)
        if patient is None:
            log.info("order of form %s for %s: not in the population, zero id", request.form.id,
                     mask(request.national_id))
            return PlacedOrder({**request.echo, "id": ZERO_UUID, "singleUseCode": None, "loginUrl": None,
                                "notificationChannel": int(Channel.None_)}, None)
        preferred = choose_channel(request.rule, patient.reachable_for(system)) or Channel.None_
        with self._lock:
            order_id = self._order_ids.uuid()
            code = self._new_code() if request.rule is Rule.NoDistribution else None
            order = Order(order_id, system, request, now, preferred, code)
            self._orders[order_id] = order
            self.scheduler.close_gate(order_id)
            self.scheduler.schedule(now + self.config.status_delay, REACH, order_id, gate=order_id)
        log.info("order %s from %s: form %s for %s, %s", order_id, system.name, request.form.id,
                 mask(request.national_id), request.rule.name)
        return PlacedOrder({**request.echo, "id": order_id, "singleUseCode": code, "loginUrl": self.config.login_url,
                            "notificationChannel": int(preferred)}, order_id)

    def release(self, order_id: str) -> None:
        """The order's HTTP response has been sent: its callbacks may go."""
        if self.scheduler.open_gate(order_id):
            self.runtime.timeline.notify()

    def _new_code(self) -> str:
        return "".join(self._codes.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))

    # --- the control API ----------------------------------------------------------------
    def add_patient(self, body: dict[str, Any]) -> Patient:
        patient = self.population.parse(body, self.clock.now().date())
        self.population.put(patient)
        log.info("patient %r described", patient)
        return patient

    def patients(self) -> list[Patient]:
        return self.population.all()

    def orders(self, national_id: str | None = None, form_id: str | None = None) -> list[dict]:
        with self._lock:
            return [o.summary() for o in self._orders.values()
                    if (national_id is None or o.request.national_id == national_id)
                    and (form_id is None or o.request.form.id == form_id.lower())]

    def order(self, order_id: str) -> dict:
        with self._lock:
            return self._get(order_id).summary()

    def answer(self, order_id: str, form_data: dict | None = None) -> dict:
        """The patient answers the order now (409 when it cannot be answered)."""
        now = self.clock.now()
        with self._lock:
            order = self._get(order_id)
            problem = self._not_answerable(order)
            if problem:
                raise ProtocolError(problem, status=409)
            self._complete(order, now, form_data)
            summary = order.summary()
        self.runtime.timeline.notify()
        return summary

    def deliveries(self, order_id: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._deliveries if order_id is None or d["orderId"] == order_id]

    def _get(self, order_id: str) -> Order:
        order = self._orders.get(order_id.lower())
        if order is None:
            raise ProtocolError(f"no order with id '{order_id}'", status=404)
        return order

    def _not_answerable(self, order: Order) -> str | None:
        if order.status is None:
            return (f"order {order.id} has not reached the patient yet (its status is due at "
                    f"{iso(order.ordered_at + self.config.status_delay)}): settle or advance the clock first")
        if order.status is FormOrderStatus.Error:
            return f"order {order.id} is in Error (the patient could not be reached), so it cannot be answered"
        if order.status is FormOrderStatus.Expired:
            return f"order {order.id} expired at {iso(order.finished_at)}, so it can no longer be answered"
        if order.status is FormOrderStatus.Completed:
            return f"order {order.id} was already answered at {iso(order.finished_at)}"
        return None

    # --- due work -----------------------------------------------------------------------
    def _run_job(self, job: Job, now: datetime) -> None:
        if job.kind == DELIVER:
            self._deliver(job.key, now)
            return
        with self._lock:
            order = self._orders[job.key]
            if job.kind == REACH:
                self._reach(order, job.due)
            elif job.kind == ANSWER and order.status is FormOrderStatus.Ordered:
                self._complete(order, job.due, None)
            elif job.kind == EXPIRE and order.status is FormOrderStatus.Ordered:
                self._expire(order, job.due)

    def _patient(self, order: Order) -> Patient:
        nid = order.request.national_id
        return self.population.lookup(nid) or default_patient(nid)

    def _reach(self, order: Order, at: datetime) -> None:
        """The order reaches its patient, or fails to: decide the status and plan what follows."""
        if order.status is not None:
            return
        patient = self._patient(order)
        decision = decide(order.request.rule, patient.reachable_for(order.system))
        order.status, order.channel, order.reached_at = decision.status, decision.channel, at
        log.info("order %s: %s on %s", order.id, decision.status.name, decision.channel.wire_name)
        self._enqueue(order, callbacks.STATUS, callbacks.order_status_body(
            system=order.system, order_id=order.id, channel=decision.channel, status=decision.status,
            error_code=decision.error_code, timestamp=order.ordered_at), at)
        if not decision.ordered:
            return  # an order in Error never expires and is never answered
        expiry = max(order.request.expiry, at)
        order.planned.append(self.scheduler.schedule(expiry, EXPIRE, order.id))
        if patient.answer_after is not None and at + patient.answer_after < expiry:
            order.planned.append(self.scheduler.schedule(at + patient.answer_after, ANSWER, order.id))

    def _complete(self, order: Order, at: datetime, form_data: dict | None) -> None:
        patient = self._patient(order)
        if form_data is None and patient.form_data is not None:
            form_data = patient.form_data
        if form_data is None:
            form_data = form_data_for(self.runtime.seed, order.id, order.request.form)
        order.status, order.finished_at = FormOrderStatus.Completed, at
        self._cancel_planned(order)
        log.info("order %s: answered", order.id)
        seed = self.runtime.seed
        self._enqueue(order, callbacks.RETURNED_FORM, callbacks.completed_body(
            system=order.system, order_id=order.id, channel=order.channel,
            form_data=json.dumps(copy.deepcopy(form_data), ensure_ascii=False), answered_at=at,
            reached_at=order.reached_at,
            signed_form_id=order_uuid(seed, order.id, "signed-form") if order.request.must_be_signed else None,
            scanned_paper_id=(order_uuid(seed, order.id, "scanned-paper")
                              if order.channel is Channel.PhysicalMailbox else None),
            on_behalf_of=order.request.on_behalf_of is not None,
            recipient_national_id=order.request.national_id), at)

    def _expire(self, order: Order, at: datetime) -> None:
        order.status, order.finished_at = FormOrderStatus.Expired, at
        self._cancel_planned(order)
        log.info("order %s: expired", order.id)
        self._enqueue(order, callbacks.RETURNED_FORM, callbacks.expired_body(
            system=order.system, order_id=order.id, channel=order.channel, expired_at=at), at)

    def _cancel_planned(self, order: Order) -> None:
        for job in order.planned:
            self.scheduler.cancel(job)
        order.planned.clear()

    # --- callbacks ----------------------------------------------------------------------
    def _enqueue(self, order: Order, kind: str, body: dict, at: datetime) -> None:
        """Queue a callback behind the order's earlier ones (testMode orders get none)."""
        if order.request.test_mode:
            return
        order.outbox.append(Callback(next(self._callback_ids), kind, body, at))
        if len(order.outbox) == 1:
            self.scheduler.schedule(at, DELIVER, order.id)

    def _deliver(self, order_id: str, now: datetime) -> None:
        with self._lock:
            order = self._orders[order_id]
            if not order.outbox:
                return
            callback = order.outbox[0]
            callback.attempts += 1
            attempt, url = callback.attempts, order.system.callback_url
        exchange = self._transport.send("PUT", url, callback.body)  # no lock held: the receiver may call us
        with self._lock:
            record = {
                "id": callback.id,
                "orderId": order.id,
                "orderingSystem": order.system.name,
                "kind": callback.kind,
                "formOrderStatus": callback.body["formOrderStatus"],
                "attempt": attempt,
                "at": iso(exchange.at),
                "url": url,
                "status": exchange.status,
                "acknowledged": exchange.acknowledged,
                "error": _delivery_error(exchange),
                "nextAttemptAt": None,
            }
            self._deliveries.append(record)
            if not exchange.acknowledged:
                delay = retry_delay(attempt)
                if delay is not None:
                    record["nextAttemptAt"] = iso(now + delay)
                    self.scheduler.schedule(now + delay, DELIVER, order.id)
                    return
                log.warning("order %s: gave up the %s callback after %d attempts", order.id, callback.kind, attempt)
            order.outbox.popleft()
            if order.outbox:
                self.scheduler.schedule(max(now, order.outbox[0].created_at), DELIVER, order.id)


def _delivery_error(exchange) -> str | None:
    if exchange.acknowledged:
        return None
    if exchange.error is not None:
        return exchange.error
    if not exchange.ok:
        return f"HTTP {exchange.status}"
    return 'answered without {"success": true}'
