"""Fixtures shared by the unit tests of the runtime kit: a simulated clock and a timeline without pump."""
import pytest

from service_kit.clock import DEFAULT_SIM_START, SimClock
from service_kit.timeline import Timeline


@pytest.fixture
def clock():
    return SimClock(DEFAULT_SIM_START)


@pytest.fixture
def timeline(clock):
    tl = Timeline(clock, pump=False)
    yield tl
    tl.stop()
