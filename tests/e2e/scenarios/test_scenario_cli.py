"""`eprox-harness scenario check|run` and `up --scenario` as real processes: exit codes, problems named by
file and place, failed expectations reported with what was seen instead."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.pytest_plugin import HarnessProcess, HarnessProcessError

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 300


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=ROOT)


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = """\
patients:
  - {ref: kari, answer: {after: soon}}
script:
  - {at: P0D, registry: registry-c, patient: kari, form: RAND-12}
"""


def test_check_lists_every_problem_with_file_and_place_and_exits_2(tmp_path):
    path = write(tmp_path, BROKEN)
    result = harness("scenario", "check", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "eprox-harness scenario check: the scenario is not usable:"
    assert lines[1].startswith(f"{path}: patients[0].answer.after: 'soon' is not an ISO-8601 duration")


def test_check_finds_what_only_the_fake_eprom_can_say_about_a_patient(tmp_path):
    """The schema cannot know that a paper answer needs a postal channel; the fake ePROM's control API
    does, and check reports it at the patient's place in the file."""
    path = write(tmp_path, """\
patients:
  - {ref: ok, age: 50}
  - {ref: kari, reachable: [Helsenorge], behaviour: answers, answer: {after: P2D, onPaper: true}}
""")
    result = harness("scenario", "check", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}: patients[1].answer.onPaper: " in result.stderr


def test_a_reference_error_is_found_once_the_shapes_are_right(tmp_path):
    path = write(tmp_path, BROKEN.replace("after: soon", "after: P1D"))
    result = harness("scenario", "check", str(path))
    assert result.returncode == 2
    assert (f"{path}: script[0].registry: no registry named 'registry-c' in the topology; it has: registry-a, "
            "registry-b") in result.stderr


def test_run_exits_1_and_says_what_was_seen_when_an_expectation_fails(tmp_path):
    path = write(tmp_path, """\
patients:
  - {ref: kari, behaviour: never}
script:
  - {at: P0D, registry: registry-a, patient: kari, form: RAND-12, expiresAfter: P10D}
  - {at: P1D, registry: registry-b, patient: kari, form: "Oppfølging etter hjerneslag, 3 måneder (utkast)"}
until: P20D
expect:
  - {registry: registry-a, patient: kari, statuses: [Ordered, Completed]}
  - {patient: kari, form: RAND-12, epromOrders: 1}
""")
    result = harness("scenario", "run", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "  FAIL  registry-a / kari: received Ordered, Completed: got Ordered, Expired" in out
    assert "  ok    ePROM / kari, RAND-12: ePROM holds 1 order(s)" in out
    assert ("  FAIL  every scripted order (2) was placed and answered HTTP 200: script[1] (registry-b orders "
            "Oppfølging etter hjerneslag, 3 måneder (utkast) for kari): "
            "400 'The ordered form is not Published'") in out
    assert out.splitlines()[-1] == "verdict: FAIL: 4 of 6 checks hold"


def test_run_refuses_a_patient_the_fake_eprom_refuses_with_exit_2(tmp_path):
    path = write(tmp_path, "patients:\n  - {ref: kari, nationalId: '26670271528'}\n")  # a wrong check digit
    result = harness("scenario", "run", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}: patients[0].nationalId: " in result.stderr


def test_up_refuses_an_unusable_scenario_with_exit_2(tmp_path):
    path = write(tmp_path, BROKEN)
    process = HarnessProcess(tmp_path / "up", extra_args=["--scenario", str(path)])
    with pytest.raises(HarnessProcessError, match="exited with 2"):
        process.start()
    assert "eprox-harness up: the scenario is not usable:" in process.stderr()
    assert f"{path}: patients[0].answer.after" in process.stderr()


def test_up_takes_a_config_or_a_scenario_not_both(tmp_path):
    result = harness("up", "--config", "a.yaml", "--scenario", "b.yaml")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


NAMED_AFTER_IDS = """\
name: "Oppfølging av 26670271527"
description: "Pasient 267239 19745 har to ordre"
topology:
  registries: [{name: r1}]
  forms:
    - {id: 0b7c7a4e-6a57-4c0e-9d0f-3f1f8c2a5b10, name: "Skjema 26723919745", published: true, paperEnabled: false,
       mustBeSigned: false, questions: [{id: q1, text: "Hvordan?", type: choice, options: [{value: 1, text: Bra}]}]}
patients:
  - {ref: a, nationalId: "26670271527", behaviour: answers, answer: {after: P1D}}
script:
  - {at: P0D, registry: r1, patient: a, form: "Skjema 26723919745"}
until: P2D
expect:
  - {registry: r1, patient: a, form: "Skjema 26723919745", statuses: [Ordered, Completed]}
"""


def test_national_ids_written_into_a_scenario_are_printed_masked(tmp_path):
    """Only the transcript masked them; the header, the script lines and the checks printed a name or a
    description as written, and a problem echoed an id written where a ref belongs (found by a helper's hunt)."""
    ran = harness("scenario", "run", str(write(tmp_path, NAMED_AFTER_IDS)))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Oppfølging av 266702*****" in ran.stdout and "267239 *****" in ran.stdout
    assert "Skjema 267239*****" in ran.stdout
    misplaced = NAMED_AFTER_IDS.replace("{at: P0D, registry: r1, patient: a,", '{at: P0D, registry: r1, patient: "26723919745",')
    checked = harness("scenario", "check", str(write(tmp_path, misplaced, "misplaced.yaml")))
    assert checked.returncode == 2 and "script[0].patient" in checked.stderr and "267239*****" in checked.stderr
    for result in (ran, checked):
        assert "26670271527" not in result.stdout + result.stderr
        assert "26723919745" not in result.stdout + result.stderr
        assert "19745" not in result.stdout + result.stderr
