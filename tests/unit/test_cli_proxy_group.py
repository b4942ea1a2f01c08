"""`eprox-harness proxy ...` reaches the proxy's own command group (proxy/cli.py)."""
from harness.cli import main
from proxy.store import ProxyStore


def test_proxy_group_is_wired_into_eprox_harness(capsys):
    assert main(["proxy", "example-config"]) == 0
    assert "registries" in capsys.readouterr().out


def test_proxy_deliveries_lists_an_empty_outbox(tmp_path, capsys):
    database = tmp_path / "eprox.sqlite3"
    ProxyStore(database).close()
    assert main(["proxy", "deliveries", "--database", str(database)]) == 0
    assert "no deliveries" in capsys.readouterr().out
