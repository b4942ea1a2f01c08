"""The form catalog: forms with their questions, loaded from YAML data files (the default one ships in
`fake_eprom/catalog/`). Questions exist so that answers can be generated (see answers.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from eprom_protocol.schemas import UUID_PATTERN
from service_kit.documents import DuplicateKey, UniqueKeyLoader, yaml_error_text

QUESTION_TYPES = ("choice", "number", "text")
DEFAULT_CATALOG_RESOURCE = "catalog/default_catalog.yaml"
RAND_12_ID = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"


QUESTION_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "text", "type"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "text": {"type": "string", "minLength": 1},
        "type": {"enum": list(QUESTION_TYPES)},
        "required": {"type": "boolean", "description": "default true; an optional question is left out now and then"},
        "options": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["value", "text"],
            "properties": {"value": {}, "text": {"type": "string"}}}},
        "min": {"type": "integer"},
        "max": {"type": "integer"},
        "examples": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "choice"}}, "required": ["type"]}, "then": {"required": ["options"]}},
        {"if": {"properties": {"type": {"const": "number"}}, "required": ["type"]},
         "then": {"required": ["min", "max"]}},
        {"if": {"properties": {"type": {"const": "text"}}, "required": ["type"]}, "then": {"required": ["examples"]}},
    ],
}

#: A form in the catalog data format (what parse_catalog reads), for the harness's configuration to check extra
#: forms with; parse_catalog also checks what no schema can say (unique ids, min <= max).
FORM_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "string", "pattern": UUID_PATTERN},
        "name": {"type": "string", "minLength": 1},
        "published": {"type": "boolean"},
        "paperEnabled": {"type": "boolean"},
        "mustBeSigned": {"type": "boolean"},
        "questions": {"type": "array", "items": QUESTION_SCHEMA},
        "owner": {"type": "string", "minLength": 1,
                  "description": "the ordering system that gets the answer when a patient orders the form by "
                                 "themself; in a harness that is ePROX, named 'eprox' at the fake ePROM"},
    },
}


@dataclass(frozen=True)
class Option:
    value: Any
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    type: str  # one of QUESTION_TYPES
    options: tuple[Option, ...] = ()  # choice
    min: int | None = None  # number
    max: int | None = None  # number
    examples: tuple[str, ...] = ()  # text
    required: bool = True


@dataclass(frozen=True)
class Form:
    id: str
    name: str
    published: bool = True
    paper_enabled: bool = False
    must_be_signed: bool = False
    questions: tuple[Question, ...] = field(default_factory=tuple)
    owner: str | None = None  # the ordering system that gets the answers when a patient orders it themself

    @property
    def patient_orderable(self) -> bool:
        return self.owner is not None and self.published

    def summary(self) -> dict:
        """The form as the harness's ready file lists it (SPEC §4)."""
        return {"id": self.id, "name": self.name, "published": self.published,
                "paperEnabled": self.paper_enabled, "mustBeSigned": self.must_be_signed}


class CatalogError(ValueError):
    """A catalog file that does not describe forms the way forms.py expects."""


def default_catalog() -> list[Form]:
    """The shipped default catalog: RAND-12, a paper-enabled form, a form that must be signed and an
    unpublished form."""
    return list(_default_catalog())


@lru_cache(maxsize=1)
def _default_catalog() -> tuple[Form, ...]:
    text = resources.files("fake_eprom").joinpath(DEFAULT_CATALOG_RESOURCE).read_text(encoding="utf-8")
    return tuple(parse_catalog(yaml.safe_load(text), source=DEFAULT_CATALOG_RESOURCE))


def load_catalog(path: str | Path) -> list[Form]:
    """Forms from a YAML file of the same shape as the default catalog; a key given twice is refused."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        try:
            data = yaml.load(handle, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except DuplicateKey as err:
            raise CatalogError(f"{path}: {err}") from None
        except yaml.YAMLError as err:
            raise CatalogError(f"{path}: {yaml_error_text(err)}") from None
    return parse_catalog(data, source=str(path))


def parse_catalog(data: Any, source: str = "catalog") -> list[Form]:
    if not isinstance(data, dict) or not isinstance(data.get("forms"), list):
        raise CatalogError(f"{source}: expected a mapping with a list under 'forms'")
    forms = [_parse_form(item, f"{source}: forms[{i}]") for i, item in enumerate(data["forms"])]
    seen: set[str] = set()
    for form in forms:
        if form.id in seen:
            raise CatalogError(f"{source}: form id {form.id} appears twice")
        seen.add(form.id)
    return forms


def _parse_form(item: Any, where: str) -> Form:
    if not isinstance(item, dict):
        raise CatalogError(f"{where}: a form must be a mapping")
    _only(item, {"id", "name", "published", "paperEnabled", "mustBeSigned", "questions", "owner"}, where)
    form_id = str(item.get("id", ""))
    try:
        form_id = str(uuid.UUID(form_id))
    except ValueError:
        raise CatalogError(f"{where}: id {form_id!r} is not a uuid") from None
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise CatalogError(f"{where}: name is required")
    questions = item.get("questions") or []
    if not isinstance(questions, list):
        raise CatalogError(f"{where}: questions must be a list")
    parsed = tuple(_parse_question(q, f"{where}.questions[{i}]") for i, q in enumerate(questions))
    if len({q.id for q in parsed}) != len(parsed):
        raise CatalogError(f"{where}: question ids must be unique")
    owner = item.get("owner")
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise CatalogError(f"{where}: owner must be the name of an ordering system")
    return Form(id=form_id, name=name, published=_bool(item, "published", True, where),
                paper_enabled=_bool(item, "paperEnabled", False, where),
                must_be_signed=_bool(item, "mustBeSigned", False, where), questions=parsed, owner=owner)


def _parse_question(item: Any, where: str) -> Question:
    if not isinstance(item, dict):
        raise CatalogError(f"{where}: a question must be a mapping")
    _only(item, {"id", "text", "type", "options", "min", "max", "examples", "required"}, where)
    qid, text, qtype = item.get("id"), item.get("text"), item.get("type")
    if not isinstance(qid, str) or not qid:
        raise CatalogError(f"{where}: id is required")
    if not isinstance(text, str) or not text:
        raise CatalogError(f"{where}: text is required")
    if qtype not in QUESTION_TYPES:
        raise CatalogError(f"{where}: type must be one of {', '.join(QUESTION_TYPES)}")
    required = _bool(item, "required", True, where)
    if qtype == "choice":
        options = item.get("options")
        if not isinstance(options, list) or not options:
            raise CatalogError(f"{where}: a choice question needs options")
        parsed = []
        for option in options:
            if not isinstance(option, dict) or "value" not in option or not isinstance(option.get("text"), str):
                raise CatalogError(f"{where}: each option needs a value and a text")
            parsed.append(Option(option["value"], option["text"]))
        return Question(qid, text, qtype, options=tuple(parsed), required=required)
    if qtype == "number":
        low, high = item.get("min"), item.get("max")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise CatalogError(f"{where}: a number question needs integers min <= max")
        return Question(qid, text, qtype, min=low, max=high, required=required)
    examples = item.get("examples") or []
    if not isinstance(examples, list) or not examples or not all(isinstance(e, str) for e in examples):
        raise CatalogError(f"{where}: a text question needs a non-empty list of example answers")
    return Question(qid, text, qtype, examples=tuple(examples), required=required)


def _bool(item: dict, key: str, default: bool, where: str) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: {key} must be true or false")
    return value


def _only(item: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
