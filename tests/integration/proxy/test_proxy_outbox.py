"""The transactional outbox (issue 4, item 1), against live servers in this process: a callback is
answered success only once its deliveries are committed; a delivery is done only on 2xx with
{"success": true}; retries back off from under a minute to an hour, for at least three days, then the
delivery is parked dead, visible and replayable; per registry order the status goes before the answer;
and a slow registry holds up no other."""
from __future__ import annotations

import json
import socket
import sqlite3
from datetime import timedelta

import pytest

from proxy.cli import main as proxy_cli

from proxy_world import EPROX_KEY


def linked_pair(world, patient=None):
    """registry-a orders, registry-b links; both got their Ordered status. Returns (patient, a, b, eprom id)."""
    patient = patient or world.add_patient()
    a = world.order("registry-a", patient)["id"]
    world.settle()
    b = world.order("registry-b", patient)["id"]
    world.settle()
    (eprom_order,) = world.eprom_orders(patient)
    return patient, a, b, eprom_order["id"]


def completed(eprom_id: str, form_data='{"q1": 3}') -> dict:
    return {"apiKey": EPROX_KEY, "formOrderId": eprom_id, "formOrderStatus": "Completed", "formData": form_data,
            "signedFormId": "00000000-0000-0000-0000-000000000000", "timestamp": "2025-01-06T09:00:00",
            "notificationChannel": 1}


def test_a_callback_is_acknowledged_only_once_a_delivery_per_linked_registry_is_committed(world, monkeypatch):
    _, a, b, eprom_id = linked_pair(world)
    store = world.service.store
    real_add = store.add_delivery
    calls = []

    def add_then_fail(db, **row):  # the first registry's row is written, then the database fails
        calls.append(row["registry"])
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real_add(db, **row)

    monkeypatch.setattr(store, "add_delivery", add_then_fail)
    reply = world.call("PUT", "/api/PromsFormOrder", json=completed(eprom_id))
    assert reply.status_code == 500 and reply.json()["success"] is False
    assert [d.status for d in world.deliveries() if d.status == "Completed"] == []  # rolled back, all of it

    monkeypatch.setattr(store, "add_delivery", real_add)
    reply = world.call("PUT", "/api/PromsFormOrder", json=completed(eprom_id))  # ePROM sends it again
    assert reply.json() == {"success": True}
    assert sorted(d.registry for d in world.deliveries() if d.status == "Completed") == ["registry-a", "registry-b"]
    world.settle()
    assert world.recorders["registry-a"].statuses(a) == ["Ordered", "Completed"]
    assert world.recorders["registry-b"].statuses(b) == ["Ordered", "Completed"]


@pytest.mark.parametrize("mode", ["fail", "false", "empty", "nan"])
def test_a_delivery_is_done_only_on_2xx_with_success_true_and_keeps_its_delivery_id(world, mode):
    recorder = world.recorders["registry-a"]
    recorder.mode = mode
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    world.settle()
    (delivery,) = world.deliveries(registry="registry-a")
    assert delivery.state == "pending" and delivery.attempts == 1 and delivery.failed
    world.advance(seconds=30)
    assert world.deliveries(registry="registry-a")[0].attempts == 2
    recorder.mode = "ok"
    world.advance(minutes=1)
    (delivery,) = world.deliveries(registry="registry-a")
    assert delivery.state == "done" and delivery.attempts == 3 and delivery.body is None
    calls = recorder.snapshot()
    assert len(calls) == 3 and {c.delivery_id for c in calls} == {delivery.id}
    assert recorder.statuses(own) == ["Ordered"]
    world.advance(days=4)
    assert len(recorder.snapshot()) == 3, "a delivery recorded as done was sent again"


def test_retries_back_off_within_a_minute_to_at_most_an_hour_for_three_days_then_dead_and_replayable(world, capsys):
    recorder = world.recorders["registry-a"]
    recorder.mode = "fail"
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    world.settle()
    world.advance(days=4)
    attempts = [c.at for c in recorder.snapshot()]
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
    assert gaps[0] <= timedelta(minutes=1), "the first retry must come within a minute"
    assert max(gaps) <= timedelta(hours=1)
    assert gaps == sorted(gaps), "the backoff never shrinks"
    assert attempts[-1] - attempts[0] >= timedelta(days=3)
    (dead,) = world.deliveries(registry="registry-a")
    assert dead.state == "dead" and dead.attempts == len(attempts) and dead.body is not None

    # visible: through the sim API and the operator's command
    listed = world.call("GET", "/_sim/deliveries", params={"state": "dead"}).json()
    assert [d["id"] for d in listed] == [dead.id]
    assert proxy_cli(["deliveries", "--state-dir", str(world.state_dir), "--state", "dead", "--json"]) == 0
    assert [d["id"] for d in json.loads(capsys.readouterr().out)] == [dead.id]

    # replayed: the same delivery id, due at once, with a fresh retry window
    recorder.mode = "ok"
    assert proxy_cli(["replay", "--state-dir", str(world.state_dir), "--all-dead"]) == 0
    world.settle()
    (done,) = world.deliveries(registry="registry-a")
    assert done.state == "done"
    assert recorder.snapshot()[-1].delivery_id == dead.id and recorder.statuses(own) == ["Ordered"]


def test_a_replayed_delivery_that_fails_again_gets_three_more_days(world):
    recorder = world.recorders["registry-a"]
    recorder.mode = "fail"
    world.order("registry-a", world.add_patient())
    world.settle()
    world.advance(days=4)
    (dead,) = world.deliveries(registry="registry-a")
    assert world.service.store.revive([dead.id]) == 1
    world.settle()
    world.advance(days=2)
    (again,) = world.deliveries(registry="registry-a")
    assert again.state == "pending", "a replay must not be parked again at its first failure"
    world.advance(days=2)
    assert world.deliveries(registry="registry-a")[0].state == "dead"


def test_per_registry_order_the_status_goes_before_the_answer(world):
    a_rec = world.recorders["registry-a"]
    a_rec.mode = "fail"
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    world.settle()  # Ordered failed once, retry in 30 s
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"q1": 1})
    world.settle()
    assert [c.body["formOrderStatus"] for c in a_rec.snapshot()] == ["Ordered"], "the answer overtook the status"
    a_rec.mode = "ok"
    world.advance(minutes=1)
    assert a_rec.statuses(own) == ["Ordered", "Completed"]


def test_one_slow_registry_delays_no_other(live_world):
    slow, quick = live_world.recorders["registry-a"], live_world.recorders["registry-b"]
    slow.close_gate()  # registry-a takes every callback and does not answer until the test says so
    try:
        patient = live_world.add_patient()
        a = live_world.order("registry-a", patient)["id"]
        assert slow.wait_for(lambda r: r.waiting == 1)
        b = live_world.order("registry-b", patient)["id"]
        assert quick.wait_for(lambda r: r.statuses(b) == ["Ordered"])
        (eprom_order,) = live_world.eprom_orders(patient)
        live_world.answer(eprom_order["id"], {"q1": 2})
        assert quick.wait_for(lambda r: r.statuses(b) == ["Ordered", "Completed"]), \
            "registry-b waited for registry-a"
        assert slow.waiting == 1 and slow.statuses(a) == []
    finally:
        slow.open_gate()
    assert slow.wait_for(lambda r: r.statuses(a) == ["Ordered", "Completed"])
    assert live_world.settle() == 0


def test_many_slow_callbacks_to_one_registry_use_only_its_own_lane(make_world):
    world = make_world(registries=["slow", "quick"], pump=True)
    slow, quick = world.recorders["slow"], world.recorders["quick"]
    slow.close_gate()
    try:
        patients = [world.add_patient() for _ in range(8)]
        for patient in patients:
            world.order("slow", patient)
        width = world.config.lane_width
        assert slow.wait_for(lambda r: r.waiting == width), "the lane should fill to its width"
        quick_ids = [world.order("quick", world.add_patient())["id"] for _ in range(5)]
        assert quick.wait_for(lambda r: all(r.statuses(i) == ["Ordered"] for i in quick_ids))
        assert slow.waiting == width, "the slow registry's lane is still full"
    finally:
        slow.open_gate()
    assert slow.wait_for(lambda r: len(r.acknowledged()) == 8)


def test_a_late_linkers_replay_stops_at_its_first_failure_and_resumes_in_order(world):
    patient, _, _ = world.answered_order("registry-a", {"q1": 2})
    b_rec = world.recorders["registry-b"]
    b_rec.mode = "fail"
    b = world.order("registry-b", patient)["id"]  # its replay: Ordered, then Completed
    world.settle()
    assert [c.body["formOrderStatus"] for c in b_rec.snapshot()] == ["Ordered"], "the answer overtook the status"
    ordered, answer = sorted(world.deliveries(registry="registry-b"), key=lambda d: d.status != "Ordered")
    assert (ordered.state, ordered.attempts, answer.state, answer.attempts) == ("pending", 1, "pending", 0)
    b_rec.mode = "ok"
    world.advance(minutes=1)
    assert b_rec.statuses(b) == ["Ordered", "Completed"]
    # one stable X-Delivery-Id per update and registry order: the same on the failed and the good attempt
    assert [c.delivery_id for c in b_rec.snapshot()] == [f"{b}.Ordered", f"{b}.Ordered", f"{b}.Completed"]
    assert {d.state for d in world.deliveries(registry="registry-b")} == {"done"}


def test_a_callback_queued_before_a_registry_key_was_rotated_goes_out_with_the_new_key(make_world):
    """Callbacks are stored with the key of their registry as it was when they were queued; the operator may
    rotate that key before they are delivered (a retry, a replay). They go out with the key configured now:
    the registry would refuse the old one, for ever."""
    first = make_world()
    first.recorders["registry-a"].mode = "fail"
    own = first.order("registry-a", first.add_patient())["id"]
    first.settle()
    assert [c.body["apiKey"] for c in first.recorders["registry-a"].snapshot()] == ["registry-a-secret-key"]
    first.stop()
    again = make_world(state_dir=first.state_dir, seed=first.seed + 1, keys={"registry-a": "rotated-key"})
    again.advance(minutes=2)  # the retry is due
    (call,) = again.recorders["registry-a"].acknowledged()
    assert (call.delivery_id, call.body["formOrderId"], call.body["apiKey"]) == (f"{own}.Ordered", own, "rotated-key")


def test_a_dead_status_holds_back_the_answer_until_it_is_replayed_then_both_go_in_order(world, capsys):
    """Status before answer also across parking and replay: before, once the status was dead the answer went
    ahead (its own fresh retry window), and a replay then delivered the status after the answer."""
    recorder = world.recorders["registry-a"]
    recorder.mode = "fail"
    patient = world.add_patient()
    own = world.order("registry-a", patient)["id"]
    world.settle()
    world.advance(days=4)  # the status is dead
    recorder.mode = "ok"
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"q1": 1})
    world.settle()
    world.advance(days=5)  # more than one retry window later
    assert recorder.statuses(own) == [], "the answer overtook the dead status"
    waiting = {d.status: d for d in world.deliveries(registry="registry-a")}
    assert (waiting["Ordered"].state, waiting["Completed"].state, waiting["Completed"].attempts) == \
        ("dead", "pending", 0), "it waits, unattempted, and no window of its own runs out"
    assert proxy_cli(["deliveries", "--state-dir", str(world.state_dir), "--json"]) == 0  # and the operator sees why
    listed = {d["status"]: d["waitsBehind"] for d in json.loads(capsys.readouterr().out)}
    assert listed == {"Ordered": None, "Completed": waiting["Ordered"].id}
    assert proxy_cli(["deliveries", "--state-dir", str(world.state_dir)]) == 0
    assert f"waits behind dead {waiting['Ordered'].id}" in capsys.readouterr().out
    assert proxy_cli(["replay", "--state-dir", str(world.state_dir), "--id", waiting["Ordered"].id]) == 0
    capsys.readouterr()
    world.settle()
    assert recorder.statuses(own) == ["Ordered", "Completed"]


def test_a_dead_delivery_to_a_registry_since_removed_is_parked_again_if_replayed(make_world, capsys):
    """Replaying it puts it back in the queue; no lane can ever send it. The running proxy parks it as dead
    again (before: pending for ever, until the next start)."""
    first = make_world(registries=["registry-a", "registry-b"])
    first.recorders["registry-b"].mode = "fail"
    first.order("registry-b", first.add_patient())
    first.settle()
    first.advance(days=4)
    (dead,) = first.deliveries(registry="registry-b")
    assert dead.state == "dead"
    first.stop()
    again = make_world(registries=["registry-a"], state_dir=first.state_dir, seed=first.seed + 1)
    assert proxy_cli(["replay", "--state-dir", str(again.state_dir), "--all-dead"]) == 0
    capsys.readouterr()
    assert again.service.store.deliveries(registry="registry-b")[0].state == "pending"
    again.settle()  # the pump's next look at the outbox finds it
    (parked,) = again.service.store.deliveries(registry="registry-b")
    assert (parked.state, parked.id) == ("dead", dead.id)


def test_a_registry_removed_at_a_restart_has_an_error_per_parked_delivery_with_the_replay_command(make_world, caplog):
    first = make_world(registries=["registry-a", "registry-b"])
    first.recorders["registry-b"].mode = "fail"
    first.order("registry-b", first.add_patient())
    first.settle()
    (pending,) = first.deliveries(registry="registry-b")
    first.stop()
    again = make_world(registries=["registry-a"], state_dir=first.state_dir, seed=first.seed + 1)
    (parked,) = again.deliveries(registry="registry-b")
    assert (parked.id, parked.state) == (pending.id, "dead")
    (line,) = [r for r in caplog.records if pending.id in r.getMessage()]
    assert line.levelname == "ERROR" and f"proxy replay --id {pending.id}" in line.getMessage()


def test_an_older_process_does_not_park_the_deliveries_of_a_registry_added_after_it_started(make_world):
    """A rolling deploy adds registry-c: the new process starts on the database while the old one, whose
    configuration lacks registry-c, still runs. The old one parked registry-c's failing delivery as dead
    within a second ('registry no longer configured'), and the registry order's later updates then waited
    behind it until someone replayed it. Only the process started last parks while running."""
    old = make_world(registries=["registry-a", "registry-b"])
    new = make_world(registries=["registry-a", "registry-b", "registry-c"], state_dir=old.state_dir,
                     seed=old.seed + 1)
    new.recorders["registry-c"].mode = "fail"
    new.order("registry-c", new.add_patient())
    new.settle()
    (failing,) = new.deliveries(registry="registry-c")
    assert failing.state == "pending"
    old.advance(minutes=5)  # the old process's pump looks at the outbox
    assert old.deliveries(registry="registry-c")[0].state == "pending"
    new.recorders["registry-c"].mode = "ok"
    new.advance(minutes=5)
    assert new.deliveries(registry="registry-c")[0].state == "done"


@pytest.mark.parametrize("callback_url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1",
                                          "http://127.0.0.1:{listening}/sk\u00f8jema"])
def test_a_callback_url_no_request_can_be_sent_to_is_a_failed_attempt_retried_with_backoff(make_world, caplog,
                                                                                          callback_url):
    """The HTTP client raised ValueError for these (a port out of range, not a number, a broken host, a path
    that is not ASCII); the lane gave the delivery back at once and claimed it again at once: about 700
    attempts a second, each logged with a traceback, never retried with backoff nor parked. Now it is a
    failed attempt like a refused connection, and dead after three days."""
    listening = socket.create_server(("127.0.0.1", 0))  # connects, so the path is what cannot be sent
    callback_url = callback_url.format(listening=listening.getsockname()[1])
    world = make_world(registries=["registry-a", "registry-b"], callback_urls={"registry-a": callback_url})
    patient = world.add_patient()
    own = {name: world.order(name, patient)["id"] for name in ("registry-a", "registry-b")}
    world.settle()
    (failed,) = world.deliveries(registry="registry-a")
    assert (failed.state, failed.attempts) == ("pending", 1)
    assert failed.last_error.startswith("UnsendableRequest: the request cannot be sent as given")
    assert failed.next_attempt_at > world.clock.now()
    assert world.recorders["registry-b"].statuses(own["registry-b"]) == ["Ordered"], "the other registry is not held up"
    assert "Traceback" not in caplog.text
    world.advance(days=4)
    (dead,) = world.deliveries(registry="registry-a")
    assert dead.state == "dead" and 20 < dead.attempts < 200
    listening.close()


def test_the_listing_says_what_a_pending_delivery_waits_behind_while_that_one_is_still_failing(world, capsys):
    """It showed as pending, 0 attempts, its next attempt in the past, and no hint why (only a dead one that
    held it back was named)."""
    recorder = world.recorders["registry-a"]
    recorder.mode = "fail"
    patient = world.add_patient()
    world.order("registry-a", patient)
    world.settle()  # the status fails once
    (eprom_order,) = world.eprom_orders(patient)
    world.answer(eprom_order["id"], {"q1": 1})
    world.settle()
    waiting = {d.status: d for d in world.deliveries(registry="registry-a")}
    assert (waiting["Ordered"].attempts, waiting["Completed"].attempts) == (1, 0)
    assert proxy_cli(["deliveries", "--state-dir", str(world.state_dir)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines[waiting["Completed"].id].endswith(f"waits behind failing {waiting['Ordered'].id}")
    assert "waits behind" not in lines[waiting["Ordered"].id]
    assert proxy_cli(["deliveries", "--state-dir", str(world.state_dir), "--json"]) == 0
    listed = {d["status"]: d["waitsBehind"] for d in json.loads(capsys.readouterr().out)}
    assert listed == {"Ordered": None, "Completed": waiting["Ordered"].id}
