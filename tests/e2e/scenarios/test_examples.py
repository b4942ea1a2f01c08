"""The example scenarios in scenarios/: each one loads, runs and its expectations hold, through the real
`eprox-harness scenario run` command; the same scenario and seed give the same transcript; and
`eprox-harness up --scenario` serves the same story to anyone who drives it over HTTP."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pytest_plugin import HarnessClient, HarnessProcess
from harness.scenario import load_scenario

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.yaml"))
HIP = ROOT / "scenarios" / "hip_replacement_shared.yaml"
TIMEOUT = 300


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=ROOT)


def test_there_are_examples_and_each_explains_itself():
    names = {p.name for p in EXAMPLES}
    assert {"hip_replacement_shared.yaml", "cancer_registry_paper_fallback.yaml",
            "child_answered_by_parent.yaml"} <= names
    for path in EXAMPLES:
        header = path.read_text(encoding="utf-8").splitlines()[:8]
        assert header[0].startswith("# ") and sum(line.startswith("#") for line in header) >= 5, path.name
        scenario = load_scenario(path)
        assert scenario.patients and scenario.script and scenario.expectations, path.name
        for patient in scenario.patients:  # synthetic people only: ids are generated, or synthetic
            national_id = patient.fields.get("nationalId")
            assert national_id is None or int(national_id[2:4]) > 40, (path.name, patient.ref)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_example_checks_and_runs_and_its_expectations_hold(path):
    check = harness("scenario", "check", str(path))
    assert check.returncode == 0, check.stderr
    assert f"{path}: a usable scenario" in check.stdout
    run = harness("scenario", "run", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("verdict: PASS"), run.stdout
    assert not [line for line in lines if line.lstrip().startswith("FAIL")], run.stdout
    scenario = load_scenario(path)
    ok = [line for line in lines if line.lstrip().startswith("ok")]
    assert len(ok) >= len(scenario.expectations) + 2  # every expectation gives at least one check


def test_the_same_scenario_and_seed_give_the_same_transcript_and_another_seed_other_ids():
    """Another seed tells the same story at the same times (the script and the patients' behaviour decide
    those), with other order ids."""
    first = harness("scenario", "run", str(HIP))
    second = harness("scenario", "run", str(HIP))
    assert first.returncode == second.returncode == 0, first.stdout + first.stderr
    assert first.stdout == second.stdout
    other = harness("scenario", "run", str(HIP), "--seed", "99")
    assert other.returncode == 0, other.stdout + other.stderr
    assert "(seed 99)" in other.stdout.splitlines()[0]
    assert other.stdout != first.stdout
    transcript = lambda out: out.split("transcript:")[1].split("script:")[0].splitlines()  # noqa: E731
    order_ids = lambda out: set(re.findall(r" order ([0-9a-f]{8}) ", "\n".join(transcript(out))))  # noqa: E731
    assert order_ids(first.stdout) and not order_ids(other.stdout) & order_ids(first.stdout)  # seeded ids
    assert [line[:44] for line in transcript(other.stdout)] == [line[:44] for line in transcript(first.stdout)]


def test_up_with_a_scenario_serves_its_story_over_http(tmp_path):
    scenario = load_scenario(HIP)
    process = HarnessProcess(tmp_path / "up", extra_args=["--scenario", str(HIP)])
    info = process.start()
    try:
        assert set(info) == {"eprom", "proxy", "registries", "forms", "patients"}
        assert [r["name"] for r in info["registries"]] == ["leddprotese", "hoftebrudd"]
        assert [r["apiKey"] for r in info["registries"]] == ["leddprotese-test-key", "hoftebrudd-test-key"]
        assert "Hofte etter operasjon" in [f["name"] for f in info["forms"]]
        refs = [p["ref"] for p in info["patients"]]
        assert refs == [p.ref for p in scenario.patients]
        ids = {p["ref"]: p["nationalId"] for p in info["patients"]}
        assert all(len(i) == 11 and int(i[2:4]) > 65 for i in ids.values())  # synthetic month+65 ids

        client = HarnessClient(info)
        registered = client._call("GET", f"{client.eprom_url}/_sim/patients")
        assert {p["nationalId"] for p in registered} == set(ids.values())  # what the control API would hold

        # the orders due at the start were placed before the ready file appeared; the rest wait for the clock
        ledd = client.placed_orders("leddprotese")
        assert [o["request"]["nationalId"] for o in ledd] == [ids["astrid"], ids["per"], ids["olav"]]
        assert client.placed_orders("hoftebrudd") == []
        client.advance(hours=2)
        client.settle()
        [astrid_b] = client.placed_orders("hoftebrudd")
        astrid_a = ledd[0]["body"]["id"]
        assert client.statuses("hoftebrudd", astrid_b["body"]["id"]) == ["Ordered"]

        client.advance(days=90)
        client.settle()
        assert client.statuses("leddprotese", astrid_a) == ["Ordered", "Completed"]
        assert client.statuses("hoftebrudd", astrid_b["body"]["id"]) == ["Ordered", "Completed"]
        assert len(client.eprom_orders(national_id=ids["astrid"])) == 1
        assert [o["status"] for o in client.eprom_orders(national_id=ids["olav"])] == ["Completed", "Completed"]
        placed = client.placed_orders("leddprotese") + client.placed_orders("hoftebrudd")
        assert len(placed) == len(scenario.script)
        client.close()
    finally:
        assert process.stop() == 0, process.output()
