"""The fake registry places orders at its target: a stub target on a real loopback port."""
from __future__ import annotations

import pytest
from flask import Flask, jsonify, request

from fake_registry.app import create_app
from fake_registry.config import RegistryConfig
from service_kit.clock import SimClock
from service_kit.runtime import Runtime
from service_kit.server import LiveServer
from service_kit.timeline import Timeline

pytestmark = pytest.mark.e2e  # the stub target listens on a loopback port

KEY = "registry-a-key"
NEW_ID = "5b1d2c3e-0000-4000-8000-00000000000a"
ORDER = {"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "nationalId": "26723916517",
         "expiryDate": "2025-02-01"}


@pytest.fixture
def target():
    """A stand-in for ePROX: answers 200 with an id, or 400 when the form is unknown; remembers requests."""
    seen = []
    app = Flask("stub-target")

    @app.post("/api/v2/formorder")
    def formorder():
        seen.append({"authorization": request.headers.get("Authorization"), "body": request.get_json()})
        if request.get_json().get("formId") != ORDER["formId"]:
            return jsonify({"message": "No form with id='x' exists"}), 400
        return jsonify({**request.get_json(), "id": NEW_ID, "notificationChannel": 1})

    server = LiveServer("target")
    server.mount(app)
    server.start()
    server.seen = seen
    yield server
    server.stop()


def make_client(target_url: str, exchanges: list):
    clock = SimClock()
    runtime = Runtime(clock, Timeline(clock, pump=False), tap=exchanges.append)
    return create_app(RegistryConfig("registry-a", KEY, target_url), runtime).test_client()


def test_an_order_goes_to_the_target_with_the_registrys_key_and_the_reply_comes_back(target):
    exchanges = []
    client = make_client(target.url + "/", exchanges)  # a trailing slash in the URL is harmless
    reply = client.post("/_sim/orders", json=ORDER)
    assert reply.status_code == 200
    assert reply.get_json() == {"status": 200, "body": {**ORDER, "id": NEW_ID, "notificationChannel": 1}}
    assert target.seen == [{"authorization": f"Basic {KEY}", "body": ORDER}]
    [exchange] = exchanges
    assert (exchange.sender, exchange.method, exchange.url) == ("registry-a", "POST", f"{target.url}/api/v2/formorder")
    [placed] = client.get("/_sim/orders").get_json()
    assert placed["request"] == ORDER
    assert (placed["status"], placed["body"]["id"], placed["error"]) == (200, NEW_ID, None)


def test_a_refusal_by_the_target_is_reported_as_data_with_status_200(target):
    client = make_client(target.url, [])
    reply = client.post("/_sim/orders", json={**ORDER, "formId": "00000000-0000-0000-0000-0000000000ff"})
    assert reply.status_code == 200
    assert reply.get_json() == {"status": 400, "body": {"message": "No form with id='x' exists"}}


def test_an_unreachable_target_gives_502_and_is_listed_with_the_error():
    probe = LiveServer("gone")
    url = probe.url
    probe.stop()  # bound and released: nothing listens there now
    client = make_client(url, [])
    reply = client.post("/_sim/orders", json=ORDER)
    assert reply.status_code == 502
    assert "did not answer" in reply.get_json()["message"]
    [placed] = client.get("/_sim/orders").get_json()
    assert placed["status"] is None and placed["error"]


@pytest.mark.parametrize("data", [b"[]", b"{nope", b""])
def test_an_order_body_must_be_a_json_object(target, data):
    client = make_client(target.url, [])
    reply = client.post("/_sim/orders", data=data, content_type="application/json")
    assert reply.status_code == 400
    assert "message" in reply.get_json()
    assert target.seen == []
