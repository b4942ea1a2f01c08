"""Privacy (issue 4, item 7): when an order leaves its lifetime the proxy deletes its answer everywhere it
kept one (the updates, the outbox, even a dead delivery's copy), masks the national id, and no old page or
log frame of the database file holds them; and whatever the proxy logs on a full flow (orders, links,
answers, failures, dead deliveries, letters, documents, lifetime ends) has no national id unmasked and no
answer data."""
from __future__ import annotations

import base64
import logging
import sqlite3
from datetime import date
from random import Random

from eprom_protocol.national_id import make_synthetic
from proxy_world import SIGNED_FORM

MARKER = "ANSWER-TEXT-d2f9c1"  # a free-text answer: it must vanish with the order


def raw_bytes(state_dir) -> bytes:
    """Every byte of the database as it lies on disk: the file, its write-ahead log and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(state_dir.glob("eprox.sqlite3*")) if p.is_file())


def test_the_answer_is_gone_from_the_database_file_when_the_lifetime_ends(make_world):
    world = make_world(registries=["registry-a", "registry-b", "registry-c"], lifetime_days=30)
    patient = world.add_patient()
    for registry in world.registries:
        world.order(registry, patient)
    world.settle()  # the status reached everyone
    world.recorders["registry-c"].mode = "fail"  # its copy of the answer ends in a dead delivery
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"comment": MARKER})
    world.settle()
    world.advance(days=7)  # retried for three days: dead
    db = sqlite3.connect(world.config.database_path)
    assert db.execute("SELECT count(*) FROM deliveries WHERE state = 'dead' AND body LIKE ?",
                      (f"%{MARKER}%",)).fetchone()[0] >= 1
    assert MARKER.encode() in raw_bytes(world.state_dir) and patient.encode() in raw_bytes(world.state_dir)

    world.advance(days=24)  # past the 30-day lifetime
    assert db.execute("SELECT count(*) FROM updates WHERE body IS NOT NULL").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert db.execute("SELECT national_id, purged FROM eprom_orders").fetchall() == [(patient[:6] + "*****", 1)]
    db.close()
    on_disk = raw_bytes(world.state_dir)
    assert MARKER.encode() not in on_disk, "the answer is still somewhere in the database files"
    assert patient.encode() not in on_disk, "the national id is still somewhere in the database files"
    # and nothing comes back: the links remain, but a new order is a new ePROM order
    world.order("registry-a", patient)
    assert len(world.eprom_orders(patient)) == 2


def test_a_signed_document_is_not_served_after_the_lifetime(make_world):
    world = make_world(lifetime_days=30)
    world.answered_order("registry-a", formId=SIGNED_FORM)
    [done] = [c for c in world.recorders["registry-a"].snapshot() if c.body["formOrderStatus"] == "Completed"]
    document = f"/api/ExternalDocument/{done.body['signedFormId']}"
    assert world.call("GET", document, "registry-a").status_code == 200
    world.advance(days=31)
    assert world.call("GET", document, "registry-a").status_code == 404


def test_proxy_logs_hold_no_national_id_and_no_answer_data(make_world, caplog):
    caplog.set_level(logging.DEBUG)
    world = make_world(registries=["registry-a", "registry-b", "registry-c"], lifetime_days=30)
    world.recorders["registry-c"].mode = "fail"
    patient = world.add_patient()
    other = world.add_patient(reachable=[])  # unreachable: an Error order
    for registry in world.registries:
        world.order(registry, patient, formId=SIGNED_FORM)
    world.order("registry-a", other)
    world.settle()
    (eprom_order,) = [o for o in world.eprom_orders(patient)]
    world.answer(eprom_order["id"], {"comment": MARKER})
    world.settle()
    letter = {"nationalId": patient, "senderInfo": {"organisationName": "Register"}, "messageInfo": {"title": "Brev"},
              "documentCollection": {"documents": [{"content": base64.b64encode(b"%PDF-1.4 x").decode(),
                                                    "isMainDocument": True}]}}
    assert world.call("POST", "/api/v2/messagetocitizen", "registry-b", json=letter).status_code == 200
    world.call("POST", "/api/v2/formorder", "registry-a", json={"formId": "x", "nationalId": patient})
    world.call("POST", "/api/v2/formorder", headers={"Authorization": f"Basic {patient}"}, json={})
    [done] = [c for c in world.recorders["registry-a"].snapshot() if c.body.get("formOrderStatus") == "Completed"]
    world.call("GET", f"/api/ExternalDocument/{done.body['signedFormId']}", "registry-a")
    world.settle()
    world.advance(days=31)  # retries, a dead delivery, the lifetime's end

    proxy_records = [r for r in caplog.records if r.name.split(".")[0] in ("proxy", "service_kit", "werkzeug")]
    assert any(r.name.startswith("proxy") for r in proxy_records), "the flow logged nothing at all?"
    assert any("parked as dead" in r.getMessage() for r in proxy_records)
    for record in caplog.records:  # every logger of the servers, the fake ePROM's too
        if record.name.startswith("urllib3") and record.threadName == "MainThread":
            continue  # this test's own HTTP client, which asks the fake ePROM about the patient
        text = record.getMessage() + (record.exc_text or "")
        assert patient not in text and other not in text, f"national id in {record.name}: {text}"
        assert MARKER not in text and "formData" not in text, f"answer data in {record.name}: {text}"


def answered_then_restarted(make_world, first_days: float, then_days: float):
    """An answered order kept by a proxy with one lifetime, and the proxy started again on the same state
    with another (the operator changed lifetimeDays); the second world's clock starts where the first began."""
    first = make_world(lifetime_days=first_days)
    patient, own, _ = first.answered_order("registry-a", form_data={"comment": MARKER})
    first.stop()
    second = make_world(lifetime_days=then_days, state_dir=first.state_dir, seed=first.seed + 1)
    second.add_patient(nationalId=patient)
    return second, patient


def stored_answers(world) -> int:
    db = sqlite3.connect(world.config.database_path)
    try:
        return db.execute("SELECT count(*) FROM updates WHERE body IS NOT NULL AND body LIKE ?",
                          (f"%{MARKER}%",)).fetchone()[0]
    finally:
        db.close()


def test_a_shorter_lifetime_configured_later_ends_orders_stored_before_it(make_world):
    world, patient = answered_then_restarted(make_world, first_days=30, then_days=10)
    world.advance(days=9)
    assert stored_answers(world) == 1
    world.advance(days=2)  # 11 days: past the lifetime now configured, inside the one it was stored with
    assert stored_answers(world) == 0, "the answer outlived the configured lifetime"
    reply = world.order("registry-b", patient)  # and it is not active any more: a new ePROM order
    assert len(world.eprom_orders(patient)) == 1 and reply["id"] != "00000000-0000-0000-0000-000000000000"


def test_a_longer_lifetime_configured_later_keeps_orders_stored_before_it_active(make_world):
    world, patient = answered_then_restarted(make_world, first_days=10, then_days=30)
    world.advance(days=11)  # past the lifetime it was stored with, inside the one now configured
    assert stored_answers(world) == 1, "the answer was deleted before the configured lifetime ended"
    own = world.order("registry-b", patient)["id"]  # linked: replayed its status and answer
    world.settle()
    assert world.eprom_orders(patient) == []
    assert world.recorders["registry-b"].statuses(own) == ["Ordered", "Completed"]
    world.advance(days=20)
    assert stored_answers(world) == 0


def test_the_person_an_order_is_about_is_masked_too_when_the_lifetime_ends(make_world):
    world = make_world(lifetime_days=30)
    parent, child = world.add_patient(), make_synthetic(Random(5), date(2016, 5, 6))
    world.add_patient(nationalId=child, reachable=[])
    world.order("registry-a", parent, onBehalfOfNationalId=child)
    world.settle()
    assert child.encode() in raw_bytes(world.state_dir)
    world.advance(days=31)
    with sqlite3.connect(world.config.database_path) as db:
        assert db.execute("SELECT on_behalf_of FROM eprom_orders").fetchall() == [(child[:6] + "*****",)]
    assert child.encode() not in raw_bytes(world.state_dir), "the child's id is still in the database files"


def test_callbacks_not_delivered_when_the_lifetime_ends_are_deleted_with_a_warning(make_world, caplog):
    """The lifetime bounds what is kept, delivered or not; the operator hears of what never reached a
    registry (before: only an INFO line that the lifetime ended)."""
    world = make_world(lifetime_days=10)
    world.recorders["registry-b"].mode = "fail"
    patient = world.add_patient()
    world.order("registry-a", patient)
    world.order("registry-b", patient)
    world.settle()
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"q1": 3})
    world.settle()
    assert {d.state for d in world.deliveries(registry="registry-b")} == {"pending"}
    caplog.set_level(logging.INFO)
    world.advance(days=11)
    assert world.deliveries() == []
    (warning,) = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert warning.levelname == "WARNING" and "with 2 callback(s)" in warning.getMessage()
