"""The outbox's leases (proxy/store.py): a lease renewed only while it is exactly the one taken. Work
that waited in a busy lane past its lease may have been claimed anew, even by the same process's pump;
the waiting copy must then not be sent (that would deliver it twice)."""
from __future__ import annotations

from datetime import datetime, timezone

from proxy.store import ProxyStore, delivery_id

NOW = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


def queued(store: ProxyStore, owner: str | None, lease_until: float | None, status: str = "Ordered",
           registry_order: str = "ro-1"):
    with store.transaction() as db:
        return store.add_delivery(db, registry="reg-a", registry_order=registry_order, order_key="k",
                                  path="/api/PromsFormOrder", status=status, body={"formOrderStatus": status},
                                  due=NOW, hold=None, lease_owner=owner, lease_until=lease_until)


def test_a_lease_that_ran_out_and_was_claimed_anew_is_not_renewed(tmp_path):
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        waiting = queued(store, "me", lease_until=1000.0)
        assert waiting.id == delivery_id("ro-1", "Ordered") == "ro-1.Ordered"
        assert store.claim("reg-a", NOW, "someone", wall=999.0, lease_seconds=300) is None, "still leased"
        again = store.claim("reg-a", NOW, "me", wall=1001.0, lease_seconds=300)  # ran out: this process's pump
        assert again is not None and again.lease_until == 1301.0
        assert not store.renew_lease(waiting.id, "me", waiting.lease_until, 2000.0), "the old copy must not go"
        assert store.renew_lease(again.id, "me", again.lease_until, 2000.0)
        assert not store.renew_lease(again.id, "other", 2000.0, 3000.0)
    finally:
        store.close()


def test_a_lease_still_held_is_renewed_and_then_no_one_else_claims(tmp_path):
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        waiting = queued(store, "me", lease_until=1000.0)
        assert store.renew_lease(waiting.id, "me", 1000.0, 5000.0)
        assert store.claim("reg-a", NOW, "other", wall=1001.0, lease_seconds=300) is None
    finally:
        store.close()


def test_an_acknowledgement_tells_whether_an_unleased_update_waits_behind_it(tmp_path):
    """mark_delivered answers what waiting_in_lane would, in its own statement: the sender then wakes the
    pump only when there is something for it."""
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        ordered = queued(store, "me", lease_until=5000.0)
        queued(store, "me", lease_until=5000.0, registry_order="ro-2")  # another lane: not behind it
        assert store.mark_delivered(ordered.id, NOW) is False
        assert store.mark_delivered(ordered.id, NOW) is False, "already done: nothing recorded twice"

        sent = queued(store, "me", lease_until=5000.0, status="Sent")
        leased_behind = queued(store, "me", lease_until=5000.0, status="Completed")
        assert store.mark_delivered(sent.id, NOW) is False, "what waits behind it is leased: its sender has it"
        store.give_back((leased_behind.id,), "me")
        assert store.waiting_in_lane("ro-1")
        expired = queued(store, None, lease_until=None, status="Expired", registry_order="ro-3")
        assert store.mark_delivered(expired.id, NOW) is False, "an unleased delivery is not behind itself"
        assert store.mark_delivered(leased_behind.id, NOW) is False
        again = queued(store, "me", lease_until=5000.0, status="Again")
        queued(store, None, lease_until=None, status="Later")
        assert store.mark_delivered(again.id, NOW) is True
    finally:
        store.close()
