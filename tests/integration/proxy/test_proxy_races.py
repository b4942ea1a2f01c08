"""Race safety (issue 4, item 4) with real concurrency against live servers: many registries ordering the
same form for the same patient at the same instant make exactly as many ePROM orders as the linking table
says, also when the orders arrive through two proxy instances sharing one database (what two gunicorn
workers are); and two instances draining one outbox send each delivery once."""
from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from datetime import timedelta

from proxy.app import EXTENSION, create_app
from service_kit.runtime import Runtime
from service_kit.server import LiveServer

from proxy_world import WAIT, fire, place

REGISTRIES = [f"reg-{i:02d}" for i in range(12)]


def links_by_registry(database) -> dict[str, list[str]]:
    db = sqlite3.connect(database)
    try:
        rows = db.execute("SELECT registry, order_key FROM registry_orders").fetchall()
    finally:
        db.close()
    found: dict[str, list[str]] = {}
    for registry, order_key in rows:
        found.setdefault(registry, []).append(order_key)
    return found


def test_twelve_registries_at_once_make_one_eprom_order_and_twelve_links(make_world):
    world = make_world(registries=REGISTRIES, pump=True)
    patient = world.add_patient()
    replies = fire([lambda s, r=r: place(world.proxy_url, r, patient, s) for r in REGISTRIES])
    assert [r.status_code for r in replies] == [200] * len(REGISTRIES)
    own_ids = [r.json()["id"] for r in replies]
    assert len(set(own_ids)) == len(REGISTRIES)
    assert len(world.eprom_orders(patient)) == 1
    links = links_by_registry(world.config.database_path)
    assert sorted(links) == REGISTRIES and len({k for keys in links.values() for k in keys}) == 1
    for registry, own in zip(REGISTRIES, own_ids):
        assert world.recorders[registry].wait_for(lambda rec, own=own: rec.statuses(own) == ["Ordered"])


def test_each_registry_ordering_twice_at_once_makes_two_eprom_orders_each_registry_on_both(make_world):
    world = make_world(registries=REGISTRIES[:8], pump=True)
    patient = world.add_patient()
    calls = [lambda s, r=r: place(world.proxy_url, r, patient, s) for r in REGISTRIES[:8] for _ in range(2)]
    replies = fire(calls)
    assert all(r.status_code == 200 for r in replies)
    assert len(world.eprom_orders(patient)) == 2  # the most orders any one registry placed
    links = links_by_registry(world.config.database_path)
    assert all(len(set(keys)) == 2 for keys in links.values()), links


def test_orders_for_different_patients_at_once_are_not_confused(make_world):
    world = make_world(registries=REGISTRIES[:6], pump=True)
    patients = [world.add_patient() for _ in range(4)]
    calls = [lambda s, r=r, p=p: place(world.proxy_url, r, p, s) for p in patients for r in REGISTRIES[:6]]
    assert all(r.status_code == 200 for r in fire(calls))
    assert [len(world.eprom_orders(p)) for p in patients] == [1, 1, 1, 1]


class SecondWorker:
    """Another proxy app on the same state directory and database, on the same timeline: what a second
    gunicorn worker is, but in this process (its own store, connections, locks and liveness token)."""

    def __init__(self, world):
        self.server = LiveServer("proxy-2")
        app = create_app(world.config, Runtime(world.clock, world.timeline, seed=99, sim=True))
        self.service = app.extensions[EXTENSION]
        self.server.mount(app)
        self.server.start()

    def stop(self):
        self.server.stop()
        self.service.close()
        self.service.store.close()


def test_two_workers_sharing_the_database_still_make_one_eprom_order(make_world):
    world = make_world(registries=REGISTRIES, pump=True)
    second = SecondWorker(world)
    try:
        for round_ in range(3):
            patient = world.add_patient()
            urls = [world.proxy_url if i % 2 else second.server.url for i in range(len(REGISTRIES))]
            replies = fire([lambda s, r=r, u=u: place(u, r, patient, s) for r, u in zip(REGISTRIES, urls)])
            assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
            assert len(world.eprom_orders(patient)) == 1, f"round {round_}: duplicate ePROM orders"
            for registry, reply in zip(REGISTRIES, replies):
                own = reply.json()["id"]
                assert world.recorders[registry].wait_for(lambda rec, own=own: rec.statuses(own) == ["Ordered"])
    finally:
        second.stop()


def test_two_workers_draining_one_outbox_send_each_delivery_once(make_world):
    world = make_world(registries=REGISTRIES[:6])  # pump off: the test runs both drains itself
    second = SecondWorker(world)
    try:
        for registry in REGISTRIES[:6]:
            world.recorders[registry].mode = "fail"
        patients = [world.add_patient() for _ in range(5)]
        for patient in patients:
            for registry in REGISTRIES[:6]:
                world.order(registry, patient)
        world.settle()  # every status failed once: all 30 due again in 30 s
        for registry in REGISTRIES[:6]:
            world.recorders[registry].mode = "ok"
        world.clock.move_to(world.clock.now() + timedelta(minutes=1))
        now = world.clock.now()
        barrier = threading.Barrier(2)

        def drain(service):
            barrier.wait()
            service.run_due(now)

        threads = [threading.Thread(target=drain, args=(s,)) for s in (world.service, second.service)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert all(d.state == "done" for d in world.deliveries())
        for registry in REGISTRIES[:6]:
            sent = Counter(c.delivery_id for c in world.recorders[registry].snapshot())
            assert len(sent) == 5 and set(sent.values()) == {2}, "each: one failed attempt, one success"
    finally:
        second.stop()


def test_a_callback_that_reaches_another_worker_before_the_order_is_stored_is_not_lost(make_world):
    """ePROM calls back the moment it has answered; under gunicorn that callback may reach another worker
    before the worker that placed the order has stored ePROM's id. It is kept, and taken in when the id is
    stored: the registry gets the status (after its own answer), once."""
    world = make_world()
    second = SecondWorker(world)
    gateway = world.service.eprom
    real_place, real_send = gateway.place_order, gateway.send_message
    early: list = []

    def place_then_eprom_calls_the_other_worker(body):
        reply = real_place(body)
        early.append(second.service.accept_callback({
            "apiKey": world.config.eprom_api_key, "formOrderId": reply.body["id"], "notificationChannel": 1,
            "timestamp": "2025-01-06T09:00:00", "formOrderStatus": "Ordered", "formOrderStatusErrorCode": "None"}))
        return reply

    def send_then_eprom_calls_the_other_worker(body):
        reply = real_send(body)
        early.append(second.service.accept_message_callback({
            "apiKey": world.config.eprom_api_key, "messageToCitizenId": reply.body["messageToCitizenId"],
            "notificationChannel": 1, "sentStatus": "Sent"}))
        return reply

    gateway.place_order, gateway.send_message = place_then_eprom_calls_the_other_worker, \
        send_then_eprom_calls_the_other_worker
    try:
        patient = world.add_patient()
        own = world.order("registry-a", patient)["id"]
        letter = world.call("POST", "/api/v2/messagetocitizen", "registry-a", json={
            "nationalId": patient, "senderInfo": {"organisationName": "R"}, "messageInfo": {"title": "T"},
            "documentCollection": {"documents": [{"content": "JVBERi0xLjQK", "isMainDocument": True}]}})
        assert letter.status_code == 200, letter.text
    finally:
        gateway.place_order, gateway.send_message = real_place, real_send
        second.stop()
    assert early == [(200, {"success": True})] * 2
    world.settle()
    recorder = world.recorders["registry-a"]
    assert recorder.statuses(own) == ["Ordered"]
    assert [c.body.get("sentStatus") for c in recorder.snapshot() if c.path == "/api/MessageToCitizen"] == ["Sent"]
    assert len(recorder.snapshot()) == 2, "the fake ePROM sent the same two again: nothing doubled"
    assert world.service.store._db().execute("SELECT count(*) FROM early_callbacks").fetchone()[0] == 0


def test_an_order_that_fails_at_eprom_while_another_registry_decides_to_link_to_it_is_not_linked(world):
    """The linking decision reads the candidates under the patient's lock, but ePROM's callbacks do not take
    that lock: ePROM's Error can land between the decision and the link's write. An Error order is not
    active (SPEC §3), so the late registry must get an ePROM order of its own, not a link that replays Error."""
    patient = world.add_patient(reachable=[])  # ePROM's status callback for an order of theirs is Error
    first = world.order("registry-a", patient)["id"]
    store = world.service.store
    read_candidates = store.candidates

    def candidates_then_error(*args, **kwargs):
        found = read_candidates(*args, **kwargs)
        store.candidates = read_candidates  # once
        assert [c.state for c in found] == ["Pending"]  # active: the decision links to it
        world.settle()  # ePROM's Error for it comes in and is delivered
        assert world.recorders["registry-a"].statuses(first) == ["Error"]
        return found

    store.candidates = candidates_then_error
    second = world.order("registry-b", patient)["id"]
    world.settle()
    assert len(world.eprom_orders(patient)) == 2, "registry-b's order went on to ePROM as one of its own"
    links = links_by_registry(world.config.database_path)
    assert links["registry-b"] != links["registry-a"]
    assert world.recorders["registry-b"].statuses(second) == ["Error"]  # its own order's, once
    assert world.recorders["registry-a"].statuses(first) == ["Error"]  # and registry-a got nothing more
