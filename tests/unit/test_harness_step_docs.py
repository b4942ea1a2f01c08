"""harness/README.md lists every phrase of the step library, and nothing the library lacks: the phrases were
documented nowhere but in the source (found by a helper's hunt)."""
from __future__ import annotations

import re
from pathlib import Path

import harness.steps

REPO = Path(__file__).resolve().parents[2]


def library_phrases() -> set[str]:
    source = Path(harness.steps.__file__).read_text(encoding="utf-8")
    return {m.group(2) for m in re.finditer(r"""@(?:given|when|then)\((?:parsers\.parse\()?(["'])(.+?)\1""", source)}


def documented_phrases() -> set[str]:
    readme = (REPO / "harness" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Gherkin step library", 1)[1].split("\n## ", 1)[0]
    lines = section.split("\n- ", 1)[1].split("\n\n", 1)[0].splitlines()
    items = " ".join(" ".join(lines).split())  # a phrase may wrap onto the next line
    return {phrase for phrase in re.findall(r"`([^`]+)`", items)}


def test_every_step_phrase_is_documented_and_every_documented_phrase_exists():
    phrases = library_phrases()
    documented = documented_phrases()
    assert phrases == documented - {"P3D"}
