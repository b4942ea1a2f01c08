"""A link is written only to an order that is still active (proxy/store.py add_link): the decision to link
is taken under the patient's lock, ePROM's callbacks are not, so the write itself refuses an order that
turned Error or was purged since, and leaves no trace; the caller then decides again."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from proxy.store import NotLinkable, ProxyStore

NOW = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
PATIENT = "26670271527"  # the integration guide's synthetic test person


@pytest.fixture
def store(tmp_path):
    made = ProxyStore(tmp_path / "eprox.sqlite3")
    made.add_order(key="order-1", eprom_id="e-1", national_id=PATIENT, form_id="form", ordered_at=NOW,
                   lifetime_ends_at=NOW + timedelta(days=365), state="Pending", order_reply={},
                   registry_order="ro-a", registry="reg-a", rule=2, owner="me")
    with made.transaction() as db:
        made.insert_update(db, order_key="order-1", status="Ordered", final=False,
                           body={"formOrderId": "e-1", "formOrderStatus": "Ordered", "apiKey": "eprox"},
                           received_at=NOW)
    yield made
    made.close()


def link(store: ProxyStore, registry_order: str = "ro-b"):
    return store.add_link(registry_order=registry_order, registry="reg-b", order_key="order-1", created_at=NOW,
                          rule=3, owner="me", api_key="reg-b-key", path="/api/PromsFormOrder", lease_until=1e9)


def rows(store: ProxyStore) -> dict[str, int]:
    db = store._db()
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("registry_orders", "holds", "deliveries")}


def test_an_active_order_is_linked_with_its_updates_so_far(store):
    (replay,) = link(store)
    assert (replay.id, replay.status) == ("ro-b.Ordered", "Ordered")
    assert rows(store) == {"registry_orders": 2, "holds": 2, "deliveries": 1}


def test_an_order_that_turned_error_is_not_linked_and_nothing_is_written(store):
    with store.transaction() as db:
        store.set_state(db, "order-1", "Error")
    before = rows(store)
    with pytest.raises(NotLinkable):
        link(store)
    assert rows(store) == before


def test_a_purged_order_is_not_linked(store):
    assert store.purge_ended(NOW + timedelta(days=366)) == 1
    before = rows(store)
    with pytest.raises(NotLinkable):
        link(store)
    assert rows(store) == before


def test_other_constraint_failures_are_not_taken_for_an_order_gone_inactive(store):
    link(store)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        link(store)  # the same registry order id twice: a bug to surface, not a reason to decide again
