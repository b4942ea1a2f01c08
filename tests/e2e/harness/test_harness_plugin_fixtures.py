"""The pytest plugin as a user meets it: loaded through its entry point, its fixtures driving a real
`eprox-harness up` process, its --eprox-harness-config option, and no need for pytest-bdd."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e

USER_TEST = textwrap.dedent('''
    from datetime import timedelta

    def test_the_fixtures_drive_a_real_harness(harness_process, harness_client):
        assert [r["name"] for r in harness_process["registries"]] == ["solo"]
        reply = harness_client.order("solo", national_id="26670271527")
        assert reply["status"] == 200, reply
        assert harness_client.settle() == 0
        assert harness_client.statuses("solo", reply["body"]["id"]) == ["Ordered"]

        patient = harness_client.add_patient(reachable=["Helsenorge"], answer=None)
        second = harness_client.order("solo", national_id=patient["nationalId"])
        harness_client.settle()
        [eprom_order] = harness_client.eprom_orders(national_id=patient["nationalId"])
        harness_client.answer(eprom_order["id"])
        harness_client.settle()
        assert harness_client.statuses("solo", second["body"]["id"]) == ["Ordered", "Completed"]

        assert harness_client.faults("solo", fail_next=1)["failNext"] == 1
        before = harness_client.now()
        assert harness_client.advance(days=1) == before + timedelta(days=1)
''')


def test_the_plugin_imports_without_pytest_bdd():
    code = "import sys; sys.modules['pytest_bdd'] = None; import harness.pytest_plugin as p; print(p.HarnessClient)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_user_suite_gets_the_fixtures_from_the_entry_point(tmp_path):
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert names.get("eprox_harness") == "harness.pytest_plugin", \
        "the pytest11 entry point is missing: install with pip install -e ."
    (tmp_path / "test_user_suite.py").write_text(USER_TEST, encoding="utf-8")
    (tmp_path / "solo.yaml").write_text("registries: [{name: solo}]\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_suite.py",
                           "--eprox-harness-config", str(tmp_path / "solo.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
