"""The operator's commands on a proxy's database (`python -m proxy ...`, `eprox-harness proxy ...`): list
the outbox by state and registry, replay dead deliveries, find the database from the options, a config
file or the environment, and check a configuration."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import yaml

from proxy.cli import main, register

from proxy_world import REPO


@pytest.fixture
def outbox(world):
    """registry-a: one dead delivery; registry-b: one failing (pending after a failed attempt) and one done."""
    world.recorders["registry-a"].mode = "fail"
    world.order("registry-a", world.add_patient())
    world.settle()
    world.advance(days=4)
    world.recorders["registry-b"].mode = "fail"
    world.order("registry-b", world.add_patient())
    world.settle()
    world.recorders["registry-b"].mode = "ok"
    world.order("registry-b", world.add_patient())
    world.settle()
    return world


def listed(capsys, *args) -> list[dict]:
    assert main(["deliveries", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_deliveries_by_state_and_registry(outbox, capsys):
    where = ["--state-dir", str(outbox.state_dir)]
    assert [(d["registry"], d["state"]) for d in listed(capsys, *where)] == [("registry-a", "dead"),
                                                                           ("registry-b", "pending")]
    assert [d["registry"] for d in listed(capsys, *where, "--state", "dead")] == ["registry-a"]
    assert [d["registry"] for d in listed(capsys, *where, "--state", "failed")] == ["registry-b"]
    assert [d["registry"] for d in listed(capsys, *where, "--state", "pending")] == ["registry-b"]
    assert [d["registry"] for d in listed(capsys, *where, "--state", "done")] == ["registry-b"]
    assert listed(capsys, *where, "--registry", "registry-a", "--state", "pending") == []
    dead = listed(capsys, *where, "--state", "dead")[0]
    assert dead["attempts"] > 50 and dead["lastError"] == "HTTP 500" and dead["status"] == "Ordered"

    assert main(["deliveries", *where]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "REGISTRY", "STATUS", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "(UTC)",
                                "LAST", "ERROR"]
    assert [line.split()[3] for line in table[1:]] == ["dead", "failed"]


def test_replay_by_id_and_what_it_refuses(outbox, capsys):
    where = ["--state-dir", str(outbox.state_dir)]
    dead = listed(capsys, *where, "--state", "dead")[0]["id"]
    done = listed(capsys, *where, "--state", "done")[0]["id"]
    assert main(["replay", *where, "--id", done, "no-such-id"]) == 1
    err = capsys.readouterr().err
    assert f"{done}: is done, not dead" in err and "no-such-id: no such delivery" in err
    outbox.recorders["registry-a"].mode = "ok"
    assert main(["replay", *where, "--id", dead]) == 0
    assert "replaying 1 delivery(ies)" in capsys.readouterr().out
    outbox.settle()
    assert listed(capsys, *where, "--state", "dead") == []
    assert outbox.recorders["registry-a"].snapshot()[-1].delivery_id == dead
    assert outbox.recorders["registry-a"].snapshot()[-1].acknowledged


def test_the_database_from_a_config_file_or_the_environment(outbox, capsys, tmp_path, monkeypatch):
    database = outbox.config.database_path
    config = tmp_path / "conf" / "eprox.yaml"
    config.parent.mkdir()
    relative = "../" + str(database.relative_to(tmp_path))
    config.write_text(yaml.safe_dump({"database": relative, "eprom": {"url": "http://x", "apiKeyEnv": "UNSET"}}))
    monkeypatch.delenv("EPROX_DATABASE", raising=False)
    monkeypatch.delenv("EPROX_CONFIG", raising=False)
    assert len(listed(capsys, "--config", str(config))) == 2, "relative to the file; no secrets needed"
    monkeypatch.setenv("EPROX_CONFIG", str(config))
    assert len(listed(capsys)) == 2
    monkeypatch.delenv("EPROX_CONFIG")
    monkeypatch.setenv("EPROX_DATABASE", str(database))
    assert len(listed(capsys)) == 2
    assert len(listed(capsys, "--database", str(database))) == 2
    monkeypatch.delenv("EPROX_DATABASE")
    assert main(["deliveries"]) == 2 and "say which proxy" in capsys.readouterr().err
    assert main(["replay", "--database", str(tmp_path / "none.sqlite3"), "--all-dead"]) == 2
    assert "no proxy database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists(), "looking must not create a database"


def test_register_adds_a_proxy_group_to_another_cli(outbox, capsys):
    parser = argparse.ArgumentParser(prog="eprox-harness")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["proxy", "deliveries", "--state-dir", str(outbox.state_dir), "--state", "dead"])
    assert args.run(args) == 0
    assert "registry-a" in capsys.readouterr().out
    args = parser.parse_args(["proxy", "replay", "--state-dir", str(outbox.state_dir), "--all-dead"])
    assert args.run(args) == 0 and "replaying 1 dead" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["proxy", "replay", "--state-dir", "x"])  # --id or --all-dead is required


def test_python_dash_m_proxy_checks_a_configuration_without_showing_secrets(tmp_path):
    config = tmp_path / "eprox.yaml"
    example = subprocess.run([sys.executable, "-m", "proxy", "example-config"], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert example.returncode == 0
    config.write_text(example.stdout)
    env = {"PATH": "/usr/bin:/bin", "EPROX_EPROM_API_KEY": "eprom-secret", "REGISTRY_A_KEY": "a-secret",
           "REGISTRY_B_KEY": "b-secret", "PYTHONPATH": str(REPO)}
    ok = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(config)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "registry registry-a: callbacks to https://registry-a.example.no/eprom, 1 form(s)" in ok.stdout
    assert "secret" not in ok.stdout + ok.stderr
    del env["REGISTRY_B_KEY"]
    bad = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(config)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "apiKeyEnv names REGISTRY_B_KEY, which is not set" in bad.stderr
