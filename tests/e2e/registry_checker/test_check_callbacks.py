"""`eprox-harness check-callbacks` against real registry endpoints on loopback: a conforming one passes
every check, and each way a registry commonly gets it wrong fails exactly the check about it."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest
from flask import Flask, jsonify, request

from fake_registry.checker import Verdict, run_checks
from fake_registry.state import callback_kind, check_callback
from harness.cli import main
from service_kit.server import LiveServer

KEY = "registry-under-test-key"
ORDER_IDS = ["0b6c4f5e-9d1a-4c33-8f0e-3a2b1c0d9e8f", "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
             "3c2b1a09-8f7e-4d6c-9b5a-493827160514"]
MESSAGE_ID = "7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7"
FIXED = type("FixedClock", (), {"simulated": False, "now": lambda self: datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)})()


class Registry:
    """A registry's two callback endpoints; `misbehave` names one common mistake (None: it conforms)."""

    def __init__(self, misbehave: str | None = None):
        self.misbehave = misbehave
        self.received: list[dict] = []
        self.seen_deliveries: set[str] = set()
        self.history: dict[str, list[str]] = {}
        self.release = threading.Event()
        app = Flask(__name__)
        app.add_url_rule("/eprox/api/PromsFormOrder", "orders", self.receive, methods=["PUT"])
        app.add_url_rule("/eprox/api/MessageToCitizen", "messages", self.receive, methods=["PUT"])
        self.server = LiveServer("registry-under-test")
        self.server.mount(app)

    @property
    def url(self) -> str:
        return self.server.url + "/eprox"

    def receive(self):
        body = request.get_json()
        delivery = request.headers.get("X-Delivery-Id", "")
        self.received.append({"path": request.path, "body": body, "deliveryId": delivery,
                              "contentType": request.headers.get("Content-Type")})
        if self.misbehave == "refuses-everything":
            return jsonify(success=False)
        if self.misbehave == "answers-500":
            return jsonify(message="boom"), 500
        if self.misbehave == "answers-text":
            return "OK", 200
        if self.misbehave == "answers-huge":
            return jsonify(success=True, pad="x" * (2 << 20))
        if self.misbehave == "slow-to-wake" and len(self.received) <= 2:
            self.release.wait(timeout=30)  # its first two requests: longer than the checker waits
        if self.misbehave == "key-checked-on-statuses-only" and (
                body.get("formOrderStatus") in ("Completed", "Expired") or "sentStatus" in body):
            return jsonify(success=True)
        if self.misbehave == "delivery-id-checked-not-key":
            status = body.get("formOrderStatus") or body.get("sentStatus")
            order = body.get("formOrderId") or body.get("messageToCitizenId")
            return jsonify(success=delivery == f"{order}.{status}")
        if self.misbehave == "names-on-statuses-only" and isinstance(body.get("notificationChannel"), str) and \
                body.get("formOrderStatus") in ("Completed", "Expired"):
            return jsonify(success=False, message="notificationChannel must be a number"), 400
        if self.misbehave == "hangs-on-expiry" and body.get("formOrderStatus") == "Expired":
            self.release.wait(timeout=30)  # held until the test ends: longer than the checker waits
        if self.misbehave == "channel-numbers-only" and isinstance(body.get("notificationChannel"), str):
            return jsonify(success=False, message="notificationChannel must be a number")
        if self.misbehave not in ("ignores-api-key", "slow-to-wake") and body.get("apiKey") != KEY:
            return jsonify(success=False)  # before anything is recorded: a forged callback changes nothing
        if self.misbehave == "strict-about-order-history":
            order, status = body.get("formOrderId"), body.get("formOrderStatus")
            history = self.history.setdefault(order, [])
            if status in history and delivery not in self.seen_deliveries or "Error" in history:
                return jsonify(success=False, message="not a status this order can get now"), 409
            history.append(status)
        if self.misbehave == "not-idempotent" and delivery in self.seen_deliveries:
            return jsonify(success=False, message="already received"), 409
        self.seen_deliveries.add(delivery)
        return jsonify(success=True)


@pytest.fixture
def registry_factory():
    started = []

    def start(misbehave: str | None = None) -> Registry:
        registry = Registry(misbehave)
        registry.server.start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.release.set()
        registry.server.stop()


def verdicts(results) -> dict[str, Verdict]:
    return {r.check.name: r.verdict for r in results}


def test_a_conforming_registry_passes_every_check_and_the_command_exits_0(registry_factory, capsys):
    registry = registry_factory()
    assert main(["check-callbacks", registry.url, "--api-key", KEY, "--order-id", ORDER_IDS[0],
                 "--order-id", ORDER_IDS[1], "--order-id", ORDER_IDS[2], "--message-id", MESSAGE_ID]) == 0
    out = capsys.readouterr().out
    assert "11 of 11 checks passed." in out
    assert "FAIL" not in out and "made up" not in out
    assert len(registry.received) == 11
    ordered = {r["body"].get("formOrderId") for r in registry.received} - {None}
    assert ordered == set(ORDER_IDS)
    assert [r["body"]["messageToCitizenId"] for r in registry.received
            if r["path"].endswith("MessageToCitizen") and r["body"]["apiKey"] == KEY] == [MESSAGE_ID]


def test_what_the_checker_sends_is_what_eprox_sends(registry_factory):
    """Every genuine callback conforms to the callback schemas and carries the key; each has its own
    X-Delivery-Id except the resent answer, which repeats the answer's body and id. A forged callback is its
    genuine twin with another key or none, sent just before it under the twin's id."""
    registry = registry_factory()
    _, results = run_checks(registry.url, KEY, seed=4, clock=FIXED)
    assert len(registry.received) == len(results) == 11
    for result, got in zip(results, registry.received):
        assert got["contentType"].startswith("application/json")
        assert got["body"] == result.check.body
        assert got["deliveryId"] == result.check.delivery_id
        if result.check.genuine:
            found, key_matches = check_callback(callback_kind(result.check.path, got["body"]), got["body"], True, KEY)
            assert (found, key_matches) == ([], True), result.check.name
        else:
            assert got["body"].get("apiKey") != KEY
    by_name = {r.check.name: got for r, got in zip(results, registry.received)}
    names = [r.check.name for r in results]
    for forged in (r.check for r in results if not r.check.genuine):
        twin = by_name[forged.same_as]
        assert names.index(forged.same_as) > names.index(forged.name)
        assert by_name[forged.name]["deliveryId"] == twin["deliveryId"]
        assert {k: v for k, v in by_name[forged.name]["body"].items() if k != "apiKey"} == \
            {k: v for k, v in twin["body"].items() if k != "apiKey"}
    assert {r.check.same_as for r in results if not r.check.genuine} == {"status-error", "answer-completed",
                                                                        "message-sent"}
    assert by_name["answer-resent"] == by_name["answer-completed"]
    assert isinstance(json.loads(by_name["answer-completed"]["body"]["formData"]), dict)
    assert by_name["status-channel-name"]["body"]["notificationChannel"] == "Helsenorge"
    assert by_name["answer-expired"]["body"]["notificationChannel"] == "Helsenorge"
    assert by_name["status-ordered"]["body"]["notificationChannel"] == 1
    assert by_name["answer-completed"]["body"]["notificationChannel"] == 1
    ids = [got["deliveryId"] for r, got in zip(results, registry.received) if r.check.genuine]
    assert len(set(ids)) == len(ids) - 1
    # as ePROX gives them: <the registry's order id>.<status>, one per order and status; one order each
    # gets what one order could get (Ordered, then its answer or its expiry; or an Error)
    genuine = [(got["body"].get("formOrderId") or got["body"]["messageToCitizenId"], got["body"].get(
        "formOrderStatus") or got["body"]["sentStatus"], got["deliveryId"])
        for r, got in zip(results, registry.received) if r.check.genuine]
    assert all(delivery == f"{order}.{status}" for order, status, delivery in genuine)
    statuses: dict[str, list[str]] = {}
    for order, status, _ in genuine:
        statuses.setdefault(order, []).append(status)
    assert sorted(statuses.values()) == sorted([["Ordered", "Completed", "Completed"], ["Ordered", "Expired"],
                                                ["Error"], ["Sent"]])


def test_the_same_seed_sends_the_same_callbacks(registry_factory):
    first, second = registry_factory(), registry_factory()
    run_checks(first.url, KEY, seed=11, clock=FIXED)
    run_checks(second.url, KEY, seed=11, clock=FIXED)
    run_checks(second.url, KEY, seed=12, clock=FIXED)
    assert first.received == second.received[:11]
    assert first.received != second.received[11:]


@pytest.mark.parametrize("misbehave, failing", [
    ("ignores-api-key", {"forged-api-key", "forged-no-api-key", "forged-answer", "forged-message"}),
    ("not-idempotent", {"answer-resent"}),
    ("channel-numbers-only", {"status-channel-name", "answer-expired"}),
    ("names-on-statuses-only", {"answer-expired"}),
    ("key-checked-on-statuses-only", {"forged-answer", "forged-message"}),
    ("delivery-id-checked-not-key", {"forged-api-key", "forged-no-api-key", "forged-answer", "forged-message"}),
])
def test_each_common_mistake_fails_exactly_its_check(registry_factory, misbehave, failing):
    registry = registry_factory(misbehave)
    _, results = run_checks(registry.url, KEY, order_ids=ORDER_IDS, message_id=MESSAGE_ID)
    assert {name for name, v in verdicts(results).items() if v is Verdict.FAILED} == failing
    assert all(v is Verdict.PASSED for name, v in verdicts(results).items() if name not in failing)


def test_a_registry_that_answers_too_late_fails_with_the_timeout_named(registry_factory):
    registry = registry_factory("hangs-on-expiry")
    _, results = run_checks(registry.url, KEY, timeout=0.5)
    failed = {r.check.name: r for r in results if r.verdict is not Verdict.PASSED}
    assert set(failed) == {"answer-expired"}
    assert failed["answer-expired"].reason.startswith("no answer within 0.5 s")
    assert failed["answer-expired"].status is None


@pytest.mark.parametrize("misbehave, shown", [
    ("refuses-everything", 'HTTP 200 {"success": false}, not HTTP 2xx with {"success": true}'),
    ("answers-500", 'HTTP 500 {"message": "boom"}'),
    ("answers-text", "HTTP 200 OK, not HTTP 2xx"),
])
def test_a_registry_that_never_acknowledges_fails_every_genuine_check_and_proves_nothing_about_keys(
        registry_factory, capsys, misbehave, shown):
    registry = registry_factory(misbehave)
    assert main(["check-callbacks", registry.url, "--api-key", KEY, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    by_check = {r["check"]: r for r in report["results"]}
    genuine = [r for name, r in by_check.items() if not name.startswith("forged")]
    assert len(genuine) == 7 and all(r["verdict"] == "failed" and shown in r["reason"] for r in genuine)
    assert {by_check[n]["verdict"] for n in ("forged-api-key", "forged-no-api-key", "forged-answer",
                                             "forged-message")} == {"inconclusive"}
    assert set(report["madeUp"]) == set(report["orderIds"]) | {report["messageId"]}


def test_an_unreachable_registry_is_reported_not_raised(capsys):
    server = LiveServer("gone")
    url = server.url
    server.stop()  # the port is free again: nothing listens
    assert main(["check-callbacks", url, "--api-key", KEY, "--timeout", "2"]) == 1
    out = capsys.readouterr().out
    assert "0 of 11 checks passed." in out
    assert "no HTTP answer (ConnectionError)" in out
    assert "this shows nothing about the apiKey check" in out  # a forged callback nobody answered
    assert "give it some that it holds" not in out  # nothing refused the made-up ids: nothing answered


@pytest.mark.parametrize("args, message", [
    (["ftp://registry.example", "--api-key", KEY], "URL: is not an http:// or https:// URL"),
    (["http://127.0.0.1:9/x", "--api-key", ""], "--api-key: must not be empty"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--order-id", "26670271527"],
     "--order-id: '266702*****' is not a uuid"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--order-id", ORDER_IDS[0], "--order-id", ORDER_IDS[1],
      "--order-id", ORDER_IDS[2], "--order-id", MESSAGE_ID], "--order-id: at most 3 (answered, expired, failed)"),
    (["http://127.0.0.1:9/x", "--api-key", KEY] + ["--order-id", ORDER_IDS[0]] * 2,
     "--order-id: the answered, expired, failed orders must be different orders"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--order-id", ORDER_IDS[0], "--order-id", ORDER_IDS[0].upper()],
     "--order-id: the answered, expired, failed orders must be different orders"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--order-id", ORDER_IDS[0], "--message-id", ORDER_IDS[0].upper()],
     "--message-id: must differ from every --order-id"),
    (["http://127.0.0.1:9/x?", "--api-key", KEY], "URL: has a query or a fragment"),
    (["http://team:s3cret@127.0.0.1:9/x", "--api-key", KEY], "URL: holds a user name or password"),
    (["http://127.0.0.1:9/x#", "--api-key", KEY], "URL: has a query or a fragment"),
    (["http://[::1", "--api-key", KEY], "URL: has an unusable host"),
    (["http://127.0.0.1:99999/x", "--api-key", KEY], "URL: "),
    (["http://127.0.0.1:9/x", "--api-key", "with space"], "--api-key: contains a line break, a space"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--message-id", "x"], "--message-id: 'x' is not a uuid"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--timeout", "nan"], "--timeout: nan is not a number of seconds"),
    (["http://127.0.0.1:9/x", "--api-key", KEY, "--timeout", "0"], "--timeout: 0 is not a number of seconds"),
])
def test_bad_arguments_exit_2_with_the_reason_and_send_nothing(registry_factory, capsys, args, message):
    registry = registry_factory()
    args = [a.replace("http://127.0.0.1:9/x", registry.url) for a in args]
    assert main(["check-callbacks", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert "26670271527" not in captured.err and "s3cret" not in captured.err
    assert registry.received == []


def test_a_registry_that_treats_an_error_as_final_and_refuses_a_second_ordered_still_passes(registry_factory):
    """The checker sends only what ePROX could send one order: it sent Ordered twice for one order under two
    delivery ids, and Error then Expired for another, which a strict registry rightly refuses."""
    registry = registry_factory("strict-about-order-history")
    _, results = run_checks(registry.url, KEY, order_ids=ORDER_IDS, message_id=MESSAGE_ID)
    assert {name: v for name, v in verdicts(results).items() if v is not Verdict.PASSED} == {}


def test_a_forged_callback_nobody_answered_proves_nothing(registry_factory):
    """A registry slow to wake (its first two requests time out) that acknowledges everything, forged callbacks
    included: the two unanswered forged callbacks were counted as refused, the run as a pass for them."""
    registry = registry_factory("slow-to-wake")
    _, results = run_checks(registry.url, KEY, timeout=0.5)
    by_name = {r.check.name: r for r in results}
    for name in ("forged-api-key", "forged-no-api-key"):
        assert by_name[name].verdict is Verdict.INCONCLUSIVE
        assert by_name[name].reason == "no HTTP answer (Timeout): this shows nothing about the apiKey check"
    assert by_name["forged-answer"].verdict is by_name["forged-message"].verdict is Verdict.FAILED


def test_an_answer_larger_than_eprox_reads_is_named_as_such(registry_factory):
    registry = registry_factory("answers-huge")
    _, results = run_checks(registry.url, KEY)
    genuine = [r for r in results if r.check.genuine]
    assert genuine and all(r.verdict is Verdict.FAILED for r in genuine)
    assert all(r.reason.startswith("an answer larger than the 1 MiB ePROX reads") for r in genuine)


def test_ids_given_in_upper_case_are_sent_as_eprox_writes_its_ids(registry_factory):
    registry = registry_factory("strict-about-order-history")
    _, results = run_checks(registry.url, KEY, order_ids=[i.upper() for i in ORDER_IDS], message_id=MESSAGE_ID.upper())
    assert all(r.verdict is Verdict.PASSED for r in results)
    sent = {got["body"].get("formOrderId") or got["body"]["messageToCitizenId"] for got in registry.received}
    assert sent == set(ORDER_IDS) | {MESSAGE_ID}


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_a_national_id_in_the_url_is_shown_masked(capsys, json_output):
    server = LiveServer("gone")
    url = server.url + "/26670271527/eprox"
    server.stop()
    assert main(["check-callbacks", url, "--api-key", KEY, "--timeout", "2"] + (["--json"] if json_output else [])) == 1
    out = capsys.readouterr().out
    assert "26670271527" not in out and "/266702*****/eprox" in out
