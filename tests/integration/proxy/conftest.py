"""Fixtures for the proxy's integration tests: in-process worlds of live servers (see proxy_world.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_world():
    """proxy_world.py under one module name, whichever test directory imports it first."""
    if "proxy_world" not in sys.modules:
        spec = importlib.util.spec_from_file_location("proxy_world", Path(__file__).with_name("proxy_world.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["proxy_world"] = module
        spec.loader.exec_module(module)
    return sys.modules["proxy_world"]


proxy_world = _load_world()


@pytest.fixture
def world(tmp_path: Path):
    """Pump off: callbacks flow only under settle() and advance(), so every run is the same."""
    w = proxy_world.InProcessWorld(tmp_path / "state")
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def live_world(tmp_path: Path):
    """Pump on: callbacks flow in real time, as under `eprox-harness up`."""
    w = proxy_world.InProcessWorld(tmp_path / "state", pump=True)
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def make_world(tmp_path: Path):
    """Build worlds with other settings (registries, lifetime, tap...); all stopped afterwards."""
    made = []

    def make(**settings):
        w = proxy_world.InProcessWorld(tmp_path / f"state-{len(made)}", **settings)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()
