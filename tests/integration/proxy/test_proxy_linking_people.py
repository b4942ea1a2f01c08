"""Which orders may share one ePROM order (SPEC §3 with §1): only orders to the same recipient about the same
person (onBehalfOfNationalId, when given, is the person the form is about), and never a testMode order,
which ePROM answers without ever calling back. Otherwise a registry would get answers about a person it
never ordered for, or wait for ever for callbacks that never come. Against the real fake ePROM."""
from __future__ import annotations

import random
from datetime import date

from eprom_protocol.national_id import make_synthetic


def synthetic_child(born: date, seed: int) -> str:
    return make_synthetic(random.Random(seed), born)


def completed(world, *registries: str) -> set[str]:
    return {c.body["formOrderId"] for r in registries for c in world.recorders[r].acknowledged()
            if c.body.get("formOrderStatus") == "Completed"}


def test_orders_about_different_people_never_link(world):
    """A registry asking a parent about one child is not linked to another registry's order about another
    child, or about the parent herself; orders to the same recipient about the same person still link."""
    parent = world.add_patient()
    child_x, child_y = synthetic_child(date(2015, 3, 4), 1), synthetic_child(date(2017, 8, 9), 2)
    for child in (child_x, child_y):
        world.add_patient(nationalId=child, reachable=[])
    about_x = world.order("registry-a", parent, onBehalfOfNationalId=child_x)["id"]
    about_y = world.order("registry-b", parent, onBehalfOfNationalId=child_y)["id"]
    about_parent = world.order("registry-b", parent)["id"]
    also_about_x = world.order("registry-b", parent, onBehalfOfNationalId=child_x)["id"]  # links to about_x
    world.settle()
    orders = {o.get("onBehalfOfNationalId"): o for o in world.eprom_orders(parent)}
    assert set(orders) == {child_x, child_y, None}, "one ePROM order per person the form is about"
    world.answer(orders[child_x]["id"], {"comment": "about child X"})
    world.settle()
    assert completed(world, "registry-a", "registry-b") == {about_x, also_about_x}
    assert world.recorders["registry-b"].statuses(about_y) == ["Ordered"]
    assert world.recorders["registry-b"].statuses(about_parent) == ["Ordered"]


def test_test_mode_orders_are_never_linked_either_way(world):
    """A real order linked to a test order would hear nothing, ever; a test order linked to a real one would
    get real answers. Each goes to ePROM on its own."""
    patient = world.add_patient()
    test_first = world.order("registry-a", patient, testMode=True)["id"]
    real = world.order("registry-b", patient)["id"]
    test_later = world.order("registry-a", patient, testMode=True)["id"]
    world.settle()
    eprom_orders = world.eprom_orders(patient)
    assert sorted(o["testMode"] for o in eprom_orders) == [False, True, True]
    (real_order,) = [o for o in eprom_orders if not o["testMode"]]
    world.answer(real_order["id"])
    world.settle()
    assert world.recorders["registry-b"].statuses(real) == ["Ordered", "Completed"]
    assert world.recorders["registry-a"].statuses(test_first) == []
    assert world.recorders["registry-a"].statuses(test_later) == []
    assert completed(world, "registry-a") == set()
