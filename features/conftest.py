"""The feature files run against a live harness (`eprox-harness up` in a subprocess) through the
shared step library."""
from harness.steps import *  # noqa: F401,F403  (pytest-bdd steps are fixtures: importing registers them)
