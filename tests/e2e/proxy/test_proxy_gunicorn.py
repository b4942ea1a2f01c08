"""A production-style run (issue 4, item 8): the proxy under gunicorn with three worker processes sharing
one database, configured by a YAML file named in EPROX_CONFIG, on the system clock, in front of a fake
ePROM. An order, a link, ePROM's callbacks and the fan-out of the answer to both registries; twelve
registries ordering at once across the workers make one ePROM order; a clean exit on SIGTERM; and the
whole log, gunicorn's access log included, holds no national id and no answer. An unusable configuration
stops gunicorn before it forks a worker, with one message."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests
import yaml

from eprom_protocol.national_id import mask
from proxy_world import REPO, eventually, fire, free_port, key_of, place

pytestmark = pytest.mark.e2e

REGISTRIES = ["reg-a", "reg-b"] + [f"reg-{i:02d}" for i in range(10)]
MARKER = "free-text-answer-7c1e"


def test_the_proxy_under_gunicorn_with_three_workers(tmp_path, eprom_side_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    side = eprom_side_factory(url, REGISTRIES)
    config = tmp_path / "eprox.yaml"
    config.write_text(yaml.safe_dump(side.proxy_config("state/eprox.sqlite3")), encoding="utf-8")
    log_path = tmp_path / "gunicorn.log"
    env = {**os.environ, "EPROX_CONFIG": str(config), "EPROX_WORKERS": "3", "PYTHONUNBUFFERED": "1",
           "EPROX_ACCESS_LOG": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:proxy.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
             "proxy.wsgi:app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output() -> str:
        return log_path.read_text(errors="replace")

    def serving() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).json() == {"status": "ok"}
        except (requests.RequestException, ValueError):
            return proc.poll() is not None  # stop looking: it died

    try:
        assert eventually(serving, timeout=60) and proc.poll() is None, output()
        assert (tmp_path / "state" / "eprox.sqlite3").exists(), "the database path is relative to the file"

        patient = side.add_patient(reachable=["Helsenorge"], answer=None)
        a = place(url, "reg-a", patient)
        assert a.status_code == 200, a.text
        a_id = a.json()["id"]
        assert side.recorders["reg-a"].wait_for(lambda r: r.statuses(a_id) == ["Ordered"]), output()
        b_id = place(url, "reg-b", patient).json()["id"]
        assert side.recorders["reg-b"].wait_for(lambda r: r.statuses(b_id) == ["Ordered"]), output()
        (eprom_order,) = side.orders(patient)
        # a registry chooses its paths: a national id in one reaches the access log masked
        document = requests.get(f"{url}/api/ExternalDocument/{patient}", timeout=10,
                                headers={"Authorization": f"Basic {key_of('reg-a')}"})
        assert document.status_code == 404
        # ... and in a query string too, where requests writes a space as '+'
        spaced = f"{patient[:6]} {patient[6:]}"
        assert requests.get(f"{url}/healthz", params={"nationalId": spaced}, timeout=10).status_code == 200
        side.answer(eprom_order["id"], {"comment": MARKER})
        for name, own in (("reg-a", a_id), ("reg-b", b_id)):
            recorder = side.recorders[name]
            assert recorder.wait_for(lambda r: r.statuses(own) == ["Ordered", "Completed"]), output()
            answer = recorder.snapshot()[-1].body
            assert MARKER in answer["formData"] and answer["apiKey"] == recorder.api_key

        # many registries at once, spread over the workers by the kernel: still one ePROM order
        crowd = side.add_patient(reachable=["Helsenorge"], answer=None)
        replies = fire([lambda s, r=r: place(url, r, crowd, s) for r in REGISTRIES])
        assert [r.status_code for r in replies] == [200] * len(REGISTRIES)
        assert len(side.orders(crowd)) == 1
        for registry, reply in zip(REGISTRIES, replies):
            own = reply.json()["id"]
            assert side.recorders[registry].wait_for(lambda r, own=own: r.statuses(own) == ["Ordered"]), output()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, output()
    text = output()
    assert "Booting worker" in text and text.count("ePROX proxy started") == 3, text
    assert f"GET /api/ExternalDocument/{mask(patient)} HTTP/1.1\" 404" in text, text
    assert f"GET /healthz?nationalId={patient[:6]}+***** HTTP/1.1\" 200" in text, text
    assert patient not in text and crowd not in text, "a national id in the log"
    assert spaced.replace(" ", "+") not in text, "a national id in the log"
    assert MARKER not in text and "formData" not in text, "answer data in the log"


def test_gunicorn_with_an_unusable_configuration_stops_before_forking_with_one_message(tmp_path):
    """Before, every worker printed a traceback as it failed to boot (eight in all, each worker's exit hook
    building the proxy a second time), and gunicorn exited 3."""
    config = tmp_path / "eprox.yaml"
    config.write_text(yaml.safe_dump({"eprom": {"url": "http://127.0.0.1:9", "apiKeyEnv": "EPROX_EPROM_API_KEY"},
                                      "database": "state/eprox.sqlite3",
                                      "registries": [{"name": "registry-a", "apiKeyEnv": "UNSET_REGISTRY_KEY",
                                                      "callbackBaseUrl": "http://127.0.0.1:9"}]}))
    env = {**os.environ, "EPROX_CONFIG": str(config), "EPROX_EPROM_API_KEY": "eprox-key"}
    env.pop("UNSET_REGISTRY_KEY", None)
    run = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:proxy.gunicorn_conf", "--bind",
                          f"127.0.0.1:{free_port()}", "proxy.wsgi:app"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert (f"proxy: the configuration is not usable:\n{config}: registries.0 (registry-a): apiKeyEnv names "
            f"UNSET_REGISTRY_KEY, which is not set\n") in run.stderr
    assert "Traceback" not in run.stderr and "Booting worker" not in run.stderr, run.stderr
    assert not (tmp_path / "state").exists()
