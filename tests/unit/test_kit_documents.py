"""Hand-written YAML and JSON (service_kit.documents): a key given twice is refused, what YAML allows on
purpose still loads, only values JSON has come out, and a YAML error can be told without quoting the file."""
from __future__ import annotations

import json

import pytest
import yaml

from service_kit.documents import DuplicateKey, UniqueKeyLoader, unique_pairs, yaml_error_text


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


def test_unquoted_dates_and_timestamps_stay_the_text_written():
    """They were date and datetime objects, which every reader then passing them on as JSON choked on (the proxy's
    settings: `database: 2024-01-01` was a TypeError traceback)."""
    text = "a: 2024-01-01\nb: 2024-01-01 10:00:00\nc: [2024-01-01T10:00:00Z]\n2024-02-03: key\n"
    data = load(text)
    assert data == {"a": "2024-01-01", "b": "2024-01-01 10:00:00", "c": ["2024-01-01T10:00:00Z"], "2024-02-03": "key"}
    assert json.loads(json.dumps(data)) == data
    assert load("n: 12\nf: 1.5\nt: true\nz: null\n") == {"n": 12, "f": 1.5, "t": True, "z": None}


@pytest.mark.parametrize("value, tag", [("!!binary c2VjcmV0LWJ5dGVz", "binary"), ("!!set {secret-a, secret-b}", "set"),
                                        ("!!omap [secret-a: 1]", "omap"), ("!!pairs [secret-a: 1]", "pairs"),
                                        ("!!timestamp 2024-01-01", "timestamp")])
def test_tags_making_values_json_lacks_are_refused_by_their_line_without_the_value(value, tag):
    """Bytes, sets and dates crashed the proxy's settings the same way; the ordered pairs came out as tuples."""
    with pytest.raises(yaml.YAMLError) as caught:
        load(f"first: 1\nvalue: {value}\n")
    text = yaml_error_text(caught.value)
    assert text.startswith(f"not valid YAML: line 2 column 8: the tag !!{tag} is not allowed here; write ")
    assert "secret" not in text and "c2Vj" not in text and "2024" not in text


@pytest.mark.parametrize("text, problem", [
    ("apiKey: *Sup3rSecretKey\n", "line 1 column 9: found undefined alias (not shown)"),
    ("apiKey: !Sup3rSecretKey x\n", "line 1 column 9: could not determine a constructor for the tag (not shown)"),
])
def test_a_yaml_error_can_be_told_without_quoting_the_file(text, problem):
    """PyYAML quotes an alias's or a tag's name from the file: an unquoted key starting with * or ! was printed
    by check-config. Scenario authors keep the quotes (they help), the proxy's settings do not."""
    with pytest.raises(yaml.YAMLError) as caught:
        load(text)
    assert "Sup3rSecretKey" in yaml_error_text(caught.value)
    assert yaml_error_text(caught.value, quote_content=False) == f"not valid YAML: {problem}"


def test_a_yaml_error_without_quoting_still_shows_a_lone_character_and_a_token():
    for text, problem in [("a: b\n\tc: d\n", "found character '\\t' that cannot start any token"),
                          ("a: [1, 'x' y]\n", "expected ',' or ']', but got '<scalar>'")]:
        with pytest.raises(yaml.YAMLError) as caught:
            load(text)
        assert yaml_error_text(caught.value, quote_content=False).endswith(problem)
