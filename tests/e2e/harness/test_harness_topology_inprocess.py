"""The Harness object in this process: what it builds, what it announces, and that it cleans up."""
from __future__ import annotations

import socket

import pytest


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
