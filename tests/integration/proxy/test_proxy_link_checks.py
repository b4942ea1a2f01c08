"""A registry order that ePROM never sees (it links to an order ePROM has, or gets the zero id) is refused by
the proxy with ePROM's own text wherever ePROM would refuse it without its catalog: the same request is a 400
or a 200 no matter who ordered first. And a linked order's reply holds the single-use code only when its own
order asked for one. Against the real fake ePROM (the first order of each test goes there)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from eprom_protocol.messages import SIGNING_ON_BEHALF, SIGNING_WITH_NO_DISTRIBUTION

NO_NEW = json.dumps({"CREATE_NEW_ORDER": False})


@pytest.fixture
def world3(make_world):
    return make_world(registries=["registry-a", "registry-b", "registry-c"])


@pytest.mark.parametrize("fields, message", [
    ({"metadata": "[1, 2]"}, "JSON in metadata is not valid: expected a JSON object"),
    ({"metadata": "5"}, "JSON in metadata is not valid: expected a JSON object"),
    ({"metadata": "not json"}, "JSON in metadata is not valid: "),
    ({"mustBeSigned": True, "distributionRule": "NoDistribution"}, SIGNING_WITH_NO_DISTRIBUTION),
    ({"mustBeSigned": True, "onBehalfOfNationalId": "{child}"}, SIGNING_ON_BEHALF),
])
def test_what_epom_refuses_without_its_catalog_is_refused_alike_when_the_order_would_link(world, fields, message):
    """Before, registry-b got 400 for a patient nobody had ordered for (ePROM refused it) and 200 (linked)
    for one registry-a had ordered for."""
    patient, fresh = world.add_patient(), world.add_patient()
    child = world.add_patient(reachable=[])
    fields = {k: (v.format(child=child) if isinstance(v, str) else v) for k, v in fields.items()}
    about = {"onBehalfOfNationalId": child} if "onBehalfOfNationalId" in fields else {}
    first = world.order("registry-a", patient, **about)["id"]
    for target in (fresh, patient):  # to ePROM, then to be linked
        reply = world.call("POST", "/api/v2/formorder", "registry-b", json=order(target, **fields))
        assert (reply.status_code, reply.json()["message"][:len(message)]) == (400, message), target
    world.settle()
    assert len(world.eprom_orders(patient)) == 1 and world.eprom_orders(fresh) == []
    assert world.recorders["registry-a"].statuses(first) == ["Ordered"]
    assert world.recorders["registry-b"].snapshot() == [], "a refused order is linked to nothing"


def test_a_refused_rule_4_order_is_refused_too(world):
    patient = world.add_patient()
    world.order("registry-a", patient)
    reply = world.call("POST", "/api/v2/formorder", "registry-a",
                       json=order(patient, metadata=NO_NEW, mustBeSigned=True, distributionRule="NoDistribution"))
    assert (reply.status_code, reply.json()["message"]) == (400, SIGNING_WITH_NO_DISTRIBUTION)
    fine = world.call("POST", "/api/v2/formorder", "registry-a", json=order(patient, metadata=NO_NEW))
    assert (fine.status_code, fine.json()["id"]) == (200, "00000000-0000-0000-0000-000000000000")


def test_the_single_use_code_goes_only_to_a_linked_order_that_asked_for_one(world3):
    """It opens the patient's form. Before, a registry asking for Basic delivery that linked to a NoDistribution
    order got the code anyway."""
    patient = world3.add_patient()
    first = world3.order("registry-a", patient, distributionRule="NoDistribution")
    assert first["singleUseCode"]
    basic = world3.order("registry-b", patient)
    assert basic["singleUseCode"] is None
    world3.settle()
    again = world3.order("registry-c", patient, distributionRule="NoDistribution")
    assert again["singleUseCode"] == first["singleUseCode"]
    assert len(world3.eprom_orders(patient)) == 1


def test_an_order_naming_its_recipient_as_the_person_it_is_about_links_with_one_that_names_nobody(world3):
    patient = world3.add_patient()
    a = world3.order("registry-a", patient)["id"]
    b = world3.order("registry-b", patient, onBehalfOfNationalId=patient)["id"]
    c = world3.order("registry-c", patient, onBehalfOfNationalId=patient)["id"]
    world3.settle()
    (eprom_order,) = world3.eprom_orders(patient)
    world3.answer(eprom_order["id"], {"q1": 2})
    world3.settle()
    for name, own in (("registry-a", a), ("registry-b", b), ("registry-c", c)):
        assert world3.recorders[name].statuses(own) == ["Ordered", "Completed"]


def test_a_signed_order_naming_its_recipient_as_the_person_it_is_about_is_not_on_behalf_of_someone(world):
    """It was refused (SIGNING_ON_BEHALF) by ePROM and by the proxy when linking, though such an order is about
    the recipient and links with orders that name nobody."""
    patient, fresh = world.add_patient(), world.add_patient()
    world.order("registry-a", patient)
    for target in (fresh, patient):  # to ePROM, then to be linked
        reply = world.call("POST", "/api/v2/formorder", "registry-b",
                           json=order(target, mustBeSigned=True, onBehalfOfNationalId=target))
        assert reply.status_code == 200, reply.json()
    world.settle()
    assert len(world.eprom_orders(patient)) == 1 and len(world.eprom_orders(fresh)) == 1


def test_the_single_use_code_is_deleted_when_the_lifetime_ends(make_world):
    world = make_world(lifetime_days=10)
    patient = world.add_patient()
    code = world.order("registry-a", patient, distributionRule="NoDistribution")["singleUseCode"]
    world.settle()
    world.advance(days=11)
    with sqlite3.connect(world.service.store.path) as db:
        replies = [json.loads(r[0]) for r in db.execute("SELECT order_reply FROM eprom_orders")]
    assert replies and all(r.get("singleUseCode") is None for r in replies)
    assert code.encode() not in b"".join(p.read_bytes() for p in world.state_dir.glob("eprox.sqlite3*") if p.is_file())


def order(national_id: str, **fields) -> dict:
    from proxy_world import order_body
    return order_body(national_id, **{k: v for k, v in fields.items() if v is not None})
