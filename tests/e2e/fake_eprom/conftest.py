"""A fake ePROM on a real loopback port with two tiny receivers (the ordering systems' callback endpoints),
all on one simulated clock. Servers are bound first (URLs known), then apps are built, mounted, started."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from flask import Flask, jsonify, request

from fake_eprom.app import create_app
from fake_eprom.config import EpromConfig, OrderingSystem
from fake_eprom.forms import default_catalog
from service_kit.clock import SimClock
from service_kit.runtime import Runtime
from service_kit.server import LiveServer
from service_kit.timeline import Timeline

TIMEOUT = 10  # seconds: a hung server fails the test instead of hanging it
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
PAPER_FORM = "1279fd55-3f22-4a7a-b4c5-84b582f88c54"


class Receiver:
    """Records every PUT to /api/PromsFormOrder and /api/MessageToCitizen and answers from a fault script:
    "ok" ({"success": true}), "false" ({"success": false}) or an HTTP status. Then "ok" for ever."""

    def __init__(self, name: str):
        self.name = name
        self.server = LiveServer(name)
        self.received: list[dict] = []
        self.faults: list = []
        app = Flask(name)

        @app.put("/api/PromsFormOrder")
        @app.put("/api/MessageToCitizen")
        def callback():
            reply = self.faults.pop(0) if self.faults else "ok"
            self.received.append({"method": request.method, "path": request.path,
                                  "body": request.get_json(silent=True), "reply": reply})
            if reply == "ok":
                return jsonify({"success": True})
            if reply == "false":
                return jsonify({"success": False})
            return jsonify({"message": "receiver fault"}), reply

        self.app = app

    @property
    def url(self) -> str:
        return self.server.url

    def bodies(self, order_id: str | None = None) -> list[dict]:
        return [r["body"] for r in self.received if r["path"] == "/api/PromsFormOrder"
                and (order_id is None or r["body"]["formOrderId"] == order_id)]

    def message_bodies(self) -> list[dict]:
        return [r["body"] for r in self.received if r["path"] == "/api/MessageToCitizen"]


class Live:
    def __init__(self, *, pump: bool, status_delay=timedelta(0), population: str = "open"):
        self.clock = SimClock()
        self.timeline = Timeline(self.clock, pump=pump)
        self.exchanges = []
        self.eprom_server = LiveServer("eprom")
        self.a, self.b = Receiver("registry-a"), Receiver("registry-b")
        dead = LiveServer("gone")  # bound then closed: nobody answers there
        self.dead_url = dead.url
        dead.stop()
        # registry-a owns the signed form and registry-b the paper form: patients may order those themselves
        owners = {SIGNED_FORM: "registry-a", PAPER_FORM: "registry-b"}
        self.config = EpromConfig([
            OrderingSystem("registry-a", "key-a", self.a.url),
            OrderingSystem("registry-b", "key-b", self.b.url, channel_format="name", research=True),
            OrderingSystem("registry-gone", "key-gone", self.dead_url),
        ], status_delay=status_delay, population=population,
            forms=[replace(f, owner=owners.get(f.id)) for f in default_catalog()])
        runtime = Runtime(self.clock, self.timeline, seed=9, tap=self.exchanges.append, delivery_timeout=TIMEOUT)
        self.eprom_server.mount(create_app(self.config, runtime))
        for receiver in (self.a, self.b):
            receiver.server.mount(receiver.app)
        self.servers = [self.eprom_server, self.a.server, self.b.server]
        for server in self.servers:
            server.start()
        self.timeline.start()

    def close(self) -> None:
        self.timeline.stop()
        stoppers = [threading.Thread(target=server.stop) for server in self.servers]  # each waits out a poll
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    @property
    def url(self) -> str:
        return self.eprom_server.url

    def order(self, key: str = "key-a", **fields) -> requests.Response:
        body = {"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "nationalId": "26723916517",
                "expiryDate": "2025-01-20", **fields}
        return requests.post(f"{self.url}/api/v2/formorder", json=body, headers={"Authorization": f"Basic {key}"},
                             timeout=TIMEOUT)

    def ordered(self, key: str = "key-a", **fields) -> dict:
        response = self.order(key, **fields)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, **params):
        response = requests.get(f"{self.url}{path}", params=params, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body=None) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=TIMEOUT)

    def patient(self, **body) -> dict:
        response = self.post("/_sim/patients", body)
        assert response.status_code == 201, response.text
        return response.json()

    def send(self, path: str, body=None, key: str | None = "key-a", data: bytes | None = None) -> requests.Response:
        """POST to a protocol endpoint with the key (None: no Authorization header), as JSON or raw bytes."""
        headers = {} if key is None else {"Authorization": f"Basic {key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
            return requests.post(f"{self.url}{path}", data=data, headers=headers, timeout=TIMEOUT * 6)
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=TIMEOUT * 6)

    def document(self, document_id: str, key: str = "key-a") -> requests.Response:
        return requests.get(f"{self.url}/api/ExternalDocument/{document_id}",
                            headers={"Authorization": f"Basic {key}"}, timeout=TIMEOUT)


@pytest.fixture
def live():
    world = Live(pump=False)
    yield world
    world.close()


@pytest.fixture
def live_strict():
    world = Live(pump=False, population="strict")
    yield world
    world.close()


@pytest.fixture
def live_pumped():
    world = Live(pump=True)
    yield world
    world.close()
