"""The fake ePROM itself, free of Flask: it takes orders and letters, plays the patients, keeps signed
documents, and calls the ordering systems back through one scheduler (its DueWork on the shared timeline)."""
from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eprom_protocol import messages
from eprom_protocol.enums import (
    DistributionRule as Rule,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel as Channel,
    SentStatus,
)
from eprom_protocol.messages import ZERO_UUID, ProtocolError
from eprom_protocol.national_id import mask
from eprom_protocol.timefmt import iso, later, norwegian_date
from service_kit.runtime import Runtime

from . import callbacks
from .answers import filled_form, order_uuid
from .config import EpromConfig, OrderingSystem
from .distribution import choose_channel, decide
from .documents import DocumentStore, SignedDocument
from .letters import Message, choose_letter_channel, validate_message_request
from .orders import Callback, Order, OrderRequest, validate_order_request
from .patients import (
    ANSWERS_AFTER_EXPIRY,
    CANCELS_SIGNING_THEN_SIGNS,
    NEEDS_ANSWER,
    OPENS_NEVER_DELIVERS,
    PAPER_MAIL_RETURNED,
    Initiation,
    Patient,
    Population,
)
from .reachability import HELSENORGE_AGE
from .scheduler import Job, Scheduler, retry_delay
from .synthetic import PersonFactory

log = logging.getLogger(__name__)

SENDER = "eprom"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud to patients
CODE_LENGTH = 8

DEFAULT_OPEN_AFTER = timedelta(days=1)  # opensNeverDelivers without an answer.after
LATE_ANSWER_AFTER_EXPIRY = timedelta(hours=1)  # answersAfterExpiry whose answer.after is not after the expiry
MAIL_RETURN_TIME = timedelta(days=7)  # a letter to a wrong address comes back after a week
ANSWERABLE = frozenset({FormOrderStatus.Ordered, FormOrderStatus.PhysicalMailReturned})

# message faults the control API scripts: the field, the HTTP status and the guide's text, in the order used
MESSAGE_FAULTS = (("badGateway", 502, messages.DELIVERY_PARTNER_UNREACHABLE),
                  ("gatewayTimeout", 504, messages.DELIVERY_PARTNER_TIMEOUT))
MAX_SCRIPTED_FAULTS = 10_000

# job kinds
REACH, ANSWER, EXPIRE, DELIVER = "reach", "answer", "expire", "deliver"
OPEN, LATE_ANSWER, MAIL_RETURNED, INITIATE, SEND = "open", "late-answer", "mail-returned", "initiate", "send"


@dataclass(frozen=True)
class Placed:
    response: dict  # the 200 body
    subject_id: str | None  # the order or message whose callbacks wait for the response; None: none made


class FakeEprom:
    """Thread-safe: HTTP requests and the timeline's runs call in concurrently. One lock guards the
    state; it is never held during HTTP."""

    def __init__(self, config: EpromConfig, runtime: Runtime):
        self.config = config
        self.runtime = runtime
        self.clock = runtime.clock
        self.started = runtime.clock.now()
        self.scheduler = Scheduler(self._run_job)
        self.population = Population(config.population, runtime.ids("eprom-patients").rng("synthetic-national-ids"),
                                     PersonFactory(runtime.seed), self.started)
        self.documents = DocumentStore(config.signed_document_days)
        self._order_ids = runtime.ids("eprom-orders")
        self._message_ids = runtime.ids("eprom-messages")
        self._codes = runtime.ids("eprom-single-use-codes").rng("single-use-codes")
        self._transport = runtime.transport(SENDER)
        self._lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._messages: dict[str, Message] = {}
        self._outboxes: dict[str, deque[Callback]] = {}
        self._deliveries: list[dict] = []
        self._callback_ids = itertools.count(1)
        self._initiations: dict[str, tuple[Patient, Initiation]] = {}
        self._initiation_jobs: dict[str, list[Job]] = {}
        self._initiation_generation = itertools.count(1)
        self._faults = {name: 0 for name, _, _ in MESSAGE_FAULTS}

    # --- the protocol: orders -------------------------------------------------------------
    def system_for_key(self, api_key: str) -> OrderingSystem:
        system = self.config.system_by_key(api_key)
        if system is None:
            raise ProtocolError(messages.unknown_api_key(api_key))
        return system

    def place_order(self, system: OrderingSystem, body: dict[str, Any]) -> Placed:
        """Validate and record an order. Its callbacks wait until release(order_id) says the response is out."""
        now = self.clock.now()
        request = validate_order_request(body, self.config.catalog_for(system), now)
        today = norwegian_date(now)
        patient = self.population.lookup(request.national_id, today)
        if patient is None:
            log.info("order of form %s for %s: not in the population (or not born yet), zero id", request.form.id,
                     mask(request.national_id))
            return Placed({**request.echo, "id": ZERO_UUID, "singleUseCode": None, "loginUrl": None,
                           "notificationChannel": int(Channel.None_)}, None)
        reachable = patient.channels(today, research=system.research, order_has_address=request.has_address)
        preferred = choose_channel(request.rule, reachable) or Channel.None_
        with self._lock:
            order_id = self._order_ids.uuid()
            code = self._new_code() if request.rule is Rule.NoDistribution else None
            order = Order(order_id, system, request, now, preferred, code)
            self._orders[order_id] = order
            self.scheduler.close_gate(order_id)
            self.scheduler.schedule(later(now, self.config.status_delay), REACH, order_id, gate=order_id)
        log.info("order %s from %s: form %s for %s, %s", order_id, system.name, request.form.id,
                 mask(request.national_id), request.rule.name)
        return Placed({**request.echo, "id": order_id, "singleUseCode": code, "loginUrl": self.config.login_url,
                       "notificationChannel": int(preferred)}, order_id)

    def release(self, subject_id: str) -> None:
        """The order's (or message's) HTTP response has been sent: its callbacks may go."""
        if self.scheduler.open_gate(subject_id):
            self.runtime.timeline.notify()

    def _new_code(self) -> str:
        return "".join(self._codes.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))

    # --- the protocol: letters and signed documents ---------------------------------------
    def send_message(self, system: OrderingSystem, body: dict[str, Any]) -> Placed:
        """Validate and record a letter; a scripted delivery-partner fault answers 502/504 and records nothing."""
        now = self.clock.now()
        request = validate_message_request(body)
        with self._lock:
            for name, status, text in MESSAGE_FAULTS:
                if self._faults[name] > 0:
                    self._faults[name] -= 1
                    log.info("message from %s: scripted %s (%d)", system.name, name, status)
                    raise ProtocolError(text, status=status)
        today = norwegian_date(now)
        patient = self.population.lookup(request.national_id, today)
        reachable = frozenset() if patient is None else patient.channels(today, research=system.research)
        preferred = choose_letter_channel(request.priority, reachable) or Channel.None_
        with self._lock:
            message_id = self._message_ids.uuid()
            self._messages[message_id] = Message(message_id, system, request, now, preferred)
            self.scheduler.close_gate(message_id)
            self.scheduler.schedule(later(now, self.config.status_delay), SEND, message_id, gate=message_id)
        log.info("message %s from %s to %s: preferred %s", message_id, system.name, mask(request.national_id),
                 preferred.wire_name)
        return Placed({"messageToCitizenId": message_id, "notificationChannel": int(preferred)}, message_id)

    def signed_document(self, system: OrderingSystem, document_id: str) -> SignedDocument:
        document = self.documents.get_for(document_id, system.name, self.clock.now())
        if document is None:
            raise ProtocolError(messages.no_signed_document(document_id), status=404)
        return document

    # --- the control API ----------------------------------------------------------------
    def add_patient(self, body: dict[str, Any]) -> Patient:
        """Parse the whole body first: a refused patient changes nothing."""
        now = self.clock.now()
        patient = self.population.parse(body, now, self.config.form)
        dues = [later(now, initiation.after) for initiation in patient.initiates]
        self.population.put(patient)
        with self._lock:
            for job in self._initiation_jobs.pop(patient.national_id, []):
                self.scheduler.cancel(job)
                self._initiations.pop(job.key, None)
            generation = next(self._initiation_generation)
            for i, (initiation, due) in enumerate(zip(patient.initiates, dues)):
                key = f"{patient.national_id}#{generation}#{i}"
                self._initiations[key] = (patient, initiation)
                self._initiation_jobs.setdefault(patient.national_id, []).append(
                    self.scheduler.schedule(due, INITIATE, key))
        if patient.initiates:
            self.runtime.timeline.notify()
        log.info("patient %r described", patient)
        return patient

    def patients(self) -> list[Patient]:
        return self.population.all()

    def patient_json(self, patient: Patient) -> dict:
        return patient.to_json(norwegian_date(self.clock.now()))

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

    def messages(self, national_id: str | None = None) -> list[dict]:
        with self._lock:
            return [m.summary() for m in self._messages.values()
                    if national_id is None or m.request.national_id == national_id]

    def message(self, message_id: str) -> dict:
        with self._lock:
            found = self._messages.get(message_id.strip().lower())
            if found is None:
                raise ProtocolError(f"no message with id '{message_id}'", status=404)
            return found.summary()

    def message_faults(self, changes: dict[str, Any] | None = None) -> dict:
        """The scripted delivery-partner faults still to come; `changes` sets the fields it names."""
        changes = changes or {}
        names = [name for name, _, _ in MESSAGE_FAULTS]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ProtocolError(f"unknown field(s) {', '.join(map(str, unknown))}; use any of: {', '.join(names)}")
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCRIPTED_FAULTS:
                raise ProtocolError(f"{name}: must be a whole number from 0 to {MAX_SCRIPTED_FAULTS}")
        with self._lock:
            self._faults.update(changes)
            return dict(self._faults)

    def document_summaries(self) -> list[dict]:
        return [d.summary(self.documents.days) for d in self.documents.all()]

    def deliveries(self, order_id: str | None = None, message_id: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._deliveries
                    if (order_id is None or d["orderId"] == order_id.lower())
                    and (message_id is None or d["messageToCitizenId"] == message_id.lower())]

    def _get(self, order_id: str) -> Order:
        order = self._orders.get(order_id.strip().lower())
        if order is None:
            raise ProtocolError(f"no order with id '{order_id}'", status=404)
        return order

    def _not_answerable(self, order: Order) -> str | None:
        if order.status is None:
            return (f"order {order.id} has not reached the patient yet (its status is due at "
                    f"{iso(later(order.ordered_at, self.config.status_delay))}): settle or advance the clock first")
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
            if job.kind == INITIATE:
                self._initiate(job.key, job.due)
                return
            if job.kind == SEND:
                self._send(self._messages[job.key], job.due)
                return
            order = self._orders[job.key]
            if job.kind == REACH:
                self._reach(order, job.due)
            elif job.kind == ANSWER and order.status in ANSWERABLE:
                self._complete(order, job.due, None)
            elif job.kind == EXPIRE and order.status in ANSWERABLE:
                self._expire(order, job.due)
            elif job.kind == OPEN and order.status in ANSWERABLE:
                order.events = callbacks.opening_events([q.id for q in order.request.form.questions], job.due)
                log.info("order %s: the patient opened it", order.id)
            elif job.kind == MAIL_RETURNED and order.status is FormOrderStatus.Ordered:
                self._mail_returned(order, job.due)
            elif job.kind == LATE_ANSWER and order.status is FormOrderStatus.Expired:
                order.refused.append({"at": iso(job.due), "reason": f"the order expired at {iso(order.finished_at)}; "
                                                                    "ePROM refused the answer"})
                log.info("order %s: an answer after the expiry was refused", order.id)

    def _patient(self, national_id: str) -> Patient:
        return self.population.described(national_id) or self.population.default_patient(national_id)

    def _reach(self, order: Order, at: datetime) -> None:
        """The order reaches its patient, or fails to: decide the status and plan what follows."""
        if order.status is not None:
            return
        patient = self._patient(order.request.national_id)
        reachable = patient.channels(norwegian_date(at), research=order.system.research,
                                     order_has_address=order.request.has_address)
        decision = decide(order.request.rule, reachable)
        order.status, order.channel, order.reached_at = decision.status, decision.channel, at
        log.info("order %s: %s on %s", order.id, decision.status.name, decision.channel.wire_name)
        self._enqueue(order.id, order.system, callbacks.STATUS, callbacks.order_status_body(
            system=order.system, order_id=order.id, channel=decision.channel, status=decision.status,
            error_code=decision.error_code, timestamp=order.ordered_at), at, test_mode=order.request.test_mode)
        if not decision.ordered:
            return  # an order in Error never expires and is never answered
        assert order.request.expiry is not None
        expiry = max(order.request.expiry, at)
        order.planned.append(self.scheduler.schedule(expiry, EXPIRE, order.id))
        self._plan_behaviour(order, patient, at, expiry)

    def _plan_behaviour(self, order: Order, patient: Patient, at: datetime, expiry: datetime) -> None:
        """What the patient will do with the order that has just reached them (DESIGN.md, "Behaviours")."""
        behaviour, plan = patient.behaviour, patient.answer
        if behaviour in NEEDS_ANSWER:
            assert plan is not None
            answered = later(at, plan.after)
            if answered < expiry:  # else the expiry wins
                order.planned.append(self.scheduler.schedule(answered, ANSWER, order.id))
        elif behaviour == OPENS_NEVER_DELIVERS:
            opened = later(at, plan.after if plan is not None else DEFAULT_OPEN_AFTER)
            if opened >= expiry:
                opened = at + (expiry - at) / 2
            order.planned.append(self.scheduler.schedule(opened, OPEN, order.id))
        elif behaviour == ANSWERS_AFTER_EXPIRY:
            attempt = later(at, plan.after) if plan is not None else expiry
            if attempt <= expiry:
                attempt = later(expiry, LATE_ANSWER_AFTER_EXPIRY)
            self.scheduler.schedule(attempt, LATE_ANSWER, order.id)  # not planned: the expiry must not cancel it
        elif behaviour == PAPER_MAIL_RETURNED and order.channel is Channel.PhysicalMailbox:
            returned = later(at, MAIL_RETURN_TIME)
            if returned < expiry:
                order.planned.append(self.scheduler.schedule(returned, MAIL_RETURNED, order.id))

    def _mail_returned(self, order: Order, at: datetime) -> None:
        order.status, order.mail_returned_at = FormOrderStatus.PhysicalMailReturned, at
        log.info("order %s: the letter came back (PhysicalMailReturned)", order.id)
        self._enqueue(order.id, order.system, callbacks.STATUS, callbacks.order_status_body(
            system=order.system, order_id=order.id, channel=Channel.PhysicalMailbox,
            status=FormOrderStatus.PhysicalMailReturned, error_code=FormOrderStatusErrorCode.None_,
            timestamp=order.ordered_at), at, test_mode=order.request.test_mode)

    def _initiate(self, key: str, at: datetime) -> None:
        """A patient orders a form by themself: the form's owner gets the answer, patient-initiated."""
        found = self._initiations.pop(key, None)
        if found is None:
            return
        patient, initiation = found
        form = self.config.form(initiation.form_id)
        assert form is not None and form.owner is not None  # checked when the patient was described
        system = self.config.system_by_name(form.owner)
        assert system is not None  # checked by EpromConfig
        order_id = self._order_ids.uuid()
        order = Order(order_id, system, OrderRequest.patient_initiated(form, patient.national_id), at,
                      Channel.None_, None, status=FormOrderStatus.Ordered, channel=Channel.None_, reached_at=at,
                      plan=initiation.answer)
        self._orders[order_id] = order
        order.planned.append(self.scheduler.schedule(later(at, initiation.answer.after), ANSWER, order_id))
        log.info("order %s: %s ordered form %s themself (owner %s)", order_id, mask(patient.national_id), form.id,
                 system.name)

    def _complete(self, order: Order, at: datetime, given_form_data: dict | None) -> None:
        request, form = order.request, order.request.form
        patient = self._patient(request.national_id)
        plan = order.plan if order.patient_initiated else patient.answer
        scripted = given_form_data is None and plan is not None
        fixed = given_form_data
        if fixed is None:
            fixed = (plan.form_data if plan is not None and plan.form_data is not None else patient.form_data)
        answers, warnings = filled_form(self.runtime.seed, order.id, form, fixed,
                                        partial=scripted and plan.partial,
                                        extra_warnings=plan.warnings if scripted else ())
        signed = request.must_be_signed
        wants_paper = plan.on_paper if scripted and plan.on_paper is not None else True
        # signing needs a BankID login, so a form that must be signed is answered digitally
        on_paper = order.channel is Channel.PhysicalMailbox and wants_paper and not signed
        events = callbacks.filling_events(
            [q.id for q in form.questions], order.reached_at or at, at, signed=signed,
            cancel_signing_first=patient.behaviour == CANCELS_SIGNING_THEN_SIGNS, on_paper=on_paper)
        child = patient.age(norwegian_date(at)) < HELSENORGE_AGE
        filled_out_by = callbacks.filled_out_by(
            given=(plan.filled_out_by.national_id, plan.filled_out_by.act_type)
            if scripted and plan.filled_out_by is not None else None,
            on_behalf_of=request.about_someone_else is not None, recipient_national_id=request.national_id,
            representative=patient.profile.represented_by if child else None, on_paper=on_paper)
        seed = self.runtime.seed
        order.signed_form_id = order_uuid(seed, order.id, "signed-form") if signed else None
        order.scanned_paper_id = order_uuid(seed, order.id, "scanned-paper") if on_paper else None
        order.status, order.finished_at = FormOrderStatus.Completed, at
        order.events, order.warnings, order.filled_out_by = events, warnings, filled_out_by
        self._cancel_planned(order)
        if order.signed_form_id is not None:
            self.documents.add(SignedDocument(
                order.signed_form_id, order.id, order.system.name, form, request.national_id, patient.name,
                copy.deepcopy(answers), at, request.signing_text, filled_out_by["filledOutByActNationalId"]))
        log.info("order %s: answered%s", order.id, " (patient-initiated)" if order.patient_initiated else "")
        initiated = callbacks.patient_initiated_values(form_id=form.id, national_id=request.national_id,
                                                       ordered_at=order.ordered_at) if order.patient_initiated else None
        self._enqueue(order.id, order.system, callbacks.RETURNED_FORM, callbacks.completed_body(
            system=order.system, order_id=order.id, channel=order.channel or Channel.None_,
            form_data=json.dumps(answers, ensure_ascii=False), answered_at=at,
            signed_form_id=order.signed_form_id, scanned_paper_id=order.scanned_paper_id, warnings=warnings,
            events=events, filled_out_by=filled_out_by, patient_initiated=initiated), at,
            test_mode=request.test_mode)

    def _expire(self, order: Order, at: datetime) -> None:
        order.status, order.finished_at = FormOrderStatus.Expired, at
        self._cancel_planned(order)
        log.info("order %s: expired", order.id)
        opened = [e for e in order.events if e[2] <= at]
        self._enqueue(order.id, order.system, callbacks.RETURNED_FORM, callbacks.expired_body(
            system=order.system, order_id=order.id, channel=order.channel, expired_at=at, events=opened), at,
            test_mode=order.request.test_mode)

    def _send(self, message: Message, at: datetime) -> None:
        """A letter goes out on the first channel of its list that reaches the citizen, or fails (Error)."""
        if message.status is not None:
            return
        today = norwegian_date(at)
        patient = self.population.lookup(message.request.national_id, today)
        reachable = frozenset() if patient is None else patient.channels(today, research=message.system.research)
        channel = choose_letter_channel(message.request.priority, reachable)
        status = SentStatus.Error if channel is None else SentStatus.Sent
        message.status, message.channel, message.sent_at = status, channel or Channel.None_, at
        log.info("message %s: %s on %s", message.id, status.name, message.channel.wire_name)
        self._enqueue(message.id, message.system, callbacks.MESSAGE_STATUS, callbacks.message_status_body(
            system=message.system, message_id=message.id, channel=message.channel, status=status), at,
            test_mode=message.request.test_mode, url=message.system.message_callback_url)

    def _cancel_planned(self, order: Order) -> None:
        for job in order.planned:
            self.scheduler.cancel(job)
        order.planned.clear()

    # --- callbacks ----------------------------------------------------------------------
    def _enqueue(self, subject_id: str, system: OrderingSystem, kind: str, body: dict, at: datetime, *,
                 test_mode: bool, url: str | None = None) -> None:
        """Queue a callback behind the subject's earlier ones (testMode orders and messages get none)."""
        if test_mode:
            return
        outbox = self._outboxes.setdefault(subject_id, deque())
        outbox.append(Callback(next(self._callback_ids), kind, body, at, url or system.callback_url, system.name))
        if len(outbox) == 1:
            self.scheduler.schedule(at, DELIVER, subject_id)

    def _deliver(self, subject_id: str, now: datetime) -> None:
        with self._lock:
            outbox = self._outboxes.get(subject_id)
            if not outbox:
                return
            callback = outbox[0]
            callback.attempts += 1
            attempt = callback.attempts
        exchange = self._transport.send("PUT", callback.url, callback.body)  # no lock held: the receiver may call us
        with self._lock:
            body = callback.body
            record = {
                "id": callback.id,
                "orderId": body.get("formOrderId"),
                "messageToCitizenId": body.get("messageToCitizenId"),
                "orderingSystem": callback.system_name,
                "kind": callback.kind,
                "formOrderStatus": body.get("formOrderStatus"),
                "sentStatus": body.get("sentStatus"),
                "attempt": attempt,
                "at": iso(exchange.at),
                "url": callback.url,
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
                    self.scheduler.schedule(now + delay, DELIVER, subject_id)
                    return
                log.warning("%s: gave up the %s callback after %d attempts", subject_id, callback.kind, attempt)
            outbox.popleft()
            if outbox:
                self.scheduler.schedule(max(now, outbox[0].created_at), DELIVER, subject_id)


def _delivery_error(exchange) -> str | None:
    if exchange.acknowledged:
        return None
    if exchange.error is not None:
        return exchange.error
    if not exchange.ok:
        return f"HTTP {exchange.status}"
    return 'answered without {"success": true}'
