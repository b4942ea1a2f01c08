"""Binds every .feature file in this folder to the step library."""
from pytest_bdd import scenarios

scenarios(".")
