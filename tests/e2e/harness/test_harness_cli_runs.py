"""The CLI as a user runs it: bad configurations, help, and `eprox-harness demo`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from harness.cli import main, write_ready_file


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_bad_configuration_exits_2_naming_the_file_and_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("registries:\n  - {name: a, colour: red}\n", encoding="utf-8")
    assert main(["up", "--config", str(bad), "--ready-file", str(tmp_path / "ready.json")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: registries[0]: unknown setting(s) 'colour'" in err
    assert not (tmp_path / "ready.json").exists()


@pytest.mark.parametrize("where, problem", [
    ("a folder", "is a folder; give a file's path"),
    ("under a file", "cannot be written there (Not a directory)"),
])
def test_a_ready_file_that_cannot_be_written_exits_2_before_anything_starts(tmp_path, capsys, where, problem):
    """Before, a folder was an IsADirectoryError traceback, and a path under a file a FileNotFoundError traceback
    once every server had started (found by a helper's hunt)."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    path = tmp_path / ("a-folder" if where == "a folder" else "a-file/ready.json")
    assert main(["up", "--ready-file", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"eprox-harness up: --ready-file {path}: {problem}\n"
    assert "every server serves" not in captured.out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["sideways"])
    assert caught.value.code == 2


def test_the_ready_file_is_written_whole_by_rename(tmp_path):
    target = tmp_path / "deeper" / "ready.json"
    write_ready_file(target, {"proxy": {"url": "http://127.0.0.1:1"}})
    assert target.read_text(encoding="utf-8").startswith("{")
    assert [p.name for p in target.parent.iterdir()] == ["ready.json"]


def test_python_dash_m_harness_and_the_console_script_both_answer_help():
    assert run("--help", timeout=60).returncode == 0
    script = shutil.which("eprox-harness")
    assert script is not None, "the eprox-harness console script is missing: install with pip install -e ."
    done = subprocess.run([script, "up", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--ready-file" in done.stdout


@pytest.mark.e2e
def test_demo_exits_0_and_prints_a_transcript_and_a_verdict_per_flow():
    done = run("demo")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for kind in (r"registry-a → proxy\s+POST formorder RAND-12 patient \d{6}\*{5}\s+order [0-9a-f]{8}\s+200",
                 r"proxy → eprom\s+POST formorder",
                 r"eprom → proxy\s+PUT PromsFormOrder Ordered \(Helsenorge\)",
                 r"proxy → registry-b\s+PUT PromsFormOrder Ordered \(Helsenorge\)",
                 r"PUT PromsFormOrder Completed\s+order [0-9a-f]{8}\s+200 success",
                 r"proxy → registry-a\s+PUT PromsFormOrder Expired",
                 r"^\s+2025-01-06 08:00:00Z "):
        assert re.search(kind, out, re.M), kind
    assert re.findall(r"^VERDICT (\S+): (\w+)$", out, re.M) == [
        ("order-before-answer", "PASS"), ("order-after-answer", "PASS"), ("expiry-and-lifetime", "PASS")]
    assert "ALL FLOWS PASSED" in out
    assert not re.search(r"(?<!\d)\d{11}(?!\d)", out), "a national id was printed unmasked"
    assert "formData" not in out


@pytest.mark.e2e
def test_demo_prints_the_same_transcript_every_time_for_a_seed():
    first, second = run("demo", "--seed", "3"), run("demo", "--seed", "3")
    assert first.stdout == second.stdout
    assert first.returncode == second.returncode


@pytest.mark.e2e
def test_up_with_a_scenario_a_server_fails_to_take_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    """Before, anything but a refused patient (a 500 from the fake ePROM) was a traceback (found by a helper's
    hunt); the servers still stop and no ready file is left."""
    from harness.client import ControlError
    from harness.scenario import ScenarioSession

    def fails(self):
        raise ControlError("POST http://127.0.0.1:1/_sim/patients: HTTP 500: Internal error in the server", 500)

    monkeypatch.setattr(ScenarioSession, "install", fails)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("patients: [{ref: a}]\n", encoding="utf-8")
    ready = tmp_path / "ready.json"
    assert main(["up", "--scenario", str(scenario), "--ready-file", str(ready)]) == 1
    assert capsys.readouterr().err == ("eprox-harness up: could not load the scenario: ControlError: POST "
                                       "http://127.0.0.1:1/_sim/patients: HTTP 500: Internal error in the server\n")
    assert not ready.exists()
