"""Hand-written YAML and JSON (service_kit.documents): a key given twice is refused, and what YAML allows on
purpose still loads."""
from __future__ import annotations

import json

import pytest
import yaml

from service_kit.documents import DuplicateKey, UniqueKeyLoader, unique_pairs


def load(text: str):
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def test_merge_keys_load_and_a_key_written_beside_one_overrides_it():
    """`<<: *anchor` failed to load at all ('could not determine a constructor for the tag ...merge') once the
    loader checked keys: scenario files that reuse a patient's answer that way were refused (found by a
    helper's hunt)."""
    text = "base: &b {x: 1, y: 2}\none: {<<: *b, y: 3}\nmany: {<<: [*b, {z: 4}], x: 0}\n"
    assert load(text) == {"base": {"x": 1, "y": 2}, "one": {"x": 1, "y": 3}, "many": {"x": 0, "y": 2, "z": 4}}


@pytest.mark.parametrize("text, key, line", [
    ("a: 1\nb: 2\na: 3\n", "a", 3),
    ("m: {<<: {a: 1}, b: 1, b: 2}\n", "b", 1),
    ("m:\n  1: one\n  true: two\n", "True", 3),  # equal in Python: one would silently replace the other
])
def test_a_key_given_twice_in_one_mapping_is_refused(text, key, line):
    with pytest.raises(DuplicateKey, match=f"line {line}: `{key}` is given twice"):
        load(text)


def test_json_refuses_a_key_given_twice_too():
    assert json.loads('{"a": {"b": 1}, "c": 2}', object_pairs_hook=unique_pairs) == {"a": {"b": 1}, "c": 2}
    with pytest.raises(DuplicateKey, match="`b` is given twice"):
        json.loads('{"a": {"b": 1, "b": 2}}', object_pairs_hook=unique_pairs)
