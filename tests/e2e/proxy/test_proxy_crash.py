"""Crash safety (issue 4, item 3): a real proxy process (`python -m proxy serve`, system clock) is killed
with SIGKILL while one registry holds four of its callbacks unanswered and more wait behind them, while
ePROM keeps calling back; it is started again on the same state directory. Then every registry has
acknowledged every update of each of its orders; a delivery id arrives twice only where the first
arrival was still unanswered when the process died (what X-Delivery-Id lets a registry drop); and no
delivery the proxy had recorded as done is ever sent again."""
from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from proxy_world import ProxyProcess, done_ids, eventually, free_port, place

pytestmark = pytest.mark.e2e

REGISTRIES = ["reg-a", "reg-b", "reg-c"]
STATUSES = ("Ordered", "Completed")


def acknowledged_updates(recorder) -> set[tuple[str, str]]:
    return {(c.body["formOrderId"], c.body["formOrderStatus"]) for c in recorder.acknowledged()}


def test_sigkill_mid_delivery_loses_nothing_and_sends_nothing_done_again(tmp_path, eprom_side_factory):
    port = free_port()
    side = eprom_side_factory(f"http://127.0.0.1:{port}", REGISTRIES)
    database = tmp_path / "state" / "eprox.sqlite3"
    proxy = ProxyProcess(tmp_path / "proxy", side.proxy_config(database), port=port).start()
    blocked = side.recorders["reg-b"]
    try:
        blocked.close_gate()  # reg-b takes its callbacks and answers none of them until the gate opens
        patients = [side.add_patient(reachable=["Helsenorge"], answer=None) for _ in range(6)]
        own: dict[tuple[str, str], str] = {}
        for patient in patients:
            for registry in REGISTRIES:
                reply = place(proxy.url, registry, patient)
                assert reply.status_code == 200, reply.text
                own[registry, patient] = reply.json()["id"]
        assert all(len(side.orders(p)) == 1 for p in patients), "every patient's orders were linked"
        for registry in ("reg-a", "reg-c"):
            assert side.recorders[registry].wait_for(lambda r: len(r.acknowledged()) == 6)
        assert blocked.wait_for(lambda r: r.waiting == 4), "reg-b's lane holds four callbacks in flight"

        # half the patients answer while the proxy runs; the fan-out to reg-a and reg-c completes
        eprom_ids = {p: side.orders(p)[0]["id"] for p in patients}
        for patient in patients[:3]:
            side.answer(eprom_ids[patient], {"q1": 3})
        for registry in ("reg-a", "reg-c"):
            assert side.recorders[registry].wait_for(lambda r: len(r.acknowledged()) == 9)

        # the proxy has recorded all of those as done (it is another process: look until it has)
        assert eventually(lambda: len(done_ids(database)) == 18), proxy.log()[-3000:]
        done_before = done_ids(database)
        in_flight = {c.delivery_id for c in blocked.snapshot() if c.answered == 0}
        assert len(in_flight) == 4
        proxy.kill()  # SIGKILL: no handler, nothing flushed, four deliveries mid-flight
        blocked.open_gate()  # their answers go to a dead socket

        # the other half answer while the proxy is down: ePROM's callbacks fail and wait for its retry
        for patient in patients[3:]:
            side.answer(eprom_ids[patient], {"q1": 4})
        side.settle()

        proxy.start()  # the same state directory, the same port
        side.timeline.advance(timedelta(minutes=1))  # ePROM retries what failed

        expected = {r: {(own[r, p], s) for p in patients for s in STATUSES} for r in REGISTRIES}
        for registry in REGISTRIES:
            recorder = side.recorders[registry]
            assert recorder.wait_for(lambda rec, r=registry: acknowledged_updates(rec) == expected[r]), \
                (registry, expected[registry] - acknowledged_updates(recorder), proxy.log()[-3000:])
    finally:
        code = proxy.stop()
    assert code == 0, f"the restarted proxy did not stop cleanly on SIGTERM\n{proxy.log()[-3000:]}"

    for registry in REGISTRIES:
        calls = side.recorders[registry].snapshot()
        arrivals = Counter(c.delivery_id for c in calls)
        update_of = defaultdict(set)
        for c in calls:
            update_of[c.delivery_id].add((c.body["formOrderId"], c.body["formOrderStatus"]))
        assert all(len(u) == 1 for u in update_of.values()), "one delivery id, one update"
        assert len(update_of) == len(expected[registry]), "one delivery id per update: nothing doubled"
        twice = {d for d, n in arrivals.items() if n > 1}
        assert twice <= in_flight and all(arrivals[d] == 2 for d in twice), \
            f"{registry}: sent again although it was answered: {twice - in_flight}"
        assert not twice & done_before, "a delivery recorded as done was sent again"
    assert {d for d, n in Counter(c.delivery_id for c in blocked.snapshot()).items() if n == 2} == in_flight
    db = sqlite3.connect(database)
    assert db.execute("SELECT count(*) FROM deliveries WHERE state != 'done'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == len(REGISTRIES) * len(patients) * 2
