"""Fixtures for the proxy's end-to-end tests: real proxy processes (see ../../integration/proxy/proxy_world.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_world():
    """proxy_world.py under one module name, whichever test directory imports it first."""
    if "proxy_world" not in sys.modules:
        spec = importlib.util.spec_from_file_location("proxy_world", Path(__file__).parents[2] / "integration" / "proxy" / "proxy_world.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["proxy_world"] = module
        spec.loader.exec_module(module)
    return sys.modules["proxy_world"]


proxy_world = _load_world()




@pytest.fixture
def eprom_side_factory():
    """Build EpromSides (fake ePROM + recorders in this process) around a proxy URL; all stopped afterwards."""
    made = []

    def make(proxy_url: str, registries: list[str], **kwargs):
        side = proxy_world.EpromSide(proxy_url, registries, **kwargs).start()
        made.append(side)
        return side

    yield make
    for side in made:
        side.stop()
