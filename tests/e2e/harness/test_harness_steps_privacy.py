"""A failing step of the shipped step library says what went wrong without printing a national id or answer
data: CI keeps test output. Before, the steps put whole callbacks (their formData) and ePROM's orders (the
patient's national id) in their assertion messages (found by a helper's hunt)."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from harness import steps
from harness.client import HarnessClient
from harness.config import HarnessConfig
from harness.topology import Harness

pytestmark = pytest.mark.e2e


@pytest.fixture
def answered():
    """A live harness in which registry-a's order was answered."""
    with Harness(HarnessConfig(seed=3), pump=False) as harness:
        client = HarnessClient(harness.info())
        placed = defaultdict(list)
        patient = steps.patient_who_never_answers(client)
        steps.registry_orders(client, placed, patient, "registry-a", "RAND-12")
        steps.patient_answers(client, patient)
        (completed,) = [c for c in client.inbox("registry-a") if c["body"]["formOrderStatus"] == "Completed"]
        yield client, placed, patient, json.loads(completed["body"]["formData"])
        client.close()


def assert_private(message: str, patient: dict, form_data: dict) -> None:
    assert patient["nationalId"] not in message
    for key in form_data:
        assert key not in message, f"answer data in {message!r}"


def test_failing_steps_print_no_national_id_and_no_answer_data(answered):
    client, placed, patient, form_data = answered
    failures = {
        "statuses": lambda: steps.registry_received(client, placed, "registry-a", "Ordered"),
        "nothing": lambda: steps.registry_received_nothing(client, placed, "registry-a"),
        "orders": lambda: steps.eprom_holds(client, patient, 2, "RAND-12"),
        "no open order": lambda: steps.patient_answers(client, patient),
        "same answer": lambda: steps.same_answer_everywhere(client, placed),
    }
    for name, step in failures.items():
        with pytest.raises(AssertionError) as failed:
            step()
        message = str(failed.value)
        assert message, f"{name}: a failure must say what went wrong"
        assert_private(message, patient, form_data)
    with pytest.raises(AssertionError) as failed:
        steps.registry_received(client, placed, "registry-a", "Ordered")
    assert "'status': 'Completed'" in str(failed.value)  # still says what came
