"""Unit tests of the topology configuration: defaults, building, and error messages that name the file,
the place in it and what is wrong. (Fast; they start nothing.)"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from harness.config import ConfigError, HarnessConfig, RegistrySpec, config_from_dict, example_config, load_config
from harness.problems import read_document
from service_kit.clock import DEFAULT_SIM_START


def problems(tmp_path: Path, text: str, name: str = "topology.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_the_defaults_are_the_documented_ones():
    config = HarnessConfig()
    assert config.seed == 0
    assert config.start == DEFAULT_SIM_START
    assert config.lifetime == timedelta(days=365)
    assert config.population == "open"
    assert config.eprom_api_key == "eprox-key"
    assert config.state_dir is None
    assert config.registries == [RegistrySpec("registry-a", "registry-a-key"), RegistrySpec("registry-b", "registry-b-key")]


def test_an_empty_file_means_every_default(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == HarnessConfig()


def test_the_example_config_is_valid_and_equals_the_defaults(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(example_config(), encoding="utf-8")
    assert load_config(path) == HarnessConfig()


def test_a_full_yaml_file_is_read(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "seed: demo-7\n"
        "start: 2025-03-01T12:00:00Z\n"  # unquoted: must stay a string, not become a YAML timestamp
        "eprom: {apiKey: k0, population: strict, statusDelay: PT5M, channelFormat: name, research: true}\n"
        "proxy: {lifetimeDays: 30, stateDir: state}\n"
        "registries:\n"
        "  - {name: nkr, allowedForms: [1bc5f9f0-2607-49eb-94f0-6af955bbd79a]}\n"
        "  - {name: hofte, apiKey: secret-h}\n", encoding="utf-8")
    config = load_config(path)
    assert config.seed == "demo-7"
    assert config.start == datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    assert (config.eprom_api_key, config.population, config.channel_format, config.research) == ("k0", "strict", "name", True)
    assert config.status_delay == timedelta(minutes=5)
    assert config.lifetime == timedelta(days=30)
    assert config.state_dir == tmp_path / "state"  # relative to the file
    assert config.registries == [RegistrySpec("nkr", "nkr-key", frozenset({"1bc5f9f0-2607-49eb-94f0-6af955bbd79a"})),
                                 RegistrySpec("hofte", "secret-h")]


def test_a_json_file_is_read_as_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"seed": 3, "registries": [{"name": "x"}]}), encoding="utf-8")
    config = load_config(path)
    assert config.seed == 3 and [r.name for r in config.registries] == ["x"]


def test_a_start_without_offset_is_norwegian_local_time():
    assert config_from_dict({"start": "2025-07-01T10:00:00"}).start == datetime(2025, 7, 1, 8, tzinfo=timezone.utc)


def test_a_lifetime_beyond_a_century_is_refused(tmp_path):
    assert problems(tmp_path, "proxy: {lifetimeDays: 100000000}\n") == [
        f"{tmp_path / 'topology.yaml'}: proxy.lifetimeDays: must be at most 36500"]


@pytest.mark.parametrize("key", ["{x: 1}", "[a, b]"])
def test_a_key_that_is_not_a_string_is_named_not_a_crash(tmp_path, key):
    """Before: TypeError (unhashable) from the duplicate-key check, a traceback from `up`."""
    assert problems(tmp_path, f"registries:\n  - {{name: a, apiKey: {key}}}\n") == [
        f"{tmp_path / 'topology.yaml'}: registries[0].apiKey: must be a string, not "
        f"{'mapping' if key.startswith('{') else 'list'} ({yaml.safe_load(key)!r})"]


def test_yaml_nan_is_not_a_number(tmp_path):
    """NaN passes every bound a JSON Schema sets; before, `.nan` days was taken and `up` then crashed."""
    assert problems(tmp_path, "proxy: {lifetimeDays: .nan}\n") == [
        f"{tmp_path / 'topology.yaml'}: proxy.lifetimeDays: must be a number, not YAML's .nan or .inf, which JSON "
        "has no number for (nan)"]


def test_every_problem_is_named_with_file_place_and_what(tmp_path):
    found = problems(tmp_path, "seed: 1.5\n"
                               "colour: blue\n"
                               "eprom: {population: everyone, statusDelay: P1M}\n"
                               "proxy: {lifetimeDays: 0}\n"
                               "registries:\n"
                               "  - {name: 'a b'}\n"
                               "  - {name: x, apiKey: eprox-key, extra: 1}\n"
                               "  - {apiKey: k}\n"
                               "start: yesterday\n")
    path = tmp_path / "topology.yaml"
    assert all(line.startswith(f"{path}: ") for line in found), found
    text = "\n".join(found)
    assert f"{path}: (top level): unknown setting(s) 'colour'" in text
    assert f"{path}: seed: must be an integer or a string, not number (1.5)" in text
    assert f"{path}: eprom.population: 'everyone' is not one of: open, strict" in text
    assert f"{path}: eprom.statusDelay: 'P1M': use days, hours, minutes or seconds, not years or months" in text
    assert f"{path}: proxy.lifetimeDays: must be greater than 0" in text
    assert f"{path}: registries[0].name: 'a b' is not a usable name" in text
    assert f"{path}: registries[1]: unknown setting(s) 'extra'" in text
    assert f"{path}: registries[1].apiKey: must differ from eprom.apiKey" in text
    assert f"{path}: registries[2]: 'name' is required" in text
    assert f"{path}: start: 'yesterday' is not an ISO-8601 date or date-time" in text


def test_problems_come_in_document_order(tmp_path):
    found = problems(tmp_path, "registries:\n" + "".join(f"  - {{name: {n}}}\n" for n in
                                                         ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f", "f"]))
    assert [line.split(": ")[1] for line in found] == [f"registries[{i}].name" for i in (1, 3, 5, 7, 9, 11)]


def test_registry_names_and_keys_must_be_unique_and_not_reserved(tmp_path):
    found = problems(tmp_path, "registries: [{name: a}, {name: a, apiKey: other}, {name: b, apiKey: a-key}, {name: proxy}]")
    text = "\n".join(found)
    assert "registries[1].name: 'a' is already the name of registries[0]" in text
    assert "registries[2].apiKey: is already the key of registries[0]" in text
    assert "registries[3].name: 'proxy' is reserved" in text


@pytest.mark.parametrize("text, expected", [
    ("[1, 2]", "(top level): must be a mapping, not list"),
    ("registries: []", "registries: must list at least one registry"),
    ("registries: {name: a}", "registries: must be a list, not mapping"),
    ("registries: [{name: a, allowedForms: [RAND-12]}]", "registries[0].allowedForms[0]: 'RAND-12' is not a uuid"),
    ("eprom: {apiKey: ''}", "eprom.apiKey: must not be empty"),
    ("eprom: {research: yes please}", "eprom.research: must be true or false"),
])
def test_single_problems_read_well(tmp_path, text, expected):
    [line] = problems(tmp_path, text)
    assert expected in line, line


def test_unreadable_and_unparsable_files_say_so(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: cannot read the file"):
        load_config(missing)
    [line] = problems(tmp_path, "registries: [\n  {name: a\n", name="broken.yaml")
    assert line.startswith(f"{tmp_path / 'broken.yaml'}: not valid YAML: line ")
    [line] = problems(tmp_path, "{\"seed\": 1,}", name="broken.json")
    assert line.startswith(f"{tmp_path / 'broken.json'}: not valid JSON: line 1 column")


def test_yaml_anchors_and_tags_beyond_safe_yaml_are_refused(tmp_path):
    [line] = problems(tmp_path, "seed: !!python/object/apply:os.getcwd []\n")
    assert "not valid YAML" in line


def test_a_harness_file_keeps_timestamps_as_text(tmp_path):
    path = tmp_path / "harness.yaml"
    path.write_text("start: 2025-01-06T08:00:00Z\n", encoding="utf-8")
    assert read_document(path) == {"start": "2025-01-06T08:00:00Z"}


def test_a_lifetime_of_no_time_is_refused_as_by_the_proxy(tmp_path):
    """1e-300 days passes the schema's exclusiveMinimum 0 but is timedelta(0): every order ended at once."""
    [line] = problems(tmp_path, "proxy:\n  lifetimeDays: 1.0e-300\n")
    assert "proxy.lifetimeDays: must be at least a second" in line
