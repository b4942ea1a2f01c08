"""Pass-throughs (issue 4, item 6) against the real fake ePROM: letters to citizens go out with ePROX's key
and their status comes back only to the registry that sent them, under its own id and key, through the
outbox; a signed document is served only to registries linked to the order whose answer carried it,
and everyone else gets the very 404 of a document that does not exist."""
from __future__ import annotations

import base64
import socketserver
import sqlite3
import time

import pytest

from proxy.gateways import MAX_DOCUMENT_BYTES
from proxy_world import SIGNED_FORM, key_of, order_body
from slow_http import Dribbler, serve

PDF = b"%PDF-1.4\n% a letter from a registry\n"
NOT_THERE = "0f0f0f0f-1111-4222-8333-444444444444"


def letter(national_id: str, **fields) -> dict:
    body = {"nationalId": national_id, "senderInfo": {"organisationName": "Hoftebruddregisteret"},
            "messageInfo": {"title": "Om registeret"},
            "documentCollection": {"documents": [{"title": "Brev", "content": base64.b64encode(PDF).decode(),
                                                  "isMainDocument": True}]}}
    body.update(fields)
    return body


def test_a_letter_goes_out_with_eproxs_key_and_its_status_comes_back_only_to_its_sender(world):
    patient = world.add_patient(reachable=["Helsenorge"])
    reply = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json=letter(patient))
    assert reply.status_code == 200, reply.text
    own_id = reply.json()["messageToCitizenId"]
    (held,) = world.session.get(f"{world.eprom_url}/_sim/messages").json()
    assert held["orderingSystem"] == "eprox", "ePROM must see the letter as ePROX's"
    assert own_id != held["id"], "ePROM's message id stays inside ePROX"
    world.settle()
    [call] = world.recorders["registry-a"].snapshot()
    assert call.path == "/api/MessageToCitizen" and call.acknowledged and call.delivery_id
    assert call.body["messageToCitizenId"] == own_id and call.body["apiKey"] == key_of("registry-a")
    assert call.body["sentStatus"] == "Sent"
    assert world.recorders["registry-b"].snapshot() == []
    (delivery,) = world.deliveries(registry="registry-a")
    assert delivery.state == "done" and delivery.id == call.delivery_id


def test_a_letter_status_is_retried_through_the_outbox(world):
    recorder = world.recorders["registry-b"]
    recorder.mode = "fail"
    reply = world.call("POST", "/api/v2/messagetocitizen", "registry-b", json=letter(world.add_patient()))
    own_id = reply.json()["messageToCitizenId"]
    world.settle()
    recorder.mode = "ok"
    world.advance(minutes=1)
    calls = recorder.snapshot()
    assert [c.acknowledged for c in calls] == [False, True]
    assert len({c.delivery_id for c in calls}) == 1 and calls[-1].body["messageToCitizenId"] == own_id


def test_letter_errors_come_back_as_eprom_says_them_without_the_national_id(world):
    patient = world.add_patient()
    no_main = letter(patient, documentCollection={"documents": []})
    reply = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json=no_main)
    assert reply.status_code == 400 and reply.json() == {"message": "Main document in MessageToCitizen is missing"}
    bad_id = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json=letter("26723916518"))
    assert bad_id.status_code == 400 and "26723916518" not in bad_id.text
    world.session.post(f"{world.eprom_url}/_sim/message-faults", json={"badGateway": 1})
    partner = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json=letter(patient))
    assert partner.status_code == 502 and "Helsenorge" in partner.json()["message"]
    unknown = world.call("POST", "/api/v2/messagetocitizen", headers={"Authorization": "Basic nope"},
                         json=letter(patient))
    assert unknown.status_code == 400 and unknown.json() == {"message": "apiKey 'nope' doesn't exists"}
    world.settle()
    assert world.deliveries() == []


def signed_answer(world, orderer: str, linker: str | None = None):
    patient = world.add_patient()
    own = {orderer: world.order(orderer, patient, formId=SIGNED_FORM)["id"]}
    if linker:
        own[linker] = world.order(linker, patient, formId=SIGNED_FORM)["id"]
    world.settle()
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"])
    world.settle()
    [completed] = [c for c in world.recorders[orderer].snapshot() if c.body.get("formOrderStatus") == "Completed"]
    return own, completed.body["signedFormId"]


def test_a_signed_document_is_served_to_each_registry_linked_to_its_order(make_world):
    world = make_world(registries=["registry-a", "registry-b", "registry-c"])
    own, document_id = signed_answer(world, "registry-a", "registry-b")
    assert document_id != "00000000-0000-0000-0000-000000000000"
    for registry in ("registry-a", "registry-b"):
        reply = world.call("GET", f"/api/ExternalDocument/{document_id}", registry)
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/pdf"
        assert reply.content.startswith(b"%PDF-")
    upper = world.call("GET", f"/api/ExternalDocument/{document_id.upper()}", "registry-b")
    assert upper.status_code == 200


def test_anyone_else_gets_exactly_the_404_of_a_document_that_does_not_exist(make_world):
    world = make_world(registries=["registry-a", "registry-b", "registry-c"])
    _, document_id = signed_answer(world, "registry-a")
    outsider = world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-c")
    missing = world.call("GET", f"/api/ExternalDocument/{NOT_THERE}", "registry-c")
    assert outsider.status_code == missing.status_code == 404
    assert outsider.json() == {"message": f"No signed document with id '{document_id}'"}
    assert missing.json() == {"message": f"No signed document with id '{NOT_THERE}'"}
    assert outsider.headers["Content-Type"] == missing.headers["Content-Type"]
    # nor a document ePROM has but that no answer through the proxy carried; nor the zero id
    zero = world.call("GET", "/api/ExternalDocument/00000000-0000-0000-0000-000000000000", "registry-a")
    assert zero.status_code == 404
    assert world.call("GET", f"/api/ExternalDocument/{document_id}").status_code == 401


def test_a_registry_that_links_after_the_answer_may_download_it_too(make_world):
    world = make_world(registries=["registry-a", "registry-b"])
    patient, _, _ = world.answered_order("registry-a", formId=SIGNED_FORM)
    before = world.call("GET", "/api/ExternalDocument/" + [
        c for c in world.recorders["registry-a"].snapshot() if c.body["formOrderStatus"] == "Completed"
    ][0].body["signedFormId"], "registry-b")
    assert before.status_code == 404
    b = world.order("registry-b", patient, formId=SIGNED_FORM)["id"]
    world.settle()
    [replayed] = [c for c in world.recorders["registry-b"].snapshot() if c.body["formOrderStatus"] == "Completed"]
    assert replayed.body["formOrderId"] == b
    after = world.call("GET", f"/api/ExternalDocument/{replayed.body['signedFormId']}", "registry-b")
    assert after.status_code == 200


@pytest.fixture
def unfit_eprom():
    """Where ePROM's documents come from in the next test: slow (/body...) or too large (/big...)."""
    yield from serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Dribbler), "http")


def test_a_document_eprom_sends_too_slowly_or_too_large_is_a_502_within_bounded_time(make_world, unfit_eprom,
                                                                                     monkeypatch):
    """A document download is bounded as a whole and in size: it is not held in memory past the cap, and a
    dribbling answer does not hold the registry's request for as long as ePROM likes."""
    world = make_world(registries=["registry-a"])
    _, document_id = signed_answer(world, "registry-a")
    gateway = world.service.eprom
    monkeypatch.setattr(gateway.transport, "timeout", 0.25)  # a document then has 1 s in all
    monkeypatch.setattr(Dribbler, "big", MAX_DOCUMENT_BYTES + 1)
    monkeypatch.setattr(gateway, "base", unfit_eprom + "/big")
    huge = world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-a")
    assert huge.status_code == 502
    assert huge.json() == {"message": "ePROM's document is larger than the 32 MiB ePROX passes on"}
    monkeypatch.setattr(gateway, "base", unfit_eprom + "/body")
    started = time.monotonic()
    slow = world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-a")
    assert slow.status_code == 502 and slow.json() == {"message": "ePROM did not answer: Timeout"}
    assert time.monotonic() - started < 10  # the whole dribbled answer would take 20 s
    monkeypatch.setattr(gateway, "base", world.eprom_url)  # and the real one serves it again
    assert world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-a").status_code == 200


def test_eprom_refusing_eproxs_key_for_a_document_is_a_502_that_says_so_and_an_error_in_the_log(make_world, monkeypatch,
                                                                                              caplog):
    """As for orders and letters (docs/PROXY.md, Trust): the registry hears that ePROM refused ePROX's
    credentials, and the operator gets an ERROR. It was "ePROM could not provide the document (HTTP 400)",
    and nothing in the log."""
    world = make_world(registries=["registry-a"])
    _, document_id = signed_answer(world, "registry-a")
    monkeypatch.setattr(world.service.eprom, "api_key", "a-key-epom-does-not-know")
    with caplog.at_level("ERROR", logger="proxy.service"):
        reply = world.call("GET", f"/api/ExternalDocument/{document_id}", "registry-a")
    assert reply.status_code == 502
    assert reply.json() == {"message": "ePROM refused ePROX's credentials; the ePROX operator has been told"}
    assert [r.getMessage() for r in caplog.records if r.name == "proxy.service"] == [
        "ePROM refused ePROX's apiKey (HTTP 400): check the proxy's configuration"]  # the guide's answer to it


def test_an_eprom_id_given_again_is_a_502_that_says_so_and_changes_nothing(make_world):
    """The real ePROM never gives an id twice; a fake ePROM started afresh on the proxy's kept state (same
    seed) does. The proxy then stores nothing and answers a 502 naming the problem (it was a 500)."""
    first = make_world()
    first.order("registry-a", first.add_patient())
    assert first.call("POST", "/api/v2/messagetocitizen", "registry-a",
                      json=letter(first.add_patient())).status_code == 200
    first.stop()
    again = make_world(state_dir=first.state_dir)  # the same seed: the same ePROM ids come round again
    again.add_patient(), again.add_patient()  # the same two patients as before, known to this ePROM too
    patient = again.add_patient()  # someone new: an order of their own goes on to ePROM
    before = rows(again)
    reply = again.call("POST", "/api/v2/formorder", "registry-b", json=order_body(patient))
    assert reply.status_code == 502, reply.text
    assert reply.json() == {"message": "ePROM answered the order with the id of an earlier order; the ePROX "
                                       "operator has been told"}
    reply = again.call("POST", "/api/v2/messagetocitizen", "registry-b", json=letter(patient))
    assert reply.status_code == 502, reply.text
    assert "the id of an earlier message" in reply.json()["message"]
    assert rows(again) == before


def rows(world) -> dict[str, list]:
    with sqlite3.connect(f"file:{world.config.database_path}?mode=ro", uri=True) as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                for t in ("eprom_orders", "registry_orders", "holds", "messages", "deliveries")}
