"""`eprox-harness up --ready-file` as a real process: the ready file, one clock for all servers, callbacks
flowing with the pump on, and a clean exit on SIGTERM and SIGINT."""
from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest

from harness.pytest_plugin import HarnessClient, HarnessProcess

pytestmark = pytest.mark.e2e

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PATIENT = "26670271527"  # the guide's synthetic test person


def test_the_ready_file_has_exactly_the_documented_shape(harness_process):
    info = harness_process
    assert set(info) == {"eprom", "proxy", "registries", "forms"}
    assert set(info["eprom"]) == {"url", "apiKey"} and info["eprom"]["apiKey"] == "eprox-key"
    assert set(info["proxy"]) == {"url"}
    assert [r["name"] for r in info["registries"]] == ["registry-a", "registry-b"]
    assert [r["apiKey"] for r in info["registries"]] == ["registry-a-key", "registry-b-key"]
    assert all(set(r) == {"name", "url", "apiKey"} for r in info["registries"])
    urls = [info["eprom"]["url"], info["proxy"]["url"], *(r["url"] for r in info["registries"])]
    assert all(url.startswith("http://127.0.0.1:") for url in urls)
    assert len(set(urls)) == len(urls)
    assert all(set(f) == {"id", "name", "published", "paperEnabled", "mustBeSigned"} for f in info["forms"])
    forms = {f["id"]: f for f in info["forms"]}
    assert forms[RAND_12]["published"] is True
    assert any(not f["published"] for f in info["forms"])
    assert any(f["paperEnabled"] for f in info["forms"])
    assert any(f["mustBeSigned"] for f in info["forms"])


def test_every_server_answers_the_same_simulated_clock_and_moves_with_it(harness_client):
    urls = harness_client.urls()
    before = {name: harness_client.now(name) for name in urls}
    assert len(set(before.values())) == 1, before
    harness_client._call("POST", f"{urls['registry-b']}/_sim/clock/advance", {"hours": 5})  # any server moves it
    after = {name: harness_client.now(name) for name in urls}
    assert set(after.values()) == {next(iter(before.values())) + timedelta(hours=5)}, after


def test_with_the_pump_on_a_registry_gets_its_status_callback_without_moving_the_clock(harness_client):
    reply = harness_client.order("registry-a", national_id=PATIENT)
    assert reply["status"] == 200, reply
    order_id = reply["body"]["id"]
    assert harness_client.settle() == 0
    assert harness_client.statuses("registry-a", order_id) == ["Ordered"]
    [callback] = harness_client.inbox("registry-a", order_id)
    assert callback["apiKeyMatches"] and callback["acknowledged"] and callback["conforms"]
    assert harness_client.inbox("registry-b") == []


def test_a_registry_fault_is_seen_by_the_proxy_and_the_callback_comes_again(harness_client):
    harness_client.faults("registry-a", fail_next=1)
    reply = harness_client.order("registry-a", national_id=PATIENT)
    order_id = reply["body"]["id"]
    harness_client.settle()
    first = harness_client.inbox("registry-a", order_id)
    assert first and first[0]["acknowledged"] is False and first[0]["fault"] == "failNext"
    assert harness_client.faults("registry-a")["failNext"] == 0
    harness_client.advance(days=1)  # long enough for any retry schedule to come round at least once
    statuses = harness_client.statuses("registry-a", order_id)
    assert statuses[-1] == "Ordered" and len(statuses) >= 2
    assert harness_client.inbox("registry-a", order_id)[-1]["acknowledged"] is True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_it_cleanly_with_exit_0_and_removes_the_ready_file(tmp_path, sig):
    process = HarnessProcess(tmp_path / "run")
    info = process.start()
    assert HarnessClient(info).settle() == 0
    assert process.stop(sig) == 0, process.output()
    assert not process.ready_file.exists()
    assert "eprox-harness: stopped" in process.stdout()
    assert "Traceback" not in process.stderr(), process.stderr()


def test_it_prints_the_urls_it_serves(tmp_path):
    process = HarnessProcess(tmp_path / "run")
    info = process.start()
    try:
        out = process.stdout()
        for url in [info["eprom"]["url"], info["proxy"]["url"], *(r["url"] for r in info["registries"])]:
            assert url in out
    finally:
        assert process.stop() == 0


def test_a_configuration_file_shapes_the_topology(tmp_path):
    config = tmp_path / "three.yaml"
    config.write_text("seed: 4\nregistries:\n  - {name: nkr}\n  - {name: hofte, apiKey: h-key}\n  - {name: kne}\n",
                      encoding="utf-8")
    process = HarnessProcess(tmp_path / "run", config=config)
    info = process.start()
    try:
        assert [(r["name"], r["apiKey"]) for r in info["registries"]] == \
            [("nkr", "nkr-key"), ("hofte", "h-key"), ("kne", "kne-key")]
        client = HarnessClient(info)
        reply = client.order("kne", national_id=PATIENT)
        client.settle()
        assert client.statuses("kne", reply["body"]["id"]) == ["Ordered"]
    finally:
        assert process.stop() == 0


def test_the_ready_file_is_complete_json_whenever_it_exists(harness_process, tmp_path):
    # The fixture read it as soon as it appeared; written by rename, it is never half a file.
    assert harness_process["registries"] and harness_process["forms"]
    leftovers = [p.name for p in (tmp_path / "eprox-harness").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_signal_while_a_callback_is_in_flight_stops_it_at_once_and_the_callback_goes_on_the_next_run(tmp_path):
    """The proxy's state folder was deleted while a delivery to a slow registry still ran: two tracebacks
    (FileNotFoundError from the delivery's write) at every such exit. Then the exit waited for the delivery to
    time out: 15 s (the proxy's delivery timeout) before `up` ended. Now the delivery is cut short, a failed
    attempt, and a kept state folder sends it again on the next run."""
    config = tmp_path / "kept.yaml"
    config.write_text("proxy: {stateDir: state}\n", encoding="utf-8")
    process = HarnessProcess(tmp_path / "run", config=config)
    client = HarnessClient(process.start())
    client.faults("registry-a", delay_seconds=300)
    order_id = client.order("registry-a", national_id=PATIENT)["body"]["id"]
    deadline = time.monotonic() + 30
    while not client.inbox("registry-a", order_id) and time.monotonic() < deadline:
        time.sleep(0.05)  # sleep-ok: the callback arrives on the process's own pump; nothing to settle on here
    (slow,) = client.inbox("registry-a", order_id)
    assert process.stop(signal.SIGTERM, timeout=10) == 0, process.output()  # 10 < the 15 s delivery timeout
    assert not process.ready_file.exists()
    assert "Traceback" not in process.stderr() and "ERROR" not in process.stderr(), process.stderr()
    assert "cut short: the sender is stopping" in process.stderr()

    again = HarnessProcess(tmp_path / "run-2", config=config)
    client = HarnessClient(again.start())
    try:
        client.advance(hours=1)  # the failed attempt's retry comes due
        client.settle()
        (resent,) = client.inbox("registry-a", order_id)
        assert resent["acknowledged"] is True and resent["body"]["formOrderStatus"] in ("Ordered", 1)
        assert resent["headers"]["X-Delivery-Id"] == slow["headers"]["X-Delivery-Id"]
    finally:
        assert again.stop() == 0, again.output()
