"""The Harness object in this process: what it builds, what it announces, and that it cleans up."""
from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest


from harness.client import HarnessClient  # noqa: E402
from harness.config import HarnessConfig, RegistrySpec  # noqa: E402
from harness.topology import Harness  # noqa: E402

pytestmark = pytest.mark.e2e


def port_is_free(url: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0


def test_it_builds_every_server_in_order_and_announces_them():
    with Harness(pump=False) as harness:
        assert list(harness.servers) == ["eprom", "proxy", "registry-a", "registry-b"]
        info = harness.info()
        assert info["eprom"] == {"url": harness.url("eprom"), "apiKey": "eprox-key"}
        assert harness.transcript.names == {harness.url(n): n for n in harness.servers}
        assert "RAND-12" in harness.transcript.form_names.values()
        state_dir = harness.state_dir
        assert state_dir.is_dir()
        urls = [harness.url(n) for n in harness.servers]
    assert not state_dir.exists(), "a temporary state directory must go with the harness"
    assert all(port_is_free(url) for url in urls)


def test_a_configured_state_dir_is_kept(tmp_path):
    config = HarnessConfig(state_dir=tmp_path / "state", registries=[RegistrySpec("solo", "solo-key")])
    with Harness(config, pump=False) as harness:
        assert [r["name"] for r in harness.info()["registries"]] == ["solo"]
    assert (tmp_path / "state").is_dir() and any((tmp_path / "state").iterdir())


def test_runs_on_a_kept_state_dir_never_reuse_eprom_ids_and_the_clock_goes_on(tmp_path):
    """The proxy keeps its orders in the state dir; the fake ePROM starts empty on every run. Its ids must not
    come round again (the proxy would have to refuse them: before, the first new order of a second run was a
    500), and the simulated clock goes on from where the last run stopped (the proxy's retries and lifetimes
    are in that time), while the first run on a state dir keeps the configured seed's ids and start."""
    config = HarnessConfig(state_dir=tmp_path / "state", seed=5)
    placed, started = [], []
    for _ in range(3):
        with Harness(config, pump=False) as harness:
            client = HarnessClient(harness.info())
            started.append(client.now())
            patient = client.add_patient(reachable=["Helsenorge"])["nationalId"]
            reply = client.order("registry-a", national_id=patient)
            assert reply["status"] == 200, reply
            client.settle()
            (eprom_order,) = client.eprom_orders(patient)
            placed.append((patient, eprom_order["id"]))
            assert client.statuses("registry-a", reply["body"]["id"]) == ["Ordered"]
            client.advance(days=40)
            client.close()
    assert len({eprom_id for _, eprom_id in placed}) == 3
    assert started == [config.start + timedelta(days=40 * run) for run in range(3)]
    assert json.loads((tmp_path / "state" / "harness-runs.json").read_text()) == {
        "runs": 3, "stoppedAt": (config.start + timedelta(days=120)).isoformat()}
    with Harness(HarnessConfig(seed=5), pump=False) as fresh:  # a temporary state: the configured seed
        client = HarnessClient(fresh.info())
        assert client.add_patient(reachable=["Helsenorge"])["nationalId"] == placed[0][0]
        assert client.now() == config.start
        client.close()


def test_a_failed_start_releases_every_port_and_the_state_dir(monkeypatch):
    import proxy.app

    def broken(config, runtime):
        raise RuntimeError("proxy refuses to build")

    monkeypatch.setattr(proxy.app, "create_app", broken)
    harness = Harness(pump=True)
    with pytest.raises(RuntimeError, match="proxy refuses to build"):
        harness.start()
    assert harness.servers == {}
    assert harness.state_dir is not None and not harness.state_dir.exists()
    harness.stop()  # twice is harmless
