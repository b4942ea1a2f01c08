"""Fixtures for the proxy's integration tests: in-process worlds of live servers (see tests/support/proxy_world.py)."""
from __future__ import annotations

from pathlib import Path

import proxy_world  # tests/support/, put on the path by tests/conftest.py
import pytest


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
    """Build worlds with other settings (registries, lifetime, tap...; state_dir= to start a proxy again on an
    earlier world's state); every world still running is stopped afterwards."""
    made = []

    def make(state_dir: Path | None = None, **settings):
        w = proxy_world.InProcessWorld(state_dir or tmp_path / f"state-{len(made)}", **settings)
        made.append(w)
        return w

    yield make
    for w in made:
        if not w.stopped:
            w.stop()
