"""The configured lifetime decides when every stored order ends (proxy/store.py align_lifetimes): an
operator may change it between runs, and the purge of answers must then agree with the linking rules."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from proxy.store import ProxyStore

START = datetime(2025, 1, 6, 8, 0, 0, 123456, tzinfo=timezone.utc)
PATIENT = "26670271527"  # the integration guide's synthetic test person


def stored(store: ProxyStore, n: int, lifetime: timedelta) -> None:
    for i in range(n):
        ordered = START + timedelta(hours=i)
        store.add_order(key=f"order-{i}", eprom_id=f"e-{i}", national_id=PATIENT, form_id="form", ordered_at=ordered,
                        lifetime_ends_at=ordered + lifetime, state="Pending", order_reply={},
                        registry_order=f"ro-{i}", registry="reg-a", rule=2, owner="me")


def ends(store: ProxyStore) -> list[str]:
    return [r[0] for r in store._db().execute("SELECT lifetime_ends_at FROM eprom_orders ORDER BY seq")]


def test_ends_follow_the_configured_lifetime_and_purged_orders_stay_ended(tmp_path):
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        stored(store, 3, timedelta(days=30))
        assert store.align_lifetimes(timedelta(days=30), START) == 0  # stored by it: nothing to move
        assert store.purge_ended(START + timedelta(days=30, minutes=30)) == 1  # order-0 ended
        assert store.align_lifetimes(timedelta(days=10), START) == 2
        assert store.next_lifetime_end() == START + timedelta(days=10, hours=1)  # microseconds kept
        assert store.align_lifetimes(timedelta(days=10), START) == 0, "unchanged since: nothing read twice"
        assert store.align_lifetimes(timedelta(days=400), START) == 2
        assert ends(store)[0].startswith("2025-02-05T08:00:00.123456"), "a purged order's end does not move"
        assert store.next_lifetime_end() == START + timedelta(days=400, hours=1)
    finally:
        store.close()


def test_a_database_from_before_the_alignment_is_aligned_once(tmp_path):
    """No lifetime recorded yet: ends already right are left alone, and the lifetime is recorded."""
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        stored(store, 2, timedelta(days=365))
        before = ends(store)
        assert store.align_lifetimes(timedelta(days=365), START) == 0
        assert ends(store) == before
        assert store._db().execute("SELECT value FROM meta WHERE key = 'lifetime_seconds'").fetchone()[0] == \
            repr(timedelta(days=365).total_seconds())
    finally:
        store.close()


def test_an_order_whose_end_passed_while_no_proxy_ran_stays_ended_under_a_longer_lifetime(tmp_path):
    """Its end passed while the proxy was down (so it was not purged yet); the proxy then starts with a longer
    lifetime. Before, its end moved past the clock again: the order was active again and a later registry was
    linked to it and replayed its answer, kept past the lifetime that applied when it ended."""
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        stored(store, 2, timedelta(days=10))  # order-0 ends START + 10 d, order-1 an hour later
        restart = START + timedelta(days=10, minutes=30)  # order-0 has ended, order-1 not yet
        assert store.align_lifetimes(timedelta(days=365), restart) == 1
        assert ends(store)[0].startswith("2025-01-16T08:00:00.123456"), "an ended order's end does not move"
        found = store.candidates(PATIENT, "form", since=restart - timedelta(days=365), now=restart)
        assert [c.key for c in found] == ["order-1"]
        assert store.purge_ended(restart) == 1
    finally:
        store.close()


def test_stored_orders_naming_their_recipient_as_the_person_they_are_about_are_brought_in_line_once(tmp_path):
    store = ProxyStore(tmp_path / "eprox.sqlite3")
    store.add_order(key="self", eprom_id="e-self", national_id=PATIENT, form_id="form", ordered_at=START,
                    lifetime_ends_at=START + timedelta(days=365), state="Ordered", order_reply={},
                    registry_order="ro-self", registry="reg-a", rule=2, owner="me", on_behalf_of=PATIENT)
    with store.transaction() as db:  # as a database from before the rule holds it
        db.execute("DELETE FROM meta WHERE key = 'migration:on_behalf_of_self'")
    store.close()
    again = ProxyStore(tmp_path / "eprox.sqlite3")
    try:
        found = again.candidates(PATIENT, "form", since=START - timedelta(days=1), now=START, on_behalf_of=None)
        assert [c.key for c in found] == ["self"]
    finally:
        again.close()
