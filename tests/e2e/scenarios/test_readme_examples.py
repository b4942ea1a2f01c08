"""The scenario and topology snippets README.md shows are usable as written, and the scenario's
expectations hold when it runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_config

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]


def yaml_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", body, flags=re.S)


def test_the_readme_topology_with_a_callback_url_loads(tmp_path):
    [block] = yaml_blocks("Point your own registry at a running harness")
    path = tmp_path / "my-topology.yaml"
    path.write_text(block, encoding="utf-8")
    config = load_config(path)
    assert [(r.name, r.callback_url) for r in config.registries] == [("my-registry", "http://127.0.0.1:8080"),
                                                                      ("registry-b", None)]


def test_the_readme_scenario_runs_and_its_expectations_hold(tmp_path):
    [block] = yaml_blocks("Scenario files")
    path = tmp_path / "readme.yaml"
    path.write_text(block, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "harness", "scenario", "run", str(path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("verdict: PASS")
