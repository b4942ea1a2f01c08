"""Fixtures for the proxy's end-to-end tests: real proxy processes (see tests/support/proxy_world.py)."""
from __future__ import annotations

import proxy_world  # tests/support/, put on the path by tests/conftest.py
import pytest


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
