"""The topology configuration (`eprox-harness up --config FILE`): a YAML or JSON file, checked against a
JSON Schema, with errors that name the file, the place in it and what is wrong."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from eprom_protocol.messages import ProtocolError
from eprom_protocol.timefmt import parse_duration, parse_instant
from service_kit.clock import DEFAULT_SIM_START

DEFAULT_EPROM_API_KEY = "eprox-key"
DEFAULT_REGISTRIES = ("registry-a", "registry-b")
DEFAULT_LIFETIME_DAYS = 365
POPULATIONS = ("open", "strict")
CHANNEL_FORMATS = ("number", "name")
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
RESERVED_NAMES = ("eprom", "proxy")  # the transcript names the other two servers so
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

CONFIG_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "eprox-harness topology",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": ["integer", "string"], "description": "seeds every id and random choice"},
        "start": {"type": "string", "description": "ISO-8601 start of the simulated clock"},
        "eprom": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "apiKey": {"type": "string", "minLength": 1, "description": "ePROX's key at ePROM"},
                "population": {"enum": list(POPULATIONS)},
                "statusDelay": {"type": "string", "description": "ISO-8601 duration, e.g. PT5M"},
                "channelFormat": {"enum": list(CHANNEL_FORMATS)},
                "research": {"type": "boolean"},
            },
        },
        "proxy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "lifetimeDays": {"type": "number", "exclusiveMinimum": 0},
                "stateDir": {"type": "string", "minLength": 1},
            },
        },
        "registries": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "apiKey": {"type": "string", "minLength": 1},
                    "allowedForms": {"type": "array", "items": {"type": "string", "pattern": UUID_PATTERN}},
                },
            },
        },
    },
}


class ConfigError(Exception):
    """The configuration is unusable; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RegistrySpec:
    name: str
    api_key: str
    allowed_forms: frozenset[str] | None = None


def default_registries() -> list[RegistrySpec]:
    return [RegistrySpec(name, f"{name}-key") for name in DEFAULT_REGISTRIES]


@dataclass
class HarnessConfig:
    seed: int | str = 0
    start: datetime = DEFAULT_SIM_START
    eprom_api_key: str = DEFAULT_EPROM_API_KEY
    population: str = "open"
    status_delay: timedelta = timedelta(0)
    channel_format: str = "number"
    research: bool = False
    lifetime_days: float = DEFAULT_LIFETIME_DAYS
    state_dir: Path | None = None  # None: a fresh temporary directory, removed when the harness stops
    registries: list[RegistrySpec] = field(default_factory=default_registries)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.lifetime_days)


# --- reading a file ----------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves timestamps as text: the schema and our own parser read them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config(path: str | Path) -> HarnessConfig:
    """Read, validate and build the configuration in a file; ConfigError names every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the file: {err.strerror or err}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the file is not UTF-8 text"]) from None
    data = _parse(path, text)
    return config_from_dict(data, source=str(path), base_dir=path.parent)


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise ConfigError([f"{path}: not valid JSON: line {err.lineno} column {err.colno}: {err.msg}"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{path}: not valid YAML: {where}{problem}"]) from None
    return {} if data is None else data


def config_from_dict(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> HarnessConfig:
    """Validate a parsed configuration and build it; relative paths are taken from base_dir."""
    problems = [f"{source}: {where}: {what}" for where, what in _problems(data)]
    if problems:
        raise ConfigError(problems)
    eprom = data.get("eprom", {})
    proxy = data.get("proxy", {})
    config = HarnessConfig()
    if "seed" in data:
        config.seed = data["seed"]
    if "start" in data:
        config.start = parse_instant(data["start"], "start")
    config.eprom_api_key = eprom.get("apiKey", config.eprom_api_key)
    config.population = eprom.get("population", config.population)
    if "statusDelay" in eprom:
        config.status_delay = parse_duration(eprom["statusDelay"], "eprom.statusDelay")
    config.channel_format = eprom.get("channelFormat", config.channel_format)
    config.research = eprom.get("research", config.research)
    config.lifetime_days = proxy.get("lifetimeDays", config.lifetime_days)
    if "stateDir" in proxy:
        state_dir = Path(proxy["stateDir"]).expanduser()
        if not state_dir.is_absolute() and base_dir is not None:
            state_dir = base_dir / state_dir
        config.state_dir = state_dir
    if "registries" in data:
        config.registries = [
            RegistrySpec(r["name"], r.get("apiKey", f"{r['name']}-key"),
                         frozenset(r["allowedForms"]) if "allowedForms" in r else None)
            for r in data["registries"]
        ]
    return config


def _problems(data: Any) -> list[tuple[str, str]]:
    """(place, what is wrong) for every problem: first the schema's, then the rules a schema cannot say."""
    validator = Draft202012Validator(CONFIG_SCHEMA)
    found = [(_place(e.absolute_path), _what(e)) for e in validator.iter_errors(data)]
    if not isinstance(data, dict):
        return found
    # The rules a schema cannot say; each guards against shapes the schema already complained about.
    if isinstance(data.get("start"), str):
        try:
            parse_instant(data["start"], "start")
        except ProtocolError:
            found.append(("start", f"{data['start']!r} is not an ISO-8601 date or date-time"))
    eprom = data.get("eprom") if isinstance(data.get("eprom"), dict) else {}
    delay = eprom.get("statusDelay")
    if isinstance(delay, str):
        try:
            parse_duration(delay, "statusDelay")
        except ProtocolError:
            found.append(("eprom.statusDelay", f"{delay!r} is not an ISO-8601 duration of days, hours, "
                                                "minutes or seconds such as 'PT5M'"))
    eprom_key = eprom.get("apiKey", DEFAULT_EPROM_API_KEY)
    registries = data.get("registries") if isinstance(data.get("registries"), list) else []
    seen_names: dict[str, int] = {}
    seen_keys: dict[str, int] = {}
    for i, registry in enumerate(registries):
        if not isinstance(registry, dict) or not isinstance(registry.get("name"), str):
            continue
        name = registry["name"]
        key = registry.get("apiKey", f"{name}-key")
        if name.lower() in RESERVED_NAMES:
            found.append((f"registries[{i}].name", f"{name!r} is reserved for the harness's own servers"))
        if name in seen_names:
            found.append((f"registries[{i}].name", f"{name!r} is already the name of registries[{seen_names[name]}]"))
            if "apiKey" not in registry:
                continue  # its default key repeats too: one problem, reported once
        seen_names.setdefault(name, i)
        if key == eprom_key:
            found.append((f"registries[{i}].apiKey", "must differ from eprom.apiKey (ePROX's own key at ePROM)"))
        elif key in seen_keys:
            found.append((f"registries[{i}].apiKey", f"is already the key of registries[{seen_keys[key]}]: "
                                                     "every registry needs its own key"))
        seen_keys.setdefault(key, i)
    return sorted(found, key=lambda problem: _sort_key(problem[0]))


def _sort_key(place: str) -> list:
    """Document order for places such as registries[1].apiKey (numbers compared as numbers)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\[\]]+", place) if p]


def _place(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _what(error) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"unknown setting(s) {', '.join(map(repr, extra))}; allowed here: {', '.join(allowed)}"
    if error.validator == "required":
        return error.message.replace(" is a required property", " is required")
    if error.validator == "type":
        expected = error.validator_value
        words = [_TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected])]
        return f"must be {' or '.join(words)}, not {_yaml_type(error.instance)} ({error.instance!r})"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        if error.validator_value == UUID_PATTERN:
            return f"{error.instance!r} is not a uuid"
        if error.validator_value == NAME_PATTERN:
            return (f"{error.instance!r} is not a usable name: letters, digits, '.', '_' and '-', "
                    "starting with a letter or digit, at most 63 characters")
    if error.validator == "minItems":
        return "must list at least one registry"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "exclusiveMinimum":
        return f"must be greater than {error.validator_value}"
    return error.message


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false"}


def _yaml_type(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def example_config() -> str:
    """A commented configuration file showing every setting at its default."""
    return re.sub(r"^ {8}", "", """\
        # eprox-harness topology; every setting is optional
        seed: 0                         # seeds every id and random choice
        start: "2025-01-06T08:00:00Z"   # the simulated clock's start
        eprom:
          apiKey: eprox-key             # ePROX's key at ePROM
          population: open              # open: any valid national id is a patient; strict: only added ones
          statusDelay: PT0S             # how long after an order its status callback is sent
          channelFormat: number         # notificationChannel in callbacks: number or name
          research: false               # ePROX is registered at ePROM as a research system
        proxy:
          lifetimeDays: 365             # how long an order can be linked to
          # stateDir: ./eprox-state     # default: a fresh temporary directory
        registries:
          - name: registry-a
            apiKey: registry-a-key
          - name: registry-b
            apiKey: registry-b-key
            # allowedForms: [1bc5f9f0-2607-49eb-94f0-6af955bbd79a]
        """, flags=re.M)
