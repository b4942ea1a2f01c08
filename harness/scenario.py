"""Scenario files (`scenarios/*.yaml`): a topology, scripted patients, registry orders placed as the simulated
clock reaches them, and the outcome expected after running `until` a duration. Loaded by
`eprox-harness up --scenario FILE`; run and judged by `eprox-harness scenario run FILE`."""
from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

from eprom_protocol.enums import (
    STATUS_CALLBACK_STATUSES,
    DistributionRule,
    FilledOutByActType,
    FormOrderStatus,
    NotificationChannel,
)
from eprom_protocol.messages import ZERO_UUID, ProtocolError, no_such_form
from eprom_protocol.national_id import mask
from eprom_protocol.schemas import DocumentValidator
from eprom_protocol.timefmt import parse_duration, parse_instant
from fake_eprom.patient_schema import DURATION_PATTERN, NATIONAL_ID_PATTERN, PATIENT_SCHEMA
from fake_eprom.patient_schema import UUID_PATTERN as _PATIENT_UUID_PATTERN
from proxy.linking import check_in_place_of_eprom, take_in

from .client import ControlError, HarnessClient
from .config import CONFIG_SCHEMA, EPROX_AT_EPROM, UUID_PATTERN, HarnessConfig, build_config, topology_rule_problems
from .demo import Check
from .problems import (PATTERN_WORDS, ConfigError, Problem, duration_at, join, raise_if_any, read_document,
                       schema_problems)

__all__ = ["SCENARIO_SCHEMA", "Scenario", "ScenarioError", "ScenarioSession", "check_scenario", "load_scenario",
           "run_scenario"]

REF_PATTERN = "^[A-Za-z][A-Za-z0-9._-]{0,62}$"  # never 11 digits, so a ref cannot be mistaken for a national id
DEFAULT_EXPIRES_AFTER = timedelta(days=30)
MAX_UNTIL = timedelta(days=366 * 10)  # what one /_sim/clock/advance may move
SCRIPT_WORK_NAME = "scenario-script"
PLACE_TIMEOUT = 60.0  # seconds for one scripted order to be answered

PATTERN_WORDS.update({
    REF_PATTERN: "is not a usable ref: a letter, then letters, digits, '.', '_' or '-' (at most 63 characters)",
    DURATION_PATTERN: "is not an ISO-8601 duration of weeks, days, hours, minutes or seconds such as P3D or PT12H",
})

STATUS_NAMES = [s.wire_name for s in FormOrderStatus]
CHANNEL_NAMES = [c.wire_name for c in NotificationChannel]
ACT_TYPE_NAMES = [a.wire_name for a in FilledOutByActType]
RULE_VALUES = [r.wire_name for r in DistributionRule] + [int(r) for r in DistributionRule]


class ScenarioError(ConfigError):
    """The scenario file is unusable; `problems` holds one line per problem (file: place: what)."""


# --- the schema --------------------------------------------------------------------------------

_REF = {"type": "string", "pattern": REF_PATTERN, "description": "the ref of a patient in this file"}
_DURATION = {"type": "string", "pattern": DURATION_PATTERN,
             "description": "ISO-8601 duration such as P3D or PT12H (weeks, days, hours, minutes, seconds)"}
_PATIENT_REF_ALTERNATIVE = {"type": "string", "pattern": REF_PATTERN}
_FORM_NAME_ALTERNATIVE = {"type": "string", "minLength": 1}
_REF_KEYS = ("representedBy", "nationalId")  # national ids that may name another patient of the file by ref
_OPAQUE_KEYS = ("formData", "warnings")  # answers as given: their keys are question ids, never refs


def _scenario_patient_schema() -> dict:
    """PATIENT_SCHEMA (fake_eprom.patient_schema, the POST /_sim/patients contract) plus a required `ref`;
    where the contract wants another person's national id (representedBy, filledOutBy.nationalId), a
    scenario may give a patient's ref instead, and where it wants a form id (initiates[].formId), a form's
    name. Derived from the contract, never retyped, so the two cannot drift apart."""
    schema = copy.deepcopy(PATIENT_SCHEMA)
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    schema["title"] = "A patient of the scenario: a ref, plus the fake ePROM's patient contract"
    schema["properties"] = {"ref": {**_REF, "description": "the name the rest of the file uses for this patient"},
                            **schema["properties"]}
    schema["required"] = ["ref", *schema.get("required", [])]
    _widen(schema, top_level=True, seen=set())
    return schema


def _widen(node: Any, *, top_level: bool, seen: set[int]) -> None:
    if isinstance(node, list):
        for item in node:
            _widen(item, top_level=False, seen=seen)
        return
    if not isinstance(node, dict) or id(node) in seen:
        return
    seen.add(id(node))
    properties = node.get("properties")
    if isinstance(properties, dict) and id(properties) not in seen:
        seen.add(id(properties))
        for key, sub in list(properties.items()):
            if key in _REF_KEYS and not (top_level and key == "nationalId") and _mentions(sub, NATIONAL_ID_PATTERN):
                properties[key] = {"description": "a national id (11 digits) or the ref of a patient in this file",
                                   "anyOf": [sub, _PATIENT_REF_ALTERNATIVE]}
                seen.add(id(properties[key]))
            elif key == "formId" and _mentions(sub, _PATIENT_UUID_PATTERN):
                properties[key] = {"description": "a form's id or its name in the catalog",
                                   "anyOf": [sub, _FORM_NAME_ALTERNATIVE]}
                seen.add(id(properties[key]))
    for key, child in node.items():
        if key != "properties":
            _widen(child, top_level=False, seen=seen)
    if isinstance(properties, dict):
        for child in properties.values():
            _widen(child, top_level=False, seen=seen)


def _mentions(schema: Any, pattern: str) -> bool:
    if isinstance(schema, dict):
        return schema.get("pattern") == pattern or any(_mentions(v, pattern) for v in schema.values())
    if isinstance(schema, list):
        return any(_mentions(v, pattern) for v in schema)
    return False


_STEP_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "registry", "patient", "form"],
    "properties": {
        "at": {**_DURATION, "description": "when the registry places the order, from the scenario's start"},
        "registry": {"type": "string", "minLength": 1, "description": "a registry of the topology"},
        "patient": {**_REF, "description": "the patient the order goes to (its nationalId)"},
        "form": {"type": "string", "minLength": 1, "description": "a form of the catalog by name or id"},
        "onBehalfOf": {**_REF, "description": "the patient the form is about, when `patient` is someone else "
                                              "(a parent): onBehalfOfNationalId"},
        "metadata": {"type": "object", "description": "sent as a JSON string; may hold RELEVANT_DATE and "
                                                      "CREATE_NEW_ORDER for ePROX"},
        "expiryDate": {"type": "string", "description": "ISO-8601 date or date-time (Norwegian time without offset)"},
        "expiresAfter": {**_DURATION, "description": "expiryDate = when the order is placed + this (default P30D)"},
        "distributionRule": {"enum": RULE_VALUES},
        "mustBeSigned": {"type": "boolean"},
        "signingText": {"type": "string"},
        "testMode": {"type": "boolean"},
        "dontStoreCompletedFormInPha": {"type": "boolean"},
        "physicalAddress": {"type": "object"},
    },
}

_EXPECTATION_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["patient"],
    "properties": {
        "registry": {"type": "string", "minLength": 1},
        "patient": _REF,
        "form": {"type": "string", "minLength": 1, "description": "name or id; absent: every form"},
        "statuses": {"type": "array", "items": {"enum": STATUS_NAMES},
                     "description": "exactly the formOrderStatus values the registry received for its scripted "
                                    "orders of this patient (and form), order by order, each in arrival order"},
        "channel": {"enum": CHANNEL_NAMES,
                    "description": "the actual channel of every status callback it received "
                                   "(Ordered, Error, PhysicalMailReturned, DigipostDelivered)"},
        "filledOutBy": {"enum": ACT_TYPE_NAMES,
                        "description": "filledOutByActType of every Completed form it received"},
        "filledOutByPatient": {**_REF, "description": "filledOutByActNationalId of every Completed form it "
                                                      "received is this patient's national id"},
        "onPaper": {"type": "boolean", "description": "every Completed form it received was (true) or was not "
                                                      "(false) answered on paper: it carries a scannedPaperId"},
        "orders": {"type": "integer", "minimum": 0,
                   "description": "how many of its scripted orders were given an order id (not the zero id)"},
        "epromOrders": {"type": "integer", "minimum": 0,
                        "description": "how many orders ePROM holds for the patient (and form)"},
        "epromStatuses": {"type": "array", "items": {"enum": STATUS_NAMES + ["Pending"]},
                          "description": "the status of each of those ePROM orders, oldest first"},
    },
}

_REGISTRY_ASSERTIONS = ("statuses", "channel", "filledOutBy", "filledOutByPatient", "onPaper", "orders")
_EPROM_ASSERTIONS = ("epromOrders", "epromStatuses")

SCENARIO_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "eprox-harness scenario",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "topology": {"$ref": "#/$defs/topology"},
        "patients": {"type": "array", "items": {"$ref": "#/$defs/patient"}},
        "script": {"type": "array", "items": _STEP_SCHEMA},
        "until": {**_DURATION, "description": "`scenario run` moves the clock this far from the start, then judges"},
        "expect": {"type": "array", "items": _EXPECTATION_SCHEMA},
    },
    "$defs": {
        "topology": {k: v for k, v in CONFIG_SCHEMA.items() if k != "$schema"},
        "patient": _scenario_patient_schema(),
    },
}

_VALIDATOR = DocumentValidator(SCENARIO_SCHEMA)


# --- the model ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatientSpec:
    index: int
    ref: str
    fields: dict  # the contract fields as written: refs and form names not yet resolved


@dataclass(frozen=True)
class OrderStep:
    index: int
    at: timedelta
    registry: str
    patient: str
    form_id: str
    form_name: str
    on_behalf_of: str | None = None
    expiry_date: str | None = None
    expires_after: timedelta = DEFAULT_EXPIRES_AFTER
    wire: dict = field(default_factory=dict)  # other order fields, passed on as they are

    def body(self, now: datetime, national_ids: dict[str, str]) -> dict:
        body: dict[str, Any] = {"formId": self.form_id, "nationalId": national_ids[self.patient]}
        expiry = self.expiry_date if self.expiry_date is not None else (now + self.expires_after).isoformat()
        body["expiryDate"] = expiry
        if self.on_behalf_of is not None:
            body["onBehalfOfNationalId"] = national_ids[self.on_behalf_of]
        for key, value in self.wire.items():
            body[key] = json.dumps(value) if key == "metadata" else copy.deepcopy(value)
        return body

    def describe(self) -> str:
        whom = self.patient if self.on_behalf_of is None else f"{self.patient} on behalf of {self.on_behalf_of}"
        return f"{self.registry} orders {self.form_name} for {whom}"


@dataclass(frozen=True)
class Expectation:
    index: int
    patient: str
    registry: str | None = None
    form_id: str | None = None
    form_name: str | None = None
    statuses: tuple[str, ...] | None = None
    channel: str | None = None
    filled_out_by: str | None = None
    filled_out_by_patient: str | None = None
    on_paper: bool | None = None
    orders: int | None = None
    eprom_orders: int | None = None
    eprom_statuses: tuple[str, ...] | None = None

    def subject(self) -> str:
        form = f", {self.form_name}" if self.form_name else ""
        return f"{self.registry} / {self.patient}{form}" if self.registry else f"ePROM / {self.patient}{form}"


@dataclass
class Scenario:
    source: str
    name: str
    description: str
    config: HarnessConfig
    patients: list[PatientSpec]
    script: list[OrderStep]
    until: timedelta
    expectations: list[Expectation]
    forms: dict[str, str]  # form id -> name (the whole catalog)

    def with_seed(self, seed: int | str | None) -> "Scenario":
        if seed is not None:
            self.config.seed = seed
        return self


# --- loading -----------------------------------------------------------------------------------

def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file, check it against SCENARIO_SCHEMA and the rules a schema cannot say (unknown
    refs, registries and forms, duplicate refs...) and build it; ScenarioError names every problem."""
    path = Path(path)
    try:
        data = read_document(path)
    except ConfigError as err:
        raise ScenarioError(err.problems) from None
    return scenario_from_dict(data, source=str(path), base_dir=path.parent)


def scenario_from_dict(data: Any, *, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    problems = schema_problems(_VALIDATOR, data)
    if isinstance(data, dict):
        topology = data.get("topology", {})
        problems += [(join("topology", where), what) for where, what in topology_rule_problems(topology)]
        if not problems:  # cross-references are checked on a file whose shapes are right
            problems += _reference_problems(data)
    try:
        raise_if_any(problems, source, order=tuple(SCENARIO_SCHEMA["properties"]))
        scenario = _build(data, source, base_dir)
        raise_if_any(_refused_orders(scenario), source)
    except ConfigError as err:
        raise ScenarioError(err.problems) from None
    return scenario


#: Who a scripted order goes to and is about, when only whether ePROX would refuse it matters.
_STAND_INS = ("26670271527", "26723919745")  # synthetic (month + 65)


def _refused_orders(scenario: Scenario) -> list[Problem]:
    """Scripted orders ePROX refuses whatever the patients and whoever ordered first: the checks it makes
    before it links an order as well as before ePROM sees one (the proxy's own take_in and
    check_in_place_of_eprom, so a check added there is made here too). A refused order always fails
    `scenario run`, so `scenario check` says so now. What depends on the catalog (a paper-only order for a
    form without paper) is left out: a linked order is not checked against it."""
    found: list[Problem] = []
    for step in scenario.script:
        now = scenario.config.start + step.at
        body = step.body(now, {step.patient: _STAND_INS[0], **({step.on_behalf_of: _STAND_INS[1]}
                                                                if step.on_behalf_of is not None else {})})
        try:
            check_in_place_of_eprom(body, take_in(body, now).basics.about_someone_else)
        except ProtocolError as err:
            found.append((f"script[{step.index}]", f"ePROX would refuse this order: {err.message}"))
    return found


def _catalog(topology: dict) -> dict[str, str]:
    """Form id -> name of the whole catalog: the default one plus the topology's forms."""
    from fake_eprom.forms import default_catalog

    forms = {form.id: form.name for form in default_catalog()}
    for form in topology.get("forms", []):
        forms[form["id"].lower()] = form["name"]
    return forms


def _form_lookup(forms: dict[str, str]) -> Callable[[str], str | None]:
    by_name = {name: form_id for form_id, name in forms.items()}

    def find(reference: str) -> str | None:
        if re.match(UUID_PATTERN, reference) and reference.lower() in forms:
            return reference.lower()
        return by_name.get(reference)

    return find


def _reference_problems(data: dict) -> list[Problem]:
    found: list[Problem] = []
    topology = data.get("topology", {})
    config = build_config(topology)
    registries = {r.name: r for r in config.registries}
    forms = _catalog(topology)
    find_form = _form_lookup(forms)
    form_names = ", ".join(repr(n) for n in forms.values())

    def form_problem(where: str, reference: str) -> None:
        if find_form(reference) is None:
            found.append((where, f"no form named {reference!r} (or with that id) in the catalog; "
                                 f"it has: {form_names}"))

    def registry_problem(where: str, name: str) -> None:
        if name not in registries:
            found.append((where, f"no registry named {name!r} in the topology; it has: "
                                 f"{', '.join(registries)}"))

    patients = data.get("patients", [])
    refs: dict[str, int] = {}
    explicit_ids: dict[str, int] = {}
    for i, patient in enumerate(patients):
        ref = patient["ref"]
        if ref in refs:
            found.append((f"patients[{i}].ref", f"{ref!r} is already the ref of patients[{refs[ref]}]"))
        refs.setdefault(ref, i)
        national_id = patient.get("nationalId")
        if national_id is not None:
            if national_id in explicit_ids:
                found.append((f"patients[{i}].nationalId",
                              f"is already the national id of patients[{explicit_ids[national_id]}]"))
            explicit_ids.setdefault(national_id, i)

    def patient_problem(where: str, ref: str) -> None:
        if ref not in refs:
            found.append((where, f"no patient with ref {ref!r}; the patients are: {', '.join(refs) or 'none'}"))

    for i, patient in enumerate(patients):
        for where, key, value in _walk(patient, f"patients[{i}]", top_level=True):
            if key in _REF_KEYS and isinstance(value, str) and re.match(REF_PATTERN, value):
                patient_problem(where, value)
                if value == patient["ref"]:
                    found.append((where, f"{value!r} is this patient itself"))
            elif key == "formId" and isinstance(value, str):
                form_problem(where, value)
    cycle = _cycle(patients)
    if cycle:
        found.append((f"patients[{refs[cycle[0]]}]", "patients refer to each other in a circle "
                                                      f"({' -> '.join(cycle)}): give one of them a nationalId"))

    until = duration_at(data["until"], "until", found) if "until" in data else None
    for i, step in enumerate(data.get("script", [])):
        where = f"script[{i}]"
        registry_problem(f"{where}.registry", step["registry"])
        patient_problem(f"{where}.patient", step["patient"])
        form_problem(f"{where}.form", step["form"])
        allowed = registries[step["registry"]].allowed_forms if step["registry"] in registries else None
        form_id = find_form(step["form"])
        if allowed is not None and form_id is not None and form_id not in {f.lower() for f in allowed}:
            found.append((f"{where}.form", f"{step['registry']!r} may not order {forms[form_id]!r} (not in its "
                                           f"allowedForms): ePROX would refuse this order: {no_such_form(form_id)}"))
        if "onBehalfOf" in step:
            patient_problem(f"{where}.onBehalfOf", step["onBehalfOf"])
            if step["onBehalfOf"] == step["patient"]:
                found.append((f"{where}.onBehalfOf", "is the patient the order goes to; leave it out"))
        if "expiryDate" in step and "expiresAfter" in step:
            found.append((where, "give expiryDate or expiresAfter, not both"))
        if "expiryDate" in step:
            try:
                parse_instant(step["expiryDate"], "expiryDate")
            except ProtocolError:
                found.append((f"{where}.expiryDate", f"{step['expiryDate']!r} is not an ISO-8601 date or date-time"))
        if "expiresAfter" in step:
            duration_at(step["expiresAfter"], f"{where}.expiresAfter", found)
        at = duration_at(step["at"], f"{where}.at", found)
        if at is not None and until is not None and at > until:
            found.append((f"{where}.at", f"{step['at']} is after until ({data['until']}): it would never run"))
    if until is not None and until > MAX_UNTIL:
        found.append(("until", "the clock moves at most ten years in one run"))

    for i, expectation in enumerate(data.get("expect", [])):
        where = f"expect[{i}]"
        patient_problem(f"{where}.patient", expectation["patient"])
        if "filledOutByPatient" in expectation:
            patient_problem(f"{where}.filledOutByPatient", expectation["filledOutByPatient"])
        if "form" in expectation:
            form_problem(f"{where}.form", expectation["form"])
        registry = expectation.get("registry")
        asks_registry = [k for k in _REGISTRY_ASSERTIONS if k in expectation]
        asks_eprom = [k for k in _EPROM_ASSERTIONS if k in expectation]
        if not asks_registry and not asks_eprom:
            found.append((where, f"says nothing to check: give any of {', '.join(_REGISTRY_ASSERTIONS)} (with a "
                                 f"registry) or {', '.join(_EPROM_ASSERTIONS)}"))
        if registry is not None:
            registry_problem(f"{where}.registry", registry)
            if asks_eprom:
                found.append((where, f"{', '.join(asks_eprom)} count ePROM's orders for the patient, whoever "
                                     "ordered them: put them in an expectation without a registry"))
            spec = registries.get(registry)
            if spec is not None and not spec.is_fake and asks_registry:
                found.append((f"{where}.registry", f"{registry!r} has a callbackUrl: the harness cannot see what "
                                                   "your own system received"))
        elif asks_registry:
            found.append((where, f"{', '.join(asks_registry)} need a registry"))
    return found


def _walk(node: Any, where: str, *, top_level: bool = False) -> Iterable[tuple[str, str, Any]]:
    """(place, key, value) for every key below node, except a patient's own nationalId."""
    if isinstance(node, dict):
        for key, value in node.items():
            place_ = f"{where}.{key}"
            if not (top_level and key in ("nationalId", "ref")):
                yield place_, key, value
            if key not in _OPAQUE_KEYS:
                yield from _walk(value, place_)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")


def _patient_refs(patient: dict, refs: Iterable[str]) -> list[str]:
    """The other patients this one names by ref."""
    known = set(refs)
    return [value for _, key, value in _walk(patient, "", top_level=True)
            if key in _REF_KEYS and isinstance(value, str) and value in known and value != patient["ref"]]


def _cycle(patients: list[dict]) -> list[str] | None:
    refs = [p["ref"] for p in patients]
    edges = {p["ref"]: _patient_refs(p, refs) for p in patients}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(ref: str, path: list[str]) -> list[str] | None:
        state[ref] = 1
        for other in edges.get(ref, []):
            if state.get(other) == 1:
                return path[path.index(other):] + [ref, other] if other in path else [ref, other]
            if state.get(other) is None:
                found = visit(other, path + [ref])
                if found:
                    return found
        state[ref] = 2
        return None

    for ref in refs:
        if state.get(ref) is None:
            found = visit(ref, [])
            if found:
                return found
    return None


def _build(data: dict, source: str, base_dir: Path | None) -> Scenario:
    topology = data.get("topology", {})
    config = build_config(topology, base_dir)
    forms = _catalog(topology)
    find_form = _form_lookup(forms)
    patients = [PatientSpec(i, p["ref"], {k: copy.deepcopy(v) for k, v in p.items() if k != "ref"})
                for i, p in enumerate(data.get("patients", []))]
    script = []
    for i, step in enumerate(data.get("script", [])):
        form_id = find_form(step["form"])
        assert form_id is not None
        wire = {k: copy.deepcopy(v) for k, v in step.items()
                if k not in ("at", "registry", "patient", "form", "onBehalfOf", "expiryDate", "expiresAfter")}
        script.append(OrderStep(
            index=i, at=parse_duration(step["at"], "at"), registry=step["registry"], patient=step["patient"],
            form_id=form_id, form_name=forms[form_id], on_behalf_of=step.get("onBehalfOf"),
            expiry_date=step.get("expiryDate"),
            expires_after=parse_duration(step["expiresAfter"], "expiresAfter") if "expiresAfter" in step
            else DEFAULT_EXPIRES_AFTER,
            wire=wire))
    if "until" in data:
        until = parse_duration(data["until"], "until")
    else:
        until = max((s.at for s in script), default=timedelta(0))
    expectations = []
    for i, e in enumerate(data.get("expect", [])):
        form_id = find_form(e["form"]) if "form" in e else None
        expectations.append(Expectation(
            index=i, patient=e["patient"], registry=e.get("registry"), form_id=form_id,
            form_name=forms[form_id] if form_id else None,
            statuses=tuple(e["statuses"]) if "statuses" in e else None, channel=e.get("channel"),
            filled_out_by=e.get("filledOutBy"), filled_out_by_patient=e.get("filledOutByPatient"),
            on_paper=e.get("onPaper"), orders=e.get("orders"), eprom_orders=e.get("epromOrders"),
            eprom_statuses=tuple(e["epromStatuses"]) if "epromStatuses" in e else None))
    name = data.get("name") or Path(source).stem
    return Scenario(source=source, name=name, description=data.get("description", "").strip(), config=config,
                    patients=patients, script=script, until=until, expectations=expectations, forms=forms)


# --- patients ----------------------------------------------------------------------------------

class PatientRefused(Exception):
    """The fake ePROM refused a patient (HTTP 400): its message names the field."""


PostPatient = Callable[[dict], dict]  # a POST /_sim/patients body -> the patient as the fake ePROM made it


def add_patients(scenario: Scenario, post: PostPatient) -> dict[str, str]:
    """Describe every patient to the fake ePROM (patients named by others first, otherwise in file order) and
    return ref -> nationalId. ScenarioError names the patient and the field the fake ePROM refused."""
    national_ids: dict[str, str] = {}
    find_form = _form_lookup(scenario.forms)
    refs = [p.ref for p in scenario.patients]
    pending = list(scenario.patients)
    problems: list[str] = []
    refused: set[str] = set()
    while pending:
        ready = next(p for p in pending
                     if all(r in national_ids or r in refused for r in _patient_refs({"ref": p.ref, **p.fields}, refs)))
        pending.remove(ready)
        if refused & set(_patient_refs({"ref": ready.ref, **ready.fields}, refs)):
            refused.add(ready.ref)  # it names a refused patient: the problem is reported there
            continue
        body = _resolve(ready.fields, national_ids, find_form, top_level=True)
        try:
            made = post(body)
        except PatientRefused as err:  # keep going: report every refused patient at once
            problems.append(f"{scenario.source}: {_patient_place(ready.index, str(err))}")
            refused.add(ready.ref)
            continue
        national_ids[ready.ref] = made["nationalId"]
    if problems:
        raise ScenarioError(problems)
    return {p.ref: national_ids[p.ref] for p in scenario.patients}


def _patient_place(index: int, message: str) -> str:
    """`answer.onPaper: ...` from the fake ePROM becomes `patients[2].answer.onPaper: ...`."""
    match = re.match(r"^([A-Za-z][\w]*(?:\[\d+\])*(?:\.[A-Za-z]\w*(?:\[\d+\])*)*): (.*)$", message, re.S)
    if match:
        return f"patients[{index}].{match.group(1)}: {match.group(2)}"
    return f"patients[{index}]: {message}"


def _resolve(node: Any, national_ids: dict[str, str], find_form: Callable[[str], str | None], *,
             top_level: bool = False) -> Any:
    """The contract body: refs replaced by national ids, form names by form ids."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if (key in _REF_KEYS and not (top_level and key == "nationalId") and isinstance(value, str)
                    and value in national_ids):
                out[key] = national_ids[value]
            elif key == "formId" and isinstance(value, str):
                out[key] = find_form(value) or value
            elif key in _OPAQUE_KEYS:
                out[key] = copy.deepcopy(value)
            else:
                out[key] = _resolve(value, national_ids, find_form)
        return out
    if isinstance(node, list):
        return [_resolve(v, national_ids, find_form) for v in node]
    return copy.deepcopy(node)


def http_poster(client: HarnessClient) -> PostPatient:
    def post(body: dict) -> dict:
        try:
            return client.add_patient(**body)
        except ControlError as err:
            if err.status == 400 and isinstance(err.body, dict) and isinstance(err.body.get("message"), str):
                raise PatientRefused(err.body["message"]) from None
            raise
    return post


# --- the script on the timeline ----------------------------------------------------------------

@dataclass(frozen=True)
class StepResult:
    step: OrderStep
    placed_at: datetime
    status: int | None  # the target's HTTP status; None: no answer
    body: Any
    error: str | None = None

    @property
    def order_id(self) -> str | None:
        """The registry's order id, when it got one (not the zero id)."""
        if self.status == 200 and isinstance(self.body, dict):
            value = self.body.get("id")
            if isinstance(value, str) and value != ZERO_UUID:
                return value
        return None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        if self.status == 200 and isinstance(self.body, dict):
            value = self.body.get("id")
            return "zero id: no order" if value == ZERO_UUID else f"200 order {str(value)[:8]}"
        message = self.body.get("message") if isinstance(self.body, dict) else self.body
        return f"{self.status} {str(message)[:100]!r}"


PlaceOrder = Callable[[OrderStep, datetime], StepResult]


class ScriptWork:
    """The scenario's registry orders as due work on the shared timeline: each runs when the clock reaches
    its `at`, in time order with everything else (ties: file order; among servers, registration order)."""

    name = SCRIPT_WORK_NAME

    def __init__(self, steps: list[OrderStep], start: datetime, place: PlaceOrder,
                 after_each: Callable[[], Any] = lambda: None):
        self._steps = sorted(steps, key=lambda s: (s.at, s.index))
        self._start = start
        self._place = place
        self._after_each = after_each
        self._next = 0
        self._lock = threading.Lock()
        self._results: list[StepResult] = []

    def next_due(self) -> datetime | None:
        with self._lock:
            if self._next >= len(self._steps):
                return None
            return self._start + self._steps[self._next].at

    def run_due(self, now: datetime) -> None:
        while True:
            with self._lock:
                if self._next >= len(self._steps) or self._start + self._steps[self._next].at > now:
                    return
                step = self._steps[self._next]
                self._next += 1  # never twice, even when placing it fails
            try:
                result = self._place(step, now)
            except Exception as err:  # the timeline must go on; the failure is reported with the step
                result = StepResult(step, now, None, None, f"{type(err).__name__}: {err}")
            with self._lock:
                self._results.append(result)
            self._after_each()

    @property
    def results(self) -> list[StepResult]:
        with self._lock:
            return list(self._results)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._steps) - self._next


class OrderPlacer:
    """Places a scripted order as the registry: through the fake registry's own control API (so it is in its
    placed orders, exactly as POST /_sim/orders does), or, for a registry with a callbackUrl, straight at the
    proxy with the registry's key (the transcript shows it as sent by that registry)."""

    def __init__(self, harness: Any, national_ids: dict[str, str]):
        from service_kit.http import Transport

        self._harness = harness
        self._national_ids = national_ids
        self._session = requests.Session()
        self._registries = {r.name: r for r in harness.config.registries}
        self._transports = {r.name: Transport(r.name, harness.clock, harness.transcript.tap_for(r.name),
                                              timeout=PLACE_TIMEOUT)
                            for r in harness.config.registries if not r.is_fake}

    def __call__(self, step: OrderStep, now: datetime) -> StepResult:
        body = step.body(now, self._national_ids)
        registry = self._registries[step.registry]
        if not registry.is_fake:
            exchange = self._transports[registry.name].send(
                "POST", f"{self._harness.url('proxy')}/api/v2/formorder", body, api_key=registry.api_key)
            return StepResult(step, now, exchange.status, exchange.response_body, exchange.error)
        reply = self._session.post(f"{self._harness.url(registry.name)}/_sim/orders", json=body,
                                   timeout=PLACE_TIMEOUT)
        data = reply.json()
        if reply.status_code == 200:
            return StepResult(step, now, data["status"], data["body"])
        return StepResult(step, now, None, data, str(data.get("message") if isinstance(data, dict) else data))

    def close(self) -> None:
        self._session.close()


# --- a scenario on a running harness -----------------------------------------------------------

class ScenarioSession:
    """Loads a scenario into a started Harness: its patients into the fake ePROM (over the control API) and
    its script onto the timeline. Then `checks()` judges the outcome over HTTP."""

    def __init__(self, harness: Any, scenario: Scenario):
        self.harness = harness
        self.scenario = scenario
        self.client = HarnessClient(harness.info())
        self.national_ids: dict[str, str] = {}
        self.script: ScriptWork | None = None
        self._placer: OrderPlacer | None = None

    def install(self) -> "ScenarioSession":
        self.national_ids = add_patients(self.scenario, http_poster(self.client))
        self._placer = OrderPlacer(self.harness, self.national_ids)
        # An order counts as placed once every response it caused has been sent: the proxy holds a linked
        # registry's replay until its answer is out, and the clock must not move past it before that.
        # settle() waits for those holds and runs what is due now, which the timeline would run next anyway.
        self.script = ScriptWork(self.scenario.script, self.harness.config.start, self._placer,
                                 after_each=self.harness.timeline.settle)
        self.harness.timeline.register(self.script)
        return self

    def close(self) -> None:
        if self._placer is not None:
            self._placer.close()
        self.client.close()

    def patient_list(self) -> list[dict]:
        """What the ready file lists: [{"ref", "nationalId"}] in file order."""
        return [{"ref": p.ref, "nationalId": self.national_ids[p.ref]} for p in self.scenario.patients]

    # --- judging --------------------------------------------------------------------------
    def checks(self) -> list[Check]:
        results = self.script.results if self.script is not None else []
        checks = [self._all_orders_accepted(results)]
        for expectation in self.scenario.expectations:
            checks += self._judge(expectation, results)
        checks.append(self._eprom_callbacks_acknowledged())
        for name in self.harness.fake_registry_names:
            checks += self._callbacks_sound(name)
        return checks

    def _eprom_callbacks_acknowledged(self) -> Check:
        """ePROX took every callback fake ePROM sent it (the last attempt of each was acknowledged)."""
        reply = requests.get(f"{self.client.eprom_url}/_sim/deliveries", timeout=self.client.timeout)
        reply.raise_for_status()
        last: dict[Any, dict] = {}
        for attempt in reply.json():
            last[attempt.get("id")] = attempt
        refused = [a for a in last.values() if not a.get("acknowledged")]
        details = [f"{a.get('kind')} {a.get('formOrderStatus') or a.get('sentStatus') or ''} of order "
                   f"{str(a.get('orderId') or a.get('messageToCitizenId'))[:8]}: {a.get('error') or a.get('status')} "
                   f"after {a.get('attempt')} attempt(s)" for a in refused]
        return Check(f"ePROX acknowledged every callback fake ePROM sent it ({len(last)})", not refused,
                     "; ".join(details)[:600])

    def _all_orders_accepted(self, results: list[StepResult]) -> Check:
        bad = [f"script[{r.step.index}] ({r.step.describe()}): {r.describe()}" for r in results if r.status != 200]
        missing = self.script.remaining if self.script is not None else 0
        text = f"every scripted order ({len(self.scenario.script)}) was placed and answered HTTP 200"
        detail = "; ".join(bad + ([f"{missing} never ran"] if missing else []))
        return Check(text, not bad and not missing, detail)

    def _mine(self, expectation: Expectation, results: list[StepResult]) -> list[StepResult]:
        return [r for r in results if r.step.registry == expectation.registry and r.step.patient == expectation.patient
                and (expectation.form_id is None or r.step.form_id == expectation.form_id)]

    def _judge(self, e: Expectation, results: list[StepResult]) -> list[Check]:
        checks: list[Check] = []
        subject = e.subject()
        if e.registry is not None:
            mine = self._mine(e, results)
            callbacks = [c for r in mine if r.order_id for c in self.client.inbox(e.registry, r.order_id)]
            bodies = [c["body"] for c in callbacks if isinstance(c.get("body"), dict)]
            if e.orders is not None:
                got = sum(1 for r in mine if r.order_id)
                checks.append(Check(f"{subject}: {e.orders} scripted order(s) given an order id", got == e.orders,
                                    f"got {got}"))
            if e.statuses is not None:
                got = [_status_name(b.get("formOrderStatus")) for b in bodies]
                checks.append(Check(f"{subject}: received {', '.join(e.statuses) or 'nothing'}",
                                    got == list(e.statuses), f"got {', '.join(got) or 'nothing'}"))
            if e.channel is not None:
                got = [_channel_name(b.get("notificationChannel")) for b in bodies
                       if _status(b.get("formOrderStatus")) in STATUS_CALLBACK_STATUSES]
                checks.append(Check(f"{subject}: reached on {e.channel}", bool(got) and set(got) == {e.channel},
                                    f"got {', '.join(got) or 'no status callback'}"))
            completed = [b for b in bodies if _status(b.get("formOrderStatus")) is FormOrderStatus.Completed]
            if e.filled_out_by is not None:
                got = [_act_type_name(b.get("filledOutBy")) for b in completed]
                checks.append(Check(f"{subject}: filled out by {e.filled_out_by}",
                                    bool(got) and set(got) == {e.filled_out_by},
                                    f"got {', '.join(got) or 'no Completed form'}"))
            if e.filled_out_by_patient is not None:
                wanted = self.national_ids[e.filled_out_by_patient]
                got = [(b.get("filledOutBy") or {}).get("filledOutByActNationalId") for b in completed]
                checks.append(Check(f"{subject}: filled out by {e.filled_out_by_patient}",
                                    bool(got) and set(got) == {wanted},
                                    f"got {', '.join(mask(g) if g else repr(g) for g in got) or 'no Completed form'}"))
            if e.on_paper is not None:
                got = [bool(b.get("scannedPaperId")) for b in completed]
                checks.append(Check(f"{subject}: answered {'on paper' if e.on_paper else 'digitally'}",
                                    bool(got) and set(got) == {e.on_paper},
                                    "no Completed form" if not got else
                                    f"scannedPaperId: {', '.join('yes' if g else 'no' for g in got)}"))
        if e.eprom_orders is not None or e.eprom_statuses is not None:
            orders = self.client.eprom_orders(national_id=self.national_ids[e.patient], form_id=e.form_id)
            if e.eprom_orders is not None:
                checks.append(Check(f"{subject}: ePROM holds {e.eprom_orders} order(s)", len(orders) == e.eprom_orders,
                                    f"it holds {len(orders)}"))
            if e.eprom_statuses is not None:
                got = [str(o.get("status")) for o in orders]
                checks.append(Check(f"{subject}: ePROM's orders end {', '.join(e.eprom_statuses) or 'as none'}",
                                    got == list(e.eprom_statuses), f"got {', '.join(got) or 'no order'}"))
        return checks

    def _callbacks_sound(self, registry: str) -> list[Check]:
        inbox = self.client.inbox(registry)
        if not inbox:
            return []
        bad = [c for c in inbox if not (c.get("apiKeyMatches") and c.get("conforms") and c.get("acknowledged"))]
        own = {o["body"].get("id") for o in self.client.placed_orders(registry) if isinstance(o.get("body"), dict)}
        foreign = sorted({str(c["body"].get("formOrderId"))[:8] for c in inbox if isinstance(c.get("body"), dict)
                          and c["body"].get("formOrderId") not in own})
        details = [f"callback {c.get('seq')}: key {'ok' if c.get('apiKeyMatches') else 'WRONG'}, "
                   f"schema {'ok' if c.get('conforms') else '; '.join(c.get('schemaViolations') or [])}, "
                   f"acknowledged {c.get('acknowledged')}" for c in bad]
        return [
            Check(f"every callback to {registry} ({len(inbox)}) carries its own key, follows the ePROM schema "
                  "and was acknowledged", not bad, " | ".join(details)[:600]),
            Check(f"{registry} only hears of its own order ids", not foreign, f"it heard of {', '.join(foreign)}"),
        ]


def _status(value: Any) -> FormOrderStatus | None:
    return FormOrderStatus.parse(value) if FormOrderStatus.is_valid(value) else None


def _status_name(value: Any) -> str:
    status = _status(value)
    return status.wire_name if status is not None else repr(value)


def _channel_name(value: Any) -> str:
    return NotificationChannel.parse(value).wire_name if NotificationChannel.is_valid(value) else repr(value)


def _act_type_name(value: Any) -> str:
    raw = value.get("filledOutByActType") if isinstance(value, dict) else None
    return FilledOutByActType.parse(raw).wire_name if FilledOutByActType.is_valid(raw) else repr(raw)


# --- the commands ------------------------------------------------------------------------------

def check_scenario(scenario: Scenario) -> None:
    """What `scenario check` does beyond loading: give every patient to a throwaway fake ePROM (its control
    API through Flask's test client: no ports, no clock moves), so a patient the fake ePROM would refuse is
    reported now, named by its place in the file. Raises ScenarioError."""
    from fake_eprom.app import create_app
    from fake_eprom.config import EpromConfig, OrderingSystem
    from fake_eprom.forms import default_catalog, parse_catalog
    from service_kit.clock import SimClock
    from service_kit.runtime import Runtime
    from service_kit.timeline import Timeline

    config = scenario.config
    clock = SimClock(config.start)
    forms = default_catalog() + (parse_catalog({"forms": config.forms}, source="forms") if config.forms else [])
    app = create_app(EpromConfig(ordering_systems=[OrderingSystem(EPROX_AT_EPROM, config.eprom_api_key,
                                                                   "http://127.0.0.1:9")],
                                 forms=forms, population=config.population, status_delay=config.status_delay),
                     Runtime(clock, Timeline(clock, pump=False), seed=config.seed, sim=True))
    client = app.test_client()

    def post(body: dict) -> dict:
        reply = client.post("/_sim/patients", json=body)
        data = reply.get_json(silent=True)
        if reply.status_code == 400 and isinstance(data, dict) and isinstance(data.get("message"), str):
            raise PatientRefused(data["message"])
        if not 200 <= reply.status_code < 300 or not isinstance(data, dict):
            raise ScenarioError([f"{scenario.source}: the fake ePROM answered a patient with HTTP {reply.status_code}"])
        return data

    add_patients(scenario, post)


def run_scenario(scenario: Scenario, out: Callable[[str], None]) -> bool:
    """Start a fresh harness with the pump off, load the scenario, move the clock to `until` (everything runs
    in time order), print the transcript and the verdicts; True when every check holds. The output is the
    same on every run with the same scenario and seed."""
    from .topology import Harness

    config = scenario.config
    end = config.start + scenario.until
    out(f"eprox-harness scenario run: {scenario.name} (seed {config.seed})")
    for line in scenario.description.splitlines():
        out(f"  {line}")
    out(f"simulated time: {config.start:%Y-%m-%d %H:%M:%SZ} to {end:%Y-%m-%d %H:%M:%SZ} (until {_iso(scenario.until)})")
    harness = Harness(config, pump=False).start()
    session = ScenarioSession(harness, scenario)
    try:
        session.install()
        out("patients:")
        width = max([len(p.ref) for p in scenario.patients] + [1])
        for patient in scenario.patients:
            out(f"  {patient.ref:<{width}}  {mask(session.national_ids[patient.ref])}")
        session.client.settle()
        if scenario.until > timedelta(0):
            session.client.advance(days=scenario.until.days,
                                   seconds=scenario.until.seconds + scenario.until.microseconds / 1e6)
        session.client.settle()
        out("transcript:")
        for line in harness.transcript.lines():
            out(f"  {line}")
        out("script:")
        for result in sorted(session.script.results if session.script else [], key=lambda r: r.step.index):
            out(f"  {_iso(result.step.at):>8}  {result.step.describe()}: {result.describe()}")
        checks = session.checks()
    finally:
        session.close()
        harness.stop()
    out("checks:")
    for check in checks:
        out(f"  {'ok  ' if check.passed else 'FAIL'}  {check.text}" + ("" if check.passed else f": {check.detail}"))
    failed = sum(1 for c in checks if not c.passed)
    out(f"verdict: {'PASS' if not failed else 'FAIL'}: {len(checks) - failed} of {len(checks)} checks hold")
    return not failed


def _iso(delta: timedelta) -> str:
    """P3D, PT12H, P1DT2H30M: the durations scenario files use."""
    if delta == timedelta(0):
        return "P0D"
    days, rest = delta.days, delta.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    seconds_text = f"{seconds + delta.microseconds / 1e6:g}S" if seconds or delta.microseconds else ""
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + seconds_text
    return "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")
