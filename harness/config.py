"""The topology configuration (`eprox-harness up --config FILE`, and a scenario file's `topology`): a YAML
or JSON file, checked against CONFIG_SCHEMA, with errors that name the file, the place in it and what is
wrong."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import ENCODABLE_BIRTH_YEARS, ENCODABLE_BIRTH_YEARS_TEXT
from eprom_protocol.schemas import UUID_PATTERN, DocumentValidator
from eprom_protocol.timefmt import norwegian_date, parse_duration, parse_instant
from fake_eprom.forms import FORM_SCHEMA, CatalogError, default_catalog, parse_catalog
from fake_eprom.patients import DEFAULT_AGE
from proxy.config import LIFETIME_DAYS_SCHEMA, lifetime_problem
from proxy.settings import URL as URL_PATTERN, endpoint_problem
from service_kit.clock import DEFAULT_SIM_START

from .problems import (PATTERN_WORDS, ConfigError, Problem, duration_at, raise_if_any, read_document,
                       schema_problems)

__all__ = ["CONFIG_SCHEMA", "ConfigError", "HarnessConfig", "RegistrySpec", "config_from_dict",
           "example_config", "load_config", "topology_rule_problems"]


DEFAULT_EPROM_API_KEY = "eprox-key"
EPROX_AT_EPROM = "eprox"  # the proxy's name as an ordering system at the fake ePROM (a form's owner)
DEFAULT_REGISTRIES = ("registry-a", "registry-b")
DEFAULT_LIFETIME_DAYS = 365
POPULATIONS = ("open", "strict")
CHANNEL_FORMATS = ("number", "name")
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
RESERVED_NAMES = ("eprom", "proxy")  # the transcript names the other two servers so

PATTERN_WORDS.update({
    UUID_PATTERN: "is not a uuid",
    NAME_PATTERN: ("is not a usable name: letters, digits, '.', '_' and '-', starting with a letter or digit, "
                   "at most 63 characters"),
    URL_PATTERN: "is not an http:// or https:// base URL (no query or fragment)",
})

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
                "lifetimeDays": LIFETIME_DAYS_SCHEMA,
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
                    "callbackUrl": {"type": "string", "pattern": URL_PATTERN,
                                    "description": "your own registry's ApiBaseUrl: the proxy calls it back at "
                                                   "{callbackUrl}/api/PromsFormOrder and no fake registry is started"},
                },
            },
        },
        "forms": {"type": "array", "items": FORM_SCHEMA,
                  "description": "forms added to the default catalog (catalog data format)"},
    },
}

_VALIDATOR = DocumentValidator(CONFIG_SCHEMA)


@dataclass(frozen=True)
class RegistrySpec:
    name: str
    api_key: str
    allowed_forms: frozenset[str] | None = None
    callback_url: str | None = None  # None: the harness runs a fake registry; else the proxy calls this back

    @property
    def is_fake(self) -> bool:
        return self.callback_url is None


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
    forms: list[dict] = field(default_factory=list)  # extra forms (catalog data format) after the default catalog

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.lifetime_days)


# --- reading a file ----------------------------------------------------------------------

def load_config(path: str | Path) -> HarnessConfig:
    """Read, validate and build the configuration in a file; ConfigError names every problem."""
    path = Path(path)
    return config_from_dict(read_document(path), source=str(path), base_dir=path.parent)


def config_from_dict(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> HarnessConfig:
    """Validate a parsed configuration and build it; relative paths are taken from base_dir."""
    raise_if_any(schema_problems(_VALIDATOR, data) + topology_rule_problems(data), source)
    return build_config(data, base_dir)


def build_config(data: dict, base_dir: Path | None = None) -> HarnessConfig:
    """The configuration of a document that has passed CONFIG_SCHEMA and topology_rule_problems."""
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
                         frozenset(r["allowedForms"]) if "allowedForms" in r else None,
                         r.get("callbackUrl"))
            for r in data["registries"]
        ]
    config.forms = [dict(form) for form in data.get("forms", [])]
    return config


#: Where the simulated clock may start (its year in Norway): a default patient born then has a national id, and
#: ten years of running stay far inside the calendar.
START_YEARS = range(ENCODABLE_BIRTH_YEARS.start + DEFAULT_AGE + 1, ENCODABLE_BIRTH_YEARS.stop)


def topology_rule_problems(data: Any) -> list[Problem]:
    """(place, what is wrong) for the rules a schema cannot say; each guards against shapes the schema
    already complained about. Places are relative to the topology document."""
    if not isinstance(data, dict):
        return []
    found: list[Problem] = []
    if isinstance(data.get("start"), str):
        try:
            start = parse_instant(data["start"], "start")
        except ProtocolError:
            found.append(("start", f"{data['start']!r} is not an ISO-8601 date or date-time"))
        else:
            if norwegian_date(start).year not in START_YEARS:
                found.append(("start", f"must be in the years {START_YEARS.start} to {START_YEARS.stop - 1} "
                                       f"(Norwegian time): the patients are born before it, and "
                                       f"{ENCODABLE_BIRTH_YEARS_TEXT}"))
    proxy = data.get("proxy") if isinstance(data.get("proxy"), dict) else {}
    days = proxy.get("lifetimeDays")
    if isinstance(days, (int, float)) and not isinstance(days, bool) and (too_short := lifetime_problem(days)):
        found.append(("proxy.lifetimeDays", too_short))
    eprom = data.get("eprom") if isinstance(data.get("eprom"), dict) else {}
    delay = eprom.get("statusDelay")
    if isinstance(delay, str):
        duration_at(delay, "eprom.statusDelay", found)
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
        if not isinstance(key, str):
            pass  # not a string: the schema says so; comparing it would not make sense
        elif key == eprom_key:
            found.append((f"registries[{i}].apiKey", "must differ from eprom.apiKey (ePROX's own key at ePROM)"))
        elif key in seen_keys:
            found.append((f"registries[{i}].apiKey", f"is already the key of registries[{seen_keys[key]}]: "
                                                     "every registry needs its own key"))
        else:
            seen_keys[key] = i
        url = registry.get("callbackUrl")  # one the schema refused has been reported
        if isinstance(url, str) and re.match(URL_PATTERN, url) and (problem := endpoint_problem(url)):
            found.append((f"registries[{i}].callbackUrl", problem))
    found += _form_problems(data, registries)
    return found


def _form_problems(data: dict, registries: list) -> list[Problem]:
    """Extra forms must be readable as a catalog and must not clash with the default catalog or each other
    (scenarios name forms, so names are unique too); allowedForms must name forms of the catalog."""
    found: list[Problem] = []
    defaults = default_catalog()
    ids = {form.id: f"the default catalog's form {form.name!r}" for form in defaults}
    names = {form.name: "a form of the default catalog" for form in defaults}
    forms = data.get("forms") if isinstance(data.get("forms"), list) else []
    for i, form in enumerate(forms):
        if not isinstance(form, dict):
            continue
        form_id, name = form.get("id"), form.get("name")
        if isinstance(form_id, str) and re.match(UUID_PATTERN, form_id):
            key = form_id.lower()
            if key in ids:
                found.append((f"forms[{i}].id", f"{form_id} is already the id of {ids[key]}"))
            ids.setdefault(key, f"forms[{i}]")
        if isinstance(name, str) and name:
            if name in names:
                found.append((f"forms[{i}].name", f"{name!r} is already the name of {names[name]}"))
            names.setdefault(name, f"forms[{i}]")
        owner = form.get("owner")
        if isinstance(owner, str) and owner and owner != EPROX_AT_EPROM:
            found.append((f"forms[{i}].owner", f"{owner!r} is not an ordering system at the fake ePROM: in a harness "
                                               f"the only one is ePROX, named {EPROX_AT_EPROM!r}"))
        if not _schema_clean(form):
            continue
        try:
            parse_catalog({"forms": [form]}, source="")
        except CatalogError as err:  # what the schema cannot say, e.g. min > max
            parts = str(err).split(": ", 2)  # ": forms[0].questions[1]: what is wrong"
            where = parts[1].replace("forms[0]", f"forms[{i}]", 1) if len(parts) == 3 else f"forms[{i}]"
            found.append((where, parts[-1]))
    for i, registry in enumerate(registries):
        allowed = registry.get("allowedForms") if isinstance(registry, dict) else None
        if not isinstance(allowed, list):
            continue
        for j, form_id in enumerate(allowed):
            if isinstance(form_id, str) and re.match(UUID_PATTERN, form_id) and form_id.lower() not in ids:
                found.append((f"registries[{i}].allowedForms[{j}]", f"no form with id {form_id} in the catalog"))
    return found


_FORM_VALIDATOR = DocumentValidator(FORM_SCHEMA)


def _schema_clean(form: dict) -> bool:
    return _FORM_VALIDATOR.is_valid(form)


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
          # - name: my-registry         # your own registry: no fake one is started, and the proxy
          #   apiKey: my-registry-key   # calls back {callbackUrl}/api/PromsFormOrder
          #   callbackUrl: http://127.0.0.1:8080
        # forms:                        # extra forms after the default catalog (its data format)
        #   - id: 0b7c7a4e-6a57-4c0e-9d0f-3f1f8c2a5b10
        #     name: My form
        #     published: true
        #     paperEnabled: false
        #     mustBeSigned: false
        #     questions:
        #       - {id: q1, text: "How are you?", type: choice, options: [{value: 1, text: Good}, {value: 2, text: Bad}]}
        """, flags=re.M)
