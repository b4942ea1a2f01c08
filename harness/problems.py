"""Reading the harness's YAML/JSON files and saying what is wrong with them: one line per problem, naming
the file, the place in it (`patients[2].answer.after`) and what is wrong. Shared by the topology
configuration and scenario files."""
from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from eprom_protocol.messages import ProtocolError
from eprom_protocol.timefmt import parse_duration
from service_kit.documents import DuplicateKey, UniqueKeyLoader, unique_pairs, yaml_error_text

Problem = tuple[str, str]  # (place in the file, what is wrong)


class ConfigError(Exception):
    """The file is unusable; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# --- reading ----------------------------------------------------------------------------------

def read_document(path: Path) -> Any:
    """The parsed content of a YAML file (JSON when the name ends in .json); an empty file is {}."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the file: {err.strerror or err}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the file is not UTF-8 text"]) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=unique_pairs) if text.strip() else {}
        except DuplicateKey as err:
            raise ConfigError([f"{path}: {err}"]) from None
        except json.JSONDecodeError as err:
            raise ConfigError([f"{path}: not valid JSON: line {err.lineno} column {err.colno}: {err.msg}"]) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as err:
        raise ConfigError([f"{path}: {err}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: {yaml_error_text(err)}"]) from None
    return {} if data is None else data


# --- saying what is wrong ---------------------------------------------------------------------

def schema_problems(validator: Draft202012Validator, data: Any, prefix: str = "") -> list[Problem]:
    found = []
    for error in validator.iter_errors(data):
        leaf, words = best_leaf(error)
        found.append((place(leaf.absolute_path, prefix), words or describe(leaf)))
    return found


def best_leaf(error: ValidationError) -> tuple[ValidationError, str | None]:
    """For anyOf/oneOf (a value that may be one of several shapes, e.g. a duration or null): the alternative
    the value came closest to, so that `answer: {after: P3X}` is reported at answer.after. When no
    alternative gets deeper than the value itself, the words of the outermost alternative's description
    say what was wanted ("a national id (11 digits) or the ref of a patient in this file")."""
    chain = [error]
    while error.validator in ("anyOf", "oneOf") and error.context:
        candidates = [e for e in error.context if e.validator != "type"]
        if not candidates:
            break  # only the types were wrong: describe() lists them
        error = max(candidates, key=lambda e: len(e.relative_path))
        chain.append(error)
    if len(chain) == 1 or error.validator in ("anyOf", "oneOf"):
        return error, None
    same_place = [e for e in chain[:-1] if list(e.absolute_path) == list(error.absolute_path)]
    if not same_place:
        return error, None
    nullable = any(isinstance(a, dict) and a.get("type") == "null"
                   for e in same_place for a in (e.schema.get(e.validator, []) if isinstance(e.schema, dict) else []))
    description = next((e.schema["description"] for e in same_place
                        if isinstance(e.schema, dict) and e.schema.get("description")), None)
    if description and error.validator == "pattern":
        return error, f"{error.instance!r} is not {description}"
    return error, describe(error) + (" (or null)" if nullable else "")


def raise_if_any(problems: Iterable[Problem], source: str, order: tuple[str, ...] = ()) -> None:
    """ConfigError listing every problem in document order (`order`: the top-level keys in the order a file
    has them; others come after, alphabetically)."""
    def key(problem: Problem) -> tuple:
        top = re.split(r"[.\[]", problem[0], maxsplit=1)[0]
        return (order.index(top) if top in order else len(order), sort_key(problem[0]))

    found = sorted(problems, key=key)
    if found:
        raise ConfigError([f"{source}: {where}: {what}" for where, what in found])


def sort_key(place_: str) -> list:
    """Document order for places such as registries[1].apiKey (numbers compared as numbers)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\[\]]+", place_) if p]


def place(path: Iterable[Any], prefix: str = "") -> str:
    text = prefix
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def duration_at(value: Any, where: str, found: list[Problem]) -> timedelta | None:
    """The duration written at `where`; None, with what is wrong added to `found`, when it cannot be used."""
    try:
        return parse_duration(value, where)
    except ProtocolError as err:
        found.append((where, err.message.removeprefix(f"{where}: ")))
        return None


def join(prefix: str, where: str) -> str:
    """A place inside a part of the file: join("topology", "registries[0]") -> topology.registries[0]."""
    if not prefix:
        return where
    if where == "(top level)":
        return prefix
    return f"{prefix}{where}" if where.startswith("[") else f"{prefix}.{where}"


# Patterns whose failure deserves words of its own; others are explained by the schema's description.
PATTERN_WORDS: dict[str, str] = {}


def describe(error: ValidationError) -> str:
    """What is wrong, in words a person editing the file understands."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _describe_types(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"unknown setting(s) {', '.join(map(repr, extra))}; allowed here: {', '.join(allowed)}"
    if error.validator == "required":
        return error.message.replace(" is a required property", " is required")
    if error.validator == "type":
        expected = error.validator_value
        words = [TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected])]
        return f"must be {' or '.join(words)}, not {yaml_type(error.instance)} ({error.instance!r})"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        words = PATTERN_WORDS.get(error.validator_value)
        if words:
            return f"{error.instance!r} {words}"
        description = error.schema.get("description")
        if description:
            return f"{error.instance!r} does not have the expected form: {description}"
    if error.validator == "minItems":
        if error.validator_value == 1:
            last = error.path[-1] if error.path else ""
            return f"must list at least one {SINGULAR.get(last, 'item')}"
        return f"must list at least {error.validator_value} items"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "exclusiveMinimum":
        return f"must be greater than {error.validator_value}"
    if error.validator == "minimum":
        return f"must be at least {error.validator_value}"
    if error.validator == "maximum":
        return f"must be at most {error.validator_value}"
    if error.validator == "uniqueItems":
        return "must not list the same item twice"
    return error.message


def _describe_types(error: ValidationError) -> str:
    """A value of none of the types its alternatives allow."""
    kinds = []
    for e in error.context:
        if e.validator == "type":
            values = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
            kinds += [TYPE_WORDS.get(t, t) for t in values]
    if not kinds:
        return error.message
    return f"must be {' or '.join(dict.fromkeys(kinds))}, not {yaml_type(error.instance)} ({error.instance!r})"


SINGULAR = {"registries": "registry", "patients": "patient", "forms": "form", "questions": "question",
            "options": "option", "examples": "example", "statuses": "status"}

TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
              "number": "a number", "boolean": "true or false", "null": "null"}


def yaml_type(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "YAML's .nan or .inf, which JSON has no number for"
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
