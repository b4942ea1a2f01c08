"""A late linker's replay is written in SQL (proxy/store.py WRITE_VIEWS: ids by concatenation, bodies with
json_set) while every other delivery is made in Python (proxy.store.delivery_id, proxy.service.for_registry).
The two must agree byte for byte in what a registry is sent, for any answer ePROM may send: these examples
hold them to it."""
from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings, strategies as st

from proxy.config import RegistryAccount
from proxy.service import FORM_ORDER_PATH, for_registry
from proxy.store import ProxyStore, delivery_id

NOW = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
LINKER = RegistryAccount("registry-b", "registry-b-secret-key", "http://127.0.0.1:9")

#: What JSON may hold and eprom_protocol.json_text reads: any finite double, integers far beyond 64 bits,
#: any text (lone surrogates and NUL included), nesting.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10 ** 30, max_value=10 ** 60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)
#: ePROM's callback as the proxy stores it: whatever fields it carries, in whatever order, some of them the
#: two the registry's copy replaces.
BODIES = st.dictionaries(
    st.one_of(st.sampled_from(["apiKey", "formOrderId", "formOrderStatus", "formData", "signedFormId"]),
              st.text(max_size=8)),
    VALUES, max_size=6)


@settings(max_examples=150, deadline=None)
@given(status_body=BODIES, answer_body=BODIES, registry_order=st.uuids().map(str))
def test_a_replay_made_in_sql_is_what_python_makes_for_the_same_update(status_body, answer_body, registry_order):
    with tempfile.TemporaryDirectory() as folder:
        store = ProxyStore(Path(folder) / "eprox.sqlite3")
        try:
            store.add_order(key="k1", eprom_id="e1", national_id="26723916517", form_id="f1", ordered_at=NOW,
                            lifetime_ends_at=NOW + timedelta(days=365), state="Completed", order_reply={},
                            registry_order="ro-a", registry="registry-a", rule=2, owner="me")
            with store.transaction() as db:  # the answer first: the replay still puts the status before it
                store.insert_update(db, order_key="k1", status="Completed", final=True, body=answer_body,
                                    received_at=NOW)
                store.insert_update(db, order_key="k1", status="Ordered", final=False, body=status_body,
                                    received_at=NOW)
            replay = store.add_link(registry_order=registry_order, registry=LINKER.name, order_key="k1",
                                    created_at=NOW, rule=3, owner="me", api_key=LINKER.api_key,
                                    path=FORM_ORDER_PATH, lease_until=1e12)
            stored = {d.id: d for d in store.deliveries(registry=LINKER.name)}
        finally:
            store.close()
    assert [d.id for d in replay] == [delivery_id(registry_order, "Ordered"), delivery_id(registry_order, "Completed")]
    for delivery, body in zip(replay, (status_body, answer_body)):
        expected = for_registry(body, registry_order, LINKER)
        assert json.dumps(delivery.body) == json.dumps(expected), "the same fields, values and order"
        assert json.dumps(stored[delivery.id].body) == json.dumps(expected)
