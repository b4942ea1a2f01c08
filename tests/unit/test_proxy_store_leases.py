"""The outbox's leases (proxy/store.py): a lease renewed only while it is exactly the one taken. Work
that waited in a busy lane past its lease may have been claimed anew, even by the same process's pump;
the waiting copy must then not be sent (that would deliver it twice)."""
from __future__ import annotations

from datetime import datetime, timezone

from proxy.store import ProxyStore, delivery_id

NOW = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


def queued(store: ProxyStore, owner: str, lease_until: float):
    with store.transaction() as db:
        return store.add_delivery(db, registry="reg-a", registry_order="ro-1", order_key="k", path="/api/PromsFormOrder",
                                  status="Ordered", body={"formOrderStatus": "Ordered"}, due=NOW, hold=None,
                                  lease_owner=owner, lease_until=lease_until)


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
