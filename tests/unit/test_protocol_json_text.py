"""eprom_protocol.json_text: what json.loads takes but no client of the protocol sends (.NET's readers refuse it)
and Python cannot write on or store."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprom_protocol.json_text import LONE_SURROGATE, MAX_DEPTH, TOO_DEEP, loads


def nested(depth: int, kind: str = "array") -> str:
    return ("[" * depth + "]" * depth) if kind == "array" else ('{"a": ' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused(kind):
    assert loads(nested(MAX_DEPTH, kind)) is not None
    with pytest.raises(ValueError, match=f"^{TOO_DEEP.replace('(', '[(]').replace(')', '[)]')}$"):
        loads(nested(MAX_DEPTH + 1, kind))


def test_deep_nesting_inside_a_larger_body_is_refused_as_bytes_too():
    """970 levels was taken in, and failed as a 500 when the proxy wrote the order on to ePROM."""
    body = '{"formId": "x", "extra": %s}' % nested(970)
    for text in (body, body.encode(), body.encode("utf-16")):
        with pytest.raises(ValueError, match="nested too deeply"):
            loads(text)


def test_many_brackets_that_do_not_nest_deeply_are_read():
    text = json.dumps({"rows": [[i] for i in range(500)], "text": "[" * 1000})
    assert len(loads(text)["rows"]) == 500


@pytest.mark.parametrize("text", [
    '{"apiKey": "\\ud800"}',
    '{"\\udfff": 1}',
    '["ok", {"deep": ["\\uDC00 and more"]}]',
    '"\\ud83d"',  # the first half of a pair, alone
    '"\\ude00\\ud83d"',  # both halves, in the wrong order
])
def test_a_lone_surrogate_is_refused(text):
    """A lone surrogate is no character: encoding it for SQLite, a log or a comparison raised (a callback whose
    apiKey held one was a 500)."""
    for given_text in (text, text.encode(), text.encode("utf-16"), text.encode("utf-32")):
        with pytest.raises(ValueError, match=f"^{re.escape(LONE_SURROGATE)}$"):
            loads(given_text)


@pytest.mark.parametrize("raw", [b'{"apiKey": "\xed\xa0\x80"}', b'["ok", "\xed\xbf\xbf"]'])
def test_a_lone_surrogate_written_as_utf8_bytes_is_refused_too(raw):
    """json.loads decodes bytes with "surrogatepass": such bytes became a lone surrogate with no escape in sight,
    and a callback whose apiKey held one was still a 500 (found by the regression hunt)."""
    with pytest.raises(ValueError, match="lone surrogate"):
        loads(raw)
    assert loads(b'"\xed\x9f\xbf"') == "\ud7ff"  # the last character before the surrogates is one


@pytest.mark.parametrize("text, value", [
    ('"\\ud83d\\ude00"', "\U0001F600"),  # a pair is one character
    ('"\\\\ud800"', "\\ud800"),  # an escaped backslash followed by text, not an escape
    ('"\U0001F600"', "\U0001F600"),
])
def test_whole_characters_are_read(text, value):
    assert loads(text) == value
    assert loads(text.encode()) == value


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=30))
def test_any_json_value_python_writes_is_read_back_unchanged(value):
    assert loads(json.dumps(value)) == value
    assert loads(json.dumps(value, ensure_ascii=False).encode()) == value
