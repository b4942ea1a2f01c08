"""Random interleavings of registry orders (with and without directives), ePROM statuses, answers,
expiries, resent callbacks, failing registries and clock moves over two years, driven through the
proxy's use cases with a fake clock and fake gateways. After every step it checks against an
independent model of SPEC §3 that a new ePROM order is created exactly when the table says, and that
every registry hears about an order only through its own link, once per update."""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eprom_protocol.messages import ZERO_UUID
from proxy.config import ProxyConfig, RegistryAccount
from proxy.service import ProxyService, Reply
from proxy.store import ProxyStore
from service_kit.ids import IdSource

START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
LIFETIME = timedelta(days=365)
REGISTRIES = ("A", "B", "C")
PATIENTS = ("26723916517", "26670271527")
FORMS = ("1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "7d0c1f7e-0000-4000-8000-000000000002")
EPROX_KEY = "eprox-key"


class FakeClock:
    simulated = True

    def __init__(self):
        self.value = START

    def now(self):
        return self.value


class FakeEprom:
    def __init__(self):
        self.orders: list[dict] = []
        self._ids = IdSource(1, "fake-eprom")

    def place_order(self, body):
        order_id = self._ids.uuid()
        self.orders.append({"id": order_id, **body})
        return Reply(200, {**body, "id": order_id, "notificationChannel": 1, "loginUrl": "https://example.test"})


class FakeRegistries:
    def __init__(self):
        self.received: list[tuple[str, str, dict]] = []  # acknowledged: (registry, delivery id, body)
        self.failing: set[str] = set()

    def prepare(self, registry, path, body, delivery_id):
        return SimpleNamespace(send=lambda: self._deliver(registry, body, delivery_id))

    def _deliver(self, registry, body, delivery_id):
        if registry.name in self.failing:
            return Reply(500, {"success": False})
        self.received.append((registry.name, delivery_id, body))
        return Reply(200, {"success": True})

    def cut_calls_short(self):
        raise AssertionError("the state machine never stops a harness")


@dataclass
class ModelOrder:
    eprom_id: str
    patient: str
    form: str
    ordered_at: datetime
    seq: int
    state: str = "Pending"
    links: dict[str, str] = field(default_factory=dict)  # registry -> its own order id
    updates: list[str] = field(default_factory=list)  # statuses passed on to the registries, in order
    seen: set[str] = field(default_factory=set)  # every status ePROM sent, passed on or not

    def active(self, now):
        return self.state != "Error" and now - self.ordered_at < LIFETIME

    def passes_on(self, status: str) -> bool:
        """The model's reading of the rule: nothing that sets an order back reaches a registry; an answer
        always does (once)."""
        if status in self.seen:
            return False  # a resend
        if status == "Completed":
            return True
        if status == "Expired":
            return self.state not in ("Completed", "Expired", "Error")
        if self.state in ("Completed", "Expired", "Error"):
            return False
        return status != "Ordered" or self.state == "Pending"


def model_decide(registry, create_new, relevant, orders, now):
    """SPEC §3's table, written out again independently of proxy.linking."""
    if create_new is True:
        return "new", None
    active = [o for o in orders if o.active(now)]
    if not active:
        return "new", None
    linkable = [o for o in active if registry not in o.links and (relevant is None or o.ordered_at >= relevant)]
    if linkable:
        return "link", max(linkable, key=lambda o: (o.ordered_at, o.seq))
    if create_new is False:
        return "none", None
    return "new", None


class ProxyMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="eprox-sm-"))
        self.clock = FakeClock()
        self.eprom = FakeEprom()
        self.sink = FakeRegistries()
        self.accounts = {n: RegistryAccount(n, f"key-{n}", f"http://{n}.invalid") for n in REGISTRIES}
        config = ProxyConfig(eprom_url="http://eprom.invalid", eprom_api_key=EPROX_KEY,
                             registries=list(self.accounts.values()), state_dir=self.dir, lifetime=LIFETIME)
        self.store = ProxyStore(self.dir / "state.sqlite3")
        self.service = ProxyService(config, self.store, self.clock, self.eprom, self.sink, IdSource(0, "proxy"))
        self.orders: list[ModelOrder] = []
        self.owner: dict[str, tuple[str, ModelOrder]] = {}  # registry order id -> (registry, order)
        self.sent_bodies: list[dict] = []

    def teardown(self):
        self.service.close()
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def settle(self):
        self.service.run_due(self.clock.now())

    # --- registries order ------------------------------------------------------------------
    @rule(registry=st.sampled_from(REGISTRIES), patient=st.sampled_from(PATIENTS), form=st.sampled_from(FORMS),
          create_new=st.sampled_from([None, None, True, False]),
          relevant_days_ago=st.one_of(st.none(), st.integers(min_value=-5, max_value=400)))
    def order(self, registry, patient, form, create_new, relevant_days_ago):
        now = self.clock.now()
        metadata = {"age": 70}
        if create_new is not None:
            metadata["CREATE_NEW_ORDER"] = create_new
        relevant = None
        if relevant_days_ago is not None:
            relevant = now - timedelta(days=relevant_days_ago)
            metadata["RELEVANT_DATE"] = relevant.isoformat()
        body = {"formId": form, "nationalId": patient, "expiryDate": (now + timedelta(days=30)).isoformat(),
                "metadata": json.dumps(metadata)}
        candidates = [o for o in self.orders if o.patient == patient and o.form == form]
        expected, target = model_decide(registry, create_new, relevant, candidates, now)
        orders_before = len(self.eprom.orders)

        result = self.service.place_order(self.accounts[registry], body)
        if result.hold:
            self.service.release(result.hold)
        assert result.status == 200
        own_id = result.body["id"]

        made_new = len(self.eprom.orders) - orders_before
        assert made_new == (1 if expected == "new" else 0), (expected, result.decision)
        if expected == "none":
            assert own_id == ZERO_UUID
            return
        assert own_id != ZERO_UUID and own_id not in self.owner
        if expected == "new":
            sent = self.eprom.orders[-1]
            forwarded = json.loads(sent["metadata"])
            assert forwarded == {"age": 70}, "directives must be stripped before ePROM"
            target = ModelOrder(sent["id"], patient, form, now, seq=len(self.orders))
            self.orders.append(target)
        else:
            linked = self.store.order(result.decision.link_to)
            assert linked.eprom_id == target.eprom_id, "linked to another order than the newest linkable one"
        target.links[registry] = own_id
        self.owner[own_id] = (registry, target)
        self.settle()

    # --- ePROM calls back --------------------------------------------------------------------
    def _callback(self, target: ModelOrder, status: str, extra=None):
        body = {"apiKey": EPROX_KEY, "formOrderId": target.eprom_id, "formOrderStatus": status,
                "notificationChannel": 1, "timestamp": "t", "timestampUtc": "t", **(extra or {})}
        passes = target.passes_on(status)
        code, reply = self.service.accept_callback(body)
        assert (code, reply) == (200, {"success": True})
        self.sent_bodies.append(body)
        target.seen.add(status)
        if passes:
            target.updates.append(status)
            target.state = status
        self.settle()

    @precondition(lambda self: any(o.state == "Pending" for o in self.orders))
    @rule(data=st.data(), status=st.sampled_from(["Ordered", "Ordered", "Error"]))
    def eprom_status(self, data, status):
        target = data.draw(st.sampled_from([o for o in self.orders if o.state == "Pending"]))
        self._callback(target, status, {"formOrderStatusErrorCode": "PatientUnreachable" if status == "Error" else "None"})

    @precondition(lambda self: any(o.state == "Ordered" for o in self.orders))
    @rule(data=st.data(), status=st.sampled_from(["Completed", "Completed", "Expired"]))
    def patient_answers_or_order_expires(self, data, status):
        target = data.draw(st.sampled_from([o for o in self.orders if o.state == "Ordered"]))
        answer = json.dumps({"q1": 3}) if status == "Completed" else None
        self._callback(target, status, {"formData": answer, "signedFormId": ZERO_UUID})

    @precondition(lambda self: any(o.seen for o in self.orders))
    @rule(data=st.data())
    def eprom_sends_an_update_out_of_order(self, data):
        """A callback ePROM had to retry, overtaken by later ones (or a faulty sender with ePROX's key)."""
        target = data.draw(st.sampled_from([o for o in self.orders if o.seen]))
        status = data.draw(st.sampled_from(sorted({"Ordered", "Error", "Completed", "Expired"} - target.seen)
                                           or ["Ordered"]))
        extra = ({"formData": json.dumps({"q1": 2}) if status == "Completed" else None, "signedFormId": ZERO_UUID}
                 if status in ("Completed", "Expired")
                 else {"formOrderStatusErrorCode": "PatientUnreachable" if status == "Error" else "None"})
        self._callback(target, status, extra)

    @precondition(lambda self: bool(self.sent_bodies))
    @rule(data=st.data())
    def eprom_resends_a_callback(self, data):
        body = data.draw(st.sampled_from(self.sent_bodies))
        code, reply = self.service.accept_callback(dict(body))
        assert (code, reply) == (200, {"success": True})
        self.settle()

    @rule(key=st.sampled_from(["wrong", "key-A", ""]))
    def forged_callbacks_change_nothing(self, key):
        if not self.orders:
            return
        before = len(self.sink.received)
        code, reply = self.service.accept_callback(
            {"apiKey": key, "formOrderId": self.orders[0].eprom_id, "formOrderStatus": "Completed"})
        assert code == 401 and reply["success"] is False
        self.settle()
        assert len(self.sink.received) == before

    # --- registries fail, time passes -----------------------------------------------------
    @rule(registry=st.sampled_from(REGISTRIES))
    def registry_toggles_failing(self, registry):
        self.sink.failing ^= {registry}
        self.settle()

    @rule(step=st.sampled_from([timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
                                timedelta(days=30), timedelta(days=200)]))
    def time_passes(self, step):
        if self.clock.now() + step > START + timedelta(days=730):
            return
        # move like the timeline does: due work runs at its own instant, in order
        target = self.clock.now() + step
        while (due := self.service.next_due()) is not None and due <= target:
            self.clock.value = max(self.clock.value, due)
            self.service.run_due(self.clock.value)
        self.clock.value = target
        self.settle()

    # --- what must always hold ------------------------------------------------------------
    @invariant()
    def every_callback_carries_the_receivers_own_id_and_key(self):
        for registry, _, body in self.sink.received:
            assert body["formOrderId"] in self.owner, "a callback under an id no registry was given"
            owner, _ = self.owner[body["formOrderId"]]
            assert owner == registry, "a registry got a callback under another registry's id"
            assert body["apiKey"] == f"key-{registry}"

    @invariant()
    def each_update_reaches_each_link_at_most_once(self):
        seen = [(body["formOrderId"], body["formOrderStatus"]) for _, _, body in self.sink.received]
        assert len(seen) == len(set(seen)), "an update was delivered twice"
        ids = [delivery_id for _, delivery_id, _ in self.sink.received]
        assert len(ids) == len(set(ids))

    @invariant()
    def nothing_is_lost_and_registries_hear_their_updates_in_order(self):
        heard: dict[str, list[str]] = {}
        for _, _, body in self.sink.received:
            heard.setdefault(body["formOrderId"], []).append(body["formOrderStatus"])
        rows = self.store.deliveries()
        outbox = {(d.registry_order, d.status): d.state for d in rows}
        now = self.clock.now()
        first_open = {}
        for d in rows:  # rows come in creation order; later ones wait behind the first not yet done
            if d.state != "done":  # (pending, or dead: a dead one holds its lane until it is replayed)
                first_open.setdefault(d.registry_order, d)
        for d in first_open.values():  # settled: nothing for a healthy registry is still due
            if d.state == "pending" and d.registry not in self.sink.failing:
                assert d.next_attempt_at > now, ("left undelivered", d)
        finals = {"Completed", "Expired"}
        for own_id, (registry, target) in self.owner.items():
            got = heard.get(own_id, [])
            assert got == [s for s in got if s not in finals] + [s for s in got if s in finals], \
                "status must come before the answer or expiry"
            if now - target.ordered_at >= LIFETIME:  # the lifetime ended: its outbox rows are deleted, and
                # callbacks after it are taken in no more (docs/DESIGN.md)
                assert not [k for k in outbox if k[0] == own_id], "outbox rows outlived the order's lifetime"
                continue
            for status in target.updates:  # every update of its order is queued for this link
                assert (own_id, status) in outbox, (registry, status, "lost")
            passed = {s for (rid, s) in outbox if rid == own_id}  # and nothing that would set it back
            assert passed <= set(target.updates), (registry, passed - set(target.updates), "passed on late")
            delivered = {s for (rid, s), state in outbox.items() if rid == own_id and state == "done"}
            assert set(got) == delivered


ProxyMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_proxy_linking_state_machine = ProxyMachine.TestCase
