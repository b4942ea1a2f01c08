"""A registry team points the proxy at its own callback endpoint: a registry with a `callbackUrl` gets no fake
registry server, the ready file lists that URL, and the proxy delivers every update there. The team's
system is played by a small receiver on a real loopback port; the harness is a real `eprox-harness up`."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
import yaml
from flask import Flask, jsonify, request

from harness.pytest_plugin import HarnessClient, HarnessProcess
from service_kit.server import LiveServer

pytestmark = pytest.mark.e2e

PATIENT = "26670271527"  # the guide's synthetic test person
OTHER_PATIENT = "14685816505"  # synthetic (month+65), born 1958-03-14
TIMEOUT = 30


class Receiver:
    """The registry team's own system: records every callback and answers {"success": true}."""

    def __init__(self, prefix: str = ""):
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self.server = LiveServer("own-registry")
        app = Flask("own-registry")

        @app.put(f"{prefix}/api/PromsFormOrder")
        @app.put(f"{prefix}/api/MessageToCitizen")
        def callback():
            with self._lock:
                self.received.append({"path": request.path, "body": request.get_json(silent=True)})
            return jsonify({"success": True})

        self.server.mount(app)
        self.server.start()
        self.base = self.server.url + prefix

    def bodies(self) -> list[dict]:
        with self._lock:
            return [r["body"] for r in self.received]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def receiver():
    own = Receiver(prefix="/hooks/eprom")
    yield own
    own.stop()


def start(tmp_path: Path, *args: str) -> HarnessProcess:
    process = HarnessProcess(tmp_path / "run", extra_args=args)
    process.start()
    return process


def stop(process: HarnessProcess) -> None:
    assert process.stop() == 0, process.output()


def order(proxy_url: str, api_key: str, national_id: str, expiry: str = "2025-03-01") -> dict:
    reply = requests.post(f"{proxy_url}/api/v2/formorder", headers={"Authorization": f"Basic {api_key}"},
                          json={"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "nationalId": national_id,
                                "expiryDate": expiry}, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_proxy_calls_the_registrys_own_endpoint_and_starts_no_fake_for_it(tmp_path, receiver):
    config = tmp_path / "topology.yaml"
    config.write_text(yaml.safe_dump({"registries": [
        {"name": "own-registry", "apiKey": "own-key", "callbackUrl": receiver.base},
        {"name": "registry-b"}]}), encoding="utf-8")
    process = start(tmp_path, "--config", str(config))
    try:
        info = process.info
        assert set(info) == {"eprom", "proxy", "registries", "forms"}  # the SPEC keys, nothing else
        own, fake = info["registries"]
        assert own == {"name": "own-registry", "url": receiver.base, "apiKey": "own-key"}
        assert fake["name"] == "registry-b" and fake["url"] != receiver.base
        assert "own-registry" not in process.stdout().split("ready file")[0].split("proxy")[0]
        client = HarnessClient(info)

        mine = order(info["proxy"]["url"], "own-key", PATIENT)["id"]
        client.settle()
        [status] = receiver.received
        assert status["path"] == "/hooks/eprom/api/PromsFormOrder"
        assert status["body"]["apiKey"] == "own-key"
        assert status["body"]["formOrderId"] == mine
        assert status["body"]["formOrderStatus"] == "Ordered"

        # the fake registry links to the same ePROM order; the answer reaches both, each under its own id
        theirs = client.order("registry-b", national_id=PATIENT)["body"]["id"]
        client.settle()
        [eprom_order] = client.eprom_orders(national_id=PATIENT)
        client.answer(eprom_order["id"])
        client.settle()
        assert [b["formOrderStatus"] for b in receiver.bodies()] == ["Ordered", "Completed"]
        assert {b["formOrderId"] for b in receiver.bodies()} == {mine}
        assert client.statuses("registry-b", theirs) == ["Ordered", "Completed"]
        assert all(b["apiKey"] == "own-key" for b in receiver.bodies())
        client.close()
    finally:
        stop(process)


def test_a_scenario_orders_in_the_name_of_a_registry_with_its_own_endpoint(tmp_path, receiver):
    """Scripted orders of such a registry go straight to the proxy with its key; the callbacks go to the team."""
    scenario = tmp_path / "own.yaml"
    scenario.write_text(yaml.safe_dump({
        "topology": {"registries": [{"name": "own-registry", "apiKey": "own-key", "callbackUrl": receiver.base}]},
        "patients": [{"ref": "kari", "nationalId": OTHER_PATIENT, "behaviour": "answers", "answer": {"after": "P2D"}}],
        "script": [{"at": "P0D", "registry": "own-registry", "patient": "kari", "form": "RAND-12"},
                   {"at": "P1D", "registry": "own-registry", "patient": "kari", "form": "RAND-12"}],
    }), encoding="utf-8")
    process = start(tmp_path, "--scenario", str(scenario), "--transcript")
    try:
        info = process.info
        assert info["patients"] == [{"ref": "kari", "nationalId": OTHER_PATIENT}]
        assert info["registries"] == [{"name": "own-registry", "url": receiver.base, "apiKey": "own-key"}]
        # the order due at the start was placed (and its status delivered) before the ready file was written
        assert [b["formOrderStatus"] for b in receiver.bodies()] == ["Ordered"]
        client = HarnessClient(info)
        client.advance(days=3)
        client.settle()
        statuses = [(b["formOrderId"], b["formOrderStatus"]) for b in receiver.bodies()]
        first, second = statuses[0][0], statuses[1][0]
        assert first != second  # a second order from the same registry is a new ePROM order (SPEC §3)
        # the patient answers each order two days after it reached them: the second one on day 3
        assert statuses == [(first, "Ordered"), (second, "Ordered"), (first, "Completed"), (second, "Completed")]
        assert len(client.eprom_orders(national_id=OTHER_PATIENT)) == 2
        client.close()
    finally:
        stop(process)
    assert "own-registry → proxy" in process.stdout()  # the transcript names the team's registry
    assert "proxy → own-registry" in process.stdout()


def test_a_callback_url_that_is_not_a_url_is_refused_before_anything_starts(tmp_path):
    config = tmp_path / "topology.yaml"
    config.write_text(json.dumps({"registries": [{"name": "own", "callbackUrl": "localhost:8080"}]}), encoding="utf-8")
    process = HarnessProcess(tmp_path / "run", config=config)
    with pytest.raises(Exception) as caught:
        process.start()
    assert "exited with 2" in str(caught.value)
    assert (f"{config}: registries[0].callbackUrl: 'localhost:8080' is not an http:// or https:// base URL"
            in process.stderr())
