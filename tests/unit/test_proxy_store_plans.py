"""The order path's reads use the index meant for them. SQLite picks an index by the conditions: one more
condition in the linking read (an order's stored end) made it take the lifetime index and read every order not
yet ended, seconds per order at 10^6 stored orders; no functional test sees that, the benchmark did."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from proxy.store import ProxyStore

START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
PATIENT = "26670271527"


def plans_of(store: ProxyStore, call) -> list[str]:
    """The query plan of every SELECT the call ran, as SQLite would run it."""
    db = store._db()
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        db.set_trace_callback(None)
    return ["\n".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements if sql.lstrip().upper().startswith("SELECT")]


def test_the_linking_read_searches_by_patient_and_form(tmp_path):
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        for i in range(50):
            store.add_order(key=f"o-{i}", eprom_id=f"e-{i}", national_id=f"{i:011d}", form_id="form",
                            ordered_at=START, lifetime_ends_at=START + timedelta(days=365), state="Ordered",
                            order_reply={}, registry_order=f"ro-{i}", registry="reg-a", rule=2, owner="me")
        (plan,) = plans_of(store, lambda: store.candidates(PATIENT, "form", since=START - timedelta(days=365),
                                                          now=START, on_behalf_of=None))
        assert "SEARCH o USING INDEX eprom_orders_patient_form (national_id=? AND form_id=? AND ordered_at>?)" in plan
        assert "SCAN" not in plan.replace("SCAN r", "")
    finally:
        store.close()
