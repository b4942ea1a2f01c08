"""Tells a registry team whether *their* callback endpoints conform (SPEC §2, §3): the checker PUTs the
callbacks ePROX sends a registry - statuses (the channel as a number and as a name), an error, a returned
form and the same form again, an expiry, a message status - each the way ePROX sends it (proxy/gateways.py:
the registry's apiKey in the body, an X-Delivery-Id header, ePROX's timeout), and judges each answer as ePROX
does: done only on HTTP 2xx with {"success": true}. Forged callbacks (a status, an answer and a message
status with another apiKey, a status with none) must not be acknowledged. Nothing here is simulated: it talks
to the team's real endpoint on the system clock."""
from __future__ import annotations

import json
import math
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Callable

from eprom_protocol import national_id
from eprom_protocol.enums import FormOrderStatus, FormOrderStatusErrorCode, NotificationChannel, SentStatus
from eprom_protocol.schemas import UUID_RE
from fake_eprom import callbacks
from fake_eprom.answers import form_data_for
from fake_eprom.config import OrderingSystem
from fake_eprom.forms import default_catalog
from proxy.config import ProxyConfig, RegistryAccount
from proxy.gateways import HttpRegistries
from proxy.service import FORM_ORDER_PATH, MESSAGE_PATH, Reply
from proxy.settings import URL, endpoint_problem, key_problem
from proxy.store import delivery_id
from service_kit.clock import Clock, SystemClock
from service_kit.http import MAX_ANSWER_BYTES, AnswerTooLarge, Transport

DEFAULT_TIMEOUT = ProxyConfig.delivery_timeout  # what ePROX waits for a registry's answer
MAX_TIMEOUT = 600  # seconds: longer than any sender waits
EXCERPT = 200  # characters of an unexpected answer shown in a verdict


class Verdict(Enum):
    PASSED = "pass"
    FAILED = "FAIL"
    INCONCLUSIVE = "????"  # a forged callback refused, but so was the genuine one: nothing learnt


@dataclass(frozen=True)
class Check:
    name: str
    what: str  # one line: what was sent
    path: str
    body: dict[str, Any]
    delivery_id: str
    genuine: bool = True  # False: forged; acknowledging it is the failure
    same_as: str | None = None  # a forged check is conclusive only if this genuine one was acknowledged


@dataclass(frozen=True)
class Result:
    check: Check
    verdict: Verdict
    reason: str
    status: int | None
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check.name, "what": self.check.what, "path": self.check.path,
                "deliveryId": self.check.delivery_id, "verdict": self.verdict.name.lower(),
                "reason": self.reason, "status": self.status, "seconds": round(self.seconds, 3)}


#: The orders the callbacks are about, in the order --order-id gives them.
ORDER_ROLES = ("answered", "expired", "failed")


@dataclass(frozen=True)
class Ids:
    """The ids the callbacks are about: the team's own (orders their system placed through ePROX), or made up.
    Each order gets what one order could get from ePROX: Ordered then the answer (twice: a retry); Ordered
    then Expired; Error."""

    answered_order: str
    expired_order: str
    failed_order: str
    message: str
    made_up: frozenset[str]

    @property
    def orders(self) -> list[str]:
        return [self.answered_order, self.expired_order, self.failed_order]


def usage_problems(base_url: str, api_key: str, order_ids: list[str], message_id: str | None,
                   timeout: float) -> list[str]:
    """What is wrong with the checker's arguments, as sentences (empty: nothing); the URL and the key by the
    proxy's own rules for a registry's callback URL and key."""
    problems = []
    if problem := endpoint_problem(base_url):
        problems.append(f"URL: {problem} (the registry's ApiBaseUrl, e.g. https://registry.example/eprox)")
    elif not re.match(URL, base_url):  # the proxy's own pattern: no query or fragment
        problems.append("URL: has a query or a fragment; give the base the callback paths are added to")
    if not api_key:
        problems.append("--api-key: must not be empty")
    elif problem := key_problem(api_key):
        problems.append(f"--api-key: {problem}")
    orders = {i.lower() for i in order_ids}  # uuids in any case: ePROX writes them in lower
    if len(order_ids) > len(ORDER_ROLES):
        problems.append(f"--order-id: at most {len(ORDER_ROLES)} ({', '.join(ORDER_ROLES)}), not {len(order_ids)}")
    elif len(orders) < len(order_ids):
        problems.append(f"--order-id: the {', '.join(ORDER_ROLES)} orders must be different orders")
    if message_id is not None and message_id.lower() in orders:
        problems.append("--message-id: must differ from every --order-id")
    for given, name in [(i, "--order-id") for i in order_ids] + [(message_id, "--message-id")]:
        if given is not None and not UUID_RE.match(given):
            problems.append(f"{name}: {national_id.mask_in_text(given)!r} is not a uuid (ePROX's ids are uuids)")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        problems.append(f"--timeout: {timeout:g} is not a number of seconds above 0 and at most {MAX_TIMEOUT}")
    return problems


def choose_ids(order_ids: list[str], message_id: str | None, rng: random.Random) -> Ids:
    """The ids given, in lower case as ePROX writes its ids; the rest made up."""
    def made() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    order_ids = [i.lower() for i in order_ids]
    message_id = message_id.lower() if message_id is not None else None

    orders = [order_ids[n] if n < len(order_ids) else made() for n in range(len(ORDER_ROLES))]
    message = message_id or made()
    return Ids(*orders, message, frozenset(i for i in (*orders, message) if i not in order_ids and i != message_id))


def plan(api_key: str, ids: Ids, now: datetime, rng: random.Random) -> list[Check]:
    """The callbacks in an order ePROX could send them, each with the X-Delivery-Id ePROX would give it. Each
    forged one goes just before its genuine twin and carries the id the twin will: a registry cannot take it
    for a resend of one it has processed, and one strict about an order's history sees a forged answer only
    after that order's status. The second order's callbacks carry the channel as a name, the others as a
    number."""
    numbers = OrderingSystem("ePROX", api_key, "-", channel_format="number")
    names = OrderingSystem("ePROX", api_key, "-", channel_format="name")
    digital, none = NotificationChannel.Helsenorge, NotificationChannel.None_
    rand12 = default_catalog()[0]
    forged_key = f"not-{api_key}"

    def status(system: OrderingSystem, order: str, state: FormOrderStatus, code: FormOrderStatusErrorCode,
               channel: NotificationChannel) -> dict[str, Any]:
        return callbacks.order_status_body(system=system, order_id=order, channel=channel, status=state,
                                           error_code=code, timestamp=now)

    failed = status(numbers, ids.failed_order, FormOrderStatus.Error, FormOrderStatusErrorCode.PatientUnreachable,
                    none)
    failed_id = delivery_id(ids.failed_order, FormOrderStatus.Error.name)
    answer = callbacks.completed_body(
        system=numbers, order_id=ids.answered_order, channel=digital, answered_at=now,
        form_data=json.dumps(form_data_for(rng.getrandbits(32), ids.answered_order, rand12), ensure_ascii=False),
        signed_form_id=None, scanned_paper_id=None, warnings=[],
        events=callbacks.filling_events([q.id for q in rand12.questions], now, now, signed=False),
        filled_out_by=callbacks.filled_out_by(given=None, on_behalf_of=False, recipient_national_id="",
                                              representative=None, on_paper=False))
    completed = delivery_id(ids.answered_order, FormOrderStatus.Completed.name)
    message = callbacks.message_status_body(system=numbers, message_id=ids.message, channel=digital,
                                            status=SentStatus.Sent)
    message_sent = delivery_id(ids.message, SentStatus.Sent.name)
    return [
        Check("forged-api-key", "the third order's Error carrying another apiKey", FORM_ORDER_PATH,
              {**failed, "apiKey": forged_key}, failed_id, genuine=False, same_as="status-error"),
        Check("forged-no-api-key", "the third order's Error without an apiKey", FORM_ORDER_PATH,
              {k: v for k, v in failed.items() if k != "apiKey"}, failed_id, genuine=False,
              same_as="status-error"),
        Check("status-error", "Error / PatientUnreachable, channel None (the third order)", FORM_ORDER_PATH,
              failed, failed_id),
        Check("status-ordered", "Ordered, notificationChannel as a number (today's ePROM; the first order)",
              FORM_ORDER_PATH,
              status(numbers, ids.answered_order, FormOrderStatus.Ordered, FormOrderStatusErrorCode.None_, digital),
              delivery_id(ids.answered_order, FormOrderStatus.Ordered.name)),
        Check("status-channel-name", "Ordered, notificationChannel as a name (the guide's older examples; the "
              "second order)", FORM_ORDER_PATH,
              status(names, ids.expired_order, FormOrderStatus.Ordered, FormOrderStatusErrorCode.None_, digital),
              delivery_id(ids.expired_order, FormOrderStatus.Ordered.name)),
        Check("forged-answer", "the first order's Completed carrying another apiKey", FORM_ORDER_PATH,
              {**answer, "apiKey": forged_key}, completed, genuine=False, same_as="answer-completed"),
        Check("answer-completed", "Completed: formData as a JSON string, the event log, filledOutBy",
              FORM_ORDER_PATH, answer, completed),
        Check("answer-resent", "the same Completed again, same X-Delivery-Id (a retry after a lost reply)",
              FORM_ORDER_PATH, answer, completed),
        Check("answer-expired", "Expired: no formData, notificationChannel as a name (the second order)",
              FORM_ORDER_PATH, callbacks.expired_body(system=names, order_id=ids.expired_order, channel=digital,
                                                      expired_at=now),
              delivery_id(ids.expired_order, FormOrderStatus.Expired.name)),
        Check("forged-message", "the message's status carrying another apiKey", MESSAGE_PATH,
              {**message, "apiKey": forged_key}, message_sent, genuine=False, same_as="message-sent"),
        Check("message-sent", "MessageToCitizen Sent", MESSAGE_PATH, message, message_sent),
    ]


def judge(check: Check, reply: Reply, seconds: float, timeout: float,
          acknowledged: dict[str, bool]) -> Result:
    def result(verdict: Verdict, reason: str) -> Result:
        return Result(check, verdict, reason, reply.status, seconds)

    if check.genuine:
        if reply.acknowledged:
            return result(Verdict.PASSED, f"HTTP {reply.status} {{\"success\": true}} in {seconds * 1000:.0f} ms")
        return result(Verdict.FAILED, _why_not_done(reply, timeout))
    if reply.acknowledged:
        return result(Verdict.FAILED, "acknowledged: anyone who knows your callback URL could send you statuses "
                                      "and answers; refuse a callback whose apiKey is not yours with "
                                      "{\"success\": false}")
    if reply.status is None:
        return result(Verdict.INCONCLUSIVE, f"no HTTP answer ({reply.failure_kind}): this shows nothing about the "
                                            "apiKey check")
    refused = f"refused ({_answer(reply)})"
    if check.same_as is not None and not acknowledged.get(check.same_as, False):
        return result(Verdict.INCONCLUSIVE, f"{refused}, but the genuine callback ({check.same_as}) was refused "
                                            "too: this shows nothing about the apiKey check")
    return result(Verdict.PASSED, refused)


def _why_not_done(reply: Reply, timeout: float) -> str:
    retry = "ePROX would send it again with backoff for 3 days, then park it as dead"
    if reply.status is None:
        if reply.failure_kind == "Timeout":
            return f"no answer within {timeout:g} s: {retry}"
        if reply.failure_kind == AnswerTooLarge.__name__:
            return f"an answer larger than the {MAX_ANSWER_BYTES >> 20} MiB ePROX reads: {retry}"
        return f"no HTTP answer ({reply.failure_kind}): {retry}"
    return f"{_answer(reply)}, not HTTP 2xx with {{\"success\": true}}: {retry}"


def _answer(reply: Reply) -> str:
    if reply.status is None:
        return reply.failure_kind
    body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body, ensure_ascii=False)
    body = national_id.mask_in_text(body)
    return f"HTTP {reply.status} {body[:EXCERPT]}{'...' if len(body) > EXCERPT else ''}".rstrip()


def run_checks(base_url: str, api_key: str, *, order_ids: list[str] = (), message_id: str | None = None,
               timeout: float = DEFAULT_TIMEOUT, seed: int = 0, clock: Clock | None = None,
               on_result: Callable[[Result], None] = lambda result: None) -> tuple[Ids, list[Result]]:
    """Every check, one after the other, against the registry whose ApiBaseUrl is base_url."""
    rng = random.Random(f"{seed}:callback-checker")
    ids = choose_ids(list(order_ids), message_id, rng)
    now = (clock or SystemClock()).now().replace(microsecond=0)
    account = RegistryAccount("registry under test", api_key, base_url)
    gateway = HttpRegistries(Transport("ePROX", clock or SystemClock(), timeout=timeout))
    replies = []
    for check in plan(api_key, ids, now, rng):
        started = time.monotonic()
        replies.append((check, gateway.deliver(account, check.path, check.body, check.delivery_id),
                        time.monotonic() - started))
    acknowledged = {check.name: reply.acknowledged for check, reply, _ in replies}
    results = [judge(check, reply, seconds, timeout, acknowledged) for check, reply, seconds in replies]
    for result in results:
        on_result(result)
    return ids, results


def passed(results: list[Result]) -> bool:
    return bool(results) and all(r.verdict is Verdict.PASSED for r in results)

