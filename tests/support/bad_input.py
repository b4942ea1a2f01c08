"""Hypothesis strategies for bad input, shared by the barrages against the live servers (the fake ePROM's
in tests/e2e/fake_eprom, the proxy's in tests/integration/proxy): any JSON, JSON of the wrong type, and
national ids no service may accept."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, settings, strategies as st

from eprom_protocol import json_text
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import require_orderable

#: Derandomized: the same requests on every run. A barrage shares one live world across its examples (each
#: example must leave it as it was), hence the function-scoped fixture.
BARRAGE = settings(max_examples=100, derandomize=True, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
#: Values Python's json reads (and writes back as such) but JSON does not have; eprom_protocol.json_text refuses
#: them. `with_raw` puts one into a JSON text in place of a field's value.
NOT_JSON_VALUES = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-2E+400", "7" * 4301])
PLACEHOLDER = "\u0000placeholder\u0000"


def with_raw(body: dict, field: str, raw_value: str) -> bytes:
    """`body` as JSON text with `field`'s value (added if absent) replaced by `raw_value`, verbatim."""
    text = json.dumps({**body, field: PLACEHOLDER})
    return text.replace(json.dumps(PLACEHOLDER), raw_value).encode()


NOT_STRING = JSON.filter(lambda v: not isinstance(v, str) and v is not None)
NOT_BOOL = JSON.filter(lambda v: not isinstance(v, bool) and v is not None)


def fails(check, value) -> bool:
    try:
        check(value)
    except (ProtocolError, ValueError, TypeError):
        return True
    return False


def bad_national_ids():
    digits = st.text(alphabet="0123456789", min_size=11, max_size=11)
    return st.one_of(NOT_STRING, st.text(max_size=14), digits, st.sampled_from(["81234567890", "26473900032"])
                     ).filter(lambda v: fails(require_orderable, v))


def not_json_object_text(value: str) -> bool:
    """A metadata text that is not a JSON object (what ePROM's metadata must be)."""
    try:
        return not isinstance(json_text.loads(value), dict)
    except ValueError:
        return True
