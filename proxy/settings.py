"""Reads the production proxy's configuration from a YAML (or JSON) file and the environment, checks it,
and says exactly what is wrong, naming the place but never echoing a secret. docs/PROXY.md documents it."""
from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

import yaml

from eprom_protocol.schemas import UUID_PATTERN, DocumentValidator

from .config import LIFETIME_DAYS_SCHEMA, ProxyConfig, RegistryAccount

ENV_CONFIG = "EPROX_CONFIG"
#: Environment variables that override the file (or stand in for it), and what they set.
ENV_VARS = {
    "EPROX_DATABASE": "database",
    "EPROX_EPROM_URL": "eprom.url",
    "EPROX_EPROM_API_KEY": "eprom.apiKey",
    "EPROX_LIFETIME_DAYS": "lifetimeDays",
    "EPROX_LOG_LEVEL": "logLevel",
    "EPROX_SQLITE_SYNCHRONOUS": "sqliteSynchronous",
    "EPROX_DELIVERY_TIMEOUT": "delivery.timeoutSeconds",
    "EPROX_DELIVERY_PER_REGISTRY": "delivery.perRegistry",
    "EPROX_REGISTRIES": "registries",
}
URL = "^[hH][tT][tT][pP][sS]?://[^/?#\\s]+[^?#\\s]*$"
NAME = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
SECRET = {"type": "string", "minLength": 1}
#: How a variable's text becomes the file's value, and what to say when it cannot.
ENV_CONVERSIONS: dict[str, tuple[Any, str]] = {
    "lifetimeDays": (float, "a number"),
    "delivery.timeoutSeconds": (float, "a number"),
    "delivery.perRegistry": (int, "a whole number"),
    "registries": (yaml.safe_load, "a JSON (or YAML) list of registries"),
    "logLevel": (str.upper, "a log level"),
    "sqliteSynchronous": (str.upper, "a SQLite synchronous mode"),
}

SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["eprom", "database", "registries"],
    "properties": {
        "eprom": {
            "type": "object", "additionalProperties": False, "required": ["url"],
            "properties": {"url": {"type": "string", "pattern": URL}, "apiKey": SECRET,
                           "apiKeyEnv": {"type": "string", "minLength": 1}},
        },
        "database": {"type": "string", "minLength": 1},
        "lifetimeDays": LIFETIME_DAYS_SCHEMA,
        "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "sqliteSynchronous": {"enum": ["NORMAL", "FULL", "EXTRA"]},
        "delivery": {
            "type": "object", "additionalProperties": False,
            "properties": {"timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
                           "perRegistry": {"type": "integer", "minimum": 1, "maximum": 64},
                           "leaseSeconds": {"type": "number", "minimum": 10}},
        },
        "registries": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "callbackBaseUrl"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME},
                    "apiKey": SECRET,
                    "apiKeyEnv": {"type": "string", "minLength": 1},
                    "callbackBaseUrl": {"type": "string", "pattern": URL},
                    "allowedForms": {"type": "array", "items": {"type": "string", "pattern": UUID_PATTERN}},
                },
            },
        },
    },
}

EXAMPLE = """\
# ePROX proxy configuration (docs/PROXY.md). Environment variables override these settings:
# EPROX_DATABASE, EPROX_EPROM_URL, EPROX_EPROM_API_KEY, EPROX_LIFETIME_DAYS, EPROX_LOG_LEVEL,
# EPROX_SQLITE_SYNCHRONOUS, EPROX_DELIVERY_TIMEOUT, EPROX_DELIVERY_PER_REGISTRY, EPROX_REGISTRIES (JSON list).
eprom:
  url: https://eprom.example.no          # ePROM's API base URL
  apiKeyEnv: EPROX_EPROM_API_KEY          # ePROX's key at ePROM, from this variable (or apiKey: literal)
database: /var/lib/eprox/eprox.sqlite3    # relative paths are relative to this file
lifetimeDays: 365                         # how long an order is shared and its answer kept
logLevel: INFO
sqliteSynchronous: NORMAL                 # NORMAL: survives a killed process; FULL: also a power cut
delivery:
  timeoutSeconds: 15                      # one callback attempt to a registry
  perRegistry: 4                          # callbacks in flight at once to one registry
registries:
  - name: registry-a
    apiKeyEnv: REGISTRY_A_KEY             # the key registry-a sends in Authorization: Basic <key>
    callbackBaseUrl: https://registry-a.example.no/eprom   # gets PUT {this}/api/PromsFormOrder
    allowedForms: [1bc5f9f0-2607-49eb-94f0-6af955bbd79a]     # optional: default every form
  - name: registry-b
    apiKeyEnv: REGISTRY_B_KEY
    callbackBaseUrl: https://registry-b.example.no
"""


class ConfigError(ValueError):
    """The configuration cannot be used; the message lists every problem, one a line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ProxyConfig:
    """The configuration from `path` (default: $EPROX_CONFIG, or none) overridden by the environment."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG) or None
    data: dict[str, Any] = {}
    base = Path.cwd()
    source = "the environment"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError([f"{path}: cannot be read ({err.strerror or err})"]) from None
        try:
            data = yaml.safe_load(text) if path.suffix.lower() != ".json" else json.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise ConfigError([f"{path}: is not valid YAML/JSON: {err}"]) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: must be a mapping of settings"])
        base = path.resolve().parent
    data = _apply_env(data, env)
    return config_from_dict(data, env=env, base_dir=base, source=source)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))  # a deep copy
    problems = []
    for var, place in ENV_VARS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        value: Any = raw
        if place in ENV_CONVERSIONS:
            convert, expected = ENV_CONVERSIONS[place]
            try:
                value = convert(raw)
            except (ValueError, yaml.YAMLError):
                problems.append(f"{var}: must be {expected}")
                continue
        target = data
        *parents, leaf = place.split(".")
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        target[leaf] = value
        if leaf == "apiKey":
            target.pop("apiKeyEnv", None)  # the environment's key wins over the file's way to find one
    if problems:
        raise ConfigError(problems)
    return data


def config_from_dict(data: dict[str, Any], *, env: Mapping[str, str] | None = None, base_dir: Path | None = None,
                     source: str = "<config>") -> ProxyConfig:
    env = os.environ if env is None else env
    problems = []
    for error in sorted(DocumentValidator(SCHEMA).iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{source}: {where}: {_describe(error)}")
    if problems:
        raise ConfigError(problems)

    eprom_key = _secret(data["eprom"], "eprom", env, problems)
    registries = []
    for index, entry in enumerate(data["registries"]):
        key = _secret(entry, f"registries.{index} ({entry['name']})", env, problems)
        forms = entry.get("allowedForms")
        registries.append(RegistryAccount(name=entry["name"], api_key=key or f"<missing {index}>",
                                          api_base_url=entry["callbackBaseUrl"],
                                          allowed_forms=frozenset(forms) if forms is not None else None))
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    database = Path(data["database"]).expanduser()
    if not database.is_absolute():
        database = (base_dir or Path.cwd()) / database
    delivery = data.get("delivery", {})
    timeout = float(delivery.get("timeoutSeconds", 15.0))
    if "leaseSeconds" in delivery and delivery["leaseSeconds"] <= timeout:
        raise ConfigError([f"{source}: delivery.leaseSeconds: must be longer than a delivery's timeout "
                           f"(delivery.timeoutSeconds, {timeout:g} s): another worker could send it again meanwhile"])
    try:
        return ProxyConfig(
            eprom_url=data["eprom"]["url"], eprom_api_key=eprom_key, registries=registries,
            state_dir=database.parent, database=database,
            lifetime=timedelta(days=float(data.get("lifetimeDays", 365))),
            delivery_timeout=timeout, lane_width=int(delivery.get("perRegistry", 4)),
            lease_seconds=float(delivery.get("leaseSeconds", max(300.0, 4 * timeout + 60))),
            synchronous=data.get("sqliteSynchronous", "NORMAL"), log_level=data.get("logLevel", "INFO"),
        )
    except ValueError as err:
        raise ConfigError([f"{source}: {err}"]) from None


def _secret(entry: dict, where: str, env: Mapping[str, str], problems: list[str]) -> str:
    if "apiKey" in entry and "apiKeyEnv" in entry:
        problems.append(f"{where}: give apiKey or apiKeyEnv, not both")
        return ""
    if "apiKeyEnv" in entry:
        value = env.get(entry["apiKeyEnv"], "")
        if not value:
            problems.append(f"{where}: apiKeyEnv names {entry['apiKeyEnv']}, which is not set")
        return value
    if "apiKey" not in entry:
        problems.append(f"{where}: apiKey (or apiKeyEnv) is required")
        return ""
    return entry["apiKey"]


def _describe(error) -> str:
    if error.validator == "required":
        return f"{error.message.split(chr(39))[1]} is required"
    if error.validator == "additionalProperties":
        return error.message.replace("were unexpected", "are not settings").replace("was unexpected", "is not a setting")
    if error.validator == "pattern":
        return {URL: "is not an http:// or https:// URL", UUID_PATTERN: "is not a form id (uuid)",
                NAME: "is not a usable name (letters, digits, '.', '_', '-')"}.get(error.validator_value, error.message)
    value = error.validator_value  # never echo error.instance: it may be a key
    if error.validator == "type":
        return f"must be of type {value}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, value))}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than"}
        return f"must be {words[error.validator]} {value}"
    if error.validator == "minItems":
        return f"needs at least {value} item(s)"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message
