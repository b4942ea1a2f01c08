"""A fake ePROM driven through Flask's test client, on a simulated clock with the pump off, whose callbacks
go to a scripted stub transport instead of the network."""
from __future__ import annotations

import base64
import copy
from dataclasses import replace
from datetime import timedelta

import pytest

from eprom_protocol.national_id import check_digits
from fake_eprom.app import EXTENSION, create_app
from fake_eprom.config import EpromConfig, OrderingSystem
from fake_eprom.forms import default_catalog
from service_kit.clock import DEFAULT_SIM_START, SimClock
from service_kit.http import Exchange
from service_kit.runtime import Runtime
from service_kit.timeline import Timeline

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PAPER_FORM = "1279fd55-3f22-4a7a-b4c5-84b582f88c54"
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
UNPUBLISHED_FORM = "71dda605-8068-4905-9939-f2c27ba58386"
GUIDE_PATIENT = "26723916517"  # synthetic (month + 65), born 1939-07-26 like the guide's example patient
TEST_PERSON = "26670271527"
KEY = "key-eprox"
RESEARCH_KEY = "key-research"
PDF = b"%PDF-1.4\n% a letter\n"


def owned_catalog(owner: str = "eprox"):
    """The default catalog with the signed form and the paper form owned by `owner` (patients may order them)."""
    return [replace(f, owner=owner) if f.id in (SIGNED_FORM, PAPER_FORM) else f for f in default_catalog()]


def letter_body(**fields) -> dict:
    body = {"nationalId": GUIDE_PATIENT, "senderInfo": {"organisationName": "Hoftebruddregisteret"},
            "messageInfo": {"title": "Informasjon om registeret"},
            "documentCollection": {"documents": [{"title": "Brev", "content": base64.b64encode(PDF).decode(),
                                                  "isMainDocument": True}]}}
    body.update(fields)
    return body


def h_number() -> str:
    """A well-formed H-nummer (month + 40) with valid check digits."""
    for individual in range(400, 500):
        nine = f"264739{individual:03d}"
        if (digits := check_digits(nine)) is not None:
            return nine + digits
    raise AssertionError("no H-nummer found")


class StubTransport:
    """Answers callbacks from a script, one reply per send: "ok" (200 {"success": true}), "false"
    (200 {"success": false}), "down" (no HTTP answer) or an HTTP status code. Then "ok" for ever."""

    def __init__(self, clock: SimClock):
        self.clock = clock
        self.script: list = []
        self.sent: list[Exchange] = []
        self.log: list[str] = []  # shared with tests that interleave their own events

    def send(self, method, url, body=None, **_):
        reply = self.script.pop(0) if self.script else "ok"
        exchange = Exchange(self.clock.now(), "eprom", method, url, copy.deepcopy(body))
        if reply == "ok":
            exchange.status, exchange.response_body = 200, {"success": True}
        elif reply == "false":
            exchange.status, exchange.response_body = 200, {"success": False}
        elif reply == "down":
            exchange.error = "ConnectionError: connection refused"
        else:
            exchange.status, exchange.response_body = int(reply), "<html>oops</html>"
        self.sent.append(exchange)
        self.log.append("sent")
        return exchange


class EpromSim:
    def __init__(self, *, seed=7, systems=None, sim=True, start=DEFAULT_SIM_START, **config):
        self.clock = SimClock(start)
        self.timeline = Timeline(self.clock, pump=False)
        self.runtime = Runtime(self.clock, self.timeline, seed=seed, sim=sim)
        self.transport = StubTransport(self.clock)
        self.runtime.transport = lambda sender: self.transport
        if systems is None:
            systems = [OrderingSystem("eprox", KEY, "http://eprox.test"),
                       OrderingSystem("research-registry", RESEARCH_KEY, "http://research.test/", research=True,
                                      channel_format="name")]
        self.config = EpromConfig(ordering_systems=systems, **config)
        self.app = create_app(self.config, self.runtime)
        self.eprom = self.app.extensions[EXTENSION]
        self.client = self.app.test_client()

    # --- protocol ---------------------------------------------------------------------
    def order(self, body=None, *, key=KEY, headers=None, **fields):
        """POST /api/v2/formorder (the response is closed, so the order's callbacks are released)."""
        if body is None:
            body = {"formId": RAND_12, "nationalId": GUIDE_PATIENT, "expiryDate": "2025-01-20", **fields}
        if headers is None:
            headers = {"Authorization": f"Basic {key}"}
        if isinstance(body, (str, bytes)):
            return self.client.post("/api/v2/formorder", data=body, headers=headers,
                                    content_type="application/json", buffered=True)
        return self.client.post("/api/v2/formorder", json=body, headers=headers, buffered=True)

    def ordered(self, **fields) -> dict:
        response = self.order(**fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def letter(self, body=None, *, key=KEY, **fields):
        """POST /api/v2/messagetocitizen (closed, so the message's callback is released)."""
        body = letter_body(**fields) if body is None else body
        return self.client.post("/api/v2/messagetocitizen", json=body, headers={"Authorization": f"Basic {key}"},
                                buffered=True)

    def sent(self, **fields) -> dict:
        response = self.letter(**fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def document(self, document_id, *, key=KEY):
        return self.client.get(f"/api/ExternalDocument/{document_id}", headers={"Authorization": f"Basic {key}"})

    # --- control ----------------------------------------------------------------------
    def patient(self, **body) -> dict:
        response = self.client.post("/_sim/patients", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def orders(self, **query) -> list[dict]:
        return self.client.get("/_sim/orders", query_string=query).get_json()

    def answer(self, order_id, body=None):
        return self.client.post(f"/_sim/orders/{order_id}/answer", json=body)

    def deliveries(self, **query) -> list[dict]:
        return self.client.get("/_sim/deliveries", query_string=query).get_json()

    # --- time -------------------------------------------------------------------------
    def settle(self) -> int:
        return self.timeline.settle()

    def advance(self, **delta):
        return self.timeline.advance(timedelta(**delta))

    # --- what went out ----------------------------------------------------------------
    def bodies(self, order_id=None, status=None) -> list[dict]:
        return [e.request_body for e in self.transport.sent if "formOrderId" in e.request_body
                and (order_id is None or e.request_body["formOrderId"] == order_id)
                and (status is None or e.request_body["formOrderStatus"] == status)]

    def message_bodies(self, message_id=None) -> list[dict]:
        return [e.request_body for e in self.transport.sent if "messageToCitizenId" in e.request_body
                and (message_id is None or e.request_body["messageToCitizenId"] == message_id)]


class Ids:
    """Constants the tests share (conftest modules are not imported by tests)."""

    RAND_12 = RAND_12
    PAPER_FORM = PAPER_FORM
    SIGNED_FORM = SIGNED_FORM
    UNPUBLISHED_FORM = UNPUBLISHED_FORM
    GUIDE_PATIENT = GUIDE_PATIENT
    TEST_PERSON = TEST_PERSON
    KEY = KEY
    RESEARCH_KEY = RESEARCH_KEY
    H_NUMBER = h_number()
    PDF = PDF


@pytest.fixture
def ids() -> type[Ids]:
    return Ids


@pytest.fixture
def make_sim():
    return EpromSim


@pytest.fixture
def sim() -> EpromSim:
    return EpromSim()


@pytest.fixture
def owned_sim() -> EpromSim:
    """A fake ePROM whose signed and paper forms are owned by "eprox" (patients may order them themselves)."""
    return EpromSim(forms=owned_catalog())


@pytest.fixture
def letter():
    return letter_body
