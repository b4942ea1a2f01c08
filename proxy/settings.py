"""Reads the production proxy's configuration from a YAML (or JSON) file and the environment, checks it,
and says exactly what is wrong, naming the place but never echoing a secret. docs/PROXY.md documents it."""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import stat
import tempfile
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

import yaml

from eprom_protocol.schemas import UUID_PATTERN, DocumentValidator
from service_kit.documents import DuplicateKey, UniqueKeyLoader, unique_pairs, yaml_error_text
from service_kit.http import goes_direct, tunnel_problem

from .config import LIFETIME_DAYS_SCHEMA, ProxyConfig, RegistryAccount, lifetime_problem

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
#: What a setting's and a variable's name look like: other text may be a key (`apiKey Sup3rSecret`, a colon
#: missing; a key put in apiKeyEnv), so a problem names it only when it looks like one.
SETTING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,40}")
VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _number(text: str) -> float:
    """float() of a variable's text, but not nan or inf: NaN passes every bound the schema sets."""
    if not math.isfinite(number := float(text)):
        raise ValueError("not a number")
    return number


#: How a variable's text becomes the file's value, and what to say when it cannot.
ENV_CONVERSIONS: dict[str, tuple[Any, str]] = {
    "lifetimeDays": (_number, "a number"),
    "delivery.timeoutSeconds": (_number, "a number"),
    "delivery.perRegistry": (int, "a whole number"),
    "registries": (lambda text: yaml.load(text, Loader=UniqueKeyLoader), "a JSON (or YAML) list of registries"),
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
        "sqliteSynchronous": {"enum": ["NORMAL", "FULL"]},  # EXTRA is FULL in WAL mode: not offered
        "delivery": {
            "type": "object", "additionalProperties": False,
            "properties": {"timeoutSeconds": {"type": "number", "minimum": 1, "maximum": 120},
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
                    "allowedForms": {"type": "array", "minItems": 1,
                                     "items": {"type": "string", "pattern": UUID_PATTERN}},
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


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a YAML (or JSON, by its suffix) file holds. A syntax error is told by line and column,
    never by quoting the line: it may hold a key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot be read ({getattr(err, 'strerror', None) or err})"]) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=unique_pairs)
        else:
            data = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKey as err:
        raise ConfigError([f"{path}: {err}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: {yaml_error_text(err, quote_content=False)}"]) from None
    except json.JSONDecodeError as err:
        raise ConfigError([f"{path}: not valid JSON: line {err.lineno} column {err.colno}: {err.msg}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: must be a mapping of settings"])
    return data


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ProxyConfig:
    """The configuration from `path` (default: $EPROX_CONFIG, or none) overridden by the environment."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG) or None
    data: dict[str, Any] = {}
    base = Path.cwd()
    source = None
    if path is not None:
        path = Path(path)
        source = str(path)
        data = read_config_file(path)
        base = path.resolve().parent
    data, origins = _apply_env(data, env)
    return config_from_dict(data, env=env, base_dir=base, source=source, origins=origins)


def load_checked(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ProxyConfig:
    """load_settings(), and the database's location checked too: what `check-config` checks, and a server
    before it starts (else the proxy stops at its start with a traceback)."""
    config = load_settings(path, env)
    if problem := database_problem(config.database_path):
        raise ConfigError([f"database {config.database_path}: {problem}"])
    return config


def resolve_database(value: str, base_dir: Path) -> Path:
    """The one rule for a relative database path, from the file's `database` or from EPROX_DATABASE alike:
    relative to the configuration file's directory (`base_dir`; without a file, the current directory)."""
    database = Path(value).expanduser()
    return database if database.is_absolute() else base_dir / database


def database_setting(config: Path, env: Mapping[str, str]) -> Path:
    """Where the proxy configured by `config` (and the environment) keeps its database, without needing the
    secrets the rest of the file may take from the environment."""
    value = env.get("EPROX_DATABASE") or read_config_file(config).get("database")
    if not isinstance(value, str) or not value:
        raise ConfigError([f"{config}: has no `database` setting (nor is EPROX_DATABASE set)"])
    return resolve_database(value, config.resolve().parent)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's settings with the environment's over them, and the variable that gave each setting it
    gave (a problem in that setting is the variable's, not the file's)."""
    data = json.loads(json.dumps(data))  # a deep copy
    origins: dict[str, str] = {}
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
            except DuplicateKey as err:
                problems.append(f"{var}: {err}")
                continue
            except (ValueError, yaml.YAMLError):
                problems.append(f"{var}: must be {expected}")
                continue
        origins[place] = var
        target = data
        *parents, leaf = place.split(".")
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        if leaf == "apiKey":  # the environment's key wins over the file's; named by its variable, as apiKeyEnv is
            target.pop("apiKey", None)
            target["apiKeyEnv"] = var
        else:
            target[leaf] = value
    if problems:
        raise ConfigError(problems)
    return data, origins


def config_from_dict(data: dict[str, Any], *, env: Mapping[str, str] | None = None, base_dir: Path | None = None,
                     source: str | None = "<config>", origins: Mapping[str, str] | None = None) -> ProxyConfig:
    """The configuration `data` gives. A problem is told at its place in `source` (None: there is no file) or,
    for a setting in `origins` (its place: the environment variable that gave it), by that variable."""
    env = os.environ if env is None else env
    origins = origins or {}

    def at(place: str, label: str | None = None) -> str:
        if (var := _origin(place, origins)) is None:
            return f"{source or 'the environment'}: {label or place or '(top level)'}"
        return var if place in origins else f"{var}: {label or place}"

    problems = []
    for error in sorted(DocumentValidator(SCHEMA).iter_errors(data), key=lambda e: list(map(str, e.path))):
        place = ".".join(str(p) for p in error.absolute_path)
        missing = _missing(error, place) if source is None and _origin(place, origins) is None else None
        problems.append(missing or f"{at(place)}: {_describe(error)}")
    if problems:
        raise ConfigError(problems)

    _check_url(data["eprom"]["url"], at("eprom.url"), problems)
    eprom_key = _secret(data["eprom"], "eprom", "eprom", env, at, problems)
    registries = []
    for index, entry in enumerate(data["registries"]):
        _check_url(entry["callbackBaseUrl"], at(f"registries.{index}.callbackBaseUrl"), problems)
        key = _secret(entry, f"registries.{index}", f"registries.{index} ({entry['name']})", env, at, problems)
        forms = entry.get("allowedForms")
        registries.append(RegistryAccount(name=entry["name"], api_key=key or f"<missing {index}>",
                                          api_base_url=entry["callbackBaseUrl"],
                                          allowed_forms=frozenset(forms) if forms is not None else None))
    lifetime_days = float(data.get("lifetimeDays", 365))
    if too_short := lifetime_problem(lifetime_days):
        problems.append(f"{at('lifetimeDays')}: {too_short}")
    delivery = data.get("delivery", {})
    timeout = float(delivery.get("timeoutSeconds", 15.0))
    if "leaseSeconds" in delivery and delivery["leaseSeconds"] <= timeout:
        problems.append(f"{at('delivery.leaseSeconds')}: must be longer than a delivery's timeout "
                        f"({origins.get('delivery.timeoutSeconds', 'delivery.timeoutSeconds')}, {timeout:g} s): "
                        "another worker could send it again meanwhile")
    targets = [data["eprom"]["url"], *(entry["callbackBaseUrl"] for entry in data["registries"])]
    problems += _proxy_problems(env, [host for url in targets if (host := _https_host(url))])
    if problems:
        raise ConfigError(problems)
    database = resolve_database(data["database"], base_dir or Path.cwd())
    try:
        return ProxyConfig(
            eprom_url=data["eprom"]["url"], eprom_api_key=eprom_key, registries=registries,
            state_dir=database.parent, database=database, lifetime=timedelta(days=lifetime_days),
            delivery_timeout=timeout, lane_width=int(delivery.get("perRegistry", 4)),
            lease_seconds=float(delivery.get("leaseSeconds", max(300.0, 4 * timeout + 60))),
            synchronous=data.get("sqliteSynchronous", "NORMAL"), log_level=data.get("logLevel", "INFO"),
        )
    except ValueError as err:
        raise ConfigError([f"{source or 'the environment'}: {err}"]) from None


def _origin(place: str, origins: Mapping[str, str]) -> str | None:
    """The environment variable that gave the setting at `place`, or the list or mapping holding it."""
    return next((var for setting, var in origins.items() if place == setting or place.startswith(setting + ".")),
                None)


def _missing(error, place: str) -> str | None:
    """A required setting missing where there is no file: the variable that would give it is not set."""
    if error.validator != "required":
        return None
    missing = ".".join(filter(None, [place, _required_name(error)]))
    var = next((v for v, p in ENV_VARS.items() if p == missing or p.startswith(missing + ".")), None)
    return var and f"no configuration file, and {var} is not set: {ENV_VARS[var]} is required"


def _secret(entry: dict, place: str, label: str, env: Mapping[str, str], at, problems: list[str]) -> str:
    where = at(place, label)
    if "apiKey" in entry and "apiKeyEnv" in entry:
        problems.append(f"{where}: give apiKey or apiKeyEnv, not both")
        return ""
    if "apiKeyEnv" in entry:
        name = entry["apiKeyEnv"]
        value = env.get(name, "")
        if not value and VARIABLE_NAME.fullmatch(name):
            problems.append(f"{where}: apiKeyEnv names {name}, which is not set")
        elif not value:  # never shown: it may be the key itself
            problems.append(f"{where}: apiKeyEnv does not look like a variable's name (capital letters, digits, "
                            "'_') and names no variable that is set: is it the key itself? Name the variable that "
                            "holds the key (or give the key as apiKey)")
        elif problem := key_problem(value):
            by_variable = at(f"{place}.apiKey", label) == name  # the key came from EPROX_EPROM_API_KEY
            problems.append(f"{name}: {problem}" if by_variable else f"{where}: apiKey (from {name}): {problem}")
        return value
    if "apiKey" not in entry:
        problems.append(f"{where}: apiKey (or apiKeyEnv) is required")
        return ""
    if problem := key_problem(entry["apiKey"]):
        problems.append(f"{where}: apiKey: {problem}")
    return entry["apiKey"]


def key_problem(key: str) -> str | None:
    """Why a key cannot travel as it is in `Authorization: Basic <key>` (ePROX's own at ePROM; a registry's to
    the proxy), or None. Refused rather than trimmed: a key the operator did not mean is better found now than
    at ePROM. Never says what the key is."""
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        return "contains a line break, a space or a control character; check the secret file (a trailing newline?)"
    if not key.isascii():
        return "contains a character outside ASCII, which an HTTP header does not carry reliably"
    return None


def _check_url(url: str, where: str, problems: list[str]) -> None:
    if problem := endpoint_problem(url):
        problems.append(f"{where}: {problem}")


def endpoint_problem(url: str) -> str | None:
    """Why ePROX could not use this URL for ePROM or a registry's callbacks (None: it can): url_problem's
    reasons, or credentials in it, which ePROX never sends (ePROM and the registries know it by its apiKey),
    so every call would go without them."""
    if problem := url_problem(url):
        return problem
    if "@" in urlsplit(url).netloc:
        return ("holds a user name or password (user:password@host), which ePROX does not send: ePROM and the "
                "registries know it by its apiKey")
    return None


def url_problem(url: str) -> str | None:
    """Why the HTTP client could not call this http(s) URL (None: it can). It never quotes the URL: an HTTP
    proxy's URL may hold a password."""
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        return ("holds a space, a control character or a character outside ASCII "
                "(percent-encode it, e.g. %C3%B8 for ø)")
    try:
        parts = urlsplit(url)
    except ValueError:
        return "has an unusable host (an [IPv6 address] not closed or not valid)"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    return None


#: The variables naming the HTTP proxy outbound calls go through (service_kit/http.py reads them with urllib's
#: getproxies(): a lower-case name wins over its upper-case one), by the scheme each is for.
PROXY_VARIABLES = {"http_proxy": "http", "https_proxy": "https", "all_proxy": "all"}


def _proxy_problems(env: Mapping[str, str], https_hosts: list[str]) -> list[str]:
    """An HTTP proxy in the environment that outbound calls would use but could not (each call would fail). The
    https one only matters for an https host the proxy is used for (not loopback, not exempt by NO_PROXY): a
    machine-wide https:// HTTPS_PROXY must not stop a proxy that makes no such call."""
    named: dict[str, str] = {}  # scheme -> the variable that names its proxy
    for name, value in env.items():
        scheme = PROXY_VARIABLES.get(name.lower())
        if value and scheme and (scheme not in named or name.islower()):
            named[scheme] = name
    for_http, for_https = (named.get(scheme) or named.get("all") for scheme in ("http", "https"))
    problems = []
    for name in sorted({for_http, for_https} - {None}):
        url = env[name] if "://" in env[name] else f"http://{env[name]}"
        tunnelled = name == for_https and not all(goes_direct(host, env) for host in https_hosts)
        problem = url_problem(url) or (tunnel_problem(urlsplit(url).scheme) if tunnelled else None)
        if problem:
            problems.append(f"{name} (the HTTP proxy for outbound calls): {problem}")
    return problems


def _https_host(url: str) -> str | None:
    """The host of an https URL (None: another scheme, or a URL already refused for its shape)."""
    try:
        parts = urlsplit(url)
        return parts.hostname if parts.scheme == "https" else None
    except ValueError:
        return None


def database_problem(path: Path) -> str | None:
    """Why the proxy could not keep its database at `path` (None: it can), found without creating or changing
    anything: the proxy would otherwise stop at start with an error, or write its tables into another
    application's database."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return _cannot_create(path)
    except OSError as err:
        return f"cannot be reached ({err.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if problem := not_a_proxy_database(path, new_ok=True):
        return problem
    return unwritable(path)


def _cannot_create(path: Path) -> str | None:
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    try:  # the one sure test (a root process may not write in /proc, whatever its permissions say)
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as err:
        return f"cannot be created in {ancestor} ({err.strerror})"
    return None


def unwritable(path: Path) -> str | None:
    """Why the proxy's database at `path` cannot be changed (None: it can): SQLite also writes beside it."""
    for place in (path, path.parent):
        if not os.access(place, os.W_OK):
            if os.statvfs(place).f_flag & os.ST_RDONLY:
                return "cannot be changed (on a read-only file system)"
            return f"cannot be changed ({place}: no write permission)"
    return None


def read_only_uri(path: Path) -> str:
    """A SQLite URI that reads the database at `path` without changing anything. On a location where SQLite
    cannot create the shared-memory file a WAL database needs (a read-only file system), the file is read as
    immutable: nothing can be writing it there."""
    uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        if unwritable(path) is None:
            raise
        return uri + "&immutable=1"
    except sqlite3.DatabaseError:
        pass  # not a database: whoever reads it says so
    return uri


def not_a_proxy_database(path: Path, *, new_ok: bool = False) -> str | None:
    """Why the file at `path` is not the proxy's database (None: it is; with new_ok also an empty database,
    which the proxy makes its own), read without changing it."""
    try:
        with closing(sqlite3.connect(read_only_uri(path), uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err):
            return "not an ePROX proxy database (not an SQLite file)"
        return f"cannot be read ({err})"
    if "deliveries" in tables or (new_ok and not tables):
        return None
    return "not an ePROX proxy database (no deliveries table)"


def _unknown_settings(names: list[str]) -> str:
    """What is said of settings that are not: only the names that look like one (the others may be a key)."""
    shown = [repr(name) for name in names if SETTING_NAME.fullmatch(name)]
    hidden = len(names) - len(shown)
    words = [f"{', '.join(shown)} {'is not a setting' if len(shown) == 1 else 'are not settings'}"] if shown else []
    if hidden:
        words.append("an unknown setting whose name is not shown, as it may be a key" if hidden == 1 else
                     f"{hidden} unknown settings whose names are not shown, as they may be keys")
        words[-1] += " (a ':' missing after a setting's name?)"
    return "; ".join(words)


def _required_name(error) -> str:
    return error.message.split("'")[1]


def _describe(error) -> str:
    if error.validator == "required":
        return f"{_required_name(error)} is required"
    if error.validator == "additionalProperties":
        return _unknown_settings([str(k) for k in error.instance if k not in error.schema.get("properties", {})])
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
        if list(error.absolute_path)[-1:] == ["allowedForms"]:
            return "empty; leave it out to allow every form"
        return f"needs at least {value} item(s)"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message
