"""`eprox-harness demo`: three scripted flows through a fresh harness, driven over HTTP, each printed as
a transcript with a verdict. The pump is off and every step settles, so the output is the same on every
run with the same seed."""
from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Iterator

from eprom_protocol.enums import FormOrderStatus
from eprom_protocol.messages import ZERO_UUID
from eprom_protocol.national_id import make_synthetic, mask
from eprom_protocol.schemas import UUID_RE

from .client import HarnessClient
from .topology import Harness

REGISTRY_A, REGISTRY_B = "registry-a", "registry-b"
EXPIRY_DAYS = 14


@dataclass
class Check:
    text: str
    passed: bool
    detail: str = ""


@dataclass
class Flow:
    key: str
    title: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def check(self, text: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(text, bool(passed), "" if passed else detail))
        return bool(passed)


def is_order_id(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value)) and value != ZERO_UUID


class Demo:
    def __init__(self, harness: Harness, client: HarnessClient, out: Callable[[str], None], seed: int | str):
        self.harness = harness
        self.client = client
        self.out = out
        self._rng = random.Random(f"{seed}:demo-patients")
        self._patients = 0
        self.form = client.default_form_id

    # --- scaffolding ----------------------------------------------------------------------
    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Print what happens, do it, let every callback it causes arrive, and print the messages."""
        self.out(f"-- {text}")
        mark = len(self.harness.transcript)
        try:
            yield
            self.client.settle()
        finally:
            for line in self.harness.transcript.lines(mark):
                self.out(f"   {line}")

    def new_patient(self, answer_after: str | None) -> str:
        self._patients += 1
        birth = date(1950 + self._rng.randrange(40), self._rng.randint(1, 12), self._rng.randint(1, 28))
        national_id = make_synthetic(self._rng, birth)
        self.client.add_patient(nationalId=national_id, reachable=["Helsenorge"],
                                answer=None if answer_after is None else {"after": answer_after})
        when = "never answers unless told to" if answer_after is None else f"answers {answer_after} after the order"
        self.out(f"-- patient {self._patients} ({mask(national_id)}): reachable on Helsenorge, {when}")
        return national_id

    def order(self, registry: str, national_id: str, **fields: Any) -> dict:
        return self.client.order(registry, nationalId=national_id, formId=self.form, **fields)

    def check_order_accepted(self, flow: Flow, registry: str, reply: dict) -> str | None:
        order_id = reply.get("body", {}).get("id") if isinstance(reply.get("body"), dict) else None
        flow.check(f"{registry}'s order is accepted with an order id", reply.get("status") == 200 and is_order_id(order_id),
                   f"got HTTP {reply.get('status')}: {reply.get('body')}")
        return order_id

    def check_callbacks(self, flow: Flow, registry: str, order_id: str | None, expected: list[str]) -> None:
        """The registry got exactly these statuses for its order, each with its own key, acknowledged."""
        if order_id is None:
            flow.check(f"{registry} got {' then '.join(expected)}", False, "it has no order id")
            return
        got = self.client.statuses(registry, order_id)
        flow.check(f"{registry} got {' then '.join(expected)} under its own id {order_id[:8]}", got == expected,
                   f"got {got or 'nothing'}")
        callbacks = self.client.inbox(registry, order_id)
        flow.check(f"every callback to {registry} carries {registry}'s apiKey",
                   all(c.get("apiKeyMatches") for c in callbacks),
                   "a callback carried another key")
        flow.check(f"every callback to {registry} follows the ePROM schema",
                   all(c.get("conforms") for c in callbacks),
                   "; ".join(v for c in callbacks for v in c.get("schemaViolations", []))[:300])

    def check_ids_kept_apart(self, flow: Flow, ids: dict[str, str | None], national_id: str) -> None:
        """No registry hears of another registry's id or of ePROM's own id."""
        eprom_ids = {o.get("id") for o in self.client.eprom_orders(national_id=national_id, form_id=self.form)}
        for registry in (REGISTRY_A, REGISTRY_B):
            seen = {c["body"].get("formOrderId") for c in self.client.inbox(registry) if isinstance(c.get("body"), dict)}
            others = {i for name, i in ids.items() if name != registry and i} | eprom_ids
            flow.check(f"{registry} never sees another registry's id or ePROM's id", not (seen & others),
                       f"it saw {sorted(x[:8] for x in seen & others)}")

    def check_eprom_orders(self, flow: Flow, national_id: str, count: int, why: str) -> list[dict]:
        orders = self.client.eprom_orders(national_id=national_id, form_id=self.form)
        flow.check(f"ePROM holds exactly {count} order{'s' if count != 1 else ''} for this patient and form ({why})",
                   len(orders) == count, f"it holds {len(orders)}")
        return orders

    # --- the flows --------------------------------------------------------------------------
    def order_before_answer(self, flow: Flow) -> None:
        patient = self.new_patient("P3D")
        with self.step("registry-a orders RAND-12 for patient 1"):
            a = self.order(REGISTRY_A, patient)
        a_id = self.check_order_accepted(flow, REGISTRY_A, a)
        with self.step("registry-b orders the same form for the same patient"):
            b = self.order(REGISTRY_B, patient)
        b_id = self.check_order_accepted(flow, REGISTRY_B, b)
        flow.check("registry-b gets its own id, not registry-a's", b_id != a_id, "both got the same id")
        with self.step("3 days pass: the patient answers"):
            self.client.advance(days=3)
        self.check_callbacks(flow, REGISTRY_A, a_id, ["Ordered", "Completed"])
        self.check_callbacks(flow, REGISTRY_B, b_id, ["Ordered", "Completed"])
        self.check_eprom_orders(flow, patient, 1, "registry-b was linked")
        self.check_ids_kept_apart(flow, {REGISTRY_A: a_id, REGISTRY_B: b_id}, patient)

    def order_after_answer(self, flow: Flow) -> None:
        patient = self.new_patient(None)
        with self.step("registry-a orders RAND-12 for patient 2"):
            a = self.order(REGISTRY_A, patient)
        a_id = self.check_order_accepted(flow, REGISTRY_A, a)
        with self.step("the patient answers"):
            orders = self.client.eprom_orders(national_id=patient, form_id=self.form)
            if len(orders) != 1:
                raise RuntimeError(f"expected one ePROM order to answer, found {len(orders)}")
            self.client.answer(orders[0]["id"])
        self.check_callbacks(flow, REGISTRY_A, a_id, ["Ordered", "Completed"])
        with self.step("registry-b orders the same form for the same patient, after the answer"):
            b = self.order(REGISTRY_B, patient)
        b_id = self.check_order_accepted(flow, REGISTRY_B, b)
        flow.check("registry-b gets its own id, not registry-a's", b_id != a_id, "both got the same id")
        self.check_callbacks(flow, REGISTRY_B, b_id, ["Ordered", "Completed"])
        self.check_eprom_orders(flow, patient, 1, "the answered order was replayed to registry-b")
        self.check_ids_kept_apart(flow, {REGISTRY_A: a_id, REGISTRY_B: b_id}, patient)

    def expiry_and_lifetime(self, flow: Flow) -> None:
        patient = self.new_patient(None)
        expiry = (self.client.now() + timedelta(days=EXPIRY_DAYS)).isoformat()
        with self.step(f"registry-a orders RAND-12 for patient 3, expiring in {EXPIRY_DAYS} days"):
            a = self.order(REGISTRY_A, patient, expiryDate=expiry)
        a_id = self.check_order_accepted(flow, REGISTRY_A, a)
        with self.step("registry-b orders the same form for the same patient"):
            b = self.order(REGISTRY_B, patient, expiryDate=expiry)
        b_id = self.check_order_accepted(flow, REGISTRY_B, b)
        with self.step(f"{EXPIRY_DAYS + 1} days pass and the patient never answers"):
            self.client.advance(days=EXPIRY_DAYS + 1)
        self.check_callbacks(flow, REGISTRY_A, a_id, ["Ordered", "Expired"])
        self.check_callbacks(flow, REGISTRY_B, b_id, ["Ordered", "Expired"])
        orders = self.check_eprom_orders(flow, patient, 1, "registry-b was linked")
        if orders:
            status = orders[0].get("status")
            flow.check("ePROM's order is Expired",
                       FormOrderStatus.is_valid(status) and FormOrderStatus.parse(status) == FormOrderStatus.Expired,
                       f"it is {status!r}")
        self.check_ids_kept_apart(flow, {REGISTRY_A: a_id, REGISTRY_B: b_id}, patient)
        lifetime = self.harness.config.lifetime_days
        with self.step(f"{lifetime:g} more days pass: the order's {lifetime:g}-day lifetime is over"):
            self.client.advance(days=lifetime)
        new_expiry = (self.client.now() + timedelta(days=EXPIRY_DAYS)).isoformat()
        with self.step("registry-b orders the same form for the same patient again"):
            again = self.order(REGISTRY_B, patient, expiryDate=new_expiry)
        again_id = self.check_order_accepted(flow, REGISTRY_B, again)
        flow.check("registry-b's new order has a new id", again_id not in (a_id, b_id), "it reused an old id")
        self.check_eprom_orders(flow, patient, 2, "the old order is past its lifetime, so a new one was made")
        self.check_callbacks(flow, REGISTRY_B, again_id, ["Ordered"])


FLOWS: list[tuple[str, str, Callable[[Demo, Flow], None]]] = [
    ("order-before-answer", "registry-b orders while registry-a's order is open", Demo.order_before_answer),
    ("order-after-answer", "registry-b orders after the patient answered registry-a's order", Demo.order_after_answer),
    ("expiry-and-lifetime", "an unanswered order expires for both; after its lifetime a new order is made",
     Demo.expiry_and_lifetime),
]


def run_demo(harness: Harness, out: Callable[[str], None], seed: int | str = 0) -> list[Flow]:
    """Run every flow against a started harness (pump off); print transcripts and verdicts."""
    client = HarnessClient(harness.info())
    demo = Demo(harness, client, out, seed)
    flows = []
    try:
        for number, (key, title, run) in enumerate(FLOWS, start=1):
            flow = Flow(key, title)
            flows.append(flow)
            out("")
            out(f"=== Flow {number}: {key}: {title}")
            try:
                run(demo, flow)
            except Exception as err:  # a broken step fails its flow; the next flow still runs
                flow.check("the flow ran to its end", False, f"{type(err).__name__}: {err}")
            for check in flow.checks:
                out(f"   [{'ok' if check.passed else 'FAIL'}] {check.text}" + (f": {check.detail}" if check.detail else ""))
            out(f"VERDICT {key}: {'PASS' if flow.passed else 'FAIL'}")
    finally:
        client.close()
    failed = [f.key for f in flows if not f.passed]
    out("")
    out("ALL FLOWS PASSED" if not failed else f"FAILED: {', '.join(failed)}")
    return flows
