"""Crash safety at other moments (issue 4, item 3): a real proxy process is killed with SIGKILL while three
registries place new and linking orders at once (so writes of every kind are in flight: new orders with
their hold, links with their replay leased at write, releases, deliveries, ePROM's status callbacks),
at a point chosen by the seed. It is started again on the same state. Then every order a registry got an
answer for receives each update of its ePROM order (acknowledged to ePROM) exactly once, apart from
deliveries already on their way at the kill; nothing the proxy recorded as done is sent again."""
from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests

from proxy_world import ProxyProcess, done_ids, eventually, free_port, open_deliveries, place

pytestmark = pytest.mark.e2e

REGISTRIES = ["reg-a", "reg-b", "reg-c"]
PATIENTS = 12


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_sigkill_while_orders_of_every_kind_are_in_flight_loses_nothing(tmp_path, eprom_side_factory, seed):
    port = free_port()
    side = eprom_side_factory(f"http://127.0.0.1:{port}", REGISTRIES)
    database = tmp_path / "state" / "eprox.sqlite3"
    proxy = ProxyProcess(tmp_path / "proxy", side.proxy_config(database), port=port).start()
    rng = random.Random(seed)
    kill_after = rng.randint(4, 3 * PATIENTS - 6)  # answers the registries have had when the kill comes
    patients = [side.add_patient(reachable=["Helsenorge"], answer=None) for _ in range(PATIENTS)]
    answered: dict[tuple[str, str], str] = {}  # (registry, patient) -> the id the registry was given
    lock, enough = threading.Lock(), threading.Event()

    def orders(registry: str, order: list[str]) -> None:
        with requests.Session() as session:
            for patient in order:
                try:
                    reply = place(proxy.url, registry, patient, session=session)
                except requests.RequestException:
                    return  # the proxy is gone: what was never answered is the registry's to send again
                if reply.status_code != 200:
                    return
                with lock:
                    answered[registry, patient] = reply.json()["id"]
                    if len(answered) >= kill_after:
                        enough.set()

    # each registry goes through the patients in its own order: new orders and links interleave
    loads = [threading.Thread(target=orders, args=(r, rng.sample(patients, len(patients)))) for r in REGISTRIES]
    try:
        for thread in loads:
            thread.start()
        assert enough.wait(timeout=60), proxy.log()[-3000:]
        proxy.kill()  # SIGKILL while the other registries' orders and their callbacks are under way
        for thread in loads:
            thread.join(timeout=60)
        done_before = done_ids(database)
        # ePROM's callbacks to the dead proxy fail and wait for its retry; nothing is left held (an answer
        # to the killed proxy that never arrived must still release its order's callbacks)
        assert side.settle(timeout=10) == 0
        # what reached the registries from the dead process (its last sends land while we get here)
        before = {r: {c.delivery_id for c in side.recorders[r].snapshot()} for r in REGISTRIES}

        proxy.start()
        side.timeline.advance(timedelta(minutes=1))  # ePROM retries what failed
        for patient in patients:
            for order in side.orders(patient):
                side.answer(order["id"], {"q1": 1})

        # every id a registry was given gets its Ordered status and its answer, acknowledged
        for registry in REGISTRIES:
            mine = {own for (r, _), own in answered.items() if r == registry}
            want = {(own, status) for own in mine for status in ("Ordered", "Completed")}
            recorder = side.recorders[registry]
            assert recorder.wait_for(lambda rec: want <= {(c.body["formOrderId"], c.body["formOrderStatus"])
                                                          for c in rec.acknowledged()}), \
                (registry, seed, proxy.log()[-3000:])
        assert eventually(lambda: open_deliveries(database) == 0), proxy.log()[-3000:]
    finally:
        code = proxy.stop()
    assert code == 0, proxy.log()[-3000:]

    for registry in REGISTRIES:
        calls = side.recorders[registry].snapshot()
        arrivals = Counter(c.delivery_id for c in calls)
        updates = Counter((c.body["formOrderId"], c.body["formOrderStatus"]) for c in calls)
        twice = {d for d, n in arrivals.items() if n > 1}
        # sent again only if it was on its way when the proxy died (sent, its outcome not yet recorded)
        assert twice <= before[registry] - done_before, (registry, seed, twice)
        assert all(n <= 2 for n in arrivals.values())
        assert all(updates[u] == arrivals[f"{u[0]}.{u[1]}"] for u in updates), "one delivery id per update"
    assert all(side.orders(patient) for (_, patient) in answered), "an answered order has its ePROM order"
