"""The CLI as a user runs it: bad configurations, help, and `eprox-harness demo`."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys

import pytest

from harness.cli import main, write_ready_file



def _built(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None and importlib.util.find_spec(f"{package}.app") is not None
    except (ImportError, ValueError):
        return False


SERVICES_BUILT = _built("fake_eprom") and _built("proxy")
needs_services = pytest.mark.skipif(not SERVICES_BUILT, reason="fake_eprom or proxy is not built yet")


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
@needs_services
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
@needs_services
def test_demo_prints_the_same_transcript_every_time_for_a_seed():
    first, second = run("demo", "--seed", "3"), run("demo", "--seed", "3")
    assert first.stdout == second.stdout
    assert first.returncode == second.returncode
