"""Trust (issue 4, item 5): every error path a registry can reach, with an ePROM stub that answers what a
test scripts (including 400s that echo national ids): no error names another registry, echoes a national
id or shows ePROX's key; a registry never sees ePROM's ids or anything of an order it is not linked to;
the production app serves no control API."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from eprom_protocol.national_id import mask_in_text
from proxy.app import create_app
from proxy.config import ProxyConfig, RegistryAccount
from service_kit.clock import SimClock
from service_kit.runtime import Runtime
from service_kit.server import LiveServer
from service_kit.timeline import Timeline

from proxy_world import RAND_12, key_of, order_body

PATIENT = "26723916517"  # synthetic (month + 65)
OTHER_FORM = "71dda605-8068-4905-9939-f2c27ba58386"
EPROX_KEY = "the-proxys-own-secret"


class ScriptedEprom:
    """POST /api/v2/formorder answers the next scripted (status, body); then a normal order."""

    def __init__(self):
        self.script: list[tuple[int, object]] = []
        self.received: list[dict] = []
        app = Flask("scripted-eprom")

        @app.post("/api/v2/formorder")
        def order():
            self.received.append({"auth": request.headers.get("Authorization"), "body": request.get_json()})
            if self.script:
                status, body = self.script.pop(0)
                if isinstance(body, str):
                    return body, status, {"Content-Type": "text/html"}
                return jsonify(body), status
            return jsonify({**request.get_json(), "id": "aaaaaaaa-1111-4222-8333-444444444444",
                            "notificationChannel": 1, "loginUrl": "https://example.test"})

        self.server = LiveServer("scripted-eprom")
        self.server.mount(app)


@pytest.fixture
def scripted(tmp_path: Path):
    eprom = ScriptedEprom()
    eprom.server.start()
    clock = SimClock()
    timeline = Timeline(clock, pump=False)
    config = ProxyConfig(eprom_url=eprom.server.url, eprom_api_key=EPROX_KEY, state_dir=tmp_path,
                         registries=[RegistryAccount("registry-a", key_of("registry-a"), "http://127.0.0.1:9"),
                                     RegistryAccount("registry-b", key_of("registry-b"), "http://127.0.0.1:9",
                                                     allowed_forms=frozenset({OTHER_FORM}))])
    app = create_app(config, Runtime(clock, timeline, sim=True))
    client = app.test_client()
    try:
        yield eprom, client, app
    finally:
        app.extensions["eprox"].close()
        eprom.server.stop()


def post(client, registry, body, key=None):
    return client.post("/api/v2/formorder", json=body,
                       headers={"Authorization": f"Basic {key or key_of(registry)}"})


def assert_clean(reply, *, others=("registry-b", key_of("registry-b"), EPROX_KEY)):
    text = reply.get_data(as_text=True)
    assert mask_in_text(text) == text, f"a national id in {text}"
    for word in others:
        assert word not in text, f"{word!r} in {text}"


def test_eprom_errors_that_echo_a_national_id_reach_the_registry_masked(scripted):
    eprom, client, _ = scripted
    eprom.script = [(400, {"message": f"nationalId: {PATIENT} is not known to the national register"}),
                    (400, {"message": f"onBehalfOfNationalId '{PATIENT}' and nationalId '26670271527' differ"})]
    for _ in range(2):
        reply = post(client, "registry-a", order_body(PATIENT))
        assert reply.status_code == 400
        assert_clean(reply)
        assert "267239*****" in reply.json["message"] or "266702*****" in reply.json["message"]


def test_eprom_refusing_the_proxys_key_is_a_502_that_shows_no_key(scripted):
    eprom, client, _ = scripted
    eprom.script = [(400, {"message": f"apiKey '{EPROX_KEY}' doesn't exists"}), (401, {"message": "Unauthorized"})]
    for _ in range(2):
        reply = post(client, "registry-a", order_body(PATIENT))
        assert reply.status_code == 502
        assert_clean(reply)
    assert all(r["auth"] == f"Basic {EPROX_KEY}" for r in eprom.received), "orders go with ePROX's key"


@pytest.mark.parametrize("status, body", [(500, "<html>Internal Server Error</html>"), (503, {"no": "message"}),
                                          (200, "<html>not json</html>"), (500, {"message": f"crash for {PATIENT}"})])
def test_anything_else_from_eprom_is_a_502_with_a_clean_message(scripted, status, body):
    eprom, client, _ = scripted
    eprom.script = [(status, body)]
    reply = post(client, "registry-a", order_body(PATIENT))
    assert reply.status_code == 502 and reply.json["message"]
    assert_clean(reply)


def test_an_unreachable_eprom_is_a_502_that_names_no_address(tmp_path):
    clock = SimClock()
    config = ProxyConfig(eprom_url="http://127.0.0.1:9", eprom_api_key=EPROX_KEY, state_dir=tmp_path,
                         registries=[RegistryAccount("registry-a", key_of("registry-a"), "http://127.0.0.1:9")])
    app = create_app(config, Runtime(clock, Timeline(clock, pump=False), sim=True))
    try:
        reply = post(app.test_client(), "registry-a", order_body(PATIENT))
        assert reply.status_code == 502 and reply.json["message"].startswith("ePROM did not answer")
        assert "127.0.0.1" not in reply.json["message"]
    finally:
        app.extensions["eprox"].close()


def test_the_proxys_own_errors_echo_no_national_id_and_name_no_other_registry(scripted):
    _, client, _ = scripted
    bad = [
        order_body("26723916518"),  # check digits wrong
        order_body("2672391651"),  # ten digits
        order_body(PATIENT, metadata=json.dumps({"CREATE_NEW_ORDER": PATIENT})),
        order_body(PATIENT, metadata=json.dumps({"RELEVANT_DATE": PATIENT})),
        order_body(PATIENT, onBehalfOfNationalId="26670271528"),
        order_body(PATIENT, expiryDate=PATIENT),
        {"formId": RAND_12, "nationalId": int(PATIENT), "expiryDate": "2030-01-01"},
    ]
    for body in bad:
        reply = post(client, "registry-a", body)
        assert reply.status_code == 400, (body, reply.json)
        assert_clean(reply)
    unknown = post(client, "registry-a", order_body(PATIENT), key=PATIENT)
    assert unknown.status_code == 400 and unknown.json == {"message": "apiKey '267239*****' doesn't exists"}


@pytest.mark.parametrize("written", ["267239 16517", "267239-16517", "267239.16517"])
def test_a_national_id_written_with_a_separator_is_masked_in_every_error_too(scripted, written):
    """People write national ids as 6 + 5 digits with a space or a dash; before, only 11 digits in a row were
    masked, and such an id came back in clear from any field a message quotes."""
    _, client, _ = scripted
    masked = written[:7] + "*****"
    for body in (order_body(PATIENT, expiryDate=written), order_body(PATIENT, formId=written),
                 order_body(PATIENT, distributionRule=written),
                 order_body(PATIENT, metadata=json.dumps({"RELEVANT_DATE": written}))):
        reply = post(client, "registry-a", body)
        assert reply.status_code == 400 and masked in reply.json["message"], reply.json
        assert_clean(reply)
    unknown = post(client, "registry-a", order_body(PATIENT), key=written)
    assert unknown.status_code == 400 and unknown.json == {"message": f"apiKey '{masked}' doesn't exists"}
    document = client.get(f"/api/ExternalDocument/{written}", headers={"Authorization": f"Basic {key_of('registry-a')}"})
    assert document.status_code == 404 and masked in document.json["message"]
    assert_clean(document)


def test_a_form_a_registry_may_not_order_looks_like_a_form_that_does_not_exist(scripted):
    eprom, client, _ = scripted
    reply = post(client, "registry-b", order_body(PATIENT, formId=RAND_12))
    assert reply.status_code == 400 and reply.json == {"message": f"No form with id='{RAND_12}' exists"}
    assert_clean(reply, others=("registry-a", key_of("registry-a"), EPROX_KEY))
    assert eprom.received == [], "a refused order never reaches ePROM"


def test_the_production_app_serves_no_control_api(tmp_path):
    from service_kit.clock import SystemClock
    clock = SystemClock()
    config = ProxyConfig(eprom_url="http://127.0.0.1:9", eprom_api_key=EPROX_KEY, state_dir=tmp_path,
                         registries=[RegistryAccount("registry-a", key_of("registry-a"), "http://127.0.0.1:9")])
    app = create_app(config, Runtime(clock, Timeline(clock, pump=False), seed=None, sim=False))
    try:
        client = app.test_client()
        for path in ("/_sim/deliveries", "/_sim/clock", "/_sim/settle"):
            assert client.get(path).status_code in (404, 405)
        assert client.post("/_sim/clock/advance", json={"days": 1}).status_code == 404
        assert client.get("/healthz").json == {"status": "ok"}
    finally:
        app.extensions["eprox"].close()


def test_registries_never_see_eproms_ids_nor_each_others(make_world):
    world = make_world(registries=["registry-a", "registry-b", "registry-c"])
    patient = world.add_patient()
    replies = {name: world.order(name, patient) for name in ("registry-a", "registry-b", "registry-c")}
    world.settle()
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"q1": 5})
    world.settle()
    own = {name: reply["id"] for name, reply in replies.items()}
    assert len(set(own.values())) == 3
    for name, recorder in world.recorders.items():
        seen = json.dumps([c.body for c in recorder.snapshot()]) + json.dumps(replies[name])
        assert eprom_order["id"] not in seen
        for other, other_id in own.items():
            if other != name:
                assert other_id not in seen and key_of(other) not in seen
        assert {c.body["formOrderId"] for c in recorder.snapshot()} == {own[name]}
