"""The operator's commands on a proxy's database (`python -m proxy ...`, `eprox-harness proxy ...`): list
the outbox by state and registry, replay dead deliveries, find the database from the options, a config
file or the environment, and check a configuration."""
from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from proxy.cli import main, register
from proxy.store import ProxyStore

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
           "REGISTRY_B_KEY": "b-secret", "PYTHONPATH": str(REPO),
           "EPROX_DATABASE": str(tmp_path / "eprox.sqlite3")}  # check-config checks it can be made there
    ok = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(config)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "registry registry-a: callbacks to https://registry-a.example.no/eprom, 1 form(s)" in ok.stdout
    assert "secret" not in ok.stdout + ok.stderr
    del env["REGISTRY_B_KEY"]
    bad = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(config)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "apiKeyEnv names REGISTRY_B_KEY, which is not set" in bad.stderr


def config_file(tmp_path, database: str = "state/eprox.sqlite3", **extra) -> Path:
    path = tmp_path / "etc" / "eprox.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"eprom": {"url": "http://127.0.0.1:9", "apiKey": "eprox-key"},
                                    "database": database, **extra,
                                    "registries": [{"name": "registry-a", "apiKey": "a-key",
                                                    "callbackBaseUrl": "http://127.0.0.1:9"}]}))
    return path


def not_databases(tmp_path) -> dict[str, Path]:
    """Files the outbox commands must not take for the proxy's database, nor turn into one."""
    made = {"a text file": tmp_path / "notes.txt", "an empty file": tmp_path / "empty.sqlite3",
            "another application's SQLite file": tmp_path / "other.sqlite3"}
    made["a text file"].write_text("not a database\n")
    made["an empty file"].touch()
    with closing(sqlite3.connect(made["another application's SQLite file"])) as db:
        db.execute("CREATE TABLE mine (a)")
        db.commit()
    return made


@pytest.mark.parametrize("command", [["deliveries"], ["replay", "--all-dead"]], ids=lambda c: c[0])
def test_the_outbox_commands_refuse_a_file_that_is_not_a_proxy_database_and_leave_it_alone(tmp_path, capsys,
                                                                                          command):
    """Before, a text file was a traceback, and an empty file or another application's SQLite database had
    the proxy's whole schema written into it (WAL mode, a .locks directory beside it): "no deliveries"."""
    for kind, path in not_databases(tmp_path).items():
        before = path.read_bytes()
        assert main([*command, "--database", str(path)]) == 2, kind
        err = capsys.readouterr().err
        problem = "not an SQLite file" if kind == "a text file" else "no deliveries table"
        assert err == f"proxy: {path}: not an ePROX proxy database ({problem})\n", kind
        assert path.read_bytes() == before, kind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite3", "notes.txt", "other.sqlite3"]


@pytest.fixture
def read_only_location(tmp_path):
    """A directory the proxy cannot write: on a read-only file system (a tmpfs mounted, then remounted
    read-only) where that can be done (root), else without write permission (root ignores permissions).
    Yields the directory, a function that makes it read-only, and why replay then refuses."""
    place = tmp_path / "ro"
    place.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(place)],
                                                   capture_output=True).returncode == 0
    if mounted:
        lock = lambda: subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)  # noqa: E731
        reason = "on a read-only file system"
    else:
        lock = lambda: place.chmod(0o555)  # noqa: E731
        reason = f"{place}: no write permission"
    try:
        yield place, lock, reason
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(place)], check=True)
        else:
            place.chmod(0o755)


def test_listing_works_where_the_database_cannot_be_written_and_replay_says_it_cannot(outbox, read_only_location,
                                                                                     capsys):
    """Before, both were a traceback (SQLite cannot make the shared-memory file a WAL database needs there,
    and the store made its .locks directory first)."""
    place, lock, reason = read_only_location
    database = place / "eprox.sqlite3"
    with closing(sqlite3.connect(outbox.config.database_path)) as source, closing(sqlite3.connect(database)) as copy:
        source.backup(copy)
    lock()
    assert [d["state"] for d in listed(capsys, "--database", str(database))] == ["dead", "pending"]
    assert main(["replay", "--database", str(database), "--all-dead"]) == 2
    assert capsys.readouterr().err == f"proxy: {database}: cannot be changed ({reason}); replay needs to write it\n"
    assert sorted(p.name for p in place.iterdir()) == ["eprox.sqlite3"], "nothing made beside it"


def test_a_relative_eprox_database_is_found_by_every_command_alike(tmp_path, monkeypatch, capsys):
    """Relative to the configuration file, as the proxy takes it; before, the outbox commands took it
    relative to the current directory (and found no database, or another one)."""
    config = config_file(tmp_path, database="/nowhere/unused.sqlite3")
    database = config.parent / "data" / "eprox.sqlite3"
    database.parent.mkdir()
    ProxyStore(database).close()
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("EPROX_CONFIG", str(config))
    monkeypatch.setenv("EPROX_DATABASE", "data/eprox.sqlite3")
    assert main(["check-config"]) == 0
    assert f"database: {database}\n" in capsys.readouterr().out
    assert listed(capsys) == []
    assert main(["replay", "--all-dead"]) == 0 and "replaying 0" in capsys.readouterr().out
    assert main(["deliveries", "--json", "--config", str(config)]) == 0
    monkeypatch.delenv("EPROX_CONFIG")  # without a configuration file: relative to the current directory
    assert main(["deliveries"]) == 2
    assert capsys.readouterr().err == "proxy: no proxy database at data/eprox.sqlite3\n"


def database_places(tmp_path) -> dict[str, tuple[str, str]]:
    """Database locations the proxy cannot use: the setting, and what check-config says of it."""
    (tmp_path / "a-directory.sqlite3").mkdir()
    text = not_databases(tmp_path)["a text file"]
    other = tmp_path / "other.sqlite3"
    return {"a directory": (str(tmp_path / "a-directory.sqlite3"), "is a directory"),
            "under a file": (str(text / "eprox.sqlite3"), f"cannot be created: {text} is not a directory"),
            "not SQLite": (str(text), "not an ePROX proxy database (not an SQLite file)"),
            "another application's": (str(other), "not an ePROX proxy database (no deliveries table)"),
            "in /proc": ("/proc/eprox.sqlite3", "cannot be created in /proc")}


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_a_database_the_proxy_cannot_use_is_refused_before_it_starts(tmp_path, monkeypatch, capsys, command):
    """Before, check-config said it was fine and serve ended in a traceback (or, for another application's
    SQLite file, wrote the proxy's tables into it)."""
    for kind, (setting, problem) in database_places(tmp_path).items():
        monkeypatch.setenv("EPROX_DATABASE", setting)
        args = [command, "--config", str(config_file(tmp_path))] + (["--port", "0"] if command == "serve" else [])
        assert main(args) == 2, kind
        err = capsys.readouterr().err
        assert err.startswith(f"proxy: the configuration is not usable:\ndatabase {setting}: {problem}"), (kind, err)
        assert err.count("\n") == 2, err
    with closing(sqlite3.connect(tmp_path / "other.sqlite3")) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["mine"]


def test_check_config_shows_a_fractional_lifetime(tmp_path, capsys):
    assert main(["check-config", "--config", str(config_file(tmp_path, lifetimeDays=0.5))]) == 0
    assert "lifetime: 0.5 days;" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_takes_only_a_port_number(tmp_path, capsys, port):
    """Before, 99999 served on 34463 (modulo 65536) and -1 was an OverflowError traceback."""
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--config", str(config_file(tmp_path)), "--port", port])
    assert caught.value.code == 2
    assert f"argument --port: '{port}' is not a port number (0 to 65535)" in capsys.readouterr().err
    assert not (tmp_path / "etc" / "state").exists()


def test_serve_on_a_port_in_use_says_so_and_starts_nothing(tmp_path, capsys, caplog):
    """Before, the proxy was built first: its pump started and "ePROX proxy started" was logged, then the bind
    failed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--config", str(config_file(tmp_path)), "--port", str(port)]) == 1
    assert capsys.readouterr().err == f"proxy: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert "started" not in caplog.text
    assert not (tmp_path / "etc" / "state").exists(), "no database made"


def test_urls_with_credentials_are_refused(tmp_path, monkeypatch, capsys):
    """ePROX sends no user name or password from a URL (ePROM and the registries know it by its apiKey): every
    call would have gone without them, and check-config printed the password."""
    path = tmp_path / "eprox.yaml"
    path.write_text(yaml.safe_dump({"eprom": {"url": "https://eprox:eprom-s3cret@127.0.0.1:9", "apiKey": "eprox-key"},
                                    "database": str(tmp_path / "eprox.sqlite3"),
                                    "registries": [{"name": "registry-a", "apiKey": "a-key",
                                                    "callbackBaseUrl": "http://team:reg-s3cret@127.0.0.1:9/cb"}]}))
    monkeypatch.setenv("EPROX_CONFIG", str(path))
    assert main(["check-config"]) == 2
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err
    for where in ("eprom.url", "registries.0.callbackBaseUrl"):
        assert f"{where}: holds a user name or password (user:password@host), which ePROX does not send" \
            in captured.err


def test_an_unquoted_date_is_a_database_name_and_a_binary_tag_is_refused_without_a_traceback(tmp_path, capsys):
    """`database: 2024-01-01` made check-config, serve and gunicorn end in a TypeError traceback (exit 1), and
    `deliveries --config` say the file had no `database` setting."""
    path = config_file(tmp_path, database="DATE")
    path.write_text(path.read_text().replace("DATE", "2024-01-01"))
    assert main(["check-config", "--config", str(path)]) == 0
    assert f"database: {tmp_path / 'etc' / '2024-01-01'}\n" in capsys.readouterr().out
    assert main(["deliveries", "--config", str(path)]) == 2
    assert capsys.readouterr().err == f"proxy: no proxy database at {tmp_path / 'etc' / '2024-01-01'}\n"
    path.write_text(path.read_text().replace("eprox-key", "!!binary ZXByb3gta2V5"))
    for command in (["check-config"], ["serve", "--port", "0"]):
        assert main([*command, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"proxy: the configuration is not usable:\n{path}: not valid YAML: line "), err
        assert "the tag !!binary is not allowed here; write the value as text\n" in err and "ZXBy" not in err
