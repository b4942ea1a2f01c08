"""The pytest-bdd step library for ePROX scenarios: steps drive a live harness over HTTP only (its ready
file and the SPEC §4 control API). Import it into a conftest.py: `from harness.steps import *`."""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from pytest_bdd import given, parsers, then, when

from eprom_protocol.national_id import mask_in_text

from .client import HarnessClient

__all__ = [
    "placed", "patient_who_never_answers", "patient_who_answers_after", "unreachable_patient",
    "registry_orders", "registry_orders_expiring", "registry_orders_with_metadata", "patient_answers",
    "days_pass", "eprom_holds", "registry_received", "registry_received_nothing", "registry_got_zero_id",
    "same_answer_everywhere",
]


@pytest.fixture
def placed() -> dict[str, list[str]]:
    """The order ids each registry was given, oldest first."""
    return defaultdict(list)


def _form(client: HarnessClient, name: str) -> str:
    return client.form_id(name)


def _require(condition: bool, message: str) -> None:
    """An assert whose failure shows only `message`: pytest rewrites this package's asserts (it is a plugin's)
    to print the values compared, which here hold national ids and answer data."""
    if not condition:
        raise AssertionError(message)


def _callbacks_shown(callbacks: list[dict]) -> list[dict]:
    """What a failed step may print of the callbacks (CI keeps its output): no answer data, no national id."""
    return [{"status": c["body"].get("formOrderStatus"), "formOrderId": c["body"].get("formOrderId"),
             "acknowledged": c.get("acknowledged")} for c in callbacks]


def _orders_shown(orders: list[dict]) -> list[dict]:
    """What a failed step may print of ePROM's orders: no national id."""
    return [{key: order.get(key) for key in ("id", "formId", "status", "orderedAt")} for order in orders]


# --- patients ---------------------------------------------------------------------------------
@given("a patient who never answers", target_fixture="patient")
def patient_who_never_answers(harness_client: HarnessClient) -> dict:
    return harness_client.add_patient(reachable=["Helsenorge", "DigitalMailbox"], answer=None)


@given(parsers.parse("a patient who answers {after} after the order reaches them"), target_fixture="patient")
def patient_who_answers_after(harness_client: HarnessClient, after: str) -> dict:
    return harness_client.add_patient(reachable=["Helsenorge"], answer={"after": after})


@given("a patient who cannot be reached on any channel", target_fixture="patient")
def unreachable_patient(harness_client: HarnessClient) -> dict:
    return harness_client.add_patient(reachable=[], answer=None)


# --- registries order ---------------------------------------------------------------------------
def _order(client: HarnessClient, placed: dict, registry: str, form: str, patient: dict, **extra) -> None:
    reply = client.order(registry, formId=_form(client, form), nationalId=patient["nationalId"], **extra)
    _require(reply["status"] == 200, mask_in_text(f"{registry}'s order: {reply}"))
    placed[registry].append(reply["body"]["id"])
    client.settle()


@when(parsers.parse("{registry} orders {form} for the patient"))
def registry_orders(harness_client, placed, patient, registry, form):
    _order(harness_client, placed, registry, form, patient)


@when(parsers.parse("{registry} orders {form} for the patient expiring in {days:d} days"))
def registry_orders_expiring(harness_client, placed, patient, registry, form, days):
    expiry = harness_client.now() + timedelta(days=days)
    _order(harness_client, placed, registry, form, patient, expiryDate=expiry.isoformat())


@when(parsers.parse("{registry} orders {form} for the patient with metadata {metadata}"))
def registry_orders_with_metadata(harness_client, placed, patient, registry, form, metadata):
    _order(harness_client, placed, registry, form, patient, metadata=metadata)


# --- the patient and time -------------------------------------------------------------------------
@when("the patient answers")
def patient_answers(harness_client: HarnessClient, patient: dict):
    orders = harness_client.eprom_orders(national_id=patient["nationalId"])
    open_orders = [o for o in orders if o["status"] == "Ordered"]
    _require(bool(open_orders), f"no open ePROM order to answer: {_orders_shown(orders)}")
    harness_client.answer(open_orders[-1]["id"])
    harness_client.settle()


@when(parsers.parse("{days:d} days pass"))
@when(parsers.parse("{days:d} day passes"))
def days_pass(harness_client: HarnessClient, days: int):
    harness_client.advance(days=days)
    harness_client.settle()


# --- outcomes -------------------------------------------------------------------------------------
@then(parsers.parse("ePROM holds exactly {count:d} order for the patient and {form}"))
@then(parsers.parse("ePROM holds exactly {count:d} orders for the patient and {form}"))
def eprom_holds(harness_client, patient, count, form):
    orders = harness_client.eprom_orders(national_id=patient["nationalId"], form_id=_form(harness_client, form))
    _require(len(orders) == count, f"{len(orders)} orders, not {count}: {_orders_shown(orders)}")


@then(parsers.parse('{registry} received "{statuses}" for its order'))
@then(parsers.parse('{registry} received "{statuses}" for its latest order'))
def registry_received(harness_client, placed, registry, statuses):
    """Exactly these statuses, in this order, each under the registry's own id and with its own key."""
    own_id = placed[registry][-1]
    expected = [s.strip() for s in statuses.split(",")]
    callbacks = harness_client.inbox(registry, own_id)
    got = [c["body"]["formOrderStatus"] for c in callbacks]
    _require(got == expected, f"{registry} received {got}, not {expected}: {_callbacks_shown(callbacks)}")
    for callback in callbacks:
        _require(callback["body"]["apiKey"] == harness_client.api_key(registry), "a callback with another key")
        _require(callback["acknowledged"] is True, f"not acknowledged: {_callbacks_shown([callback])}")
    others = {i for name, ids in placed.items() if name != registry for i in ids}
    for callback in harness_client.inbox(registry):
        _require(callback["body"].get("formOrderId") not in others, "another registry's id leaked")


@then(parsers.parse("{registry} received nothing for its latest order"))
def registry_received_nothing(harness_client, placed, registry):
    callbacks = harness_client.inbox(registry, placed[registry][-1])
    _require(callbacks == [], f"{registry} received {_callbacks_shown(callbacks)}")


@then(parsers.parse("{registry} was given the zero id"))
def registry_got_zero_id(placed, registry):
    _require(placed[registry][-1] == "00000000-0000-0000-0000-000000000000",
             f"{registry} was given {placed[registry][-1]}")


@then("every registry that got the answer got the same form data")
def same_answer_everywhere(harness_client, placed):
    answers = [c["body"]["formData"] for registry, ids in placed.items() for i in ids
               for c in harness_client.inbox(registry, i) if c["body"]["formOrderStatus"] == "Completed"]
    _require(len(answers) >= 2 and len(set(answers)) == 1,
             f"{len(answers)} answers, {len(set(answers))} different (their form data is not shown)")


# pytest-bdd registers each step as a fixture under a generated name in this module's namespace;
# `from harness.steps import *` must carry those too, or no step is found.
__all__ += [name for name in list(globals()) if name.startswith("pytestbdd_")]
