"""Idempotent intake (issue 4, item 2): whatever ePROM resends, in whatever order and however often at
once, each registry linked to an order gets each update under one delivery, once."""
from __future__ import annotations

import json
import threading
from collections import Counter

from proxy_world import EPROX_KEY, key_of


def status(eprom_id: str, value="Ordered") -> dict:
    return {"apiKey": EPROX_KEY, "formOrderId": eprom_id, "notificationChannel": 1, "timestamp": "2025-01-06T09:00:00",
            "timestampUtc": "2025-01-06T08:00:00Z", "formOrderStatus": value, "formOrderStatusErrorCode": "None"}


def returned(eprom_id: str, value="Completed") -> dict:
    return {"apiKey": EPROX_KEY, "formOrderId": eprom_id, "formOrderStatus": value,
            "formData": '{"q1": 4}' if value == "Completed" else None,
            "signedFormId": "00000000-0000-0000-0000-000000000000", "timestamp": "2025-01-06T10:00:00"}


def linked(world):
    patient = world.add_patient()
    a = world.order("registry-a", patient)["id"]
    b = world.order("registry-b", patient)["id"]
    (eprom_order,) = world.eprom_orders(patient)
    return a, b, eprom_order["id"]


def test_the_same_callback_sent_again_and_again_is_delivered_once_per_registry(world):
    a, b, eprom_id = linked(world)
    world.settle()  # ePROM's own Ordered went out
    for _ in range(3):
        assert world.call("PUT", "/api/PromsFormOrder", json=status(eprom_id)).json() == {"success": True}
        assert world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_id)).json() == {"success": True}
    world.settle()
    world.advance(days=1)
    for name, own in (("registry-a", a), ("registry-b", b)):
        recorder = world.recorders[name]
        assert recorder.statuses(own) == ["Ordered", "Completed"]
        assert len(recorder.snapshot()) == 2
    assert Counter(d.status for d in world.deliveries()) == {"Ordered": 2, "Completed": 2}


def test_resends_racing_each_other_queue_one_delivery(world):
    a, b, eprom_id = linked(world)
    world.settle()
    barrier = threading.Barrier(12)
    answers = []

    def resend():
        barrier.wait()
        answers.append(world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_id)).json())

    threads = [threading.Thread(target=resend) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [{"success": True}] * 12
    world.settle()
    assert Counter(d.status for d in world.deliveries()) == {"Ordered": 2, "Completed": 2}
    assert world.recorders["registry-a"].statuses(a) == ["Ordered", "Completed"]


def test_a_status_that_arrives_after_the_answer_is_passed_on_to_no_registry(world):
    """Status before answer, for every registry alike: the proxy cannot send a status it has not been told
    yet, so when ePROM's status comes after its answer (a status callback it had to retry) the registries
    have the answer already, and a status after it would set them back. Before, registry-a got Completed
    then Ordered, and a registry linking later Ordered then Completed."""
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    (eprom_order,) = world.eprom_orders(patient)
    # ePROM's own status callback has not gone yet (pump off, not settled): its answer comes first
    assert world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_order["id"])).json() == {"success": True}
    world.settle()  # and now ePROM's Ordered
    assert world.call("PUT", "/api/PromsFormOrder", json=status(eprom_order["id"])).json() == {"success": True}
    late = world.order("registry-b", patient)["id"]
    world.settle()
    assert world.recorders["registry-a"].statuses(own) == ["Completed"]
    assert len(world.recorders["registry-a"].snapshot()) == 1
    assert world.recorders["registry-b"].statuses(late) == ["Completed"]


def test_a_late_linker_gets_each_earlier_update_once_even_when_they_are_resent(world):
    patient, _, eprom_id = world.answered_order("registry-a", {"q1": 2})
    world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_id))
    b = world.order("registry-b", patient)["id"]
    world.call("PUT", "/api/PromsFormOrder", json=status(eprom_id))
    world.settle()
    assert world.recorders["registry-b"].statuses(b) == ["Ordered", "Completed"]
    assert len(world.recorders["registry-b"].snapshot()) == 2


def test_forged_and_malformed_callbacks_change_nothing(world):
    a, b, eprom_id = linked(world)
    world.settle()
    before = len(world.deliveries())
    forged = [dict(returned(eprom_id), apiKey=key) for key in ("registry-a-secret-key", "", "nope")]
    forged.append({k: v for k, v in returned(eprom_id).items() if k != "apiKey"})
    for body in forged:
        reply = world.call("PUT", "/api/PromsFormOrder", json=body)
        assert reply.json()["success"] is False and reply.status_code == 401
    for body in (dict(returned(eprom_id), formOrderId="not-a-uuid"), dict(returned(eprom_id), formOrderStatus="Done")):
        assert world.call("PUT", "/api/PromsFormOrder", json=body).json()["success"] is False
    unknown = dict(returned(eprom_id), formOrderId="11111111-2222-4333-8444-555555555555")
    assert world.call("PUT", "/api/PromsFormOrder", json=unknown).status_code == 404
    assert world.call("PUT", "/api/PromsFormOrder", data="{not json").json()["success"] is False
    world.settle()
    assert len(world.deliveries()) == before
    assert world.recorders["registry-a"].statuses(a) == ["Ordered"]


def test_an_answer_holding_nan_is_refused_and_later_registries_still_link_to_the_order(world):
    """Python's json reads NaN; taken in, it went on to the registry as `NaN` (no JSON parser reads that) and
    SQLite's json_set, which builds a late linker's replay, refused the stored answer: every later order
    for that patient and form was a 500 (found with a raw callback, fixed with eprom_protocol.json_text)."""
    patient = world.add_patient()
    a = world.order("registry-a", patient)["id"]
    world.settle()
    (eprom_order,) = world.eprom_orders(patient)
    for constant in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = json.dumps(dict(returned(eprom_order["id"]), formData=None)).replace('"formData": null',
                                                                                   f'"formData": {{"q1": {constant}}}')
        reply = world.call("PUT", "/api/PromsFormOrder", data=raw, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and reply.json()["success"] is False, reply.text
        assert reply.json()["message"].startswith("The request body is not valid JSON: ")
    world.settle()
    assert world.recorders["registry-a"].statuses(a) == ["Ordered"], "a refused callback changes nothing"
    world.answer(eprom_order["id"], {"q1": 4})  # ePROM sends it again, as JSON
    world.settle()
    b = world.order("registry-b", patient)["id"]
    world.settle()
    for name, own in (("registry-a", a), ("registry-b", b)):
        assert world.recorders[name].statuses(own) == ["Ordered", "Completed"]
        (answer,) = [c for c in world.recorders[name].snapshot() if c.body["formOrderStatus"] == "Completed"]
        assert answer.body["formOrderId"] == own


def test_a_callback_that_overtakes_its_order_waits_for_it_and_reaches_the_registry_after_its_answer(world):
    """ePROM may call back before the proxy has stored the id it just returned: the callback waits for the
    order in flight, is recorded, and its delivery is held until the registry has its own id."""
    gateway = world.service.eprom
    real_place = gateway.place_order
    callback: dict = {}

    def place_and_call_back_at_once(body):
        reply = real_place(body)
        thread = threading.Thread(target=lambda: callback.update(
            answer=world.service.accept_callback(status(reply.body["id"]))))
        thread.start()
        callback["thread"] = thread
        return reply

    gateway.place_order = place_and_call_back_at_once
    try:
        result = world.service.place_order(world.config.registry_by_name["registry-a"],
                                           {"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a",
                                            "nationalId": world.add_patient(), "expiryDate": "2030-01-01"})
    finally:
        gateway.place_order = real_place
    callback["thread"].join(30)
    assert callback["answer"] == (200, {"success": True})
    (held,) = world.deliveries(registry="registry-a")
    world.settle()
    assert world.recorders["registry-a"].snapshot() == [], "sent before the registry had its id"
    world.service.release(result.hold)  # what the view does once the HTTP answer has gone
    world.settle()
    assert world.recorders["registry-a"].statuses(result.body["id"]) == ["Ordered"]


def test_a_patient_initiated_answer_no_registry_ordered_is_acknowledged_and_not_kept(world):
    body = dict(returned("5a5a5a5a-1111-4222-8333-444444444444"), isPatientInitiated=True,
                patientInitiatedValues={"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "nationalId": "26723916517"})
    assert world.call("PUT", "/api/PromsFormOrder", json=body).json() == {"success": True}
    world.settle()
    assert world.deliveries() == [] and all(not r.snapshot() for r in world.recorders.values())


def test_an_early_callback_whose_id_is_never_stored_is_dropped_after_an_hour(world):
    store = world.service.store
    unknown = returned("6b6b6b6b-1111-4222-8333-444444444444")
    with world.service.calls.calling():  # an order on its way to ePROM, which then fails after ePROM made it
        assert world.call("PUT", "/api/PromsFormOrder", json=unknown).json() == {"success": True}
    # the id is never stored
    count = "SELECT count(*) FROM early_callbacks"
    assert store._db().execute(count).fetchone()[0] == 1
    world.advance(minutes=59)
    assert store._db().execute(count).fetchone()[0] == 1
    world.advance(minutes=2)
    assert store._db().execute(count).fetchone()[0] == 0
    assert world.deliveries() == []


def test_a_malformed_callback_with_eproxs_key_is_refused_and_epoms_correct_one_still_gets_through(world):
    """Only the id and the status were checked: a Completed with formData as an object, no timestamp and a
    made-up channel was acknowledged, passed on as it was, and ePROM's correct Completed after it dropped as
    a resend. Now the whole callback must be one of its kind (the callback schemas), else a 400 that changes
    nothing."""
    a, b, eprom_id = linked(world)
    world.settle()
    good = returned(eprom_id)
    malformed = [
        dict(good, formData={"q1": 4}),
        {k: v for k, v in good.items() if k != "timestamp"},
        dict(good, notificationChannel="Pigeon"),
        dict(good, signedFormId=42),
        dict(good, formOrderEventLog="x"),
        dict(good, filledOutBy="26723916517"),
        {k: v for k, v in status(eprom_id).items() if k != "formOrderStatusErrorCode"},
        dict(status(eprom_id, "Error"), notificationChannel=9),
    ]
    for body in malformed:
        reply = world.call("PUT", "/api/PromsFormOrder", json=body)
        assert reply.status_code == 400 and reply.json()["success"] is False, (body, reply.text)
        assert reply.json()["message"]
        assert "26723916517" not in reply.text
    world.settle()
    assert world.recorders["registry-a"].statuses(a) == ["Ordered"], "a refused callback changes nothing"
    assert world.call("PUT", "/api/PromsFormOrder", json=good).json() == {"success": True}
    world.settle()
    for name, own in (("registry-a", a), ("registry-b", b)):
        assert world.recorders[name].statuses(own) == ["Ordered", "Completed"]
        (answer,) = [c for c in world.recorders[name].snapshot() if c.body["formOrderStatus"] == "Completed"]
        assert answer.body == dict(good, apiKey=key_of(name), formOrderId=own)


def test_callback_refusals_never_echo_a_national_id(world):
    a, b, eprom_id = linked(world)
    world.settle()
    for nid in ("26723916517", "267239 16517", "267239-16517"):
        for path, body in (("/api/PromsFormOrder", dict(returned(eprom_id), formOrderId=nid)),
                           ("/api/PromsFormOrder", dict(returned(eprom_id), formOrderStatus=nid)),
                           ("/api/MessageToCitizen", {"apiKey": EPROX_KEY, "messageToCitizenId": nid,
                                                      "notificationChannel": 1, "sentStatus": "Sent"})):
            reply = world.call("PUT", path, json=body)
            assert reply.status_code == 400 and reply.json()["success"] is False
            assert "267239*****" in reply.text or "267239 *****" in reply.text or "267239-*****" in reply.text
            assert nid not in reply.text and "16517" not in reply.text


def test_updates_that_would_set_an_order_back_reach_no_registry_and_an_answer_always_does(world):
    """A second final status, or a status after an Error, came from a callback that was overtaken (or from
    a faulty sender with ePROX's key): registries got Completed then Expired, and a late Ordered made an Error
    order active again, so the next registry was linked to a failed order instead of getting a new one."""
    answered, expired, failed = (world.add_patient() for _ in range(3))
    own = {p: world.order("registry-a", p)["id"] for p in (answered, expired, failed)}
    eprom = {p: world.eprom_orders(p)[0]["id"] for p in own}
    world.settle()  # each one's Ordered
    for body in (returned(eprom[answered]), returned(eprom[answered], "Expired"),  # Expired after Completed
                 returned(eprom[expired], "Expired"), returned(eprom[expired]),     # an answer after Expired
                 dict(status(eprom[failed], "Error"), formOrderStatusErrorCode="PatientUnreachable"),
                 status(eprom[failed], "Ordered")):  # Ordered after Error (a resend of the first: the same)
        assert world.call("PUT", "/api/PromsFormOrder", json=body).json() == {"success": True}
    world.settle()
    heard = {p: world.recorders["registry-a"].statuses(own[p]) for p in own}
    assert heard == {answered: ["Ordered", "Completed"], expired: ["Ordered", "Expired", "Completed"],
                     failed: ["Ordered", "Error"]}
    late = {p: world.order("registry-b", p)["id"] for p in own}
    world.settle()
    assert len(world.eprom_orders(failed)) == 2, "an Error order is not active: the next order is a new one"
    assert world.recorders["registry-b"].statuses(late[answered]) == ["Ordered", "Completed"]
    assert world.recorders["registry-b"].statuses(late[expired]) == ["Ordered", "Expired", "Completed"]


def test_an_expired_after_an_error_does_not_make_the_order_active_again(world):
    patient = world.add_patient(reachable=[])
    own = world.order("registry-a", patient)["id"]
    (eprom_order,) = world.eprom_orders(patient)
    world.settle()  # ePROM's Error: the patient cannot be reached
    assert world.recorders["registry-a"].statuses(own) == ["Error"]
    assert world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_order["id"], "Expired")).json() == \
        {"success": True}
    late = world.order("registry-b", patient)["id"]
    world.settle()
    assert world.recorders["registry-a"].statuses(own) == ["Error"]
    assert len(world.eprom_orders(patient)) == 2, "an Error order is not active: the next order is a new one"
    assert world.recorders["registry-b"].statuses(late) == ["Error"]  # its own order's


def test_an_ordered_after_an_error_does_not_make_the_order_active_again(world):
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    (eprom_order,) = world.eprom_orders(patient)
    # ePROM's Ordered has not gone yet (pump off, not settled): an Error overtakes it
    error = dict(status(eprom_order["id"], "Error"), formOrderStatusErrorCode="PatientUnreachable", notificationChannel=0)
    assert world.call("PUT", "/api/PromsFormOrder", json=error).json() == {"success": True}
    world.settle()  # and now ePROM's own Ordered
    assert world.recorders["registry-a"].statuses(own) == ["Error"]
    late = world.order("registry-b", patient)["id"]
    world.settle()
    assert len(world.eprom_orders(patient)) == 2
    assert world.recorders["registry-b"].statuses(late) == ["Ordered"]


def test_a_letter_gets_one_status_the_first(world):
    patient = world.add_patient(reachable=["Helsenorge"])
    letter = {"nationalId": patient, "documentCollection": {"documents": [
        {"title": "Brev", "content": "JVBERi0xLjQK", "isMainDocument": True}]}}
    own = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json=letter).json()["messageToCitizenId"]
    (held,) = world.session.get(f"{world.eprom_url}/_sim/messages").json()
    world.settle()  # ePROM's Sent
    late_error = {"apiKey": EPROX_KEY, "messageToCitizenId": held["id"], "notificationChannel": 0, "sentStatus": "Error"}
    assert world.call("PUT", "/api/MessageToCitizen", json=late_error).json() == {"success": True}
    world.settle()
    assert [c.body["sentStatus"] for c in world.recorders["registry-a"].snapshot()] == ["Sent"]
    assert {c.body["messageToCitizenId"] for c in world.recorders["registry-a"].snapshot()} == {own}


def test_a_callback_naming_its_order_in_upper_case_is_taken_in_for_that_order(world):
    """A uuid is the same in either case; the order was a 404 'unknown formOrderId', which ePROM would have
    sent again for ever."""
    a, b, eprom_id = linked(world)
    world.settle()
    assert world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_id.upper())).json() == {"success": True}
    assert world.call("PUT", "/api/PromsFormOrder", json=returned(eprom_id)).json() == {"success": True}  # a resend
    world.settle()
    for name, own in (("registry-a", a), ("registry-b", b)):
        assert world.recorders[name].statuses(own) == ["Ordered", "Completed"]


def test_a_large_answer_is_taken_in_and_one_beyond_the_callback_limit_is_refused_as_such(world):
    """A returned form over the 1 MiB every other body gets was refused on every resend: never delivered."""
    from proxy.views import CALLBACK_MAX_BODY

    a, b, eprom_id = linked(world)
    world.settle()
    huge = dict(returned(eprom_id), formData=json.dumps({"q1": "x" * (CALLBACK_MAX_BODY + 1)}))
    refused = world.call("PUT", "/api/PromsFormOrder", json=huge)
    assert refused.status_code == 400 and refused.json()["success"] is False
    large = dict(returned(eprom_id), formData=json.dumps({"q1": "x" * (3 << 20)}))
    assert world.call("PUT", "/api/PromsFormOrder", json=large).json() == {"success": True}
    world.settle()
    assert world.recorders["registry-a"].statuses(a) == ["Ordered", "Completed"]


def test_json_no_dotnet_reader_takes_is_a_400_and_changes_nothing(world):
    """A body nested 970 deep was taken in and failed as a 500 (with a traceback in the log) when the order was
    written on to ePROM; a callback whose apiKey held a lone surrogate was a 500 before its key was checked."""
    a, b, eprom_id = linked(world)
    world.settle()
    before = len(world.deliveries())
    patient = world.add_patient()
    deep = json.dumps({"formId": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "nationalId": patient,
                       "expiryDate": "2099-01-01", "extra": None}).replace("null", "[" * 970 + "]" * 970)
    for path in ("/api/v2/formorder", "/api/v2/messagetocitizen"):
        reply = world.call("POST", path, "registry-a", data=deep, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400, reply.text
        assert reply.json()["message"] == "The request body is not valid JSON: nested too deeply (at most 64 levels)"
    escaped = json.dumps(returned(eprom_id)).replace(json.dumps(EPROX_KEY), '"\\ud800"').encode()
    raw = json.dumps(returned(eprom_id)).encode().replace(json.dumps(EPROX_KEY).encode(), b'"\xed\xa0\x80"')
    for lone in (escaped, raw):  # raw: UTF-8 bytes json.loads reads with "surrogatepass"
        reply = world.call("PUT", "/api/PromsFormOrder", data=lone, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and reply.json()["success"] is False, reply.text
        assert "lone surrogate" in reply.json()["message"]
    world.settle()
    assert len(world.deliveries()) == before
    assert world.eprom_orders(patient) == []
    assert world.recorders["registry-a"].statuses(a) == ["Ordered"]
